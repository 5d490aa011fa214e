//! Nexmile's media engine: everything between a camera/microphone and an RTP
//! packet, and back to a picture and sound.

pub mod audio_processing;
pub mod capture;
pub mod codec;
pub mod convert;
pub mod frame;
pub mod h264_rtp;
pub mod jitter;
pub mod ladder;
#[cfg(feature = "transport")]
pub mod loopback;
pub mod playout;
pub mod quality;
pub mod reassembly;
pub mod receiver;
pub mod resample;
pub mod sequence;
pub mod smoothness;
pub mod sound_out;
pub mod source;
pub mod speaker;
#[cfg(feature = "transport")]
pub mod transport;
