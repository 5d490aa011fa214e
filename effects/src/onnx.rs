//! ONNX Runtime, loaded once per process from the library set-up fetched
//! (`$NEXMILE_CACHE/onnxruntime-1.32.0/`, or `$NEXMILE_ONNXRUNTIME`). A
//! missing library is an error the UI can show, never a panic.

use std::path::PathBuf;
use std::sync::OnceLock;

use ndarray::Array4;
use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnnxError {
    #[error("ONNX Runtime is not available ({0}); run scripts/setup.sh")]
    Runtime(String),
    #[error("the model could not be loaded: {0}")]
    Model(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

pub const ORT_VERSION: &str = "1.32.0";

/// Where set-up puts the runtime.
pub fn runtime_path() -> PathBuf {
    if let Some(path) = std::env::var_os("NEXMILE_ONNXRUNTIME") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("NEXMILE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/nexmile")))
        .unwrap_or_else(|| PathBuf::from(".cache/nexmile"));
    cache
        .join(format!("onnxruntime-{ORT_VERSION}"))
        .join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

fn environment() -> Result<&'static Environment, OnnxError> {
    static ENVIRONMENT: OnceLock<Result<Environment, OnnxError>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let path = runtime_path();
            if !path.exists() {
                return Err(OnnxError::Runtime(format!("{} is missing", path.display())));
            }
            ort::init_from(&path)
                .map_err(|e| OnnxError::Runtime(e.to_string()))?
                .with_name("nexmile")
                .build()
                .map_err(|e| OnnxError::Runtime(e.to_string()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One of the models in `assets/models/`, compiled in, with the names of
/// its input and of the outputs the effects read.
pub struct Model {
    session: Session,
    input_name: &'static str,
    outputs: &'static [&'static str],
    /// The input, NHWC, held between runs: filled in place each frame, so
    /// no 100–400 KB buffer is allocated, faulted in and handed over anew.
    input: Tensor<f32>,
}

impl Model {
    /// BlazeFace short range: scores of the 16×16×2 and 8×8×6 anchors, then their boxes.
    pub fn blazeface() -> Result<Self, OnnxError> {
        Self::load(
            include_bytes!("../../assets/models/blazeface_front_128.onnx"),
            ("input:0", [128, 128]),
            &["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"],
        )
    }

    /// MediaPipe selfie segmentation: the person probability.
    pub fn selfie_segmentation() -> Result<Self, OnnxError> {
        Self::load(
            include_bytes!("../../assets/models/selfie_segmentation_256.onnx"),
            ("input_1", [256, 256]),
            &["activation_10"],
        )
    }

    /// MediaPipe selfie segmentation, landscape (144×256): the same mask
    /// for 16:9 pictures without the letterbox's wasted rows.
    pub fn selfie_segmentation_landscape() -> Result<Self, OnnxError> {
        Self::load(
            include_bytes!("../../assets/models/selfie_segmentation_landscape_144x256.onnx"),
            ("input_1", [144, 256]),
            &["segment_back"],
        )
    }

    /// A session on one thread: effects run per frame on the capture
    /// thread, where more threads would only compete with the encoder.
    /// `input` is the input's name and its height × width (RGB, batch 1).
    fn load(
        bytes: &[u8],
        (input_name, [height, width]): (&'static str, [usize; 2]),
        outputs: &'static [&'static str],
    ) -> Result<Self, OnnxError> {
        let model = |e: ort::Error| OnnxError::Model(e.to_string());
        let session = Session::builder(environment()?)
            .map_err(model)?
            .with_intra_threads(1)
            .map_err(|e| OnnxError::Model(e.to_string()))?
            .commit_from_memory(bytes)
            .map_err(model)?;
        let input = Tensor::from_array(([1, height, width, 3], vec![0.0; height * width * 3]))
            .map_err(model)?;
        Ok(Self {
            session,
            input_name,
            outputs,
            input,
        })
    }

    /// The held input (NHWC, row by row, RGB interleaved), to fill before [`Self::infer`].
    pub fn input_mut(&mut self) -> &mut [f32] {
        self.input.extract_tensor_mut().1
    }

    /// Runs the model on the held input; the outputs, flattened, in the
    /// order of the constructor's doc.
    pub fn infer(&mut self) -> Result<Vec<Vec<f32>>, OnnxError> {
        let inference = |e: ort::Error| OnnxError::Inference(e.to_string());
        let outputs = self
            .session
            .run(ort::inputs![self.input_name => &self.input])
            .map_err(inference)?;
        self.outputs
            .iter()
            .map(|name| {
                let (_, values) = outputs[*name]
                    .try_extract_tensor::<f32>()
                    .map_err(inference)?;
                Ok(values.to_vec())
            })
            .collect()
    }

    /// Runs the model on `input` (NHWC, the model's own shape).
    pub fn run(&mut self, input: Array4<f32>) -> Result<Vec<Vec<f32>>, OnnxError> {
        let held = self.input_mut();
        if input.len() != held.len() {
            return Err(OnnxError::Inference(format!(
                "the input has {} values, the model takes {}",
                input.len(),
                held.len()
            )));
        }
        held.iter_mut().zip(input.iter()).for_each(|(h, v)| *h = *v);
        self.infer()
    }
}
