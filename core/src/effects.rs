//! The effect-package manifest the server serves and the app syncs against:
//! every file of a site's effects with its size and SHA-256, so the app
//! fetches only what changed and checks what it fetched.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a file is, from its top folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// `wallpapers/`: background images.
    Wallpaper,
    /// `face-filters/<package>/`: face-filter packages, licensed per user (§3.2 ③).
    FaceFilter,
    /// `gifts/`: APNG gift animations.
    Gift,
    /// `models/`: a site's own ONNX models.
    Model,
}

impl EffectKind {
    /// The kind of a manifest path; `None` for files outside the known folders.
    pub fn of_path(path: &str) -> Option<Self> {
        let (folder, rest) = path.split_once('/')?;
        if rest.is_empty() {
            return None;
        }
        Some(match folder {
            "wallpapers" => Self::Wallpaper,
            "face-filters" => Self::FaceFilter,
            "gifts" => Self::Gift,
            "models" => Self::Model,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EffectFile {
    /// `/`-separated, relative to the site's effects.
    pub path: String,
    pub kind: EffectKind,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

impl EffectFile {
    /// A path that stays inside the folder it is joined to (see
    /// [`is_contained_path`]). The app checks this before writing.
    pub fn has_safe_path(&self) -> bool {
        is_contained_path(&self.path)
    }

    /// The SHA-256 is 64 lower-case hex digits, so it can be shown and compared.
    pub fn has_valid_sha256(&self) -> bool {
        self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// A `/`-separated path that stays inside whatever folder it is joined to, on
/// every platform: each part is 1–128 of `[A-Za-z0-9._-]` and does not start
/// with a dot. This allow-list refuses `..`, absolute paths, Windows drive
/// prefixes (`C:`), UNC and device names' separators (`\\`), alternate data
/// streams (`:`) and empty parts, which a deny-list easily misses.
pub fn is_contained_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 512
        && path.split('/').all(|part| {
            (1..=128).contains(&part.len())
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EffectManifest {
    pub site: String,
    /// Changes whenever any file changes: the first 16 hex digits of the
    /// SHA-256 over every `path sha256` line.
    pub version: String,
    pub files: Vec<EffectFile>,
}

impl EffectManifest {
    pub fn new(site: &str, mut files: Vec<EffectFile>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut hash = Sha256::new();
        for file in &files {
            hash.update(format!("{} {}\n", file.path, file.sha256));
        }
        Self {
            site: site.to_owned(),
            version: hex::encode(hash.finalize())[..16].to_owned(),
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, sha: &str) -> EffectFile {
        EffectFile {
            path: path.into(),
            kind: EffectKind::of_path(path).unwrap_or(EffectKind::Gift),
            size: 1,
            sha256: sha.into(),
        }
    }

    #[test]
    fn kinds_come_from_the_top_folder() {
        assert_eq!(
            EffectKind::of_path("wallpapers/a.png"),
            Some(EffectKind::Wallpaper)
        );
        assert_eq!(
            EffectKind::of_path("face-filters/glasses/manifest.json"),
            Some(EffectKind::FaceFilter)
        );
        assert_eq!(
            EffectKind::of_path("gifts/heart.png"),
            Some(EffectKind::Gift)
        );
        assert_eq!(EffectKind::of_path("README.md"), None);
        assert_eq!(EffectKind::of_path("wallpapers/"), None);
        assert_eq!(EffectKind::of_path("other/x"), None);
    }

    #[test]
    fn the_version_follows_the_content_not_the_order() {
        let a = EffectManifest::new("s", vec![file("gifts/a", "1"), file("gifts/b", "2")]);
        let b = EffectManifest::new("s", vec![file("gifts/b", "2"), file("gifts/a", "1")]);
        assert_eq!(a, b);
        let changed = EffectManifest::new("s", vec![file("gifts/a", "1"), file("gifts/b", "3")]);
        assert_ne!(a.version, changed.version);
    }

    #[test]
    fn unsafe_paths_are_recognised() {
        assert!(file("gifts/heart.png", "").has_safe_path());
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "gifts/../../x",
            "gifts//x",
            "gifts/.hidden",
            "a\\b",
            "C:/Users/x/AppData/Roaming/x.bat",
            "c:x.bat",
            "gifts/heart.png:stream",
            "//server/share/x",
            "",
            "gifts/",
            "gifts/ハート.png",
            "gifts/a b.png",
        ] {
            assert!(!file(bad, "").has_safe_path(), "{bad}");
        }
        assert!(is_contained_path("face-filters/cat_2/ears.v2.png"));
    }

    #[test]
    fn only_64_lower_hex_digits_are_a_sha256() {
        assert!(file("a", &"0a".repeat(32)).has_valid_sha256());
        for bad in [
            "",
            "0A".repeat(32).as_str(),
            &"é".repeat(32),
            &"0".repeat(63),
        ] {
            assert!(!file("a", bad).has_valid_sha256(), "{bad}");
        }
    }
}
