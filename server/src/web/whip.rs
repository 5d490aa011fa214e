//! WHIP (RFC 9725) and WHEP: OBS Studio, GStreamer or any WHIP client
//! broadcasts into a Nexmile live, and any WHEP player watches one. The client is a broadcaster like the app: its request
//! becomes a connection on the hub that prepares the live (11), sends its
//! media offer, and starts (12); DELETE on the session ends it (13), as does
//! losing the media.
//!
//! `POST /whip/live/{linkId}` with `Authorization: Bearer <session token>`
//! (the token an activation gave; it names the site and the broadcaster)
//! and an SDP offer carrying its candidates (this server does not take
//! trickle ICE: PATCH is refused with 405, as §4.3.1 of the RFC allows).
//!
//! `POST /whep/live/{liveToken}/{linkId}` likewise watches a live as the
//! bearer's user (31, then 32 once the media connection is up, since a WHEP
//! player cannot report a decoded picture); DELETE on its session is 33.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexmile_core::signal::{ClientMessage, DeviceInfo, LiveNotice, ServerMessage};
use nexmile_core::wire::codes::OsType;
use tokio::sync::mpsc;

use crate::hub::{ConnCaps, ConnId, ConnKind};
use crate::limits::client_ip;
use crate::media::{answer_sdp, offer_description};
use crate::signalling::dispatch::Dispatcher;
use crate::signalling::sessions::device_of_bearer;

/// The WHIP and WHEP sessions, by resource id: their hub connection and live.
pub struct WhipSessions {
    dispatcher: Arc<Dispatcher>,
    by_id: Mutex<HashMap<String, (ConnId, String)>>,
}

impl WhipSessions {
    pub fn new(dispatcher: Arc<Dispatcher>) -> Self {
        Self {
            dispatcher,
            by_id: Mutex::default(),
        }
    }
}

/// How long the partner's 11 and the media answer may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

fn problem(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

/// Waits for the first message `pick` takes; an error or the live's end first is a refusal.
async fn next<T>(
    messages: &mut mpsc::Receiver<ServerMessage>,
    mut pick: impl FnMut(ServerMessage) -> Option<T>,
) -> Result<T, String> {
    let wait = async {
        while let Some(message) = messages.recv().await {
            match message {
                ServerMessage::Error { message } => return Err(message),
                ServerMessage::Live {
                    notice:
                        LiveNotice::Ended {
                            message, reason, ..
                        },
                    ..
                } => return Err(message.unwrap_or_else(|| format!("{reason:?}"))),
                other => {
                    if let Some(found) = pick(other) {
                        return Ok(found);
                    }
                }
            }
        }
        Err("the connection closed".into())
    };
    tokio::time::timeout(SETUP_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()))
}

/// What an HTTP media session does in a live.
enum Role {
    /// WHIP: broadcast a new live under this linkId.
    Publish { link_id: String },
    /// WHEP: watch this live, by the linkId of the viewer's link.
    Watch { live_token: String, link_id: String },
}

pub(crate) async fn publish(
    State(whip): State<Arc<WhipSessions>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(link_id): Path<String>,
    headers: HeaderMap,
    offer: Bytes,
) -> Response {
    let trusted = &whip.dispatcher.services.config.server.trusted_proxies;
    let ip = client_ip(peer.ip(), &headers, trusted);
    open_session(whip, ip, headers, offer, Role::Publish { link_id }).await
}

pub(crate) async fn watch(
    State(whip): State<Arc<WhipSessions>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((live_token, link_id)): Path<(String, String)>,
    headers: HeaderMap,
    offer: Bytes,
) -> Response {
    let trusted = &whip.dispatcher.services.config.server.trusted_proxies;
    let ip = client_ip(peer.ip(), &headers, trusted);
    open_session(
        whip,
        ip,
        headers,
        offer,
        Role::Watch {
            live_token,
            link_id,
        },
    )
    .await
}

async fn open_session(
    whip: Arc<WhipSessions>,
    ip: IpAddr,
    headers: HeaderMap,
    offer: Bytes,
    role: Role,
) -> Response {
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/sdp"));
    if !is_sdp {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/sdp",
        );
    }
    let services = &whip.dispatcher.services;
    let device = match device_of_bearer(services, &headers).await {
        Ok(Some(device)) => device,
        Ok(None) => {
            return problem(
                StatusCode::UNAUTHORIZED,
                "a valid session token is required",
            );
        }
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let Ok(offer) = String::from_utf8(offer.to_vec()) else {
        return problem(StatusCode::BAD_REQUEST, "the offer is not UTF-8");
    };
    let Ok(device_token) = device.device_token.parse() else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "a stored device token is invalid",
        );
    };
    let info = DeviceInfo {
        device_token,
        app_version: "1.0.0".into(),
        os_type: OsType::Browser,
        device_name: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("WHIP client")
            .chars()
            .take(64)
            .collect(),
        os_version: String::new(),
    };
    let (tx, mut messages) = crate::hub::outgoing();
    let caps = ConnCaps {
        per_ip: services.limits.section.connections_per_ip,
        per_device: services.limits.section.connections_per_device,
    };
    let conn = match services
        .hub
        .register(ConnKind::Http, device, info, ip, tx, caps)
    {
        Ok(conn) => conn,
        Err(message) => return problem(StatusCode::TOO_MANY_REQUESTS, &message),
    };
    let publishing = matches!(role, Role::Publish { .. });
    let setup = async {
        let first = match role {
            Role::Publish { link_id } => ClientMessage::PrepareBroadcast { link_id },
            Role::Watch {
                live_token,
                link_id,
            } => ClientMessage::ViewLive {
                live_token,
                link_id,
            },
        };
        whip.dispatcher.dispatch(conn, first).await;
        let live_token = next(&mut messages, |m| match m {
            ServerMessage::Live {
                live_token,
                notice: LiveNotice::Prepared(_),
            } => Some(live_token),
            _ => None,
        })
        .await?;
        let offer = offer_description(&offer);
        let live_token_for_media = live_token.clone();
        let media = if publishing {
            ClientMessage::BroadcastMedia {
                live_token: live_token_for_media,
                offer,
            }
        } else {
            ClientMessage::ReceiveLive {
                live_token: live_token_for_media,
                offer,
            }
        };
        whip.dispatcher.dispatch(conn, media).await;
        let answer = next(&mut messages, |m| match m {
            ServerMessage::MediaAnswer { answer, .. } => Some(answer),
            _ => None,
        })
        .await?;
        Ok::<_, String>((live_token, answer_sdp(&answer)?))
    };
    let (live_token, answer) = match setup.await {
        Ok(done) => done,
        Err(message) => {
            whip.dispatcher.disconnect(conn);
            return problem(StatusCode::FORBIDDEN, &message);
        }
    };
    if publishing {
        // On air at once: the client is sending already.
        whip.dispatcher
            .dispatch(
                conn,
                ClientMessage::StartBroadcast {
                    live_token: live_token.clone(),
                },
            )
            .await;
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    whip.by_id
        .lock()
        .expect("sessions lock")
        .insert(id.clone(), (conn, live_token.clone()));
    let (whip_end, id_end) = (Arc::clone(&whip), id.clone());
    tokio::spawn(async move {
        // The live goes on until it ends for this broadcaster (DELETE, the
        // media lost, an administrator); then the connection goes too.
        while let Some(message) = messages.recv().await {
            if let ServerMessage::Live {
                notice: LiveNotice::Ended { reason, .. },
                ..
            } = message
            {
                tracing::info!("whip {id_end}: the live ended ({reason:?})");
                break;
            }
        }
        whip_end
            .by_id
            .lock()
            .expect("sessions lock")
            .remove(&id_end);
        whip_end.dispatcher.disconnect(conn);
    });
    let location = if publishing {
        format!("/whip/session/{id}")
    } else {
        format!("/whep/session/{id}")
    };
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&live_token) {
        headers.insert("x-nexmile-live-token", value);
    }
    response
}

/// `DELETE /whip/session/{id}`: the broadcaster ends the live (13);
/// `DELETE /whep/session/{id}`: the viewer leaves it (33).
pub(crate) async fn stop(
    State(whip): State<Arc<WhipSessions>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    // RFC 9725: the DELETE carries the bearer token of the POST that made
    // the session; knowing its address is not enough (security review L2).
    let services = &whip.dispatcher.services;
    let shown = match device_of_bearer(services, &headers).await {
        Ok(Some(device)) => device,
        Ok(None) => {
            return problem(
                StatusCode::UNAUTHORIZED,
                "the session token the session was made with is required",
            );
        }
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let found = whip.by_id.lock().expect("sessions lock").get(&id).cloned();
    let Some((conn, live_token)) = found else {
        return problem(StatusCode::NOT_FOUND, "no such WHIP session");
    };
    let owner = services.hub.view(conn).map(|view| view.device);
    if !owner.is_some_and(|o| o.site == shown.site && o.device_token == shown.device_token) {
        return problem(
            StatusCode::FORBIDDEN,
            "this session belongs to another device",
        );
    }
    whip.dispatcher
        .dispatch(conn, ClientMessage::LeaveLive { live_token })
        .await;
    StatusCode::OK.into_response()
}

/// `PATCH /whip/session/{id}`: trickle ICE and ICE restarts are not taken.
pub(crate) async fn patch() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}
