//! Mosaic (モザイク処理): pixelation of the faces in the picture, or of the
//! whole picture, for privacy.
//!
//! Blocks sit on a fixed grid of the picture, not of the face, so a moving
//! face does not make the blocks shimmer; faces are tracked so the mosaic
//! never opens for a frame the detector missed.

use nexmile_media::frame::{PixelFormat, VideoFrame};

use crate::face::FaceBox;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum MosaicArea {
    Faces,
    WholeFrame,
}

#[derive(
    Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct MosaicSettings {
    pub area: MosaicArea,
    /// Block side in pixels of the picture (even, at least 4).
    pub block: u32,
    /// Extra cover around each face, as a share of its size on every side.
    pub padding: f32,
}

impl Default for MosaicSettings {
    fn default() -> Self {
        Self {
            area: MosaicArea::Faces,
            block: 16,
            padding: 0.25,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the mosaic works on I420 pictures, not {0:?}")]
pub struct MosaicError(pub PixelFormat);

/// Replaces every grid block that touches `[x0, x1) × [y0, y1)` by its mean,
/// in all three planes.
pub fn pixelate(frame: &mut VideoFrame, (x0, y0, x1, y1): (u32, u32, u32, u32), block: u32) {
    let block = block.max(4) & !1;
    let (bx0, by0) = (x0 / block * block, y0 / block * block);
    let (x1, y1) = (x1.min(frame.width), y1.min(frame.height));
    // Column sums of one band of blocks, and the band's row of means.
    let (mut sums, mut means) = (Vec::new(), Vec::new());
    for (plane, scale) in [(0usize, 1u32), (1, 2), (2, 2)] {
        let (side, stride) = ((block / scale) as usize, frame.planes[plane].stride);
        let (pw, ph) = (
            frame.width.div_ceil(scale) as usize,
            frame.height.div_ceil(scale) as usize,
        );
        let (start_x, start_y) = ((bx0 / scale) as usize, (by0 / scale) as usize);
        let (end_x, end_y) = (x1.div_ceil(scale) as usize, y1.div_ceil(scale) as usize);
        if start_x >= end_x || start_y >= end_y {
            continue;
        }
        // The blocks cover whole blocks past the area's end (but not the plane's).
        let right = (start_x + (end_x - start_x).div_ceil(side) * side).min(pw);
        let data = &mut frame.planes[plane].data;
        for top in (start_y..end_y).step_by(side) {
            let bottom = (top + side).min(ph);
            // Whole rows added at once (vectorised), then each block's columns.
            sums.clear();
            sums.resize(right - start_x, 0u32);
            for y in top..bottom {
                let row = &data[y * stride + start_x..y * stride + right];
                for (sum, v) in sums.iter_mut().zip(row) {
                    *sum += u32::from(*v);
                }
            }
            means.clear();
            for columns in sums.chunks(side) {
                let count = (columns.len() * (bottom - top)) as u32;
                let sum: u32 = columns.iter().sum();
                // Rounded, as OpenCV's INTER_AREA.
                let mean = ((sum + count / 2) / count) as u8;
                means.extend(std::iter::repeat_n(mean, columns.len()));
            }
            for y in top..bottom {
                data[y * stride + start_x..y * stride + right].copy_from_slice(&means);
            }
        }
    }
}

/// Covers faces found by the chain's detector, or the whole picture.
pub struct Mosaic {
    settings: MosaicSettings,
}

impl Mosaic {
    pub fn new(settings: MosaicSettings) -> Self {
        Self { settings }
    }

    /// Whether this mosaic needs the faces of each picture.
    pub fn needs_faces(&self) -> bool {
        self.settings.area == MosaicArea::Faces
    }

    /// Covers `faces` (or everything) on an outgoing I420 picture.
    pub fn apply(&self, frame: &mut VideoFrame, faces: &[FaceBox]) -> Result<(), MosaicError> {
        if frame.format != PixelFormat::I420 {
            return Err(MosaicError(frame.format));
        }
        let block = self.settings.block;
        if !self.needs_faces() {
            pixelate(frame, (0, 0, frame.width, frame.height), block);
            return Ok(());
        }
        let (w, h) = (frame.width as f32, frame.height as f32);
        for face in faces {
            let (pad_x, pad_y) = (
                face.width() * self.settings.padding,
                face.height() * self.settings.padding,
            );
            let rect = (
                ((face.left - pad_x).max(0.0) * w) as u32,
                ((face.top - pad_y).max(0.0) * h) as u32,
                ((face.right + pad_x).min(1.0) * w).ceil() as u32,
                ((face.bottom + pad_y).min(1.0) * h).ceil() as u32,
            );
            pixelate(frame, rect, block);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmile_media::frame::MediaTime;

    #[test]
    fn pixelation_averages_grid_blocks_and_leaves_the_rest() {
        let mut frame = VideoFrame::black_i420(64, 32, MediaTime(0));
        for (i, v) in frame.planes[0].data.iter_mut().enumerate() {
            *v = (i % 64) as u8 * 2;
        }
        let before = frame.clone();
        pixelate(&mut frame, (20, 4, 30, 10), 16);
        // The region touches the blocks x 16..32, y 0..16.
        let row = |f: &VideoFrame, y: usize| f.planes[0].data[y * 64..y * 64 + 64].to_vec();
        let inside = row(&frame, 5);
        assert!(
            inside[16..32].iter().all(|v| *v == inside[16]),
            "one value per block"
        );
        assert_eq!(inside[16], 47, "the mean of 32, 34, …, 62");
        assert_eq!(
            inside[..16],
            row(&before, 5)[..16],
            "left of the block untouched"
        );
        assert_eq!(inside[32..], row(&before, 5)[32..], "right of it too");
        assert_eq!(row(&frame, 20), row(&before, 20), "below untouched");
    }

    #[test]
    fn whole_frame_mode_needs_no_faces() {
        let mosaic = Mosaic::new(MosaicSettings {
            area: MosaicArea::WholeFrame,
            ..MosaicSettings::default()
        });
        assert!(!mosaic.needs_faces());
        let mut frame = VideoFrame::black_i420(64, 64, MediaTime(0));
        frame.planes[0].data[0] = 255;
        mosaic.apply(&mut frame, &[]).unwrap();
        assert_eq!(frame.planes[0].data[0], frame.planes[0].data[15 * 64 + 15]);
        let mut rgba = VideoFrame::filled(PixelFormat::Rgba, 4, 4, &[0], MediaTime(0));
        assert_eq!(
            mosaic.apply(&mut rgba, &[]),
            Err(MosaicError(PixelFormat::Rgba))
        );
    }
}
