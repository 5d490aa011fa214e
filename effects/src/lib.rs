//! Per-frame effects on outgoing video: APNG gifts (§5.4.1) and the mosaic
//! with face detection, and the wallpaper; the face filter follows with the
//! effects issue.

pub mod animation;
pub mod blend;
pub mod chain;
pub mod face;
pub mod face_filter;
pub mod gift;
pub mod mosaic;
pub mod onnx;
pub mod wallpaper;
pub mod working;
