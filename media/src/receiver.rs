//! The receiving half of a video stream: RTP packets in, decoded pictures
//! out, and whether to ask the sender for a keyframe. Shared by the app's
//! call media and the loopback harness; the caller owns the connection.

use crate::codec::{CodecError, H264Decoder};
use crate::frame::{MediaTime, VideoFrame};
use crate::h264_rtp::H264Depacketizer;
use crate::reassembly::{AssemblerAction, FrameAssembler, RtpPacket};

pub struct VideoReceiver {
    assembler: FrameAssembler<H264Depacketizer>,
    decoder: H264Decoder,
}

/// What one packet or one poll produced.
#[derive(Default)]
pub struct Received {
    pub pictures: Vec<VideoFrame>,
    /// A picture is missing or broken: send a PLI. (The transport's NACK
    /// interceptor asks for lost packets itself.)
    pub request_keyframe: bool,
}

impl VideoReceiver {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            assembler: FrameAssembler::new(H264Depacketizer),
            decoder: H264Decoder::new()?,
        })
    }

    /// A video RTP packet arrived at `arrival_us`.
    pub fn on_packet(&mut self, packet: RtpPacket, arrival_us: i64) -> Received {
        let actions = self.assembler.insert(packet, arrival_us);
        self.decode(actions)
    }

    /// Time passes (every ~10 ms): late frames are given up on.
    pub fn poll(&mut self, now_us: i64) -> Received {
        let actions = self.assembler.poll(now_us);
        self.decode(actions)
    }

    fn decode(&mut self, actions: Vec<AssemblerAction>) -> Received {
        let mut received = Received::default();
        for action in actions {
            match action {
                AssemblerAction::Frame(frame) => {
                    match self.decoder.decode(&frame.data, MediaTime::now()) {
                        Ok(Some(picture)) => received.pictures.push(picture),
                        Ok(None) => {}
                        Err(_) => received.request_keyframe = true,
                    }
                }
                AssemblerAction::RequestKeyframe => received.request_keyframe = true,
                AssemblerAction::Nack(_) => {}
            }
        }
        received
    }
}
