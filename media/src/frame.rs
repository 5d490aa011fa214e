//! The one picture type and the one sound type that flow through the engine.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch: when a frame was captured. Wall-clock
/// time, so two processes on one machine can compare stamps (glass-to-glass
/// latency) and a stamp read back from a decoded picture means the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MediaTime(pub u64);

impl MediaTime {
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn saturating_since(self, earlier: MediaTime) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    pub fn after(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        )
    }
}

/// How a frame's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Planar 4:2:0: Y, then U and V at half width and height. What encoders eat.
    I420,
    /// Y plane, then one interleaved UV plane at half resolution (many cameras, VA-API).
    Nv12,
    /// Packed 4:2:2 Y0 U Y1 V (USB cameras).
    Yuyv,
    /// Packed 8-bit R, G, B, A (images, effects, the UI).
    Rgba,
    /// Packed 8-bit B, G, R, A (Windows and macOS capture).
    Bgra,
    /// A JPEG picture per frame (USB cameras at high resolution).
    Mjpeg,
}

impl PixelFormat {
    /// The planes and their (width-in-bytes, height) for a `width × height` frame.
    /// MJPEG has no fixed layout and reports none.
    pub fn plane_sizes(self, width: u32, height: u32) -> Vec<(usize, usize)> {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        match self {
            Self::I420 => vec![(w, h), (cw, ch), (cw, ch)],
            Self::Nv12 => vec![(w, h), (cw * 2, ch)],
            Self::Yuyv => vec![(cw * 4, h)],
            Self::Rgba | Self::Bgra => vec![(w * 4, h)],
            Self::Mjpeg => vec![],
        }
    }
}

/// One plane of pixels: `stride` bytes per row, at least the plane's width.
#[derive(Clone, PartialEq, Eq)]
pub struct Plane {
    pub data: Vec<u8>,
    pub stride: usize,
}

impl fmt::Debug for Plane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Plane({} bytes, stride {})",
            self.data.len(),
            self.stride
        )
    }
}

/// A picture with its format, size, strides and capture time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// I420: Y, U, V. NV12: Y, UV. Packed formats: one. MJPEG: the JPEG bytes
    /// (stride 0).
    pub planes: Vec<Plane>,
    pub timestamp: MediaTime,
}

/// A frame whose planes do not match its format and size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {format:?} frame of {width}×{height} {problem}")]
pub struct InvalidFrame {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub problem: String,
}

impl VideoFrame {
    /// A frame of `format` with tightly packed planes, filled with `fill` per plane
    /// (for I420, `[16, 128, 128]` is black).
    pub fn filled(
        format: PixelFormat,
        width: u32,
        height: u32,
        fill: &[u8],
        timestamp: MediaTime,
    ) -> Self {
        let planes = format
            .plane_sizes(width, height)
            .into_iter()
            .enumerate()
            .map(|(i, (row, rows))| Plane {
                data: vec![fill.get(i).copied().unwrap_or(0); row * rows],
                stride: row,
            })
            .collect();
        Self {
            format,
            width,
            height,
            planes,
            timestamp,
        }
    }

    /// Tightly packed RGBA pixels (an image crate buffer) as a frame.
    pub fn rgba(width: u32, height: u32, data: Vec<u8>, timestamp: MediaTime) -> Self {
        Self {
            format: PixelFormat::Rgba,
            width,
            height,
            planes: vec![Plane {
                data,
                stride: width as usize * 4,
            }],
            timestamp,
        }
    }

    /// A black I420 frame.
    pub fn black_i420(width: u32, height: u32, timestamp: MediaTime) -> Self {
        Self::filled(PixelFormat::I420, width, height, &[16, 128, 128], timestamp)
    }

    /// Checks plane count, strides and lengths against the format and size.
    pub fn check(&self) -> Result<(), InvalidFrame> {
        let fail = |problem: String| InvalidFrame {
            format: self.format,
            width: self.width,
            height: self.height,
            problem,
        };
        if self.width == 0 || self.height == 0 {
            return Err(fail("is empty".into()));
        }
        if self.format == PixelFormat::Mjpeg {
            return match self.planes.as_slice() {
                [jpeg] if !jpeg.data.is_empty() => Ok(()),
                _ => Err(fail("needs one non-empty JPEG plane".into())),
            };
        }
        let sizes = self.format.plane_sizes(self.width, self.height);
        if sizes.len() != self.planes.len() {
            return Err(fail(format!(
                "has {} planes, not {}",
                self.planes.len(),
                sizes.len()
            )));
        }
        for (i, ((row, rows), plane)) in sizes.iter().zip(&self.planes).enumerate() {
            if plane.stride < *row {
                return Err(fail(format!(
                    "plane {i} stride {} < row {row}",
                    plane.stride
                )));
            }
            let needed = plane.stride * (rows - 1) + row;
            if plane.data.len() < needed {
                return Err(fail(format!(
                    "plane {i} has {} bytes, needs {needed}",
                    plane.data.len()
                )));
            }
        }
        Ok(())
    }

    /// Row `y` of plane `plane`, exactly as wide as the plane.
    pub fn row(&self, plane: usize, y: usize) -> &[u8] {
        let (width, _) = self.format.plane_sizes(self.width, self.height)[plane];
        let p = &self.planes[plane];
        &p.data[y * p.stride..y * p.stride + width]
    }
}

/// 10 ms of 16-bit PCM, interleaved when there is more than one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
    pub timestamp: MediaTime,
}

impl AudioFrame {
    /// The engine's audio clock: 48 kHz, 10 ms frames (what Opus and the
    /// echo canceller both want).
    pub const RATE: u32 = 48_000;
    pub const SAMPLES_PER_10MS: usize = 480;

    pub fn duration(&self) -> Duration {
        let per_channel = self.samples.len() / usize::from(self.channels.max(1));
        Duration::from_micros(per_channel as u64 * 1_000_000 / u64::from(self.sample_rate.max(1)))
    }

    /// Root-mean-square level in dBFS (−∞ for silence is reported as −120).
    pub fn level_dbfs(&self) -> f64 {
        if self.samples.is_empty() {
            return -120.0;
        }
        let energy: f64 = self.samples.iter().map(|s| f64::from(*s).powi(2)).sum();
        let rms = (energy / self.samples.len() as f64).sqrt() / 32768.0;
        if rms <= 1e-6 {
            -120.0
        } else {
            20.0 * rms.log10()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_sizes_follow_the_formats() {
        assert_eq!(
            PixelFormat::I420.plane_sizes(1280, 720),
            [(1280, 720), (640, 360), (640, 360)]
        );
        assert_eq!(
            PixelFormat::I420.plane_sizes(5, 3),
            [(5, 3), (3, 2), (3, 2)]
        );
        assert_eq!(PixelFormat::Nv12.plane_sizes(4, 4), [(4, 4), (4, 2)]);
        assert_eq!(PixelFormat::Yuyv.plane_sizes(4, 2), [(8, 2)]);
        assert_eq!(PixelFormat::Bgra.plane_sizes(2, 2), [(8, 2)]);
    }

    #[test]
    fn check_finds_frames_that_lie_about_their_layout() {
        let ok = VideoFrame::black_i420(64, 48, MediaTime(1));
        assert_eq!(ok.check(), Ok(()));
        let mut short = ok.clone();
        short.planes[2].data.pop();
        assert!(short.check().unwrap_err().problem.contains("plane 2"));
        let mut narrow = ok.clone();
        narrow.planes[0].stride = 10;
        assert!(narrow.check().is_err());
        let mut two = ok;
        two.planes.pop();
        assert!(two.check().is_err());
        let jpeg = VideoFrame {
            format: PixelFormat::Mjpeg,
            width: 640,
            height: 480,
            planes: vec![],
            timestamp: MediaTime(0),
        };
        assert!(jpeg.check().is_err());
    }

    #[test]
    fn audio_level_and_duration() {
        let silence = AudioFrame {
            sample_rate: 48_000,
            channels: 1,
            samples: vec![0; 480],
            timestamp: MediaTime(0),
        };
        assert_eq!(silence.duration(), Duration::from_millis(10));
        assert_eq!(silence.level_dbfs(), -120.0);
        let full = AudioFrame {
            samples: (0..480)
                .map(|i| if i % 2 == 0 { 32767 } else { -32767 })
                .collect(),
            ..silence
        };
        assert!(full.level_dbfs() > -0.01);
    }
}
