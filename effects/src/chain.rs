//! The effect chain on each outgoing frame, between capture and encoder:
//! wallpaper → face filter → mosaic → gifts. The mosaic comes after the face
//! filter so privacy wins over decoration; gifts are drawn last, on top.
//!
//! A chain is built from [`EffectSettings`] (what the user chose in the video
//! test, saved per profile) and the partner's `callOption` mask (§4.3.1: 1
//! face filter, 2 mosaic, 4 wallpaper); a disallowed effect stays off and a
//! [`Refusal`] says why, in words the UI shows. Building loads models, so it
//! happens off the capture thread; [`ChainSlot`] swaps the new chain in
//! between two frames, so switching never drops one.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};

use nexmile_core::wire::codes::CallOption;
use nexmile_media::convert::{Scaler, convert};
use nexmile_media::frame::{MediaTime, PixelFormat, VideoFrame};
use serde::{Deserialize, Serialize};

use crate::face::{FaceDetector, FaceTracker};
use crate::face_filter::{FaceFilter, FacePackage};
use crate::gift::GiftOverlay;
use crate::mosaic::{Mosaic, MosaicSettings};
use crate::wallpaper::{Background, Wallpaper};
use crate::working::working_picture;

/// What replaces the background, as saved in a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum WallpaperSetting {
    Blur,
    Colour {
        rgb: [u8; 3],
    },
    /// A PNG or JPEG file of the profile's effect files.
    Picture {
        path: PathBuf,
    },
}

/// The user's effect choices, saved per profile and applied to every call
/// and live until changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectSettings {
    pub wallpaper: Option<WallpaperSetting>,
    pub mosaic: Option<MosaicSettings>,
    /// The folder of a downloaded face-filter package.
    pub face_filter: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    FaceFilter,
    Mosaic,
    Wallpaper,
}

impl Effect {
    fn name_ja(self) -> &'static str {
        match self {
            Self::FaceFilter => "フェースフィルター",
            Self::Mosaic => "モザイク",
            Self::Wallpaper => "壁紙",
        }
    }

    fn option(self) -> CallOption {
        match self {
            Self::FaceFilter => CallOption::FACE_FILTER,
            Self::Mosaic => CallOption::MOSAIC,
            Self::Wallpaper => CallOption::WALLPAPER,
        }
    }
}

/// Why a chosen effect is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The partner's callOption does not allow it.
    NotAllowed(Effect),
    /// Its model, package or picture could not be loaded.
    Failed(Effect, String),
}

impl Refusal {
    /// What the UI shows beside the switched-off effect.
    pub fn message_ja(&self) -> String {
        match self {
            Self::NotAllowed(effect) => {
                format!("このサイトでは{}を使用できません。", effect.name_ja())
            }
            Self::Failed(effect, why) => format!("{}を使用できません（{why}）。", effect.name_ja()),
        }
    }
}

#[derive(Default)]
pub struct EffectChain {
    /// Detection shared by the face filter and the mosaic.
    faces: Option<(FaceDetector, FaceTracker)>,
    wallpaper: Option<Wallpaper>,
    face_filter: Option<FaceFilter>,
    mosaic: Option<Mosaic>,
    gifts: Vec<GiftOverlay>,
    scaler: Scaler,
    /// Detections so far: which of the picture's tiles the detector sees next.
    detect_turns: usize,
}

fn load_picture(path: &PathBuf) -> Result<VideoFrame, String> {
    let picture = image::open(path).map_err(|e| e.to_string())?.into_rgba8();
    let (w, h) = (picture.width() & !1, picture.height() & !1);
    let cropped = image::imageops::crop_imm(&picture, 0, 0, w, h).to_image();
    let rgba = VideoFrame::rgba(w, h, cropped.into_raw(), MediaTime(0));
    convert(&rgba, PixelFormat::I420).map_err(|e| e.to_string())
}

impl EffectChain {
    /// The chain for `settings` under the partner's `allowed` options. Slow
    /// (loads models): call it off the capture thread.
    pub fn build(settings: &EffectSettings, allowed: CallOption) -> (Self, Vec<Refusal>) {
        let mut chain = Self::default();
        let mut refusals = Vec::new();
        let mut permitted = |effect: Effect, chosen: bool| {
            if chosen && !allowed.contains(effect.option()) {
                refusals.push(Refusal::NotAllowed(effect));
                return false;
            }
            chosen
        };
        let wallpaper_on = permitted(Effect::Wallpaper, settings.wallpaper.is_some());
        let face_filter_on = permitted(Effect::FaceFilter, settings.face_filter.is_some());
        let mosaic_on = permitted(Effect::Mosaic, settings.mosaic.is_some());
        if let (true, Some(setting)) = (wallpaper_on, &settings.wallpaper) {
            let background = match setting {
                WallpaperSetting::Blur => Ok(Background::Blur),
                WallpaperSetting::Colour { rgb } => Ok(Background::Colour(*rgb)),
                WallpaperSetting::Picture { path } => load_picture(path).map(Background::Picture),
            };
            match background.and_then(|b| Wallpaper::new(b).map_err(|e| e.to_string())) {
                Ok(wallpaper) => chain.wallpaper = Some(wallpaper),
                Err(why) => refusals.push(Refusal::Failed(Effect::Wallpaper, why)),
            }
        }
        if let (true, Some(dir)) = (face_filter_on, &settings.face_filter) {
            match FacePackage::load(dir) {
                Ok(package) => chain.face_filter = Some(FaceFilter::new(package)),
                Err(why) => refusals.push(Refusal::Failed(Effect::FaceFilter, why.to_string())),
            }
        }
        if let (true, Some(mosaic)) = (mosaic_on, settings.mosaic) {
            chain.mosaic = Some(Mosaic::new(mosaic));
        }
        let needs_faces =
            chain.face_filter.is_some() || chain.mosaic.as_ref().is_some_and(Mosaic::needs_faces);
        if needs_faces {
            match FaceDetector::new() {
                Ok(detector) => chain.faces = Some((detector, FaceTracker::default())),
                Err(why) => {
                    // Without faces the mosaic cannot protect anyone: both go off, said.
                    if chain.face_filter.take().is_some() {
                        refusals.push(Refusal::Failed(Effect::FaceFilter, why.to_string()));
                    }
                    if chain.mosaic.take().is_some() {
                        refusals.push(Refusal::Failed(Effect::Mosaic, why.to_string()));
                    }
                }
            }
        }
        (chain, refusals)
    }

    /// Starts a gift animation on the outgoing picture.
    pub fn add_gift(&mut self, gift: GiftOverlay) {
        self.gifts.push(gift);
    }

    /// Applies every effect to an outgoing I420 frame. A failing effect
    /// leaves the frame as it was and is reported; the frame always goes on.
    pub fn process(&mut self, frame: &mut VideoFrame, now: MediaTime) -> Vec<String> {
        let mut errors = Vec::new();
        let now_us = i64::try_from(now.0).unwrap_or(i64::MAX);
        // Faces are found on the camera's own picture, before any effect.
        // Beside a wallpaper, only on the frames it does not segment, so no
        // frame runs both models: the tracker holds the faces one frame.
        let detect = self.wallpaper.as_ref().is_none_or(|w| !w.segments_next());
        // The working picture, made once for the wallpaper and the detector.
        // Where it cannot be made (not I420) each makes do without it.
        let work = (detect && self.faces.is_some()
            || self
                .wallpaper
                .as_ref()
                .is_some_and(Wallpaper::needs_working_picture))
        .then(|| working_picture(frame, &mut self.scaler).ok())
        .flatten();
        let faces = match &mut self.faces {
            Some((_, tracker)) if !detect => tracker.update(&[], now_us),
            Some((detector, tracker)) => {
                // The working picture serves if its tiles (squares of its
                // short side) still hold the detector's input.
                let seen = work
                    .as_ref()
                    .filter(|w| w.width.min(w.height) as usize >= FaceDetector::INPUT)
                    .unwrap_or(frame);
                self.detect_turns += 1;
                match detector.detect_turn(seen, self.detect_turns) {
                    Ok(found) => tracker.update(&found, now_us),
                    Err(e) => {
                        errors.push(e.to_string());
                        // Keep covering where faces were a moment ago.
                        tracker.update(&[], now_us)
                    }
                }
            }
            None => Vec::new(),
        };
        if let Some(wallpaper) = &mut self.wallpaper
            && let Err(e) = wallpaper.apply_with(frame, work.as_ref())
        {
            errors.push(e.to_string());
        }
        if let Some(filter) = &mut self.face_filter {
            filter.apply(frame, &faces);
        }
        if let Some(mosaic) = &self.mosaic
            && let Err(e) = mosaic.apply(frame, &faces)
        {
            errors.push(e.to_string());
        }
        self.gifts
            .retain_mut(|gift| match gift.composite(frame, now) {
                Ok(playing) => playing,
                Err(e) => {
                    errors.push(e.to_string());
                    false
                }
            });
        errors
    }
}

/// Where the capture thread's chain lives; a new chain sent through its
/// [`ChainSender`] takes over at the next frame, keeping the gifts in flight.
pub struct ChainSlot {
    chain: EffectChain,
    incoming: Receiver<EffectChain>,
}

pub type ChainSender = Sender<EffectChain>;

impl ChainSlot {
    pub fn new(chain: EffectChain) -> (Self, ChainSender) {
        let (tx, incoming) = mpsc::channel();
        (Self { chain, incoming }, tx)
    }

    /// No effect is on: the pictures go through unchanged.
    pub fn is_empty(&self) -> bool {
        let chain = &self.chain;
        chain.wallpaper.is_none()
            && chain.face_filter.is_none()
            && chain.mosaic.is_none()
            && chain.gifts.is_empty()
    }

    /// Starts a gift on the outgoing picture of whatever chain runs.
    pub fn add_gift(&mut self, gift: GiftOverlay) {
        self.chain.add_gift(gift);
    }

    pub fn process(&mut self, frame: &mut VideoFrame, now: MediaTime) -> Vec<String> {
        if let Some(mut newest) = self.incoming.try_iter().last() {
            newest.gifts.append(&mut self.chain.gifts);
            self.chain = newest;
        }
        self.chain.process(frame, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mosaic::MosaicArea;

    fn whole_frame_mosaic() -> EffectSettings {
        EffectSettings {
            mosaic: Some(MosaicSettings {
                area: MosaicArea::WholeFrame,
                ..MosaicSettings::default()
            }),
            ..EffectSettings::default()
        }
    }

    #[test]
    fn effects_the_partner_does_not_allow_stay_off_and_say_why() {
        let settings = EffectSettings {
            wallpaper: Some(WallpaperSetting::Colour { rgb: [0, 0, 0] }),
            face_filter: Some(PathBuf::from("/nonexistent")),
            ..whole_frame_mosaic()
        };
        let (chain, refusals) = EffectChain::build(&settings, CallOption::MOSAIC);
        assert!(chain.mosaic.is_some() && chain.wallpaper.is_none() && chain.face_filter.is_none());
        assert_eq!(
            refusals,
            [
                Refusal::NotAllowed(Effect::Wallpaper),
                Refusal::NotAllowed(Effect::FaceFilter)
            ]
        );
        assert_eq!(
            refusals[0].message_ja(),
            "このサイトでは壁紙を使用できません。"
        );
        // Allowed but broken: refused with the reason, the rest still runs.
        let (chain, refusals) =
            EffectChain::build(&settings, CallOption::FACE_FILTER | CallOption::MOSAIC);
        assert!(chain.mosaic.is_some());
        assert!(
            matches!(&refusals[..], [Refusal::NotAllowed(Effect::Wallpaper), Refusal::Failed(Effect::FaceFilter, why)] if why.contains("nonexistent"))
        );
    }

    #[test]
    fn settings_round_trip_for_the_profile() {
        let settings = EffectSettings {
            wallpaper: Some(WallpaperSetting::Picture {
                path: PathBuf::from("effects/beach.png"),
            }),
            face_filter: Some(PathBuf::from("effects/cat")),
            ..whole_frame_mosaic()
        };
        let json = serde_json::to_string(&settings).unwrap();
        assert!(json.contains(r#""kind":"picture""#), "{json}");
        assert_eq!(
            serde_json::from_str::<EffectSettings>(&json).unwrap(),
            settings
        );
        assert_eq!(
            serde_json::from_str::<EffectSettings>("{}").unwrap(),
            EffectSettings::default()
        );
    }

    #[test]
    fn switching_chains_mid_stream_drops_no_frame() {
        let (mut slot, sender) = ChainSlot::new(EffectChain::default());
        // The new chain is handed over at frame 50, however fast it was built.
        let (go, wait) = mpsc::channel::<()>();
        let mut builder = Some(std::thread::spawn(move || {
            let (chain, refusals) = EffectChain::build(&whole_frame_mosaic(), CallOption::all());
            assert!(refusals.is_empty());
            wait.recv().unwrap();
            sender.send(chain).unwrap();
        }));
        let mut out = Vec::new();
        for i in 0..200u64 {
            let mut frame = VideoFrame::black_i420(64, 64, MediaTime(i));
            frame.planes[0].data[0] = 255;
            assert!(slot.process(&mut frame, MediaTime(i)).is_empty());
            out.push(frame.planes[0].data[0]);
            if i == 50 {
                go.send(()).unwrap();
            }
            if i == 100 {
                builder.take().unwrap().join().unwrap();
            }
        }
        assert_eq!(out.len(), 200, "every frame came out");
        assert_eq!(out[0], 255, "before the switch: untouched");
        assert_ne!(out[199], 255, "after it: pixelated");
    }
}
