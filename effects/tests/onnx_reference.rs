//! Our inference against ONNX Runtime's own Python build (set-up's
//! `python-ref` venv): the same model file, the same input built from a real
//! photograph, every output value within 1e-4.

use std::path::PathBuf;
use std::process::Command;

use ndarray::Array4;
use nexmile_effects::onnx::Model;

/// Largest difference accepted between the two runtimes' outputs.
const TOLERANCE: f32 = 1e-4;

fn cache() -> PathBuf {
    std::env::var_os("NEXMILE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/nexmile"))
}

/// The 512×512 astronaut photograph sampled to `side` × `side`, RGB mapped
/// to [lo, hi].
fn input(side: usize, lo: f32, hi: f32) -> Array4<f32> {
    input_of(side, side, lo, hi)
}

/// The photograph's full width sampled to `width`, and as many of its
/// middle rows, at the same step, as make `height`.
fn input_of(width: usize, height: usize, lo: f32, hi: f32) -> Array4<f32> {
    let photo = image::open(cache().join("testdata/astronaut.png"))
        .unwrap()
        .into_rgb8();
    let step = 512 / width;
    let top = (512 - height * step) / 2;
    Array4::from_shape_fn((1, height, width, 3), |(_, y, x, c)| {
        let pixel = photo.get_pixel((x * step) as u32, (top + y * step) as u32);
        lo + f32::from(pixel.0[c]) / 255.0 * (hi - lo)
    })
}

/// Runs `model` in Python on `input` and returns its outputs, flattened.
fn python_outputs(model: &str, input: &Array4<f32>, outputs: &[&str]) -> Vec<Vec<f32>> {
    let dir = std::env::temp_dir().join(format!(
        "nexmile-onnx-ref-{}-{}",
        model.len(),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("input.f32"), bytes).unwrap();
    let model_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/models")
        .join(model);
    let script = r#"
import sys, numpy as np, onnxruntime as ort
model, folder, shape, names = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")], sys.argv[4:]
options = ort.SessionOptions(); options.intra_op_num_threads = 1
session = ort.InferenceSession(model, options)
x = np.fromfile(folder + "/input.f32", dtype="<f4").reshape(shape)
for i, out in enumerate(session.run(names, {session.get_inputs()[0].name: x})):
    np.asarray(out, dtype="<f4").tofile(f"{folder}/out{i}.f32")
"#;
    let shape = input
        .shape()
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let status = Command::new(cache().join("python-ref/bin/python"))
        .arg("-c")
        .arg(script)
        .arg(&model_path)
        .arg(&dir)
        .arg(shape)
        .args(outputs)
        .status()
        .expect("scripts/setup.sh prepares the Python reference");
    assert!(status.success());
    let result = (0..outputs.len())
        .map(|i| {
            std::fs::read(dir.join(format!("out{i}.f32")))
                .unwrap()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect();
    std::fs::remove_dir_all(dir).unwrap();
    result
}

fn worst(ours: &[Vec<f32>], theirs: &[Vec<f32>]) -> f32 {
    ours.iter()
        .zip(theirs)
        .flat_map(|(a, b)| {
            assert_eq!(a.len(), b.len());
            a.iter().zip(b).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn blazeface_outputs_match_onnx_runtime_python() {
    let x = input(128, -1.0, 1.0);
    let ours = Model::blazeface().unwrap().run(x.clone()).unwrap();
    let theirs = python_outputs(
        "blazeface_front_128.onnx",
        &x,
        &["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"],
    );
    let difference = worst(&ours, &theirs);
    println!(
        "BlazeFace: largest difference {difference:e} over {} values",
        ours.iter().map(Vec::len).sum::<usize>()
    );
    assert!(difference <= TOLERANCE);
    assert_eq!(ours[0].len(), 512);
    assert_eq!(ours[3].len(), 384 * 16);
}

#[test]
fn segmentation_mask_matches_onnx_runtime_python() {
    let x = input(256, 0.0, 1.0);
    let ours = Model::selfie_segmentation()
        .unwrap()
        .run(x.clone())
        .unwrap();
    let theirs = python_outputs("selfie_segmentation_256.onnx", &x, &["activation_10"]);
    let difference = worst(&ours, &theirs);
    println!(
        "selfie segmentation: largest difference {difference:e} over {} values",
        ours[0].len()
    );
    assert!(difference <= TOLERANCE);
    // The mask itself: the person (centre) in, the wall (top right) out.
    let at = |x: usize, y: usize| ours[0][y * 256 + x];
    assert!(
        at(110, 60) > 0.9 && at(240, 20) < 0.1,
        "{} {}",
        at(110, 60),
        at(240, 20)
    );
}

#[test]
fn landscape_segmentation_mask_matches_onnx_runtime_python() {
    let x = input_of(256, 144, 0.0, 1.0);
    let ours = Model::selfie_segmentation_landscape()
        .unwrap()
        .run(x.clone())
        .unwrap();
    let theirs = python_outputs(
        "selfie_segmentation_landscape_144x256.onnx",
        &x,
        &["segment_back"],
    );
    let difference = worst(&ours, &theirs);
    println!(
        "landscape selfie segmentation: largest difference {difference:e} over {} values",
        ours[0].len()
    );
    assert!(difference <= TOLERANCE);
    assert_eq!(ours[0].len(), 256 * 144);
    // The person's face (photo 220, 170) in, the wall (top right) out.
    let at = |x: usize, y: usize| ours[0][y * 256 + x];
    assert!(
        at(110, 29) > 0.9 && at(240, 10) < 0.1,
        "{} {}",
        at(110, 29),
        at(240, 10)
    );
}
