//! A server's effect manifest as the app reads it, and the path rule the app
//! writes files by: a path it accepts never leaves the folder it is joined to.
use std::path::{Component, Path};

use nexmile_core::effects::{EffectManifest, is_contained_path};

fn stays_inside(path: &str) {
    let base = Path::new("/effects");
    let joined = base.join(path);
    assert!(joined.starts_with(base), "{path:?} left the folder");
    assert!(
        joined
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
        "{path:?} has a special part"
    );
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data)
            && is_contained_path(text)
        {
            stays_inside(text);
        }
        if let Ok(manifest) = serde_json::from_slice::<EffectManifest>(data) {
            for file in &manifest.files {
                if file.has_safe_path() {
                    stays_inside(&file.path);
                }
                if file.has_valid_sha256() {
                    let _ = &file.sha256[..12];
                }
            }
        }
    });
}
