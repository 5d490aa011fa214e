//! H.264 RTP from the network through the frame assembler and the
//! depacketizer: lost, repeated, reordered and malformed packets.
//!
//! The input is a run of packets, each `[sequence step][timestamp step]
//! [flags][length]` then `length` bytes of payload; flag bit 0 is the
//! marker, bit 1 makes the assembler's clock jump half a second.
use nexmile_media::h264_rtp::H264Depacketizer;
use nexmile_media::reassembly::{AssemblerAction, Depacketizer, FrameAssembler, RtpPacket};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut assembler = FrameAssembler::new(H264Depacketizer);
        let (mut sequence, mut timestamp, mut now_us) = (65_500u16, 0u32, 0i64);
        let mut rest = data;
        let mut frames = 0usize;
        while let [step, ts_step, flags, length, tail @ ..] = rest {
            let length = usize::from(*length).min(tail.len());
            let (payload, after) = tail.split_at(length);
            rest = after;
            sequence = sequence.wrapping_add(u16::from(*step).wrapping_sub(2));
            timestamp = timestamp.wrapping_add(u32::from(*ts_step) * 300);
            now_us += if flags & 2 != 0 { 500_000 } else { 1_000 };
            let packet = RtpPacket {
                sequence,
                timestamp,
                marker: flags & 1 != 0,
                payload: payload.to_vec(),
            };
            // The depacketizer alone, on this packet.
            let _ = H264Depacketizer.starts_keyframe(payload);
            let _ = H264Depacketizer.join(&[payload]);
            for action in assembler.insert(packet, now_us) {
                if let AssemblerAction::Frame(_) = action {
                    frames += 1;
                }
            }
            assembler.poll(now_us);
        }
        assembler.poll(now_us + 10_000_000);
        assert!(frames <= data.len(), "more frames than bytes");
    });
}
