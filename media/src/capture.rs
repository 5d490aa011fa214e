//! Cameras and microphones, real or synthetic, behind one interface each.
//!
//! Real devices are opened on their own thread (nokhwa's camera is not
//! `Send`; cpal calls back on the audio thread) and hand frames over a
//! one-slot channel that keeps the newest, so a slow consumer never makes
//! capture fall behind. A missing or busy device is an error that says so;
//! the synthetic sources are only ever chosen explicitly (tests).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};

use crate::frame::{AudioFrame, MediaTime, PixelFormat, Plane, VideoFrame};
use crate::resample::MonoResampler;
use crate::source::pattern::TestPattern;
use crate::source::tone::{ToneShape, ToneSource};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("no {0} is connected")]
    NoDevice(&'static str),
    #[error("the {kind} \"{name}\" cannot be opened: {reason}")]
    CannotOpen {
        kind: &'static str,
        name: String,
        reason: String,
    },
    #[error("the {kind} \"{name}\" is in use by another application")]
    Busy { kind: &'static str, name: String },
    #[error("the {0} stopped delivering")]
    Stopped(&'static str),
    #[error("the {kind} does not offer {request}")]
    Unsupported { kind: &'static str, request: String },
}

impl CaptureError {
    /// A stable code for the window to say the problem in the user's language.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoDevice(_) => "no_device",
            Self::CannotOpen { .. } => "cannot_open",
            Self::Busy { .. } => "busy",
            Self::Stopped(_) => "stopped",
            Self::Unsupported { .. } => "unsupported",
        }
    }
}

/// What a source is, for the UI's device picker and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// A test pattern or tone standing in for a missing device.
    pub synthetic: bool,
}

/// A camera: real, a file, or the test pattern.
pub trait VideoSource: Send {
    fn info(&self) -> &SourceInfo;
    /// Blocks until the next frame.
    fn next_frame(&mut self) -> Result<VideoFrame, CaptureError>;
}

/// A microphone: real or the tone; 10 ms of 48 kHz mono per call.
pub trait AudioSource: Send {
    fn name(&self) -> &str;
    fn synthetic(&self) -> bool;
    /// Blocks until the next 10 ms.
    fn next_frame(&mut self) -> Result<AudioFrame, CaptureError>;
}

/// The size and rate asked of a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraRequest {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for CameraRequest {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
        }
    }
}

/// A camera the system knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraDevice {
    pub index: u32,
    pub name: String,
}

/// The cameras connected now (empty on a machine without one).
pub fn list_cameras() -> Vec<CameraDevice> {
    let backend = nokhwa::native_api_backend().unwrap_or(ApiBackend::Auto);
    nokhwa::query(backend)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|info| {
            info.index().as_index().ok().map(|index| CameraDevice {
                index,
                name: info.human_name(),
            })
        })
        .collect()
}

/// Paces a synthetic source at its frame rate, against the wall clock.
struct Pacer {
    start: Instant,
    interval: Duration,
    next: u64,
}

impl Pacer {
    fn new(interval: Duration) -> Self {
        Self {
            start: Instant::now(),
            interval,
            next: 0,
        }
    }

    /// Sleeps until the next tick; returns its index.
    fn wait(&mut self) -> u64 {
        let due = self.start + self.interval * u32::try_from(self.next).unwrap_or(u32::MAX);
        if let Some(left) = due.checked_duration_since(Instant::now()) {
            thread::sleep(left);
        }
        self.next += 1;
        self.next - 1
    }
}

/// The test pattern as a camera.
pub struct SyntheticCamera {
    info: SourceInfo,
    pattern: TestPattern,
    pacer: Pacer,
}

impl SyntheticCamera {
    pub fn new(request: CameraRequest) -> Result<Self, CaptureError> {
        let pattern = TestPattern::new(request.width, request.height).map_err(|e| {
            CaptureError::Unsupported {
                kind: "test pattern",
                request: e.to_string(),
            }
        })?;
        Ok(Self {
            info: SourceInfo {
                name: "Nexmile test pattern".into(),
                width: request.width,
                height: request.height,
                fps: request.fps,
                synthetic: true,
            },
            pattern,
            pacer: Pacer::new(Duration::from_secs(1) / request.fps.max(1)),
        })
    }
}

impl VideoSource for SyntheticCamera {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<VideoFrame, CaptureError> {
        let sequence = self.pacer.wait();
        Ok(self.pattern.render(sequence as u32, MediaTime::now()))
    }
}

/// A real camera on its capture thread.
pub struct DeviceCamera {
    info: SourceInfo,
    frames: Receiver<Result<VideoFrame, CaptureError>>,
}

fn pixel_format(f: FrameFormat) -> Option<PixelFormat> {
    match f {
        FrameFormat::MJPEG => Some(PixelFormat::Mjpeg),
        FrameFormat::YUYV => Some(PixelFormat::Yuyv),
        FrameFormat::NV12 => Some(PixelFormat::Nv12),
        FrameFormat::GRAY | FrameFormat::RAWRGB | FrameFormat::RAWBGR => None,
    }
}

fn classify(name: &str, error: &nokhwa::NokhwaError) -> CaptureError {
    let text = error.to_string();
    if text.contains("busy") || text.contains("Busy") || text.contains("EBUSY") {
        CaptureError::Busy {
            kind: "camera",
            name: name.to_owned(),
        }
    } else if text.contains("No such file") {
        CaptureError::NoDevice("camera")
    } else {
        CaptureError::CannotOpen {
            kind: "camera",
            name: name.to_owned(),
            reason: text,
        }
    }
}

/// Keeps the newest frame when the consumer is behind.
fn offer<T>(tx: &SyncSender<T>, item: T) -> bool {
    !matches!(tx.try_send(item), Err(TrySendError::Disconnected(_)))
}

impl DeviceCamera {
    /// Opens camera `index` at the request's size and rate, in YUYV, NV12 or
    /// MJPEG, whichever the camera offers exactly.
    pub fn open(index: u32, request: CameraRequest) -> Result<Self, CaptureError> {
        let (opened_tx, opened_rx) = mpsc::sync_channel(1);
        let (frame_tx, frames) = mpsc::sync_channel(1);
        let name = list_cameras()
            .into_iter()
            .find(|c| c.index == index)
            .map(|c| c.name)
            .ok_or(CaptureError::NoDevice("camera"))?;
        let thread_name = name.clone();
        thread::Builder::new()
            .name("camera".into())
            .spawn(move || Self::run(index, request, &thread_name, &opened_tx, &frame_tx))
            .map_err(|e| CaptureError::CannotOpen {
                kind: "camera",
                name: name.clone(),
                reason: e.to_string(),
            })?;
        let info = opened_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| CaptureError::Stopped("camera"))??;
        Ok(Self { info, frames })
    }

    fn run(
        index: u32,
        request: CameraRequest,
        name: &str,
        opened: &SyncSender<Result<SourceInfo, CaptureError>>,
        frames: &SyncSender<Result<VideoFrame, CaptureError>>,
    ) {
        static ALLOWED: [FrameFormat; 3] =
            [FrameFormat::YUYV, FrameFormat::NV12, FrameFormat::MJPEG];
        let open = || -> Result<nokhwa::Camera, CaptureError> {
            let mut last = None;
            for format in ALLOWED {
                let wanted = CameraFormat::new(
                    Resolution::new(request.width, request.height),
                    format,
                    request.fps,
                );
                let requested =
                    RequestedFormat::with_formats(RequestedFormatType::Exact(wanted), &ALLOWED);
                match nokhwa::Camera::new(CameraIndex::Index(index), requested) {
                    Ok(mut camera) => {
                        camera.open_stream().map_err(|e| classify(name, &e))?;
                        return Ok(camera);
                    }
                    Err(e) => last = Some(classify(name, &e)),
                }
            }
            Err(last.unwrap_or(CaptureError::Unsupported {
                kind: "camera",
                request: format!(
                    "{}×{} at {} fps",
                    request.width, request.height, request.fps
                ),
            }))
        };
        let mut camera = match open() {
            Ok(camera) => camera,
            Err(e) => {
                let _ = opened.send(Err(e));
                return;
            }
        };
        let format = camera.camera_format();
        let _ = opened.send(Ok(SourceInfo {
            name: name.to_owned(),
            width: format.width(),
            height: format.height(),
            fps: format.frame_rate(),
            synthetic: false,
        }));
        loop {
            let frame = camera
                .frame()
                .map_err(|e| classify(name, &e))
                .and_then(|buffer| {
                    let format = pixel_format(buffer.source_frame_format()).ok_or(
                        CaptureError::Unsupported {
                            kind: "camera",
                            request: format!("{:?}", buffer.source_frame_format()),
                        },
                    )?;
                    let resolution = buffer.resolution();
                    let stride = match format {
                        PixelFormat::Yuyv => resolution.width_x as usize * 2,
                        PixelFormat::Nv12 => resolution.width_x as usize,
                        _ => 0,
                    };
                    let data = buffer.buffer();
                    let planes = if format == PixelFormat::Nv12 {
                        let luma = stride * resolution.height_y as usize;
                        vec![
                            Plane {
                                data: data[..luma.min(data.len())].to_vec(),
                                stride,
                            },
                            Plane {
                                data: data[luma.min(data.len())..].to_vec(),
                                stride,
                            },
                        ]
                    } else {
                        vec![Plane {
                            data: data.to_vec(),
                            stride,
                        }]
                    };
                    Ok(VideoFrame {
                        format,
                        width: resolution.width_x,
                        height: resolution.height_y,
                        planes,
                        timestamp: MediaTime::now(),
                    })
                });
            let failed = frame.is_err();
            if !offer(frames, frame) || failed {
                return;
            }
        }
    }
}

impl VideoSource for DeviceCamera {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<VideoFrame, CaptureError> {
        match self.frames.recv_timeout(Duration::from_secs(3)) {
            Ok(frame) => frame,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                Err(CaptureError::Stopped("camera"))
            }
        }
    }
}

/// The camera called `name`, or the first one for `None`. A named camera
/// that is not connected is an error, so the caller can say so and choose
/// the default instead.
pub fn open_camera(
    request: CameraRequest,
    name: Option<&str>,
) -> Result<Box<dyn VideoSource>, CaptureError> {
    let cameras = list_cameras();
    let device = match name {
        None => cameras.first(),
        Some(wanted) => cameras.iter().find(|c| c.name == wanted),
    }
    .ok_or(CaptureError::NoDevice("camera"))?;
    Ok(Box::new(DeviceCamera::open(device.index, request)?))
}

/// The tone as a microphone.
pub struct SyntheticMicrophone {
    tone: ToneSource,
    pacer: Pacer,
}

impl SyntheticMicrophone {
    pub fn new(shape: ToneShape) -> Self {
        Self {
            tone: ToneSource::new(shape, 0.3),
            pacer: Pacer::new(Duration::from_millis(10)),
        }
    }
}

impl AudioSource for SyntheticMicrophone {
    fn name(&self) -> &str {
        "Nexmile test tone"
    }

    fn synthetic(&self) -> bool {
        true
    }

    fn next_frame(&mut self) -> Result<AudioFrame, CaptureError> {
        self.pacer.wait();
        Ok(self.tone.next_frame(MediaTime::now()))
    }
}

/// A real microphone through cpal, as 48 kHz mono: asked of the device
/// directly, or mixed down and resampled from its own format.
pub struct DeviceMicrophone {
    name: String,
    samples: Receiver<Vec<f32>>,
    pending: Vec<f32>,
    resampler: Option<MonoResampler>,
    converted: Vec<f32>,
    // Dropping the stream stops capture.
    _stream: cpal::Stream,
}

fn find_input(name: Option<&str>) -> Result<cpal::Device, CaptureError> {
    let host = cpal::default_host();
    match name {
        None => host.default_input_device(),
        Some(wanted) => host
            .input_devices()
            .ok()
            .and_then(|mut devices| devices.find(|d| device_name(d).as_deref() == Some(wanted))),
    }
    .ok_or(CaptureError::NoDevice("microphone"))
}

/// What a sound device calls itself in pickers.
pub(crate) fn device_name(device: &cpal::Device) -> Option<String> {
    device.description().ok().map(|d| d.name().to_owned())
}

/// A cpal failure to open the `kind` device called `name`, as the app says it.
pub(crate) fn device_error(kind: &'static str, name: &str, e: &cpal::Error) -> CaptureError {
    match e.kind() {
        cpal::ErrorKind::DeviceBusy => CaptureError::Busy {
            kind,
            name: name.to_owned(),
        },
        cpal::ErrorKind::DeviceNotAvailable => CaptureError::NoDevice(kind),
        _ => CaptureError::CannotOpen {
            kind,
            name: name.to_owned(),
            reason: e.to_string(),
        },
    }
}

/// Builds a stream of `T` samples that hands over mono f32 (channels averaged).
fn input_stream<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    tx: SyncSender<Vec<f32>>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: cpal::SizedSample,
    f32: cpal::FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _| {
            let mono = data
                .chunks_exact(channels)
                .map(|frame| {
                    frame
                        .iter()
                        .map(|s| <f32 as cpal::FromSample<T>>::from_sample_(*s))
                        .sum::<f32>()
                        / channels as f32
                })
                .collect();
            let _ = tx.try_send(mono);
        },
        |_| {},
        None,
    )
}

impl DeviceMicrophone {
    /// The microphone called `name`, or the system's default for `None`.
    pub fn open(name: Option<&str>) -> Result<Self, CaptureError> {
        let device = find_input(name)?;
        let name = device_name(&device).unwrap_or_else(|| "default".into());
        // No sound card still yields a "default" device; its config tells.
        let supported = device
            .default_input_config()
            .map_err(|e| device_error("microphone", &name, &e))?;
        let (tx, samples) = mpsc::sync_channel::<Vec<f32>>(64);
        let direct = cpal::StreamConfig {
            channels: 1,
            sample_rate: AudioFrame::RATE,
            buffer_size: cpal::BufferSize::Default,
        };
        // 48 kHz mono where the device gives it; else its own format, converted here.
        let (stream, resampler) = match input_stream::<f32>(&device, direct, tx.clone()) {
            Ok(stream) => (stream, None),
            Err(_) => {
                let config = supported.config();
                let stream = match supported.sample_format() {
                    cpal::SampleFormat::I16 => input_stream::<i16>(&device, config, tx),
                    cpal::SampleFormat::I32 => input_stream::<i32>(&device, config, tx),
                    _ => input_stream::<f32>(&device, config, tx),
                }
                .map_err(|e| device_error("microphone", &name, &e))?;
                let resampler = (config.sample_rate != AudioFrame::RATE)
                    .then(|| MonoResampler::new(config.sample_rate, AudioFrame::RATE))
                    .transpose()
                    .map_err(|reason| CaptureError::CannotOpen {
                        kind: "microphone",
                        name: name.clone(),
                        reason,
                    })?;
                (stream, resampler)
            }
        };
        stream
            .play()
            .map_err(|e| device_error("microphone", &name, &e))?;
        Ok(Self {
            name,
            samples,
            pending: Vec::new(),
            resampler,
            converted: Vec::new(),
            _stream: stream,
        })
    }
}

impl AudioSource for DeviceMicrophone {
    fn name(&self) -> &str {
        &self.name
    }

    fn synthetic(&self) -> bool {
        false
    }

    fn next_frame(&mut self) -> Result<AudioFrame, CaptureError> {
        while self.pending.len() < AudioFrame::SAMPLES_PER_10MS {
            let chunk = self
                .samples
                .recv_timeout(Duration::from_secs(2))
                .map_err(|_| CaptureError::Stopped("microphone"))?;
            match &mut self.resampler {
                None => self.pending.extend(chunk),
                Some(resampler) => {
                    self.converted.clear();
                    resampler.process(&chunk, &mut self.converted);
                    self.pending.extend_from_slice(&self.converted);
                }
            }
        }
        let samples: Vec<i16> = self
            .pending
            .drain(..AudioFrame::SAMPLES_PER_10MS)
            .map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect();
        Ok(AudioFrame {
            sample_rate: AudioFrame::RATE,
            channels: 1,
            samples,
            timestamp: MediaTime::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pattern::read_stamp;

    #[test]
    fn synthetic_camera_runs_at_its_rate_with_stamped_frames() {
        let mut camera = SyntheticCamera::new(CameraRequest {
            width: 320,
            height: 180,
            fps: 50,
        })
        .unwrap();
        assert!(camera.info().synthetic);
        let started = Instant::now();
        let stamps: Vec<u32> = (0..10)
            .map(|_| read_stamp(&camera.next_frame().unwrap()).unwrap().sequence)
            .collect();
        assert_eq!(stamps, (0..10).collect::<Vec<_>>());
        // Ten frames at 50 fps take 180 ms (the first is immediate); paced, not spun.
        assert!(started.elapsed() >= Duration::from_millis(170));
    }

    #[test]
    fn a_device_that_is_not_there_is_an_error_that_says_so() {
        let missing = Some("Nexmile no such device");
        let camera = open_camera(CameraRequest::default(), missing).err();
        assert_eq!(camera, Some(CaptureError::NoDevice("camera")));
        let microphone = DeviceMicrophone::open(missing).err();
        assert_eq!(microphone, Some(CaptureError::NoDevice("microphone")));
        assert!(crate::speaker::Speaker::open(missing).is_err());
    }

    #[test]
    fn opening_a_camera_that_is_not_there_is_an_error_not_a_panic() {
        let missing = list_cameras()
            .iter()
            .map(|c| c.index)
            .max()
            .map_or(0, |i| i + 1);
        assert_eq!(
            DeviceCamera::open(missing, CameraRequest::default()).err(),
            Some(CaptureError::NoDevice("camera"))
        );
        assert!(
            SyntheticCamera::new(CameraRequest {
                width: 10,
                height: 10,
                fps: 30
            })
            .is_err()
        );
    }

    #[test]
    fn synthetic_microphone_gives_10_ms_frames_of_tone() {
        let mut mic = SyntheticMicrophone::new(ToneShape::Steady { hz: 1000.0 });
        let frame = mic.next_frame().unwrap();
        assert_eq!(frame.samples.len(), 480);
        assert!(frame.level_dbfs() > -20.0);
    }
}
