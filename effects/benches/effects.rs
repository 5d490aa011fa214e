//! `cargo bench -p nexmile-effects`: each effect alone and the whole chain on
//! a 720p picture with a face (the astronaut photograph, scaled into 1280×720),
//! one core, medians and p95 per frame. The whole chain is also timed from a
//! 720p RGBA camera frame, its one full-frame colour conversion (to the
//! encoder's I420) included.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexmile_core::wire::codes::CallOption;
use nexmile_effects::animation::Animation;
use nexmile_effects::chain::{EffectChain, EffectSettings, WallpaperSetting};
use nexmile_effects::face::FaceDetector;
use nexmile_effects::gift::{GiftOverlay, Placement};
use nexmile_effects::mosaic::{MosaicSettings, pixelate};
use nexmile_effects::onnx::Model;
use nexmile_effects::wallpaper::blur_background;
use nexmile_media::convert::{Scaler, convert};
use nexmile_media::frame::{MediaTime, PixelFormat, VideoFrame};

fn cache() -> PathBuf {
    std::env::var_os("NEXMILE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/nexmile")
        })
}

/// The photograph scaled to 720×720 and centred in a grey 1280×720 picture.
fn picture() -> VideoFrame {
    let photo = image::open(cache().join("testdata/astronaut.png"))
        .expect("run scripts/setup.sh")
        .into_rgba8();
    let rgba = VideoFrame::rgba(512, 512, photo.into_raw(), MediaTime(0));
    let square = Scaler::default()
        .scale(
            &convert(&rgba, PixelFormat::I420).expect("converts"),
            720,
            720,
        )
        .expect("scales");
    let mut frame =
        VideoFrame::filled(PixelFormat::I420, 1280, 720, &[128, 128, 128], MediaTime(0));
    for (plane, scale) in [(0, 1), (1, 2), (2, 2)] {
        let (row, stride) = (720 / scale, frame.planes[plane].stride);
        for y in 0..720 / scale {
            let at = y * stride + 280 / scale;
            frame.planes[plane].data[at..at + row]
                .copy_from_slice(&square.planes[plane].data[y * row..y * row + row]);
        }
    }
    frame
}

/// Median, p95 and mean: the wallpaper segments every other frame, so its
/// cost alternates and the mean is the figure to compare.
fn measure(runs: usize, mut f: impl FnMut(usize)) -> (Duration, Duration, Duration) {
    for i in 0..5 {
        f(i);
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    let mean = times.iter().sum::<Duration>() / runs as u32;
    times.sort();
    (times[runs / 2], times[runs * 95 / 100], mean)
}

fn glasses_package() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nexmile-bench-glasses-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let glasses = image::RgbaImage::from_fn(90, 30, |x, y| {
        let lens = |cx: f32| ((x as f32 - cx).powi(2) + (y as f32 - 15.0).powi(2)).sqrt() < 13.0;
        if lens(22.0) || lens(68.0) {
            image::Rgba([10, 20, 90, 230])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    glasses.save(dir.join("glasses.png")).expect("png");
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"name":"glasses","sprites":[{"file":"glasses.png","anchor":"eyes","width":2.0}]}"#,
    )
    .expect("manifest");
    dir
}

fn gift() -> GiftOverlay {
    let mut bytes = Vec::new();
    let disc = image::RgbaImage::from_fn(128, 128, |x, y| {
        let d = ((x as f32 - 64.0).powi(2) + (y as f32 - 64.0).powi(2)).sqrt();
        image::Rgba([
            255,
            200,
            0,
            if d < 60.0 { 255 - (d * 4.0) as u8 } else { 0 },
        ])
    });
    disc.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .expect("png");
    GiftOverlay::new(
        Arc::new(Animation::decode(&bytes).expect("decodes")),
        Placement {
            center_x: 0.8,
            center_y: 0.7,
            width: 0.2,
        },
        MediaTime(0),
    )
}

/// The same non-ML passes in OpenCV + numpy, one thread, as a user would
/// write them: medians in ms, by name.
fn opencv_medians() -> Vec<(String, f64)> {
    let script = r#"
import time, numpy as np, cv2
cv2.setNumThreads(1)
rng = np.random.default_rng(1)
def median(f, runs=60):
    for _ in range(5): f()
    t = []
    for _ in range(runs):
        s = time.perf_counter(); f(); t.append(time.perf_counter() - s)
    return sorted(t)[runs // 2] * 1000
y = rng.integers(0, 255, (720, 1280), dtype=np.uint8)
u = rng.integers(0, 255, (360, 640), dtype=np.uint8); v = u.copy()
i420 = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(1080, 1280)
sprite = rng.integers(0, 255, (256, 256, 4), dtype=np.uint8)
def mosaic():
    roi = y[200:456, 500:756]
    y[200:456, 500:756] = cv2.resize(cv2.resize(roi, (16, 16), interpolation=cv2.INTER_AREA), (256, 256), interpolation=cv2.INTER_NEAREST)
def blend():
    a = sprite[..., 3:4].astype(np.float32) / 255
    rgb = cv2.cvtColor(sprite, cv2.COLOR_RGBA2RGB).astype(np.float32)
    ys = 16 + (65.738 * rgb[..., 0] + 129.057 * rgb[..., 1] + 25.064 * rgb[..., 2]) / 256
    area = y[100:356, 100:356].astype(np.float32)
    y[100:356, 100:356] = (ys * a[..., 0] + area * (1 - a[..., 0])).astype(np.uint8)
def blur():
    for plane, (w, h) in ((y, (1280, 720)), (u, (640, 360)), (v, (640, 360))):
        cv2.resize(cv2.resize(plane, (w // 8, h // 8), interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR)
def to_rgba():
    cv2.cvtColor(i420, cv2.COLOR_YUV2RGBA_I420)
rgba = cv2.cvtColor(i420, cv2.COLOR_YUV2RGBA_I420)
def to_i420():
    cv2.cvtColor(rgba, cv2.COLOR_RGBA2YUV_I420)
for name, f in (("mosaic", mosaic), ("blend", blend), ("blur", blur), ("rgba", to_rgba), ("i420", to_i420)):
    print(name, median(f))
"#;
    let python = cache().join("python-ref/bin/python");
    let Ok(out) = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, ms) = line.split_once(' ')?;
            Some((name.to_owned(), ms.parse().ok()?))
        })
        .collect()
}

/// Our side of the same passes, in ms.
fn our_medians(frame: &VideoFrame) -> Vec<(&'static str, f64)> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut work = frame.clone();
    let mosaic = measure(400, |_| pixelate(&mut work, (500, 200, 756, 456), 16)).0;
    let mut overlay = gift();
    let blend = measure(60, |_| {
        let mut f = frame.clone();
        overlay.composite(&mut f, MediaTime(0)).expect("composites");
    })
    .0;
    let blur = measure(60, |_| {
        black_box(blur_background(frame).expect("blurs"));
    })
    .0;
    let rgba = measure(60, |_| {
        black_box(convert(frame, PixelFormat::Rgba).expect("converts"));
    })
    .0;
    let camera = convert(frame, PixelFormat::Rgba).expect("converts");
    let i420 = measure(60, |_| {
        black_box(convert(&camera, PixelFormat::I420).expect("converts"));
    })
    .0;
    vec![
        ("mosaic", ms(mosaic)),
        ("blend", ms(blend)),
        ("blur", ms(blur)),
        ("rgba", ms(rgba)),
        ("i420", ms(i420)),
    ]
}

fn main() {
    let frame = picture();
    // Hundreds of frames: each kind of chain frame gets half of them.
    let runs = 400;
    let mut rows: Vec<(&str, (Duration, Duration, Duration))> = Vec::new();

    let mut detector = FaceDetector::new().expect("ONNX Runtime");
    // Figures without a face would leave out the mosaic's and the filter's work.
    let faces = detector.detect(&frame).expect("detects");
    assert_eq!(
        faces.len(),
        1,
        "the bench picture shows one face: {faces:?}"
    );
    rows.push((
        "face detection (BlazeFace, one 720×720 tile → 128², as the chain looks at one per frame)",
        measure(runs, |i| {
            black_box(detector.detect_turn(&frame, i).expect("detects"));
        }),
    ));
    let mut landscape = Model::selfie_segmentation_landscape().expect("ONNX Runtime");
    rows.push((
        "segmentation inference alone (landscape 144×256)",
        measure(runs, |_| {
            let input = ndarray::Array4::<f32>::from_elem((1, 144, 256, 3), 0.5);
            black_box(landscape.run(input).expect("infers"));
        }),
    ));
    let alone = |settings: EffectSettings| {
        let (mut chain, refusals) = EffectChain::build(&settings, CallOption::all());
        assert!(refusals.is_empty(), "{refusals:?}");
        measure(runs, |i| {
            let mut f = frame.clone();
            chain.process(&mut f, MediaTime(i as u64 * 33_333));
        })
    };
    rows.push((
        "wallpaper, blur (segmentation + guided filter + blend)",
        alone(EffectSettings {
            wallpaper: Some(WallpaperSetting::Blur),
            ..EffectSettings::default()
        }),
    ));
    rows.push((
        "mosaic on faces (detection + tracking + pixelation)",
        alone(EffectSettings {
            mosaic: Some(MosaicSettings::default()),
            ..EffectSettings::default()
        }),
    ));
    rows.push((
        "face filter, glasses (detection + warp + blend)",
        alone(EffectSettings {
            face_filter: Some(glasses_package()),
            ..EffectSettings::default()
        }),
    ));
    let mut overlay = gift();
    rows.push((
        "one gift (scale cached + blend)",
        measure(runs, |i| {
            let mut f = frame.clone();
            overlay
                .composite(&mut f, MediaTime(i as u64 * 33_333))
                .expect("composites");
        }),
    ));
    let copy = measure(runs, |_| {
        black_box(frame.clone());
    });
    let (mut chain, _) = EffectChain::build(
        &EffectSettings {
            wallpaper: Some(WallpaperSetting::Blur),
            mosaic: Some(MosaicSettings::default()),
            face_filter: Some(glasses_package()),
        },
        CallOption::all(),
    );
    chain.add_gift(gift());
    // The chain's cost alternates (segmentation, then face detection): the
    // median of each kind of frame, so the worse one is stated, not hidden.
    let camera = convert(&frame, PixelFormat::Rgba).expect("converts");
    let mut by_kind: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let whole = measure(runs, |i| {
        let t = Instant::now();
        let mut f = convert(&camera, PixelFormat::I420).expect("converts");
        chain.process(&mut f, MediaTime(i as u64 * 33_333));
        by_kind[i % 2].push(t.elapsed());
    });
    let [even, odd] = by_kind.map(|mut times| {
        times.sort();
        times[times.len() / 2]
    });
    rows.push((
        "whole chain from 720p RGBA (→ I420 + wallpaper + face filter + mosaic + gift)",
        whole,
    ));
    println!(
        "nexmile-effects benchmarks, 720p I420, one thread (frame copy {:.3} ms included)",
        copy.0.as_secs_f64() * 1e3
    );
    println!("| measurement | median | p95 | mean |");
    println!("|---|---|---|---|");
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    for (what, (median, p95, mean)) in &rows {
        println!(
            "| {what} | {:.2} ms | {:.2} ms | {:.2} ms |",
            ms(median),
            ms(p95),
            ms(mean)
        );
    }
    println!(
        "whole chain sustains {:.0} fps on one core",
        1.0 / whole.2.as_secs_f64()
    );
    println!(
        "whole chain by frame kind (medians): {:.2} ms and {:.2} ms",
        ms(&even.min(odd)),
        ms(&even.max(odd))
    );
    let opencv = opencv_medians();
    println!("\nnon-ML passes beside OpenCV 4.12 + numpy (one thread, medians)");
    println!("| pass | ours | OpenCV | ours ÷ OpenCV |");
    println!("|---|---|---|---|");
    let names = [
        ("mosaic", "mosaic of a 256×256 face region, 16 px blocks"),
        (
            "blend",
            "gift: 256×256 RGBA sprite blended (ours incl. chroma)",
        ),
        ("blur", "blur background: ⅛ down and up, three planes"),
        ("rgba", "720p I420 → RGBA"),
        ("i420", "720p RGBA → I420"),
    ];
    for ((key, label), (_, ours)) in names.iter().zip(our_medians(&frame)) {
        match opencv.iter().find(|(n, _)| n == key).map(|(_, ms)| *ms) {
            Some(cv) => println!("| {label} | {ours:.3} ms | {cv:.3} ms | {:.2} |", ours / cv),
            None => println!("| {label} | {ours:.3} ms | — | — |"),
        }
    }
}
