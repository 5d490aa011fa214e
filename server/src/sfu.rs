//! The media relay of calls, video tests and ingest channels: one WebRTC
//! connection (a leg) per participant, terminated at the server, on the
//! `webrtc` crate. Video arrives as RTP, is reassembled into whole pictures
//! and sent on the legs it goes to (the other side of a call; the HLS
//! packager); Opus packets are passed on as they are. Lives, which fan out
//! to hundreds, run on [`crate::live_media`] instead. Each leg has its own congestion control, retransmissions and
//! keyframe requests, and a bounded queue that drops rather than lets a slow
//! receiver hold up the sender or the other receivers.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexmile_media::h264_rtp::H264Depacketizer;
use nexmile_media::reassembly::{AssemblerAction, FrameAssembler};
use nexmile_media::transport::{MediaKind, Peer, PeerConfig, PeerEvent, TransportError};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::hls_packager::Rendition;
use crate::keyframe_pacer::KeyframePacer;
use crate::recording::{RECORDING_FRAGMENT_SECS, Recording, Tracks};

/// A side of a two-party room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// What a leg reports to its room's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEvent {
    /// The first media packet from this side's client arrived.
    MediaArrived(Side),
    /// This side's connection failed or closed.
    Lost(Side),
    /// This side's connection is up (ICE and DTLS done).
    Connected(Side),
}

/// What a leg's task takes: media to send, or a request.
#[derive(Clone)]
pub(crate) enum LegInput {
    Video { data: Vec<u8>, duration: Duration },
    Audio { data: Vec<u8> },
    RequestKeyframe,
    Close,
}

/// Where a leg's received media goes (the other side of a call, the viewers
/// of a live) and where its receiver's keyframe requests go (the source).
#[derive(Default)]
struct Targets {
    media: Vec<mpsc::Sender<LegInput>>,
    source: Option<mpsc::Sender<LegInput>>,
}

type Sink = Arc<Mutex<Targets>>;

/// Media waiting for a slow leg; beyond it packets are dropped.
const QUEUE: usize = 256;
/// A recorder's queue: deeper, since a lost picture spoils the file until
/// the next keyframe, and a disk stalls longer than a network leg.
pub(crate) const RECORDER_QUEUE: usize = 2048;
const VIDEO_CLOCK: u32 = 90_000;

pub struct Leg {
    input: mpsc::Sender<LegInput>,
    /// Where this leg's received media is forwarded.
    sink: Sink,
}

impl Leg {
    /// Answers a client's offer and starts relaying; returns the leg and the answer.
    pub async fn open(
        bind: &[IpAddr],
        offer: &str,
        side: Side,
        events: mpsc::UnboundedSender<LegEvent>,
    ) -> Result<(Self, String), TransportError> {
        let mut peer = Peer::new(PeerConfig {
            bind: bind.to_vec(),
            ..PeerConfig::default()
        })
        .await?;
        let answer = peer.answer(offer).await?;
        let (input, inbox) = mpsc::channel(QUEUE);
        let sink: Sink = Arc::default();
        tokio::spawn(relay(peer, side, inbox, Arc::clone(&sink), events));
        Ok((Self { input, sink }, answer))
    }

    fn route(&self, media: Vec<mpsc::Sender<LegInput>>, source: Option<&Leg>) {
        *self.sink.lock().expect("sink lock") = Targets {
            media,
            source: source.map(|s| s.input.clone()),
        };
    }

    /// Sends each leg's media to the other and asks for a fresh keyframe both ways.
    pub fn link(a: &Leg, b: &Leg) {
        a.route(vec![b.input.clone()], Some(b));
        b.route(vec![a.input.clone()], Some(a));
        let _ = a.input.try_send(LegInput::RequestKeyframe);
        let _ = b.input.try_send(LegInput::RequestKeyframe);
    }

    /// Returns this leg's media to its own client (the video test).
    pub fn echo(&self) {
        self.route(vec![self.input.clone()], Some(self));
        let _ = self.input.try_send(LegInput::RequestKeyframe);
    }

    /// Packages the source's media as HLS, one rendition per rung, on a
    /// blocking thread (decoding and encoding are CPU work) until the source closes.
    pub fn package(source: &Leg, renditions: Vec<Rendition>) {
        let (inbox, asks) = Leg::tap(source);
        tokio::task::spawn_blocking(move || crate::hls_packager::run(inbox, &asks, renditions));
    }

    /// The source's media, for a packager (a deep queue: a lost picture
    /// spoils its output until the next keyframe), and where its keyframe
    /// requests go.
    fn tap(source: &Leg) -> (mpsc::Receiver<LegInput>, mpsc::Sender<LegInput>) {
        let (input, inbox) = mpsc::channel(RECORDER_QUEUE);
        source.sink.lock().expect("sink lock").media.push(input);
        (inbox, source.input.clone())
    }

    pub fn close(&self) {
        let input = self.input.clone();
        tokio::spawn(async move {
            let _ = input.send(LegInput::Close).await;
        });
    }
}

/// Media to every target; a full queue means that receiver is not keeping
/// up: its copy is dropped (it asks for a keyframe later), the others go on.
/// The last target takes the media itself: a call's one target costs no copy.
fn forward(sink: &Sink, input: LegInput) {
    let mut targets = sink.lock().expect("sink lock");
    targets.media.retain(|target| !target.is_closed());
    if let Some((last, others)) = targets.media.split_last() {
        for target in others {
            let _ = target.try_send(input.clone());
        }
        let _ = last.try_send(input);
    }
}

/// A keyframe request from this leg's receiver, to the source of its media.
fn ask_source(sink: &Sink) {
    if let Some(source) = &sink.lock().expect("sink lock").source {
        let _ = source.try_send(LegInput::RequestKeyframe);
    }
}

pub(crate) async fn recorder(
    mut inbox: mpsc::Receiver<LegInput>,
    path: PathBuf,
    tracks: Tracks,
    source: mpsc::Sender<LegInput>,
) {
    let opened = match path.parent() {
        Some(dir) => tokio::fs::create_dir_all(dir).await,
        None => Ok(()),
    };
    let file = match opened {
        Ok(()) => tokio::fs::File::create(&path).await,
        Err(e) => Err(e),
    };
    let mut file = match file {
        Ok(file) => file,
        Err(e) => {
            tracing::error!("recording {}: {e}", path.display());
            return;
        }
    };
    let _ = source.try_send(LegInput::RequestKeyframe);
    let started = tokio::time::Instant::now();
    let mut recording = Recording::new(tracks, RECORDING_FRAGMENT_SECS);
    loop {
        let pieces = match inbox.recv().await {
            None | Some(LegInput::Close) => break,
            Some(LegInput::Video { data, duration }) => {
                let pieces = recording.on_video(&data, duration, started.elapsed());
                if recording.waiting_for_keyframe() {
                    let _ = source.try_send(LegInput::RequestKeyframe);
                }
                pieces
            }
            Some(LegInput::Audio { data }) => recording.on_audio(&data, started.elapsed()),
            Some(LegInput::RequestKeyframe) => continue,
        };
        match pieces {
            Ok(pieces) => {
                for piece in pieces {
                    if let Err(e) = file.write_all(piece.bytes()).await {
                        tracing::error!("recording {}: {e}; the recording stops", path.display());
                        return;
                    }
                }
            }
            // A broken keyframe: wait for the next (asked for above).
            Err(e) => tracing::warn!("recording {}: {e}", path.display()),
        }
    }
    let last = recording.finish().unwrap_or_else(|e| {
        tracing::warn!("recording {}: {e}", path.display());
        None
    });
    if let Err(e) = async {
        if let Some(last) = last {
            file.write_all(&last.bytes).await?;
        }
        file.sync_all().await
    }
    .await
    {
        tracing::error!("recording {}: {e}", path.display());
        return;
    }
    let (width, height) = recording.dimensions();
    tracing::info!(
        "recorded {}: {} pictures ({width}x{height}), {} sound packets",
        path.display(),
        recording.video_frames(),
        recording.audio_packets()
    );
}

/// A picture lasts until the next one: the RTP clock's step from the last
/// picture (`last`, updated), or a 30 fps picture's when the step is not plausible.
pub(crate) fn picture_duration(last: &mut Option<u32>, timestamp: u32) -> Duration {
    let step = last
        .map(|last| timestamp.wrapping_sub(last))
        .filter(|step| *step > 0 && *step < VIDEO_CLOCK)
        .unwrap_or(VIDEO_CLOCK / 30);
    *last = Some(timestamp);
    Duration::from_micros(u64::from(step) * 1_000_000 / u64::from(VIDEO_CLOCK))
}

async fn relay(
    mut peer: Peer,
    side: Side,
    mut inbox: mpsc::Receiver<LegInput>,
    sink: Sink,
    events: mpsc::UnboundedSender<LegEvent>,
) {
    let mut assembler = FrameAssembler::new(H264Depacketizer);
    let mut housekeeping = tokio::time::interval(Duration::from_millis(10));
    let mut media_seen = false;
    let mut last_timestamp: Option<u32> = None;
    // Many viewers joining or losing pictures at once cost one keyframe.
    let mut keyframes = KeyframePacer::default();
    loop {
        let mut actions = Vec::new();
        tokio::select! {
            event = peer.next_event() => match event {
                None | Some(PeerEvent::Disconnected) => {
                    let _ = events.send(LegEvent::Lost(side));
                    break;
                }
                Some(PeerEvent::Connected) => {
                    let _ = events.send(LegEvent::Connected(side));
                }
                Some(PeerEvent::Rtp { kind, packet, arrival_us }) => {
                    if !media_seen {
                        media_seen = true;
                        let _ = events.send(LegEvent::MediaArrived(side));
                    }
                    match kind {
                        MediaKind::Video => actions = assembler.insert(packet, arrival_us),
                        MediaKind::Audio => forward(&sink, LegInput::Audio { data: packet.payload }),
                    }
                }
                Some(PeerEvent::KeyframeRequested) => {
                    // The receiver behind this leg lost a picture: ask its source.
                    ask_source(&sink);
                }
                Some(_) => {}
            },
            input = inbox.recv() => match input {
                None | Some(LegInput::Close) => break,
                Some(LegInput::Video { data, duration }) => {
                    let _ = peer.send_video(&data, duration).await;
                }
                Some(LegInput::Audio { data }) => {
                    let _ = peer.send_audio(&data, Duration::from_millis(20)).await;
                }
                Some(LegInput::RequestKeyframe) => keyframes.want(),
            },
            _ = housekeeping.tick() => actions = assembler.poll(peer.now_us()),
        }
        for action in actions {
            match action {
                AssemblerAction::Frame(frame) => {
                    let duration = picture_duration(&mut last_timestamp, frame.rtp_timestamp);
                    forward(
                        &sink,
                        LegInput::Video {
                            data: frame.data,
                            duration,
                        },
                    );
                }
                AssemblerAction::RequestKeyframe => {
                    let _ = peer.request_keyframe().await;
                }
                // The transport's NACK interceptor asks for retransmissions itself.
                AssemblerAction::Nack(_) => {}
            }
        }
        // A request held by the gap goes on a later turn (the housekeeping tick).
        let now = std::time::Instant::now();
        if keyframes.due(now, false) {
            keyframes.sent(now);
            let _ = peer.request_keyframe().await;
        }
    }
    let _ = peer.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(byte: u8) -> LegInput {
        LegInput::Video {
            data: vec![byte; 100],
            duration: Duration::from_millis(33),
        }
    }

    #[test]
    fn a_slow_viewer_loses_its_own_copies_only_and_a_gone_viewer_is_forgotten() {
        let (slow_tx, mut slow) = mpsc::channel(1);
        let (fast_tx, mut fast) = mpsc::channel(8);
        let (gone_tx, gone) = mpsc::channel(8);
        drop(gone);
        let sink: Sink = Arc::new(Mutex::new(Targets {
            media: vec![slow_tx, fast_tx, gone_tx],
            source: None,
        }));
        for byte in 1..=3 {
            forward(&sink, picture(byte));
        }
        // The fast viewer got every picture; the slow one kept its first and
        // lost the rest (it asks for a keyframe later); the gone one is pruned.
        let got = |rx: &mut mpsc::Receiver<LegInput>| {
            let mut bytes = Vec::new();
            while let Ok(LegInput::Video { data, .. }) = rx.try_recv() {
                bytes.push(data[0]);
            }
            bytes
        };
        assert_eq!(got(&mut fast), [1, 2, 3]);
        assert_eq!(got(&mut slow), [1]);
        assert_eq!(sink.lock().unwrap().media.len(), 2);
    }
}
