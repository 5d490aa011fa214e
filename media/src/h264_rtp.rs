//! H.264 RTP payloads (RFC 6184, packetization-mode 1) back to Annex-B access
//! units, for the [`FrameAssembler`](crate::reassembly::FrameAssembler).
//!
//! Written here because reassembly needs to know, per packet, whether it
//! starts a keyframe (to resume after loss or a late join), which the
//! `webrtc` crate's depacketizer does not tell.

use crate::reassembly::{DepacketizeError, Depacketizer};

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

fn nal_type(byte: u8) -> u8 {
    byte & 0x1F
}

#[derive(Debug, Default)]
pub struct H264Depacketizer;

impl H264Depacketizer {
    /// The type of the first NAL unit a payload carries or continues.
    fn first_nal(payload: &[u8]) -> Option<(u8, bool)> {
        let header = *payload.first()?;
        match nal_type(header) {
            STAP_A => payload.get(3).map(|h| (nal_type(*h), true)),
            FU_A => {
                let fu = *payload.get(1)?;
                Some((nal_type(fu), fu & 0x80 != 0))
            }
            t => Some((t, true)),
        }
    }
}

impl Depacketizer for H264Depacketizer {
    fn starts_keyframe(&self, payload: &[u8]) -> bool {
        matches!(Self::first_nal(payload), Some((NAL_SPS | NAL_IDR, true)))
    }

    fn join(&mut self, payloads: &[&[u8]]) -> Result<Vec<u8>, DepacketizeError> {
        let bad = |why: &str| DepacketizeError(why.to_owned());
        let mut out = Vec::with_capacity(payloads.iter().map(|p| p.len() + 4).sum());
        let mut in_fragment = false;
        for payload in payloads {
            let header = *payload.first().ok_or_else(|| bad("empty payload"))?;
            match nal_type(header) {
                1..=23 => {
                    out.extend_from_slice(&START_CODE);
                    out.extend_from_slice(payload);
                }
                STAP_A => {
                    let mut rest = &payload[1..];
                    while !rest.is_empty() {
                        let [hi, lo, ..] = *rest else {
                            return Err(bad("truncated STAP-A size"));
                        };
                        let size = usize::from(u16::from_be_bytes([hi, lo]));
                        let nal = rest
                            .get(2..2 + size)
                            .ok_or_else(|| bad("truncated STAP-A unit"))?;
                        if nal.is_empty() {
                            return Err(bad("empty STAP-A unit"));
                        }
                        out.extend_from_slice(&START_CODE);
                        out.extend_from_slice(nal);
                        rest = &rest[2 + size..];
                    }
                }
                FU_A => {
                    let fu = *payload.get(1).ok_or_else(|| bad("truncated FU-A"))?;
                    let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                    if start {
                        if in_fragment {
                            return Err(bad("FU-A start inside a fragment"));
                        }
                        out.extend_from_slice(&START_CODE);
                        out.push((header & 0xE0) | nal_type(fu));
                        in_fragment = true;
                    } else if !in_fragment {
                        return Err(bad("FU-A continuation without a start"));
                    }
                    out.extend_from_slice(&payload[2..]);
                    if end {
                        in_fragment = false;
                    }
                }
                other => return Err(bad(&format!("unsupported NAL type {other}"))),
            }
        }
        if in_fragment {
            return Err(bad("FU-A without an end"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_stap_a_and_fu_a_become_annex_b() {
        let sps = [0x67, 0x42, 0xE0, 0x1F];
        let pps = [0x68, 0xCE, 0x3C, 0x80];
        let stap = [&[0x18u8, 0, 4][..], &sps, &[0, 4], &pps].concat();
        let idr_start = [0x7C, 0x85, 0xAA, 0xBB];
        let idr_end = [0x7C, 0x45, 0xCC];
        let mut d = H264Depacketizer;
        assert!(d.starts_keyframe(&stap));
        assert!(d.starts_keyframe(&idr_start));
        assert!(!d.starts_keyframe(&idr_end));
        assert!(!d.starts_keyframe(&[0x41, 0x9A]), "a P slice");
        let au = d.join(&[&stap, &idr_start, &idr_end]).unwrap();
        assert_eq!(
            au,
            [
                &START_CODE[..],
                &sps,
                &START_CODE,
                &pps,
                &START_CODE,
                &[0x65, 0xAA, 0xBB, 0xCC]
            ]
            .concat()
        );
        assert_eq!(
            d.join(&[&[0x41, 0x9A, 0x01]]).unwrap(),
            [0, 0, 0, 1, 0x41, 0x9A, 0x01]
        );
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        let mut d = H264Depacketizer;
        for bad in [
            vec![],
            vec![0x18, 0, 9, 1],
            vec![0x18, 0],
            vec![0x1C],
            vec![0x1C, 0x05, 1],
            vec![0x19, 1, 2],
        ] {
            assert!(d.join(&[&bad]).is_err(), "{bad:?}");
        }
        assert!(d.join(&[&[0x7C, 0x85, 1]]).is_err(), "start without end");
        assert!(!d.starts_keyframe(&[]));
    }
}
