//! Per-frame effects on outgoing video. So far the APNG gifts of §5.4.1;
//! mosaic, wallpaper and face filter follow with the effects issue.

pub mod animation;
pub mod gift;
