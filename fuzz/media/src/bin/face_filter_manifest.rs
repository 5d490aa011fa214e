//! A downloaded face-filter package's manifest.json, checked before any of
//! its sprites is read.
use nexmile_effects::face_filter::check_manifest;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = check_manifest(text);
        }
    });
}
