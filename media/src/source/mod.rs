//! Synthetic sources: the camera and microphone of a machine that has none.

pub mod file;
pub mod pattern;
pub mod tone;
