//! One isolated profile per site code under a profiles directory, and the
//! installation's device token (decision 15: one per installation, not per
//! profile). The desktop app keeps the session token in the OS keychain;
//! this headless store writes it to a file only the user can read.

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
    pub session_token: String,
    pub user_id: String,
    pub name: String,
    pub enable_download_effect: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
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
}

pub struct Profiles {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError + '_ {
    move |source| ProfileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file, readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ProfileError> {
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

impl Profiles {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ProfileError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(Self { root })
    }

    /// The installation's device token, made on first use.
    pub fn device_token(&self) -> Result<DeviceToken, ProfileError> {
        let path = self.root.join("device-token");
        match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| ProfileError::Damaged {
                path,
                detail: "not a UUID".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = DeviceToken::from_random_bytes(*uuid::Uuid::new_v4().as_bytes());
                write_private(&path, token.to_string().as_bytes())?;
                Ok(token)
            }
            Err(source) => Err(ProfileError::Io { path, source }),
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
        let path = self.dir(site).join("effect-settings.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ProfileError::Damaged {
                path,
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EffectSettings::default()),
            Err(source) => Err(ProfileError::Io { path, source }),
        }
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

    pub fn load(&self, site: &SiteCode) -> Result<Option<Profile>, ProfileError> {
        let path = self.dir(site).join("profile.json");
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| ProfileError::Damaged {
                        path,
                        detail: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ProfileError::Io { path, source }),
        }
    }

    pub fn save(&self, site: &SiteCode, profile: &Profile) -> Result<(), ProfileError> {
        let dir = self.dir(site);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let json = serde_json::to_vec_pretty(profile).expect("profiles serialize");
        write_private(&dir.join("profile.json"), &json)
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
        assert_eq!(profiles.load(&SiteCode::nexmile()).unwrap(), None);
        assert_eq!(profiles.list().unwrap(), vec![profile]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("newsite1/profile.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only the owner reads the session token");
        }
        fs::write(dir.join("newsite1/profile.json"), "{").unwrap();
        assert!(matches!(
            profiles.load(&site),
            Err(ProfileError::Damaged { .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }
}
