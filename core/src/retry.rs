//! The retry schedule of requests marked 再送 (decision 11, §4.1.2 ②):
//! call end (6), live end (13), live abort (29), view end (33).
//!
//! After a failed try (no 200, a timeout, a refused connection) the request is
//! tried again after 1, 2, 4, 8, 16, 32, 64 s, then every 128 s, until a 200
//! arrives; 6 h after the first try it is dropped. The state is two numbers,
//! so the server's outbox stores it and carries on after a restart.

use std::time::Duration;

use crate::clock::UnixMillis;

/// The first seven waits; after them, [`STEADY_DELAY`].
pub const BACKOFF: [Duration; 7] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
    Duration::from_secs(32),
    Duration::from_secs(64),
];
pub const STEADY_DELAY: Duration = Duration::from_secs(128);
/// A request is dropped this long after its first try.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(6 * 60 * 60);

/// The wait after the `failures`-th failed try (1-based).
pub fn delay_after(failures: u32) -> Duration {
    let index = failures.saturating_sub(1) as usize;
    BACKOFF.get(index).copied().unwrap_or(STEADY_DELAY)
}

/// Where one retried request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryState {
    pub first_try: UnixMillis,
    pub failures: u32,
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryVerdict {
    RetryAt(UnixMillis),
    /// 6 h have passed since the first try: drop it.
    GiveUp,
}

impl RetryState {
    pub fn new(first_try: UnixMillis) -> Self {
        Self {
            first_try,
            failures: 0,
        }
    }

    /// Records a failed try that ended at `now` and says when to try next.
    pub fn on_failure(&mut self, now: UnixMillis) -> RetryVerdict {
        self.failures = self.failures.saturating_add(1);
        let next = now + delay_after(self.failures);
        if next > self.first_try + GIVE_UP_AFTER {
            RetryVerdict::GiveUp
        } else {
            RetryVerdict::RetryAt(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_to_64_s_then_stay_at_128_s() {
        let waits: Vec<u64> = (1..=10).map(|n| delay_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 128, 128]);
        assert_eq!(delay_after(0).as_secs(), 1);
        assert_eq!(delay_after(u32::MAX).as_secs(), 128);
    }

    #[test]
    fn a_partner_that_never_answers_is_tried_until_six_hours_then_dropped() {
        // Each try fails at once (connection refused): the schedule alone decides.
        let t0 = UnixMillis(1_700_000_000_000);
        let mut state = RetryState::new(t0);
        let mut tries = vec![t0];
        let mut now = t0;
        while let RetryVerdict::RetryAt(next) = state.on_failure(now) {
            tries.push(next);
            now = next;
        }
        let offsets: Vec<i64> = tries.iter().map(|t| (t.0 - t0.0) / 1000).collect();
        assert_eq!(&offsets[..9], [0, 1, 3, 7, 15, 31, 63, 127, 255]);
        // 127 s of back-off, then one try every 128 s up to 21600 s.
        let last = *offsets.last().unwrap();
        assert!(
            last <= 21_600 && last + 128 > 21_600,
            "last try at {last} s"
        );
        assert_eq!(tries.len(), 8 + ((21_600 - 127) / 128) as usize);
    }

    #[test]
    fn slow_failures_count_toward_the_six_hours() {
        // A try that times out after 8 s pushes the next one back by 8 s.
        let t0 = UnixMillis(0);
        let mut state = RetryState::new(t0);
        assert_eq!(
            state.on_failure(UnixMillis(8_000)),
            RetryVerdict::RetryAt(UnixMillis(9_000))
        );
        let mut late = RetryState::new(t0);
        late.failures = 20;
        assert_eq!(
            late.on_failure(t0 + GIVE_UP_AFTER - Duration::from_secs(100)),
            RetryVerdict::GiveUp
        );
    }
}
