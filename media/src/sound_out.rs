//! The playout thread of a session: received Opus packets through
//! [`AudioPlayout`] to the speaker, on the speaker's clock. What is played
//! is also handed to the echo canceller's render side, so the microphone's
//! echo is removed against the sound that actually went out.
//!
//! A speaker that fails (unplugged, taken away) is replaced by the default
//! one, and the change is told; with no speaker at all, playout goes on
//! paced by the system clock, so the call's statistics stay true.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::audio_processing::RenderSide;
use crate::capture::CaptureError;
use crate::frame::{AudioFrame, MediaTime};
use crate::playout::{AudioPlayout, PlayoutStats};
use crate::speaker::Speaker;

/// Where received sound goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundOutput {
    /// The speaker of that name, or the system's default for `None`.
    Speaker(Option<String>),
    /// Decoded and paced by the clock, played nowhere (headless tests).
    Nowhere,
}

/// The speaker in use, as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerInUse {
    pub name: String,
    /// Why the chosen speaker is not the one playing, or why nothing plays:
    /// the system's words, and [`CaptureError::code`] for the window's.
    pub reason: Option<String>,
    pub problem: Option<&'static str>,
}

/// Playout's figures so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlayoutReport {
    pub stats: PlayoutStats,
    /// Sound between arrival and the device: the jitter buffer and the speaker's queue.
    pub delay: Duration,
    /// Device callbacks that found nothing to play.
    pub device_starved: u64,
}

struct Arrived {
    seq: u16,
    timestamp: u32,
    payload: Vec<u8>,
    arrival_us: i64,
}

/// Loss and jitter laid on received sound before the jitter buffer, for
/// the sound benchmark on machines without `tc netem`:
/// `NEXMILE_IMPAIR_RECEIVED_AUDIO=loss_percent,jitter_ms` (e.g. `5,30`).
/// Each packet is lost with that chance, or else delayed by 0..jitter ms
/// (so packets also arrive out of order).
struct Impairment {
    loss: f64,
    jitter: Duration,
    random: u64,
    held: Vec<(Instant, Arrived)>,
}

impl Impairment {
    fn from_env() -> Option<Self> {
        let spec = std::env::var("NEXMILE_IMPAIR_RECEIVED_AUDIO").ok()?;
        let (loss, jitter) = spec.split_once(',')?;
        Some(Self {
            loss: loss.trim().parse::<f64>().ok()? / 100.0,
            jitter: Duration::from_millis(jitter.trim().parse().ok()?),
            random: 0x2545_F491_4F6C_DD1D,
            held: Vec::new(),
        })
    }

    /// Uniform in 0..1 (xorshift: reproducible from run to run).
    fn next(&mut self) -> f64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        (self.random >> 11) as f64 / (1u64 << 53) as f64
    }

    fn arrive(&mut self, packet: Arrived) {
        if self.next() < self.loss {
            return;
        }
        let delay = self.jitter.mul_f64(self.next());
        self.held.push((Instant::now() + delay, packet));
    }

    /// The packets whose delay is over, with their arrival moved to now.
    fn due(&mut self, clock: Instant) -> Vec<Arrived> {
        let now = Instant::now();
        let (due, held): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|(at, _)| *at <= now);
        self.held = held;
        due.into_iter()
            .map(|(_, mut packet)| {
                packet.arrival_us =
                    i64::try_from(now.duration_since(clock).as_micros()).unwrap_or(0);
                packet
            })
            .collect()
    }
}

/// How much playout keeps queued for the device beyond its own buffer:
/// two device periods, enough for a late wake-up of this thread.
const DEVICE_MARGIN: Duration = Duration::from_millis(30);
const WAKE: Duration = Duration::from_millis(5);

/// A running playout; dropping it stops the thread and the sound.
pub struct SoundOut {
    packets: mpsc::Sender<Arrived>,
    report: Arc<Mutex<PlayoutReport>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SoundOut {
    /// Starts playout into `output`; `render` is the echo canceller's far-end input.
    pub fn start(
        output: SoundOutput,
        render: Option<RenderSide>,
    ) -> Result<(Self, watch::Receiver<SpeakerInUse>), crate::codec::CodecError> {
        let playout = AudioPlayout::new()?;
        let (packets, arrived) = mpsc::channel();
        let report = Arc::new(Mutex::new(PlayoutReport::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (in_use_tx, in_use) = watch::channel(SpeakerInUse::default());
        let thread = {
            let report = report.clone();
            let stop = stop.clone();
            thread::Builder::new()
                .name("playout".into())
                .spawn(move || {
                    run(
                        Playing {
                            playout,
                            render,
                            report,
                        },
                        &output,
                        &arrived,
                        &stop,
                        &in_use_tx,
                    );
                })
                .expect("a thread for playout")
        };
        Ok((
            Self {
                packets,
                report,
                stop,
                thread: Some(thread),
            },
            in_use,
        ))
    }

    /// An Opus packet arrived.
    pub fn push(&self, seq: u16, timestamp: u32, payload: Vec<u8>, arrival_us: i64) {
        let _ = self.packets.send(Arrived {
            seq,
            timestamp,
            payload,
            arrival_us,
        });
    }

    pub fn report(&self) -> PlayoutReport {
        *self
            .report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for SoundOut {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Playing {
    playout: AudioPlayout,
    render: Option<RenderSide>,
    report: Arc<Mutex<PlayoutReport>>,
}

impl Playing {
    /// Decodes the next interval and hands it to the echo canceller.
    fn next(&mut self) -> Vec<i16> {
        let pcm = self.playout.next_interval();
        if let Some(render) = &mut self.render {
            for ten_ms in pcm.chunks_exact(AudioFrame::SAMPLES_PER_10MS) {
                let _ = render.process_render(&AudioFrame {
                    sample_rate: AudioFrame::RATE,
                    channels: 1,
                    samples: ten_ms.to_vec(),
                    timestamp: MediaTime::now(),
                });
            }
        }
        pcm
    }

    fn publish(&self, speaker: Option<&Speaker>) {
        let mut report = self
            .report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        report.stats = self.playout.stats();
        report.delay = self.playout.buffered() + speaker.map_or(Duration::ZERO, Speaker::queued);
        report.device_starved = speaker.map_or(0, Speaker::starved);
    }
}

fn in_use(speaker: Option<&Speaker>, why: Option<&CaptureError>) -> SpeakerInUse {
    SpeakerInUse {
        name: speaker.map(|s| s.name().to_owned()).unwrap_or_default(),
        reason: why.map(ToString::to_string),
        problem: why.map(CaptureError::code),
    }
}

/// The chosen speaker, else the default one, else none; with why the chosen one is not playing.
fn open(output: &SoundOutput) -> (Option<Speaker>, Option<CaptureError>) {
    let SoundOutput::Speaker(chosen) = output else {
        return (None, None);
    };
    match Speaker::open(chosen.as_deref()) {
        Ok(speaker) => (Some(speaker), None),
        Err(why) if chosen.is_some() => (Speaker::open(None).ok(), Some(why)),
        Err(why) => (None, Some(why)),
    }
}

fn run(
    mut playing: Playing,
    output: &SoundOutput,
    arrived: &mpsc::Receiver<Arrived>,
    stop: &AtomicBool,
    told: &watch::Sender<SpeakerInUse>,
) {
    let (mut speaker, why) = open(output);
    told.send_replace(in_use(speaker.as_ref(), why.as_ref()));
    let mut impairment = Impairment::from_env();
    let clock = Instant::now();
    // With no device the clock paces playout.
    let mut due = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut fresh = match arrived.recv_timeout(WAKE) {
            Ok(first) => std::iter::once(first).chain(arrived.try_iter()).collect(),
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if let Some(impairment) = &mut impairment {
            for packet in fresh.drain(..) {
                impairment.arrive(packet);
            }
            fresh = impairment.due(clock);
        }
        for packet in fresh {
            playing.playout.push(
                packet.seq,
                packet.timestamp,
                packet.payload,
                packet.arrival_us,
            );
        }
        if let Some(why) = speaker.as_mut().and_then(Speaker::failure) {
            // The stream broke. The same device again, if it is still there
            // (a sound server's passing error); else the default one takes
            // over, and the window says so.
            let before = told.borrow().clone();
            drop(speaker.take());
            let (again, _) = open(output);
            match again {
                Some(device) if device.name() == before.name => {
                    speaker = Some(device);
                }
                _ => {
                    speaker = Speaker::open(None).ok();
                    told.send_replace(in_use(speaker.as_ref(), Some(&why)));
                }
            }
            due = Instant::now();
        }
        match &mut speaker {
            Some(device) => {
                while device.queued() < DEVICE_MARGIN {
                    let pcm = playing.next();
                    device.play(&pcm);
                }
            }
            None => {
                while due <= Instant::now() {
                    let _ = playing.next();
                    due += playing.playout.interval();
                }
            }
        }
        playing.publish(speaker.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::OpusEncoder;
    use crate::source::tone::{ToneShape, ToneSource};

    #[test]
    fn without_a_speaker_playout_runs_on_the_clock() {
        let (out, in_use) = SoundOut::start(SoundOutput::Nowhere, None).unwrap();
        let mut tone = ToneSource::new(ToneShape::Steady { hz: 440.0 }, 0.3);
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        let started = Instant::now();
        for k in 0..25u16 {
            let mut pcm = tone.next_frame(MediaTime(0)).samples;
            pcm.extend(tone.next_frame(MediaTime(0)).samples);
            let arrival = i64::try_from(started.elapsed().as_micros()).unwrap();
            out.push(
                k,
                u32::from(k) * 960,
                encoder.encode(&pcm).unwrap(),
                arrival,
            );
            thread::sleep(Duration::from_millis(20));
        }
        thread::sleep(Duration::from_millis(100));
        let report = out.report();
        assert!(report.stats.decoded >= 20, "{report:?}");
        assert_eq!(in_use.borrow().name, "");
        assert_eq!(in_use.borrow().problem, None, "nothing was asked for");
    }
}
