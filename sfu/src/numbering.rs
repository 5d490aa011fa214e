//! A receiver's own sequence numbers for a forwarded stream.

use str0m::media::{Mid, Pt};
use str0m::rtp::Ssrc;

/// What a receiving leg's connection sends on one kind of media.
#[derive(Clone, Copy)]
pub(crate) struct Outgoing {
    pub mid: Mid,
    pub pt: Pt,
    /// The stream being forwarded, and what its sequence numbers are moved
    /// by: outgoing numbers start at 1, so SRTP's rollover counter starts at
    /// 0 as a new receiver expects.
    source: Option<(Ssrc, i64)>,
    /// The last outgoing number, from which a new source stream continues.
    last: u64,
}

impl Outgoing {
    pub(crate) fn new(mid: Mid, pt: Pt) -> Self {
        Self {
            mid,
            pt,
            source: None,
            last: 0,
        }
    }

    /// The outgoing number of one of the source's packets; none for a
    /// retransmission from before this receiver started.
    pub(crate) fn number(&mut self, ssrc: Ssrc, sequence: u64) -> Option<u64> {
        let sequence = i64::try_from(sequence).ok()?;
        let shift = match self.source {
            Some((current, shift)) if current == ssrc => shift,
            // The first packet, or a new stream of the publisher's: numbering goes on.
            _ => {
                let shift = i64::try_from(self.last).ok()? + 1 - sequence;
                self.source = Some((ssrc, shift));
                shift
            }
        };
        let number = u64::try_from(sequence + shift).ok().filter(|n| *n > 0)?;
        self.last = self.last.max(number);
        Some(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_starts_at_one_skips_older_retransmissions_and_goes_on_across_streams() {
        let mut out = Outgoing {
            mid: Mid::from("0"),
            pt: Pt::from(102),
            source: None,
            last: 0,
        };
        let (first, second) = (Ssrc::from(7), Ssrc::from(9));
        assert_eq!(out.number(first, 70_000), Some(1));
        assert_eq!(out.number(first, 70_002), Some(3));
        assert_eq!(
            out.number(first, 69_999),
            None,
            "from before the viewer started"
        );
        assert_eq!(
            out.number(first, 70_001),
            Some(2),
            "a late one keeps its place"
        );
        // The broadcaster's new stream starts lower; the viewer's numbers go on.
        assert_eq!(out.number(second, 2), Some(4));
        assert_eq!(out.number(second, 3), Some(5));
    }
}
