//! An adaptive audio jitter buffer with loss concealment, sans-I/O.
//!
//! Packets go in as they arrive ([`JitterBuffer::push`]); the audio device
//! pulls one packet's worth every packet interval ([`JitterBuffer::pop`]). The
//! buffer holds back playout by a target delay learnt from the network: the
//! 95th percentile of the packets' relative transit times over the last few
//! seconds, so a path with jitter gets a deeper buffer and a clean one a
//! shallow one. What is missing when its turn comes is concealed — with the
//! next packet's in-band FEC when it is already here, by the decoder's PLC
//! otherwise. On an underrun playout waits (the delay grows by one packet); a
//! buffer grown much deeper than its target drops a packet to catch up.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// What to play for one packet interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The packet for this turn, on time.
    Packet(Vec<u8>),
    /// This turn's packet is lost; `fec` is the next packet, whose in-band FEC
    /// recovers it (Opus `decode(fec=true)`), if it has arrived.
    Lost { fec: Option<Vec<u8>> },
    /// Nothing has arrived yet or the buffer ran dry: play concealment and
    /// keep waiting for the same packet.
    Underrun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    pub played: u64,
    pub lost: u64,
    pub recovered_by_fec: u64,
    pub underruns: u64,
    /// Arrived after their turn had passed, or twice.
    pub late_or_duplicate: u64,
    /// Dropped to bring an over-deep buffer back to its target.
    pub dropped_to_catch_up: u64,
    pub target_delay: Duration,
}

struct Packet {
    payload: Vec<u8>,
}

/// Bounds of the playout delay.
const MIN_DELAY: Duration = Duration::from_millis(20);
const MAX_DELAY: Duration = Duration::from_millis(500);
/// Transit samples kept for the percentile: 3 s of 20 ms packets. Short
/// enough that a stall stops inflating the delay soon after it clears.
const WINDOW: usize = 150;

pub struct JitterBuffer {
    clock_rate: u32,
    packets: BTreeMap<u64, Packet>,
    /// Extended sequence number of the next packet to play.
    next: Option<u64>,
    highest: Option<u64>,
    /// RTP timestamp of the highest packet, and of the first (the media clock's zero).
    last_timestamp: Option<u32>,
    first_timestamp: Option<u32>,
    /// Relative transit times (arrival − media time) in µs, oldest first.
    transits: VecDeque<i64>,
    packet_duration: Duration,
    stats: JitterStats,
    started: bool,
}

impl JitterBuffer {
    /// `clock_rate` of the RTP timestamps (48 000 for Opus).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            packets: BTreeMap::new(),
            next: None,
            highest: None,
            last_timestamp: None,
            first_timestamp: None,
            transits: VecDeque::with_capacity(WINDOW),
            packet_duration: Duration::from_millis(20),
            stats: JitterStats {
                target_delay: MIN_DELAY,
                ..JitterStats::default()
            },
            started: false,
        }
    }

    /// A packet arrived at `arrival` (µs on any monotonic clock).
    pub fn push(&mut self, seq: u16, rtp_timestamp: u32, payload: Vec<u8>, arrival_us: i64) {
        let ext = crate::sequence::extend(self.highest, seq);
        if self.next.is_some_and(|next| ext < next) || self.packets.contains_key(&ext) {
            self.stats.late_or_duplicate += 1;
            return;
        }
        if let Some(highest) = self.highest
            && ext == highest + 1
            && let Some(prev) = self.last_timestamp
        {
            let step = rtp_timestamp.wrapping_sub(prev);
            if step > 0 && step < self.clock_rate {
                self.packet_duration =
                    Duration::from_micros(u64::from(step) * 1_000_000 / u64::from(self.clock_rate));
            }
        }
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
            self.last_timestamp = Some(rtp_timestamp);
        }
        // Transit up to a constant: arrival − media time, the media time taken
        // relative to the first packet so the 32-bit timestamp's wrap is harmless.
        let first = *self.first_timestamp.get_or_insert(rtp_timestamp);
        let media_ticks = i64::from(rtp_timestamp.wrapping_sub(first) as i32);
        let media_us = media_ticks * 1_000_000 / i64::from(self.clock_rate);
        let transit = arrival_us - media_us;
        if self.transits.len() == WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(transit);
        self.packets.insert(ext, Packet { payload });
        if self.next.is_none() {
            self.next = Some(ext);
        }
        self.update_target();
    }

    fn update_target(&mut self) {
        let mut sorted: Vec<i64> = self.transits.iter().copied().collect();
        sorted.sort_unstable();
        let min = sorted[0];
        let p95 = sorted[(sorted.len() - 1) * 95 / 100];
        let spread = Duration::from_micros(u64::try_from(p95 - min).unwrap_or(0));
        self.stats.target_delay = (spread + self.packet_duration).clamp(MIN_DELAY, MAX_DELAY);
    }

    /// How much is buffered from the next packet to play on.
    pub fn buffered(&self) -> Duration {
        match (self.next, self.highest) {
            (Some(next), Some(highest)) if highest >= next => {
                self.packet_duration * u32::try_from(highest - next + 1).unwrap_or(u32::MAX)
            }
            _ => Duration::ZERO,
        }
    }

    /// The next packet interval's audio.
    pub fn pop(&mut self) -> Playout {
        let Some(next) = self.next else {
            self.stats.underruns += 1;
            return Playout::Underrun;
        };
        // Hold playout back until the target delay is buffered, at the start
        // and after every underrun.
        if !self.started {
            if self.buffered() < self.stats.target_delay {
                self.stats.underruns += 1;
                return Playout::Underrun;
            }
            self.started = true;
        }
        // Far deeper than needed (a burst after a stall): skip ahead.
        let target = self.stats.target_delay;
        if self.buffered() > target * 2 + self.packet_duration * 4 {
            if self.packets.remove(&next).is_some() {
                self.stats.dropped_to_catch_up += 1;
            }
            self.next = Some(next + 1);
            return self.pop();
        }
        if let Some(packet) = self.packets.remove(&next) {
            self.next = Some(next + 1);
            self.stats.played += 1;
            return Playout::Packet(packet.payload);
        }
        if self.highest.is_some_and(|h| h > next) {
            // A later packet is here, so this one is lost (or too late to wait for).
            self.next = Some(next + 1);
            self.stats.lost += 1;
            let fec = self.packets.get(&(next + 1)).map(|p| p.payload.clone());
            if fec.is_some() {
                self.stats.recovered_by_fec += 1;
            }
            return Playout::Lost { fec };
        }
        self.stats.underruns += 1;
        self.started = false;
        Playout::Underrun
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    pub fn packet_duration(&self) -> Duration {
        self.packet_duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender of 20 ms packets over a path that adds `delay(k)` µs to packet k.
    /// Returns what the receiver played, pulling every 20 ms from the first arrival.
    fn simulate(
        count: u16,
        first_seq: u16,
        delay: impl Fn(u16) -> Option<i64>,
    ) -> (Vec<Playout>, JitterStats) {
        let mut arrivals: Vec<(i64, u16)> = (0..count)
            .filter_map(|k| delay(k).map(|d| (i64::from(k) * 20_000 + d, k)))
            .collect();
        arrivals.sort();
        let mut jb = JitterBuffer::new(48_000);
        let mut played = Vec::new();
        let start = arrivals[0].0;
        let mut arrivals = arrivals.into_iter().peekable();
        let mut now = start;
        while now < start + i64::from(count) * 20_000 + 1_000_000 {
            while let Some((at, k)) = arrivals.next_if(|(at, _)| *at <= now) {
                let seq = first_seq.wrapping_add(k);
                jb.push(seq, u32::from(k) * 960, k.to_be_bytes().to_vec(), at);
            }
            played.push(jb.pop());
            now += 20_000;
        }
        (played, jb.stats())
    }

    fn packets(played: &[Playout]) -> Vec<u16> {
        played
            .iter()
            .filter_map(|p| match p {
                Playout::Packet(b) => Some(u16::from_be_bytes([b[0], b[1]])),
                _ => None,
            })
            .collect()
    }

    /// Deterministic pseudo-random jitter, 0..max µs.
    fn jitter(k: u16, max: i64) -> i64 {
        let mut x = u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF;
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (x >> 33) as i64 % max
    }

    #[test]
    fn a_clean_path_plays_everything_with_a_small_delay() {
        let (played, stats) = simulate(500, 100, |_| Some(30_000));
        assert_eq!(packets(&played), (0..500).collect::<Vec<_>>());
        assert_eq!(stats.lost, 0);
        assert!(stats.target_delay <= Duration::from_millis(40), "{stats:?}");
    }

    #[test]
    fn a_jittery_path_gets_a_deeper_buffer_and_plays_in_order() {
        let (played, stats) = simulate(1000, 0, |k| Some(30_000 + jitter(k, 80_000)));
        let got = packets(&played);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
        assert!(got.len() >= 950, "played {} of 1000, {stats:?}", got.len());
        assert!(stats.target_delay >= Duration::from_millis(80), "{stats:?}");
        assert!(
            stats.target_delay <= Duration::from_millis(120),
            "{stats:?}"
        );
    }

    #[test]
    fn a_lost_packet_is_concealed_with_the_next_packets_fec() {
        let (played, stats) = simulate(50, 65_530, |k| (k != 10).then_some(5_000));
        let lost: Vec<&Playout> = played
            .iter()
            .filter(|p| matches!(p, Playout::Lost { .. }))
            .collect();
        assert_eq!(
            lost,
            [&Playout::Lost {
                fec: Some(11u16.to_be_bytes().to_vec())
            }]
        );
        assert_eq!(stats.lost, 1);
        assert_eq!(stats.recovered_by_fec, 1);
        let got = packets(&played);
        assert_eq!(got.len(), 49, "sequence wrap at 65535 → 0 does not disturb");
    }

    #[test]
    fn reordered_packets_play_in_order_and_late_ones_are_dropped() {
        // On a path with up to 40 ms of jitter, packet 20 arrives just after 21:
        // still in time. Packet 40 arrives 1 s late.
        let delay = |k: u16| 15_000 + jitter(k, 40_000);
        let (played, stats) = simulate(100, 7, |k| match k {
            20 => Some(20_000 + delay(21) + 1_000),
            40 => Some(1_000_000),
            _ => Some(delay(k)),
        });
        let got = packets(&played);
        assert!(got.contains(&20));
        assert!(!got.contains(&40));
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        // Packet 40, and at most a few early ones while the target was still learning.
        assert!((1..=4).contains(&stats.late_or_duplicate), "{stats:?}");
    }

    #[test]
    fn a_stall_then_a_burst_is_caught_up_by_dropping() {
        // The network stalls for 1 s: packets 100..150 (sent 2.0–3.0 s) all arrive at 3.0 s.
        let (played, stats) = simulate(400, 0, |k| {
            let k = i64::from(k);
            Some(if (100..150).contains(&k) {
                3_000_000 - k * 20_000 + (k - 100)
            } else {
                10_000
            })
        });
        assert!(stats.underruns > 0);
        assert!(stats.dropped_to_catch_up > 0, "{stats:?}");
        assert!(jitter_free_end(&played), "playout settles back to packets");
    }

    fn jitter_free_end(played: &[Playout]) -> bool {
        played[played.len() - 60..played.len() - 50]
            .iter()
            .all(|p| matches!(p, Playout::Packet(_)))
    }
}
