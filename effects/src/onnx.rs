//! ONNX Runtime, loaded once per process from the library set-up fetched
//! (`$NEXMILE_CACHE/onnxruntime-1.32.0/`, or `$NEXMILE_ONNXRUNTIME`). A
//! missing library is an error the UI can show, never a panic.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;

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

/// A model session on one thread: effects run per frame on the capture
/// thread, where more threads would only compete with the encoder.
pub fn session(model: &[u8]) -> Result<Session, OnnxError> {
    let environment = environment()?;
    Session::builder(environment)
        .map_err(|e| OnnxError::Model(e.to_string()))?
        .with_intra_threads(1)
        .map_err(|e| OnnxError::Model(e.to_string()))?
        .commit_from_memory(model)
        .map_err(|e| OnnxError::Model(e.to_string()))
}
