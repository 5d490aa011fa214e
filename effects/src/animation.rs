//! APNG (and still PNG) animations, decoded once into whole RGBA frames.
//!
//! `image`'s APNG decoder applies each frame's disposal (none / background /
//! previous) and blending (source / over) to the canvas, so every frame here
//! is the full picture as a browser would show it; this module adds the
//! timing (per-frame delays, loop count) and the limits that keep a corrupt
//! or hostile file from taking the app down.

use std::io::Cursor;
use std::time::Duration;

use image::codecs::png::PngDecoder;
use image::{AnimationDecoder, ImageDecoder, RgbaImage};

/// Frames shown for less than this are shown this long: APNG allows a delay
/// of 0, which browsers also stretch.
pub const MIN_FRAME_DELAY: Duration = Duration::from_millis(10);
/// Largest side accepted.
pub const MAX_SIDE: u32 = 2048;
/// Most decoded bytes accepted (frames × width × height × 4).
pub const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnimationError {
    #[error("the effect file is not a PNG/APNG that can be read: {0}")]
    Corrupt(String),
    #[error("the animation has no frames")]
    Empty,
    #[error("the animation is too large ({0})")]
    TooLarge(String),
}

/// How often the animation plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plays {
    Forever,
    Times(u32),
}

#[derive(Debug, Clone)]
pub struct Frame {
    pub image: RgbaImage,
    pub delay: Duration,
}

#[derive(Debug, Clone)]
pub struct Animation {
    frames: Vec<Frame>,
    plays: Plays,
    period: Duration,
}

fn corrupt(e: impl std::fmt::Display) -> AnimationError {
    AnimationError::Corrupt(e.to_string())
}

impl Animation {
    /// Decodes a PNG or APNG file's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, AnimationError> {
        let decoder = PngDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
        let (width, height) = decoder.dimensions();
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(AnimationError::TooLarge(format!("{width}×{height}")));
        }
        let frame_bytes = u64::from(width) * u64::from(height) * 4;
        if !decoder.is_apng().map_err(corrupt)? {
            let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
                .map_err(corrupt)?
                .into_rgba8();
            return Self::from_frames(
                vec![Frame {
                    image,
                    delay: Duration::from_secs(1),
                }],
                Plays::Forever,
            );
        }
        let apng = decoder.apng().map_err(corrupt)?;
        let plays = match apng.loop_count() {
            image::metadata::LoopCount::Infinite => Plays::Forever,
            image::metadata::LoopCount::Finite(n) => Plays::Times(n.get()),
        };
        let mut frames = Vec::new();
        for frame in apng.into_frames() {
            let frame = frame.map_err(corrupt)?;
            if (frames.len() as u64 + 1) * frame_bytes > MAX_DECODED_BYTES {
                return Err(AnimationError::TooLarge(format!(
                    "more than {} frames of {width}×{height}",
                    frames.len()
                )));
            }
            let delay = Duration::from(frame.delay()).max(MIN_FRAME_DELAY);
            frames.push(Frame {
                image: frame.into_buffer(),
                delay,
            });
        }
        Self::from_frames(frames, plays)
    }

    fn from_frames(frames: Vec<Frame>, plays: Plays) -> Result<Self, AnimationError> {
        if frames.is_empty() {
            return Err(AnimationError::Empty);
        }
        let period = frames.iter().map(|f| f.delay).sum();
        Ok(Self {
            frames,
            plays,
            period,
        })
    }

    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    pub fn plays(&self) -> Plays {
        self.plays
    }

    /// How long one play lasts.
    pub fn period(&self) -> Duration {
        self.period
    }

    pub fn size(&self) -> (u32, u32) {
        self.frames[0].image.dimensions()
    }

    /// The index of the frame showing `elapsed` after the start, or `None`
    /// once a finite animation has played out.
    pub fn frame_index_at(&self, elapsed: Duration) -> Option<usize> {
        let period = self.period.as_nanos().max(1);
        if let Plays::Times(n) = self.plays
            && elapsed.as_nanos() >= period * u128::from(n)
        {
            return None;
        }
        let mut t = Duration::from_nanos((elapsed.as_nanos() % period) as u64);
        for (i, frame) in self.frames.iter().enumerate() {
            if t < frame.delay {
                return Some(i);
            }
            t -= frame.delay;
        }
        Some(self.frames.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn encode_apng(frames: &[(u8, u16)], plays: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, 8, 8);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_animated(frames.len() as u32, plays).unwrap();
        let mut writer = encoder.write_header().unwrap();
        for (grey, delay_ms) in frames {
            writer.set_frame_delay(*delay_ms, 1000).unwrap();
            writer
                .write_image_data(&[*grey, *grey, *grey, 255].repeat(64))
                .unwrap();
        }
        writer.finish().unwrap();
        bytes
    }

    #[test]
    fn timing_follows_delays_and_the_loop_count() {
        let a = Animation::decode(&encode_apng(&[(10, 100), (20, 0), (30, 300)], 2)).unwrap();
        assert_eq!(a.plays(), Plays::Times(2));
        assert_eq!(
            a.frames()[1].delay,
            MIN_FRAME_DELAY,
            "a zero delay is stretched"
        );
        assert_eq!(a.period(), Duration::from_millis(410));
        let at = |ms| a.frame_index_at(Duration::from_millis(ms));
        assert_eq!(
            [at(0), at(99), at(100), at(110), at(409)],
            [Some(0), Some(0), Some(1), Some(2), Some(2)]
        );
        assert_eq!(at(410), Some(0), "second play");
        assert_eq!(at(820), None, "played twice, then gone");
        let forever = Animation::decode(&encode_apng(&[(10, 100)], 0)).unwrap();
        assert_eq!(forever.plays(), Plays::Forever);
        assert_eq!(forever.frame_index_at(Duration::from_secs(3600)), Some(0));
    }

    #[test]
    fn corrupt_and_oversized_files_are_errors_not_crashes() {
        assert!(matches!(
            Animation::decode(b"not a png"),
            Err(AnimationError::Corrupt(_))
        ));
        let mut truncated = encode_apng(&[(10, 100), (20, 100)], 0);
        truncated.truncate(truncated.len() - 30);
        assert!(Animation::decode(&truncated).is_err());
        let mut big = Vec::new();
        let mut encoder = png::Encoder::new(&mut big, 4096, 1);
        encoder.set_color(png::ColorType::Grayscale);
        encoder
            .write_header()
            .unwrap()
            .write_image_data(&[0; 4096])
            .unwrap();
        assert!(matches!(
            Animation::decode(&big),
            Err(AnimationError::TooLarge(_))
        ));
    }
}
