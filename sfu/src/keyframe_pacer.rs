//! When to ask a broadcaster (or a caller) for a keyframe: a sans-IO pacer
//! driven by the requests of receivers and a clock passed in.
//!
//! Requests from many receivers cost the sender one keyframe per
//! [`KEYFRAME_REQUEST_GAP`]; one within the gap is made when the gap ends (a
//! receiver who connects just after a keyframe still gets one). While a
//! receiver still waits for a keyframe the request is repeated every
//! [`KEYFRAME_RETRY`]: a PLI is one datagram, and it can be lost or reach an
//! encoder that is not running yet (a browser's under load) — without a
//! repeat the receiver would wait for the sender's next periodic keyframe,
//! which WebRTC encoders do not send.

use std::time::{Duration, Instant};

/// A sender asked for keyframes by many receivers is asked at most this often.
pub(crate) const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(300);

/// A receiver still without a keyframe this long after a request asks again.
pub(crate) const KEYFRAME_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct KeyframePacer {
    /// When the last request went to the sender.
    last_sent: Option<Instant>,
    /// A receiver asked since then.
    wanted: bool,
}

impl KeyframePacer {
    /// A receiver asks for a keyframe (it joined, or lost a picture).
    pub(crate) fn want(&mut self) {
        self.wanted = true;
    }

    /// Whether a request should go to the sender now. `waiting`: a receiver
    /// is still waiting for a keyframe. Call [`Self::sent`] once it went.
    pub(crate) fn due(&mut self, now: Instant, waiting: bool) -> bool {
        let since = self.last_sent.map(|at| now.saturating_duration_since(at));
        if waiting && since.is_none_or(|s| s >= KEYFRAME_RETRY) {
            self.wanted = true;
        }
        self.wanted && since.is_none_or(|s| s >= KEYFRAME_REQUEST_GAP)
    }

    /// The request went out at `now`.
    pub(crate) fn sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
        self.wanted = false;
    }

    /// When [`Self::due`] next turns true without a new request, if it will:
    /// the end of the gap for a held request, the retry for a waiting receiver.
    pub(crate) fn next_due(&self, waiting: bool) -> Option<Instant> {
        let last = self.last_sent?;
        if self.wanted {
            Some(last + KEYFRAME_REQUEST_GAP)
        } else if waiting {
            Some(last + KEYFRAME_RETRY)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends if due, as the engines do; whether it sent.
    fn poll(pacer: &mut KeyframePacer, now: Instant, waiting: bool) -> bool {
        let due = pacer.due(now, waiting);
        if due {
            pacer.sent(now);
        }
        due
    }

    #[test]
    fn requests_within_the_gap_are_one_request_made_when_the_gap_ends() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut pacer = KeyframePacer::default();
        assert!(!poll(&mut pacer, start, false), "nobody asked");
        pacer.want();
        assert!(poll(&mut pacer, start, false));
        // Three more viewers join within the gap: held, not dropped.
        for at in [50, 120, 200] {
            pacer.want();
            assert!(!poll(&mut pacer, ms(at), false));
        }
        assert_eq!(pacer.next_due(false), Some(ms(300)));
        assert!(!poll(&mut pacer, ms(299), false));
        assert!(
            poll(&mut pacer, ms(300), false),
            "one request for the three"
        );
        assert!(!poll(&mut pacer, ms(700), false), "and nothing more");
        assert_eq!(pacer.next_due(false), None);
    }

    #[test]
    fn a_receiver_still_waiting_asks_again_each_retry_until_its_keyframe_comes() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut pacer = KeyframePacer::default();
        pacer.want();
        assert!(poll(&mut pacer, start, true));
        // The request was lost: the receiver still waits.
        assert!(!poll(&mut pacer, ms(500), true));
        assert_eq!(pacer.next_due(true), Some(ms(1000)));
        assert!(poll(&mut pacer, ms(1000), true), "asked again");
        assert!(poll(&mut pacer, ms(2000), true), "and again");
        // The keyframe came: no more requests.
        assert!(!poll(&mut pacer, ms(3500), false));
        assert_eq!(pacer.next_due(false), None);
    }

    #[test]
    fn a_waiting_receiver_before_any_request_asks_at_once() {
        let start = Instant::now();
        let mut pacer = KeyframePacer::default();
        assert!(poll(&mut pacer, start, true));
    }

    #[test]
    fn a_request_that_could_not_be_sent_stays_due() {
        let start = Instant::now();
        let mut pacer = KeyframePacer::default();
        pacer.want();
        // No sender's video yet: the engine does not call `sent`.
        assert!(pacer.due(start, false));
        assert!(pacer.due(start + Duration::from_millis(10), false));
    }
}
