//! Speakers through cpal: listed by name, opened at the device's own rate
//! and channels, and fed through a lock-free ring (rtrb) so the device's
//! callback never waits on the playout thread. Sound enters as 48 kHz mono
//! and is resampled to the device's rate ([`MonoResampler`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use crate::capture::{CaptureError, device_error, device_name};
use crate::frame::AudioFrame;
use crate::resample::MonoResampler;

/// The names of the system's sound outputs a person would pick from.
pub fn list_speakers() -> Vec<String> {
    let host = cpal::default_host();
    pickable(host.output_devices().ok().into_iter().flatten())
}

/// The names of the system's sound inputs a person would pick from.
pub fn list_microphones() -> Vec<String> {
    let host = cpal::default_host();
    pickable(host.input_devices().ok().into_iter().flatten())
}

/// ALSA also lists its converter and routing plugins (rate converters,
/// up/down-mixers, JACK, OSS…) as devices; a picker offers only sound
/// servers and cards. "default" is the picker's own "system default" entry.
fn pickable(devices: impl Iterator<Item = cpal::Device>) -> Vec<String> {
    let mut names: Vec<String> = devices
        .filter_map(|device| {
            let description = device.description().ok()?;
            let id = description.driver().unwrap_or_default();
            let card = ["sysdefault:", "front:", "plughw:"]
                .iter()
                .any(|prefix| id.starts_with(prefix));
            (card || id == "pulse" || id == "pipewire").then(|| description.name().to_owned())
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    names
}

/// The output named `name`, or the default output for `None`.
fn find_output(name: Option<&str>) -> Result<cpal::Device, CaptureError> {
    let host = cpal::default_host();
    match name {
        None => host
            .default_output_device()
            .ok_or(CaptureError::NoDevice("speaker")),
        Some(wanted) => host
            .output_devices()
            .ok()
            .and_then(|mut devices| devices.find(|d| device_name(d).as_deref() == Some(wanted)))
            .ok_or(CaptureError::NoDevice("speaker")),
    }
}

/// How much sound the ring holds at most: far more than playout keeps
/// queued, so a late playout thread never loses what it wrote.
const RING: Duration = Duration::from_millis(500);

/// An open speaker. Dropping it stops the sound.
pub struct Speaker {
    name: String,
    rate: u32,
    channels: usize,
    ring: rtrb::Producer<f32>,
    capacity: usize,
    resampler: Option<MonoResampler>,
    converted: Vec<f32>,
    interleaved: Vec<f32>,
    /// Device callbacks so far, and when their count last moved: a device
    /// that stops calling back without an error (a sound server that
    /// dropped the stream) is a failed device too.
    callbacks: Arc<AtomicU64>,
    last_callbacks: u64,
    last_progress: std::time::Instant,
    /// Underruns the device reported, and their count a second ago: a
    /// stream whose server side is gone underruns on every period.
    xruns: Arc<AtomicU64>,
    xruns_at_check: (u64, std::time::Instant),
    /// Device callbacks that found the ring short, and the device's own
    /// underruns (each heard as a click or a gap).
    starved: Arc<AtomicU64>,
    failures: Receiver<CaptureError>,
    _stream: cpal::Stream,
}

impl Speaker {
    /// Opens the speaker named `name` (the default for `None`) at its
    /// preferred rate, channels and sample format.
    pub fn open(name: Option<&str>) -> Result<Self, CaptureError> {
        let device = find_output(name)?;
        let name = device_name(&device).unwrap_or_else(|| "default".into());
        let default = device
            .default_output_config()
            .map_err(|e| device_error("speaker", &name, &e))?;
        // 48 kHz where the device takes it in its default format: no
        // resampling here, and none in a sound server running at 48 kHz.
        let supported = device
            .supported_output_configs()
            .ok()
            .and_then(|mut configs| {
                configs.find(|c| {
                    c.channels() == default.channels()
                        && c.sample_format() == default.sample_format()
                        && (c.min_sample_rate()..=c.max_sample_rate()).contains(&AudioFrame::RATE)
                })
            })
            .map_or(default, |c| c.with_sample_rate(AudioFrame::RATE));
        let rate = supported.sample_rate();
        let channels = usize::from(supported.channels());
        let capacity = usize::try_from(u128::from(rate) * RING.as_millis() / 1000)
            .unwrap_or(24_000)
            * channels;
        let (ring, consumer) = rtrb::RingBuffer::new(capacity);
        let starved = Arc::new(AtomicU64::new(0));
        let (failed, failures) = mpsc::channel();
        let xruns = Arc::new(AtomicU64::new(0));
        let mut config = supported.config();
        // 10 ms device periods where the device allows: the ring, not the
        // device, holds playout's margin, so the device's own queue stays short.
        if let cpal::SupportedBufferSize::Range { min, max } = supported.buffer_size() {
            config.buffer_size = cpal::BufferSize::Fixed((rate / 50).clamp(*min, *max));
        }
        let callbacks = Arc::new(AtomicU64::new(0));
        let feed = Feed {
            ring: consumer,
            starved: starved.clone(),
            callbacks: callbacks.clone(),
        };
        let on_error = {
            let starved = starved.clone();
            let xruns = xruns.clone();
            move |e: cpal::Error| match e.kind() {
                // A glitch, not a failure: the stream goes on.
                cpal::ErrorKind::Xrun => {
                    starved.fetch_add(1, Ordering::Relaxed);
                    xruns.fetch_add(1, Ordering::Relaxed);
                }
                cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => {}
                // Gone, or the stream broke: the device stopped playing.
                cpal::ErrorKind::DeviceNotAvailable => {
                    let _ = failed.send(CaptureError::NoDevice("speaker"));
                }
                _ => {
                    let _ = failed.send(CaptureError::Stopped("speaker"));
                }
            }
        };
        let stream = match supported.sample_format() {
            SampleFormat::I16 => build::<i16>(&device, config, feed, on_error),
            SampleFormat::I32 => build::<i32>(&device, config, feed, on_error),
            SampleFormat::U8 => build::<u8>(&device, config, feed, on_error),
            _ => build::<f32>(&device, config, feed, on_error),
        }
        .map_err(|e| device_error("speaker", &name, &e))?;
        stream
            .play()
            .map_err(|e| device_error("speaker", &name, &e))?;
        let resampler = if rate == AudioFrame::RATE {
            None
        } else {
            Some(
                MonoResampler::new(AudioFrame::RATE, rate).map_err(|reason| {
                    CaptureError::CannotOpen {
                        kind: "speaker",
                        name: name.clone(),
                        reason,
                    }
                })?,
            )
        };
        Ok(Self {
            name,
            rate,
            channels,
            ring,
            capacity,
            resampler,
            converted: Vec::new(),
            interleaved: Vec::new(),
            callbacks,
            last_callbacks: 0,
            last_progress: std::time::Instant::now(),
            xruns,
            xruns_at_check: (0, std::time::Instant::now()),
            starved,
            failures,
            _stream: stream,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Sound written but not yet taken by the device.
    pub fn queued(&self) -> Duration {
        let frames = (self.capacity - self.ring.slots()) / self.channels;
        Duration::from_micros(u64::try_from(frames).unwrap_or(0) * 1_000_000 / u64::from(self.rate))
    }

    /// Queues 48 kHz mono sound for the device.
    pub fn play(&mut self, pcm: &[i16]) {
        self.converted.clear();
        let float = pcm.iter().map(|s| f32::from(*s) / 32768.0);
        match &mut self.resampler {
            None => self.converted.extend(float),
            Some(resampler) => {
                let input: Vec<f32> = float.collect();
                resampler.process(&input, &mut self.converted);
            }
        }
        self.interleaved.clear();
        for sample in &self.converted {
            for _ in 0..self.channels {
                self.interleaved.push(*sample);
            }
        }
        // A full ring (the device stopped taking sound) drops the newest.
        let _ = self.ring.push_partial_slice(&self.interleaved);
    }

    /// Callbacks that ran short of sound so far.
    pub fn starved(&self) -> u64 {
        self.starved.load(Ordering::Relaxed)
    }

    /// The device failed (unplugged, taken away), if it did.
    pub fn failure(&mut self) -> Option<CaptureError> {
        if let Ok(why) = self.failures.try_recv() {
            return Some(why);
        }
        let (before, since) = self.xruns_at_check;
        if since.elapsed() >= Duration::from_secs(1) {
            let xruns = self.xruns.load(Ordering::Relaxed);
            self.xruns_at_check = (xruns, std::time::Instant::now());
            if xruns - before > XRUNS_OF_A_DEAD_STREAM {
                return Some(CaptureError::Stopped("speaker"));
            }
        }
        let now = self.callbacks.load(Ordering::Relaxed);
        if now != self.last_callbacks {
            self.last_callbacks = now;
            self.last_progress = std::time::Instant::now();
        } else if self.last_progress.elapsed() > STALL {
            return Some(CaptureError::Stopped("speaker"));
        }
        None
    }
}

/// More underruns than this in a second is a stream that no longer plays
/// (a loaded machine gives a few).
const XRUNS_OF_A_DEAD_STREAM: u64 = 20;

/// A device silent this long has stopped (its periods are 10–100 ms).
const STALL: Duration = Duration::from_millis(1500);

/// What the device's callback reads from.
struct Feed {
    ring: rtrb::Consumer<f32>,
    starved: Arc<AtomicU64>,
    callbacks: Arc<AtomicU64>,
}

fn build<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut feed: Feed,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let mut scratch: Vec<f32> = Vec::new();
    device.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], _| {
            feed.callbacks.fetch_add(1, Ordering::Relaxed);
            scratch.resize(data.len(), 0.0);
            let (popped, _) = feed.ring.pop_partial_slice(&mut scratch);
            let got = popped.len();
            if got < data.len() {
                feed.starved.fetch_add(1, Ordering::Relaxed);
                scratch[got..].fill(0.0);
            }
            for (out, sample) in data.iter_mut().zip(&scratch) {
                *out = T::from_sample(*sample);
            }
        },
        on_error,
        None,
    )
}
