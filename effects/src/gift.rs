//! APNG gifts composited onto the outgoing camera picture (§5.4.1
//! `apngOnVideoProcessor`): every viewer sees the gift at the same moment,
//! because it is part of the video.
//!
//! The frame shown is chosen by wall-clock time since the gift started, so
//! the animation keeps its own timing whatever the camera's frame rate. The
//! sprite is scaled with alpha premultiplied (no dark fringes) and blended
//! onto I420 in BT.601 limited range: luma per pixel, chroma per 2×2 block
//! weighted by the block's coverage.

use std::sync::Arc;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbaImage;
use nexmile_media::frame::{MediaTime, PixelFormat, VideoFrame};

use crate::animation::Animation;
use crate::blend::blend_row;

/// Where the gift goes, in fractions of the picture, so it lands in the same
/// place at any resolution the bandwidth ladder picks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Centre, 0.0 (left/top) to 1.0 (right/bottom).
    pub center_x: f32,
    pub center_y: f32,
    /// The gift's width as a share of the picture's width; height follows
    /// the animation's aspect ratio.
    pub width: f32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiftError {
    #[error("gifts are composited onto I420 pictures, not {0:?}")]
    Format(PixelFormat),
    #[error("scaling the gift failed: {0}")]
    Scale(String),
}

/// Where a scaled frame was placed (top-left, picture size) and what it
/// became there (`None`: off the picture).
type Placed = ((i64, i64), (u32, u32), Option<PlacedSprite>);

/// One gift playing on the outgoing video.
pub struct GiftOverlay {
    animation: Arc<Animation>,
    placement: Placement,
    started: MediaTime,
    resizer: Resizer,
    /// The last scaled frame: (frame index, width, height, pixels).
    scaled: Option<(usize, u32, u32, RgbaImage)>,
    /// That frame placed on the picture.
    placed: Option<Placed>,
}

/// BT.601 limited range, the integer form libyuv and browsers use.
fn yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (y as u8, u as u8, v as u8)
}

impl GiftOverlay {
    pub fn new(animation: Arc<Animation>, placement: Placement, started: MediaTime) -> Self {
        Self {
            animation,
            placement,
            started,
            resizer: Resizer::new(),
            scaled: None,
            placed: None,
        }
    }

    /// Draws the gift's current frame onto `frame`. `Ok(false)` once the
    /// animation has played out: the caller drops the overlay.
    pub fn composite(&mut self, frame: &mut VideoFrame, now: MediaTime) -> Result<bool, GiftError> {
        if frame.format != PixelFormat::I420 {
            return Err(GiftError::Format(frame.format));
        }
        let Some(index) = self
            .animation
            .frame_index_at(now.saturating_since(self.started))
        else {
            return Ok(false);
        };
        let (aw, ah) = self.animation.size();
        let width =
            ((frame.width as f32 * self.placement.width).round() as u32).clamp(2, frame.width);
        let height = ((width as f32 * ah as f32 / aw as f32).round() as u32).clamp(2, frame.height);
        let rescaled = self.scale(index, width, height)?;
        let Some((_, _, _, sprite)) = &self.scaled else {
            return Ok(true);
        };
        let left =
            (frame.width as f32 * self.placement.center_x - width as f32 / 2.0).round() as i64;
        let top =
            (frame.height as f32 * self.placement.center_y - height as f32 / 2.0).round() as i64;
        let key = ((left, top), (frame.width, frame.height));
        let placed = match &mut self.placed {
            Some((at, size, placed)) if !rescaled && (*at, *size) == key => placed,
            slot => {
                &mut slot
                    .insert((key.0, key.1, PlacedSprite::new(sprite, key.0, key.1)))
                    .2
            }
        };
        if let Some(placed) = placed {
            placed.draw(frame);
        }
        Ok(true)
    }

    /// Scales the animation's frame `index` unless it is held already;
    /// whether it was scaled anew.
    fn scale(&mut self, index: usize, width: u32, height: u32) -> Result<bool, GiftError> {
        if matches!(&self.scaled, Some((i, w, h, _)) if (*i, *w, *h) == (index, width, height)) {
            return Ok(false);
        }
        let source = &self.animation.frames()[index].image;
        let scaled = if source.dimensions() == (width, height) {
            source.clone()
        } else {
            let src = ImageRef::new(
                source.width(),
                source.height(),
                source.as_raw(),
                PixelType::U8x4,
            )
            .map_err(|e| GiftError::Scale(e.to_string()))?;
            let mut dst = Image::new(width, height, PixelType::U8x4);
            // use_alpha: premultiply before filtering, so transparent pixels
            // do not bleed their (black) colour into the edges.
            let options = ResizeOptions::new()
                .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
                .use_alpha(true);
            self.resizer
                .resize(&src, &mut dst, &options)
                .map_err(|e| GiftError::Scale(e.to_string()))?;
            RgbaImage::from_raw(width, height, dst.into_vec())
                .ok_or_else(|| GiftError::Scale("buffer size".into()))?
        };
        self.scaled = Some((index, width, height, scaled));
        Ok(true)
    }
}

/// A sprite in the picture's own terms for one place on it, clipped: luma
/// per pixel and chroma per 2×2 block, each with how much of the picture
/// shows through (255 − alpha, the block's coverage for chroma). Made once
/// per scaled gift frame, it is then blended row by row in 16-bit lanes.
pub(crate) struct PlacedSprite {
    /// Top-left of the clipped luma area, and its size.
    luma_at: (usize, usize),
    luma_size: (usize, usize),
    luma: Vec<u8>,
    luma_through: Vec<u8>,
    chroma_at: (usize, usize),
    chroma_size: (usize, usize),
    u: Vec<u8>,
    v: Vec<u8>,
    chroma_through: Vec<u8>,
}

impl PlacedSprite {
    /// `sprite` with its top-left at (`left`, `top`) on a `width × height`
    /// I420 picture; `None` if none of it lands on the picture.
    pub(crate) fn new(
        sprite: &RgbaImage,
        (left, top): (i64, i64),
        (width, height): (u32, u32),
    ) -> Option<Self> {
        let (fw, fh) = (i64::from(width), i64::from(height));
        let (sw, sh) = (i64::from(sprite.width()), i64::from(sprite.height()));
        let (x0, y0) = (left.max(0), top.max(0));
        let (x1, y1) = ((left + sw).min(fw), (top + sh).min(fh));
        if x0 >= x1 || y0 >= y1 {
            return None;
        }
        let pixel = |x: i64, y: i64| -> Option<[u8; 4]> {
            let (sx, sy) = (x - left, y - top);
            (sx >= 0 && sy >= 0 && sx < sw && sy < sh)
                .then(|| sprite.get_pixel(sx as u32, sy as u32).0)
        };
        let (mut luma, mut luma_through) = (Vec::new(), Vec::new());
        for y in y0..y1 {
            for x in x0..x1 {
                let [r, g, b, a] = pixel(x, y).unwrap_or_default();
                luma.push(yuv(r, g, b).0);
                luma_through.push(255 - a);
            }
        }
        // Chroma: each 2×2 block takes the coverage-weighted colour of its pixels.
        let (cx0, cy0, cx1, cy1) = (x0 / 2, y0 / 2, (x1 + 1) / 2, (y1 + 1) / 2);
        let (mut u, mut v, mut chroma_through) = (Vec::new(), Vec::new(), Vec::new());
        for cy in cy0..cy1 {
            for cx in cx0..cx1 {
                let (mut u_sum, mut v_sum, mut alpha_sum) = (0u32, 0u32, 0u32);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    if let Some([r, g, b, a]) = pixel(cx * 2 + dx, cy * 2 + dy) {
                        let (_, pu, pv) = yuv(r, g, b);
                        u_sum += u32::from(pu) * u32::from(a);
                        v_sum += u32::from(pv) * u32::from(a);
                        alpha_sum += u32::from(a);
                    }
                }
                let (pu, pv) = match alpha_sum {
                    0 => (128, 128),
                    _ => ((u_sum / alpha_sum) as u8, (v_sum / alpha_sum) as u8),
                };
                u.push(pu);
                v.push(pv);
                chroma_through.push(255 - (alpha_sum / 4) as u8);
            }
        }
        let at = |x: i64, y: i64| (x as usize, y as usize);
        Some(Self {
            luma_at: at(x0, y0),
            luma_size: at(x1 - x0, y1 - y0),
            luma,
            luma_through,
            chroma_at: at(cx0, cy0),
            chroma_size: at(cx1 - cx0, cy1 - cy0),
            u,
            v,
            chroma_through,
        })
    }

    /// Blends the sprite onto `frame`, the I420 picture it was placed for.
    pub(crate) fn draw(&self, frame: &mut VideoFrame) {
        let planes = [
            (
                0,
                self.luma_at,
                self.luma_size,
                &self.luma,
                &self.luma_through,
            ),
            (
                1,
                self.chroma_at,
                self.chroma_size,
                &self.u,
                &self.chroma_through,
            ),
            (
                2,
                self.chroma_at,
                self.chroma_size,
                &self.v,
                &self.chroma_through,
            ),
        ];
        for (plane, (x, y), (w, h), values, through) in planes {
            let plane = &mut frame.planes[plane];
            for row in 0..h {
                let at = (y + row) * plane.stride + x;
                blend_row(
                    &mut plane.data[at..at + w],
                    &values[row * w..(row + 1) * w],
                    &through[row * w..(row + 1) * w],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use nexmile_media::source::pattern::{TestPattern, read_stamp};

    fn solid_animation(colours: &[[u8; 4]], delay_ms: u16, plays: u32) -> Arc<Animation> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, 20, 10);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_animated(colours.len() as u32, plays).unwrap();
        let mut writer = encoder.write_header().unwrap();
        for colour in colours {
            writer.set_frame_delay(delay_ms, 1000).unwrap();
            writer.write_image_data(&colour.repeat(200)).unwrap();
        }
        writer.finish().unwrap();
        Arc::new(Animation::decode(&bytes).unwrap())
    }

    fn grey_frame() -> VideoFrame {
        VideoFrame::filled(PixelFormat::I420, 320, 180, &[100, 128, 128], MediaTime(0))
    }

    const CENTRE: Placement = Placement {
        center_x: 0.5,
        center_y: 0.5,
        width: 0.25,
    };

    #[test]
    fn an_opaque_red_gift_lands_where_placed_with_red_colours() {
        let gift = solid_animation(&[[255, 0, 0, 255]], 100, 0);
        let mut overlay = GiftOverlay::new(gift, CENTRE, MediaTime(0));
        let mut frame = grey_frame();
        assert!(overlay.composite(&mut frame, MediaTime(10_000)).unwrap());
        // 80×40 at the centre: (120..200, 70..110).
        let y = |x: usize, y: usize| frame.planes[0].data[y * 320 + x];
        assert_eq!(y(160, 90), 82, "red is Y 82");
        assert_eq!(y(119, 90), 100, "outside is untouched");
        assert_eq!(y(120, 90), 82);
        assert_eq!(y(199, 109), 82);
        assert_eq!(y(200, 90), 100);
        let v = frame.planes[2].data[45 * 160 + 80];
        assert!(v > 230, "red has high V: {v}");
    }

    #[test]
    fn half_transparent_pixels_blend_and_transparent_ones_do_not_touch() {
        let mut frame = grey_frame();
        let mut half = GiftOverlay::new(
            solid_animation(&[[255, 255, 255, 128]], 100, 0),
            CENTRE,
            MediaTime(0),
        );
        half.composite(&mut frame, MediaTime(0)).unwrap();
        let mid = frame.planes[0].data[90 * 320 + 160];
        assert!((166..=169).contains(&mid), "halfway from 100 to 235: {mid}");
        let mut clear = grey_frame();
        let mut none = GiftOverlay::new(
            solid_animation(&[[255, 255, 255, 0]], 100, 0),
            CENTRE,
            MediaTime(0),
        );
        none.composite(&mut clear, MediaTime(0)).unwrap();
        assert_eq!(clear, grey_frame());
    }

    #[test]
    fn timing_is_wall_clock_not_camera_frames_and_ends_with_the_animation() {
        let gift = solid_animation(&[[255, 0, 0, 255], [0, 0, 255, 255]], 500, 1);
        let mut overlay = GiftOverlay::new(gift, CENTRE, MediaTime(1_000_000));
        let luma_at = |overlay: &mut GiftOverlay, ms: u64| {
            let mut frame = grey_frame();
            let playing = overlay
                .composite(&mut frame, MediaTime(1_000_000 + ms * 1000))
                .unwrap();
            (playing, frame.planes[0].data[90 * 320 + 160])
        };
        // A 5 fps camera and a 60 fps camera see the same frame at the same time.
        assert_eq!(luma_at(&mut overlay, 100), (true, 82), "red first");
        assert_eq!(luma_at(&mut overlay, 600), (true, 41), "blue after 500 ms");
        assert_eq!(
            luma_at(&mut overlay, 1000),
            (false, 100),
            "played once, gone"
        );
    }

    #[test]
    fn gifts_clip_at_the_edges_and_keep_the_stamp_strip_readable_elsewhere() {
        let gift = solid_animation(&[[0, 255, 0, 255]], 100, 0);
        let corner = Placement {
            center_x: 1.0,
            center_y: 1.0,
            width: 0.5,
        };
        let mut overlay = GiftOverlay::new(gift, corner, MediaTime(0));
        let mut frame = TestPattern::new(640, 360).unwrap().render(42, MediaTime(7));
        overlay
            .composite(
                &mut frame,
                MediaTime(Duration::from_millis(5).as_micros() as u64),
            )
            .unwrap();
        frame.check().unwrap();
        assert_eq!(read_stamp(&frame).map(|s| s.sequence), Some(42));
        assert_eq!(frame.planes[0].data[359 * 640 + 639], 144, "green is Y 144");
        let rgba = nexmile_media::convert::convert(&frame, PixelFormat::Rgba).unwrap();
        assert!(overlay.composite(&mut rgba.clone(), MediaTime(0)).is_err());
    }
}
