//! The synthetic camera picture: colour bars, a moving square, and a strip of
//! black/white blocks along the top that carries the frame's sequence number
//! and capture time, so a receiver measures loss, order and latency from the
//! decoded picture alone.
//!
//! Strip layout: 96 bits, most significant first, in 16×16 luma blocks read
//! row by row across the top of the frame: sequence (32 bits), capture time
//! in µs (56 bits), CRC-8 of the first 11 bytes. White (235) is 1, black (16)
//! is 0; the reader averages each block's centre, so codec blur and
//! quantisation do not flip bits.

use crc::{CRC_8_AUTOSAR, Crc};

use crate::frame::{MediaTime, PixelFormat, VideoFrame};

const BLOCK: usize = 16;
const BITS: usize = 96;
const ONE: u8 = 235;
const ZERO: u8 = 16;
const CRC8: Crc<u8> = Crc::<u8>::new(&CRC_8_AUTOSAR);

/// What a frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStamp {
    pub sequence: u32,
    pub captured: MediaTime,
}

/// Renders the test pattern at one size.
#[derive(Debug, Clone)]
pub struct TestPattern {
    background: VideoFrame,
}

/// A size too small to carry the stamp strip and a picture under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0}×{1} is too small for the test pattern: it needs even sides, at least 128 wide, and the stamp strip in the top half"
)]
pub struct PatternTooSmall(pub u32, pub u32);

/// BT.601 limited-range colours of the bars: white, yellow, cyan, green,
/// magenta, red, blue, grey.
const BARS: [[u8; 3]; 8] = [
    [180, 128, 128],
    [162, 44, 142],
    [131, 156, 44],
    [112, 72, 58],
    [84, 184, 198],
    [65, 100, 212],
    [35, 212, 114],
    [104, 128, 128],
];

fn strip_rows(width: u32) -> usize {
    let per_row = width as usize / BLOCK;
    BITS.div_ceil(per_row)
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> Result<Self, PatternTooSmall> {
        if width < 128 || height < 64 || width % 2 == 1 || height % 2 == 1 {
            return Err(PatternTooSmall(width, height));
        }
        if strip_rows(width) * BLOCK * 2 > height as usize {
            return Err(PatternTooSmall(width, height));
        }
        let mut background = VideoFrame::black_i420(width, height, MediaTime(0));
        let (w, h) = (width as usize, height as usize);
        let sizes = PixelFormat::I420.plane_sizes(width, height);
        for (plane, (pw, ph)) in sizes.into_iter().enumerate() {
            let scale = if plane == 0 { 1 } else { 2 };
            let stride = background.planes[plane].stride;
            for y in 0..ph {
                for x in 0..pw {
                    let bar = (x * scale * BARS.len() / w).min(BARS.len() - 1);
                    // The lower third is a luma ramp: shows banding and level errors.
                    let value = if plane == 0 && y * scale > h * 2 / 3 {
                        (16 + x * 219 / pw) as u8
                    } else if y * scale > h * 2 / 3 {
                        128
                    } else {
                        BARS[bar][plane]
                    };
                    background.planes[plane].data[y * stride + x] = value;
                }
            }
        }
        Ok(Self { background })
    }

    /// Frame `sequence`, stamped with `captured`.
    pub fn render(&self, sequence: u32, captured: MediaTime) -> VideoFrame {
        let mut frame = self.background.clone();
        frame.timestamp = captured;
        self.draw_square(&mut frame, sequence);
        write_stamp(&mut frame, FrameStamp { sequence, captured });
        frame
    }

    /// A grey square bouncing across the picture: motion for the encoder.
    fn draw_square(&self, frame: &mut VideoFrame, sequence: u32) {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let side = (h / 4).max(16) & !1;
        let top = strip_rows(frame.width) * BLOCK + BLOCK;
        let span_x = w - side;
        let span_y = h.saturating_sub(top + side).max(1);
        let t = sequence as usize * 8;
        let bounce = |t: usize, span: usize| {
            let p = t % (2 * span);
            if p < span { p } else { 2 * span - p }
        };
        let (x0, y0) = (bounce(t, span_x) & !1, (top + bounce(t / 2, span_y)) & !1);
        let stride = frame.planes[0].stride;
        for y in y0..(y0 + side).min(h) {
            frame.planes[0].data[y * stride + x0..y * stride + x0 + side].fill(200);
        }
        for plane in 1..3 {
            let stride = frame.planes[plane].stride;
            for y in y0 / 2..(y0 + side) / 2 {
                frame.planes[plane].data[y * stride + x0 / 2..y * stride + (x0 + side) / 2]
                    .fill(128);
            }
        }
    }
}

fn payload(stamp: FrameStamp) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&stamp.sequence.to_be_bytes());
    bytes[4..11].copy_from_slice(&stamp.captured.0.to_be_bytes()[1..]);
    bytes[11] = CRC8.checksum(&bytes[..11]);
    bytes
}

fn block_origin(width: u32, bit: usize) -> (usize, usize) {
    let per_row = width as usize / BLOCK;
    ((bit % per_row) * BLOCK, (bit / per_row) * BLOCK)
}

fn write_stamp(frame: &mut VideoFrame, stamp: FrameStamp) {
    let bytes = payload(stamp);
    let stride = frame.planes[0].stride;
    for bit in 0..BITS {
        let on = bytes[bit / 8] & (0x80 >> (bit % 8)) != 0;
        let (x, y) = block_origin(frame.width, bit);
        for row in y..y + BLOCK {
            frame.planes[0].data[row * stride + x..row * stride + x + BLOCK].fill(if on {
                ONE
            } else {
                ZERO
            });
        }
    }
    // Neutral chroma under the strip, so colour bleeding cannot tint it.
    let rows = strip_rows(frame.width) * BLOCK / 2;
    for plane in 1..3 {
        let stride = frame.planes[plane].stride;
        frame.planes[plane].data[..rows * stride].fill(128);
    }
}

/// Reads the stamp of a decoded I420 picture; `None` if absent or corrupted.
pub fn read_stamp(frame: &VideoFrame) -> Option<FrameStamp> {
    if frame.format != PixelFormat::I420 || frame.width < 128 {
        return None;
    }
    let rows = strip_rows(frame.width) * BLOCK;
    if frame.height as usize <= rows {
        return None;
    }
    let stride = frame.planes[0].stride;
    let mut bytes = [0u8; 12];
    for bit in 0..BITS {
        let (x, y) = block_origin(frame.width, bit);
        // The centre 8×8 of the block: away from edges the codec smears.
        let mut sum = 0u32;
        for row in y + 4..y + 12 {
            sum += frame.planes[0].data[row * stride + x + 4..row * stride + x + 12]
                .iter()
                .map(|v| u32::from(*v))
                .sum::<u32>();
        }
        if sum / 64 > u32::from(ONE + ZERO) / 2 {
            bytes[bit / 8] |= 0x80 >> (bit % 8);
        }
    }
    if CRC8.checksum(&bytes[..11]) != bytes[11] {
        return None;
    }
    let mut time = [0u8; 8];
    time[1..].copy_from_slice(&bytes[4..11]);
    Some(FrameStamp {
        sequence: u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")),
        captured: MediaTime(u64::from_be_bytes(time)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_from_the_picture() {
        for (w, h) in [(1920, 1080), (1280, 720), (640, 360), (320, 180)] {
            let pattern = TestPattern::new(w, h).unwrap();
            for seq in [0u32, 1, 29, 30_000, u32::MAX] {
                let t = MediaTime(1_763_900_000_123_456 + u64::from(seq));
                let frame = pattern.render(seq, t);
                frame.check().unwrap();
                assert_eq!(
                    read_stamp(&frame),
                    Some(FrameStamp {
                        sequence: seq,
                        captured: t
                    }),
                    "{w}×{h} #{seq}"
                );
            }
        }
    }

    #[test]
    fn stamps_survive_noise_but_not_corruption() {
        let pattern = TestPattern::new(640, 360).unwrap();
        let mut frame = pattern.render(7, MediaTime(42));
        // ±40 of noise, as a low bitrate leaves it.
        for (i, v) in frame.planes[0].data.iter_mut().enumerate() {
            let noise = ((i * 7919) % 81) as i16 - 40;
            *v = (i16::from(*v) + noise).clamp(0, 255) as u8;
        }
        assert_eq!(read_stamp(&frame).map(|s| s.sequence), Some(7));
        // A flipped block is caught by the CRC.
        let mut broken = pattern.render(7, MediaTime(42));
        let stride = broken.planes[0].stride;
        for row in 0..16 {
            for x in 0..16 {
                broken.planes[0].data[row * stride + x] ^= 0xFF;
            }
        }
        assert_eq!(read_stamp(&broken), None);
        // Blank pictures carry no stamp (the CRC's init and final XOR see to it).
        assert_eq!(
            read_stamp(&VideoFrame::black_i420(640, 360, MediaTime(0))),
            None
        );
        let white = VideoFrame::filled(PixelFormat::I420, 640, 360, &[235, 128, 128], MediaTime(0));
        assert_eq!(read_stamp(&white), None);
    }

    #[test]
    fn frames_move_and_sizes_are_checked() {
        let pattern = TestPattern::new(320, 180).unwrap();
        assert_ne!(
            pattern.render(1, MediaTime(0)).planes[0],
            pattern.render(2, MediaTime(0)).planes[0]
        );
        assert_eq!(
            TestPattern::new(100, 100).unwrap_err(),
            PatternTooSmall(100, 100)
        );
        assert!(TestPattern::new(321, 180).is_err());
    }
}
