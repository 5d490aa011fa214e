//! Received sound, from packets to 48 kHz mono PCM, sans-I/O: the adaptive
//! jitter buffer, then Opus with its in-band FEC and packet-loss
//! concealment. The speaker's thread asks for the next packet interval when
//! its device has room ([`AudioPlayout::next_interval`]), so playout runs on
//! the device's clock, not the network's.

use std::time::Duration;

use crate::codec::{CodecError, OpusDecoder};
use crate::frame::AudioFrame;
use crate::jitter::{JitterBuffer, JitterStats, Playout};

/// What playout did so far, for the call's summary and quality reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlayoutStats {
    pub jitter: JitterStats,
    /// Packet intervals played from a received packet.
    pub decoded: u64,
    /// Lost packets rebuilt from the next packet's FEC.
    pub fec_recovered: u64,
    /// Intervals filled by the decoder's concealment (loss without FEC, or an
    /// underrun after playout had begun).
    pub concealed: u64,
    /// Packets the decoder refused (garbage from the network); played as concealment.
    pub decode_errors: u64,
}

pub struct AudioPlayout {
    jitter: JitterBuffer,
    decoder: OpusDecoder,
    stats: PlayoutStats,
    /// Sound has been played; before that an empty buffer is silence, not
    /// concealment of something that never was.
    begun: bool,
    /// A packet has arrived.
    arrived: bool,
}

impl AudioPlayout {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            jitter: JitterBuffer::new(AudioFrame::RATE),
            decoder: OpusDecoder::new()?,
            stats: PlayoutStats::default(),
            begun: false,
            arrived: false,
        })
    }

    /// An Opus packet arrived at `arrival_us` (any monotonic clock).
    pub fn push(&mut self, seq: u16, rtp_timestamp: u32, payload: Vec<u8>, arrival_us: i64) {
        self.arrived = true;
        self.jitter.push(seq, rtp_timestamp, payload, arrival_us);
    }

    /// The length of one interval: the sender's packet duration (20 ms unless it says otherwise).
    pub fn interval(&self) -> Duration {
        self.jitter.packet_duration()
    }

    /// Sound waiting to be played, and the buffer's target depth.
    pub fn buffered(&self) -> Duration {
        self.jitter.buffered()
    }

    /// The next interval's 48 kHz mono samples: the packet, its FEC copy, or concealment.
    pub fn next_interval(&mut self) -> Vec<i16> {
        let samples =
            usize::try_from(self.interval().as_micros() * u128::from(AudioFrame::RATE) / 1_000_000)
                .unwrap_or(960);
        if !self.arrived {
            // Nothing was ever sent (a broadcaster's own playout): silence, no underrun.
            return vec![0; samples];
        }
        let decoded = match self.jitter.pop() {
            Playout::Packet(packet) => {
                self.begun = true;
                self.stats.decoded += 1;
                self.decoder.decode(&packet, samples)
            }
            Playout::Lost { fec: Some(next) } => {
                self.stats.fec_recovered += 1;
                self.decoder.decode_fec(&next, samples)
            }
            Playout::Lost { fec: None } => {
                self.stats.concealed += 1;
                self.decoder.conceal(samples)
            }
            Playout::Underrun if self.begun => {
                self.stats.concealed += 1;
                self.decoder.conceal(samples)
            }
            Playout::Underrun => Ok(vec![0; samples]),
        };
        let mut pcm = decoded.unwrap_or_else(|_| {
            self.stats.decode_errors += 1;
            self.decoder.conceal(samples).unwrap_or_default()
        });
        // Every interval is exactly its length, whatever the decoder gave.
        pcm.resize(samples, 0);
        pcm
    }

    pub fn stats(&self) -> PlayoutStats {
        PlayoutStats {
            jitter: self.jitter.stats(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::OpusEncoder;
    use crate::frame::MediaTime;
    use crate::source::tone::{ToneShape, ToneSource, tone_share};

    fn tone_packets(count: usize) -> Vec<Vec<u8>> {
        let mut tone = ToneSource::new(ToneShape::Steady { hz: 1000.0 }, 0.5);
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        (0..count)
            .map(|_| {
                let mut pcm = tone.next_frame(MediaTime(0)).samples;
                pcm.extend(tone.next_frame(MediaTime(0)).samples);
                encoder.encode(&pcm).unwrap()
            })
            .collect()
    }

    /// Sends `packets` every 20 ms over a path that loses those `lost` says,
    /// and plays one interval every 20 ms.
    fn play(packets: &[Vec<u8>], lost: impl Fn(usize) -> bool) -> (Vec<i16>, PlayoutStats) {
        let mut playout = AudioPlayout::new().unwrap();
        let mut out = Vec::new();
        for (k, packet) in packets.iter().enumerate() {
            if !lost(k) {
                let seq = u16::try_from(k).unwrap();
                playout.push(
                    seq,
                    u32::try_from(k * 960).unwrap(),
                    packet.clone(),
                    k as i64 * 20_000,
                );
            }
            out.extend(playout.next_interval());
        }
        (out, playout.stats())
    }

    #[test]
    fn before_the_first_packet_playout_is_silence_not_concealment() {
        let mut playout = AudioPlayout::new().unwrap();
        assert_eq!(playout.next_interval(), vec![0; 960]);
        assert_eq!(playout.stats().concealed, 0);
        assert_eq!(playout.stats().jitter.underruns, 0, "nothing was late");
    }

    #[test]
    fn a_clean_stream_plays_the_tone() {
        let (pcm, stats) = play(&tone_packets(100), |_| false);
        assert_eq!(pcm.len(), 100 * 960);
        assert!(tone_share(&pcm[48_000 / 2..], 48_000, 1000.0) > 0.8);
        assert_eq!((stats.concealed, stats.fec_recovered), (0, 0));
        assert!(stats.decoded >= 97, "{stats:?}");
    }

    #[test]
    fn single_losses_are_rebuilt_from_fec_and_runs_are_concealed() {
        // Every tenth packet lost alone; 60 and 61 lost together.
        let (pcm, stats) = play(&tone_packets(100), |k| k % 10 == 5 || k == 61);
        assert!(stats.fec_recovered >= 8, "{stats:?}");
        assert!(stats.concealed >= 1, "{stats:?}");
        // The tone carries through the gaps.
        assert!(tone_share(&pcm[48_000 / 2..], 48_000, 1000.0) > 0.7);
    }

    #[test]
    fn garbage_is_concealed_and_counted() {
        let mut packets = tone_packets(50);
        packets[25] = vec![0xFF; 3];
        let (pcm, stats) = play(&packets, |_| false);
        assert_eq!(pcm.len(), 50 * 960);
        assert_eq!(stats.decode_errors, 1, "{stats:?}");
    }
}
