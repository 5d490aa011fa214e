//! HLS output of a scheduled channel: the broadcaster's stream as the SFU
//! relays it, packaged into CMAF (fragmented MP4: H.264 in `avc3`, Opus)
//! segments of the schedule's `durationSeconds`, one rendition per rung of
//! its ladder (see `hls_packager`), with sliding live playlists, so any HTTP
//! cache or CDN can serve the viewers.
//!
//! [`HlsChannel`] is one rendition's sans-IO state: pieces from the packager
//! go in, playlists and segments come out. `GET /hls/{channel}/index.m3u8`
//! (the multivariant playlist `/api/view` names), then per rendition
//! `/hls/{channel}/{n}/stream.m3u8`, `init.mp4`, `<sequence>.m4s`.

pub(crate) mod packager;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use m3u8_rs::{Map, MasterPlaylist, MediaPlaylist, MediaSegment, Resolution, Start, VariantStream};
use nexmile_compat::imageflux::HlsRung;
use nexmile_fmp4::Fragment;

use crate::hls::packager::Rendition;

/// How long a channel's last segments stay served after it went off air.
const KEPT_AFTER_END: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Segments a playlist lists; a few more stay fetchable for players behind.
const LISTED: usize = 6;
const KEPT: usize = 12;

struct Segment {
    sequence: u64,
    bytes: Bytes,
    seconds: f64,
    /// From the arrival of its first picture to its publication (ms).
    packaging_ms: u64,
}

/// One channel's HLS state.
pub struct HlsChannel {
    segment_secs: u32,
    start_offset: i32,
    init: Option<Bytes>,
    codecs: String,
    resolution: Option<(u32, u32)>,
    segments: VecDeque<Segment>,
    next_sequence: u64,
    bytes_total: u64,
    seconds_total: f64,
    /// When the live went off air.
    ended: Option<std::time::Instant>,
}

/// The packaging figures of a channel, for the administrator and the tests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HlsFigures {
    pub segments: u64,
    pub median_segment_secs: f64,
    /// From a segment's first picture arriving to the segment being served.
    pub median_packaging_ms: u64,
    pub average_bps: u64,
}

impl HlsChannel {
    pub fn new(segment_secs: u32, start_offset: i32) -> Self {
        Self {
            segment_secs: segment_secs.max(1),
            start_offset,
            init: None,
            codecs: String::new(),
            resolution: None,
            segments: VecDeque::new(),
            next_sequence: 0,
            bytes_total: 0,
            seconds_total: 0.0,
            ended: None,
        }
    }

    pub fn segment_secs(&self) -> u32 {
        self.segment_secs
    }

    /// The init segment, with the RFC 6381 codecs and picture size it declares.
    pub fn start(&mut self, init: Vec<u8>, codecs: String, resolution: Option<(u32, u32)>) {
        self.init = Some(Bytes::from(init));
        self.codecs = codecs;
        self.resolution = resolution;
    }

    /// A segment ready `packaging_ms` after its first picture arrived.
    pub fn push(&mut self, fragment: Fragment, packaging_ms: u64) {
        self.bytes_total += fragment.bytes.len() as u64;
        self.seconds_total += fragment.seconds;
        self.segments.push_back(Segment {
            sequence: self.next_sequence,
            bytes: Bytes::from(fragment.bytes),
            seconds: fragment.seconds,
            packaging_ms,
        });
        self.next_sequence += 1;
        while self.segments.len() > KEPT {
            self.segments.pop_front();
        }
    }

    pub fn end(&mut self) {
        self.ended.get_or_insert_with(std::time::Instant::now);
    }

    fn listed(&self) -> impl Iterator<Item = &Segment> {
        self.segments
            .iter()
            .skip(self.segments.len().saturating_sub(LISTED))
    }

    fn bandwidth(&self) -> u64 {
        if self.seconds_total > 0.0 {
            (self.bytes_total as f64 * 8.0 / self.seconds_total) as u64
        } else {
            0
        }
    }

    /// This rendition in the multivariant playlist, once it has started:
    /// its measured peak rate, or the rung's declared one if higher.
    fn variant(&self, uri: String, rung: &HlsRung) -> Option<VariantStream> {
        self.init.as_ref()?;
        let peak = self
            .segments
            .iter()
            .map(|s| (s.bytes.len() as f64 * 8.0 / s.seconds.max(0.001)) as u64)
            .max()
            .unwrap_or(0);
        let declared = rung.video.as_ref().map_or(0, |v| u64::from(v.bps))
            + rung.audio.as_ref().map_or(0, |a| u64::from(a.bps));
        Some(VariantStream {
            uri,
            bandwidth: peak.max(declared).max(self.bandwidth()).max(1),
            average_bandwidth: Some(self.bandwidth()).filter(|b| *b > 0),
            codecs: Some(self.codecs.clone()),
            resolution: self.resolution.map(|(width, height)| Resolution {
                width: u64::from(width),
                height: u64::from(height),
            }),
            frame_rate: rung.video.as_ref().map(|v| f64::from(v.fps)),
            ..VariantStream::default()
        })
    }

    /// The media playlist: the newest segments, ended once the live is.
    pub fn media(&self) -> Option<String> {
        self.init.as_ref()?;
        let listed: Vec<&Segment> = self.listed().collect();
        let first = listed.first()?;
        // A segment is cut at the first keyframe after durationSeconds; the
        // target covers the longest one listed (rounded as RFC 8216 §4.3.3.1 says).
        let longest = listed.iter().map(|s| s.seconds).fold(0.0_f64, f64::max);
        let segments = listed
            .iter()
            .enumerate()
            .map(|(i, s)| MediaSegment {
                uri: format!("{}.m4s", s.sequence),
                duration: s.seconds as f32,
                map: (i == 0).then(|| Map {
                    uri: "init.mp4".into(),
                    ..Map::default()
                }),
                ..MediaSegment::default()
            })
            .collect();
        let playlist = MediaPlaylist {
            version: Some(7),
            target_duration: (longest.round() as u64).max(u64::from(self.segment_secs)),
            media_sequence: first.sequence,
            segments,
            end_list: self.ended.is_some(),
            start: (self.start_offset < 0).then(|| Start {
                time_offset: f64::from(self.start_offset),
                ..Start::default()
            }),
            ..MediaPlaylist::default()
        };
        let mut out = Vec::new();
        playlist.write_to(&mut out).ok()?;
        String::from_utf8(out).ok()
    }

    pub fn init(&self) -> Option<Bytes> {
        self.init.clone()
    }

    pub fn segment(&self, sequence: u64) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|s| s.sequence == sequence)
            .map(|s| s.bytes.clone())
    }

    pub fn figures(&self) -> HlsFigures {
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or(0.0)
        };
        HlsFigures {
            segments: self.next_sequence,
            median_segment_secs: median(self.segments.iter().map(|s| s.seconds).collect()),
            median_packaging_ms: median(
                self.segments
                    .iter()
                    .map(|s| s.packaging_ms as f64)
                    .collect(),
            ) as u64,
            average_bps: self.bandwidth(),
        }
    }
}

/// A channel's renditions, in the schedule's rung order.
type Ladder = Vec<(HlsRung, Arc<Mutex<HlsChannel>>)>;

/// Every channel's HLS state, by channel id (kept after the live ends, so
/// players see the end of the playlists).
#[derive(Default)]
pub struct HlsChannels {
    channels: Mutex<HashMap<String, Ladder>>,
}

impl HlsChannels {
    /// Fresh renditions for a channel going live (a new broadcast replaces
    /// the last). Channels off air for [`KEPT_AFTER_END`] are dropped.
    pub fn open(&self, channel: &str, rungs: &[HlsRung]) -> Vec<Rendition> {
        let ladder: Ladder = rungs
            .iter()
            .map(|rung| {
                let state = HlsChannel::new(rung.duration_seconds, rung.start_time_offset);
                (rung.clone(), Arc::new(Mutex::new(state)))
            })
            .collect();
        let renditions = ladder
            .iter()
            .map(|(rung, hls)| Rendition {
                rung: rung.clone(),
                hls: Arc::clone(hls),
            })
            .collect();
        let mut channels = self.channels.lock().expect("hls lock");
        channels.retain(|_, ladder| {
            !ladder.iter().all(|(_, hls)| {
                let ended = hls.lock().expect("hls channel lock").ended;
                ended.is_some_and(|at| at.elapsed() > KEPT_AFTER_END)
            })
        });
        channels.insert(channel.to_owned(), ladder);
        renditions
    }

    fn ladder(&self, channel: &str) -> Option<Ladder> {
        self.channels
            .lock()
            .expect("hls lock")
            .get(channel)
            .cloned()
    }

    fn read<T>(
        &self,
        channel: &str,
        rendition: usize,
        read: impl FnOnce(&HlsChannel) -> Option<T>,
    ) -> Option<T> {
        let ladder = self.ladder(channel)?;
        let state = ladder.get(rendition)?.1.lock().expect("hls channel lock");
        read(&state)
    }

    /// The multivariant playlist: every rendition that has started.
    pub fn multivariant(&self, channel: &str) -> Option<String> {
        let ladder = self.ladder(channel)?;
        let variants: Vec<VariantStream> = ladder
            .iter()
            .enumerate()
            .filter_map(|(i, (rung, hls))| {
                hls.lock()
                    .expect("hls channel lock")
                    .variant(format!("{i}/stream.m3u8"), rung)
            })
            .collect();
        if variants.is_empty() {
            return None;
        }
        let playlist = MasterPlaylist {
            version: Some(7),
            independent_segments: true,
            variants,
            ..MasterPlaylist::default()
        };
        let mut out = Vec::new();
        playlist.write_to(&mut out).ok()?;
        String::from_utf8(out).ok()
    }

    /// Each rendition's packaging figures, in rung order.
    pub fn figures(&self, channel: &str) -> Option<Vec<HlsFigures>> {
        let ladder = self.ladder(channel)?;
        Some(
            ladder
                .iter()
                .map(|(_, hls)| hls.lock().expect("hls channel lock").figures())
                .collect(),
        )
    }
}

fn served(body: impl Into<axum::body::Body>, content_type: &'static str, max_age: u32) -> Response {
    let mut reply = (StatusCode::OK, body.into()).into_response();
    let headers = reply.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Playlists change every segment; segments never do.
    if let Ok(cache) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    reply
}

fn not_yet() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": "この配信はまだ始まっていないか、ありません。" })),
    )
        .into_response()
}

const PLAYLIST: &str = "application/vnd.apple.mpegurl";

/// `GET /hls/{channel}/index.m3u8`: the multivariant playlist.
pub(crate) async fn index(
    State(hls): State<Arc<HlsChannels>>,
    Path((channel, file)): Path<(String, String)>,
) -> Response {
    match file.as_str() {
        "index.m3u8" => hls
            .multivariant(&channel)
            .map(|text| served(text, PLAYLIST, 1)),
        _ => None,
    }
    .unwrap_or_else(not_yet)
}

/// `GET /hls/{channel}/{rendition}/{file}`: a rendition's playlist and segments.
pub(crate) async fn file(
    State(hls): State<Arc<HlsChannels>>,
    Path((channel, rendition, file)): Path<(String, usize, String)>,
) -> Response {
    let read = |f: &dyn Fn(&HlsChannel) -> Option<Response>| hls.read(&channel, rendition, f);
    match file.as_str() {
        "stream.m3u8" => read(&|c| c.media().map(|text| served(text, PLAYLIST, 1))),
        "init.mp4" => read(&|c| c.init().map(|bytes| served(bytes, "video/mp4", 3600))),
        segment => segment
            .strip_suffix(".m4s")
            .and_then(|n| n.parse().ok())
            .and_then(|n: u64| {
                read(&|c| {
                    c.segment(n)
                        .map(|bytes| served(bytes, "video/iso.segment", 3600))
                })
            }),
    }
    .unwrap_or_else(not_yet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(seconds: f64) -> Fragment {
        Fragment {
            bytes: vec![0; 1000],
            seconds,
            independent: true,
        }
    }

    #[test]
    fn the_playlist_slides_and_ends() {
        let mut channel = HlsChannel::new(2, -4);
        assert!(channel.media().is_none(), "nothing before the init segment");
        channel.start(vec![1, 2, 3], "avc3.42e01f,opus".into(), Some((640, 480)));
        for _ in 0..8 {
            channel.push(fragment(2.1), 2100);
        }
        let media = channel.media().unwrap();
        assert!(media.contains("#EXT-X-MEDIA-SEQUENCE:2"), "{media}");
        assert!(media.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{media}");
        assert!(media.contains("#EXT-X-TARGETDURATION:2"), "{media}");
        assert!(media.contains("#EXT-X-START:TIME-OFFSET=-4"), "{media}");
        assert_eq!(media.matches("#EXTINF:2.1").count(), LISTED);
        assert!(!media.contains("#EXT-X-ENDLIST"));
        let rung = nexmile_compat::imageflux::default_ladder().remove(0);
        let variant = channel.variant("0/stream.m3u8".into(), &rung).unwrap();
        assert_eq!(variant.codecs.as_deref(), Some("avc3.42e01f,opus"));
        assert_eq!(
            variant.resolution.map(|r| (r.width, r.height)),
            Some((640, 480))
        );
        assert_eq!(
            variant.bandwidth, 2_564_000,
            "the rung's rate, above the measured"
        );
        assert!(channel.segment(0).is_some() && channel.segment(8).is_none());
        channel.end();
        assert!(channel.media().unwrap().contains("#EXT-X-ENDLIST"));
        assert_eq!(channel.figures().median_packaging_ms, 2100);
    }
}
