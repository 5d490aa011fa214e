//! Echo cancellation, noise suppression and automatic gain control: WebRTC's
//! audio processing module (Debian's libwebrtc-audio-processing 0.3 through
//! the `webrtc-audio-processing` crate), on 10 ms frames at 48 kHz mono.
//!
//! The playback side feeds what goes to the speaker ([`RenderSide`]); the
//! capture side removes its echo from the microphone ([`AudioProcessor`]).
//! The two halves share one processor and live on different threads.

use webrtc_audio_processing::{
    Config, EchoCancellation, EchoCancellationSuppressionLevel, GainControl, GainControlMode,
    InitializationConfig, NoiseSuppression, NoiseSuppressionLevel, Processor,
};

use crate::frame::AudioFrame;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioProcessingError {
    #[error("the audio processing module failed: {0}")]
    Module(String),
    #[error(
        "audio processing takes 10 ms of 48 kHz mono, not {samples} samples at {rate} Hz × {channels}"
    )]
    Format {
        samples: usize,
        rate: u32,
        channels: u16,
    },
}

/// Which stages run on the microphone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
}

impl Default for Stages {
    /// Everything a call needs.
    fn default() -> Self {
        Self {
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

fn config(stages: Stages) -> Config {
    Config {
        echo_cancellation: stages.echo_cancellation.then_some(EchoCancellation {
            // The crate's enum has two levels more at its start than
            // Debian's library, so `Lower` is the library's "moderate".
            suppression_level: EchoCancellationSuppressionLevel::Lower,
            // The delay between playback and capture is unknown and
            // device-dependent: let the canceller estimate it.
            enable_extended_filter: true,
            enable_delay_agnostic: true,
            stream_delay_ms: None,
        }),
        noise_suppression: stages.noise_suppression.then_some(NoiseSuppression {
            suppression_level: NoiseSuppressionLevel::High,
        }),
        gain_control: stages.gain_control.then_some(GainControl {
            mode: GainControlMode::AdaptiveDigital,
            target_level_dbfs: 3,
            compression_gain_db: 9,
            enable_limiter: true,
        }),
        voice_detection: None,
        enable_high_pass_filter: true,
        enable_transient_suppressor: false,
    }
}

fn check(frame: &AudioFrame) -> Result<(), AudioProcessingError> {
    if frame.sample_rate != AudioFrame::RATE
        || frame.channels != 1
        || frame.samples.len() != AudioFrame::SAMPLES_PER_10MS
    {
        return Err(AudioProcessingError::Format {
            samples: frame.samples.len(),
            rate: frame.sample_rate,
            channels: frame.channels,
        });
    }
    Ok(())
}

fn to_float(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|s| f32::from(*s) / 32768.0).collect()
}

/// The capture half: cleans the microphone signal in place.
pub struct AudioProcessor {
    processor: Processor,
}

/// The playback half: sees what the speaker plays, so its echo can be removed.
pub struct RenderSide {
    processor: Processor,
}

impl AudioProcessor {
    pub fn new(stages: Stages) -> Result<Self, AudioProcessingError> {
        let mut processor = Processor::new(&InitializationConfig {
            num_capture_channels: 1,
            num_render_channels: 1,
            ..InitializationConfig::default()
        })
        .map_err(|e| AudioProcessingError::Module(format!("{e:?}")))?;
        processor.set_config(config(stages));
        Ok(Self { processor })
    }

    /// The half for the playback thread.
    pub fn render_side(&self) -> RenderSide {
        RenderSide {
            processor: self.processor.clone(),
        }
    }

    /// Removes echo and noise and levels 10 ms of microphone audio in place.
    pub fn process_capture(&mut self, frame: &mut AudioFrame) -> Result<(), AudioProcessingError> {
        check(frame)?;
        let mut samples = to_float(&frame.samples);
        self.processor
            .process_capture_frame(&mut samples)
            .map_err(|e| AudioProcessingError::Module(format!("{e:?}")))?;
        for (out, s) in frame.samples.iter_mut().zip(samples) {
            *out = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
        Ok(())
    }
}

impl RenderSide {
    /// 10 ms of what the speaker is about to play.
    pub fn process_render(&mut self, frame: &AudioFrame) -> Result<(), AudioProcessingError> {
        check(frame)?;
        let mut samples = to_float(&frame.samples);
        self.processor
            .process_render_frame(&mut samples)
            .map_err(|e| AudioProcessingError::Module(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::MediaTime;

    fn frame(samples: Vec<i16>) -> AudioFrame {
        AudioFrame {
            sample_rate: AudioFrame::RATE,
            channels: 1,
            samples,
            timestamp: MediaTime(0),
        }
    }

    /// Speech-like far-end audio: noise shaped by a slow on/off envelope.
    fn far_end(seconds: usize) -> Vec<i16> {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        (0..seconds * 48_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let noise = ((x >> 48) as i16) as f64 / 32768.0;
                let syllable = ((i / 9600) % 3 != 2) as u8 as f64; // 200 ms on, on, off
                (noise * syllable * 8000.0) as i16
            })
            .collect()
    }

    fn power(samples: &[i16]) -> f64 {
        samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len().max(1) as f64
    }

    /// Echo return loss enhancement: how much quieter the echo is after the canceller.
    fn erle_db(stages: Stages) -> f64 {
        let mut capture = AudioProcessor::new(stages).unwrap();
        let mut render = capture.render_side();
        let far = far_end(12);
        // The room: the speaker's sound comes back 30 ms later at half amplitude,
        // with a weaker second reflection.
        let delay = 48 * 30;
        let echo: Vec<i16> = (0..far.len())
            .map(|i| {
                let direct = if i >= delay {
                    f64::from(far[i - delay]) * 0.5
                } else {
                    0.0
                };
                let reflection = if i >= delay + 480 {
                    f64::from(far[i - delay - 480]) * 0.2
                } else {
                    0.0
                };
                (direct + reflection) as i16
            })
            .collect();
        let (mut before, mut after) = (Vec::new(), Vec::new());
        for (i, (far, mic)) in far.chunks(480).zip(echo.chunks(480)).enumerate() {
            render.process_render(&frame(far.to_vec())).unwrap();
            let mut captured = frame(mic.to_vec());
            capture.process_capture(&mut captured).unwrap();
            // Measure after 6 s of convergence.
            if i >= 600 {
                before.extend_from_slice(mic);
                after.extend(captured.samples);
            }
        }
        10.0 * (power(&before) / power(&after).max(1e-9)).log10()
    }

    #[test]
    fn the_echo_canceller_removes_the_played_back_signal() {
        let cancellation_only = Stages {
            echo_cancellation: true,
            noise_suppression: false,
            gain_control: false,
        };
        let with_aec = erle_db(cancellation_only);
        let without = erle_db(Stages {
            echo_cancellation: false,
            noise_suppression: false,
            gain_control: false,
        });
        println!(
            "echo return loss enhancement: {with_aec:.1} dB with the canceller, {without:.1} dB without"
        );
        assert!(with_aec >= 20.0, "ERLE {with_aec:.1} dB");
        assert!(
            without.abs() < 3.0,
            "without the canceller the echo stays: {without:.1} dB"
        );
    }

    #[test]
    fn wrong_frames_are_refused() {
        let mut capture = AudioProcessor::new(Stages::default()).unwrap();
        let mut short = frame(vec![0; 441]);
        assert!(matches!(
            capture.process_capture(&mut short),
            Err(AudioProcessingError::Format { .. })
        ));
        let mut stereo = frame(vec![0; 960]);
        stereo.channels = 2;
        assert!(capture.process_capture(&mut stereo).is_err());
        let mut ok = frame(vec![100; 480]);
        assert!(capture.process_capture(&mut ok).is_ok());
    }
}
