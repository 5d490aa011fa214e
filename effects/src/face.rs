//! Face detection with BlazeFace (short range, 128×128), and tracking of the
//! detected faces from frame to frame.
//!
//! The picture is letterboxed into the model's square input so faces keep
//! their shape; boxes come back in fractions of the original picture.

use std::time::Duration;

use crate::onnx::{Model, OnnxError};
use nexmile_media::convert::{Scaler, convert};
use nexmile_media::frame::{PixelFormat, VideoFrame};

/// A face, in fractions of the picture (0.0–1.0), with its detection score
/// and BlazeFace's six keypoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
    pub score: f32,
    /// Right eye, left eye, nose tip, mouth, right ear, left ear (the
    /// person's right: the left of a mirrored picture).
    pub keypoints: [(f32, f32); 6],
}

/// Indices into [`FaceBox::keypoints`].
pub mod keypoint {
    pub const RIGHT_EYE: usize = 0;
    pub const LEFT_EYE: usize = 1;
    pub const NOSE: usize = 2;
    pub const MOUTH: usize = 3;
}

impl FaceBox {
    pub fn width(&self) -> f32 {
        self.right - self.left
    }

    pub fn height(&self) -> f32 {
        self.bottom - self.top
    }

    fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// Intersection over union.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let w = (self.right.min(other.right) - self.left.max(other.left)).max(0.0);
        let h = (self.bottom.min(other.bottom) - self.top.max(other.top)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// The 896 anchor centres: a 16×16 grid with 2 anchors per cell, then an
/// 8×8 grid with 6, in the model's output order.
fn anchors() -> Vec<(f32, f32)> {
    let mut out = Vec::with_capacity(896);
    for (grid, per_cell) in [(16usize, 2usize), (8, 6)] {
        for y in 0..grid {
            for x in 0..grid {
                for _ in 0..per_cell {
                    out.push((
                        (x as f32 + 0.5) / grid as f32,
                        (y as f32 + 0.5) / grid as f32,
                    ));
                }
            }
        }
    }
    out
}

pub struct FaceDetector {
    model: Model,
    anchors: Vec<(f32, f32)>,
    scaler: Scaler,
    /// Scores below this are not faces.
    pub threshold: f32,
}

fn inference(e: impl std::fmt::Display) -> OnnxError {
    OnnxError::Inference(e.to_string())
}

impl FaceDetector {
    /// The model's square input side.
    pub const INPUT: usize = 128;

    pub fn new() -> Result<Self, OnnxError> {
        Ok(Self {
            model: Model::blazeface()?,
            anchors: anchors(),
            scaler: Scaler::default(),
            threshold: 0.6,
        })
    }

    /// The faces in an I420 or RGBA picture, all of its tiles seen (one
    /// inference per tile: two for 16:9).
    pub fn detect(&mut self, frame: &VideoFrame) -> Result<Vec<FaceBox>, OnnxError> {
        let mut found = Vec::new();
        for tile in tiles(frame.width, frame.height) {
            found.extend(self.detect_in(frame, tile)?);
        }
        Ok(suppress(found))
    }

    /// The faces in tile `turn` (modulo the picture's tile count) of
    /// `frame`: one inference, for a caller that looks at the tiles in turn
    /// and lets a tracker hold what the other tiles found.
    pub fn detect_turn(
        &mut self,
        frame: &VideoFrame,
        turn: usize,
    ) -> Result<Vec<FaceBox>, OnnxError> {
        let tiles = tiles(frame.width, frame.height);
        let tile = tiles[turn % tiles.len()];
        Ok(suppress(self.detect_in(frame, tile)?))
    }

    /// The faces in the part `tile` (x, y, width, height in pixels) of
    /// `frame`, in fractions of the whole picture.
    fn detect_in(
        &mut self,
        frame: &VideoFrame,
        tile: (u32, u32, u32, u32),
    ) -> Result<Vec<FaceBox>, OnnxError> {
        let part;
        let seen = if tile == (0, 0, frame.width, frame.height) {
            frame
        } else {
            part = crop(frame, tile).map_err(inference)?;
            &part
        };
        let faces = self.detect_whole(seen)?;
        // From the tile's fractions to the picture's.
        let (x, y, w, h) = (tile.0 as f32, tile.1 as f32, tile.2 as f32, tile.3 as f32);
        let (fw, fh) = (frame.width as f32, frame.height as f32);
        let to_x = |v: f32| (x + v * w) / fw;
        let to_y = |v: f32| (y + v * h) / fh;
        Ok(faces
            .into_iter()
            .map(|f| FaceBox {
                left: to_x(f.left),
                right: to_x(f.right),
                top: to_y(f.top),
                bottom: to_y(f.bottom),
                score: f.score,
                keypoints: f.keypoints.map(|(kx, ky)| (to_x(kx), to_y(ky))),
            })
            .collect())
    }

    /// Every anchor's face above the threshold in `frame` letterboxed
    /// whole into the model's input, before suppression.
    fn detect_whole(&mut self, frame: &VideoFrame) -> Result<Vec<FaceBox>, OnnxError> {
        // Fit the picture into 128×128 (even sides, for I420 scaling).
        let longest = frame.width.max(frame.height) as f32;
        let fit =
            |side: u32| ((side as f32 * Self::INPUT as f32 / longest).round() as u32).max(2) & !1;
        let (w, h) = (fit(frame.width), fit(frame.height));
        let small = self.scaler.scale(frame, w, h).map_err(inference)?;
        let rgba = convert(&small, PixelFormat::Rgba).map_err(inference)?;
        let (ox, oy) = (
            (Self::INPUT - w as usize) / 2,
            (Self::INPUT - h as usize) / 2,
        );
        // Letterbox in black, RGB scaled to [-1, 1], into the held input.
        let input = self.model.input_mut();
        input.fill(-1.0);
        let stride = rgba.planes[0].stride;
        for y in 0..h as usize {
            let row = &rgba.planes[0].data[y * stride..][..w as usize * 4];
            let start = ((oy + y) * Self::INPUT + ox) * 3;
            for (out, pixel) in input[start..start + w as usize * 3]
                .chunks_exact_mut(3)
                .zip(row.chunks_exact(4))
            {
                for (o, p) in out.iter_mut().zip(pixel) {
                    *o = f32::from(*p) / 127.5 - 1.0;
                }
            }
        }
        let outputs = self.model.infer()?;
        let mut scores: Vec<f32> = Vec::with_capacity(896);
        let mut boxes: Vec<[f32; 16]> = Vec::with_capacity(896);
        for (s, b) in [(&outputs[0], &outputs[2]), (&outputs[1], &outputs[3])] {
            scores.extend_from_slice(s);
            boxes.extend(b.chunks_exact(16).map(|r| {
                let mut row = [0.0; 16];
                row.copy_from_slice(r);
                row
            }));
        }
        let (fw, fh) = (w as f32 / Self::INPUT as f32, h as f32 / Self::INPUT as f32);
        let (fx, fy) = (
            ox as f32 / Self::INPUT as f32,
            oy as f32 / Self::INPUT as f32,
        );
        let found: Vec<FaceBox> = scores
            .iter()
            .zip(&boxes)
            .zip(&self.anchors)
            .filter_map(|((logit, b), (ax, ay))| {
                let score = 1.0 / (1.0 + (-logit).exp());
                if score < self.threshold {
                    return None;
                }
                let (cx, cy) = (
                    ax + b[0] / Self::INPUT as f32,
                    ay + b[1] / Self::INPUT as f32,
                );
                let (bw, bh) = (b[2] / Self::INPUT as f32, b[3] / Self::INPUT as f32);
                // From the square input back to the picture.
                let to_x = |v: f32| ((v - fx) / fw).clamp(0.0, 1.0);
                let to_y = |v: f32| ((v - fy) / fh).clamp(0.0, 1.0);
                let keypoints = std::array::from_fn(|k| {
                    (
                        to_x(ax + b[4 + 2 * k] / Self::INPUT as f32),
                        to_y(ay + b[5 + 2 * k] / Self::INPUT as f32),
                    )
                });
                Some(FaceBox {
                    left: to_x(cx - bw / 2.0),
                    right: to_x(cx + bw / 2.0),
                    top: to_y(cy - bh / 2.0),
                    bottom: to_y(cy + bh / 2.0),
                    score,
                    keypoints,
                })
            })
            .collect();
        Ok(found)
    }
}

/// Non-maximum suppression: overlapping anchors (and overlapping tiles)
/// see the same face; the best-scored one stays.
fn suppress(mut found: Vec<FaceBox>) -> Vec<FaceBox> {
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<FaceBox> = Vec::new();
    for candidate in found {
        if kept.iter().all(|k| k.iou(&candidate) < 0.3) {
            kept.push(candidate);
        }
    }
    kept
}

/// The squares a picture is looked at through (x, y, width, height). The
/// model's input is square: a 16:9 picture letterboxed whole would show a
/// face a quarter of the picture high at 18 of its 128 pixels, below what
/// the short-range model finds (the astronaut at 720p was missed). Squares
/// of the short side, spread evenly and overlapping, show it twice as
/// large. A picture near square is one tile, itself.
fn tiles(width: u32, height: u32) -> Vec<(u32, u32, u32, u32)> {
    let (long, short) = (width.max(height), width.min(height));
    let count = (long as f32 / short.max(1) as f32).round() as u32;
    if count <= 1 {
        return vec![(0, 0, width, height)];
    }
    (0..count)
        .map(|i| {
            // Even offsets, so I420 chroma crops with them.
            let offset = ((long - short) * i / (count - 1)) & !1;
            if width >= height {
                (offset, 0, short, short)
            } else {
                (0, offset, short, short)
            }
        })
        .collect()
}

/// The part (x, y, width, height; even for I420) of an I420 or RGBA picture.
fn crop(frame: &VideoFrame, (x, y, w, h): (u32, u32, u32, u32)) -> Result<VideoFrame, String> {
    let (x, y, w, h) = (x as usize, y as usize, w as usize, h as usize);
    let planes: &[(usize, usize)] = match frame.format {
        PixelFormat::I420 => &[(1, 1), (2, 1), (2, 1)],
        PixelFormat::Rgba | PixelFormat::Bgra => &[(1, 4)],
        other => {
            return Err(format!(
                "faces are found in I420 or RGBA pictures, not {other:?}"
            ));
        }
    };
    if x + w > frame.width as usize || y + h > frame.height as usize {
        return Err("the tile lies outside the picture".into());
    }
    let mut out = VideoFrame::filled(frame.format, w as u32, h as u32, &[], frame.timestamp);
    for (index, &(divisor, bytes)) in planes.iter().enumerate() {
        let (source, target) = (&frame.planes[index], &mut out.planes[index]);
        let (left, width) = (x / divisor * bytes, w.div_ceil(divisor) * bytes);
        for row in 0..h.div_ceil(divisor) {
            let from = (y / divisor + row) * source.stride + left;
            target.data[row * target.stride..][..width]
                .copy_from_slice(&source.data[from..from + width]);
        }
    }
    Ok(out)
}

/// Keeps faces steady between frames: boxes are smoothed, and a face the
/// detector misses for a moment stays covered for [`FaceTracker::HOLD`], so
/// a mosaic never flickers open. Sans-I/O: fed detections and a clock.
#[derive(Debug, Default)]
pub struct FaceTracker {
    tracks: Vec<(FaceBox, i64)>,
}

impl FaceTracker {
    pub const HOLD: Duration = Duration::from_millis(500);
    /// Weight of the new detection in the smoothed box.
    const SMOOTHING: f32 = 0.6;

    pub fn update(&mut self, detections: &[FaceBox], now_us: i64) -> Vec<FaceBox> {
        for detection in detections {
            let best = self
                .tracks
                .iter_mut()
                .map(|t| (t.0.iou(detection), t))
                .filter(|(iou, _)| *iou > 0.2)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            match best {
                Some((_, (tracked, seen))) => {
                    let mix = |old: f32, new: f32| old + (new - old) * Self::SMOOTHING;
                    *tracked = FaceBox {
                        left: mix(tracked.left, detection.left),
                        top: mix(tracked.top, detection.top),
                        right: mix(tracked.right, detection.right),
                        bottom: mix(tracked.bottom, detection.bottom),
                        score: detection.score,
                        keypoints: std::array::from_fn(|k| {
                            let (old, new) = (tracked.keypoints[k], detection.keypoints[k]);
                            (mix(old.0, new.0), mix(old.1, new.1))
                        }),
                    };
                    *seen = now_us;
                }
                None => self.tracks.push((*detection, now_us)),
            }
        }
        let hold = i64::try_from(Self::HOLD.as_micros()).unwrap_or(i64::MAX);
        self.tracks.retain(|(_, seen)| now_us - seen <= hold);
        self.tracks.iter().map(|(b, _)| *b).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmile_media::frame::MediaTime;

    fn face(left: f32, top: f32) -> FaceBox {
        FaceBox {
            left,
            top,
            right: left + 0.2,
            bottom: top + 0.2,
            score: 0.9,
            keypoints: [
                (left + 0.07, top + 0.08),
                (left + 0.13, top + 0.08),
                (left + 0.1, top + 0.11),
                (left + 0.1, top + 0.15),
                (left, top + 0.1),
                (left + 0.2, top + 0.1),
            ],
        }
    }

    #[test]
    fn wide_and_tall_pictures_are_seen_through_overlapping_squares() {
        assert_eq!(tiles(512, 512), [(0, 0, 512, 512)]);
        assert_eq!(tiles(640, 480), [(0, 0, 640, 480)], "4:3 is seen whole");
        assert_eq!(tiles(1280, 720), [(0, 0, 720, 720), (560, 0, 720, 720)]);
        assert_eq!(tiles(320, 180), [(0, 0, 180, 180), (140, 0, 180, 180)]);
        assert_eq!(tiles(720, 1280), [(0, 0, 720, 720), (0, 560, 720, 720)]);
        assert_eq!(tiles(1920, 600).len(), 3);
    }

    #[test]
    fn crops_take_every_plane_of_the_part() {
        let mut frame = VideoFrame::filled(PixelFormat::I420, 8, 4, &[0, 0, 0], MediaTime(0));
        let (luma, chroma) = (frame.planes[0].stride, frame.planes[1].stride);
        frame.planes[0].data[luma + 5] = 200;
        frame.planes[1].data[chroma + 2] = 100;
        let part = crop(&frame, (4, 0, 4, 4)).unwrap();
        assert_eq!(part.planes[0].data[part.planes[0].stride + 1], 200);
        assert_eq!(part.planes[1].data[part.planes[1].stride], 100);
        assert!(crop(&frame, (6, 0, 4, 4)).is_err());
    }

    #[test]
    fn anchors_follow_the_two_grids() {
        let a = anchors();
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], (0.5 / 16.0, 0.5 / 16.0));
        assert_eq!(a[1], a[0], "two anchors per 16×16 cell");
        assert_eq!(a[512], (0.5 / 8.0, 0.5 / 8.0));
        assert_eq!(a[895], (7.5 / 8.0, 7.5 / 8.0));
    }

    #[test]
    fn tracker_smooths_and_holds_a_missed_face() {
        let mut t = FaceTracker::default();
        assert_eq!(t.update(&[face(0.1, 0.1)], 0).len(), 1);
        let moved = t.update(&[face(0.15, 0.1)], 33_000);
        assert_eq!(moved.len(), 1, "the same face, not a second one");
        assert!(
            (moved[0].left - 0.13).abs() < 1e-6,
            "smoothed toward the new box"
        );
        assert_eq!(
            t.update(&[], 300_000).len(),
            1,
            "held while the detector blinks"
        );
        assert_eq!(t.update(&[], 600_000).len(), 0, "gone after the hold");
        assert_eq!(
            t.update(&[face(0.1, 0.1), face(0.6, 0.5)], 700_000).len(),
            2
        );
    }
}
