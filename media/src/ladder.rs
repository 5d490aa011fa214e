//! What to send for the bandwidth the transport estimates: a resolution
//! (the capture size, half, or a quarter — exact halvings, the scaler's fast
//! path) and a bitrate. Sans-I/O: fed estimates and a clock.
//!
//! Going down is immediate (a congested path must be relieved now); going up
//! waits until the estimate has cleared the next rung's floor by 25 % for
//! [`UPGRADE_AFTER`], so a noisy estimate does not flip the picture size.

use std::time::Duration;

/// Share of the estimate given to video; the rest is audio, RTCP and headers.
const VIDEO_SHARE: f64 = 0.85;
pub const UPGRADE_AFTER: Duration = Duration::from_secs(3);

/// One step of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub width: u32,
    pub height: u32,
    /// Below this the rung under it looks better.
    pub min_bitrate: u32,
    /// Above this more bits buy nothing visible.
    pub max_bitrate: u32,
}

/// The size and bitrate to encode at now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeTarget {
    pub width: u32,
    pub height: u32,
    pub bitrate: u32,
}

#[derive(Debug, Clone)]
pub struct Ladder {
    rungs: Vec<Rung>,
    current: usize,
    /// Since when the estimate has allowed the rung above.
    upgrade_since_us: Option<i64>,
}

/// Bits per second a picture of this size needs at 30 fps for good quality,
/// scaled from 2.5 Mbps at 1280×720.
fn full_quality(width: u32, height: u32) -> u32 {
    let pixels = u64::from(width) * u64::from(height);
    u32::try_from(pixels * 2_500_000 / (1280 * 720))
        .unwrap_or(u32::MAX)
        .max(150_000)
}

impl Ladder {
    /// Rungs for a camera of `width × height` (even sides).
    pub fn for_capture(width: u32, height: u32) -> Self {
        let mut rungs = Vec::new();
        let (mut w, mut h) = (width, height);
        for _ in 0..3 {
            let max = full_quality(w, h);
            rungs.push(Rung {
                width: w,
                height: h,
                min_bitrate: max * 3 / 10,
                max_bitrate: max,
            });
            if w % 4 != 0 || h % 4 != 0 || h / 2 < 90 {
                break;
            }
            (w, h) = (w / 2, h / 2);
        }
        if let Some(last) = rungs.last_mut() {
            last.min_bitrate = 0;
        }
        Self {
            rungs,
            current: 0,
            upgrade_since_us: None,
        }
    }

    pub fn rungs(&self) -> &[Rung] {
        &self.rungs
    }

    /// The target for the estimate `estimate_bps` at `now_us`.
    pub fn update(&mut self, estimate_bps: u64, now_us: i64) -> EncodeTarget {
        let budget = (estimate_bps as f64 * VIDEO_SHARE) as u32;
        // Down at once, as far as needed.
        while self.current + 1 < self.rungs.len() && budget < self.rungs[self.current].min_bitrate {
            self.current += 1;
            self.upgrade_since_us = None;
        }
        // Up one rung after the estimate has held with headroom.
        if self.current > 0 {
            let above = self.rungs[self.current - 1];
            if f64::from(budget) >= f64::from(above.min_bitrate) * 1.25 {
                let since = *self.upgrade_since_us.get_or_insert(now_us);
                if now_us - since >= i64::try_from(UPGRADE_AFTER.as_micros()).unwrap_or(i64::MAX) {
                    self.current -= 1;
                    self.upgrade_since_us = None;
                }
            } else {
                self.upgrade_since_us = None;
            }
        }
        let rung = self.rungs[self.current];
        EncodeTarget {
            width: rung.width,
            height: rung.height,
            bitrate: budget.clamp(rung.min_bitrate.max(50_000), rung.max_bitrate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn rungs_halve_the_capture_size() {
        let l = Ladder::for_capture(1280, 720);
        let sizes: Vec<(u32, u32)> = l.rungs().iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(sizes, [(1280, 720), (640, 360), (320, 180)]);
        assert_eq!(l.rungs()[0].max_bitrate, 2_500_000);
        assert_eq!(l.rungs()[2].min_bitrate, 0);
        assert_eq!(
            Ladder::for_capture(320, 180).rungs().len(),
            2,
            "down to 160×90"
        );
        assert_eq!(Ladder::for_capture(160, 90).rungs().len(), 1);
    }

    #[test]
    fn follows_the_estimate_down_at_once_and_up_after_it_holds() {
        let mut l = Ladder::for_capture(1280, 720);
        let t = l.update(3_000_000, 0);
        assert_eq!(
            (t.width, t.bitrate),
            (1280, 2_500_000),
            "capped at the rung's maximum"
        );
        let t = l.update(1_000_000, S);
        assert_eq!((t.width, t.bitrate), (1280, 850_000));
        let t = l.update(200_000, 2 * S);
        assert_eq!(t.width, 320, "two rungs down in one step");
        // Recovers, but only after 3 s above 1.25 × the 360p floor.
        let t = l.update(500_000, 3 * S);
        assert_eq!(t.width, 320);
        let t = l.update(500_000, 5 * S);
        assert_eq!(t.width, 320);
        let t = l.update(500_000, 6 * S);
        assert_eq!(t.width, 640);
        // A dip resets the wait.
        l.update(5_000_000, 7 * S);
        l.update(900_000, 8 * S);
        assert_eq!(l.update(5_000_000, 10 * S).width, 640);
        assert_eq!(l.update(5_000_000, 13 * S).width, 1280);
    }
}
