//! The mosaic and the gift blend against OpenCV/numpy written as a user
//! would (set-up's `python-ref` venv), pixel by pixel on the photograph.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use nexmile_effects::animation::Animation;
use nexmile_effects::gift::{GiftOverlay, Placement};
use nexmile_effects::mosaic::pixelate;
use nexmile_media::convert::convert;
use nexmile_media::frame::{MediaTime, PixelFormat, VideoFrame};

fn cache() -> PathBuf {
    std::env::var_os("NEXMILE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/nexmile"))
}

fn photo() -> VideoFrame {
    let image = image::open(cache().join("testdata/astronaut.png"))
        .unwrap()
        .into_rgba8();
    convert(
        &VideoFrame::rgba(512, 512, image.into_raw(), MediaTime(0)),
        PixelFormat::I420,
    )
    .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nexmile-opencv-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a Python snippet with `dir` as its argument; it reads and writes files there.
fn python(script: &str, dir: &Path) {
    let status = Command::new(cache().join("python-ref/bin/python"))
        .arg("-c")
        .arg(script)
        .arg(dir)
        .status()
        .expect("scripts/setup.sh prepares the Python reference");
    assert!(status.success());
}

fn luma(frame: &VideoFrame) -> Vec<u8> {
    (0..frame.height as usize)
        .flat_map(|y| frame.row(0, y).to_vec())
        .collect()
}

fn largest_difference(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
}

#[test]
fn mosaic_equals_opencv_area_downscale_and_nearest_upscale() {
    let original = photo();
    let mut ours = original.clone();
    pixelate(&mut ours, (160, 64, 352, 256), 16);
    let dir = scratch("mosaic");
    std::fs::write(dir.join("y.u8"), luma(&original)).unwrap();
    python(
        r#"
import sys, numpy as np, cv2
d = sys.argv[1]
y = np.fromfile(d + "/y.u8", dtype=np.uint8).reshape(512, 512)
roi = y[64:256, 160:352]
small = cv2.resize(roi, (12, 12), interpolation=cv2.INTER_AREA)
y[64:256, 160:352] = cv2.resize(small, (192, 192), interpolation=cv2.INTER_NEAREST)
y.tofile(d + "/out.u8")
"#,
        &dir,
    );
    let reference = std::fs::read(dir.join("out.u8")).unwrap();
    let difference = largest_difference(&luma(&ours), &reference);
    println!("mosaic vs OpenCV: largest luma difference {difference}");
    assert!(difference <= 1, "tolerance: 1 level of rounding");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gift_blend_equals_numpy_alpha_compositing() {
    // 100×60 sprite, colour and alpha both varying, drawn unscaled at (200, 300).
    let sprite = image::RgbaImage::from_fn(100, 60, |x, y| {
        image::Rgba([
            (x * 2) as u8,
            (y * 4) as u8,
            200,
            ((x + y) * 2).min(255) as u8,
        ])
    });
    let dir = scratch("gift");
    sprite.save(dir.join("sprite.png")).unwrap();
    let original = photo();
    let mut ours = original.clone();
    let bytes = std::fs::read(dir.join("sprite.png")).unwrap();
    let mut overlay = GiftOverlay::new(
        Arc::new(Animation::decode(&bytes).unwrap()),
        Placement {
            center_x: 250.0 / 512.0,
            center_y: 330.0 / 512.0,
            width: 100.0 / 512.0,
        },
        MediaTime(0),
    );
    assert!(overlay.composite(&mut ours, MediaTime(0)).unwrap());
    std::fs::write(dir.join("y.u8"), luma(&original)).unwrap();
    python(
        r#"
import sys, numpy as np, cv2
d = sys.argv[1]
y = np.fromfile(d + "/y.u8", dtype=np.uint8).reshape(512, 512).astype(np.float64)
rgba = cv2.cvtColor(cv2.imread(d + "/sprite.png", cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA).astype(np.int32)
r, g, b, a = rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3].astype(np.float64)
ys = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16).astype(np.float64)   # BT.601 limited range
area = y[300:360, 200:300]
y[300:360, 200:300] = np.round((ys * a + area * (255 - a)) / 255)
y.astype(np.uint8).tofile(d + "/out.u8")
"#,
        &dir,
    );
    let reference = std::fs::read(dir.join("out.u8")).unwrap();
    let difference = largest_difference(&luma(&ours), &reference);
    println!("gift blend vs numpy: largest luma difference {difference}");
    assert!(difference <= 1, "tolerance: 1 level of rounding");
    std::fs::remove_dir_all(dir).unwrap();
}
