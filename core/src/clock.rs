//! Time as the caller gives it. Core never reads a clock: every function that
//! needs "now" takes a [`UnixMillis`], so tests drive it on simulated time.

use std::ops::{Add, Sub};
use std::time::Duration;

/// Milliseconds since the Unix epoch (UTC). The server keeps every time in
/// milliseconds (§4.3.5 ③) and converts to the spec's second-resolution
/// strings only at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs * 1000)
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: UnixMillis) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }
}

impl Add<Duration> for UnixMillis {
    type Output = UnixMillis;
    fn add(self, rhs: Duration) -> UnixMillis {
        UnixMillis(
            self.0
                .saturating_add(i64::try_from(rhs.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

impl Sub<Duration> for UnixMillis {
    type Output = UnixMillis;
    fn sub(self, rhs: Duration) -> UnixMillis {
        UnixMillis(
            self.0
                .saturating_sub(i64::try_from(rhs.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

/// Whole seconds from `start` to `end`, rounded half up at 500 ms
/// (decision 10, §4.3.5 ③): 1499 ms → 1 s, 1500 ms → 2 s. Negative spans are 0.
pub fn rounded_seconds(start: UnixMillis, end: UnixMillis) -> u64 {
    end.millis_since(start).saturating_add(500) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talking_sec_rounds_half_up_at_500_ms() {
        // Decision 10.
        let start = UnixMillis(1_700_000_000_000);
        let at = |ms: i64| UnixMillis(start.0 + ms);
        assert_eq!(rounded_seconds(start, at(0)), 0);
        assert_eq!(rounded_seconds(start, at(499)), 0);
        assert_eq!(rounded_seconds(start, at(500)), 1);
        assert_eq!(rounded_seconds(start, at(1_499)), 1);
        assert_eq!(rounded_seconds(start, at(1_500)), 2);
        assert_eq!(rounded_seconds(start, at(61_499)), 61);
        assert_eq!(rounded_seconds(start, at(-5_000)), 0, "never negative");
    }

    #[test]
    fn adding_durations_saturates() {
        let t = UnixMillis(i64::MAX - 10);
        assert_eq!(t + Duration::from_secs(1), UnixMillis(i64::MAX));
        assert_eq!(UnixMillis(5) - Duration::from_millis(3), UnixMillis(2));
    }
}
