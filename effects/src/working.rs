//! The working picture: the camera picture at a quarter of its size, made
//! once per frame for everything that needs a small picture — the
//! segmentation's input and guide, the blurred background, face detection —
//! so 720p is read once for all of them.

use multiversion::multiversion;
use nexmile_media::convert::{ConvertError, Scaler};
use nexmile_media::frame::{PixelFormat, VideoFrame};

/// 320×180 for 720p: the guided filter's edges still follow the picture at
/// this size, and the models' inputs (256×144, 128×72) are smaller still.
pub const WORK_DIVISOR: usize = 4;

/// The working picture's size for `frame` (even sides, for I420).
pub fn working_size(frame: &VideoFrame) -> (usize, usize) {
    (
        (frame.width as usize / WORK_DIVISOR).max(2) & !1,
        (frame.height as usize / WORK_DIVISOR).max(2) & !1,
    )
}

/// `frame` (I420) at the working size. A picture four times the working
/// size is shrunk by the mean of each 4×4 (an area average) in one pass;
/// others go through the scaler.
pub fn working_picture(
    frame: &VideoFrame,
    scaler: &mut Scaler,
) -> Result<VideoFrame, ConvertError> {
    let (w, h) = working_size(frame);
    if frame.format != PixelFormat::I420
        || (frame.width as usize, frame.height as usize) != (w * WORK_DIVISOR, h * WORK_DIVISOR)
    {
        return scaler.scale(frame, w as u32, h as u32);
    }
    let mut work = VideoFrame::filled(PixelFormat::I420, w as u32, h as u32, &[], frame.timestamp);
    let sizes = [(w, h), (w / 2, h / 2), (w / 2, h / 2)];
    for ((source, target), (pw, ph)) in frame.planes.iter().zip(&mut work.planes).zip(sizes) {
        let (small, _, _) = shrink_by(
            &source.data,
            (pw * WORK_DIVISOR, ph * WORK_DIVISOR, source.stride),
            WORK_DIVISOR,
        );
        for (row, out) in small
            .chunks_exact(pw)
            .zip(target.data.chunks_mut(target.stride))
        {
            out[..pw].copy_from_slice(row);
        }
    }
    Ok(work)
}

/// The mean of each `n × n` block of one 8-bit plane (`sw × sh` with
/// `stride`): `sw / n × sh / n` values (at least 1 × 1; a right or bottom
/// rest narrower than a block is left out). Written by hand: one pass over
/// the picture where repeated halvings read it again each time; column sums
/// of `n` rows are added in u16 lanes the compiler vectorises. The block
/// sizes used per frame (2, 4, 8) have their own copies, where the block's
/// area is a constant and its division a shift.
#[multiversion(targets("x86_64+avx2"))]
pub fn shrink_by(
    src: &[u8],
    (sw, sh, stride): (usize, usize, usize),
    n: usize,
) -> (Vec<u8>, usize, usize) {
    let (tw, th) = ((sw / n).max(1), (sh / n).max(1));
    let (bw, bh) = (sw.min(n), sh.min(n));
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
        match (bw, bh) {
            (2, 2) => out.extend(block_means::<2>(&columns)),
            (4, 4) => out.extend(block_means::<4>(&columns)),
            (8, 8) => out.extend(block_means::<8>(&columns)),
            _ => {
                let area = (bw * bh) as u32;
                out.extend(columns.chunks_exact(bw).map(|block| {
                    let sum: u32 = block.iter().map(|c| u32::from(*c)).sum();
                    ((sum + area / 2) / area) as u8
                }));
            }
        }
    }
    (out, tw, th)
}

/// The rounded means of `N × N` blocks from their column sums, `N` at a time.
#[inline]
fn block_means<const N: usize>(columns: &[u16]) -> impl Iterator<Item = u8> + '_ {
    columns.chunks_exact(N).map(|block| {
        let sum: u32 = block.iter().map(|c| u32::from(*c)).sum();
        ((sum + (N * N / 2) as u32) / (N * N) as u32) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmile_media::frame::MediaTime;

    #[test]
    fn shrinking_takes_the_mean_of_each_block() {
        // 17×9 with stride 20: two blocks across, one down, the rest left out.
        let mut src = vec![0u8; 20 * 9];
        for y in 0..9 {
            for x in 0..17 {
                src[y * 20 + x] = if x < 8 { 10 } else { (x * 10 + y) as u8 };
            }
        }
        let (tiny, tw, th) = shrink_by(&src, (17, 9, 20), 8);
        assert_eq!((tw, th), (2, 1));
        let second: u32 = (0..8)
            .flat_map(|y| (8..16).map(move |x| (x * 10 + y) as u32))
            .sum();
        assert_eq!(tiny, vec![10, ((second + 32) / 64) as u8]);
        // A picture smaller than a block becomes its own mean.
        assert_eq!(
            shrink_by(&[0, 255, 255, 0], (2, 2, 2), 8),
            (vec![128], 1, 1)
        );
        // Quarters, as the working picture is made.
        assert_eq!(shrink_by(&[4; 32], (8, 4, 8), 4), (vec![4, 4], 2, 1));
    }

    #[test]
    fn the_working_picture_is_a_quarter_of_any_picture() {
        let mut scaler = Scaler::default();
        let mut frame = VideoFrame::filled(PixelFormat::I420, 64, 32, &[10, 20, 30], MediaTime(7));
        // The top-left 4×4 of luma is bright: its mean lands in one sample.
        let stride = frame.planes[0].stride;
        for y in 0..4 {
            frame.planes[0].data[y * stride..][..4].fill(210);
        }
        let work = working_picture(&frame, &mut scaler).unwrap();
        assert_eq!(
            (work.width, work.height, work.timestamp),
            (16, 8, MediaTime(7))
        );
        assert_eq!(&work.planes[0].data[..2], &[210, 10]);
        assert_eq!((work.planes[1].data[0], work.planes[2].data[0]), (20, 30));
        // Not a multiple of the divisor: scaled, still the working size.
        let odd = VideoFrame::filled(PixelFormat::I420, 70, 30, &[10, 20, 30], MediaTime(0));
        let work = working_picture(&odd, &mut scaler).unwrap();
        assert_eq!((work.width, work.height), (16, 6));
        assert!(work.planes[0].data.iter().all(|v| v.abs_diff(10) <= 1));
    }
}
