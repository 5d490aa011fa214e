//! Wallpaper (背景設定): the person stays, the background becomes a blur, a
//! picture or a colour.
//!
//! MediaPipe's selfie segmentation (256×256, or its 144×256 landscape form
//! for wide pictures) gives a coarse person mask. It
//! is smoothed over time (no flicker on still hair and shoulders) and refined
//! with a guided filter that follows the picture's own edges (no halo), at
//! a quarter of the picture's resolution, then scaled up and used to blend.

use crate::onnx::{Model, OnnxError};
use multiversion::multiversion;
use nexmile_media::convert::{Scaler, convert};
use nexmile_media::frame::{PixelFormat, VideoFrame};

use crate::blend::blend_row;
use crate::working::{shrink_by, working_picture, working_size};

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
}

pub struct Wallpaper {
    square: Model,
    landscape: Model,
    background: Background,
    scaler: Scaler,
    /// The running mask at half the working resolution, with its size.
    mask: Option<(usize, usize, Vec<f32>)>,
    frames: u64,
    /// The refined mask at full and at chroma resolution, reused on the
    /// frames between segmentations, and the picture size it is for.
    alpha: Vec<u8>,
    chroma_alpha: Vec<u8>,
    alpha_size: Option<(u32, u32)>,
    /// What is blended in behind the person, at the picture's size.
    backdrop: Option<VideoFrame>,
}

/// Segment every this many frames: a 30 fps camera gets a 15 fps mask. A
/// segmenting frame blends its own mask; the next one reuses it, so the
/// mask is never more than one frame old.
const SEGMENT_EVERY: u64 = 2;

/// Box filter of radius `r` over a `w × h` grid (running sums, O(n)).
#[multiversion(targets("x86_64+avx2"))]
fn box_filter(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut rows = vec![0.0; w * h];
    // The window's size at each column, as a factor: no division per sample.
    let scale: Vec<f32> = (0..w)
        .map(|x| 1.0 / ((x + r).min(w - 1) - x.saturating_sub(r) + 1) as f32)
        .collect();
    for y in 0..h {
        let line = &src[y * w..(y + 1) * w];
        let out = &mut rows[y * w..(y + 1) * w];
        let mut sum: f32 = line[..r.min(w)].iter().sum();
        for x in 0..w {
            if x + r < w {
                sum += line[x + r];
            }
            if x > r {
                sum -= line[x - r - 1];
            }
            out[x] = sum * scale[x];
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

/// He et al.'s guided filter, the coefficients of its local linear model:
/// `mask` ≈ a · `guide` + b over each window, averaged (mean a, mean b).
#[multiversion(targets("x86_64+avx2"))]
fn guided_coefficients(
    guide: &[f32],
    mask: &[f32],
    (w, h): (usize, usize),
    radius: usize,
) -> (Vec<f32>, Vec<f32>) {
    let product = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).collect::<Vec<f32>>();
    let mean_i = box_filter(guide, w, h, radius);
    let mean_p = box_filter(mask, w, h, radius);
    let corr_ii = box_filter(&product(guide, guide), w, h, radius);
    let corr_ip = box_filter(&product(guide, mask), w, h, radius);
    let mut a = vec![0.0; w * h];
    let mut b = vec![0.0; w * h];
    for i in 0..w * h {
        let var = corr_ii[i] - mean_i[i] * mean_i[i];
        let cov = corr_ip[i] - mean_i[i] * mean_p[i];
        a[i] = cov / (var + GUIDE_EPS);
        b[i] = mean_p[i] - a[i] * mean_i[i];
    }
    (box_filter(&a, w, h, radius), box_filter(&b, w, h, radius))
}

/// He and Sun's fast guided filter: `mask` (at half the size of `guide`,
/// `w × h`, both even) refined along the edges of `guide`, as bytes at
/// `guide`'s size. The coefficients are found at half size — a quarter of
/// the box filters' work — and applied with the full guide, so the edges
/// still follow it.
#[multiversion(targets("x86_64+avx2"))]
fn refine_along(guide: &[f32], mask: &[f32], (w, h): (usize, usize)) -> Vec<u8> {
    let (hw, hh) = (w / 2, h / 2);
    debug_assert!(hw * 2 == w && hh * 2 == h && hw > 0 && hh > 0);
    let half_guide = halve_f32(guide, (w, h));
    let (mean_a, mean_b) =
        guided_coefficients(&half_guide, mask, (hw, hh), (GUIDE_RADIUS / 2).max(1));
    // The coefficients doubled row by row as they are applied: the two
    // half-size rows an output row lies between, mixed down, then doubled
    // across (no full-size a and b).
    let mut out = Vec::with_capacity(w * h);
    let (mut down, mut a_row, mut b_row) = (vec![0.0; hw], vec![0.0; w], vec![0.0; w]);
    for y in 0..h {
        let (near, far) = (
            y / 2,
            if y % 2 == 0 {
                (y / 2).saturating_sub(1)
            } else {
                (y / 2 + 1).min(hh - 1)
            },
        );
        for (coefficients, row) in [(&mean_a, &mut a_row), (&mean_b, &mut b_row)] {
            let (n, f) = (
                &coefficients[near * hw..][..hw],
                &coefficients[far * hw..][..hw],
            );
            down.iter_mut()
                .zip(n.iter().zip(f))
                .for_each(|(d, (n, f))| *d = 0.75 * n + 0.25 * f);
            double_across(&down, row);
        }
        // `as` saturates: the clamp to 0..=255 comes with the conversion.
        out.extend(
            guide[y * w..(y + 1) * w]
                .iter()
                .zip(a_row.iter().zip(&b_row))
                .map(|(i, (a, b))| ((a * i + b) * 255.0 + 0.5) as u8),
        );
    }
    out
}

/// A row doubled across by bilinear interpolation with pixel centres
/// aligned (each output sample is ¾ of its own source and ¼ of the nearer
/// neighbour, as OpenCV's INTER_LINEAR at 2×). `out` is twice `src`'s length.
#[inline]
fn double_across(src: &[f32], out: &mut [f32]) {
    let n = src.len();
    for (i, pair) in out.chunks_exact_mut(2).enumerate() {
        let (left, right) = (src[i.saturating_sub(1)], src[(i + 1).min(n - 1)]);
        pair[0] = 0.75 * src[i] + 0.25 * left;
        pair[1] = 0.75 * src[i] + 0.25 * right;
    }
}

/// The mean of each 2×2 of a `w × h` grid (`w / 2 × h / 2`, at least 1 × 1).
#[multiversion(targets("x86_64+avx2"))]
fn halve_f32(src: &[f32], (w, h): (usize, usize)) -> Vec<f32> {
    let (hw, hh) = ((w / 2).max(1), (h / 2).max(1));
    let mut out = Vec::with_capacity(hw * hh);
    for y in 0..hh {
        let top = &src[(2 * y).min(h - 1) * w..][..w];
        let bottom = &src[(2 * y + 1).min(h - 1) * w..][..w];
        out.extend((0..hw).map(|x| {
            let (x0, x1) = ((2 * x).min(w - 1), (2 * x + 1).min(w - 1));
            (top[x0] + top[x1] + bottom[x0] + bottom[x1]) * 0.25
        }));
    }
    out
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
#[multiversion(targets("x86_64+avx2"))]
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
        match (dw % sw == 0).then_some(dw / sw) {
            Some(2) => across_by::<2>(line, out),
            Some(4) => across_by::<4>(line, out),
            Some(8) => across_by::<8>(line, out),
            _ => across_by_table(line, &columns, out),
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

/// A row across by the general table of [`axis_map`].
#[inline]
fn across_by_table(line: &[u8], columns: &[(usize, usize, u32)], out: &mut [u16]) {
    for (o, &(low, high, t)) in out.iter_mut().zip(columns) {
        *o = (u32::from(line[low]) * (256 - t) + u32::from(line[high]) * t) as u16;
    }
}

/// A row across by a whole factor `K`: the table's values, without its
/// per-sample lookups. Output `K·i + j` mixes sample `i` with its left
/// neighbour (first half of the `K`) or its right one (second half) by a
/// weight that depends on `j` only, so the loop vectorises.
#[inline]
fn across_by<const K: usize>(line: &[u8], out: &mut [u16]) {
    // Sample i's own weight in 1/256: 256 − |2j + 1 − K| · 128 / K, exact
    // for K = 2, 4, 8 (the table rounds to the same values).
    let own: [u16; K] = std::array::from_fn(|j| (256 - (2 * j + 1).abs_diff(K) * 128 / K) as u16);
    let last = line.len() - 1;
    for (i, chunk) in out.chunks_exact_mut(K).enumerate() {
        let here = u16::from(line[i]);
        let (left, right) = (
            u16::from(line[i.saturating_sub(1)]),
            u16::from(line[(i + 1).min(last)]),
        );
        for (j, o) in chunk.iter_mut().enumerate() {
            let other = if j < K / 2 { left } else { right };
            *o = here * own[j] + other * (256 - own[j]);
        }
    }
}

/// The blurred background of an I420 picture: an eighth of its size by
/// block means, bilinearly back up — a wide, cheap blur.
pub fn blur_background(frame: &VideoFrame) -> Result<VideoFrame, WallpaperError> {
    if frame.format != PixelFormat::I420 {
        return Err(WallpaperError::Format(frame.format));
    }
    let work = working_picture(frame, &mut Scaler::default()).map_err(image_error)?;
    let mut out = VideoFrame::filled(
        PixelFormat::I420,
        frame.width,
        frame.height,
        &[],
        frame.timestamp,
    );
    blur_into(&work, &mut out);
    Ok(out)
}

/// The blur into `out` from the working picture `work` (a quarter of
/// `out`'s size): each plane halved again by 2×2 means, then scaled up.
fn blur_into(work: &VideoFrame, out: &mut VideoFrame) {
    let (w, h) = (out.width as usize, out.height as usize);
    let (ww, wh) = (work.width as usize, work.height as usize);
    let sizes = [
        ((ww, wh), (w, h)),
        ((ww / 2, wh / 2), (w.div_ceil(2), h.div_ceil(2))),
        ((ww / 2, wh / 2), (w.div_ceil(2), h.div_ceil(2))),
    ];
    for ((source, target), ((sw, sh), (pw, ph))) in
        work.planes.iter().zip(&mut out.planes).zip(sizes)
    {
        let (tiny, tw, th) = shrink_by(&source.data, (sw, sh, source.stride), 2);
        upscale_plane(
            &tiny,
            (tw, th, tw),
            &mut target.data,
            (pw, ph, target.stride),
        );
    }
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
            frames: 0,
            alpha: Vec::new(),
            chroma_alpha: Vec::new(),
            alpha_size: None,
            backdrop: None,
        })
    }

    /// Changes what is behind the person, keeping the running mask.
    pub fn set_background(&mut self, background: Background) {
        self.background = background;
        self.backdrop = None;
    }

    /// Whether the next frame runs the model (the others reuse its mask):
    /// the chain puts its other heavy work on the frames in between.
    pub fn segments_next(&self) -> bool {
        self.frames.is_multiple_of(SEGMENT_EVERY) || self.alpha_size.is_none()
    }

    /// The model's person probability (0–1) for `frame`, its input made
    /// from the working picture `work` when that is at least the input's
    /// size (720p: 320×180 for 256×144), from `frame` itself otherwise.
    fn segment(
        &mut self,
        frame: &VideoFrame,
        work: &VideoFrame,
    ) -> Result<Inferred, WallpaperError> {
        let wide = frame.width as f32 >= frame.height as f32 * LANDSCAPE_FROM;
        let (input_width, input_height) = if wide { LANDSCAPE_INPUT } else { SQUARE_INPUT };
        let frame = if work.width as usize >= input_width && work.height as usize >= input_height {
            work
        } else {
            frame
        };
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
        let model = if wide {
            &mut self.landscape
        } else {
            &mut self.square
        };
        // Into the model's held input, row by row as flat slices; the
        // letterbox (if any) is black.
        let data = model.input_mut();
        let (iw, ih) = (iw as usize, ih as usize);
        if (iw, ih) != (input_width, input_height) {
            data.fill(0.0);
        }
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
        Ok(Inferred {
            probability: model.infer()?.swap_remove(0),
            input_width,
            region: (ox as f32, oy as f32, iw as f32, ih as f32),
        })
    }

    /// An inferred mask at half the working size, smoothed over time, then
    /// refined along the edges of the working picture `work` (the fast
    /// guided filter): bytes at the working size.
    fn refine(&mut self, work: &VideoFrame, inferred: Inferred) -> (usize, usize, Vec<u8>) {
        let (w, h) = (work.width as usize, work.height as usize);
        let (hw, hh) = ((w / 2).max(1), (h / 2).max(1));
        let mut mask = resample(
            &inferred.probability,
            inferred.input_width,
            inferred.region,
            hw,
            hh,
        );
        if let Some((pw, ph, previous)) = &self.mask
            && (*pw, *ph) == (hw, hh)
        {
            for (m, p) in mask.iter_mut().zip(previous) {
                *m = *m * TEMPORAL_WEIGHT + p * (1.0 - TEMPORAL_WEIGHT);
            }
        }
        let luma = &work.planes[0];
        let mut guide = Vec::with_capacity(w * h);
        for y in 0..h {
            let row = &luma.data[y * luma.stride..y * luma.stride + w];
            guide.extend(row.iter().map(|v| f32::from(*v) * (1.0 / 255.0)));
        }
        let refined = refine_along(&guide, &mask, (w, h));
        self.mask = Some((hw, hh, mask));
        (w, h, refined)
    }

    /// Whether the next frame needs the working picture (to segment, or to
    /// blur the background), so the chain can make it once for the face
    /// detector too.
    pub fn needs_working_picture(&self) -> bool {
        self.segments_next() || matches!(self.background, Background::Blur)
    }

    /// Replaces the background of an outgoing I420 picture.
    pub fn apply(&mut self, frame: &mut VideoFrame) -> Result<(), WallpaperError> {
        self.apply_with(frame, None)
    }

    /// [`Self::apply`] with the frame's working picture when the caller has
    /// made it already (one is made here if needed and not given).
    pub fn apply_with(
        &mut self,
        frame: &mut VideoFrame,
        work: Option<&VideoFrame>,
    ) -> Result<(), WallpaperError> {
        if frame.format != PixelFormat::I420 {
            return Err(WallpaperError::Format(frame.format));
        }
        let size = (frame.width, frame.height);
        // A segmenting frame (or the first, or a new size) infers, refines
        // along its own edges and blends the result; the next reuses it.
        let segmenting = self.segments_next() || self.alpha_size != Some(size);
        self.frames += 1;
        let (ww, wh) = working_size(frame);
        let given = work.filter(|w| (w.width as usize, w.height as usize) == (ww, wh));
        let made = match given {
            None if segmenting || matches!(self.background, Background::Blur) => {
                Some(working_picture(frame, &mut self.scaler).map_err(image_error)?)
            }
            _ => None,
        };
        let work = given.or(made.as_ref());
        // (A segmenting frame always has its working picture, made above.)
        if segmenting && let Some(work) = work {
            let raw = self.segment(frame, work)?;
            let (mw, mh, bytes) = self.refine(work, raw);
            // Kept between frames: a fresh 720p buffer each frame is fresh
            // pages to fault in. The frames between reuse both as they are.
            let (w, h) = (size.0 as usize, size.1 as usize);
            self.alpha.resize(w * h, 0);
            upscale_plane(&bytes, (mw, mh, mw), &mut self.alpha, (w, h, w));
            halve_alpha(&self.alpha, (w, h), &mut self.chroma_alpha);
            self.alpha_size = Some(size);
        }
        self.prepare_backdrop(frame, work, segmenting)?;
        let Some(backdrop) = &self.backdrop else {
            return Err(image_error("no background"));
        };
        blend_planes(frame, backdrop, &self.alpha, &self.chroma_alpha);
        Ok(())
    }

    /// The full-size background in `self.backdrop`: a colour or a picture
    /// made once per size, the blur made afresh from the working picture on
    /// the frames between segmentations. A segmenting frame shows the blur
    /// of the frame before (33 ms older, under a blur nobody sees it), so
    /// its cost is not added to the inference's: the two kinds of frame
    /// then cost about the same.
    fn prepare_backdrop(
        &mut self,
        frame: &VideoFrame,
        work: Option<&VideoFrame>,
        segmenting: bool,
    ) -> Result<(), WallpaperError> {
        let (w, h) = (frame.width, frame.height);
        let fits = self
            .backdrop
            .as_ref()
            .is_some_and(|b| (b.width, b.height) == (w, h));
        match &self.background {
            Background::Blur if segmenting && fits => {}
            Background::Blur => {
                let work = work.ok_or_else(|| image_error("no working picture"))?;
                let backdrop = match &mut self.backdrop {
                    Some(backdrop) if fits => backdrop,
                    slot => slot.insert(VideoFrame::filled(
                        PixelFormat::I420,
                        w,
                        h,
                        &[],
                        frame.timestamp,
                    )),
                };
                blur_into(work, backdrop);
            }
            _ if fits => {}
            Background::Colour([r, g, b]) => {
                let (r, g, b) = (i32::from(*r), i32::from(*g), i32::from(*b));
                let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
                let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
                let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
                self.backdrop = Some(VideoFrame::filled(
                    PixelFormat::I420,
                    w,
                    h,
                    &[y as u8, u as u8, v as u8],
                    frame.timestamp,
                ));
            }
            Background::Picture(picture) => {
                self.backdrop = Some(self.scaler.scale(picture, w, h).map_err(image_error)?);
            }
        }
        Ok(())
    }
}

/// The alpha at chroma resolution: the mean of each 2×2 of `alpha` (`w × h`).
#[multiversion(targets("x86_64+avx2"))]
fn halve_alpha(alpha: &[u8], (w, h): (usize, usize), out: &mut Vec<u8>) {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    out.clear();
    for cy in 0..ch {
        let (top, bottom) = (2 * cy, (2 * cy + 1).min(h - 1));
        let (top, bottom) = (
            &alpha[top * w..(top + 1) * w],
            &alpha[bottom * w..(bottom + 1) * w],
        );
        out.extend((0..cw).map(|cx| {
            let (x, x1) = (2 * cx, (2 * cx + 1).min(w - 1));
            ((u16::from(top[x])
                + u16::from(top[x1])
                + u16::from(bottom[x])
                + u16::from(bottom[x1]))
                / 4) as u8
        }));
    }
}

/// `frame` over `backdrop` by the full-size `alpha` (luma) and `chroma_alpha`.
fn blend_planes(frame: &mut VideoFrame, backdrop: &VideoFrame, alpha: &[u8], chroma_alpha: &[u8]) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    for (plane, (pw, ph, alpha)) in [
        (w, h, alpha),
        (cw, ch, chroma_alpha),
        (cw, ch, chroma_alpha),
    ]
    .into_iter()
    .enumerate()
    {
        let (fs, bs) = (frame.planes[plane].stride, backdrop.planes[plane].stride);
        let (fg, bg) = (&mut frame.planes[plane].data, &backdrop.planes[plane].data);
        for y in 0..ph {
            blend_row(
                &mut fg[y * fs..y * fs + pw],
                &bg[y * bs..y * bs + pw],
                &alpha[y * pw..(y + 1) * pw],
            );
        }
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
    fn doubling_a_row_matches_the_general_bilinear_resample() {
        let src: Vec<f32> = (0..9).map(|i| ((i * 7) % 5) as f32).collect();
        let mut doubled = vec![0.0; 18];
        double_across(&src, &mut doubled);
        let general = resample(&src, 9, (0.0, 0.0, 9.0, 1.0), 18, 1);
        for (d, g) in doubled.iter().zip(&general) {
            assert!((d - g).abs() < 1e-5, "{doubled:?} vs {general:?}");
        }
    }

    #[test]
    fn whole_factor_rows_equal_the_general_table() {
        let line: Vec<u8> = (0..23).map(|i| ((i * 53 + 7) % 256) as u8).collect();
        for factor in [2, 4, 8] {
            let width = line.len() * factor;
            let (mut fast, mut table) = (vec![0u16; width], vec![0u16; width]);
            match factor {
                2 => across_by::<2>(&line, &mut fast),
                4 => across_by::<4>(&line, &mut fast),
                _ => across_by::<8>(&line, &mut fast),
            }
            across_by_table(&line, &axis_map(line.len(), width), &mut table);
            assert_eq!(fast, table, "factor {factor}");
        }
    }

    #[test]
    fn the_guided_filter_snaps_a_blurry_mask_to_the_pictures_edge() {
        // A sharp vertical edge in the picture at x = 20, a mask (at half
        // size) blurred across it.
        let (w, h) = (40, 16);
        let guide: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 20 { 0.1 } else { 0.9 })
            .collect();
        let (hw, hh) = (w / 2, h / 2);
        let mask: Vec<f32> = (0..hw * hh)
            .map(|i| ((i % hw) as f32 - 5.0).clamp(0.0, 10.0) / 10.0)
            .collect();
        let out = refine_along(&guide, &mask, (w, h));
        let row = &out[8 * w..9 * w];
        // The blurred mask rises by a quarter over these two pixels each side
        // of the edge (at half size, x 9 → 11); refined, by more.
        let rise = f32::from(row[22]) - f32::from(row[17]);
        assert!(
            rise > 0.25 * 255.0 * 1.5,
            "sharper across the edge: {row:?}"
        );
        assert!(row[..10].iter().all(|v| *v < 40) && row[30..].iter().all(|v| *v > 215));
    }
}
