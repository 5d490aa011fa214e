//! Face detection and the mosaic on a real photograph: the public-domain NASA
//! astronaut portrait that set-up fetches.

use std::path::PathBuf;

use nexmile_core::wire::codes::CallOption;
use nexmile_effects::chain::{EffectChain, EffectSettings};
use nexmile_effects::face::FaceDetector;
use nexmile_effects::face_filter::{FaceFilter, FacePackage};
use nexmile_effects::mosaic::{Mosaic, MosaicSettings};
use nexmile_effects::wallpaper::{Background, Wallpaper, blur_background};
use nexmile_media::convert::{Scaler, convert};
use nexmile_media::frame::{MediaTime, PixelFormat, VideoFrame};

fn photo() -> VideoFrame {
    let cache = std::env::var_os("NEXMILE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/nexmile"));
    let image = image::open(cache.join("testdata/astronaut.png"))
        .expect("scripts/setup.sh fetches the test photograph")
        .into_rgba8();
    let (w, h) = image.dimensions();
    let rgba = VideoFrame::rgba(w, h, image.into_raw(), MediaTime(0));
    convert(&rgba, PixelFormat::I420).unwrap()
}

/// The 512×512 photograph pasted at (`x`, `y`) into a grey picture.
fn pasted(width: u32, height: u32, x: usize, y: usize) -> VideoFrame {
    pasted_picture(&photo(), width, height, x, y)
}

/// `photo` pasted at (`x`, `y`) into a grey picture.
fn pasted_picture(photo: &VideoFrame, width: u32, height: u32, x: usize, y: usize) -> VideoFrame {
    let mut frame = VideoFrame::filled(
        PixelFormat::I420,
        width,
        height,
        &[128, 128, 128],
        MediaTime(0),
    );
    for (plane, scale) in [(0, 1), (1, 2), (2, 2)] {
        let (pw, stride) = (photo.planes[plane].stride, frame.planes[plane].stride);
        for row in 0..photo.height as usize / scale {
            let src = &photo.planes[plane].data[row * pw..row * pw + pw];
            let at = (y / scale + row) * stride + x / scale;
            frame.planes[plane].data[at..at + pw].copy_from_slice(src);
        }
    }
    frame
}

/// Mean absolute difference between horizontal neighbours: the picture's detail.
fn detail(frame: &VideoFrame, (x0, y0, x1, y1): (usize, usize, usize, usize)) -> f64 {
    let stride = frame.planes[0].stride;
    let diffs: Vec<f64> = (y0..y1)
        .flat_map(|y| (x0..x1 - 1).map(move |x| (x, y)))
        .map(|(x, y)| {
            f64::from(
                frame.planes[0].data[y * stride + x]
                    .abs_diff(frame.planes[0].data[y * stride + x + 1]),
            )
        })
        .collect();
    diffs.iter().sum::<f64>() / diffs.len() as f64
}

#[test]
fn finds_the_astronauts_face_and_maps_it_back_through_the_letterbox() {
    let mut detector = FaceDetector::new().expect("ONNX Runtime from set-up");
    let faces = detector.detect(&photo()).unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let face = faces[0];
    println!("face in the photograph: {face:?}");
    let (cx, cy) = (
        (face.left + face.right) / 2.0,
        (face.top + face.bottom) / 2.0,
    );
    assert!(
        (0.35..0.6).contains(&cx) && (0.1..0.45).contains(&cy),
        "{face:?}"
    );
    assert!(face.width() > 0.1 && face.width() < 0.4);
    // The eyes are inside the box, level, the right eye on the picture's left.
    let [right_eye, left_eye, nose, mouth, _, _] = face.keypoints;
    assert!(
        right_eye.0 < left_eye.0 && (right_eye.1 - left_eye.1).abs() < 0.03,
        "{face:?}"
    );
    assert!(nose.1 > right_eye.1 && mouth.1 > nose.1, "{face:?}");
    for (x, y) in [right_eye, left_eye, nose, mouth] {
        assert!(
            x > face.left && x < face.right && y > face.top && y < face.bottom,
            "{face:?}"
        );
    }

    // The same face in a wider picture (letterboxed into the model's square)
    // lands at the same pixels. The short-range model wants faces of at least
    // ~20 of its 128 pixels, as a caller's face in a call is.
    let wide = detector.detect(&pasted(576, 512, 64, 0)).unwrap();
    assert_eq!(wide.len(), 1, "{wide:?}");
    let px = |f: f32, side: f32, offset: f32| f * side - offset;
    let shifted_cx = px((wide[0].left + wide[0].right) / 2.0, 576.0, 64.0) / 512.0;
    let shifted_cy = px((wide[0].top + wide[0].bottom) / 2.0, 512.0, 0.0) / 512.0;
    assert!(
        (shifted_cx - cx).abs() < 0.05 && (shifted_cy - cy).abs() < 0.05,
        "{wide:?}"
    );
}

#[test]
fn a_face_a_quarter_of_a_wide_picture_high_is_found_wherever_it_sits() {
    // The photograph at 720×720 (the face about a quarter of the height) at
    // the left, middle and right of a 1280×720 picture: letterboxed whole
    // into the model's 128×128 the face would be 18 pixels high and missed.
    let large = Scaler::default().scale(&photo(), 720, 720).unwrap();
    let mut detector = FaceDetector::new().unwrap();
    for x in [0, 280, 560] {
        let frame = pasted_picture(&large, 1280, 720, x, 0);
        let faces = detector.detect(&frame).unwrap();
        assert_eq!(faces.len(), 1, "photograph at x = {x}: {faces:?}");
        let centre = (faces[0].left + faces[0].right) / 2.0 * 1280.0;
        let expected = x as f32 + 0.47 * 720.0;
        assert!(
            (centre - expected).abs() < 40.0,
            "x = {x}: {centre} vs {expected}"
        );
        // Looked at one tile per call, as the chain does, one of the two
        // turns finds it, at the same place.
        let turns: Vec<_> = (0..2)
            .flat_map(|turn| detector.detect_turn(&frame, turn).unwrap())
            .collect();
        assert!(
            !turns.is_empty() && turns.iter().all(|f| f.iou(&faces[0]) > 0.5),
            "{turns:?}"
        );
    }
}

#[test]
fn the_chain_pixelates_a_face_in_a_wide_picture() {
    let large = Scaler::default().scale(&photo(), 720, 720).unwrap();
    let original = pasted_picture(&large, 1280, 720, 280, 0);
    let settings = EffectSettings {
        mosaic: Some(MosaicSettings::default()),
        ..EffectSettings::default()
    };
    let (mut chain, refusals) = EffectChain::build(&settings, CallOption::all());
    assert!(refusals.is_empty());
    let mut frame = original.clone();
    for i in 0..4 {
        frame = original.clone();
        assert!(chain.process(&mut frame, MediaTime(i * 33_333)).is_empty());
    }
    // The face (about x 530–700, y 90–280 here) is blocked out: inside
    // its 16-pixel blocks, neighbours are equal.
    let face = (540, 110, 680, 240);
    let equal_neighbours = |frame: &VideoFrame| {
        let stride = frame.planes[0].stride;
        let pairs: Vec<bool> = (face.1..face.3)
            .flat_map(|y| (face.0..face.2 - 1).map(move |x| y * stride + x))
            .map(|at| frame.planes[0].data[at] == frame.planes[0].data[at + 1])
            .collect();
        pairs.iter().filter(|e| **e).count() as f64 / pairs.len() as f64
    };
    let (before, after) = (equal_neighbours(&original), equal_neighbours(&frame));
    assert!(
        before < 0.5 && after > 0.9,
        "{before} before, {after} after"
    );
}

#[test]
fn the_mosaic_covers_the_face_and_nothing_far_from_it() {
    let original = photo();
    let mut frame = original.clone();
    let faces = FaceDetector::new().unwrap().detect(&original).unwrap();
    assert_eq!(faces.len(), 1);
    Mosaic::new(MosaicSettings::default())
        .apply(&mut frame, &faces)
        .unwrap();
    let face = faces[0];
    let rect = (
        (face.left * 512.0) as usize,
        (face.top * 512.0) as usize,
        (face.right * 512.0) as usize,
        (face.bottom * 512.0) as usize,
    );
    let (before, after) = (detail(&original, rect), detail(&frame, rect));
    println!("detail over the face: {before:.2} before, {after:.2} after");
    // What remains is the steps between 16-pixel blocks.
    assert!(after < before / 3.0, "the face is blocked out");
    let corner = (0, 400, 100, 512);
    assert_eq!(
        detail(&original, corner),
        detail(&frame, corner),
        "the corner is untouched"
    );
}

fn luma(frame: &VideoFrame, x: usize, y: usize) -> u8 {
    frame.planes[0].data[y * frame.planes[0].stride + x]
}

#[test]
fn the_wallpaper_replaces_the_background_and_keeps_the_person() {
    let original = photo();
    let mut wallpaper = Wallpaper::new(Background::Colour([0, 255, 0])).unwrap();
    let mut frame = original.clone();
    // Two frames: the second runs with the temporally smoothed mask.
    wallpaper.apply(&mut frame).unwrap();
    let mut frame = original.clone();
    wallpaper.apply(&mut frame).unwrap();
    // Background (the wall beside the shuttle, the flag) turns green (Y 144)…
    for (x, y) in [(330, 60), (20, 20), (480, 200)] {
        assert!(
            luma(&frame, x, y).abs_diff(144) <= 8,
            "({x}, {y}) is {}",
            luma(&frame, x, y)
        );
    }
    // …the face and the suit stay.
    for (x, y) in [(225, 130), (250, 420), (150, 330)] {
        assert!(
            luma(&frame, x, y).abs_diff(luma(&original, x, y)) <= 8,
            "({x}, {y}) changed"
        );
    }

    let mut blurred = original.clone();
    wallpaper.set_background(Background::Blur);
    wallpaper.apply(&mut blurred).unwrap();
    assert_ne!(blurred, original);
    let picture = VideoFrame::filled(PixelFormat::I420, 64, 36, &[40, 128, 128], MediaTime(0));
    wallpaper.set_background(Background::Picture(picture));
    let mut replaced = original.clone();
    wallpaper.apply(&mut replaced).unwrap();
    assert!(luma(&replaced, 20, 20).abs_diff(40) <= 8);
    let mut rgba = convert(&original, PixelFormat::Rgba).unwrap();
    assert!(wallpaper.apply(&mut rgba).is_err());
}

/// How much of the person a blended pixel keeps: 1 the camera's, 0 the colour's.
fn kept(
    result: &VideoFrame,
    original: &VideoFrame,
    colour_luma: u8,
    (x, y): (usize, usize),
) -> f64 {
    let (r, o) = (luma(result, x, y), luma(original, x, y));
    (f64::from(r) - f64::from(colour_luma)) / (f64::from(o) - f64::from(colour_luma))
}

#[test]
fn a_segmenting_frame_blends_its_own_mask_and_the_next_reuses_it() {
    // 16:9, so the landscape model; the person jumps from left to right.
    let (left, right) = (pasted(1280, 720, 0, 104), pasted(1280, 720, 768, 104));
    let (left_face, right_face) = ((225, 234), (993, 234));
    let blue = 41; // the luma of pure blue
    let mut wallpaper = Wallpaper::new(Background::Colour([0, 0, 255])).unwrap();
    assert!(wallpaper.segments_next());
    for _ in 0..2 {
        wallpaper.apply(&mut left.clone()).unwrap();
    }
    // Frame 3 segments (15 fps at 30) and blends its own mask: the face on
    // the right is kept, the place the face left turns blue. Temporal
    // smoothing carries a share of the old mask, so "mostly", not "all".
    assert!(wallpaper.segments_next());
    let mut third = right.clone();
    wallpaper.apply(&mut third).unwrap();
    assert!(kept(&third, &right, blue, right_face) > 0.5);
    assert!(kept(&third, &left, blue, left_face) < 0.5);
    // Frame 4 reuses frame 3's mask (one frame old), without inferring.
    assert!(!wallpaper.segments_next());
    let mut fourth = right.clone();
    wallpaper.apply(&mut fourth).unwrap();
    assert_eq!(fourth, third);
    assert!(wallpaper.segments_next());
}

/// The mean luma difference of `a` and `b` over the 40×40 around `(x, y)`.
fn patch_difference(a: &VideoFrame, b: &VideoFrame, (x, y): (usize, usize)) -> f64 {
    let mut total = 0.0;
    for py in y - 20..y + 20 {
        for px in x - 20..x + 20 {
            total += f64::from(luma(a, px, py).abs_diff(luma(b, px, py)));
        }
    }
    total / 1600.0
}

#[test]
fn a_segmenting_frame_shows_the_blur_made_on_the_frame_before() {
    // The person jumps from left to right on frame 3, a segmenting frame:
    // where the face was, its background is still frame 2's blur (the
    // blurred face); on frame 4 it is that frame's own (no face there).
    let (left, right) = (pasted(1280, 720, 0, 104), pasted(1280, 720, 768, 104));
    let left_face = (225, 234);
    let (blur_left, blur_right) = (
        blur_background(&left).unwrap(),
        blur_background(&right).unwrap(),
    );
    let mut wallpaper = Wallpaper::new(Background::Blur).unwrap();
    for _ in 0..2 {
        wallpaper.apply(&mut left.clone()).unwrap();
    }
    assert!(wallpaper.segments_next());
    // How far the next frame's background where the face was lies from
    // each blur: (to the left picture's, to the right picture's).
    let mut next_frame = || {
        let mut frame = right.clone();
        wallpaper.apply(&mut frame).unwrap();
        (
            patch_difference(&frame, &blur_left, left_face),
            patch_difference(&frame, &blur_right, left_face),
        )
    };
    let (to_left, to_right) = next_frame();
    assert!(to_left < to_right, "frame 3: {to_left:.1} vs {to_right:.1}");
    let (to_left, to_right) = next_frame();
    assert!(to_right < to_left, "frame 4: {to_left:.1} vs {to_right:.1}");
}

#[test]
fn the_face_filter_puts_glasses_over_both_eyes() {
    let dir = std::env::temp_dir().join(format!("nexmile-glasses-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Glasses: two dark-blue lenses on a transparent sprite, 3:1.
    let glasses = image::RgbaImage::from_fn(90, 30, |x, y| {
        let lens = |cx: f32| ((x as f32 - cx).powi(2) + (y as f32 - 15.0).powi(2)).sqrt() < 13.0;
        if lens(22.0) || lens(68.0) {
            image::Rgba([10, 20, 90, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    glasses.save(dir.join("glasses.png")).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"name":"めがね","sprites":[{"file":"glasses.png","anchor":"eyes","width":2.0}]}"#,
    )
    .unwrap();
    let package = FacePackage::load(&dir).unwrap();
    assert_eq!(package.name, "めがね");
    let original = photo();
    let face = FaceDetector::new().unwrap().detect(&original).unwrap()[0];
    let mut frame = original.clone();
    FaceFilter::new(package).apply(&mut frame, &[face]);
    // Dark blue (Y ≈ 29) over each eye; the mouth untouched.
    for k in [0, 1] {
        let (x, y) = (
            (face.keypoints[k].0 * 512.0) as usize,
            (face.keypoints[k].1 * 512.0) as usize,
        );
        assert!(
            luma(&frame, x, y) < 45,
            "eye {k} at ({x}, {y}) is {}",
            luma(&frame, x, y)
        );
    }
    let (mx, my) = (
        (face.keypoints[3].0 * 512.0) as usize,
        (face.keypoints[3].1 * 512.0) as usize,
    );
    assert_eq!(luma(&frame, mx, my), luma(&original, mx, my));
    std::fs::remove_dir_all(dir).unwrap();
}
