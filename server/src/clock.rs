//! The server's one source of "now", passed into core's state machines.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nexmile_core::clock::UnixMillis;

/// Wall-clock milliseconds, optionally running `rate` times faster than real
/// time from the moment the server started (tests of billing and deadlines).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
    started_at: UnixMillis,
    rate: f64,
}

impl Clock {
    pub fn new(rate: f64) -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            started: Instant::now(),
            started_at: UnixMillis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)),
            rate,
        }
    }

    pub fn now(&self) -> UnixMillis {
        self.started_at + self.started.elapsed().mul_f64(self.rate)
    }

    /// A span of server time as real time to sleep.
    pub fn real(&self, span: Duration) -> Duration {
        span.div_f64(self.rate)
    }
}
