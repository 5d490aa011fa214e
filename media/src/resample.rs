//! Mono sample-rate conversion between the engine's 48 kHz and a sound
//! device's own rate, with rubato's FFT resampler (fixed ratio; the device
//! clock's drift is absorbed by the playout buffer, which follows the
//! device).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

pub struct MonoResampler {
    fft: Fft<f32>,
    /// Input gathered until a whole chunk is there.
    pending: Vec<f32>,
    chunk: usize,
    out: Vec<f32>,
}

impl MonoResampler {
    /// From `from` Hz to `to` Hz, in chunks of 10 ms of the input.
    pub fn new(from: u32, to: u32) -> Result<Self, String> {
        let chunk = usize::try_from(from / 100).map_err(|e| e.to_string())?;
        let fft = Fft::<f32>::new(
            from as usize,
            to as usize,
            chunk.max(1),
            1,
            FixedSync::Input,
        )
        .map_err(|e| e.to_string())?;
        let out = vec![0.0; fft.output_frames_max()];
        Ok(Self {
            fft,
            pending: Vec::with_capacity(chunk * 2),
            chunk: chunk.max(1),
            out,
        })
    }

    /// Converts `input`, appending what is ready to `output`; a partial
    /// chunk waits for the next call.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        self.pending.extend_from_slice(input);
        while self.pending.len() >= self.chunk {
            let capacity = self.out.len();
            let (Ok(source), Ok(mut target)) = (
                InterleavedSlice::new(&self.pending[..self.chunk], 1, self.chunk),
                InterleavedSlice::new_mut(&mut self.out, 1, capacity),
            ) else {
                return;
            };
            if let Ok((_, written)) = self.fft.process_into_buffer(&source, &mut target, None) {
                output.extend_from_slice(&self.out[..written]);
            }
            self.pending.drain(..self.chunk);
        }
    }

    /// Output frames of delay the conversion adds.
    pub fn delay_frames(&self) -> usize {
        self.fft.output_delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 0.5)
            .collect()
    }

    /// The strength of `hz` in `samples` at `rate`, 0..1 of the signal's power.
    fn share(samples: &[f32], rate: u32, hz: f32) -> f32 {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (i, s) in samples.iter().enumerate() {
            let phase = f64::from(hz) * std::f64::consts::TAU * i as f64 / f64::from(rate);
            re += f64::from(*s) * phase.cos();
            im += f64::from(*s) * phase.sin();
        }
        let power: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
        (2.0 * (re * re + im * im) / samples.len() as f64 / power) as f32
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_the_length_follows_the_ratio() {
        for (from, to) in [(48_000, 44_100), (44_100, 48_000), (48_000, 96_000)] {
            let mut resampler = MonoResampler::new(from, to).unwrap();
            let input = sine(from, 1000.0, 1.0);
            let mut output = Vec::new();
            // In uneven pieces, as a device delivers them.
            for piece in input.chunks(333) {
                resampler.process(piece, &mut output);
            }
            let expected = to as usize;
            assert!(
                output.len().abs_diff(expected) <= to as usize / 50,
                "{from}→{to}: {} samples",
                output.len()
            );
            let settled = &output[to as usize / 10..];
            assert!(share(settled, to, 1000.0) > 0.95, "{from}→{to}");
        }
    }
}
