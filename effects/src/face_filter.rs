//! Face filter (フェースフィルター): sprites from an effect package — glasses,
//! ears, masks — placed on every detected face, scaled to the distance
//! between the eyes and turned with the line through them.
//!
//! A package is a folder with `manifest.json` and PNG sprites:
//!
//! ```json
//! { "name": "ねこ耳", "sprites": [
//!     { "file": "ears.png", "anchor": "forehead", "width": 3.2, "offset": [0.0, -0.6] } ] }
//! ```
//!
//! `width` is in eye distances; `offset` moves the sprite's centre from its
//! anchor, in eye distances, along the face's own axes (x toward the left
//! eye, y toward the mouth).

use std::path::{Path, PathBuf};

use image::RgbaImage;
use nexmile_media::frame::{PixelFormat, VideoFrame};
use serde::Deserialize;

use crate::face::{FaceBox, keypoint};
use crate::gift::PlacedSprite;

/// Where on the face a sprite is centred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    /// Between the eyes (glasses).
    Eyes,
    /// The nose tip.
    Nose,
    /// The mouth.
    Mouth,
    /// One eye distance above the eyes (ears, hats).
    Forehead,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct SpriteEntry {
    file: String,
    anchor: Anchor,
    width: f32,
    #[serde(default)]
    offset: (f32, f32),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Manifest {
    name: String,
    sprites: Vec<SpriteEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} is not a valid effect manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("the sprite {path} is not a usable PNG: {reason}")]
    Sprite { path: PathBuf, reason: String },
    #[error("the sprite {0} lies outside its package")]
    OutsidePackage(String),
}

struct Sprite {
    image: RgbaImage,
    anchor: Anchor,
    width: f32,
    offset: (f32, f32),
}

/// A loaded face-filter package.
pub struct FacePackage {
    pub name: String,
    sprites: Vec<Sprite>,
}

impl FacePackage {
    pub fn load(dir: &Path) -> Result<Self, PackageError> {
        let manifest_path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| PackageError::Read {
            path: manifest_path.clone(),
            reason: e.to_string(),
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| PackageError::Manifest {
                path: manifest_path.clone(),
                reason: e.to_string(),
            })?;
        let sprites = manifest
            .sprites
            .into_iter()
            .map(|entry| {
                // A downloaded package must not reach outside its folder.
                if entry.file.contains("..") || Path::new(&entry.file).is_absolute() {
                    return Err(PackageError::OutsidePackage(entry.file));
                }
                let path = dir.join(&entry.file);
                let image = image::open(&path)
                    .map_err(|e| PackageError::Sprite {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
                    .into_rgba8();
                if !(entry.width > 0.0 && entry.width < 20.0) {
                    return Err(PackageError::Manifest {
                        path: manifest_path.clone(),
                        reason: format!(
                            "{}: width {} is not 0–20 eye distances",
                            entry.file, entry.width
                        ),
                    });
                }
                Ok(Sprite {
                    image,
                    anchor: entry.anchor,
                    width: entry.width,
                    offset: entry.offset,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: manifest.name,
            sprites,
        })
    }
}

/// `sprite` scaled by `scale` and turned by `angle` (radians) about its
/// centre, sampled bilinearly. Hand-written: an affine warp of a small
/// sprite per face per frame is all this needs, and the crates that do it
/// (imageproc) bring a large dependency tree.
fn transform(sprite: &RgbaImage, scale: f32, angle: f32) -> RgbaImage {
    let (sw, sh) = (
        sprite.width() as f32 * scale,
        sprite.height() as f32 * scale,
    );
    let (sin, cos) = angle.sin_cos();
    // Less a hair, so float noise in sin/cos does not add a pixel.
    let w = (sw * cos.abs() + sh * sin.abs() - 1e-3).ceil().max(1.0) as u32;
    let h = (sw * sin.abs() + sh * cos.abs() - 1e-3).ceil().max(1.0) as u32;
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (scx, scy) = (sprite.width() as f32 / 2.0, sprite.height() as f32 / 2.0);
    let sample = |x: f32, y: f32| -> [f32; 4] {
        let (x0, y0) = (x.floor(), y.floor());
        let (tx, ty) = (x - x0, y - y0);
        let px = |xi: f32, yi: f32| -> [f32; 4] {
            if xi < 0.0 || yi < 0.0 || xi >= sprite.width() as f32 || yi >= sprite.height() as f32 {
                return [0.0; 4];
            }
            let [r, g, b, a] = sprite.get_pixel(xi as u32, yi as u32).0;
            // Premultiplied, so transparent texels do not darken the edges.
            let a = f32::from(a) / 255.0;
            [f32::from(r) * a, f32::from(g) * a, f32::from(b) * a, a]
        };
        let (p00, p10, p01, p11) = (
            px(x0, y0),
            px(x0 + 1.0, y0),
            px(x0, y0 + 1.0),
            px(x0 + 1.0, y0 + 1.0),
        );
        std::array::from_fn(|c| {
            (p00[c] * (1.0 - tx) + p10[c] * tx) * (1.0 - ty)
                + (p01[c] * (1.0 - tx) + p11[c] * tx) * ty
        })
    };
    RgbaImage::from_fn(w, h, |x, y| {
        // Inverse map: output pixel centre → sprite coordinates.
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        let (ux, uy) = (
            (dx * cos + dy * sin) / scale,
            (-dx * sin + dy * cos) / scale,
        );
        let [r, g, b, a] = sample(ux + scx - 0.5, uy + scy - 0.5);
        if a <= 0.0 {
            return image::Rgba([0, 0, 0, 0]);
        }
        image::Rgba([
            (r / a).round().clamp(0.0, 255.0) as u8,
            (g / a).round().clamp(0.0, 255.0) as u8,
            (b / a).round().clamp(0.0, 255.0) as u8,
            (a * 255.0).round() as u8,
        ])
    })
}

/// Decorates the faces found by the chain's detector.
pub struct FaceFilter {
    package: FacePackage,
}

impl FaceFilter {
    pub fn new(package: FacePackage) -> Self {
        Self { package }
    }

    pub fn package_name(&self) -> &str {
        &self.package.name
    }

    /// Puts the package's sprites on every one of `faces` (I420 pictures only).
    pub fn apply(&self, frame: &mut VideoFrame, faces: &[FaceBox]) {
        if frame.format != PixelFormat::I420 {
            return;
        }
        for face in faces {
            self.decorate(frame, face);
        }
    }

    fn decorate(&self, frame: &mut VideoFrame, face: &FaceBox) {
        let (w, h) = (frame.width as f32, frame.height as f32);
        let point = |k: usize| (face.keypoints[k].0 * w, face.keypoints[k].1 * h);
        let (right, left) = (point(keypoint::RIGHT_EYE), point(keypoint::LEFT_EYE));
        let (ex, ey) = (left.0 - right.0, left.1 - right.1);
        let eye_distance = (ex * ex + ey * ey).sqrt().max(2.0);
        let angle = ey.atan2(ex);
        // The face's axes: x toward the left eye, y toward the mouth.
        let (ax, ay) = (ex / eye_distance, ey / eye_distance);
        let (bx, by) = (-ay, ax);
        let between_eyes = ((right.0 + left.0) / 2.0, (right.1 + left.1) / 2.0);
        for sprite in &self.package.sprites {
            let base = match sprite.anchor {
                Anchor::Eyes => between_eyes,
                Anchor::Nose => point(keypoint::NOSE),
                Anchor::Mouth => point(keypoint::MOUTH),
                Anchor::Forehead => (
                    between_eyes.0 - bx * eye_distance,
                    between_eyes.1 - by * eye_distance,
                ),
            };
            let (ox, oy) = (
                sprite.offset.0 * eye_distance,
                sprite.offset.1 * eye_distance,
            );
            let centre = (base.0 + ax * ox + bx * oy, base.1 + ay * ox + by * oy);
            let scale = sprite.width * eye_distance / sprite.image.width() as f32;
            let placed = transform(&sprite.image, scale, angle);
            let left_px = (centre.0 - placed.width() as f32 / 2.0).round() as i64;
            let top_px = (centre.1 - placed.height() as f32 / 2.0).round() as i64;
            if let Some(sprite) =
                PlacedSprite::new(&placed, (left_px, top_px), (frame.width, frame.height))
            {
                sprite.draw(frame);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_scales_and_turns_about_the_centre() {
        let mut bar = RgbaImage::from_pixel(20, 4, image::Rgba([255, 0, 0, 255]));
        bar.put_pixel(0, 0, image::Rgba([0, 0, 255, 255]));
        let doubled = transform(&bar, 2.0, 0.0);
        assert_eq!(doubled.dimensions(), (40, 8));
        let turned = transform(&bar, 1.0, std::f32::consts::FRAC_PI_2);
        assert_eq!(
            turned.dimensions(),
            (4, 20),
            "a quarter turn stands the bar up"
        );
        assert_eq!(turned.get_pixel(2, 10).0[3], 255, "opaque at the centre");
        let tilted = transform(&bar, 1.0, 0.3);
        assert_eq!(
            tilted.get_pixel(0, 0).0[3],
            0,
            "corners of the tilted box are empty"
        );
    }

    #[test]
    fn packages_refuse_bad_manifests_and_escaping_paths() {
        let dir = std::env::temp_dir().join(format!("nexmile-face-package-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            FacePackage::load(&dir),
            Err(PackageError::Read { .. })
        ));
        std::fs::write(dir.join("manifest.json"), "{ not json").unwrap();
        assert!(matches!(
            FacePackage::load(&dir),
            Err(PackageError::Manifest { .. })
        ));
        std::fs::write(
            dir.join("manifest.json"),
            r#"{"name":"x","sprites":[{"file":"../../etc/passwd","anchor":"eyes","width":2}]}"#,
        )
        .unwrap();
        assert!(matches!(
            FacePackage::load(&dir),
            Err(PackageError::OutsidePackage(_))
        ));
        std::fs::write(
            dir.join("manifest.json"),
            r#"{"name":"x","sprites":[{"file":"a.png","anchor":"eyes","width":2}]}"#,
        )
        .unwrap();
        std::fs::write(dir.join("a.png"), b"not a png").unwrap();
        let err = FacePackage::load(&dir).err().unwrap();
        assert!(
            matches!(err, PackageError::Sprite { .. }) && err.to_string().contains("a.png"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
