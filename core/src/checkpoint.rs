//! When a running call or paid viewing records its charge so far, so that a
//! server that dies loses at most a few seconds of it (the partner is sent
//! the end report as of the last record). A record is due every
//! [`CHECKPOINT_INTERVAL`] and as soon as a billing-unit boundary has passed.

use std::time::Duration;

use crate::clock::UnixMillis;

/// The longest a running service goes without a record: 4 s, so that a
/// crash loses less than 5 s even when a busy machine runs the record late.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Default)]
pub struct CheckpointSchedule {
    last: Option<UnixMillis>,
    /// The boundary that was ahead at the last record.
    boundary: Option<UnixMillis>,
}

impl CheckpointSchedule {
    /// Whether a record is due at `now`; `boundary` is the next billing-unit
    /// boundary as seen at the last record (see [`Self::recorded`]).
    pub fn due(&self, now: UnixMillis) -> bool {
        match self.last {
            None => true,
            Some(last) => {
                now >= last + CHECKPOINT_INTERVAL || self.boundary.is_some_and(|b| now >= b)
            }
        }
    }

    /// A record was taken at `now`; `next_boundary` is the billing-unit
    /// boundary after `now`, if the service is charged.
    pub fn recorded(&mut self, now: UnixMillis, next_boundary: Option<UnixMillis>) {
        self.last = Some(now);
        self.boundary = next_boundary;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMillis = UnixMillis(1_700_000_000_000);

    fn at(ms: i64) -> UnixMillis {
        UnixMillis(T0.0 + ms)
    }

    /// Ticks once a second for a minute with a 7 s billing unit; returns the
    /// moments of the records.
    #[test]
    fn every_four_seconds_and_right_after_each_unit_boundary() {
        let mut schedule = CheckpointSchedule::default();
        let unit = 7_000;
        let mut records = Vec::new();
        for second in 0..=21 {
            let now = at(second * 1000);
            if schedule.due(now) {
                records.push(second);
                let next = (second * 1000 / unit + 1) * unit;
                schedule.recorded(now, Some(at(next)));
            }
        }
        // 0, then 4; the boundary at 7; 11; the boundary at 14; 18; 21.
        assert_eq!(records, [0, 4, 7, 11, 14, 18, 21]);
        let gaps = records.windows(2).map(|w| w[1] - w[0]);
        assert!(gaps.clone().all(|g| g <= 4), "{records:?}");
    }

    #[test]
    fn a_free_service_is_recorded_every_four_seconds() {
        let mut schedule = CheckpointSchedule::default();
        assert!(schedule.due(at(0)));
        schedule.recorded(at(0), None);
        assert!(!schedule.due(at(3_999)));
        assert!(schedule.due(at(4_000)));
    }
}
