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

impl Manifest {
    /// A package's `manifest.json`, checked before any sprite is read: each
    /// file stays inside the package (a downloaded package must not reach
    /// outside its folder), each size and offset is a usable number.
    fn parse(text: &str, path: &Path) -> Result<Self, PackageError> {
        let manifest: Self = serde_json::from_str(text).map_err(|e| PackageError::Manifest {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        for entry in &manifest.sprites {
            if !nexmile_core::effects::is_contained_path(&entry.file) {
                return Err(PackageError::OutsidePackage(entry.file.clone()));
            }
            let problem = if !(entry.width > 0.0 && entry.width < 20.0) {
                Some(format!("width {} is not 0–20 eye distances", entry.width))
            } else if !(entry.offset.0.abs() < 20.0 && entry.offset.1.abs() < 20.0) {
                Some(format!(
                    "offset {:?} is not within 20 eye distances",
                    entry.offset
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(PackageError::Manifest {
                    path: path.to_owned(),
                    reason: format!("{}: {problem}", entry.file),
                });
            }
        }
        Ok(manifest)
    }
}

/// Checks the text of a package's `manifest.json` as [`FacePackage::load`]
/// does before it reads any sprite (the fuzzing target's entry).
pub fn check_manifest(text: &str) -> Result<(), PackageError> {
    Manifest::parse(text, Path::new("manifest.json")).map(|_| ())
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
    texture: Texture,
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
        let manifest = Manifest::parse(&text, &manifest_path)?;
        let sprites = manifest
            .sprites
            .into_iter()
            .map(|entry| {
                let path = dir.join(&entry.file);
                let image = image::open(&path)
                    .map_err(|e| PackageError::Sprite {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
                    .into_rgba8();
                Ok(Sprite {
                    texture: Texture::new(&image),
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

/// `sprite`'s pixels premultiplied by alpha, with a transparent border of
/// one pixel (so a sample needs no bounds checks), at full size and at each
/// halving: a sprite drawn small is sampled from the level just above its
/// size, so it does not shimmer as the face moves.
struct Texture {
    /// The full-size sprite's width and height.
    size: (u32, u32),
    levels: Vec<Level>,
}

struct Level {
    width: usize,
    height: usize,
    /// `(width + 2) × (height + 2)` premultiplied RGBA, bordered.
    texels: Vec<[u8; 4]>,
}

impl Level {
    fn stride(&self) -> usize {
        self.width + 2
    }

    fn bordered(width: usize, height: usize, texel: impl Fn(usize, usize) -> [u8; 4]) -> Self {
        let stride = width + 2;
        let mut texels = vec![[0; 4]; stride * (height + 2)];
        for y in 0..height {
            for x in 0..width {
                texels[(y + 1) * stride + x + 1] = texel(x, y);
            }
        }
        Self {
            width,
            height,
            texels,
        }
    }

    /// The 2×2 means of this level's premultiplied texels.
    fn halved(&self) -> Self {
        let stride = self.stride();
        let at = |x: usize, y: usize| self.texels[(y + 1) * stride + x + 1];
        Self::bordered(self.width / 2, self.height / 2, |x, y| {
            let quad = [
                at(2 * x, 2 * y),
                at(2 * x + 1, 2 * y),
                at(2 * x, 2 * y + 1),
                at(2 * x + 1, 2 * y + 1),
            ];
            std::array::from_fn(|c| {
                ((quad.iter().map(|t| u16::from(t[c])).sum::<u16>() + 2) / 4) as u8
            })
        })
    }
}

impl Texture {
    fn new(sprite: &RgbaImage) -> Self {
        let premultiply = |v: u8, a: u8| ((u16::from(v) * u16::from(a) + 127) / 255) as u8;
        let full = Level::bordered(sprite.width() as usize, sprite.height() as usize, |x, y| {
            let [r, g, b, a] = sprite.get_pixel(x as u32, y as u32).0;
            [premultiply(r, a), premultiply(g, a), premultiply(b, a), a]
        });
        let mut levels = vec![full];
        while let Some(last) = levels.last().filter(|l| l.width >= 4 && l.height >= 4) {
            let next = last.halved();
            levels.push(next);
        }
        Self {
            size: sprite.dimensions(),
            levels,
        }
    }

    /// The smallest level at least as wide as the sprite drawn at `scale`.
    fn level_for(&self, scale: f32) -> &Level {
        let drawn = self.size.0 as f32 * scale;
        self.levels
            .iter()
            .take_while(|l| l.width as f32 >= drawn)
            .last()
            .unwrap_or(&self.levels[0])
    }
}

/// The bounding box of a `size` sprite scaled by `scale` and turned by `angle`.
fn transformed_size(size: (u32, u32), scale: f32, angle: f32) -> (u32, u32) {
    let (sw, sh) = (size.0 as f32 * scale, size.1 as f32 * scale);
    let (sin, cos) = angle.sin_cos();
    // Less a hair, so float noise in sin/cos does not add a pixel.
    let w = (sw * cos.abs() + sh * sin.abs() - 1e-3).ceil().max(1.0) as u32;
    let h = (sw * sin.abs() + sh * cos.abs() - 1e-3).ceil().max(1.0) as u32;
    (w, h)
}

/// 255·2¹⁶/a rounded: un-premultiplies by a multiplication and a shift.
const UNPREMULTIPLY: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut a = 1;
    while a < 256 {
        table[a] = (255 * 65536 + a as u32 / 2) / a as u32;
        a += 1;
    }
    table
};

/// The sprite scaled by `scale` and turned by `angle` (radians) about its
/// centre, sampled bilinearly in 8-bit fixed point from the level that
/// suits the scale. Hand-written: an affine warp of a small sprite is all
/// this needs, and the crates that do it (imageproc) bring a large
/// dependency tree.
fn transform(texture: &Texture, scale: f32, angle: f32) -> RgbaImage {
    let (w, h) = transformed_size(texture.size, scale, angle);
    let (sin, cos) = angle.sin_cos();
    let level = texture.level_for(scale);
    // From output pixels to this level's texels.
    let step = level.width as f32 / (texture.size.0 as f32 * scale);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (scx, scy) = (level.width as f32 / 2.0, level.height as f32 / 2.0);
    let (lw, lh) = (level.width as i32, level.height as i32);
    let stride = level.stride();
    let mut out = RgbaImage::new(w, h);
    for (y, row) in out.rows_mut().enumerate() {
        // Inverse map of the row's first pixel centre; each pixel steps by (du, dv).
        let (dx, dy) = (0.5 - cx, y as f32 + 0.5 - cy);
        let u0 = (dx * cos + dy * sin) * step + scx - 0.5;
        let v0 = (-dx * sin + dy * cos) * step + scy - 0.5;
        let (du, dv) = (cos * step, -sin * step);
        for (x, pixel) in row.enumerate() {
            let (u, v) = (u0 + x as f32 * du, v0 + x as f32 * dv);
            let (x0, y0) = (u.floor(), v.floor());
            let (xi, yi) = (x0 as i32, y0 as i32);
            if xi < -1 || yi < -1 || xi >= lw || yi >= lh {
                continue;
            }
            let (fx, fy) = (((u - x0) * 256.0) as u32, ((v - y0) * 256.0) as u32);
            let at = (yi + 1) as usize * stride + (xi + 1) as usize;
            let (p00, p10) = (level.texels[at], level.texels[at + 1]);
            let (p01, p11) = (level.texels[at + stride], level.texels[at + stride + 1]);
            let mix: [u32; 4] = std::array::from_fn(|c| {
                let top = u32::from(p00[c]) * (256 - fx) + u32::from(p10[c]) * fx;
                let bottom = u32::from(p01[c]) * (256 - fx) + u32::from(p11[c]) * fx;
                (top * (256 - fy) + bottom * fy + 32768) >> 16
            });
            let alpha = mix[3] as usize;
            if alpha == 0 {
                continue;
            }
            let straight = |v: u32| ((v * UNPREMULTIPLY[alpha] + 32768) >> 16).min(255) as u8;
            pixel.0 = [
                straight(mix[0]),
                straight(mix[1]),
                straight(mix[2]),
                alpha as u8,
            ];
        }
    }
    out
}

/// Where one sprite lands for one face: its warp and its place. Held faces
/// (the frames the detector skips) and a still face give the same key, and
/// the sprite placed for it is drawn again without warping or converting.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Placement {
    sprite: usize,
    scale: f32,
    angle: f32,
    top_left: (i64, i64),
    picture: (u32, u32),
}

/// Decorates the faces found by the chain's detector.
pub struct FaceFilter {
    package: FacePackage,
    /// The sprites placed on the last frame, for the next one.
    placed: Vec<(Placement, Option<PlacedSprite>)>,
    /// Those of this frame, as they are made (kept for its buffer).
    placing: Vec<(Placement, Option<PlacedSprite>)>,
}

impl FaceFilter {
    pub fn new(package: FacePackage) -> Self {
        Self {
            package,
            placed: Vec::new(),
            placing: Vec::new(),
        }
    }

    pub fn package_name(&self) -> &str {
        &self.package.name
    }

    /// Puts the package's sprites on every one of `faces` (I420 pictures only).
    pub fn apply(&mut self, frame: &mut VideoFrame, faces: &[FaceBox]) {
        if frame.format != PixelFormat::I420 {
            return;
        }
        for face in faces {
            self.decorate(frame, face);
        }
        // What this frame did not use is dropped.
        std::mem::swap(&mut self.placed, &mut self.placing);
        self.placing.clear();
    }

    fn decorate(&mut self, frame: &mut VideoFrame, face: &FaceBox) {
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
        for (index, sprite) in self.package.sprites.iter().enumerate() {
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
            let scale = sprite.width * eye_distance / sprite.texture.size.0 as f32;
            let (drawn_w, drawn_h) = transformed_size(sprite.texture.size, scale, angle);
            let placement = Placement {
                sprite: index,
                scale,
                angle,
                top_left: (
                    (centre.0 - drawn_w as f32 / 2.0).round() as i64,
                    (centre.1 - drawn_h as f32 / 2.0).round() as i64,
                ),
                picture: (frame.width, frame.height),
            };
            let placed = match self.placed.iter().position(|(p, _)| *p == placement) {
                Some(held) => self.placed.swap_remove(held).1,
                None => PlacedSprite::new(
                    &transform(&sprite.texture, scale, angle),
                    placement.top_left,
                    placement.picture,
                ),
            };
            if let Some(sprite) = &placed {
                sprite.draw(frame);
            }
            self.placing.push((placement, placed));
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
        let bar = Texture::new(&bar);
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
    fn a_sprite_drawn_small_is_sampled_from_a_halved_level_and_does_not_alias() {
        // One-pixel black and white checks: drawn at a quarter, each output
        // pixel stands for 4×4 of them, grey; sampled from the full size it
        // would be black or white wherever the sample happened to fall.
        let checks = RgbaImage::from_fn(64, 64, |x, y| {
            let v = if (x + y) % 2 == 0 { 255 } else { 0 };
            image::Rgba([v, v, v, 255])
        });
        let texture = Texture::new(&checks);
        assert_eq!(
            texture.levels.iter().map(|l| l.width).collect::<Vec<_>>(),
            [64, 32, 16, 8, 4, 2]
        );
        let small = transform(&texture, 0.25, 0.1);
        let inner: Vec<u8> = small
            .pixels()
            .filter(|p| p.0[3] == 255)
            .map(|p| p.0[0])
            .collect();
        assert!(inner.len() > 100, "{}", inner.len());
        assert!(
            inner.iter().all(|v| v.abs_diff(128) <= 3),
            "{:?}",
            inner.iter().map(|v| v.abs_diff(128)).max()
        );
    }

    #[test]
    fn a_translucent_edge_keeps_its_colour_through_the_warp() {
        // Half-transparent red: premultiplied sampling must not darken it.
        let sprite = RgbaImage::from_pixel(16, 16, image::Rgba([200, 40, 20, 128]));
        let turned = transform(&Texture::new(&sprite), 1.5, 0.4);
        let (cx, cy) = (turned.width() / 2, turned.height() / 2);
        let [r, g, b, a] = turned.get_pixel(cx, cy).0;
        assert!(r.abs_diff(200) <= 2 && g.abs_diff(40) <= 2 && b.abs_diff(20) <= 2);
        assert!(a.abs_diff(128) <= 1, "{a}");
    }

    fn glasses_filter() -> FaceFilter {
        let glasses = RgbaImage::from_fn(40, 12, |x, _| image::Rgba([20, 20, 200, (x * 6) as u8]));
        FaceFilter::new(FacePackage {
            name: "めがね".into(),
            sprites: vec![Sprite {
                texture: Texture::new(&glasses),
                anchor: Anchor::Eyes,
                width: 2.0,
                offset: (0.0, 0.0),
            }],
        })
    }

    fn face_at(x: f32) -> FaceBox {
        FaceBox {
            left: x,
            top: 0.3,
            right: x + 0.3,
            bottom: 0.7,
            score: 0.9,
            keypoints: [
                (x + 0.1, 0.42),
                (x + 0.2, 0.44),
                (x + 0.15, 0.5),
                (x + 0.15, 0.6),
                (x, 0.45),
                (x + 0.3, 0.45),
            ],
        }
    }

    #[test]
    fn a_face_held_between_detections_is_drawn_again_from_its_placed_sprite() {
        let frame = || VideoFrame::black_i420(320, 240, nexmile_media::frame::MediaTime(0));
        let mut filter = glasses_filter();
        let mut first = frame();
        filter.apply(&mut first, &[face_at(0.2)]);
        assert_ne!(first.planes, frame().planes, "the glasses are drawn");
        // The tracker holds the face on the next frame: same key, same pixels.
        let mut second = frame();
        filter.apply(&mut second, &[face_at(0.2)]);
        assert_eq!(filter.placed.len(), 1);
        assert_eq!(second.planes, first.planes);
        // The face moved: placed anew, exactly as a new filter places it.
        let (mut moved, mut fresh) = (frame(), frame());
        filter.apply(&mut moved, &[face_at(0.4)]);
        glasses_filter().apply(&mut fresh, &[face_at(0.4)]);
        assert_eq!(moved.planes, fresh.planes);
        assert_eq!(filter.placed.len(), 1, "the old place is dropped");
        // Two faces: one placed sprite each.
        filter.apply(&mut frame(), &[face_at(0.0), face_at(0.5)]);
        assert_eq!(filter.placed.len(), 2);
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
