//! The HLS ladder of a scheduled channel (`imageflux_params`): one
//! rendition per rung. A rung whose picture size is the broadcaster's is
//! packaged as sent (no transcoding); any other is decoded once for all,
//! scaled, re-encoded at the rung's frame rate and bit rate with a keyframe
//! exactly every `durationSeconds`, and packaged. Sound (Opus) is passed
//! through to every rendition: re-encoding it is avoidable, so the rungs'
//! `audio.bps` is declared in the playlist, not applied.
//!
//! Runs on a blocking thread: decoding and encoding are CPU work.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexmile_compat::imageflux::HlsRung;
use nexmile_media::codec::{H264Decoder, H264Encoder};
use nexmile_media::convert::Scaler;
use nexmile_media::frame::{MediaTime, VideoFrame};
use nexmile_sfu::{Tap, Tapped};

use crate::hls::HlsChannel;
use crate::media::recording::{Piece, Recording, Tracks, keyframe_size};

/// A passthrough rendition's keyframe is asked for this long before its
/// segment is due (it arrives about then), and again after
/// [`KEYFRAME_REASK`] if the sender let the request pass.
const KEYFRAME_LEAD_SECS: f64 = 0.4;
const KEYFRAME_REASK: Duration = Duration::from_millis(500);

/// One rung and where its segments go.
pub struct Rendition {
    pub rung: HlsRung,
    pub hls: Arc<Mutex<HlsChannel>>,
}

/// A rung re-encoded from the decoded source.
struct Transcoder {
    scaler: Scaler,
    encoder: H264Encoder,
    size: (u32, u32),
    frame_gap: Duration,
    /// Source time the next kept picture is due at, and of the last one kept.
    next_due: Duration,
    last_kept: Option<Duration>,
    last_keyframe: Option<Duration>,
}

impl Transcoder {
    fn new(rung: &HlsRung) -> Option<Self> {
        let video = rung.video.as_ref()?;
        let encoder = H264Encoder::new(video.bps, video.fps as f32)
            .inspect_err(|e| tracing::error!("hls rung {}x{}: {e}", video.width, video.height))
            .ok()?;
        Some(Self {
            scaler: Scaler::default(),
            encoder,
            size: (video.width, video.height),
            frame_gap: Duration::from_secs(1) / video.fps.max(1),
            next_due: Duration::ZERO,
            last_kept: None,
            last_keyframe: None,
        })
    }

    /// The rung's picture for a source picture at `at` (source time), if
    /// one is due: Annex-B and the step since the previous one.
    fn picture(
        &mut self,
        frame: &VideoFrame,
        at: Duration,
        segment: Duration,
    ) -> Option<(Vec<u8>, Duration)> {
        if at < self.next_due {
            return None;
        }
        // On a schedule, not from the last picture kept: 12 fps from 30 keeps 2 or 3 of 5.
        self.next_due = if self.next_due + self.frame_gap < at {
            at + self.frame_gap
        } else {
            self.next_due + self.frame_gap
        };
        let scaled = self
            .scaler
            .scale(frame, self.size.0, self.size.1)
            .inspect_err(|e| tracing::warn!("hls scale: {e}"))
            .ok()?;
        if self
            .last_keyframe
            .is_some_and(|k| at.saturating_sub(k) >= segment)
        {
            self.encoder.request_keyframe();
        }
        let now_us = i64::try_from(at.as_micros()).unwrap_or(i64::MAX);
        let encoded = self
            .encoder
            .encode(&scaled, now_us)
            .inspect_err(|e| tracing::warn!("hls encode: {e}"))
            .ok()??;
        if encoded.keyframe {
            self.last_keyframe = Some(at);
        }
        let step = self
            .last_kept
            .map_or(self.frame_gap, |last| at.saturating_sub(last));
        self.last_kept = Some(at);
        Some((encoded.data, step))
    }
}

enum Route {
    /// The source's size is not known yet (no keyframe seen).
    Undecided,
    Passthrough,
    Transcode(Box<Transcoder>),
}

struct Output {
    rendition: Rendition,
    recording: Recording,
    route: Route,
    /// When the current segment's first picture arrived (packaging delay).
    segment_began: Duration,
}

impl Output {
    fn publish(
        &mut self,
        pieces: Result<Vec<Piece>, crate::media::recording::RecordingError>,
        now: Duration,
    ) {
        let pieces = match pieces {
            Ok(pieces) => pieces,
            Err(e) => return tracing::warn!("hls: {e}"),
        };
        for piece in pieces {
            let mut channel = self.rendition.hls.lock().expect("hls lock");
            match piece {
                Piece::Init(init) => {
                    let size = self.recording.dimensions();
                    channel.start(init, self.recording.codecs(), Some(size));
                }
                Piece::Fragment(fragment) => {
                    let waited = now.saturating_sub(self.segment_began).as_millis();
                    channel.push(fragment, u64::try_from(waited).unwrap_or(u64::MAX));
                }
            }
            self.segment_began = now;
        }
    }
}

/// Packages the tapped source into every rendition until it closes.
pub(crate) fn run(tap: Tap, renditions: Vec<Rendition>) {
    let Tap {
        media: mut inbox,
        keyframes,
    } = tap;
    let ask = || keyframes.ask();
    let mut outputs: Vec<Output> = renditions
        .into_iter()
        .map(|rendition| Output {
            recording: Recording::new(
                Tracks::AudioVideo,
                f64::from(rendition.rung.duration_seconds),
            ),
            rendition,
            route: Route::Undecided,
            segment_began: Duration::ZERO,
        })
        .collect();
    let Some(segment_secs) = outputs.first().map(|o| o.rendition.rung.duration_seconds) else {
        return;
    };
    let segment = Duration::from_secs(u64::from(segment_secs));
    let started = Instant::now();
    let mut decoder: Option<H264Decoder> = None;
    let mut source_time = Duration::ZERO;
    let mut asked: Option<Duration> = None;
    ask();
    while let Some(input) = inbox.blocking_recv() {
        let now = started.elapsed();
        let (data, step) = match input {
            Tapped::Audio { data } => {
                for output in &mut outputs {
                    let pieces = output.recording.on_audio(&data, now);
                    output.publish(pieces, now);
                }
                continue;
            }
            Tapped::Video { data, duration } => (data, duration),
        };
        source_time += step;
        if matches!(outputs[0].route, Route::Undecided) {
            let Some(size) = keyframe_size(&data) else {
                ask();
                continue;
            };
            for output in &mut outputs {
                output.route = decide(&output.rendition.rung, size);
            }
            if outputs
                .iter()
                .any(|o| matches!(o.route, Route::Transcode(_)))
            {
                decoder = H264Decoder::new()
                    .inspect_err(|e| tracing::error!("hls decoder: {e}"))
                    .ok();
            }
        }
        let decoded = decoder.as_mut().and_then(|d| {
            d.decode(&data, MediaTime::now())
                .inspect_err(|e| {
                    tracing::warn!("hls decode: {e}");
                    ask();
                })
                .ok()
                .flatten()
        });
        let mut due = false;
        for output in &mut outputs {
            match &mut output.route {
                Route::Passthrough => {
                    let pieces = output.recording.on_video(&data, step, now);
                    output.publish(pieces, now);
                    due |= output.recording.waiting_for_keyframe()
                        || output.recording.buffered_secs()
                            >= f64::from(segment_secs) - KEYFRAME_LEAD_SECS;
                }
                Route::Transcode(transcoder) => {
                    let Some(frame) = &decoded else { continue };
                    if let Some((picture, step)) = transcoder.picture(frame, source_time, segment) {
                        let pieces = output.recording.on_video(&picture, step, now);
                        output.publish(pieces, now);
                    }
                }
                Route::Undecided => {}
            }
        }
        if due && asked.is_none_or(|at| now.saturating_sub(at) >= KEYFRAME_REASK) {
            ask();
            asked = Some(now);
        } else if !due {
            asked = None;
        }
    }
    for output in &mut outputs {
        let now = started.elapsed();
        if let Ok(Some(last)) = output.recording.finish() {
            output.publish(Ok(vec![Piece::Fragment(last)]), now);
        }
        output.rendition.hls.lock().expect("hls lock").end();
    }
}

/// Passed through when the rung is the source's size (or names no video);
/// transcoded otherwise.
fn decide(rung: &HlsRung, source: (u32, u32)) -> Route {
    match &rung.video {
        Some(video) if (video.width, video.height) != source => {
            Transcoder::new(rung).map_or(Route::Passthrough, |t| Route::Transcode(Box::new(t)))
        }
        _ => Route::Passthrough,
    }
}
