//! Encoders and decoders: H.264 (openh264, built from its bundled source;
//! every browser, Safari included, decodes it) and Opus.

use std::time::Duration;

use openh264::OpenH264API;
use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;

use crate::frame::{AudioFrame, MediaTime, PixelFormat, Plane, VideoFrame};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the H.264 encoder failed: {0}")]
    Encode(String),
    #[error("the H.264 decoder failed: {0}")]
    Decode(String),
    #[error("the encoder takes I420 frames, not {0:?}")]
    Format(PixelFormat),
    #[error("Opus failed: {0}")]
    Opus(String),
}

/// At most one keyframe per this interval per sender, however many PLI/FIR
/// arrive (each viewer of a live may ask).
pub const KEYFRAME_INTERVAL_MIN: Duration = Duration::from_secs(1);

/// Grants keyframe requests no more than once per [`KEYFRAME_INTERVAL_MIN`];
/// a request inside the interval is remembered and granted when it ends.
#[derive(Debug, Clone, Default)]
pub struct KeyframeLimiter {
    last_us: Option<i64>,
    pending: bool,
}

impl KeyframeLimiter {
    /// A PLI or FIR arrived.
    pub fn request(&mut self) {
        self.pending = true;
    }

    /// Whether the frame encoded at `now_us` must be a keyframe.
    pub fn take(&mut self, now_us: i64) -> bool {
        let interval = i64::try_from(KEYFRAME_INTERVAL_MIN.as_micros()).unwrap_or(i64::MAX);
        if self.pending && self.last_us.is_none_or(|last| now_us - last >= interval) {
            self.pending = false;
            self.last_us = Some(now_us);
            return true;
        }
        false
    }

    /// A keyframe went out for another reason (the first frame, a new size).
    pub fn sent(&mut self, now_us: i64) {
        self.last_us = Some(now_us);
        self.pending = false;
    }
}

/// An I420 frame as openh264 reads it.
struct I420View<'a>(&'a VideoFrame);

impl YUVSource for I420View<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width as usize, self.0.height as usize)
    }
    fn strides(&self) -> (usize, usize, usize) {
        let p = &self.0.planes;
        (p[0].stride, p[1].stride, p[2].stride)
    }
    fn y(&self) -> &[u8] {
        &self.0.planes[0].data
    }
    fn u(&self) -> &[u8] {
        &self.0.planes[1].data
    }
    fn v(&self) -> &[u8] {
        &self.0.planes[2].data
    }
}

/// One encoded picture: an Annex-B access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVideo {
    pub data: Vec<u8>,
    pub keyframe: bool,
    pub captured: MediaTime,
    pub width: u32,
    pub height: u32,
}

/// H.264 constrained baseline for real-time: camera usage, bitrate rate
/// control with frame skipping, no periodic IDR (keyframes on request).
pub struct H264Encoder {
    encoder: Encoder,
    bitrate_bps: u32,
    /// What the encoder runs at now (the creation-time rate after a re-init).
    applied_bps: u32,
    created_bps: u32,
    keyframes: KeyframeLimiter,
    size: Option<(u32, u32)>,
}

fn encoder_config(bitrate_bps: u32, fps: f32) -> EncoderConfig {
    EncoderConfig::new()
        .bitrate(BitRate::from_bps(bitrate_bps))
        .max_frame_rate(FrameRate::from_hz(fps))
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .skip_frames(true)
}

impl H264Encoder {
    pub fn new(bitrate_bps: u32, fps: f32) -> Result<Self, CodecError> {
        let encoder =
            Encoder::with_api_config(OpenH264API::from_source(), encoder_config(bitrate_bps, fps))
                .map_err(|e| CodecError::Encode(e.to_string()))?;
        Ok(Self {
            encoder,
            bitrate_bps,
            applied_bps: bitrate_bps,
            created_bps: bitrate_bps,
            keyframes: KeyframeLimiter::default(),
            size: None,
        })
    }

    pub fn bitrate_bps(&self) -> u32 {
        self.bitrate_bps
    }

    /// Follows the transport's bandwidth estimate. openh264 retunes its rate
    /// control in place (no keyframe), but the crate exposes that only
    /// through its raw API, and caps the bitrate at the one the encoder was
    /// created with unless the maximum is raised first.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), CodecError> {
        self.bitrate_bps = bitrate_bps;
        if self.size.is_none() {
            return Ok(()); // applied when the first frame initialises the encoder
        }
        self.apply_bitrate()
    }

    #[allow(unsafe_code)]
    fn apply_bitrate(&mut self) -> Result<(), CodecError> {
        let bps = i32::try_from(self.bitrate_bps).unwrap_or(i32::MAX);
        let max = (
            openh264_sys2::ENCODER_OPTION_MAX_BITRATE,
            openh264_sys2::SPATIAL_LAYER_0,
        );
        let target = (
            openh264_sys2::ENCODER_OPTION_BITRATE,
            openh264_sys2::SPATIAL_LAYER_ALL,
        );
        // The target may never exceed the maximum: raise the maximum first,
        // lower it last.
        let order = if self.bitrate_bps >= self.applied_bps {
            [max, target]
        } else {
            [target, max]
        };
        for (option, layer) in order {
            let mut info = openh264_sys2::SBitrateInfo {
                iLayer: layer,
                iBitrate: bps,
            };
            // SAFETY: these options read one SBitrateInfo during the call;
            // `info` outlives it, and the encoder is initialised (a frame was
            // encoded, `self.size` is set).
            let rc = unsafe {
                let raw = self.encoder.raw_api();
                raw.set_option(option, (&raw mut info).cast())
            };
            if rc != 0 {
                return Err(CodecError::Encode(format!(
                    "setting the bitrate to {bps} bps failed ({rc})"
                )));
            }
        }
        self.applied_bps = self.bitrate_bps;
        Ok(())
    }

    /// A PLI/FIR arrived; honoured within [`KEYFRAME_INTERVAL_MIN`].
    pub fn request_keyframe(&mut self) {
        self.keyframes.request();
    }

    /// Encodes an I420 frame. A new size restarts the stream with a keyframe.
    /// `None` when rate control skipped the frame.
    pub fn encode(
        &mut self,
        frame: &VideoFrame,
        now_us: i64,
    ) -> Result<Option<EncodedVideo>, CodecError> {
        if frame.format != PixelFormat::I420 {
            return Err(CodecError::Format(frame.format));
        }
        frame
            .check()
            .map_err(|e| CodecError::Encode(e.to_string()))?;
        let size = (frame.width, frame.height);
        let new_size = self.size != Some(size);
        if new_size {
            // openh264 re-initialises for a new size and emits an IDR itself.
            self.keyframes.sent(now_us);
        } else if self.keyframes.take(now_us) {
            self.encoder.force_intra_frame();
        }
        let timestamp = openh264::Timestamp::from_millis(u64::try_from(now_us / 1000).unwrap_or(0));
        let stream = self
            .encoder
            .encode_at(&I420View(frame), timestamp)
            .map_err(|e| CodecError::Encode(e.to_string()))?;
        let keyframe = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
        let skipped = matches!(stream.frame_type(), FrameType::Skip);
        let data = stream.to_vec();
        if new_size {
            // A re-initialisation resets the rate to the creation-time one.
            self.size = Some(size);
            self.applied_bps = self.created_bps;
            self.apply_bitrate()?;
        }
        if data.is_empty() || skipped {
            return Ok(None);
        }
        Ok(Some(EncodedVideo {
            data,
            keyframe,
            captured: frame.timestamp,
            width: frame.width,
            height: frame.height,
        }))
    }
}

/// H.264 to I420 frames.
pub struct H264Decoder {
    decoder: Decoder,
}

impl H264Decoder {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            decoder: Decoder::new().map_err(|e| CodecError::Decode(e.to_string()))?,
        })
    }

    /// Decodes one access unit; `None` while the decoder has no picture yet.
    pub fn decode(
        &mut self,
        access_unit: &[u8],
        timestamp: MediaTime,
    ) -> Result<Option<VideoFrame>, CodecError> {
        let Some(yuv) = self
            .decoder
            .decode(access_unit)
            .map_err(|e| CodecError::Decode(e.to_string()))?
        else {
            return Ok(None);
        };
        let (w, h) = yuv.dimensions();
        let (ys, us, vs) = yuv.strides();
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let copy = |data: &[u8], stride: usize, row: usize, rows: usize| {
            let mut out = Vec::with_capacity(row * rows);
            for y in 0..rows {
                out.extend_from_slice(&data[y * stride..y * stride + row]);
            }
            Plane {
                data: out,
                stride: row,
            }
        };
        Ok(Some(VideoFrame {
            format: PixelFormat::I420,
            width: w as u32,
            height: h as u32,
            planes: vec![
                copy(yuv.y(), ys, w, h),
                copy(yuv.u(), us, cw, ch),
                copy(yuv.v(), vs, cw, ch),
            ],
            timestamp,
        }))
    }
}

/// Opus at 48 kHz mono for speech, with in-band FEC for the jitter buffer.
pub struct OpusEncoder {
    encoder: opus::Encoder,
}

fn opus_error(e: opus::Error) -> CodecError {
    CodecError::Opus(e.to_string())
}

impl OpusEncoder {
    pub fn new(bitrate_bps: i32) -> Result<Self, CodecError> {
        let mut encoder = opus::Encoder::new(
            AudioFrame::RATE,
            opus::Channels::Mono,
            opus::Application::Voip,
        )
        .map_err(opus_error)?;
        encoder
            .set_bitrate(opus::Bitrate::Bits(bitrate_bps))
            .map_err(opus_error)?;
        encoder.set_inband_fec(true).map_err(opus_error)?;
        encoder.set_packet_loss_perc(10).map_err(opus_error)?;
        Ok(Self { encoder })
    }

    /// Tells the encoder the loss the receiver reports, so FEC spends bits where needed.
    pub fn set_expected_loss(&mut self, share: f64) -> Result<(), CodecError> {
        let percent = (share * 100.0).round().clamp(0.0, 100.0) as i32;
        self.encoder
            .set_packet_loss_perc(percent)
            .map_err(opus_error)
    }

    /// Encodes 10 or 20 ms of 48 kHz mono.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, CodecError> {
        self.encoder.encode_vec(pcm, 1500).map_err(opus_error)
    }
}

pub struct OpusDecoder {
    decoder: opus::Decoder,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            decoder: opus::Decoder::new(AudioFrame::RATE, opus::Channels::Mono)
                .map_err(opus_error)?,
        })
    }

    /// Decodes a packet into `samples` PCM samples.
    pub fn decode(&mut self, packet: &[u8], samples: usize) -> Result<Vec<i16>, CodecError> {
        self.decode_into(packet, samples, false)
    }

    /// Recovers a lost packet from the next one's FEC data.
    pub fn decode_fec(
        &mut self,
        next_packet: &[u8],
        samples: usize,
    ) -> Result<Vec<i16>, CodecError> {
        self.decode_into(next_packet, samples, true)
    }

    /// Packet-loss concealment for a gap with nothing to recover from.
    pub fn conceal(&mut self, samples: usize) -> Result<Vec<i16>, CodecError> {
        self.decode_into(&[], samples, false)
    }

    fn decode_into(
        &mut self,
        packet: &[u8],
        samples: usize,
        fec: bool,
    ) -> Result<Vec<i16>, CodecError> {
        let mut out = vec![0i16; samples];
        let n = self
            .decoder
            .decode(packet, &mut out, fec)
            .map_err(opus_error)?;
        out.truncate(n);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pattern::{TestPattern, read_stamp};
    use crate::source::tone::{ToneShape, ToneSource, tone_share};

    #[test]
    fn keyframes_are_limited_to_one_a_second() {
        let mut k = KeyframeLimiter::default();
        k.sent(0);
        k.request();
        assert!(!k.take(500_000), "too soon after the first keyframe");
        assert!(k.take(1_000_000), "granted once the second is over");
        assert!(!k.take(1_100_000), "one request, one keyframe");
        k.request();
        k.request();
        assert!(!k.take(1_500_000));
        assert!(k.take(2_000_000));
    }

    #[test]
    fn h264_round_trip_keeps_the_stamps_and_honours_keyframe_requests() {
        let pattern = TestPattern::new(320, 180).unwrap();
        let mut encoder = H264Encoder::new(400_000, 30.0).unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        let mut keyframes = Vec::new();
        let mut decoded = Vec::new();
        for seq in 0..60u32 {
            let now_us = i64::from(seq) * 1_000_000 / 30;
            if seq == 10 || seq == 20 || seq == 45 {
                encoder.request_keyframe();
            }
            if seq == 40 {
                encoder.set_bitrate(200_000).unwrap();
            }
            if seq == 50 {
                encoder.set_bitrate(900_000).unwrap(); // above the creation-time rate
            }
            let frame = pattern.render(seq, MediaTime(u64::from(seq)));
            if let Some(encoded) = encoder.encode(&frame, now_us).unwrap() {
                if encoded.keyframe {
                    keyframes.push(seq);
                }
                if let Some(picture) = decoder.decode(&encoded.data, encoded.captured).unwrap() {
                    decoded.push(read_stamp(&picture).map(|s| s.sequence));
                }
            }
        }
        // The first frame; the request at 10 waits for the second to pass (30);
        // the one at 20 merges into it; 45 comes one second after 30 at 60 — not in this run.
        assert_eq!(keyframes, [0, 30], "{keyframes:?}");
        assert!(decoded.len() >= 55, "decoded {} of 60", decoded.len());
        assert!(
            decoded.iter().all(|s| s.is_some()),
            "every decoded picture carries its stamp"
        );
        assert_eq!(encoder.bitrate_bps(), 900_000);
    }

    #[test]
    fn a_new_size_restarts_with_a_keyframe_and_garbage_does_not_panic() {
        let mut encoder = H264Encoder::new(300_000, 30.0).unwrap();
        let small = TestPattern::new(320, 180).unwrap().render(0, MediaTime(0));
        let big = TestPattern::new(640, 360).unwrap().render(1, MediaTime(0));
        assert!(encoder.encode(&small, 0).unwrap().unwrap().keyframe);
        let resized = encoder.encode(&big, 33_000).unwrap().unwrap();
        assert!(resized.keyframe);
        assert_eq!((resized.width, resized.height), (640, 360));
        let mut decoder = H264Decoder::new().unwrap();
        // Corrupt input is an error or no picture, never a crash.
        for garbage in [&[0u8, 0, 0, 1, 0x65, 0xFF, 0x00, 0x12][..], &[1, 2, 3], &[]] {
            let _ = decoder.decode(garbage, MediaTime(0));
        }
        let rgba = crate::convert::convert(&small, PixelFormat::Rgba).unwrap();
        assert_eq!(
            encoder.encode(&rgba, 0),
            Err(CodecError::Format(PixelFormat::Rgba))
        );
    }

    #[test]
    fn opus_round_trip_carries_the_tone_and_conceals_loss() {
        let mut tone = ToneSource::new(ToneShape::Steady { hz: 1000.0 }, 0.5);
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        let packets: Vec<Vec<u8>> = (0..50)
            .map(|_| {
                let mut pcm = tone.next_frame(MediaTime(0)).samples;
                pcm.extend(tone.next_frame(MediaTime(0)).samples);
                encoder.encode(&pcm).unwrap()
            })
            .collect();
        for (i, packet) in packets.iter().enumerate() {
            let pcm = match i {
                20 => decoder.decode_fec(&packets[21], 960).unwrap(),
                30 => decoder.conceal(960).unwrap(),
                _ => decoder.decode(packet, 960).unwrap(),
            };
            assert_eq!(pcm.len(), 960);
            out.extend(pcm);
        }
        assert!(tone_share(&out[48_000 / 2..], 48_000, 1000.0) > 0.8);
        let _ = decoder.decode(&[0xFF; 3], 960); // garbage: an error or noise, never a crash
    }
}
