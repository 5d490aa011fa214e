//! The media of one call on the app's side: the camera and microphone (or
//! the stamped test pattern and tone) through the effects, encoded and sent
//! at the pace capture gives them; the other side's sound played out on the
//! speaker through the jitter buffer, its pictures decoded and shown in step
//! with that sound; a quality report every second.

use std::sync::Arc;
use std::time::Duration;

use nexmile_effects::chain::{ChainSender, ChainSlot, EffectChain};
use nexmile_effects::gift::GiftOverlay;
use nexmile_media::audio_processing::{AudioProcessor, Stages};
use nexmile_media::capture::CameraRequest;
use nexmile_media::codec::{H264Encoder, OpusEncoder};
use nexmile_media::convert::Scaler;
use nexmile_media::frame::{MediaTime, VideoFrame};
use nexmile_media::quality::{QualityReport, StatsSnapshot};
use nexmile_media::receiver::{Received, VideoReceiver};
use nexmile_media::smoothness::SmoothnessMeter;
use nexmile_media::sound_out::{SoundOut, SoundOutput, SpeakerInUse};
use nexmile_media::source::pattern::read_stamp;
use nexmile_media::transport::{MediaKind, Peer, PeerEvent};
use tokio::sync::{mpsc, oneshot, watch};

use crate::app::EventSink;
use crate::capture_feed::{CaptureChoice, CaptureFeed, SourcesInUse};
use crate::events::EngineEvent;
pub use crate::events::MediaSummary;

/// The newest picture of a stream, for a window to show; `None` when the
/// stream stopped. A watch keeps only the newest: a slow display skips
/// pictures instead of queueing them.
pub type Picture = Option<Arc<VideoFrame>>;

/// Where a windowed app sees the pictures: its own after effects, and the
/// other side's (or, in the video test, its own returned by the server).
#[derive(Debug)]
pub struct Display {
    pub local: watch::Sender<Picture>,
    pub remote: watch::Sender<Picture>,
}

impl Default for Display {
    fn default() -> Self {
        Self {
            local: watch::channel(None).0,
            remote: watch::channel(None).0,
        }
    }
}

/// The user's switches for the outgoing media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaSwitches {
    pub microphone: bool,
    pub camera: bool,
}

impl Default for MediaSwitches {
    fn default() -> Self {
        Self {
            microphone: true,
            camera: true,
        }
    }
}

pub struct MediaSession {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<MediaSummary>,
    chain: ChainSender,
    gifts: mpsc::UnboundedSender<GiftOverlay>,
}

/// What a session reads besides its peer.
pub struct SessionIo {
    pub reports: mpsc::UnboundedSender<QualityReport>,
    pub display: Option<Arc<Display>>,
    pub switches: watch::Receiver<MediaSwitches>,
    pub capture: CaptureChoice,
    /// Where the other side's sound is played.
    pub output: SoundOutput,
    /// Told which camera and microphone are in use (`devices`), and of every change.
    pub events: Arc<dyn EventSink>,
    /// Fired once the first picture (`Video`) or sound (`Audio`) was decoded.
    pub first_media: Option<(oneshot::Sender<()>, MediaKind)>,
    /// The other side sends media, so silence is a broken path (not so
    /// for a live's broadcaster, who only sends).
    pub expect_incoming: bool,
    /// Pictures are sent (not in a radio live: sound alone).
    pub send_video: bool,
}

impl MediaSession {
    /// Starts sending (through `chain`, if any) and receiving on a
    /// connected-or-connecting peer.
    pub fn start(
        peer: Peer,
        (width, height): (u32, u32),
        chain: Option<EffectChain>,
        io: SessionIo,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let (slot, chain) = ChainSlot::new(chain.unwrap_or_default());
        let (gifts, gifts_rx) = mpsc::unbounded_channel();
        let done = tokio::spawn(run(peer, (width, height), (slot, gifts_rx), io, stopped));
        Self {
            stop,
            done,
            chain,
            gifts,
        }
    }

    /// Where gifts to composite onto the outgoing picture go (§5.4.1
    /// apngOnVideoProcessor): every viewer sees them in the video.
    pub fn gift_sender(&self) -> mpsc::UnboundedSender<GiftOverlay> {
        self.gifts.clone()
    }

    /// Replaces the effects from the next picture on, without a gap.
    pub fn switch_effects(&self, chain: EffectChain) {
        let _ = self.chain.send(chain);
    }

    pub async fn finish(self) -> MediaSummary {
        let _ = self.stop.send(());
        self.done.await.unwrap_or_default()
    }
}

fn percentile(sorted: &[f64], p: usize) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[(sorted.len() - 1) * p / 100])
}

async fn run(
    mut peer: Peer,
    (width, height): (u32, u32),
    (mut chain, mut gifts): (ChainSlot, mpsc::UnboundedReceiver<GiftOverlay>),
    io: SessionIo,
    mut stopped: oneshot::Receiver<()>,
) -> MediaSummary {
    let SessionIo {
        reports,
        display,
        switches,
        capture,
        output,
        events,
        mut first_media,
        expect_incoming,
        send_video,
    } = io;
    let request = CameraRequest {
        width,
        height,
        fps: 30,
    };
    // The echo canceller's two halves: the speaker's thread feeds it what
    // is played, the microphone's thread takes that echo out.
    let processor = match &capture {
        CaptureChoice::Devices(settings) => AudioProcessor::new(Stages {
            echo_cancellation: true,
            noise_suppression: settings.noise_suppression,
            gain_control: settings.gain_control,
        })
        .ok(),
        CaptureChoice::Synthetic | CaptureChoice::ReceiveOnly => None,
    };
    let render = processor.as_ref().map(AudioProcessor::render_side);
    let Ok((playout, mut speaker)) = SoundOut::start(output, render) else {
        return MediaSummary::default();
    };
    let CaptureFeed {
        video: mut captured,
        audio: mut sound,
        mut sources,
        level: microphone_level,
    } = CaptureFeed::open(capture, request, switches.clone(), send_video, processor).await;
    let tell_sources = |sources: &watch::Receiver<SourcesInUse>,
                        speaker: &watch::Receiver<SpeakerInUse>| {
        events.emit(EngineEvent::Devices {
            sources: sources.borrow().clone(),
            speaker: speaker.borrow().clone(),
        });
    };
    tell_sources(&sources, &speaker);
    let mut scaler = Scaler::default();
    let (Ok(mut encoder), Ok(mut opus), Ok(mut video)) = (
        H264Encoder::new(800_000, 30.0),
        OpusEncoder::new(32_000),
        VideoReceiver::new(),
    ) else {
        return MediaSummary::default();
    };
    // Decoded pictures wait here until their sound is played (lip sync).
    let mut held: std::collections::VecDeque<(tokio::time::Instant, VideoFrame)> =
        std::collections::VecDeque::new();
    let mut audio_delays = Vec::new();
    let mut av_offsets = Vec::new();
    let mut meter_tick = tokio::time::interval(Duration::from_millis(100));
    let mut summary = MediaSummary::default();
    let mut delays = Vec::new();
    let mut smoothness = SmoothnessMeter::default();
    let began = tokio::time::Instant::now();
    let mut effect_times = Vec::new();
    let frame_interval = Duration::from_secs(1) / request.fps;
    let audio_interval = Duration::from_millis(20);
    let mut pcm = Vec::with_capacity(960);
    let mut housekeeping = tokio::time::interval(Duration::from_millis(10));
    let mut report_tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_stats: Option<StatsSnapshot> = None;
    let started = tokio::time::Instant::now();
    let mut connected = false;
    // ICE reported the path silent and has not reported it back.
    let mut interrupted = false;
    let mut video_packets = 0u64;
    loop {
        let mut received = Received::default();
        tokio::select! {
            _ = &mut stopped => break,
            Ok(()) = captured.changed() => {
                let Some(newest) = captured.borrow_and_update().clone() else {
                    continue;
                };
                if !connected {
                    continue;
                }
                let now_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(0);
                let picture = if switches.borrow().camera {
                    let Ok(mut picture) = scaler.scale(&newest, width, height) else {
                        continue;
                    };
                    // Between capture and encoder: the user's effects.
                    let began = std::time::Instant::now();
                    let errors = chain.process(&mut picture, MediaTime::now()).len();
                    if !chain.is_empty() {
                        summary.effect_errors += errors as u64;
                        effect_times.push(began.elapsed().as_secs_f64() * 1000.0);
                    }
                    picture
                } else {
                    // Camera off: black pictures keep the stream (and its
                    // statistics) alive; the other side sees the camera is off.
                    VideoFrame::black_i420(width, height, MediaTime::now())
                };
                if let Ok(Some(encoded)) = encoder.encode(&picture, now_us)
                    && peer.send_video(&encoded.data, frame_interval).await.is_ok()
                {
                    summary.frames_sent += 1;
                }
                // After the encoder has read it, the picture moves to the window.
                if let Some(display) = &display {
                    display.local.send_replace(Some(Arc::new(picture)));
                }
            }
            Some(ten_ms) = sound.recv() => {
                if !connected {
                    continue;
                }
                pcm.extend(ten_ms.samples);
                if pcm.len() < 960 {
                    continue;
                }
                if !switches.borrow().microphone {
                    // Muted: silence, so the other side's meter drops to zero.
                    pcm.fill(0);
                }
                if let Ok(packet) = opus.encode(&pcm) {
                    let _ = peer.send_audio(&packet, audio_interval).await;
                }
                pcm.clear();
            }
            Ok(()) = sources.changed() => tell_sources(&sources, &speaker),
            Ok(()) = speaker.changed() => tell_sources(&sources, &speaker),
            _ = meter_tick.tick(), if display.is_some() => {
                // The window's microphone meter; muted reads as silence.
                let dbfs = if switches.borrow().microphone { *microphone_level.borrow() } else { -120.0 };
                events.emit(EngineEvent::MicrophoneLevel { dbfs: (dbfs * 10.0).round() / 10.0 });
            }
            _ = housekeeping.tick() => {
                received = video.poll(peer.now_us());
                if playout.report().stats.decoded > 0
                    && first_media.as_ref().is_some_and(|(_, kind)| *kind == MediaKind::Audio)
                    && let Some((fired, _)) = first_media.take()
                {
                    let _ = fired.send(());
                }
            }
            Some(gift) = gifts.recv() => chain.add_gift(gift),
            _ = report_tick.tick() => {
                let now = peer.stats().await;
                if let Some(before) = &last_stats {
                    // The budget follows the path's estimate.
                    let bitrate = u32::try_from(peer.bandwidth_estimate_bps().min(2_500_000)).unwrap_or(800_000);
                    let _ = encoder.set_bitrate(bitrate.max(150_000));
                    let _ = reports.send(QualityReport::between(before, &now, expect_incoming));
                }
                last_stats = Some(now);
            }
            event = peer.next_event() => match event {
                None | Some(PeerEvent::Disconnected) => break,
                Some(PeerEvent::Rtp { kind: MediaKind::Video, packet, arrival_us }) => {
                    video_packets += 1;
                    received = video.on_packet(packet, arrival_us);
                }
                Some(PeerEvent::Rtp { kind: MediaKind::Audio, packet, arrival_us }) => {
                    summary.audio_packets_received += 1;
                    playout.push(packet.sequence, packet.timestamp, packet.payload, arrival_us);
                }
                Some(PeerEvent::KeyframeRequested) => encoder.request_keyframe(),
                // Samples written before the connection is up are dropped by the
                // transport: start then, with a keyframe.
                Some(PeerEvent::Connected) => {
                    if interrupted {
                        interrupted = false;
                        events.emit(EngineEvent::MediaRestored);
                    }
                    connected = true;
                    encoder.request_keyframe();
                }
                // The path may come back by itself; if it does not, ICE
                // fails (Disconnected) and the session ends.
                Some(PeerEvent::Interrupted) if connected && !interrupted => {
                    interrupted = true;
                    events.emit(EngineEvent::MediaInterrupted);
                }
                Some(_) => {}
            },
        }
        if !received.pictures.is_empty()
            && first_media
                .as_ref()
                .is_some_and(|(_, kind)| *kind == MediaKind::Video)
            && let Some((fired, _)) = first_media.take()
        {
            let _ = fired.send(());
        }
        for picture in &received.pictures {
            peer.count_decoded_frame();
            summary.frames_decoded += 1;
            let stamp = read_stamp(picture);
            if let Some(stamp) = &stamp {
                let delay = MediaTime::now().saturating_since(stamp.captured);
                delays.push(delay.as_secs_f64() * 1000.0);
            }
            smoothness.picture(began.elapsed(), stamp.map(|s| s.sequence));
        }
        // A picture is shown when its sound is heard: after the sound's
        // own delay from arrival to the speaker.
        let audio_delay = playout.report().delay;
        if let Some(newest) = received.pictures.pop() {
            audio_delays.push(audio_delay.as_secs_f64() * 1000.0);
            if display.is_some() {
                held.push_back((tokio::time::Instant::now() + audio_delay, newest));
            } else {
                // Headless: shown nowhere, so on arrival, ahead of its sound.
                av_offsets.push(-audio_delay.as_secs_f64() * 1000.0);
            }
        }
        let now = tokio::time::Instant::now();
        while let Some((due, _)) = held.front()
            && *due <= now
            && let Some((due, picture)) = held.pop_front()
        {
            av_offsets.push((now - due).as_secs_f64() * 1000.0);
            if let Some(display) = &display
                && held.front().is_none_or(|(next, _)| *next > now)
            {
                display.remote.send_replace(Some(Arc::new(picture)));
            }
        }
        if received.request_keyframe {
            let _ = peer.request_keyframe().await;
        }
    }
    let _ = peer.close().await;
    if let Some(display) = &display {
        display.local.send_replace(None);
        display.remote.send_replace(None);
    }
    summary.video_packets_received = video_packets;
    let smooth = smoothness.report();
    summary.freezes = smooth.freezes;
    summary.frozen_ms = smooth.frozen.as_secs_f64() * 1000.0;
    summary.pictures_missing = smooth.pictures_missing;
    let heard = playout.report();
    drop(playout);
    summary.audio_decoded = heard.stats.decoded;
    summary.audio_fec_recovered = heard.stats.fec_recovered;
    summary.audio_concealed = heard.stats.concealed;
    summary.audio_underruns = heard.stats.jitter.underruns;
    summary.jitter_target_ms = heard.stats.jitter.target_delay.as_secs_f64() * 1000.0;
    summary.speaker_starved = heard.device_starved;
    audio_delays.sort_by(f64::total_cmp);
    summary.audio_delay_ms_median = percentile(&audio_delays, 50);
    av_offsets.sort_by(f64::total_cmp);
    summary.av_offset_ms_median = percentile(&av_offsets, 50);
    delays.sort_by(f64::total_cmp);
    summary.latency_ms_median = percentile(&delays, 50);
    summary.latency_ms_p95 = percentile(&delays, 95);
    effect_times.sort_by(f64::total_cmp);
    summary.effects_ms_median = percentile(&effect_times, 50);
    summary
}
