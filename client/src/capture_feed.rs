//! The outgoing pictures and sound of a session: the system's camera and
//! microphone, or (for tests, chosen explicitly) the stamped test pattern
//! and tone, each on its own thread (capture blocks), handed to the session
//! newest-first for video and in order for sound.
//!
//! Turning the camera off releases it (its light goes out) and sends black
//! pictures at the same rate; turning it on opens it again. A chosen device
//! that is missing gives way to the system's default, and the change is
//! told. With no device at all, black pictures or silence go out — never a
//! test pattern or tone in its place — the window says why, and the device
//! is looked for again every few seconds, so plugging one in is followed.
//! The microphone's sound goes through the echo canceller, noise
//! suppression and gain control before it is sent.

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nexmile_media::audio_processing::AudioProcessor;
use nexmile_media::capture::{
    AudioSource, CameraRequest, CaptureError, DeviceMicrophone, SyntheticCamera,
    SyntheticMicrophone, VideoSource, open_camera,
};
use nexmile_media::frame::{AudioFrame, MediaTime, VideoFrame};
use nexmile_media::source::tone::ToneShape;
use tokio::sync::{mpsc, watch};

pub use crate::events::{SourceInUse, SourcesInUse};
use crate::media_session::MediaSwitches;
use crate::profiles::DeviceSettings;

/// Where the outgoing pictures and sound come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CaptureChoice {
    /// The stamped test pattern and a tone, so that delay is measured end
    /// to end (tests; the command line without `--devices`).
    #[default]
    Synthetic,
    /// The system's camera and microphone, as chosen in the settings.
    Devices(DeviceSettings),
    /// Nothing is sent (a live's viewer).
    ReceiveOnly,
}

/// The running capture of one session; dropping it stops the threads.
pub struct CaptureFeed {
    /// The newest picture (a slow encoder skips pictures instead of queueing).
    pub video: watch::Receiver<Option<VideoFrame>>,
    /// 10 ms of sound each, in order; a consumer that falls 0.5 s behind loses the oldest.
    pub audio: mpsc::Receiver<AudioFrame>,
    /// Which sources are in use, changed when a device fails or the camera is switched.
    pub sources: watch::Receiver<SourcesInUse>,
    /// The microphone's level after processing, in dBFS (for the meter).
    pub level: watch::Receiver<f64>,
}

fn in_use(name: &str, synthetic: bool, reason: Option<&CaptureError>) -> SourceInUse {
    SourceInUse {
        name: name.to_owned(),
        synthetic,
        reason: reason.map(ToString::to_string),
        problem: reason.map(CaptureError::code),
    }
}

/// How often a missing device is looked for again.
const RETRY: Duration = Duration::from_secs(3);

impl CaptureFeed {
    /// Opens the sources (on their threads: opening a camera can take a
    /// second); `with_video` false opens no camera (a radio live).
    /// `processing` cleans a device microphone's sound.
    pub async fn open(
        choice: CaptureChoice,
        request: CameraRequest,
        switches: watch::Receiver<MediaSwitches>,
        with_video: bool,
        processing: Option<AudioProcessor>,
    ) -> Self {
        let (video_tx, video) = watch::channel(None);
        let (audio_tx, audio) = mpsc::channel(50);
        let (level_tx, level) = watch::channel(-120.0);
        if choice == CaptureChoice::ReceiveOnly {
            // No threads: the closed channels give nothing to send.
            let nothing = in_use("", false, None);
            let (_, sources) = watch::channel(SourcesInUse {
                camera: nothing.clone(),
                microphone: nothing,
            });
            return Self {
                video,
                audio,
                sources,
                level,
            };
        }
        let (opened_tx, opened_rx) = std_mpsc::channel();
        let camera_opened = opened_tx.clone();
        if with_video {
            let choice = choice.clone();
            thread::Builder::new()
                .name("capture-video".into())
                .spawn(move || run_camera(&choice, request, &switches, &video_tx, &camera_opened))
                .expect("a thread for the camera");
        } else {
            let _ = camera_opened.send(Opened::Camera(in_use("", false, None)));
        }
        thread::Builder::new()
            .name("capture-audio".into())
            .spawn(move || {
                run_microphone(
                    &choice,
                    processing,
                    &Sinks {
                        sound: audio_tx,
                        level: level_tx,
                        opened: opened_tx,
                    },
                );
            })
            .expect("a thread for the microphone");
        let opened = tokio::task::spawn_blocking(move || {
            let mut camera = None;
            let mut microphone = None;
            while camera.is_none() || microphone.is_none() {
                match opened_rx.recv() {
                    Ok(Opened::Camera(c)) => camera = Some(c),
                    Ok(Opened::Microphone(m)) => microphone = Some(m),
                    Err(_) => break,
                }
            }
            (opened_rx, camera, microphone)
        })
        .await;
        let (opened_rx, camera, microphone) = opened.expect("the opening thread ends");
        let unknown = || in_use("", false, None);
        let (sources_tx, sources) = watch::channel(SourcesInUse {
            camera: camera.unwrap_or_else(unknown),
            microphone: microphone.unwrap_or_else(unknown),
        });
        // Later changes (a device lost, the camera released and reopened).
        thread::Builder::new()
            .name("capture-sources".into())
            .spawn(move || {
                while let Ok(change) = opened_rx.recv() {
                    let sent = sources_tx.send_if_modified(|now| {
                        let (slot, new) = match change {
                            Opened::Camera(c) => (&mut now.camera, c),
                            Opened::Microphone(m) => (&mut now.microphone, m),
                        };
                        let changed = *slot != new;
                        *slot = new;
                        changed
                    });
                    if !sent && sources_tx.is_closed() {
                        return;
                    }
                }
            })
            .expect("a thread for source changes");
        Self {
            video,
            audio,
            sources,
            level,
        }
    }
}

enum Opened {
    Camera(SourceInUse),
    Microphone(SourceInUse),
}

/// Opens the chosen device, else the default one; `None` when there is
/// none. The error says why the chosen one is not in use.
fn open_chosen<T>(
    chosen: Option<&str>,
    open: impl Fn(Option<&str>) -> Result<T, CaptureError>,
) -> (Option<T>, Option<CaptureError>) {
    match open(chosen) {
        Ok(device) => (Some(device), None),
        Err(why) if chosen.is_some() => (open(None).ok(), Some(why)),
        Err(why) => (None, Some(why)),
    }
}

fn open_video(
    choice: &CaptureChoice,
    request: CameraRequest,
) -> (Option<Box<dyn VideoSource>>, SourceInUse) {
    let (source, why) = match choice {
        CaptureChoice::Devices(settings) => open_chosen(settings.camera.as_deref(), |name| {
            open_camera(request, name)
        }),
        CaptureChoice::Synthetic | CaptureChoice::ReceiveOnly => {
            (Some(synthetic_camera(request)), None)
        }
    };
    let used = match &source {
        Some(camera) => in_use(&camera.info().name, camera.info().synthetic, why.as_ref()),
        None => in_use("", false, why.as_ref()),
    };
    (source, used)
}

fn synthetic_camera(request: CameraRequest) -> Box<dyn VideoSource> {
    let camera = SyntheticCamera::new(request)
        .or_else(|_| SyntheticCamera::new(CameraRequest::default()))
        .expect("the default test pattern size is valid");
    Box::new(camera)
}

fn run_camera(
    choice: &CaptureChoice,
    request: CameraRequest,
    switches: &watch::Receiver<MediaSwitches>,
    pictures: &watch::Sender<Option<VideoFrame>>,
    opened: &std_mpsc::Sender<Opened>,
) {
    let black_interval = Duration::from_secs(1) / request.fps.max(1);
    let mut source: Option<Box<dyn VideoSource>> = None;
    // When a missing camera is looked for next.
    let mut look_again: Option<Instant> = None;
    if !switches.borrow().camera {
        // Not opened until it is turned on: no name yet.
        let _ = opened.send(Opened::Camera(in_use("", false, None)));
    }
    loop {
        if pictures.is_closed() {
            return;
        }
        if switches.borrow().camera
            && source.is_none()
            && look_again.is_none_or(|at| Instant::now() >= at)
        {
            let (camera, used) = open_video(choice, request);
            let _ = opened.send(Opened::Camera(used));
            look_again = camera.is_none().then(|| Instant::now() + RETRY);
            source = camera;
        }
        let camera = match &mut source {
            Some(camera) if switches.borrow().camera => camera,
            _ => {
                // Off, or no camera: black pictures, and the light goes out.
                if !switches.borrow().camera {
                    source = None;
                    look_again = None;
                }
                thread::sleep(black_interval);
                let black = VideoFrame::black_i420(request.width, request.height, MediaTime::now());
                pictures.send_replace(Some(black));
                continue;
            }
        };
        match camera.next_frame() {
            Ok(picture) => {
                pictures.send_replace(Some(picture));
            }
            Err(why) => {
                // The camera is gone: the default one, if any, takes over; the window says why.
                let fallback = match choice {
                    CaptureChoice::Devices(_) => open_camera(request, None).ok(),
                    _ => Some(synthetic_camera(request)),
                };
                let used = match &fallback {
                    Some(camera) => {
                        in_use(&camera.info().name, camera.info().synthetic, Some(&why))
                    }
                    None => in_use("", false, Some(&why)),
                };
                let _ = opened.send(Opened::Camera(used));
                look_again = fallback.is_none().then(|| Instant::now() + RETRY);
                source = fallback;
            }
        }
    }
}

/// Where the microphone thread delivers.
struct Sinks {
    sound: mpsc::Sender<AudioFrame>,
    level: watch::Sender<f64>,
    opened: std_mpsc::Sender<Opened>,
}

fn open_sound(choice: &CaptureChoice) -> (Option<Box<dyn AudioSource>>, Option<CaptureError>) {
    match choice {
        CaptureChoice::Devices(settings) => {
            let (mic, why) = open_chosen(settings.microphone.as_deref(), DeviceMicrophone::open);
            (mic.map(|m| Box::new(m) as Box<dyn AudioSource>), why)
        }
        CaptureChoice::Synthetic | CaptureChoice::ReceiveOnly => (
            Some(Box::new(SyntheticMicrophone::new(ToneShape::Steady {
                hz: 440.0,
            }))),
            None,
        ),
    }
}

fn silence() -> AudioFrame {
    AudioFrame {
        sample_rate: AudioFrame::RATE,
        channels: 1,
        samples: vec![0; AudioFrame::SAMPLES_PER_10MS],
        timestamp: MediaTime::now(),
    }
}

fn run_microphone(choice: &CaptureChoice, mut processing: Option<AudioProcessor>, sinks: &Sinks) {
    let tell = |source: &Option<Box<dyn AudioSource>>, why: Option<&CaptureError>| {
        let used = match source {
            Some(mic) => in_use(mic.name(), mic.synthetic(), why),
            None => in_use("", false, why),
        };
        let _ = sinks.opened.send(Opened::Microphone(used));
    };
    let (mut source, why) = open_sound(choice);
    tell(&source, why.as_ref());
    let mut look_again = Instant::now() + RETRY;
    // Without a microphone, silence at the same pace keeps the stream's timing.
    let mut due = Instant::now();
    loop {
        let frame = match &mut source {
            Some(mic) => match mic.next_frame() {
                Ok(mut frame) => {
                    if !mic.synthetic()
                        && let Some(processor) = &mut processing
                    {
                        let _ = processor.process_capture(&mut frame);
                    }
                    frame
                }
                Err(why) => {
                    // Gone mid-call: the default microphone takes over, and the window says so.
                    source = match choice {
                        CaptureChoice::Devices(_) => DeviceMicrophone::open(None)
                            .ok()
                            .map(|m| Box::new(m) as Box<dyn AudioSource>),
                        _ => open_sound(choice).0,
                    };
                    tell(&source, Some(&why));
                    look_again = Instant::now() + RETRY;
                    due = Instant::now();
                    continue;
                }
            },
            None => {
                if Instant::now() >= look_again {
                    let (mic, why) = open_sound(choice);
                    if mic.is_some() {
                        tell(&mic, why.as_ref());
                        source = mic;
                        continue;
                    }
                    look_again = Instant::now() + RETRY;
                }
                due += Duration::from_millis(10);
                thread::sleep(due.saturating_duration_since(Instant::now()));
                silence()
            }
        };
        sinks.level.send_replace(frame.level_dbfs());
        match sinks.sound.try_send(frame) {
            Err(mpsc::error::TrySendError::Closed(_)) => return,
            // Behind by half a second: this 10 ms is dropped rather than delaying the rest.
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmile_media::frame::PixelFormat;
    use nexmile_media::source::pattern::read_stamp;

    fn request() -> CameraRequest {
        CameraRequest {
            width: 320,
            height: 180,
            fps: 30,
        }
    }

    #[tokio::test]
    async fn synthetic_capture_gives_stamped_pictures_and_10_ms_of_tone() {
        let switches = watch::channel(MediaSwitches::default()).1;
        let mut feed =
            CaptureFeed::open(CaptureChoice::Synthetic, request(), switches, true, None).await;
        assert_eq!(feed.sources.borrow().camera.name, "Nexmile test pattern");
        assert!(feed.sources.borrow().microphone.synthetic);
        feed.video.changed().await.unwrap();
        let picture = feed.video.borrow_and_update().clone().unwrap();
        assert_eq!((picture.width, picture.height), (320, 180));
        assert!(read_stamp(&picture).is_some());
        let sound = feed.audio.recv().await.unwrap();
        assert_eq!(sound.samples.len(), AudioFrame::SAMPLES_PER_10MS);
    }

    #[tokio::test]
    async fn missing_devices_send_black_and_silence_and_say_why() {
        let switches = watch::channel(MediaSwitches::default()).1;
        let chosen = DeviceSettings {
            camera: Some("Nexmile no such camera".into()),
            microphone: Some("Nexmile no such microphone".into()),
            ..DeviceSettings::default()
        };
        let mut feed = CaptureFeed::open(
            CaptureChoice::Devices(chosen),
            request(),
            switches,
            true,
            None,
        )
        .await;
        let sources = feed.sources.borrow().clone();
        for source in [&sources.camera, &sources.microphone] {
            assert!(
                !source.synthetic,
                "never a test pattern or tone: {source:?}"
            );
            // The chosen one is not there: said so, whether or not a default took over.
            assert_eq!(source.problem, Some("no_device"), "{source:?}");
        }
        if sources.camera.name.is_empty() {
            feed.video.changed().await.unwrap();
            let black = feed.video.borrow_and_update().clone().unwrap();
            assert!(read_stamp(&black).is_none());
            assert!(black.planes[0].data.iter().all(|&y| y == 16));
        }
        if sources.microphone.name.is_empty() {
            let sound = feed.audio.recv().await.unwrap();
            assert!(sound.samples.iter().all(|&s| s == 0));
        }
    }

    #[tokio::test]
    async fn camera_off_sends_black_and_on_again_reopens_the_camera() {
        let (switch, switches) = watch::channel(MediaSwitches::default());
        let mut feed =
            CaptureFeed::open(CaptureChoice::Synthetic, request(), switches, true, None).await;
        switch.send_modify(|s| s.camera = false);
        let black = loop {
            feed.video.changed().await.unwrap();
            let picture = feed.video.borrow_and_update().clone().unwrap();
            if read_stamp(&picture).is_none() {
                break picture;
            }
        };
        assert_eq!(black.format, PixelFormat::I420);
        assert!(black.planes[0].data.iter().all(|&y| y == 16));
        switch.send_modify(|s| s.camera = true);
        loop {
            feed.video.changed().await.unwrap();
            if read_stamp(feed.video.borrow_and_update().as_ref().unwrap()).is_some() {
                break;
            }
        }
    }

    #[tokio::test]
    async fn a_camera_off_from_the_start_is_not_opened_until_turned_on() {
        let (switch, switches) = watch::channel(MediaSwitches {
            microphone: true,
            camera: false,
        });
        let mut feed =
            CaptureFeed::open(CaptureChoice::Synthetic, request(), switches, true, None).await;
        assert_eq!(feed.sources.borrow().camera.name, "");
        switch.send_modify(|s| s.camera = true);
        feed.sources.changed().await.unwrap();
        assert_eq!(feed.sources.borrow().camera.name, "Nexmile test pattern");
    }
}
