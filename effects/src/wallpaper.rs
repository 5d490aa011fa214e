//! Wallpaper (背景設定): the person stays, the background becomes a blur, a
//! picture or a colour.
//!
//! MediaPipe's selfie segmentation (256×256, or its 144×256 landscape form
//! for wide pictures) gives a coarse person mask. It
//! is smoothed over time (no flicker on still hair and shoulders) and refined
//! with a guided filter that follows the picture's own edges (no halo), at
//! a quarter of the picture's resolution, then scaled up and used to blend.

use crate::onnx::{Model, OnnxError};
use ndarray::Array4;
use nexmile_media::convert::{Scaler, convert};
use nexmile_media::frame::{PixelFormat, VideoFrame};

/// The models' input sizes, width × height.
const SQUARE_INPUT: (usize, usize) = (256, 256);
const LANDSCAPE_INPUT: (usize, usize) = (256, 144);
/// Pictures at least this much wider than high use the landscape model (16:9 does, 4:3 does not).
const LANDSCAPE_FROM: f32 = 1.5;
/// Weight of the newest mask against the running one.
const TEMPORAL_WEIGHT: f32 = 0.65;
const GUIDE_RADIUS: usize = 4;
const GUIDE_EPS: f32 = 1e-3;

/// What replaces the background.
#[derive(Debug, Clone, PartialEq)]
pub enum Background {
    /// The camera's own background, blurred.
    Blur,
    /// A solid colour, RGB.
    Colour([u8; 3]),
    /// A picture (I420, any size: scaled to the camera picture).
    Picture(VideoFrame),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WallpaperError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("the wallpaper works on I420 pictures, not {0:?}")]
    Format(PixelFormat),
    #[error("{0}")]
    Image(String),
}

fn image_error(e: impl std::fmt::Display) -> WallpaperError {
    WallpaperError::Image(e.to_string())
}

/// What the model saw in a frame, before resampling and refinement.
struct Inferred {
    /// Person probabilities over the model's input, row by row.
    probability: Vec<f32>,
    /// The input's width.
    input_width: usize,
    /// Where the picture lies in the letterboxed input: x, y, width, height.
    region: (f32, f32, f32, f32),
    /// The working size the mask is made at.
    size: (usize, usize),
}

pub struct Wallpaper {
    square: Model,
    landscape: Model,
    background: Background,
    scaler: Scaler,
    /// The running mask at working resolution, with its size.
    mask: Option<(usize, usize, Vec<f32>)>,
    /// The last refined mask, reused on the frames between segmentations.
    refined: Option<(usize, usize, Vec<f32>)>,
    frames: u64,
    /// The mask at full and at chroma resolution, kept between frames.
    alpha: Vec<u8>,
    chroma_alpha: Vec<u8>,
}

/// The mask is refined at a quarter of the picture's size (320×180 for
/// 720p) — a quarter of the guided filter's cost at half size, with edges
/// still following the picture — then scaled up for blending.
const WORK_DIVISOR: usize = 4;

fn working_size(frame: &VideoFrame) -> (usize, usize) {
    (
        (frame.width as usize / WORK_DIVISOR).max(2) & !1,
        (frame.height as usize / WORK_DIVISOR).max(2) & !1,
    )
}

/// Segment every this many frames: a 30 fps camera gets a 15 fps mask. A
/// segmenting frame blends its own mask; the next one reuses it, so the
/// mask is never more than one frame old.
const SEGMENT_EVERY: u64 = 2;

/// Box filter of radius `r` over a `w × h` grid (running sums, O(n)).
fn box_filter(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut rows = vec![0.0; w * h];
    for y in 0..h {
        let line = &src[y * w..(y + 1) * w];
        let mut sum: f32 = line[..r.min(w)].iter().sum();
        for x in 0..w {
            if x + r < w {
                sum += line[x + r];
            }
            if x > r {
                sum -= line[x - r - 1];
            }
            let count = (x + r).min(w - 1) - x.saturating_sub(r) + 1;
            rows[y * w + x] = sum / count as f32;
        }
    }
    // Down the columns with whole rows at a time: a running row of sums,
    // added to and taken from in order (cache-friendly, vectorised).
    let mut out = vec![0.0; w * h];
    let mut sums = vec![0.0f32; w];
    for row in rows.chunks_exact(w).take(r.min(h)) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    for y in 0..h {
        if y + r < h {
            let entering = &rows[(y + r) * w..(y + r + 1) * w];
            sums.iter_mut().zip(entering).for_each(|(s, v)| *s += v);
        }
        if y > r {
            let leaving = &rows[(y - r - 1) * w..(y - r) * w];
            sums.iter_mut().zip(leaving).for_each(|(s, v)| *s -= v);
        }
        let count = ((y + r).min(h - 1) - y.saturating_sub(r) + 1) as f32;
        out[y * w..(y + 1) * w]
            .iter_mut()
            .zip(&sums)
            .for_each(|(o, s)| *o = s / count);
    }
    out
}

/// He et al.'s guided filter: `mask` refined along the edges of `guide`.
fn guided_filter(guide: &[f32], mask: &[f32], w: usize, h: usize) -> Vec<f32> {
    let product = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).collect::<Vec<f32>>();
    let mean_i = box_filter(guide, w, h, GUIDE_RADIUS);
    let mean_p = box_filter(mask, w, h, GUIDE_RADIUS);
    let corr_ii = box_filter(&product(guide, guide), w, h, GUIDE_RADIUS);
    let corr_ip = box_filter(&product(guide, mask), w, h, GUIDE_RADIUS);
    let mut a = vec![0.0; w * h];
    let mut b = vec![0.0; w * h];
    for i in 0..w * h {
        let var = corr_ii[i] - mean_i[i] * mean_i[i];
        let cov = corr_ip[i] - mean_i[i] * mean_p[i];
        a[i] = cov / (var + GUIDE_EPS);
        b[i] = mean_p[i] - a[i] * mean_i[i];
    }
    let (mean_a, mean_b) = (
        box_filter(&a, w, h, GUIDE_RADIUS),
        box_filter(&b, w, h, GUIDE_RADIUS),
    );
    (0..w * h)
        .map(|i| (mean_a[i] * guide[i] + mean_b[i]).clamp(0.0, 1.0))
        .collect()
}

/// Where an output pixel samples a source axis: the lower neighbour, the
/// upper one, and the upper's weight in 1/256 (pixel centres aligned, as
/// OpenCV's INTER_LINEAR).
fn axis_map(source: usize, target: usize) -> Vec<(usize, usize, u32)> {
    (0..target)
        .map(|i| {
            let f = ((i as f32 + 0.5) * source as f32 / target as f32 - 0.5).max(0.0);
            let low = (f as usize).min(source - 1);
            let high = (low + 1).min(source - 1);
            let weight = if high == low {
                0
            } else {
                ((f - low as f32) * 256.0).round() as u32
            };
            (low, high, weight)
        })
        .collect()
}

/// One 8-bit plane scaled up bilinearly (`sw × sh` with `src_stride` into
/// `dw × dh` with `dst_stride`).
///
/// Written by hand because it is measurably faster here than
/// fast_image_resize's general convolution (effects/README.md): each source
/// row is interpolated across once, into a row of 1/256 steps, and every
/// output row is then a vertical blend of two such rows, one multiply-add
/// per pixel that the compiler vectorises.
fn upscale_plane(
    src: &[u8],
    (sw, sh, src_stride): (usize, usize, usize),
    dst: &mut [u8],
    (dw, dh, dst_stride): (usize, usize, usize),
) {
    let columns = axis_map(sw, dw);
    // A source row across, in 1/256 steps: at most 255 × 256, a u16.
    let across = |row: usize, out: &mut [u16]| {
        let line = &src[row * src_stride..row * src_stride + sw];
        for (o, &(low, high, t)) in out.iter_mut().zip(&columns) {
            *o = (u32::from(line[low]) * (256 - t) + u32::from(line[high]) * t) as u16;
        }
    };
    let (mut upper, mut lower) = (vec![0u16; dw], vec![0u16; dw]);
    let mut held = (usize::MAX, usize::MAX);
    for (y, (low, high, t)) in axis_map(sh, dh).into_iter().enumerate() {
        if held != (low, high) {
            if held.1 == low {
                std::mem::swap(&mut upper, &mut lower);
            } else {
                across(low, &mut upper);
            }
            across(high, &mut lower);
            held = (low, high);
        }
        let out = &mut dst[y * dst_stride..y * dst_stride + dw];
        if t == 0 || t == 256 {
            let only = if t == 0 { &upper } else { &lower };
            for (o, a) in out.iter_mut().zip(only) {
                *o = ((u32::from(*a) + 128) >> 8) as u8;
            }
            continue;
        }
        // The high half of a 16×16-bit product: (a × w × 256) >> 16 is
        // a × w / 256 rounded down, in 16-bit lanes (16 per AVX2 register).
        let (wa, wb) = (((256 - t) << 8) as u16, (t << 8) as u16);
        let high = |v: u16, w: u16| ((u32::from(v) * u32::from(w)) >> 16) as u16;
        for ((o, a), b) in out.iter_mut().zip(&upper).zip(&lower) {
            *o = ((high(*a, wa) + high(*b, wb) + 128) >> 8) as u8;
        }
    }
}

/// `row` over `under` by `alpha` (255: all `row`). Written by hand for
/// 16-bit lanes: t = fg·a + bg·(255 − a) + 128 is at most 65,153, and
/// (t + (t >> 8)) >> 8 is t / 255 rounded, exactly, without a division.
fn blend_row(row: &mut [u8], under: &[u8], alpha: &[u8]) {
    for ((pixel, &bg), &a) in row.iter_mut().zip(under).zip(alpha) {
        let (a, fg, bg) = (u16::from(a), u16::from(*pixel), u16::from(bg));
        let t = fg * a + bg * (255 - a) + 128;
        *pixel = ((t + (t >> 8)) >> 8) as u8;
    }
}

/// The mean of each 8×8 block of one 8-bit plane (`sw × sh` with
/// `stride`): `sw / 8 × sh / 8` values (at least 1 × 1; a right or bottom
/// rest narrower than a block is left out). Written by hand: one pass over
/// the picture where three halvings read it three times; column sums of
/// eight rows are added in u16 lanes the compiler vectorises.
fn shrink_by_8(src: &[u8], (sw, sh, stride): (usize, usize, usize)) -> (Vec<u8>, usize, usize) {
    let (tw, th) = ((sw / 8).max(1), (sh / 8).max(1));
    let (bw, bh) = (sw.min(8), sh.min(8));
    let mut out = Vec::with_capacity(tw * th);
    let mut columns = vec![0u16; tw * bw];
    for ty in 0..th {
        columns.iter_mut().for_each(|c| *c = 0);
        for y in ty * bh..ty * bh + bh {
            let row = &src[y * stride..y * stride + tw * bw];
            for (c, v) in columns.iter_mut().zip(row) {
                *c += u16::from(*v);
            }
        }
        let area = (bw * bh) as u32;
        out.extend(columns.chunks_exact(bw).map(|block| {
            let sum: u32 = block.iter().map(|c| u32::from(*c)).sum();
            ((sum + area / 2) / area) as u8
        }));
    }
    (out, tw, th)
}

/// The blurred background: each plane down to an eighth by block means and
/// bilinearly back up — a wide, cheap blur.
pub fn blur_background(frame: &VideoFrame) -> Result<VideoFrame, WallpaperError> {
    if frame.format != PixelFormat::I420 {
        return Err(WallpaperError::Format(frame.format));
    }
    let mut out = VideoFrame::filled(
        PixelFormat::I420,
        frame.width,
        frame.height,
        &[0, 128, 128],
        frame.timestamp,
    );
    let (w, h) = (frame.width as usize, frame.height as usize);
    for (plane, (pw, ph)) in [
        (w, h),
        (w.div_ceil(2), h.div_ceil(2)),
        (w.div_ceil(2), h.div_ceil(2)),
    ]
    .into_iter()
    .enumerate()
    {
        let source = &frame.planes[plane];
        let (tiny, tw, th) = shrink_by_8(&source.data, (pw, ph, source.stride));
        let dst_stride = out.planes[plane].stride;
        upscale_plane(
            &tiny,
            (tw, th, tw),
            &mut out.planes[plane].data,
            (pw, ph, dst_stride),
        );
    }
    Ok(out)
}

/// Bilinear sample of `src` (`sw × sh`) over the region (`x0`, `y0`, `cw`,
/// `ch`) into a `w × h` grid.
fn resample(src: &[f32], sw: usize, region: (f32, f32, f32, f32), w: usize, h: usize) -> Vec<f32> {
    let (x0, y0, cw, ch) = region;
    let sh = src.len() / sw;
    let at = |x: usize, y: usize| src[y.min(sh - 1) * sw + x.min(sw - 1)];
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let fy = (y0 + (y as f32 + 0.5) * ch / h as f32 - 0.5).max(0.0);
        let (iy, ty) = (fy as usize, fy.fract());
        for x in 0..w {
            let fx = (x0 + (x as f32 + 0.5) * cw / w as f32 - 0.5).max(0.0);
            let (ix, tx) = (fx as usize, fx.fract());
            let top = at(ix, iy) * (1.0 - tx) + at(ix + 1, iy) * tx;
            let bottom = at(ix, iy + 1) * (1.0 - tx) + at(ix + 1, iy + 1) * tx;
            out.push(top * (1.0 - ty) + bottom * ty);
        }
    }
    out
}

impl Wallpaper {
    pub fn new(background: Background) -> Result<Self, WallpaperError> {
        Ok(Self {
            square: Model::selfie_segmentation()?,
            landscape: Model::selfie_segmentation_landscape()?,
            background,
            scaler: Scaler::default(),
            mask: None,
            refined: None,
            frames: 0,
            alpha: Vec::new(),
            chroma_alpha: Vec::new(),
        })
    }

    /// Changes what is behind the person, keeping the running mask.
    pub fn set_background(&mut self, background: Background) {
        self.background = background;
    }

    /// Whether the next frame runs the model (the others reuse its mask):
    /// the chain puts its other heavy work on the frames in between.
    pub fn segments_next(&self) -> bool {
        self.frames.is_multiple_of(SEGMENT_EVERY) || self.refined.is_none()
    }

    /// The model's person probability (0–1) for `frame`.
    fn segment(&mut self, frame: &VideoFrame) -> Result<Inferred, WallpaperError> {
        let wide = frame.width as f32 >= frame.height as f32 * LANDSCAPE_FROM;
        let (input_width, input_height) = if wide { LANDSCAPE_INPUT } else { SQUARE_INPUT };
        // The picture letterboxed into the input, RGB 0..1.
        let scale = (input_width as f32 / frame.width as f32)
            .min(input_height as f32 / frame.height as f32);
        let fit = |side: u32, most: usize| {
            (((side as f32 * scale).round() as u32).max(2) & !1).min(most as u32)
        };
        let (iw, ih) = (
            fit(frame.width, input_width),
            fit(frame.height, input_height),
        );
        let small = convert(
            &self.scaler.scale(frame, iw, ih).map_err(image_error)?,
            PixelFormat::Rgba,
        )
        .map_err(image_error)?;
        let (ox, oy) = (
            (input_width - iw as usize) / 2,
            (input_height - ih as usize) / 2,
        );
        // Filled row by row as flat slices rather than indexing the array per sample.
        let mut data = vec![0f32; input_width * input_height * 3];
        let (iw, ih) = (iw as usize, ih as usize);
        let stride = small.planes[0].stride;
        for y in 0..ih {
            let row = &small.planes[0].data[y * stride..y * stride + iw * 4];
            let start = ((oy + y) * input_width + ox) * 3;
            for (out, pixel) in data[start..start + iw * 3]
                .chunks_exact_mut(3)
                .zip(row.chunks_exact(4))
            {
                for (o, p) in out.iter_mut().zip(pixel) {
                    *o = f32::from(*p) * (1.0 / 255.0);
                }
            }
        }
        let input = Array4::from_shape_vec((1, input_height, input_width, 3), data)
            .map_err(|e| WallpaperError::Image(e.to_string()))?;
        let model = if wide {
            &mut self.landscape
        } else {
            &mut self.square
        };
        Ok(Inferred {
            probability: model.run(input)?.swap_remove(0),
            input_width,
            region: (ox as f32, oy as f32, iw as f32, ih as f32),
            size: working_size(frame),
        })
    }

    /// An inferred mask at the working size, smoothed over time and refined
    /// along `frame`'s edges (the guided filter).
    fn refine(
        &mut self,
        frame: &VideoFrame,
        inferred: Inferred,
    ) -> Result<(usize, usize, Vec<f32>), WallpaperError> {
        let (w, h) = inferred.size;
        let mut mask = resample(
            &inferred.probability,
            inferred.input_width,
            inferred.region,
            w,
            h,
        );
        if let Some((pw, ph, previous)) = &self.mask
            && (*pw, *ph) == (w, h)
        {
            for (m, p) in mask.iter_mut().zip(previous) {
                *m = *m * TEMPORAL_WEIGHT + p * (1.0 - TEMPORAL_WEIGHT);
            }
        }
        let half = self
            .scaler
            .scale(frame, (w as u32) & !1, (h as u32) & !1)
            .map_err(image_error)?;
        let guide: Vec<f32> = (0..h)
            .flat_map(|y| {
                let row =
                    &half.planes[0].data[y.min(half.height as usize - 1) * half.planes[0].stride..];
                (0..w).map(move |x| f32::from(row[x.min(half.width as usize - 1)]) / 255.0)
            })
            .collect();
        let refined = guided_filter(&guide, &mask, w, h);
        self.mask = Some((w, h, mask));
        Ok((w, h, refined))
    }

    fn background_for(&mut self, frame: &VideoFrame) -> Result<VideoFrame, WallpaperError> {
        let (w, h) = (frame.width, frame.height);
        match &self.background {
            Background::Blur => blur_background(frame),
            Background::Colour([r, g, b]) => {
                let (r, g, b) = (i32::from(*r), i32::from(*g), i32::from(*b));
                let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
                let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
                let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
                Ok(VideoFrame::filled(
                    PixelFormat::I420,
                    w,
                    h,
                    &[y as u8, u as u8, v as u8],
                    frame.timestamp,
                ))
            }
            Background::Picture(picture) => self.scaler.scale(picture, w, h).map_err(image_error),
        }
    }

    /// Replaces the background of an outgoing I420 picture.
    pub fn apply(&mut self, frame: &mut VideoFrame) -> Result<(), WallpaperError> {
        if frame.format != PixelFormat::I420 {
            return Err(WallpaperError::Format(frame.format));
        }
        let (w, h) = working_size(frame);
        let segmenting = self.segments_next();
        self.frames += 1;
        let refined = self
            .refined
            .take()
            .filter(|(cw, ch, _)| (*cw, *ch) == (w, h));
        // A segmenting frame (or the first, or a new size) infers, refines
        // along its own edges and blends the result; the next reuses it.
        let (mw, mh, mask) = match refined {
            Some(refined) if !segmenting => refined,
            _ => {
                let raw = self.segment(frame)?;
                self.refine(frame, raw)?
            }
        };
        let background = self.background_for(frame)?;
        // The refined mask up to full size, as bytes.
        let bytes: Vec<u8> = mask.iter().map(|m| (m * 255.0).round() as u8).collect();
        self.refined = Some((mw, mh, mask));
        let (w, h) = (frame.width as usize, frame.height as usize);
        // Reused: a fresh 720p buffer each frame is fresh pages to fault in.
        let alpha = &mut self.alpha;
        alpha.resize(w * h, 0);
        upscale_plane(&bytes, (mw, mh, mw), alpha, (w, h, w));
        let (ys, bs) = (frame.planes[0].stride, background.planes[0].stride);
        for y in 0..h {
            blend_row(
                &mut frame.planes[0].data[y * ys..y * ys + w],
                &background.planes[0].data[y * bs..y * bs + w],
                &alpha[y * w..(y + 1) * w],
            );
        }
        // The alpha at chroma resolution (the mean of each 2×2), once for U and V.
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let chroma_alpha = &mut self.chroma_alpha;
        chroma_alpha.clear();
        for cy in 0..ch {
            let (top, bottom) = (2 * cy, (2 * cy + 1).min(h - 1));
            let (top, bottom) = (
                &alpha[top * w..(top + 1) * w],
                &alpha[bottom * w..(bottom + 1) * w],
            );
            chroma_alpha.extend((0..cw).map(|cx| {
                let (x, x1) = (2 * cx, (2 * cx + 1).min(w - 1));
                ((u32::from(top[x])
                    + u32::from(top[x1])
                    + u32::from(bottom[x])
                    + u32::from(bottom[x1]))
                    / 4) as u8
            }));
        }
        for plane in 1..3 {
            let (fs, bs) = (frame.planes[plane].stride, background.planes[plane].stride);
            for cy in 0..ch {
                blend_row(
                    &mut frame.planes[plane].data[cy * fs..cy * fs + cw],
                    &background.planes[plane].data[cy * bs..cy * bs + cw],
                    &chroma_alpha[cy * cw..(cy + 1) * cw],
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upscaling_matches_bilinear_arithmetic_within_one_level() {
        // 13×7 of varied values up to 100×57 (a factor that is not whole).
        let (sw, sh, dw, dh) = (13, 7, 100, 57);
        let src: Vec<u8> = (0..sw * sh)
            .map(|i| ((i * 37 + (i / sw) * 11) % 256) as u8)
            .collect();
        let mut dst = vec![0u8; dw * dh];
        upscale_plane(&src, (sw, sh, sw), &mut dst, (dw, dh, dw));
        let at = |x: usize, y: usize| f32::from(src[y * sw + x]);
        for y in 0..dh {
            let fy = ((y as f32 + 0.5) * sh as f32 / dh as f32 - 0.5).clamp(0.0, (sh - 1) as f32);
            let (y0, ty) = (fy as usize, fy.fract());
            let y1 = (y0 + 1).min(sh - 1);
            for x in 0..dw {
                let fx =
                    ((x as f32 + 0.5) * sw as f32 / dw as f32 - 0.5).clamp(0.0, (sw - 1) as f32);
                let (x0, tx) = (fx as usize, fx.fract());
                let x1 = (x0 + 1).min(sw - 1);
                let top = at(x0, y0) * (1.0 - tx) + at(x1, y0) * tx;
                let bottom = at(x0, y1) * (1.0 - tx) + at(x1, y1) * tx;
                let expected = top * (1.0 - ty) + bottom * ty;
                let got = f32::from(dst[y * dw + x]);
                assert!(
                    (got - expected).abs() <= 1.5,
                    "({x}, {y}): {got} vs {expected}"
                );
            }
        }
        // Strides are honoured and a flat plane stays flat.
        let flat = vec![77u8; 8 * 4];
        let mut wide = vec![0u8; 40 * 16];
        upscale_plane(&flat, (6, 4, 8), &mut wide, (30, 16, 40));
        assert!((0..16).all(|y| wide[y * 40..y * 40 + 30].iter().all(|v| *v == 77)));
        assert!((0..16).all(|y| wide[y * 40 + 30..(y + 1) * 40].iter().all(|v| *v == 0)));
    }

    #[test]
    fn blending_rounds_exactly_like_the_division() {
        for a in 0..=255u8 {
            let fg: Vec<u8> = (0..=255).collect();
            let bg: Vec<u8> = (0..=255).rev().collect();
            let mut row = fg.clone();
            blend_row(&mut row, &bg, &vec![a; 256]);
            for ((out, f), b) in row.iter().zip(&fg).zip(&bg) {
                let exact =
                    (f64::from(*f) * f64::from(a) + f64::from(*b) * f64::from(255 - a)) / 255.0;
                assert_eq!(f64::from(*out), exact.round(), "fg {f} bg {b} alpha {a}");
            }
        }
    }

    #[test]
    fn shrinking_takes_the_mean_of_each_block() {
        // 17×9 with stride 20: two blocks across, one down, the rest left out.
        let mut src = vec![0u8; 20 * 9];
        for y in 0..9 {
            for x in 0..17 {
                src[y * 20 + x] = if x < 8 { 10 } else { (x * 10 + y) as u8 };
            }
        }
        let (tiny, tw, th) = shrink_by_8(&src, (17, 9, 20));
        assert_eq!((tw, th), (2, 1));
        let second: u32 = (0..8)
            .flat_map(|y| (8..16).map(move |x| (x * 10 + y) as u32))
            .sum();
        assert_eq!(tiny, vec![10, ((second + 32) / 64) as u8]);
        // A picture smaller than a block becomes its own mean.
        assert_eq!(shrink_by_8(&[0, 255, 255, 0], (2, 2, 2)), (vec![128], 1, 1));
    }

    #[test]
    fn box_filter_averages_its_window() {
        let ones = vec![1.0; 12];
        assert!(
            box_filter(&ones, 4, 3, 1)
                .iter()
                .all(|v| (v - 1.0).abs() < 1e-6)
        );
        let step: Vec<f32> = (0..9).map(|i| if i % 3 == 2 { 3.0 } else { 0.0 }).collect();
        let out = box_filter(&step, 3, 3, 1);
        assert!(
            (out[4] - 1.0).abs() < 1e-6,
            "centre sees one column of 3s in 3"
        );
        assert!((out[2] - 1.5).abs() < 1e-6, "corner window is 2×2");
    }

    #[test]
    fn the_guided_filter_snaps_a_blurry_mask_to_the_pictures_edge() {
        // A sharp vertical edge in the picture at x = 10, a mask blurred across it.
        let (w, h) = (20, 8);
        let guide: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 10 { 0.1 } else { 0.9 })
            .collect();
        let mask: Vec<f32> = (0..w * h)
            .map(|i| ((i % w) as f32 - 5.0).clamp(0.0, 10.0) / 10.0)
            .collect();
        let out = guided_filter(&guide, &mask, w, h);
        let row = &out[3 * w..4 * w];
        assert!(
            row[12] - row[7] > mask[12] - mask[7],
            "sharper across the edge: {row:?}"
        );
    }
}
