//! The app's side of the engine: which profile is shown, the link being
//! carried out, staying online for incoming calls, and the commands the
//! screens call. Everything a call does is `nexmile-client`'s; this file only
//! decides when to run it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexmile_client::app::{Client, EffectChoice, UserAction};
use nexmile_client::events::EngineEvent;
use nexmile_client::media_session::MediaSwitches;
use nexmile_client::profiles::{CallRecord, Profile};
use nexmile_core::applink::{AppLink, AppLinkAction, AppLinkParser, SiteCode, VideoSettingMode};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::keychain::SecretsKind;
use crate::video_feed::FeedAddress;

pub struct Engine {
    pub client: Arc<Client>,
    parser: AppLinkParser,
    /// The link being carried out (a call, a test, a registration).
    running: Mutex<Option<JoinHandle<()>>>,
    /// Online as the active profile's user, for incoming calls.
    listening: Mutex<Option<JoinHandle<()>>>,
    /// A link from outside waiting for the person's yes: any web page can
    /// open a link, so it must not ring, spend, film or log in unasked.
    awaiting_consent: Mutex<Option<AppLink>>,
    pub feed: FeedAddress,
    online: Arc<AtomicBool>,
    /// Links also arrive on the window's and D-Bus's threads, outside the runtime.
    runtime: tokio::runtime::Handle,
    secrets: SecretsKind,
}

/// What the home screen shows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub active: String,
    pub profiles: Vec<ProfileView>,
    pub recent_calls: Vec<CallRecord>,
    pub feed: FeedAddress,
    /// A link or call is being carried out.
    pub busy: bool,
    /// Online as the active profile's user (incoming calls reach this app).
    pub online: bool,
    /// Where the tokens are kept, for the home screen to say.
    pub secrets: SecretsKind,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    pub site: String,
    pub user_id: String,
    pub name: String,
    pub phone_number: Option<String>,
    pub enable_download_effect: bool,
}

impl From<Profile> for ProfileView {
    fn from(p: Profile) -> Self {
        Self {
            site: p.site,
            user_id: p.user_id,
            name: p.name,
            phone_number: p.phone_number,
            enable_download_effect: p.enable_download_effect,
        }
    }
}

/// The effect settings screen: what the site's files offer and what is chosen.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectCatalogue {
    /// Picture files under `wallpapers/`, by file name.
    pub wallpapers: Vec<CatalogueItem>,
    /// Face-filter packages under `face-filters/`, by folder name.
    pub face_filters: Vec<CatalogueItem>,
    pub chosen: EffectChoiceView,
    /// The site's effect files, where a live's gift pictures are found.
    pub dir: PathBuf,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueItem {
    pub id: String,
    pub label: String,
    /// A picture for the button, as a file the page loads through the asset protocol.
    pub preview: Option<PathBuf>,
}

/// Effect choices as the screens say them (see [`EffectChoice`]).
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EffectChoiceView {
    /// `blur`, `colour:#rrggbb` or `picture:wallpapers/<file>`.
    pub wallpaper: Option<String>,
    /// `faces` or `whole`.
    pub mosaic: Option<String>,
    pub face_filter: Option<String>,
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

impl Engine {
    pub fn new(
        client: Client,
        parser: AppLinkParser,
        feed: FeedAddress,
        online: Arc<AtomicBool>,
        runtime: tokio::runtime::Handle,
        secrets: SecretsKind,
    ) -> Self {
        Self {
            client: Arc::new(client),
            parser,
            running: Mutex::default(),
            listening: Mutex::default(),
            awaiting_consent: Mutex::default(),
            feed,
            online,
            runtime,
            secrets,
        }
    }

    fn busy(&self) -> bool {
        self.running
            .lock()
            .expect("running lock")
            .as_ref()
            .is_some_and(|task| !task.is_finished())
    }

    pub fn overview(&self) -> Result<Overview, String> {
        let profiles = &self.client.profiles;
        let active = profiles.active();
        Ok(Overview {
            active: active.as_str().to_owned(),
            profiles: profiles
                .list()
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(ProfileView::from)
                .collect(),
            recent_calls: profiles.recent_calls(&active).unwrap_or_default(),
            feed: self.feed.clone(),
            busy: self.busy(),
            online: self.online.load(Ordering::Relaxed),
            secrets: self.secrets,
        })
    }

    /// Stays online as the active profile's user, coming back after a
    /// dropped connection. Registers the built-in site on first use.
    pub fn listen(self: &Arc<Self>) {
        let site = self.client.profiles.active();
        let engine = Arc::clone(self);
        self.online.store(false, Ordering::Relaxed);
        let task = self.runtime.spawn(async move {
            let mut pause = Duration::from_secs(1);
            loop {
                engine.client.listen(&site, None).await;
                engine.client.events.emit(EngineEvent::Offline {
                    retry_in_sec: pause.as_secs(),
                });
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        });
        if let Some(old) = self.listening.lock().expect("listening lock").replace(task) {
            old.abort();
        }
    }

    /// Whether a page address is one of this app's links (else it is the browser's).
    pub fn is_app_link(&self, target: &str) -> bool {
        self.parser.claims(target)
    }

    /// Parses and carries out one app link; a bad link is told to the
    /// screens with what is wrong.
    pub fn open_link(self: &Arc<Self>, link: &str) {
        let parsed = match self.parser.parse(link) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.client.events.emit(EngineEvent::LinkInvalid {
                    link: link.to_owned(),
                    code: e.code().to_owned(),
                    parameter: e.parameter().map(str::to_owned),
                    message: e.to_string(),
                });
                return;
            }
        };
        if self.busy() {
            self.client.events.emit(EngineEvent::LinkBusy {
                function: parsed.action.function().spec_name().to_owned(),
            });
            return;
        }
        if self.needs_consent(&parsed) {
            let (callee, video) = match &parsed.action {
                AppLinkAction::MakeCall {
                    callee_id, video, ..
                } => (Some(callee_id.clone()), *video),
                _ => (None, false),
            };
            self.client.events.emit(EngineEvent::LinkConfirm {
                function: parsed.action.function().spec_name().to_owned(),
                site: parsed.site.as_str().to_owned(),
                callee,
                video,
            });
            *self.awaiting_consent.lock().expect("consent lock") = Some(parsed);
            return;
        }
        self.run(parsed);
    }

    /// Whether a link from outside is asked about first: it rings someone,
    /// may spend points (a paid live bills from the start), turns on the
    /// camera for a live, or replaces a registration the app already has.
    /// The video test and effect downloads stay on this machine and run at once.
    fn needs_consent(&self, link: &AppLink) -> bool {
        match link.action {
            AppLinkAction::MakeCall { .. }
            | AppLinkAction::BroadcastLive { .. }
            | AppLinkAction::ViewLive { .. } => true,
            AppLinkAction::ActivateExUser { .. } => {
                !matches!(self.client.profiles.load(&link.site), Ok(None))
            }
            AppLinkAction::VideoSetting { .. } => false,
        }
    }

    /// The person's answer to `link.confirm`: yes carries the link out, no
    /// forgets it. A second link asked about in between replaced the first.
    pub fn confirm_link(self: &Arc<Self>, accepted: bool) {
        let Some(link) = self.awaiting_consent.lock().expect("consent lock").take() else {
            return;
        };
        if !accepted {
            self.client.events.emit(EngineEvent::LinkDeclined {
                function: link.action.function().spec_name().to_owned(),
                site: link.site.as_str().to_owned(),
            });
        } else if self.busy() {
            self.client.events.emit(EngineEvent::LinkBusy {
                function: link.action.function().spec_name().to_owned(),
            });
        } else {
            self.run(link);
        }
    }

    fn run(self: &Arc<Self>, link: AppLink) {
        let engine = Arc::clone(self);
        self.client.events.emit(EngineEvent::LinkOpened {
            function: link.action.function().spec_name().to_owned(),
            site: link.site.as_str().to_owned(),
            download: matches!(
                link.action,
                AppLinkAction::VideoSetting {
                    mode: VideoSettingMode::DownloadEffects
                }
            ),
            return_url: link.return_url.as_ref().map(ToString::to_string),
        });
        let task = self.runtime.spawn(async move {
            let outcome = engine.client.open(&link, None).await;
            let registered = matches!(link.action, AppLinkAction::ActivateExUser { .. });
            if registered && outcome == nexmile_client::app::Outcome::Done {
                // A new site's profile becomes the one shown and listened on.
                let _ = engine.client.profiles.set_active(&link.site);
                engine.listen();
            }
            engine.client.events.emit(EngineEvent::LinkDone {
                function: link.action.function().spec_name().to_owned(),
                outcome,
            });
        });
        *self.running.lock().expect("running lock") = Some(task);
    }

    /// The video test of the active profile, from the home screen.
    pub fn video_test(self: &Arc<Self>) {
        let link = AppLink {
            site: self.client.profiles.active(),
            unique_id: None,
            allow_web: false,
            return_url: None,
            action: AppLinkAction::VideoSetting {
                mode: VideoSettingMode::LoopbackTest,
            },
        };
        if !self.busy() {
            self.run(link);
        }
    }

    pub fn act(&self, action: UserAction) {
        let _ = self.client.actions.send(action);
    }

    pub fn switch_profile(self: &Arc<Self>, site: &str) -> Result<(), String> {
        let site = SiteCode::new(site).map_err(|e| e.to_string())?;
        self.client
            .profiles
            .set_active(&site)
            .map_err(|e| e.to_string())?;
        self.listen();
        Ok(())
    }

    pub fn remove_profile(self: &Arc<Self>, site: &str) -> Result<(), String> {
        let site = SiteCode::new(site).map_err(|e| e.to_string())?;
        let was_active = self.client.profiles.active() == site;
        self.client
            .profiles
            .remove(&site)
            .map_err(|e| e.to_string())?;
        if was_active {
            self.listen();
        }
        Ok(())
    }

    pub fn set_switches(&self, switches: MediaSwitches) {
        self.client.switches.send_replace(switches);
    }

    /// The active profile's effect files and chosen effects.
    pub fn effect_catalogue(&self) -> EffectCatalogue {
        let site = self.client.profiles.active();
        let dir = self.client.profiles.effects_dir(&site);
        let wallpapers = files_in(&dir.join("wallpapers"))
            .into_iter()
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "png" || e == "jpg" || e == "jpeg")
            })
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?.to_owned();
                Some(CatalogueItem {
                    id: format!("picture:wallpapers/{name}"),
                    label: path.file_stem()?.to_str()?.to_owned(),
                    preview: Some(path),
                })
            })
            .collect();
        let face_filters = files_in(&dir.join("face-filters"))
            .into_iter()
            .filter(|p| p.join("manifest.json").is_file())
            .filter_map(|folder| {
                let id = folder.file_name()?.to_str()?.to_owned();
                let label = std::fs::read(folder.join("manifest.json"))
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                    .and_then(|m| m["name"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| id.clone());
                let preview = files_in(&folder)
                    .into_iter()
                    .find(|p| p.extension().is_some_and(|e| e == "png"));
                Some(CatalogueItem { id, label, preview })
            })
            .collect();
        EffectCatalogue {
            wallpapers,
            face_filters,
            chosen: self.chosen_effects(&site, &dir),
            dir,
        }
    }

    fn chosen_effects(&self, site: &SiteCode, dir: &Path) -> EffectChoiceView {
        use nexmile_effects::chain::WallpaperSetting;
        use nexmile_effects::mosaic::MosaicArea;
        let Ok(settings) = self.client.profiles.effect_settings(site) else {
            return EffectChoiceView::default();
        };
        EffectChoiceView {
            wallpaper: settings.wallpaper.map(|w| match w {
                WallpaperSetting::Blur => "blur".to_owned(),
                WallpaperSetting::Colour { rgb: [r, g, b] } => {
                    format!("colour:#{r:02x}{g:02x}{b:02x}")
                }
                WallpaperSetting::Picture { path } => format!(
                    "picture:{}",
                    path.strip_prefix(dir).unwrap_or(&path).display()
                ),
            }),
            mosaic: settings.mosaic.map(|m| match m.area {
                MosaicArea::Faces => "faces".to_owned(),
                MosaicArea::WholeFrame => "whole".to_owned(),
            }),
            face_filter: settings
                .face_filter
                .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned)),
        }
    }

    /// New effect choices: saved for later calls, and applied at once to a
    /// running test or call.
    pub fn set_effects(&self, choice: EffectChoiceView) -> Result<(), String> {
        let site = self.client.profiles.active();
        let none = choice == EffectChoiceView::default();
        let choice = EffectChoice {
            wallpaper: choice.wallpaper,
            mosaic: choice.mosaic,
            face_filter: choice.face_filter,
            none,
        };
        let settings = self
            .client
            .effect_settings(&site, &choice)?
            .unwrap_or_default();
        self.client
            .profiles
            .save_effect_settings(&site, &settings)
            .map_err(|e| e.to_string())?;
        self.act(UserAction::EffectsChanged);
        Ok(())
    }
}
