//! How smoothly a received video played: freezes and missing pictures, from
//! the decoded pictures alone (what the viewer saw), as WebRTC's
//! `freezeCount` and `totalFreezesDuration` report it for browsers.
//!
//! A freeze is a gap between two decoded pictures longer than three times
//! the median gap: at 30 fps, anything past 100 ms. Missing pictures are
//! counted from the sender's picture numbers where the pictures carry them
//! (the synthetic camera's stamps); a lost picture the decoder concealed
//! is missing even when no freeze shows.

use std::collections::BTreeSet;
use std::time::Duration;

/// A freeze is a gap above this multiple of the median gap.
const FREEZE_FACTOR: u32 = 3;

/// Records each decoded picture; sans-I/O, fed the time it was decoded.
#[derive(Debug, Default)]
pub struct SmoothnessMeter {
    decoded_at: Vec<Duration>,
    numbers: BTreeSet<u32>,
}

/// The figures of one received video.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Smoothness {
    pub pictures: u64,
    pub freezes: u64,
    pub frozen: Duration,
    /// Pictures the sender numbered between the first and the last seen
    /// that never arrived; 0 when the pictures carry no number.
    pub pictures_missing: u64,
}

impl SmoothnessMeter {
    /// A picture decoded at `at` (from any fixed origin), with the sender's
    /// number for it when it carries one.
    pub fn picture(&mut self, at: Duration, number: Option<u32>) {
        self.decoded_at.push(at);
        if let Some(number) = number {
            self.numbers.insert(number);
        }
    }

    pub fn report(&self) -> Smoothness {
        let mut gaps: Vec<Duration> = self
            .decoded_at
            .windows(2)
            .map(|pair| pair[1].saturating_sub(pair[0]))
            .collect();
        let (freezes, frozen) = if gaps.is_empty() {
            (0, Duration::ZERO)
        } else {
            let mut sorted = gaps.clone();
            sorted.sort_unstable();
            let limit = sorted[sorted.len() / 2] * FREEZE_FACTOR;
            gaps.retain(|gap| *gap > limit);
            (gaps.len() as u64, gaps.iter().sum())
        };
        let pictures_missing = match (self.numbers.first(), self.numbers.last()) {
            (Some(first), Some(last)) => u64::from(last - first) + 1 - self.numbers.len() as u64,
            _ => 0,
        };
        Smoothness {
            pictures: self.decoded_at.len() as u64,
            freezes,
            frozen,
            pictures_missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_steady_video_has_no_freeze() {
        let mut meter = SmoothnessMeter::default();
        for i in 0..90 {
            // 33 ms apart, with a few ms of jitter either way.
            meter.picture(ms(i * 33 + (i % 3) * 4), Some(i as u32));
        }
        let report = meter.report();
        assert_eq!((report.pictures, report.freezes), (90, 0));
        assert_eq!(report.frozen, Duration::ZERO);
        assert_eq!(report.pictures_missing, 0);
    }

    #[test]
    fn a_gap_past_three_median_gaps_is_a_freeze_and_lost_pictures_are_counted() {
        let mut meter = SmoothnessMeter::default();
        let mut at = 0;
        for number in 0..60u32 {
            // Pictures 20–25 were lost: a 231 ms gap; 40 alone: a 66 ms gap.
            if (20..=25).contains(&number) || number == 40 {
                at += 33;
                continue;
            }
            meter.picture(ms(at), Some(number));
            at += 33;
        }
        let report = meter.report();
        assert_eq!(report.freezes, 1, "{report:?}");
        assert_eq!(report.frozen, ms(7 * 33));
        assert_eq!(report.pictures_missing, 7);
        assert_eq!(report.pictures, 53);
    }

    #[test]
    fn unnumbered_pictures_count_no_missing_ones() {
        let mut meter = SmoothnessMeter::default();
        meter.picture(ms(0), None);
        meter.picture(ms(500), None);
        assert_eq!(meter.report().pictures_missing, 0);
        assert_eq!(SmoothnessMeter::default().report(), Smoothness::default());
    }
}
