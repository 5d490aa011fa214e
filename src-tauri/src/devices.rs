//! The settings' device pickers: the cameras, microphones and speakers
//! there are, the profile's choice of them, and the speaker test sound.

use std::thread;
use std::time::Duration;

use nexmile_client::profiles::{DeviceSettings, Profiles};
use nexmile_media::capture::list_cameras;
use nexmile_media::frame::AudioFrame;
use nexmile_media::speaker::{Speaker, list_microphones, list_speakers};
use serde::Serialize;

/// What the pickers offer, and what the active profile chose.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceList {
    pub cameras: Vec<String>,
    pub microphones: Vec<String>,
    pub speakers: Vec<String>,
    pub chosen: DeviceSettings,
}

pub fn list(profiles: &Profiles) -> DeviceList {
    DeviceList {
        cameras: list_cameras().into_iter().map(|c| c.name).collect(),
        microphones: list_microphones(),
        speakers: list_speakers(),
        chosen: profiles
            .device_settings(&profiles.active())
            .unwrap_or_default(),
    }
}

pub fn choose(profiles: &Profiles, settings: &DeviceSettings) -> Result<(), String> {
    profiles
        .save_device_settings(&profiles.active(), settings)
        .map_err(|e| e.to_string())
}

/// A two-note chime (E6 then C6, fading), 48 kHz mono.
fn chime() -> Vec<i16> {
    let rate = f64::from(AudioFrame::RATE);
    [1318.5, 1046.5]
        .iter()
        .flat_map(|hz| {
            (0..(rate * 0.45) as usize).map(move |i| {
                let t = i as f64 / rate;
                let fade = (-t * 6.0).exp() * (t * 400.0).min(1.0);
                ((t * hz * std::f64::consts::TAU).sin() * fade * 0.4 * 32767.0) as i16
            })
        })
        .collect()
}

/// Plays the chime on the chosen speaker (the default for `None`); says
/// which speaker played it, or why none could.
pub fn test_sound(speaker: Option<&str>) -> Result<String, String> {
    let mut device = Speaker::open(speaker).map_err(|e| e.to_string())?;
    let name = device.name().to_owned();
    thread::Builder::new()
        .name("speaker-test".into())
        .spawn(move || {
            for piece in chime().chunks(AudioFrame::SAMPLES_PER_10MS * 2) {
                while device.queued() > Duration::from_millis(60) {
                    thread::sleep(Duration::from_millis(5));
                }
                device.play(piece);
            }
            // Let the device play what is queued before it is closed.
            while device.queued() > Duration::ZERO {
                thread::sleep(Duration::from_millis(10));
            }
            thread::sleep(Duration::from_millis(100));
        })
        .map_err(|e| e.to_string())?;
    Ok(name)
}
