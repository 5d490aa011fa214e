//! What a call's receiver can take, from the losses it reports, for its
//! publisher (REMB): the loss-based half of Google congestion control
//! (draft-ietf-rmcat-gcc-02 §6), driven by the receiver reports and a clock
//! passed in.
//!
//! The engine forwards pictures as they came and cannot make them smaller
//! for one receiver, so in a call the publisher's encoder is what must
//! follow the slower path. The publisher's own estimate only covers its
//! way to the server; this covers the way on. A live's viewers do not pace
//! their broadcaster: the slowest of hundreds would set everyone's picture.

use std::time::{Duration, Instant};

/// Above this share of packets lost, the path is overused.
const HIGH_LOSS: f32 = 0.10;
/// Below this, there is room to grow.
const LOW_LOSS: f32 = 0.02;
/// Growth per report while losses stay low.
const GROWTH: f64 = 1.08;
/// Never asked below this (sound and a small picture).
pub(crate) const MIN_BPS: f64 = 100_000.0;
/// Nor above this (what the apps' encoders send at most).
pub(crate) const MAX_BPS: f64 = 4_000_000.0;

/// One receiver's target for what its publisher sends.
#[derive(Debug)]
pub(crate) struct LossRate {
    target: f64,
    /// The bytes sent to this receiver at the last report, and when.
    last: Option<(u64, Instant)>,
}

impl LossRate {
    pub(crate) fn new() -> Self {
        Self {
            target: MAX_BPS,
            last: None,
        }
    }

    /// A report: `bytes` sent to the receiver so far, the share of them it
    /// lost since its last report. Returns the new target (bits per second).
    pub(crate) fn on_report(&mut self, bytes: u64, loss: f32, now: Instant) -> f64 {
        let sent_bps = match self.last {
            Some((before, at)) if now > at => {
                let span = now.duration_since(at).max(Duration::from_millis(100));
                (bytes.saturating_sub(before) as f64) * 8.0 / span.as_secs_f64()
            }
            _ => self.target,
        };
        self.last = Some((bytes, now));
        if loss > HIGH_LOSS {
            // What got through, with margin: the path is full.
            self.target = sent_bps.min(self.target) * (1.0 - 0.5 * f64::from(loss));
        } else if loss < LOW_LOSS {
            self.target *= GROWTH;
        }
        self.target = self.target.clamp(MIN_BPS, MAX_BPS);
        self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_loss_cuts_to_what_got_through_and_low_loss_grows_it_back() {
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        let mut rate = LossRate::new();
        // 1 Mbps sent, no loss: no cap to speak of.
        assert_eq!(rate.on_report(0, 0.0, at(0)), MAX_BPS);
        assert_eq!(rate.on_report(125_000, 0.0, at(1)), MAX_BPS);
        // 20 % lost: 1 Mbps × 0.9.
        let cut = rate.on_report(250_000, 0.2, at(2));
        assert!((cut - 900_000.0).abs() < 1.0, "{cut}");
        // Between the thresholds: held.
        assert_eq!(rate.on_report(360_000, 0.05, at(3)), cut);
        // Clean again: 8 % a report.
        let grown = rate.on_report(470_000, 0.0, at(4));
        assert!((grown - cut * 1.08).abs() < 1.0, "{grown}");
    }

    #[test]
    fn the_target_stays_within_its_bounds() {
        let start = Instant::now();
        let mut rate = LossRate::new();
        rate.on_report(0, 0.0, start);
        // Almost nothing got through, most of it lost.
        let floor = rate.on_report(1_000, 0.9, start + Duration::from_secs(1));
        assert_eq!(floor, MIN_BPS);
    }
}
