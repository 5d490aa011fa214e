//! The outgoing pictures and sound of a session: the system's camera and
//! microphone, or the stamped test pattern and tone, each on its own thread
//! (capture blocks), handed to the session newest-first for video and in
//! order for sound.
//!
//! Turning the camera off releases it (its light goes out) and sends black
//! pictures at the same rate; turning it on opens it again. A device that
//! stops mid-call (unplugged, taken by another app) is replaced by the
//! synthetic source, and the change is reported, so the call goes on.

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;

use nexmile_media::capture::{
    AudioSource, CameraRequest, CaptureError, SyntheticCamera, SyntheticMicrophone, VideoSource,
    open_camera, open_microphone,
};
use nexmile_media::frame::{AudioFrame, MediaTime, VideoFrame};
use nexmile_media::source::tone::ToneShape;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::media_session::MediaSwitches;

/// Where the outgoing pictures and sound come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureChoice {
    /// The stamped test pattern and a tone, so that delay is measured end
    /// to end (the command-line client, tests).
    #[default]
    Synthetic,
    /// The system's camera and microphone, or the synthetic ones where
    /// there are none (the desktop app).
    Devices,
    /// Nothing is sent (a live's viewer).
    ReceiveOnly,
}

/// One source in use, as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInUse {
    pub name: String,
    pub synthetic: bool,
    /// Why a synthetic source stands in for a device, if it does: the
    /// system's words, and [`CaptureError::code`] for the window's.
    pub reason: Option<String>,
    pub problem: Option<&'static str>,
}

/// What the session's capture is using now; sent at the start and on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcesInUse {
    pub camera: SourceInUse,
    pub microphone: SourceInUse,
}

/// The running capture of one session; dropping it stops the threads.
pub struct CaptureFeed {
    /// The newest picture (a slow encoder skips pictures instead of queueing).
    pub video: watch::Receiver<Option<VideoFrame>>,
    /// 10 ms of sound each, in order; a consumer that falls 0.5 s behind loses the oldest.
    pub audio: mpsc::Receiver<AudioFrame>,
    /// Which sources are in use, changed when a device fails or the camera is switched.
    pub sources: watch::Receiver<SourcesInUse>,
}

fn in_use(name: &str, synthetic: bool, reason: Option<&CaptureError>) -> SourceInUse {
    SourceInUse {
        name: name.to_owned(),
        synthetic,
        reason: reason.map(ToString::to_string),
        problem: reason.map(CaptureError::code),
    }
}

impl CaptureFeed {
    /// Opens the sources (on their threads: opening a camera can take a
    /// second); `with_video` false opens no camera (a radio live).
    pub async fn open(
        choice: CaptureChoice,
        request: CameraRequest,
        switches: watch::Receiver<MediaSwitches>,
        with_video: bool,
    ) -> Self {
        let (video_tx, video) = watch::channel(None);
        let (audio_tx, audio) = mpsc::channel(50);
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
            };
        }
        let (opened_tx, opened_rx) = std_mpsc::channel();
        let camera_opened = opened_tx.clone();
        if with_video {
            thread::Builder::new()
                .name("capture-video".into())
                .spawn(move || run_camera(choice, request, &switches, &video_tx, &camera_opened))
                .expect("a thread for the camera");
        } else {
            let _ = camera_opened.send(Opened::Camera(in_use("", false, None)));
        }
        thread::Builder::new()
            .name("capture-audio".into())
            .spawn(move || run_microphone(choice, &audio_tx, &opened_tx))
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
        let unknown = || in_use("", true, None);
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
        }
    }
}

enum Opened {
    Camera(SourceInUse),
    Microphone(SourceInUse),
}

fn open_video(
    choice: CaptureChoice,
    request: CameraRequest,
) -> (Box<dyn VideoSource>, SourceInUse) {
    let (source, why) = match choice {
        CaptureChoice::Devices => open_camera(request),
        CaptureChoice::Synthetic | CaptureChoice::ReceiveOnly => synthetic_camera(request),
    };
    let info = source.info();
    let used = in_use(&info.name, info.synthetic, why.as_ref());
    (source, used)
}

fn synthetic_camera(request: CameraRequest) -> (Box<dyn VideoSource>, Option<CaptureError>) {
    let camera = SyntheticCamera::new(request)
        .or_else(|_| SyntheticCamera::new(CameraRequest::default()))
        .expect("the default test pattern size is valid");
    (Box::new(camera), None)
}

fn run_camera(
    choice: CaptureChoice,
    request: CameraRequest,
    switches: &watch::Receiver<MediaSwitches>,
    pictures: &watch::Sender<Option<VideoFrame>>,
    opened: &std_mpsc::Sender<Opened>,
) {
    let black_interval = Duration::from_secs(1) / request.fps.max(1);
    let mut source: Option<Box<dyn VideoSource>> = None;
    if !switches.borrow().camera {
        // Not opened until it is turned on: no name yet.
        let _ = opened.send(Opened::Camera(in_use("", false, None)));
    }
    loop {
        if pictures.is_closed() {
            return;
        }
        if !switches.borrow().camera {
            source = None;
            thread::sleep(black_interval);
            let black = VideoFrame::black_i420(request.width, request.height, MediaTime::now());
            pictures.send_replace(Some(black));
            continue;
        }
        let camera = source.get_or_insert_with(|| {
            let (camera, used) = open_video(choice, request);
            let _ = opened.send(Opened::Camera(used));
            camera
        });
        match camera.next_frame() {
            Ok(picture) => {
                pictures.send_replace(Some(picture));
            }
            Err(why) => {
                // The device is gone: the pattern carries on, and the window says why.
                let (pattern, _) = synthetic_camera(request);
                let _ = opened.send(Opened::Camera(in_use(
                    &pattern.info().name,
                    true,
                    Some(&why),
                )));
                source = Some(pattern);
            }
        }
    }
}

fn run_microphone(
    choice: CaptureChoice,
    sound: &mpsc::Sender<AudioFrame>,
    opened: &std_mpsc::Sender<Opened>,
) {
    let tone = || -> Box<dyn AudioSource> {
        Box::new(SyntheticMicrophone::new(ToneShape::Steady { hz: 440.0 }))
    };
    let (mut source, why) = match choice {
        CaptureChoice::Devices => open_microphone(),
        CaptureChoice::Synthetic | CaptureChoice::ReceiveOnly => (tone(), None),
    };
    let _ = opened.send(Opened::Microphone(in_use(
        source.name(),
        source.synthetic(),
        why.as_ref(),
    )));
    loop {
        match source.next_frame() {
            Ok(frame) => match sound.try_send(frame) {
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                // Behind by half a second: this 10 ms is dropped rather than delaying the rest.
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            },
            Err(why) => {
                source = tone();
                let _ = opened.send(Opened::Microphone(in_use(source.name(), true, Some(&why))));
            }
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
        let mut feed = CaptureFeed::open(CaptureChoice::Synthetic, request(), switches, true).await;
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
    async fn devices_fall_back_to_synthetic_sources_and_say_why() {
        let switches = watch::channel(MediaSwitches::default()).1;
        let feed = CaptureFeed::open(CaptureChoice::Devices, request(), switches, true).await;
        let sources = feed.sources.borrow().clone();
        // On a machine with a camera and a microphone this checks the real path instead.
        for source in [&sources.camera, &sources.microphone] {
            assert!(!source.name.is_empty());
            assert_eq!(source.synthetic, source.reason.is_some(), "{source:?}");
            assert_eq!(source.problem.is_some(), source.reason.is_some());
        }
    }

    #[tokio::test]
    async fn camera_off_sends_black_and_on_again_reopens_the_camera() {
        let (switch, switches) = watch::channel(MediaSwitches::default());
        let mut feed = CaptureFeed::open(CaptureChoice::Synthetic, request(), switches, true).await;
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
        let mut feed = CaptureFeed::open(CaptureChoice::Synthetic, request(), switches, true).await;
        assert_eq!(feed.sources.borrow().camera.name, "");
        switch.send_modify(|s| s.camera = true);
        feed.sources.changed().await.unwrap();
        assert_eq!(feed.sources.borrow().camera.name, "Nexmile test pattern");
    }
}
