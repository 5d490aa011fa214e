//! Pixel format conversion and scaling.
//!
//! I420 is the hub: cameras' NV12, YUYV, RGBA, BGRA and MJPEG become I420
//! for the encoder and effects, and I420 becomes RGBA/BGRA for the screen.
//! Colour maths is BT.601 limited range, what WebRTC's H.264 and VP8 carry.
//! Conversions run on the `yuv` crate (SIMD chosen at run time), scaling on
//! `fast_image_resize`; the benchmark in `benches/` compares them with the
//! alternatives measured.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use yuv::{
    BufferStoreMut, YuvBiPlanarImage, YuvConversionMode, YuvPackedImage, YuvPackedImageMut,
    YuvPlanarImage, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
};

use crate::frame::{InvalidFrame, PixelFormat, Plane, VideoFrame};

const RANGE: YuvRange = YuvRange::Limited;
const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt601;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    InvalidFrame(#[from] InvalidFrame),
    #[error("cannot produce {0:?} frames")]
    Unsupported(PixelFormat),
    #[error("the camera's JPEG could not be decoded: {0}")]
    Jpeg(String),
    #[error("conversion failed: {0}")]
    Conversion(String),
    #[error("cannot scale to {0}×{1}")]
    BadSize(u32, u32),
}

fn failed(e: impl std::fmt::Display) -> ConvertError {
    ConvertError::Conversion(e.to_string())
}

fn stride32(plane: &Plane) -> u32 {
    u32::try_from(plane.stride).unwrap_or(u32::MAX)
}

/// `frame` in `to` (a copy when it already is). MJPEG is decode-only.
pub fn convert(frame: &VideoFrame, to: PixelFormat) -> Result<VideoFrame, ConvertError> {
    frame.check()?;
    match (frame.format, to) {
        (from, to) if from == to => Ok(frame.clone()),
        (_, PixelFormat::Mjpeg) => Err(ConvertError::Unsupported(PixelFormat::Mjpeg)),
        (PixelFormat::Rgba, PixelFormat::Bgra) | (PixelFormat::Bgra, PixelFormat::Rgba) => {
            Ok(swap_red_blue(frame, to))
        }
        (_, PixelFormat::I420) => to_i420(frame),
        (PixelFormat::I420, _) => from_i420(frame, to),
        _ => from_i420(&to_i420(frame)?, to),
    }
}

fn swap_red_blue(frame: &VideoFrame, to: PixelFormat) -> VideoFrame {
    let mut out = frame.clone();
    out.format = to;
    for pixel in out.planes[0].data.chunks_exact_mut(4) {
        pixel.swap(0, 2);
    }
    out
}

fn to_i420(frame: &VideoFrame) -> Result<VideoFrame, ConvertError> {
    let (w, h) = (frame.width, frame.height);
    let mut out = VideoFrame::black_i420(w, h, frame.timestamp);
    let [y_stride, u_stride, v_stride] = [0, 1, 2].map(|i| stride32(&out.planes[i]));
    let [y, u, v] = &mut out.planes[..] else {
        unreachable!("I420 has three planes")
    };
    let mut target = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut y.data),
        y_stride,
        u_plane: BufferStoreMut::Borrowed(&mut u.data),
        u_stride,
        v_plane: BufferStoreMut::Borrowed(&mut v.data),
        v_stride,
        width: w,
        height: h,
    };
    let src = &frame.planes;
    match frame.format {
        PixelFormat::Rgba | PixelFormat::Bgra => {
            let packed_to_i420 = if frame.format == PixelFormat::Rgba {
                yuv::rgba_to_yuv420
            } else {
                yuv::bgra_to_yuv420
            };
            packed_to_i420(
                &mut target,
                &src[0].data,
                stride32(&src[0]),
                RANGE,
                MATRIX,
                YuvConversionMode::Fast,
            )
        }
        PixelFormat::Yuyv => yuv::yuyv422_to_yuv420(
            &mut target,
            &YuvPackedImage {
                yuy: &src[0].data,
                yuy_stride: stride32(&src[0]),
                width: w,
                height: h,
            },
        ),
        PixelFormat::Nv12 => {
            drop(target);
            nv12_to_i420(frame, &mut out);
            return Ok(out);
        }
        PixelFormat::Mjpeg => {
            drop(target);
            return jpeg_to_i420(frame);
        }
        PixelFormat::I420 => unreachable!("handled by convert"),
    }
    .map_err(failed)?;
    Ok(out)
}

/// NV12 → I420 is a copy of Y and a split of the interleaved UV plane:
/// memory-bound, and the `yuv` crate has no kernel for it. The loop below
/// is auto-vectorised.
fn nv12_to_i420(frame: &VideoFrame, out: &mut VideoFrame) {
    let sizes = PixelFormat::I420.plane_sizes(frame.width, frame.height);
    let (cw, ch) = sizes[1];
    let [y, u, v] = &mut out.planes[..] else {
        unreachable!("I420 has three planes")
    };
    copy_plane(&frame.planes[0], y, sizes[0]);
    let uv = &frame.planes[1];
    for row in 0..ch {
        let pairs = &uv.data[row * uv.stride..][..cw * 2];
        let u_row = &mut u.data[row * u.stride..][..cw];
        let v_row = &mut v.data[row * v.stride..][..cw];
        for (i, pair) in pairs.chunks_exact(2).enumerate() {
            u_row[i] = pair[0];
            v_row[i] = pair[1];
        }
    }
}

fn copy_plane(src: &Plane, dst: &mut Plane, (row, rows): (usize, usize)) {
    for y in 0..rows {
        dst.data[y * dst.stride..][..row].copy_from_slice(&src.data[y * src.stride..][..row]);
    }
}

fn jpeg_to_i420(frame: &VideoFrame) -> Result<VideoFrame, ConvertError> {
    let decoded =
        image::load_from_memory_with_format(&frame.planes[0].data, image::ImageFormat::Jpeg)
            .map_err(|e| ConvertError::Jpeg(e.to_string()))?
            .into_rgba8();
    let (w, h) = decoded.dimensions();
    let rgba = VideoFrame::rgba(w, h, decoded.into_raw(), frame.timestamp);
    to_i420(&rgba)
}

fn from_i420(frame: &VideoFrame, to: PixelFormat) -> Result<VideoFrame, ConvertError> {
    let (w, h) = (frame.width, frame.height);
    let [y, u, v] = &frame.planes[..] else {
        unreachable!("checked I420 has three planes")
    };
    let src = YuvPlanarImage {
        y_plane: &y.data,
        y_stride: stride32(y),
        u_plane: &u.data,
        u_stride: stride32(u),
        v_plane: &v.data,
        v_stride: stride32(v),
        width: w,
        height: h,
    };
    let mut out = VideoFrame::filled(to, w, h, &[], frame.timestamp);
    let stride = stride32(&out.planes[0]);
    match to {
        PixelFormat::Rgba => {
            yuv::yuv420_to_rgba(&src, &mut out.planes[0].data, stride, RANGE, MATRIX)
        }
        PixelFormat::Bgra => {
            yuv::yuv420_to_bgra(&src, &mut out.planes[0].data, stride, RANGE, MATRIX)
        }
        PixelFormat::Yuyv => yuv::yuv420_to_yuyv422(
            &mut YuvPackedImageMut {
                yuy: BufferStoreMut::Borrowed(&mut out.planes[0].data),
                yuy_stride: stride,
                width: w,
                height: h,
            },
            &src,
        ),
        PixelFormat::Nv12 => {
            i420_to_nv12(frame, &mut out);
            Ok(())
        }
        PixelFormat::I420 | PixelFormat::Mjpeg => return Err(ConvertError::Unsupported(to)),
    }
    .map_err(failed)?;
    Ok(out)
}

/// The inverse of [`nv12_to_i420`]: interleave U and V.
fn i420_to_nv12(frame: &VideoFrame, out: &mut VideoFrame) {
    let sizes = PixelFormat::I420.plane_sizes(frame.width, frame.height);
    let (cw, ch) = sizes[1];
    let [y, uv_plane] = &mut out.planes[..] else {
        unreachable!("NV12 has two planes")
    };
    copy_plane(&frame.planes[0], y, sizes[0]);
    for row in 0..ch {
        let u = &frame.planes[1].data[row * frame.planes[1].stride..][..cw];
        let v = &frame.planes[2].data[row * frame.planes[2].stride..][..cw];
        let uv = &mut uv_plane.data[row * uv_plane.stride..][..cw * 2];
        for i in 0..cw {
            uv[2 * i] = u[i];
            uv[2 * i + 1] = v[i];
        }
    }
}

/// Reads an NV12 frame through the `yuv` crate straight to RGBA (for display
/// of NV12 cameras without the I420 hop).
pub fn nv12_to_rgba(frame: &VideoFrame) -> Result<VideoFrame, ConvertError> {
    frame.check()?;
    if frame.format != PixelFormat::Nv12 {
        return convert(frame, PixelFormat::Rgba);
    }
    let mut out = VideoFrame::filled(
        PixelFormat::Rgba,
        frame.width,
        frame.height,
        &[],
        frame.timestamp,
    );
    let stride = stride32(&out.planes[0]);
    yuv::yuv_nv12_to_rgba(
        &YuvBiPlanarImage {
            y_plane: &frame.planes[0].data,
            y_stride: stride32(&frame.planes[0]),
            uv_plane: &frame.planes[1].data,
            uv_stride: stride32(&frame.planes[1]),
            width: frame.width,
            height: frame.height,
        },
        &mut out.planes[0].data,
        stride,
        RANGE,
        MATRIX,
        YuvConversionMode::Balanced,
    )
    .map_err(failed)?;
    Ok(out)
}

/// Scales I420 or RGBA/BGRA frames with a bilinear filter, reusing its
/// buffers between calls (one per outgoing stream).
pub struct Scaler {
    resizer: Resizer,
    options: ResizeOptions,
}

impl Default for Scaler {
    fn default() -> Self {
        Self {
            resizer: Resizer::new(),
            options: ResizeOptions::new()
                .resize_alg(ResizeAlg::Interpolation(FilterType::Bilinear)),
        }
    }
}

impl Scaler {
    /// `frame` at `width × height` (even sides for I420).
    pub fn scale(
        &mut self,
        frame: &VideoFrame,
        width: u32,
        height: u32,
    ) -> Result<VideoFrame, ConvertError> {
        frame.check()?;
        if width == 0
            || height == 0
            || (frame.format == PixelFormat::I420 && (width % 2 == 1 || height % 2 == 1))
        {
            return Err(ConvertError::BadSize(width, height));
        }
        if (width, height) == (frame.width, frame.height) {
            return Ok(frame.clone());
        }
        let pixel = match frame.format {
            PixelFormat::I420 => PixelType::U8,
            PixelFormat::Rgba | PixelFormat::Bgra => PixelType::U8x4,
            other => return Err(ConvertError::Unsupported(other)),
        };
        let mut out = VideoFrame::filled(frame.format, width, height, &[], frame.timestamp);
        if frame.format == PixelFormat::I420
            && (width * 2, height * 2) == (frame.width, frame.height)
        {
            for (src, dst) in frame.planes.iter().zip(&mut out.planes) {
                halve_plane(src, dst);
            }
            return Ok(out);
        }
        let src_sizes = frame.format.plane_sizes(frame.width, frame.height);
        let dst_sizes = frame.format.plane_sizes(width, height);
        let bytes = pixel.size();
        for (i, plane) in frame.planes.iter().enumerate() {
            let (sw, sh) = src_sizes[i];
            let (dw, dh) = dst_sizes[i];
            let packed = packed_rows(plane, sw, sh);
            let src =
                ImageRef::new((sw / bytes) as u32, sh as u32, &packed, pixel).map_err(failed)?;
            let mut dst = Image::from_slice_u8(
                (dw / bytes) as u32,
                dh as u32,
                &mut out.planes[i].data,
                pixel,
            )
            .map_err(failed)?;
            self.resizer
                .resize(&src, &mut dst, &self.options)
                .map_err(failed)?;
        }
        Ok(out)
    }
}

/// Exact 2:1 downscaling by averaging each 2×2 block (what libyuv does for
/// this case). Hand-written because `fast_image_resize` runs its general
/// filter here, 28× slower than libyuv in `benches/media.rs`; this loop
/// auto-vectorises. Halving is the common step of the bitrate ladder.
fn halve_plane(src: &Plane, dst: &mut Plane) {
    let width = dst.stride;
    let rows = dst.data.len() / width;
    for y in 0..rows {
        let top = &src.data[2 * y * src.stride..][..2 * width];
        let bottom = &src.data[(2 * y + 1) * src.stride..][..2 * width];
        let out = &mut dst.data[y * width..][..width];
        for ((o, t), b) in out
            .iter_mut()
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            let sum = u16::from(t[0]) + u16::from(t[1]) + u16::from(b[0]) + u16::from(b[1]);
            *o = ((sum + 2) / 4) as u8;
        }
    }
}

/// The plane's rows without stride padding (borrowed when already packed).
fn packed_rows(plane: &Plane, row: usize, rows: usize) -> std::borrow::Cow<'_, [u8]> {
    if plane.stride == row {
        return std::borrow::Cow::Borrowed(&plane.data[..row * rows]);
    }
    let mut out = Vec::with_capacity(row * rows);
    for y in 0..rows {
        out.extend_from_slice(&plane.data[y * plane.stride..][..row]);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::MediaTime;
    use crate::source::pattern::{TestPattern, read_stamp};

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    fn mean_diff(a: &[u8], b: &[u8]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len() as f64
    }

    #[test]
    fn round_trips_through_every_format_keep_the_picture() {
        let original = TestPattern::new(640, 360).unwrap().render(5, MediaTime(99));
        for format in [
            PixelFormat::Rgba,
            PixelFormat::Bgra,
            PixelFormat::Nv12,
            PixelFormat::Yuyv,
        ] {
            let there = convert(&original, format).unwrap();
            there.check().unwrap();
            assert_eq!(there.format, format);
            let back = convert(&there, PixelFormat::I420).unwrap();
            // Luma survives within rounding (colour edges move most, through the
            // chroma subsampling); the stamp reads back exactly.
            let diff = mean_diff(&original.planes[0].data, &back.planes[0].data);
            assert!(diff < 1.0, "{format:?}: mean luma error {diff}");
            assert_eq!(read_stamp(&back).map(|s| s.sequence), Some(5), "{format:?}");
        }
        let nv12 = convert(&original, PixelFormat::Nv12).unwrap();
        assert_eq!(
            convert(&nv12, PixelFormat::I420).unwrap().planes,
            original.planes,
            "NV12 is lossless"
        );
        let direct = nv12_to_rgba(&nv12).unwrap();
        let hub = convert(&original, PixelFormat::Rgba).unwrap();
        assert!(max_diff(&direct.planes[0].data, &hub.planes[0].data) <= 2);
    }

    #[test]
    fn colours_are_bt601_limited_range() {
        let rgba = VideoFrame {
            format: PixelFormat::Rgba,
            width: 2,
            height: 2,
            planes: vec![Plane {
                data: [255, 255, 255, 255].repeat(4),
                stride: 8,
            }],
            timestamp: MediaTime(0),
        };
        let i420 = convert(&rgba, PixelFormat::I420).unwrap();
        let y = i420.planes[0].data[0];
        // Y 235 ± the fast (libyuv-equal) mode's rounding.
        assert!((233..=237).contains(&y), "white is Y 235, got {y}");
        assert!(i420.planes[1].data.iter().all(|u| (127..=129).contains(u)));
        let bgra = convert(&rgba, PixelFormat::Bgra).unwrap();
        assert_eq!(bgra.planes, rgba.planes, "white is white either way");
    }

    #[test]
    fn mjpeg_decodes_and_garbage_is_an_error() {
        let mut jpeg = Vec::new();
        image::RgbImage::from_pixel(64, 48, image::Rgb([255, 0, 0]))
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let frame = VideoFrame {
            format: PixelFormat::Mjpeg,
            width: 64,
            height: 48,
            planes: vec![Plane {
                data: jpeg,
                stride: 0,
            }],
            timestamp: MediaTime(0),
        };
        let i420 = convert(&frame, PixelFormat::I420).unwrap();
        assert!((80..=83).contains(&i420.planes[0].data[100]), "red is Y 81");
        let garbage = VideoFrame {
            planes: vec![Plane {
                data: vec![1, 2, 3],
                stride: 0,
            }],
            ..frame
        };
        assert!(matches!(
            convert(&garbage, PixelFormat::I420),
            Err(ConvertError::Jpeg(_))
        ));
        assert!(convert(&i420, PixelFormat::Mjpeg).is_err());
    }

    #[test]
    fn scaling_keeps_the_stamp_readable_and_checks_sizes() {
        let big = TestPattern::new(1280, 720)
            .unwrap()
            .render(77, MediaTime(5));
        let mut scaler = Scaler::default();
        let small = scaler.scale(&big, 640, 360).unwrap();
        small.check().unwrap();
        assert_eq!((small.width, small.height), (640, 360));
        let rgba = scaler
            .scale(&convert(&big, PixelFormat::Rgba).unwrap(), 320, 180)
            .unwrap();
        assert_eq!(rgba.planes[0].data.len(), 320 * 180 * 4);
        assert!(scaler.scale(&big, 641, 360).is_err());
        assert!(scaler.scale(&big, 0, 360).is_err());
        // Halving averages 2×2 blocks exactly.
        let grey = VideoFrame::filled(PixelFormat::I420, 4, 4, &[100, 128, 128], MediaTime(0));
        let mut checker = grey.clone();
        checker.planes[0].data = vec![0, 255, 10, 20, 0, 255, 30, 40, 1, 1, 2, 2, 1, 1, 2, 2];
        let half = scaler.scale(&checker, 2, 2).unwrap();
        assert_eq!(half.planes[0].data, [128, 25, 1, 2]);
        assert_eq!(half.planes[1].data, [128]);
        // A padded source scales the same as a packed one.
        let mut padded = big.clone();
        for plane in &mut padded.planes {
            let row = plane.stride;
            plane.data = plane
                .data
                .chunks(row)
                .flat_map(|r| [r, &[0u8; 32][..]].concat())
                .collect();
            plane.stride = row + 32;
        }
        assert_eq!(
            scaler.scale(&padded, 640, 360).unwrap().planes,
            small.planes
        );
    }
}
