//! Video frame reassembly from RTP packets with reordering and NACK-based
//! retransmission, sans-I/O.
//!
//! Packets go in as they arrive, in any order ([`FrameAssembler::insert`]);
//! whole frames come out in order once every packet from the end of the last
//! frame up to a marker bit is present. A hole is NACKed at once and again
//! every [`NACK_INTERVAL`] (at most [`NACK_RETRIES`] times); a hole that stays
//! past [`GIVE_UP_AFTER`] ends the wait: the broken frames are skipped, a
//! keyframe is requested (at most one request per [`KEYFRAME_REQUEST_GAP`])
//! and output resumes at the next keyframe.

use std::collections::BTreeMap;
use std::time::Duration;

/// The codec-specific knowledge the assembler needs.
pub trait Depacketizer {
    /// Whether this packet starts a keyframe (where decoding can resume).
    fn starts_keyframe(&self, payload: &[u8]) -> bool;
    /// Joins one frame's payloads, in order, into a decodable access unit.
    fn join(&mut self, payloads: &[&[u8]]) -> Result<Vec<u8>, DepacketizeError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed RTP payload: {0}")]
pub struct DepacketizeError(pub String);

/// One received RTP packet, as far as reassembly cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// A whole frame ready to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    pub rtp_timestamp: u32,
    pub keyframe: bool,
    pub data: Vec<u8>,
    /// When its last packet arrived (µs, the caller's clock).
    pub completed_us: i64,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssemblerAction {
    Frame(AssembledFrame),
    /// Send an RTCP generic NACK for these sequence numbers.
    Nack(Vec<u16>),
    /// Send an RTCP PLI: decoding cannot continue until a keyframe.
    RequestKeyframe,
}

pub const NACK_INTERVAL: Duration = Duration::from_millis(40);
pub const NACK_RETRIES: u32 = 8;
pub const GIVE_UP_AFTER: Duration = Duration::from_millis(400);
pub const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);
/// A jump this large is a new stream (or a restart), not a hole to repair.
const MAX_GAP: u64 = 1000;
/// What may wait for a frame to complete: a 1080p keyframe is a few hundred
/// packets and under 1 MiB. A sender that never sets the marker bit or never
/// starts a keyframe would otherwise fill memory (security review H5): past
/// any of these the buffer is dropped and a keyframe requested.
pub const MAX_BUFFERED_PACKETS: usize = 2048;
pub const MAX_BUFFERED_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_PACKET_AGE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AssemblerStats {
    pub frames: u64,
    pub keyframes: u64,
    pub nacked_packets: u64,
    pub recovered_packets: u64,
    pub skipped_frames_gaps: u64,
    pub keyframe_requests: u64,
    pub malformed: u64,
    /// Times the buffer was dropped for holding too much, or for too long.
    pub overflows: u64,
}

struct Missing {
    first_seen_us: i64,
    last_nack_us: i64,
    nacks: u32,
}

pub struct FrameAssembler<D> {
    depacketizer: D,
    packets: BTreeMap<u64, RtpPacket>,
    /// When each buffered packet arrived (µs), by extended sequence.
    arrived: BTreeMap<u64, i64>,
    buffered_bytes: usize,
    missing: BTreeMap<u64, Missing>,
    /// Extended sequence of the next packet a frame must start at; `None`
    /// until a keyframe start is seen (at the beginning and after a give-up).
    next: Option<u64>,
    highest: Option<u64>,
    last_keyframe_request_us: Option<i64>,
    stats: AssemblerStats,
}

impl<D: Depacketizer> FrameAssembler<D> {
    pub fn new(depacketizer: D) -> Self {
        Self {
            depacketizer,
            packets: BTreeMap::new(),
            arrived: BTreeMap::new(),
            buffered_bytes: 0,
            missing: BTreeMap::new(),
            next: None,
            highest: None,
            last_keyframe_request_us: None,
            stats: AssemblerStats::default(),
        }
    }

    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    /// A packet arrived at `now_us`.
    pub fn insert(&mut self, packet: RtpPacket, now_us: i64) -> Vec<AssemblerAction> {
        let ext = crate::sequence::extend(self.highest, packet.sequence);
        let mut actions = Vec::new();
        if self.next.is_some_and(|next| ext < next) || self.packets.contains_key(&ext) {
            return actions; // already played past it, or a duplicate retransmission
        }
        if self.missing.remove(&ext).is_some() {
            self.stats.recovered_packets += 1;
        }
        match self.highest {
            Some(highest) if ext > highest + MAX_GAP => self.reset(),
            Some(highest) if ext > highest + 1 => {
                let new: Vec<u64> = (highest + 1..ext).collect();
                for seq in &new {
                    self.missing.insert(
                        *seq,
                        Missing {
                            first_seen_us: now_us,
                            last_nack_us: now_us,
                            nacks: 1,
                        },
                    );
                }
                self.stats.nacked_packets += new.len() as u64;
                actions.push(AssemblerAction::Nack(
                    new.iter().map(|s| *s as u16).collect(),
                ));
            }
            _ => {}
        }
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        if self.next.is_none() && self.depacketizer.starts_keyframe(&packet.payload) {
            self.next = Some(ext);
            // Packets and holes before the resume point no longer matter.
            self.missing.retain(|seq, _| *seq > ext);
            self.keep_from(ext);
        }
        self.buffered_bytes += packet.payload.len();
        self.arrived.insert(ext, now_us);
        self.packets.insert(ext, packet);
        self.emit_frames(now_us, &mut actions);
        if self.packets.len() > MAX_BUFFERED_PACKETS || self.buffered_bytes > MAX_BUFFERED_BYTES {
            self.overflow(now_us, &mut actions);
        }
        if self.next.is_none() {
            self.request_keyframe(now_us, &mut actions);
        }
        actions
    }

    fn reset(&mut self) {
        self.drop_buffer();
        self.highest = None;
    }

    fn drop_buffer(&mut self) {
        self.packets.clear();
        self.arrived.clear();
        self.buffered_bytes = 0;
        self.missing.clear();
        self.next = None;
    }

    /// Too much waits, or too long: nothing buffered can become a frame in
    /// time. Start over at the next keyframe, and ask for one.
    fn overflow(&mut self, now_us: i64, actions: &mut Vec<AssemblerAction>) {
        self.stats.overflows += 1;
        self.drop_buffer();
        self.request_keyframe(now_us, actions);
    }

    fn take(&mut self, seq: u64) -> Option<RtpPacket> {
        let packet = self.packets.remove(&seq)?;
        self.arrived.remove(&seq);
        self.buffered_bytes -= packet.payload.len();
        Some(packet)
    }

    /// Keeps only the buffered packets from `seq` on.
    fn keep_from(&mut self, seq: u64) {
        let older: Vec<u64> = self.packets.range(..seq).map(|(s, _)| *s).collect();
        for old in older {
            self.take(old);
        }
    }

    /// Emits every complete frame starting at `next`.
    fn emit_frames(&mut self, now_us: i64, actions: &mut Vec<AssemblerAction>) {
        while let Some(start) = self.next {
            let mut end = start;
            loop {
                match self.packets.get(&end) {
                    None => return,
                    Some(p) if p.marker => break,
                    Some(_) => end += 1,
                }
            }
            let frame: Vec<RtpPacket> = (start..=end).filter_map(|s| self.take(s)).collect();
            self.next = Some(end + 1);
            let keyframe = self.depacketizer.starts_keyframe(&frame[0].payload);
            let payloads: Vec<&[u8]> = frame.iter().map(|p| p.payload.as_slice()).collect();
            match self.depacketizer.join(&payloads) {
                Ok(data) => {
                    self.stats.frames += 1;
                    self.stats.keyframes += u64::from(keyframe);
                    actions.push(AssemblerAction::Frame(AssembledFrame {
                        rtp_timestamp: frame[0].timestamp,
                        keyframe,
                        data,
                        completed_us: now_us,
                    }));
                }
                Err(_) => {
                    // Decoding past a broken frame would show garbage: resync.
                    self.stats.malformed += 1;
                    self.next = None;
                    self.request_keyframe(now_us, actions);
                    return;
                }
            }
        }
    }

    fn request_keyframe(&mut self, now_us: i64, actions: &mut Vec<AssemblerAction>) {
        let gap = i64::try_from(KEYFRAME_REQUEST_GAP.as_micros()).unwrap_or(i64::MAX);
        if self
            .last_keyframe_request_us
            .is_none_or(|t| now_us - t >= gap)
        {
            self.last_keyframe_request_us = Some(now_us);
            self.stats.keyframe_requests += 1;
            actions.push(AssemblerAction::RequestKeyframe);
        }
    }

    /// Time passes: re-NACK holes, give up on old ones. Call every ~10 ms.
    pub fn poll(&mut self, now_us: i64) -> Vec<AssemblerAction> {
        let mut actions = Vec::new();
        let max_age = i64::try_from(MAX_PACKET_AGE.as_micros()).unwrap_or(i64::MAX);
        if self
            .arrived
            .values()
            .next()
            .is_some_and(|oldest| now_us - oldest > max_age)
        {
            self.overflow(now_us, &mut actions);
            return actions;
        }
        let give_up = i64::try_from(GIVE_UP_AFTER.as_micros()).unwrap_or(i64::MAX);
        let interval = i64::try_from(NACK_INTERVAL.as_micros()).unwrap_or(i64::MAX);
        let expired = self.next.is_some_and(|next| {
            self.missing
                .iter()
                .any(|(seq, m)| *seq >= next && now_us - m.first_seen_us >= give_up)
        });
        if expired {
            // Skip the broken frames and wait for a keyframe.
            self.stats.skipped_frames_gaps += 1;
            let resume = self
                .packets
                .iter()
                .find(|(_, p)| self.depacketizer.starts_keyframe(&p.payload))
                .map(|(s, _)| *s);
            match resume {
                Some(seq) => {
                    self.missing.clear();
                    self.keep_from(seq);
                    self.next = Some(seq);
                    self.emit_frames(now_us, &mut actions);
                }
                None => {
                    self.drop_buffer();
                    self.request_keyframe(now_us, &mut actions);
                }
            }
            return actions;
        }
        let mut again = Vec::new();
        for (seq, m) in &mut self.missing {
            if m.nacks < NACK_RETRIES && now_us - m.last_nack_us >= interval {
                m.nacks += 1;
                m.last_nack_us = now_us;
                again.push(*seq as u16);
            }
        }
        if !again.is_empty() {
            self.stats.nacked_packets += again.len() as u64;
            actions.push(AssemblerAction::Nack(again));
        }
        if self.next.is_none() {
            self.request_keyframe(now_us, &mut actions);
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payload byte 0: 1 = starts a keyframe. Frames join by concatenation.
    struct Toy;

    impl Depacketizer for Toy {
        fn starts_keyframe(&self, payload: &[u8]) -> bool {
            payload.first() == Some(&1)
        }
        fn join(&mut self, payloads: &[&[u8]]) -> Result<Vec<u8>, DepacketizeError> {
            if payloads.iter().any(|p| p.first() == Some(&0xEE)) {
                return Err(DepacketizeError("bad".into()));
            }
            Ok(payloads.concat())
        }
    }

    /// Frame f (0-based) is 3 packets, seq 3f..3f+2; frame 0 and every 10th is a keyframe.
    fn packet(seq: u16) -> RtpPacket {
        let frame = u32::from(seq / 3);
        let first = seq.is_multiple_of(3);
        RtpPacket {
            sequence: seq.wrapping_add(65_000),
            timestamp: frame * 3000,
            marker: seq % 3 == 2,
            payload: vec![u8::from(first && frame.is_multiple_of(10)), seq as u8],
        }
    }

    fn frames(actions: &[AssemblerAction]) -> Vec<u32> {
        actions
            .iter()
            .filter_map(|a| match a {
                AssemblerAction::Frame(f) => Some(f.rtp_timestamp / 3000),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn in_order_packets_give_whole_frames_across_the_sequence_wrap() {
        let mut a = FrameAssembler::new(Toy);
        let mut out = Vec::new();
        for seq in 0..900 {
            out.extend(a.insert(packet(seq), i64::from(seq) * 1000));
        }
        assert_eq!(frames(&out), (0..300).collect::<Vec<_>>());
        assert!(out.iter().all(|a| matches!(a, AssemblerAction::Frame(_))));
        assert_eq!(a.stats().keyframes, 30);
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        let mut a = FrameAssembler::new(Toy);
        let order = [0u16, 2, 1, 3, 5, 4, 8, 6, 7];
        let out: Vec<AssemblerAction> =
            order.iter().flat_map(|s| a.insert(packet(*s), 0)).collect();
        assert_eq!(frames(&out), [0, 1, 2]);
        let AssemblerAction::Frame(f) = &out
            .iter()
            .find(|a| matches!(a, AssemblerAction::Frame(_)))
            .unwrap()
        else {
            unreachable!()
        };
        assert_eq!(f.data, [1, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn a_lost_packet_is_nacked_and_recovered_by_retransmission() {
        let mut a = FrameAssembler::new(Toy);
        let mut out = Vec::new();
        for seq in (0..12).filter(|s| *s != 4) {
            out.extend(a.insert(packet(seq), 0));
        }
        assert!(out.contains(&AssemblerAction::Nack(vec![65_004])));
        assert_eq!(frames(&out), [0], "frame 1 waits for its packet");
        // Re-NACKed after the interval…
        let again = a.poll(50_000);
        assert_eq!(again, [AssemblerAction::Nack(vec![65_004])]);
        // …and the retransmission releases frames 1–3 at once.
        let out = a.insert(packet(4), 60_000);
        assert_eq!(frames(&out), [1, 2, 3]);
        assert_eq!(a.stats().recovered_packets, 1);
    }

    #[test]
    fn a_hole_that_never_fills_skips_to_the_next_keyframe_and_asks_for_one() {
        let mut a = FrameAssembler::new(Toy);
        let mut out = Vec::new();
        for seq in (0..20).filter(|s| *s != 4) {
            out.extend(a.insert(packet(seq), 0));
        }
        assert_eq!(frames(&out), [0]);
        let out = a.poll(500_000);
        assert!(out.contains(&AssemblerAction::RequestKeyframe), "{out:?}");
        // Frames 1–6 are gone; frame 10 (seq 30, a keyframe) resumes output.
        let out: Vec<AssemblerAction> = (20..33)
            .flat_map(|s| a.insert(packet(s), 510_000))
            .collect();
        assert_eq!(frames(&out), [10]);
        assert_eq!(a.stats().skipped_frames_gaps, 1);
        // Requests are throttled.
        assert!(!a.poll(520_000).contains(&AssemblerAction::RequestKeyframe));
    }

    #[test]
    fn joining_late_waits_for_a_keyframe() {
        let mut a = FrameAssembler::new(Toy);
        let mut out = Vec::new();
        for seq in 9..33 {
            out.extend(a.insert(packet(seq), 0));
        }
        assert_eq!(
            out.iter()
                .filter(|a| **a == AssemblerAction::RequestKeyframe)
                .count(),
            1
        );
        assert_eq!(frames(&out), [10]);
    }

    #[test]
    fn a_sender_that_never_ends_a_frame_cannot_fill_memory() {
        let mut a = FrameAssembler::new(Toy);
        let mut out = Vec::new();
        // A keyframe start, then 10,000 packets and never a marker bit.
        for seq in 0..10_000u16 {
            let mut p = packet(seq);
            p.marker = false;
            out.extend(a.insert(p, i64::from(seq) * 10));
            assert!(a.packets.len() <= MAX_BUFFERED_PACKETS);
        }
        assert!(a.stats().overflows >= 4, "{:?}", a.stats());
        assert!(out.contains(&AssemblerAction::RequestKeyframe));
        assert!(frames(&out).is_empty());
        // Big payloads: the byte cap comes first.
        let mut b = FrameAssembler::new(Toy);
        for seq in 0..10u16 {
            let mut p = packet(seq * 3);
            p.marker = false;
            p.payload = vec![1; 1024 * 1024];
            b.insert(p, 0);
            assert!(b.buffered_bytes <= MAX_BUFFERED_BYTES);
        }
        assert!(b.stats().overflows >= 1);
        // What waits longer than a second is dropped at the next poll.
        let mut c = FrameAssembler::new(Toy);
        c.insert(packet(0), 0);
        assert!(
            c.poll(900_000)
                .iter()
                .all(|x| *x != AssemblerAction::RequestKeyframe)
        );
        let late = c.poll(1_100_000);
        assert!(late.contains(&AssemblerAction::RequestKeyframe));
        assert_eq!((c.packets.len(), c.buffered_bytes), (0, 0));
        // Joining mid-stream: what came before the first keyframe is let go
        // when it starts, so it cannot age the stream that follows.
        let mut d = FrameAssembler::new(Toy);
        (3..30).for_each(|s| drop(d.insert(packet(s), 0)));
        d.insert(packet(30), 0);
        assert_eq!(d.packets.len(), 1);
        let on_time: Vec<_> = (31..36)
            .flat_map(|s| d.insert(packet(s), 900_000))
            .collect();
        assert_eq!(frames(&on_time), [10, 11]);
        assert!(
            d.poll(1_500_000)
                .iter()
                .all(|x| *x != AssemblerAction::RequestKeyframe)
        );
        // And it still assembles a whole stream afterwards.
        let resumed: Vec<_> = (30..36)
            .flat_map(|s| c.insert(packet(s), 1_200_000))
            .collect();
        assert_eq!(frames(&resumed), [10, 11]);
    }

    #[test]
    fn a_malformed_frame_is_dropped_and_a_keyframe_requested() {
        let mut a = FrameAssembler::new(Toy);
        let mut out: Vec<AssemblerAction> = (0..3).flat_map(|s| a.insert(packet(s), 0)).collect();
        let mut bad = packet(3);
        bad.payload = vec![0xEE];
        out.extend(a.insert(bad, 0));
        out.extend((4..6).flat_map(|s| a.insert(packet(s), 0)));
        assert_eq!(frames(&out), [0]);
        assert!(out.contains(&AssemblerAction::RequestKeyframe));
        assert_eq!(a.stats().malformed, 1);
    }
}
