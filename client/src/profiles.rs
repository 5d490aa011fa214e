//! One isolated profile per site code under a profiles directory, and the
//! installation's device token (decision 15: one per installation, not per
//! profile). Secrets (the device token, each site's session token) go to a
//! [`SecretStore`]: the desktop app's is the OS keychain; the headless
//! default writes files only the user can read.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use nexmile_core::applink::SiteCode;
use nexmile_core::device::DeviceToken;
use nexmile_effects::chain::EffectSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub site: String,
    /// Kept in the secret store, never in `profile.json` (older files that
    /// still hold it are moved over when read).
    #[serde(default, skip_serializing)]
    pub session_token: String,
    pub user_id: String,
    pub name: String,
    pub enable_download_effect: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// The devices and sound processing chosen in the settings, remembered per profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceSettings {
    /// By name; `None` is the system's default.
    pub camera: Option<String>,
    pub microphone: Option<String>,
    pub speaker: Option<String>,
    pub noise_suppression: bool,
    pub gain_control: bool,
}

impl Default for DeviceSettings {
    /// The system's devices, with noise suppression and gain control on.
    fn default() -> Self {
        Self {
            camera: None,
            microphone: None,
            speaker: None,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

/// One finished call in a profile's history (the home screen's recent calls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// When it ended, as Unix seconds.
    pub ended_at: u64,
    pub outgoing: bool,
    pub peer_name: String,
    pub video: bool,
    /// Seconds connected (0: never connected).
    pub talk_sec: u64,
    /// The terminate reason code of §4.3.6.
    pub reason: i32,
}

/// How many calls a profile remembers.
const HISTORY_LIMIT: usize = 200;

/// Where secrets live, by name (`device-token`, `<site>/session-token`).
pub trait SecretStore: Send + Sync {
    fn get(&self, name: &str) -> Result<Option<String>, String>;
    fn set(&self, name: &str, value: &str) -> Result<(), String>;
    /// Forgets `name`; forgetting what is not there is no error.
    fn delete(&self, name: &str) -> Result<(), String>;
}

/// The headless store: one owner-only file per secret under `secrets/`.
pub struct FileSecrets {
    dir: PathBuf,
}

impl FileSecrets {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        // Names are ours ("site/session-token"): flattened, never a path.
        self.dir.join(name.replace('/', "."))
    }
}

impl SecretStore for FileSecrets {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        match fs::read_to_string(self.path(name)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn set(&self, name: &str, value: &str) -> Result<(), String> {
        create_private_dir(&self.dir).map_err(|e| e.to_string())?;
        write_private(&self.path(name), value.as_bytes()).map_err(|e| e.to_string())
    }

    fn delete(&self, name: &str) -> Result<(), String> {
        match fs::remove_file(self.path(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn session_secret(site: &SiteCode) -> String {
    format!("{}/session-token", site.as_str())
}

const DEVICE_SECRET: &str = "device-token";

/// The built-in site's registration secret: kept when its profile is
/// removed, so that registering again keeps the same app phone number.
fn registration_secret(site: &SiteCode) -> String {
    format!("{}/device-secret", site.as_str())
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged: {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("the secret store failed: {0}")]
    Secrets(String),
}

pub struct Profiles {
    root: PathBuf,
    secrets: Box<dyn SecretStore>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError + '_ {
    move |source| ProfileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file, readable by the owner only.
/// Writes a file only its owner can read (0600), whole or not at all.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ProfileError> {
    let temporary = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(io(&temporary))?;
    file.write_all(bytes).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    fs::rename(&temporary, path).map_err(io(path))
}

/// A folder of secrets only its owner can enter (0700), made if missing and
/// narrowed if it was made wider.
pub fn create_private_dir(dir: &Path) -> Result<(), ProfileError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// A JSON file of a profile: `None` when it does not exist yet.
fn read_json<T: serde::de::DeserializeOwned>(path: PathBuf) -> Result<Option<T>, ProfileError> {
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ProfileError::Damaged {
                path,
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProfileError::Io { path, source }),
    }
}

impl Profiles {
    /// Profiles under `root` with their secrets in owner-only files beside them.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ProfileError> {
        let root = root.into();
        let secrets = FileSecrets::new(root.join("secrets"));
        Self::with_secrets(root, Box::new(secrets))
    }

    pub fn with_secrets(
        root: impl Into<PathBuf>,
        secrets: Box<dyn SecretStore>,
    ) -> Result<Self, ProfileError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(Self { root, secrets })
    }

    /// The installation's device token, made on first use.
    pub fn device_token(&self) -> Result<DeviceToken, ProfileError> {
        match self
            .secrets
            .get(DEVICE_SECRET)
            .map_err(ProfileError::Secrets)?
        {
            Some(text) => text.trim().parse().map_err(|_| ProfileError::Damaged {
                path: self.root.join("secrets"),
                detail: "the device token is not a UUID".into(),
            }),
            None => {
                let token = DeviceToken::from_random_bytes(*uuid::Uuid::new_v4().as_bytes());
                self.secrets
                    .set(DEVICE_SECRET, &token.to_string())
                    .map_err(ProfileError::Secrets)?;
                Ok(token)
            }
        }
    }

    fn dir(&self, site: &SiteCode) -> PathBuf {
        self.root.join(site.as_str())
    }

    /// Where the site's effect files are kept (inside its profile, so they go with it).
    pub fn effects_dir(&self, site: &SiteCode) -> PathBuf {
        self.dir(site).join("effects")
    }

    /// The effects chosen in the video test, applied to every later call (none at first).
    pub fn effect_settings(&self, site: &SiteCode) -> Result<EffectSettings, ProfileError> {
        Ok(read_json(self.dir(site).join("effect-settings.json"))?.unwrap_or_default())
    }

    pub fn save_effect_settings(
        &self,
        site: &SiteCode,
        settings: &EffectSettings,
    ) -> Result<(), ProfileError> {
        let dir = self.dir(site);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let json = serde_json::to_vec_pretty(settings).expect("settings serialize");
        write_private(&dir.join("effect-settings.json"), &json)
    }

    /// The devices chosen for this profile (the system's defaults at first).
    pub fn device_settings(&self, site: &SiteCode) -> Result<DeviceSettings, ProfileError> {
        Ok(read_json(self.dir(site).join("device-settings.json"))?.unwrap_or_default())
    }

    pub fn save_device_settings(
        &self,
        site: &SiteCode,
        settings: &DeviceSettings,
    ) -> Result<(), ProfileError> {
        let dir = self.dir(site);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let json = serde_json::to_vec_pretty(settings).expect("settings serialize");
        write_private(&dir.join("device-settings.json"), &json)
    }

    pub fn load(&self, site: &SiteCode) -> Result<Option<Profile>, ProfileError> {
        let Some(mut profile) = read_json::<Profile>(self.dir(site).join("profile.json"))? else {
            return Ok(None);
        };
        let stored = self
            .secrets
            .get(&session_secret(site))
            .map_err(ProfileError::Secrets)?;
        match stored {
            Some(token) => profile.session_token = token,
            // An older profile.json with the token inside: move it out.
            None if !profile.session_token.is_empty() => self.save(site, &profile)?,
            None => {}
        }
        Ok(Some(profile))
    }

    pub fn save(&self, site: &SiteCode, profile: &Profile) -> Result<(), ProfileError> {
        let dir = self.dir(site);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        self.secrets
            .set(&session_secret(site), &profile.session_token)
            .map_err(ProfileError::Secrets)?;
        let json = serde_json::to_vec_pretty(profile).expect("profiles serialize");
        write_private(&dir.join("profile.json"), &json)
    }

    /// The secret the server bound this installation's registration at `site` to.
    pub fn registration_secret(&self, site: &SiteCode) -> Result<Option<String>, ProfileError> {
        self.secrets
            .get(&registration_secret(site))
            .map_err(ProfileError::Secrets)
    }

    pub fn save_registration_secret(
        &self,
        site: &SiteCode,
        secret: &str,
    ) -> Result<(), ProfileError> {
        self.secrets
            .set(&registration_secret(site), secret)
            .map_err(ProfileError::Secrets)
    }

    /// Forgets a site: its profile, settings, history and effect files.
    pub fn remove(&self, site: &SiteCode) -> Result<(), ProfileError> {
        self.secrets
            .delete(&session_secret(site))
            .map_err(ProfileError::Secrets)?;
        let dir = self.dir(site);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ProfileError::Io { path: dir, source }),
        }
    }

    /// The site the app shows and listens as; the built-in site at first.
    pub fn active(&self) -> SiteCode {
        fs::read_to_string(self.root.join("active-site"))
            .ok()
            .and_then(|text| SiteCode::new(text.trim()).ok())
            .filter(|site| self.dir(site).join("profile.json").exists())
            .unwrap_or_else(SiteCode::nexmile)
    }

    pub fn set_active(&self, site: &SiteCode) -> Result<(), ProfileError> {
        write_private(&self.root.join("active-site"), site.as_str().as_bytes())
    }

    /// Adds a finished call to the site's history, keeping the newest.
    pub fn record_call(&self, site: &SiteCode, record: &CallRecord) -> Result<(), ProfileError> {
        let mut history = self.recent_calls(site)?;
        history.insert(0, record.clone());
        history.truncate(HISTORY_LIMIT);
        let dir = self.dir(site);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let json = serde_json::to_vec_pretty(&history).expect("history serializes");
        write_private(&dir.join("history.json"), &json)
    }

    /// The site's calls, newest first.
    pub fn recent_calls(&self, site: &SiteCode) -> Result<Vec<CallRecord>, ProfileError> {
        Ok(read_json(self.dir(site).join("history.json"))?.unwrap_or_default())
    }

    /// Every profile, by site code.
    pub fn list(&self) -> Result<Vec<Profile>, ProfileError> {
        let mut profiles = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io(&self.root))? {
            let entry = entry.map_err(io(&self.root))?;
            // The device token sits beside the site folders.
            if !entry.file_type().map_err(io(&self.root))?.is_dir() {
                continue;
            }
            let Some(site) = entry
                .file_name()
                .to_str()
                .and_then(|name| SiteCode::new(name).ok())
            else {
                continue;
            };
            if let Some(profile) = self.load(&site)? {
                profiles.push(profile);
            }
        }
        profiles.sort_by(|a, b| a.site.cmp(&b.site));
        Ok(profiles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choices_are_remembered_per_profile() {
        let dir = std::env::temp_dir().join(format!("nexmile-profiles-{}", uuid::Uuid::new_v4()));
        let profiles = Profiles::open(&dir).unwrap();
        let (one, two) = (
            SiteCode::new("newsite1").unwrap(),
            SiteCode::new("othersite").unwrap(),
        );
        let fresh = profiles.device_settings(&one).unwrap();
        assert_eq!(fresh, DeviceSettings::default());
        assert!(
            fresh.noise_suppression && fresh.gain_control,
            "on by default"
        );
        let chosen = DeviceSettings {
            microphone: Some("USB headset".into()),
            speaker: Some("USB headset".into()),
            gain_control: false,
            ..DeviceSettings::default()
        };
        profiles.save_device_settings(&one, &chosen).unwrap();
        assert_eq!(profiles.device_settings(&one).unwrap(), chosen);
        assert_eq!(
            profiles.device_settings(&two).unwrap(),
            DeviceSettings::default()
        );
        // A file from an older version with fewer fields keeps the defaults for the rest.
        fs::write(
            dir.join("othersite/device-settings.json"),
            r#"{"camera":"cam"}"#,
        )
        .or_else(|_| {
            fs::create_dir_all(dir.join("othersite"))?;
            fs::write(
                dir.join("othersite/device-settings.json"),
                r#"{"camera":"cam"}"#,
            )
        })
        .unwrap();
        let older = profiles.device_settings(&two).unwrap();
        assert_eq!(older.camera.as_deref(), Some("cam"));
        assert!(older.noise_suppression);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn profiles_are_separate_per_site_and_the_device_token_is_shared() {
        let dir = std::env::temp_dir().join(format!("nexmile-profiles-{}", uuid::Uuid::new_v4()));
        let profiles = Profiles::open(&dir).unwrap();
        let token = profiles.device_token().unwrap();
        assert_eq!(profiles.device_token().unwrap(), token);
        let site = SiteCode::new("newsite1").unwrap();
        assert_eq!(profiles.load(&site).unwrap(), None);
        let profile = Profile {
            site: "newsite1".into(),
            session_token: "s".into(),
            user_id: "hanako".into(),
            name: "山田花子".into(),
            enable_download_effect: true,
            phone_number: None,
        };
        profiles.save(&site, &profile).unwrap();
        assert_eq!(profiles.load(&site).unwrap(), Some(profile.clone()));
        let on_disk = fs::read_to_string(dir.join("newsite1/profile.json")).unwrap();
        assert!(!on_disk.contains("session_token"), "{on_disk}");
        // A profile.json of an older version, token inside, is moved over.
        fs::write(
            dir.join("newsite1/profile.json"),
            r#"{"site":"newsite1","session_token":"old","user_id":"hanako","name":"山田花子","enable_download_effect":true}"#,
        )
        .unwrap();
        profiles.secrets.delete("newsite1/session-token").unwrap();
        assert_eq!(profiles.load(&site).unwrap().unwrap().session_token, "old");
        let on_disk = fs::read_to_string(dir.join("newsite1/profile.json")).unwrap();
        assert!(!on_disk.contains("old"), "{on_disk}");
        assert_eq!(
            profiles
                .secrets
                .get("newsite1/session-token")
                .unwrap()
                .as_deref(),
            Some("old")
        );
        profiles.save(&site, &profile).unwrap();
        assert_eq!(profiles.load(&SiteCode::nexmile()).unwrap(), None);
        assert_eq!(profiles.list().unwrap(), vec![profile]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("secrets/newsite1.session-token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only the owner reads the session token");
        }
        assert_eq!(profiles.active(), SiteCode::nexmile());
        profiles.set_active(&site).unwrap();
        assert_eq!(profiles.active(), site);
        let record = CallRecord {
            ended_at: 1_700_000_000,
            outgoing: true,
            peer_name: "airi".into(),
            video: true,
            talk_sec: 20,
            reason: 1,
        };
        profiles.record_call(&site, &record).unwrap();
        assert_eq!(profiles.recent_calls(&site).unwrap(), vec![record]);
        assert!(
            profiles
                .recent_calls(&SiteCode::nexmile())
                .unwrap()
                .is_empty()
        );
        fs::write(dir.join("newsite1/profile.json"), "{").unwrap();
        assert!(matches!(
            profiles.load(&site),
            Err(ProfileError::Damaged { .. })
        ));
        profiles.remove(&site).unwrap();
        assert!(!dir.join("newsite1").exists());
        assert_eq!(
            profiles.secrets.get("newsite1/session-token").unwrap(),
            None
        );
        assert_eq!(
            profiles.active(),
            SiteCode::nexmile(),
            "a removed site is no longer active"
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
