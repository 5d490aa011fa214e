//! Scheduled channels (ImageFlux schedules) on air: a WHIP client publishes
//! to the `sora_url` of `/api/delivery` with its ImageFlux token, from ten
//! minutes before the schedule's start until its end; the SFU takes the
//! stream and the HLS packager makes the channel's segments. The broadcast
//! ends on DELETE of its session, when its media is lost, or at the
//! schedule's end time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexmile_compat::imageflux::{ApiError, Need};
use nexmile_compat::skyway::{ContentType, Participant, Room, room_name};
use nexmile_sfu::{Feed, LegEvent, LegSpec, Room as MediaRoom};
use tokio::sync::mpsc;

use crate::compat::imageflux::{ImageFlux, Reply, jst, session};
use crate::hls::HlsChannels;
use crate::media::{answer_sdp, offer_description};

/// How early before its start a schedule may go on air (a rehearsal).
const EARLY: Duration = Duration::from_secs(10 * 60);

/// The publisher's feed in the channel's media room.
const PUBLISHED: Feed = Feed(0);

struct OnAir {
    session: String,
    /// The publisher's connection; dropped, it ends.
    media: MediaRoom,
    /// The ImageFlux user publishing.
    publisher: String,
}

/// The channels on air, by channel id.
pub struct Channels {
    imageflux: Arc<ImageFlux>,
    hls: Arc<HlsChannels>,
    on_air: Mutex<HashMap<String, OnAir>>,
}

impl Channels {
    pub fn new(imageflux: Arc<ImageFlux>, hls: Arc<HlsChannels>) -> Self {
        Self {
            imageflux,
            hls,
            on_air: Mutex::default(),
        }
    }

    fn stop(&self, channel: &str, session: Option<&str>) -> bool {
        let mut on_air = self.on_air.lock().expect("channels lock");
        let matches = on_air
            .get(channel)
            .is_some_and(|c| session.is_none_or(|s| c.session == s));
        if matches && let Some(stopped) = on_air.remove(channel) {
            drop(stopped.media);
            tracing::info!("channel {channel}: off air");
        }
        matches
    }

    /// Every channel on air as a SkyWay room: its publisher sends sound and
    /// pictures to the SFU, which the HLS packager takes (not a member).
    pub fn rooms(&self) -> Vec<Room> {
        self.on_air
            .lock()
            .expect("channels lock")
            .iter()
            .map(|(channel, on_air)| Room {
                id: uuid::Uuid::parse_str(channel)
                    .map_or_else(|_| channel.clone(), |id| id.hyphenated().to_string()),
                name: room_name("imageflux", "channel", channel),
                participants: vec![Participant {
                    name: on_air.publisher.clone(),
                    publishes: vec![ContentType::Audio, ContentType::Video],
                    receives_from: vec![],
                }],
            })
            .collect()
    }

    fn channel_of(&self, session: &str) -> Option<String> {
        self.on_air
            .lock()
            .expect("channels lock")
            .iter()
            .find(|(_, c)| c.session == session)
            .map(|(channel, _)| channel.clone())
    }
}

/// `POST /whip/channel/{channel_id}`
pub(crate) async fn publish(
    State(channels): State<Arc<Channels>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    offer: Bytes,
) -> Result<Response, Reply> {
    let sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/sdp"));
    if !sdp {
        return Ok((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The offer is sent as application/sdp (RFC 9725).",
        )
            .into_response());
    }
    let session = session(&channels.imageflux, &headers).await?;
    session.caller.may(Need::Delivery)?;
    let schedule = channels
        .imageflux
        .services
        .store
        .imageflux()
        .schedule_on_channel(&channel)
        .await?
        .filter(|s| s.system_id == session.system_id)
        .ok_or(ApiError::NotFound("そのチャンネルはありません。"))?;
    let now = channels.imageflux.services.clock.now().0;
    let opens = schedule.start_at - EARLY.as_millis() as i64;
    if now < opens || now >= schedule.end_at {
        return Err(ApiError::Conflict(format!(
            "配信時間外です。{} から {} まで配信できます（開始10分前から）。",
            jst(opens).nexmile(),
            jst(schedule.end_at).nexmile()
        ))
        .into());
    }
    if channels
        .on_air
        .lock()
        .expect("channels lock")
        .contains_key(&channel)
    {
        return Err(ApiError::Conflict("このチャンネルはすでに配信中です。".into()).into());
    }
    let offer = offer_description(&String::from_utf8_lossy(&offer));
    let (events, mut lost) = mpsc::unbounded_channel();
    let refused = |e: String| ApiError::Malformed(format!("SDPを受け付けられません: {e}"));
    let media =
        MediaRoom::start(&channels.imageflux.services.media).map_err(|e| refused(e.to_string()))?;
    let publisher = LegSpec {
        publishes: Some(PUBLISHED),
        receives: None,
        paces_publisher: false,
    };
    let (_, answer) = media
        .open(&offer, publisher, events)
        .await
        .map_err(|e| refused(e.to_string()))?;
    let answer = answer_sdp(&answer).map_err(refused)?;
    // Decoding and encoding the renditions is CPU work: a blocking thread,
    // until the publisher leaves.
    let (tap, renditions) = (
        media.tap(PUBLISHED),
        channels.hls.open(&channel, &schedule.ladder),
    );
    tokio::task::spawn_blocking(move || crate::hls::packager::run(tap, renditions));
    channels.imageflux.social.open_if_missing(&channel);
    let id = uuid::Uuid::new_v4().simple().to_string();
    channels.on_air.lock().expect("channels lock").insert(
        channel.clone(),
        OnAir {
            session: id.clone(),
            media,
            publisher: session.name.clone(),
        },
    );
    tracing::info!("channel {channel}: on air ({})", schedule.name);
    // Off air when the media is lost or the schedule ends.
    let until_end = Duration::from_millis(u64::try_from(schedule.end_at - now).unwrap_or(0));
    let (watcher, session_id) = (Arc::clone(&channels), id.clone());
    tokio::spawn(async move {
        let ended = tokio::time::sleep(watcher.imageflux.services.clock.real(until_end));
        tokio::pin!(ended);
        loop {
            tokio::select! {
                () = &mut ended => break,
                event = lost.recv() => match event {
                    None | Some((_, LegEvent::Lost)) => break,
                    Some(_) => {}
                },
            }
        }
        watcher.stop(&channel, Some(&session_id));
    });
    let mut reply = (StatusCode::CREATED, answer).into_response();
    let headers = reply.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/whip/channel-session/{id}")) {
        headers.insert(header::LOCATION, location);
    }
    Ok(reply)
}

/// `DELETE /whip/channel-session/{id}`: the broadcast ends.
pub(crate) async fn stop(
    State(channels): State<Arc<Channels>>,
    Path(id): Path<String>,
) -> Response {
    match channels.channel_of(&id) {
        Some(channel) if channels.stop(&channel, Some(&id)) => StatusCode::OK.into_response(),
        _ => (StatusCode::NOT_FOUND, "No such WHIP session.").into_response(),
    }
}
