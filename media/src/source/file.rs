//! A camera that plays a file: a PNG or APNG, a folder of PNGs in name order,
//! or raw I420 frames. Frames are decoded and converted once, at open, then
//! looped at their own timing.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use image::codecs::png::PngDecoder;
use image::{AnimationDecoder, RgbaImage};

use crate::convert::{ConvertError, convert};
use crate::frame::{MediaTime, PixelFormat, Plane, VideoFrame};

#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable PNG/APNG: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error("{path} holds no frames")]
    Empty { path: PathBuf },
    #[error("{path}: {bytes} bytes is not a whole number of {width}×{height} I420 frames")]
    RawSize {
        path: PathBuf,
        bytes: usize,
        width: u32,
        height: u32,
    },
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

/// Decoded frames, each shown for its delay.
#[derive(Debug, Clone)]
pub struct FileSource {
    frames: Vec<(VideoFrame, Duration)>,
    period: Duration,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileSourceError + '_ {
    move |source| FileSourceError::Io {
        path: path.to_owned(),
        source,
    }
}

fn image_error(path: &Path) -> impl FnOnce(image::ImageError) -> FileSourceError + '_ {
    move |e| FileSourceError::Image {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// An RGBA picture as I420, cropped to even sides (4:2:0 needs them).
fn rgba_to_i420(picture: RgbaImage) -> Result<VideoFrame, ConvertError> {
    let (w, h) = picture.dimensions();
    let (even_w, even_h) = (w & !1, h & !1);
    let cropped = if (even_w, even_h) == (w, h) {
        picture
    } else {
        image::imageops::crop_imm(&picture, 0, 0, even_w, even_h).to_image()
    };
    let frame = VideoFrame::rgba(even_w, even_h, cropped.into_raw(), MediaTime(0));
    convert(&frame, PixelFormat::I420)
}

impl FileSource {
    /// A PNG/APNG file, or a folder of PNGs played at `fps`.
    pub fn open(path: &Path, fps: u32) -> Result<Self, FileSourceError> {
        let still = Duration::from_secs(1) / fps.max(1);
        let frames = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io(path))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
                .collect();
            files.sort();
            files
                .iter()
                .map(|file| {
                    let picture = image::open(file).map_err(image_error(file))?.into_rgba8();
                    Ok((rgba_to_i420(picture)?, still))
                })
                .collect::<Result<Vec<_>, FileSourceError>>()?
        } else {
            Self::decode_png(path, still)?
        };
        Self::from_frames(frames, path)
    }

    fn decode_png(
        path: &Path,
        still: Duration,
    ) -> Result<Vec<(VideoFrame, Duration)>, FileSourceError> {
        let reader = BufReader::new(File::open(path).map_err(io(path))?);
        let decoder = PngDecoder::new(reader).map_err(image_error(path))?;
        if !decoder.is_apng().map_err(image_error(path))? {
            let picture = image::open(path).map_err(image_error(path))?.into_rgba8();
            return Ok(vec![(rgba_to_i420(picture)?, still)]);
        }
        decoder
            .apng()
            .map_err(image_error(path))?
            .into_frames()
            .map(|frame| {
                let frame = frame.map_err(image_error(path))?;
                let delay = Duration::from(frame.delay()).max(Duration::from_millis(10));
                Ok((rgba_to_i420(frame.into_buffer())?, delay))
            })
            .collect()
    }

    /// Raw I420 frames of `width × height`, back to back, played at `fps`.
    pub fn open_raw_i420(
        path: &Path,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<Self, FileSourceError> {
        let mut bytes = Vec::new();
        File::open(path)
            .map_err(io(path))?
            .read_to_end(&mut bytes)
            .map_err(io(path))?;
        let sizes = PixelFormat::I420.plane_sizes(width, height);
        let frame_len: usize = sizes.iter().map(|(w, h)| w * h).sum();
        if width == 0 || height == 0 || bytes.is_empty() || bytes.len() % frame_len != 0 {
            return Err(FileSourceError::RawSize {
                path: path.to_owned(),
                bytes: bytes.len(),
                width,
                height,
            });
        }
        let delay = Duration::from_secs(1) / fps.max(1);
        let frames = bytes
            .chunks_exact(frame_len)
            .map(|chunk| {
                let mut rest = chunk;
                let planes = sizes
                    .iter()
                    .map(|(w, h)| {
                        let (plane, tail) = rest.split_at(w * h);
                        rest = tail;
                        Plane {
                            data: plane.to_vec(),
                            stride: *w,
                        }
                    })
                    .collect();
                let frame = VideoFrame {
                    format: PixelFormat::I420,
                    width,
                    height,
                    planes,
                    timestamp: MediaTime(0),
                };
                (frame, delay)
            })
            .collect();
        Self::from_frames(frames, path)
    }

    fn from_frames(
        frames: Vec<(VideoFrame, Duration)>,
        path: &Path,
    ) -> Result<Self, FileSourceError> {
        if frames.is_empty() {
            return Err(FileSourceError::Empty {
                path: path.to_owned(),
            });
        }
        let period = frames.iter().map(|(_, d)| *d).sum();
        Ok(Self { frames, period })
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn size(&self) -> (u32, u32) {
        (self.frames[0].0.width, self.frames[0].0.height)
    }

    /// The frame showing `elapsed` after the start, looping; stamped `captured`.
    pub fn frame_at(&self, elapsed: Duration, captured: MediaTime) -> VideoFrame {
        let mut t =
            Duration::from_nanos((elapsed.as_nanos() % self.period.as_nanos().max(1)) as u64);
        for (frame, delay) in &self.frames {
            if t < *delay {
                let mut frame = frame.clone();
                frame.timestamp = captured;
                return frame;
            }
            t -= *delay;
        }
        let mut last = self.frames[self.frames.len() - 1].0.clone();
        last.timestamp = captured;
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::{ImageEncoder, Rgba};

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nexmile-file-source-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_folder_of_pngs_plays_in_name_order_and_loops() {
        let dir = temp_dir("folder");
        for (name, grey) in [
            ("b.png", 200u8),
            ("a.png", 50),
            ("c.png", 120),
            ("notes.txt", 0),
        ] {
            let picture = RgbaImage::from_pixel(33, 21, Rgba([grey, grey, grey, 255]));
            let mut bytes = Vec::new();
            PngEncoder::new(&mut bytes)
                .write_image(&picture, 33, 21, image::ExtendedColorType::Rgba8)
                .unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let source = FileSource::open(&dir, 10).unwrap();
        assert_eq!(source.len(), 3, "the .txt is not a frame");
        assert_eq!(source.size(), (32, 20), "cropped to even sides");
        let luma = |ms: u64| {
            source
                .frame_at(Duration::from_millis(ms), MediaTime(ms))
                .planes[0]
                .data[0]
        };
        let (a, b, c) = (luma(0), luma(100), luma(250));
        assert!(a < c && c < b, "{a} {b} {c}");
        assert_eq!(luma(300), a, "loops after 3 × 100 ms");
        assert_eq!(
            source.frame_at(Duration::ZERO, MediaTime(7)).timestamp,
            MediaTime(7)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_apng_plays_its_frames_with_their_delays() {
        let dir = temp_dir("apng");
        let path = dir.join("gift.png");
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, 16, 16);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_animated(3, 0).unwrap();
            let mut writer = encoder.write_header().unwrap();
            for (grey, delay_ms) in [(30u8, 100u16), (200, 200), (120, 100)] {
                writer.set_frame_delay(delay_ms, 1000).unwrap();
                writer
                    .write_image_data(&[grey, grey, grey, 255].repeat(256))
                    .unwrap();
            }
            writer.finish().unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        let source = FileSource::open(&path, 30).unwrap();
        assert_eq!(source.len(), 3);
        let luma = |ms: u64| {
            source
                .frame_at(Duration::from_millis(ms), MediaTime(0))
                .planes[0]
                .data[0]
        };
        let (first, second, third) = (luma(50), luma(150), luma(350));
        assert!(first < third && third < second, "{first} {second} {third}");
        assert_eq!(luma(250), second, "the second frame lasts 200 ms");
        assert_eq!(luma(450), first, "then it loops");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn raw_i420_needs_whole_frames() {
        let dir = temp_dir("raw");
        let path = dir.join("clip.yuv");
        std::fs::write(&path, vec![16u8; 64 * 48 * 3 / 2 * 2]).unwrap();
        let source = FileSource::open_raw_i420(&path, 64, 48, 30).unwrap();
        assert_eq!(source.len(), 2);
        source
            .frame_at(Duration::ZERO, MediaTime(0))
            .check()
            .unwrap();
        assert!(matches!(
            FileSource::open_raw_i420(&path, 64, 47, 30),
            Err(FileSourceError::RawSize { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_and_corrupt_files_are_clear_errors() {
        let dir = temp_dir("bad");
        let err = FileSource::open(&dir.join("nope.png"), 30).unwrap_err();
        assert!(err.to_string().contains("nope.png"), "{err}");
        let corrupt = dir.join("corrupt.png");
        std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        assert!(matches!(
            FileSource::open(&corrupt, 30),
            Err(FileSourceError::Image { .. })
        ));
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(matches!(
            FileSource::open(&empty, 30),
            Err(FileSourceError::Empty { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
