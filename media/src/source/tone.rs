//! The synthetic microphone: a steady tone or a repeating chirp, 48 kHz mono,
//! in 10 ms frames with continuous phase.

use std::f64::consts::TAU;

use crate::frame::{AudioFrame, MediaTime};

/// What the synthetic microphone plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToneShape {
    /// A sine at one frequency (Hz).
    Steady { hz: f64 },
    /// A sweep from `from_hz` to `to_hz` over `period_ms`, then again.
    Chirp {
        from_hz: f64,
        to_hz: f64,
        period_ms: u32,
    },
}

#[derive(Debug, Clone)]
pub struct ToneSource {
    shape: ToneShape,
    /// Peak amplitude, 0.0–1.0 of full scale.
    amplitude: f64,
    phase: f64,
    sample_index: u64,
}

impl ToneSource {
    pub fn new(shape: ToneShape, amplitude: f64) -> Self {
        Self {
            shape,
            amplitude: amplitude.clamp(0.0, 1.0),
            phase: 0.0,
            sample_index: 0,
        }
    }

    fn frequency_at(&self, sample: u64) -> f64 {
        match self.shape {
            ToneShape::Steady { hz } => hz,
            ToneShape::Chirp {
                from_hz,
                to_hz,
                period_ms,
            } => {
                let period = u64::from(period_ms.max(1)) * u64::from(AudioFrame::RATE) / 1000;
                let t = (sample % period) as f64 / period as f64;
                from_hz + (to_hz - from_hz) * t
            }
        }
    }

    /// The next 10 ms, stamped `captured`.
    pub fn next_frame(&mut self, captured: MediaTime) -> AudioFrame {
        let mut samples = Vec::with_capacity(AudioFrame::SAMPLES_PER_10MS);
        for _ in 0..AudioFrame::SAMPLES_PER_10MS {
            let hz = self.frequency_at(self.sample_index);
            samples.push((self.phase.sin() * self.amplitude * 32767.0).round() as i16);
            self.phase = (self.phase + TAU * hz / f64::from(AudioFrame::RATE)) % TAU;
            self.sample_index += 1;
        }
        AudioFrame {
            sample_rate: AudioFrame::RATE,
            channels: 1,
            samples,
            timestamp: captured,
        }
    }
}

/// The power of `hz` in mono `samples` relative to their total power (0–1),
/// by the Goertzel algorithm: how a receiver checks that the tone arrived.
pub fn tone_share(samples: &[i16], sample_rate: u32, hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let n = samples.len() as f64;
    let coeff = 2.0 * (TAU * hz / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut total = 0.0f64;
    for &x in samples {
        let x = f64::from(x);
        total += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if total == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A pure sine of amplitude A over n samples gives power ≈ (A·n/2)², total ≈ A²·n/2.
    (power * 2.0 / (n * total)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_is_found_where_it_is_and_nowhere_else() {
        let mut tone = ToneSource::new(ToneShape::Steady { hz: 1000.0 }, 0.5);
        let samples: Vec<i16> = (0..10)
            .flat_map(|_| tone.next_frame(MediaTime(0)).samples)
            .collect();
        assert!(tone_share(&samples, 48_000, 1000.0) > 0.9);
        assert!(tone_share(&samples, 48_000, 1500.0) < 0.05);
        assert_eq!(tone_share(&[0; 480], 48_000, 1000.0), 0.0);
    }

    #[test]
    fn frames_join_without_clicks() {
        let mut tone = ToneSource::new(ToneShape::Steady { hz: 440.0 }, 1.0);
        let a = tone.next_frame(MediaTime(0));
        let b = tone.next_frame(MediaTime(10_000));
        let step = (i32::from(b.samples[0]) - i32::from(*a.samples.last().unwrap())).abs();
        // One sample of a 440 Hz full-scale sine moves at most 2π·440/48000 of full scale.
        assert!(step < 1900, "{step}");
        assert_eq!(a.samples.len(), 480);
    }

    #[test]
    fn chirp_sweeps_its_band() {
        let mut chirp = ToneSource::new(
            ToneShape::Chirp {
                from_hz: 300.0,
                to_hz: 3000.0,
                period_ms: 1000,
            },
            0.5,
        );
        let first = chirp.next_frame(MediaTime(0)).samples;
        for _ in 0..89 {
            chirp.next_frame(MediaTime(0));
        }
        let late = chirp.next_frame(MediaTime(0)).samples;
        assert!(tone_share(&first, 48_000, 320.0) > tone_share(&first, 48_000, 2750.0));
        assert!(tone_share(&late, 48_000, 2750.0) > tone_share(&late, 48_000, 320.0));
    }
}
