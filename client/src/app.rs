//! The engine: app links carried out against a server, each step told as an
//! [`EngineEvent`], the user's actions taken as [`UserAction`]s.

use std::net::IpAddr;
use std::sync::Arc;

use nexmile_core::applink::{AppLink, AppLinkAction, SiteCode, VideoSettingMode};
use nexmile_core::effects::is_contained_path;
use nexmile_core::signal::{
    ActivateReply, ActivateRequest, ClientMessage, DeviceInfo, ServerMessage,
};
use nexmile_core::wire::codes::{OsType, TerminateReason};
use nexmile_media::transport::{CandidateMode, Peer, PeerConfig};
use tokio::sync::{broadcast, mpsc, watch};

use nexmile_core::wire::codes::CallOption;
use nexmile_effects::chain::{EffectChain, EffectSettings, Refusal, WallpaperSetting};
use nexmile_effects::mosaic::{MosaicArea, MosaicSettings};

use crate::capture_feed::CaptureChoice;
use crate::effects_sync::EffectSync;
use crate::events::EngineEvent;
pub use crate::events::Outcome;
use crate::media_session::{Display, MediaSession, MediaSwitches, SessionIo};
use crate::profiles::{CallRecord, Profile, Profiles};
use crate::server_url::ServerUrl;
use crate::signalling::{Signalling, activate};
use nexmile_media::sound_out::SoundOutput;

pub struct Client {
    pub server: ServerUrl,
    pub profiles: Profiles,
    /// Addresses for media (ICE host candidates); empty = every interface.
    pub media_bind: Vec<IpAddr>,
    /// Offer RTX for video (see `PeerConfig::retransmission`).
    pub retransmission: bool,
    pub video_size: (u32, u32),
    /// Where each step is told: printed lines (cli) or the window's events.
    pub events: Arc<dyn EventSink>,
    /// What the user does while a call or test runs (a window's buttons).
    pub actions: broadcast::Sender<UserAction>,
    /// Where a window shows the pictures; `None` headless.
    pub display: Option<Arc<Display>>,
    /// Microphone and camera on or off, read by every media session.
    pub switches: watch::Sender<MediaSwitches>,
    /// What the device calls itself to the server.
    pub device_name: String,
    /// The camera and microphone, or the measurable test pattern and tone.
    pub capture: CaptureChoice,
}

impl Client {
    /// A client with no window: events printed, no user actions.
    pub fn headless(server: ServerUrl, profiles: Profiles, media_bind: Vec<IpAddr>) -> Self {
        Self {
            server,
            profiles,
            media_bind,
            retransmission: true,
            video_size: (640, 360),
            events: Arc::new(PrintedEvents),
            actions: broadcast::channel(16).0,
            display: None,
            switches: watch::channel(MediaSwitches::default()).0,
            device_name: "nexmile-cli".into(),
            capture: CaptureChoice::Synthetic,
        }
    }
}

/// Receives each step of what the client does.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: EngineEvent);
}

/// The headless client's events: one JSON object per line on stdout.
pub struct PrintedEvents;

impl EventSink for PrintedEvents {
    fn emit(&self, event: EngineEvent) {
        print_event(&event);
    }
}

/// Prints one event line.
pub fn print_event(event: &impl serde::Serialize) {
    match serde_json::to_string(event) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("nexmile-cli: an event could not be written: {e}"),
    }
}

/// A user's action on the running call or video test.
#[derive(Debug, Clone, PartialEq)]
pub enum UserAction {
    Answer,
    Decline,
    /// Hang up a call, give up a ringing one, or end the video test.
    Hangup,
    /// The profile's effect choices changed (the sender saved them): the
    /// running test or call applies them from the next picture.
    EffectsChanged,
    /// The broadcaster's start button.
    StartLive,
    /// A comment written in a live.
    Comment(String),
    /// A stamp or gift of the site's catalogue sent in a live.
    SendItem {
        category: String,
        item_no: String,
    },
    /// The broadcaster makes the live paid at this price per unit.
    PaidSwitch(u32),
    /// The broadcaster removes the viewer who is this user.
    RemoveViewer(String),
    /// The viewer's favourite button.
    Favorite(bool),
    /// The viewer buys points for this amount (one of the live's quickPayments).
    Pay(u32),
}

/// The effects a user chooses, as the command line says them.
#[derive(Debug, Clone, Default)]
pub struct EffectChoice {
    /// `blur`, `colour:#rrggbb` or `picture:<file of the site's effects>`.
    pub wallpaper: Option<String>,
    /// `faces` or `whole`.
    pub mosaic: Option<String>,
    /// A face-filter package of the site's effects, by folder name.
    pub face_filter: Option<String>,
    /// Switch every effect off.
    pub none: bool,
}

/// Effects the video test may preview: everything the app has. A call then
/// applies what its partner's option mask allows.
pub(crate) const PREVIEW_OPTIONS: CallOption = CallOption::FACE_FILTER
    .union(CallOption::MOSAIC)
    .union(CallOption::WALLPAPER);

impl Client {
    fn emit(&self, event: EngineEvent) {
        self.events.emit(event);
    }

    pub(crate) fn refused(&self, message: &str) -> Outcome {
        self.emit(EngineEvent::Refused {
            message: message.to_owned(),
        });
        Outcome::Refused
    }

    fn device(&self) -> Result<DeviceInfo, String> {
        Ok(DeviceInfo {
            device_token: self.profiles.device_token().map_err(|e| e.to_string())?,
            app_version: "01.00.00".into(),
            // The spec knows Android, iOS and the browser; a headless client is the browser's kin.
            os_type: OsType::Browser,
            device_name: self.device_name.clone(),
            os_version: std::env::consts::OS.into(),
        })
    }

    /// Carries out one app link to its end. `effects`: for videoSetting,
    /// new effect choices to save in the profile (`None`: keep).
    pub async fn open(&self, link: &AppLink, effects: Option<EffectSettings>) -> Outcome {
        match &link.action {
            AppLinkAction::ActivateExUser {
                credentials,
                named_user,
            } => {
                self.activate(
                    &link.site,
                    link.unique_id.clone(),
                    credentials.as_ref(),
                    named_user.as_deref(),
                )
                .await
            }
            AppLinkAction::MakeCall {
                callee_id,
                video,
                caller_sub_id,
                callee_sub_id,
            } => {
                let request = ClientMessage::MakeCall {
                    callee_id: callee_id.clone(),
                    video: *video,
                    caller_sub_id: caller_sub_id.clone(),
                    callee_sub_id: callee_sub_id.clone(),
                };
                self.call(
                    &link.site,
                    request,
                    link.return_url.as_ref().map(ToString::to_string),
                )
                .await
            }
            AppLinkAction::VideoSetting {
                mode: VideoSettingMode::DownloadEffects,
            } => self.sync_effects(&link.site).await,
            AppLinkAction::VideoSetting {
                mode: VideoSettingMode::LoopbackTest,
            } => self.video_test(&link.site, effects).await,
            AppLinkAction::BroadcastLive { link_id } => self.broadcast(&link.site, link_id).await,
            AppLinkAction::ViewLive {
                live_token,
                link_id,
            } => self.view(&link.site, live_token, link_id).await,
        }
    }

    async fn activate(
        &self,
        site: &SiteCode,
        unique_id: Option<String>,
        credentials: Option<&nexmile_core::applink::Credentials>,
        named_user: Option<&str>,
    ) -> Outcome {
        let device = match self.device() {
            Ok(device) => device,
            Err(e) => return self.refused(&e),
        };
        let device_secret = match self.profiles.registration_secret(site) {
            Ok(secret) => secret.map(nexmile_core::secret::Secret::new),
            Err(e) => return self.refused(&e.to_string()),
        };
        let request = ActivateRequest {
            site: site.as_str().to_owned(),
            device,
            unique_id,
            user_id: credentials
                .map(|c| c.user.clone())
                .or(named_user.map(str::to_owned)),
            user_pw: credentials.map(|c| c.pass.clone()),
            device_secret,
        };
        match activate(&self.server, &request).await {
            Ok(ActivateReply::Activated {
                site,
                session_token,
                user_id,
                name,
                enable_download_effect,
                phone_number,
                device_secret,
            }) => {
                let profile = Profile {
                    site: site.clone(),
                    session_token,
                    user_id,
                    name,
                    enable_download_effect,
                    phone_number,
                };
                let code = SiteCode::new(&site).unwrap_or_else(|_| SiteCode::nexmile());
                // The secret first: a profile without it could never register again.
                if let Some(secret) = device_secret
                    && let Err(e) = self.profiles.save_registration_secret(&code, &secret)
                {
                    return self.refused(&e.to_string());
                }
                if let Err(e) = self.profiles.save(&code, &profile) {
                    return self.refused(&e.to_string());
                }
                self.emit(EngineEvent::Activated {
                    site: profile.site,
                    user_id: profile.user_id,
                    name: profile.name,
                    enable_download_effect: profile.enable_download_effect,
                    phone_number: profile.phone_number,
                });
                Outcome::Done
            }
            Ok(ActivateReply::Refused { message }) => self.refused(&message),
            Err(e) => {
                self.emit(EngineEvent::Error {
                    message: e.to_string(),
                });
                Outcome::Failed
            }
        }
    }

    /// The profile of `site`, registering the built-in site on first use.
    async fn profile(&self, site: &SiteCode) -> Result<Profile, String> {
        if let Some(profile) = self.profiles.load(site).map_err(|e| e.to_string())? {
            return Ok(profile);
        }
        if *site == SiteCode::nexmile()
            && self.activate(site, None, None, None).await == Outcome::Done
            && let Some(profile) = self.profiles.load(site).map_err(|e| e.to_string())?
        {
            return Ok(profile);
        }
        Err(format!(
            "サイト「{site}」に登録されていません。サイトの登録リンク（activateExUser）を先に開いてください。"
        ))
    }

    pub(crate) async fn connect(&self, site: &SiteCode) -> Result<Signalling, String> {
        let profile = self.profile(site).await?;
        let (signalling, welcome) =
            Signalling::connect(&self.server, &profile.session_token, self.device()?)
                .await
                .map_err(|e| e.to_string())?;
        if let ServerMessage::Welcome {
            user_id,
            name,
            phone_number,
            session_token,
            ..
        } = welcome
        {
            if let Some(session_token) = session_token {
                // The server rotated the token: keep the new one.
                let renewed = Profile {
                    session_token,
                    ..profile
                };
                if let Err(e) = self.profiles.save(site, &renewed) {
                    self.emit(EngineEvent::SessionNotSaved {
                        message: e.to_string(),
                    });
                }
            }
            self.emit(EngineEvent::Online {
                site: site.as_str().to_owned(),
                user_id,
                name,
                phone_number,
            });
        }
        Ok(signalling)
    }

    /// A media connection offering what `signalling`'s welcome allows, on
    /// the IP families the site allows this user (candidateMode).
    pub(crate) async fn new_peer(
        &self,
        signalling: &Signalling,
        candidate_mode: CandidateMode,
    ) -> Result<(Peer, String), String> {
        let mut peer = Peer::new(PeerConfig {
            bind: self.media_bind.clone(),
            ice_servers: signalling.ice_servers.clone(),
            candidate_mode,
            retransmission: self.retransmission,
            ..PeerConfig::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        let offer = peer.create_offer().await.map_err(|e| e.to_string())?;
        Ok((peer, offer))
    }

    /// The settings a choice names, resolved against the site's effect files;
    /// `None` when the choice is empty (keep what is saved).
    pub fn effect_settings(
        &self,
        site: &SiteCode,
        choice: &EffectChoice,
    ) -> Result<Option<EffectSettings>, String> {
        if choice.none {
            return Ok(Some(EffectSettings::default()));
        }
        if choice.wallpaper.is_none() && choice.mosaic.is_none() && choice.face_filter.is_none() {
            return Ok(None);
        }
        let files = self.profiles.effects_dir(site);
        let wallpaper = match choice.wallpaper.as_deref() {
            None => None,
            Some("blur") => Some(WallpaperSetting::Blur),
            Some(spec) => match spec.split_once(':') {
                Some(("colour" | "color", hex)) => {
                    let hex = hex.trim_start_matches('#');
                    let channel = |i: usize| {
                        hex.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    };
                    match (hex.len(), channel(0), channel(2), channel(4)) {
                        (6, Some(r), Some(g), Some(b)) => {
                            Some(WallpaperSetting::Colour { rgb: [r, g, b] })
                        }
                        _ => return Err(format!("--wallpaper {spec}: the colour is #rrggbb")),
                    }
                }
                Some(("picture", file)) if is_contained_path(file) => {
                    Some(WallpaperSetting::Picture {
                        path: files.join(file),
                    })
                }
                Some(("picture", file)) => {
                    return Err(format!(
                        "--wallpaper picture:{file}: not a file of the site's effects"
                    ));
                }
                _ => {
                    return Err(format!(
                        "--wallpaper {spec}: blur, colour:#rrggbb or picture:<file>"
                    ));
                }
            },
        };
        let mosaic = match choice.mosaic.as_deref() {
            None => None,
            Some("faces") => Some(MosaicSettings::default()),
            Some("whole") => Some(MosaicSettings {
                area: MosaicArea::WholeFrame,
                ..MosaicSettings::default()
            }),
            Some(other) => return Err(format!("--mosaic {other}: faces or whole")),
        };
        let face_filter = match choice.face_filter.as_deref() {
            None => None,
            Some(name) if is_contained_path(name) => Some(files.join("face-filters").join(name)),
            Some(name) => {
                return Err(format!(
                    "--face-filter {name}: not a face filter of the site's effects"
                ));
            }
        };
        Ok(Some(EffectSettings {
            wallpaper,
            mosaic,
            face_filter,
        }))
    }

    pub(crate) fn session_io(
        &self,
        reports: mpsc::UnboundedSender<nexmile_media::quality::QualityReport>,
        site: &SiteCode,
    ) -> SessionIo {
        // The devices as chosen in the site's profile now, so a choice
        // made between calls applies to the next one.
        let (capture, output) = match &self.capture {
            CaptureChoice::Devices(_) => {
                let settings = self.profiles.device_settings(site).unwrap_or_default();
                let speaker = SoundOutput::Speaker(settings.speaker.clone());
                (CaptureChoice::Devices(settings), speaker)
            }
            other => (other.clone(), SoundOutput::Nowhere),
        };
        SessionIo {
            reports,
            display: self.display.clone(),
            switches: self.switches.subscribe(),
            capture,
            output,
            events: self.events.clone(),
            first_media: None,
            expect_incoming: true,
            send_video: true,
        }
    }

    /// The chain of the profile's saved effects under `allowed`, said as an
    /// `effects` event (with what is off and why); `None` when no effect is chosen.
    pub(crate) async fn chain_for(
        &self,
        site: &SiteCode,
        allowed: CallOption,
    ) -> Option<EffectChain> {
        let settings = match self.profiles.effect_settings(site) {
            Ok(settings) => settings,
            Err(e) => {
                self.emit(EngineEvent::Effects {
                    settings: None,
                    refused: Vec::new(),
                    error: Some(e.to_string()),
                });
                return None;
            }
        };
        if settings == EffectSettings::default() {
            return None;
        }
        let building = settings.clone();
        // Loading models is slow: off the async threads.
        let (chain, refusals) =
            tokio::task::spawn_blocking(move || EffectChain::build(&building, allowed))
                .await
                .ok()?;
        let refused: Vec<String> = refusals.iter().map(Refusal::message_ja).collect();
        self.emit(EngineEvent::Effects {
            settings: Some(settings),
            refused,
            error: None,
        });
        Some(chain)
    }

    /// videoSetting's loopback test: own media through the server's relay and
    /// back, with the chosen effects (saved for later calls) on the way out.
    async fn video_test(&self, site: &SiteCode, effects: Option<EffectSettings>) -> Outcome {
        let mut signalling = match self.connect(site).await {
            Ok(s) => s,
            Err(message) => return self.refused(&message),
        };
        if let Some(settings) = &effects
            && let Err(e) = self.profiles.save_effect_settings(site, settings)
        {
            return self.refused(&e.to_string());
        }
        let chain = self.chain_for(site, PREVIEW_OPTIONS).await;
        let (peer, offer) = match self.new_peer(&signalling, CandidateMode::Both).await {
            Ok(pair) => pair,
            Err(e) => return self.refused(&e),
        };
        if let Err(e) = signalling
            .send(&ClientMessage::StartVideoTest { offer })
            .await
        {
            return self.refused(&e.to_string());
        }
        let answer = loop {
            match signalling.recv().await {
                Ok(Some(ServerMessage::MediaAnswer { answer, .. })) => break answer,
                Ok(Some(ServerMessage::Error { message })) => return self.refused(&message),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return self.refused("サーバとの接続が切れました。"),
            }
        };
        if let Err(e) = peer.accept_answer(&answer).await {
            return self.refused(&e.to_string());
        }
        let (reports_tx, mut reports) = mpsc::unbounded_channel();
        let mut actions = self.actions.subscribe();
        let media = MediaSession::start(
            peer,
            self.video_size,
            chain,
            self.session_io(reports_tx, site),
        );
        self.emit(EngineEvent::VideoTestStarted);
        // Why the test stopped before the user ended it, if it did.
        let mut cut_off = None;
        loop {
            tokio::select! {
                // Read, so that the server's pings are answered: a test that
                // never reads is dropped as silent after 40 s.
                message = signalling.recv() => match message {
                    Ok(Some(ServerMessage::Error { message })) => {
                        cut_off = Some(message);
                        break;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        cut_off = Some("サーバとの接続が切れました。".to_owned());
                        break;
                    }
                    Err(e) => {
                        cut_off = Some(e.to_string());
                        break;
                    }
                },
                Some(report) = reports.recv() => self.emit(EngineEvent::Quality(report)),
                action = actions.recv() => match action {
                    Ok(UserAction::Hangup) | Err(broadcast::error::RecvError::Closed) => break,
                    Ok(UserAction::EffectsChanged) => {
                        if let Some(chain) = self.chain_for(site, PREVIEW_OPTIONS).await {
                            media.switch_effects(chain);
                        } else {
                            media.switch_effects(EffectChain::default());
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                },
            }
        }
        let summary = media.finish().await;
        let returned = summary.frames_decoded > 0;
        self.emit(EngineEvent::VideoTestResult { media: summary });
        if let Some(message) = cut_off {
            self.emit(EngineEvent::Error { message });
            return Outcome::Failed;
        }
        let _ = signalling.send(&ClientMessage::EndVideoTest).await;
        if returned {
            Outcome::Done
        } else {
            Outcome::Failed
        }
    }

    /// videoSetting with download=1: every effect file of the site into its profile.
    async fn sync_effects(&self, site: &SiteCode) -> Outcome {
        let profile = match self.profile(site).await {
            Ok(profile) => profile,
            Err(message) => return self.refused(&message),
        };
        let dir = self.profiles.effects_dir(site);
        let sync = EffectSync::new(&self.server, &profile.session_token, &dir);
        // One progress line per tenth of the whole, and the last.
        let mut shown = 0;
        let report = sync
            .run(|p| {
                let tenth = (p.received * 10).checked_div(p.total).unwrap_or(10);
                if tenth > shown || p.received == p.total {
                    shown = tenth;
                    self.emit(EngineEvent::EffectsProgress {
                        file: p.file.to_owned(),
                        received: p.received,
                        total: p.total,
                    });
                }
            })
            .await;
        match report {
            Ok(report) => {
                let ok = report.failed.is_empty();
                self.emit(EngineEvent::EffectsSynced(report));
                if ok { Outcome::Done } else { Outcome::Failed }
            }
            Err(e) => self.refused(&e.to_string()),
        }
    }

    /// makecall: prepare, start, ring, talk, end.
    async fn call(
        &self,
        site: &SiteCode,
        request: ClientMessage,
        return_url: Option<String>,
    ) -> Outcome {
        let mut signalling = match self.connect(site).await {
            Ok(s) => s,
            Err(message) => return self.refused(&message),
        };
        if let Err(e) = signalling.send(&request).await {
            return self.refused(&e.to_string());
        }
        let mut call = CallRun::new(self, site, Role::Caller);
        let status = call.drive(&mut signalling).await;
        if let Some(url) = return_url {
            self.emit(EngineEvent::ReturnUrl { url });
        }
        status
    }

    /// Stays online as the site's user; incoming calls ring until the user
    /// answers or declines them ([`UserAction`]). Returns after `calls` calls if given (0: just come online once,
    /// which registers the built-in site and shows its phone number).
    pub async fn listen(&self, site: &SiteCode, calls: Option<u32>) -> Outcome {
        let mut signalling = match self.connect(site).await {
            Ok(s) => s,
            Err(message) => return self.refused(&message),
        };
        let mut done = 0;
        while calls.is_none_or(|limit| done < limit) {
            let mut call = CallRun::new(self, site, Role::Callee);
            let status = call.drive(&mut signalling).await;
            if status == Outcome::Failed {
                return status;
            }
            done += 1;
        }
        Outcome::Done
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Caller,
    Callee,
}

/// One call from this device's side.
struct CallRun<'a> {
    client: &'a Client,
    site: &'a SiteCode,
    role: Role,
    /// The profile's effects under this call's options, built when it is offered.
    chain: Option<EffectChain>,
    /// This call's option mask, for effects chosen while it runs.
    options: CallOption,
    /// The IP families this side's media may use (the site's candidateMode).
    candidate_mode: CandidateMode,
    /// Who the call is with, for the history.
    peer: Option<(String, bool)>,
    token: Option<String>,
    pending_peer: Option<Peer>,
    media: Option<MediaSession>,
    reports: mpsc::UnboundedReceiver<nexmile_media::quality::QualityReport>,
    reports_tx: mpsc::UnboundedSender<nexmile_media::quality::QualityReport>,
}

impl<'a> CallRun<'a> {
    fn new(client: &'a Client, site: &'a SiteCode, role: Role) -> Self {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        Self {
            client,
            site,
            role,
            chain: None,
            options: CallOption::empty(),
            candidate_mode: CandidateMode::Both,
            peer: None,
            token: None,
            pending_peer: None,
            media: None,
            reports,
            reports_tx,
        }
    }

    async fn offer(&mut self, signalling: &mut Signalling, token: String, answer: bool) -> bool {
        match self.client.new_peer(signalling, self.candidate_mode).await {
            Ok((peer, offer)) => {
                self.pending_peer = Some(peer);
                let message = if answer {
                    ClientMessage::Answer {
                        call_token: token,
                        offer,
                    }
                } else {
                    ClientMessage::StartCall {
                        call_token: token,
                        offer,
                    }
                };
                signalling.send(&message).await.is_ok()
            }
            Err(e) => {
                self.client.emit(EngineEvent::Error { message: e });
                false
            }
        }
    }

    async fn hang_up(&self, signalling: &mut Signalling) {
        if let Some(token) = self.token.clone() {
            let _ = signalling
                .send(&ClientMessage::Hangup { call_token: token })
                .await;
        }
    }

    /// What the user did: `Some(status)` when it ends this call's run.
    async fn on_action(
        &mut self,
        signalling: &mut Signalling,
        action: UserAction,
    ) -> Option<Outcome> {
        match action {
            UserAction::Answer if self.ringing_here() => {
                let token = self.token.clone()?;
                if !self.offer(signalling, token, true).await {
                    return Some(Outcome::Failed);
                }
            }
            UserAction::Decline if self.ringing_here() => {
                let token = self.token.clone()?;
                let _ = signalling
                    .send(&ClientMessage::Decline { call_token: token })
                    .await;
            }
            UserAction::Hangup => self.hang_up(signalling).await,
            UserAction::EffectsChanged if self.token.is_some() => {
                let chain = self.client.chain_for(self.site, self.options).await;
                match &self.media {
                    Some(media) => media.switch_effects(chain.unwrap_or_default()),
                    None => self.chain = chain,
                }
            }
            // The rest are a live's, or came when nothing rings.
            UserAction::Answer
            | UserAction::Decline
            | UserAction::EffectsChanged
            | UserAction::StartLive
            | UserAction::Comment(_)
            | UserAction::SendItem { .. }
            | UserAction::PaidSwitch(_)
            | UserAction::RemoveViewer(_)
            | UserAction::Favorite(_)
            | UserAction::Pay(_) => {}
        }
        None
    }

    /// An incoming call rings on this device and has not been answered.
    fn ringing_here(&self) -> bool {
        self.role == Role::Callee
            && self.token.is_some()
            && self.pending_peer.is_none()
            && self.media.is_none()
    }

    async fn drive(&mut self, signalling: &mut Signalling) -> Outcome {
        let role = self.role;
        let mut actions = self.client.actions.subscribe();
        loop {
            let message = tokio::select! {
                message = signalling.recv() => message,
                action = actions.recv() => {
                    if let Ok(action) = action
                        && let Some(status) = self.on_action(signalling, action).await
                    {
                        return status;
                    }
                    continue;
                }
                Some(report) = self.reports.recv() => {
                    self.client.emit(EngineEvent::Quality(report));
                    continue;
                }
            };
            let message = match message {
                Ok(Some(message)) => message,
                Ok(None) => {
                    self.client.emit(EngineEvent::Error {
                        message: "サーバとの接続が切れました。".into(),
                    });
                    return Outcome::Failed;
                }
                Err(e) => {
                    self.client.emit(EngineEvent::Error {
                        message: e.to_string(),
                    });
                    return Outcome::Failed;
                }
            };
            match message {
                ServerMessage::CallPrepared(details) if role == Role::Caller => {
                    self.client.emit(EngineEvent::CallPrepared(details.clone()));
                    self.token = Some(details.call_token.clone());
                    self.options = details.options;
                    self.candidate_mode =
                        details.candidate_mode.map(Into::into).unwrap_or_default();
                    self.peer = Some((details.peer_name.clone(), details.video));
                    self.chain = self.client.chain_for(self.site, details.options).await;
                    if !self.offer(signalling, details.call_token, false).await {
                        return Outcome::Failed;
                    }
                }
                ServerMessage::Incoming(details)
                    if role == Role::Callee && self.token.is_none() =>
                {
                    self.client.emit(EngineEvent::CallIncoming(details.clone()));
                    self.token = Some(details.call_token.clone());
                    self.options = details.options;
                    self.candidate_mode =
                        details.candidate_mode.map(Into::into).unwrap_or_default();
                    self.peer = Some((details.peer_name.clone(), details.video));
                    self.chain = self.client.chain_for(self.site, details.options).await;
                }
                ServerMessage::IncomingCancelled { call_token }
                    if self.token.as_deref() == Some(&call_token) =>
                {
                    self.client.emit(EngineEvent::CallCancelled { call_token });
                    return Outcome::Done;
                }
                ServerMessage::MediaAnswer { answer, .. } => {
                    if let Some(peer) = self.pending_peer.take() {
                        if let Err(e) = peer.accept_answer(&answer).await {
                            self.client.emit(EngineEvent::Error {
                                message: e.to_string(),
                            });
                            return Outcome::Failed;
                        }
                        self.media = Some(MediaSession::start(
                            peer,
                            self.client.video_size,
                            self.chain.take(),
                            self.client.session_io(self.reports_tx.clone(), self.site),
                        ));
                    }
                }
                ServerMessage::Ringing { call_token } => {
                    self.client.emit(EngineEvent::CallRinging { call_token });
                }
                ServerMessage::Connected { call_token } => {
                    self.client.emit(EngineEvent::CallConnected { call_token });
                }
                ServerMessage::Billing {
                    payer,
                    time_left_sec,
                    used_points,
                    ..
                } => self.client.emit(EngineEvent::Billing {
                    payer,
                    time_left_sec,
                    used_points,
                }),
                ServerMessage::Push {
                    title,
                    body,
                    image_url,
                    click_action,
                } => self.client.emit(EngineEvent::Push {
                    title,
                    body,
                    image_url,
                    click_action,
                }),
                ServerMessage::CallEnded {
                    call_token,
                    reason,
                    message,
                    overview,
                } => {
                    // Before CallPrepared this side holds no token yet.
                    if self.token.is_some() && call_token.is_some() && call_token != self.token {
                        continue;
                    }
                    let media = match self.media.take() {
                        Some(media) => Some(media.finish().await),
                        None => None,
                    };
                    // A call the partner refused before it began is a refusal.
                    if overview.is_none()
                        && message.is_some()
                        && reason != TerminateReason::CallerHungUp
                    {
                        return self.client.refused(message.as_deref().unwrap_or_default());
                    }
                    if let Some((peer_name, video)) = self.peer.take() {
                        let record = CallRecord {
                            ended_at: std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_secs()),
                            outgoing: self.role == Role::Caller,
                            peer_name,
                            video,
                            talk_sec: overview.as_ref().map_or(0, |o| o.talking_sec),
                            reason: i32::from(reason as i8),
                        };
                        if let Err(e) = self.client.profiles.record_call(self.site, &record) {
                            self.client.emit(EngineEvent::Error {
                                message: e.to_string(),
                            });
                        }
                    }
                    self.client.emit(EngineEvent::CallEnded {
                        call_token,
                        reason,
                        message,
                        overview,
                        media,
                    });
                    return Outcome::Done;
                }
                ServerMessage::Error { message } => {
                    if role == Role::Caller {
                        return self.client.refused(&message);
                    }
                    self.client.emit(EngineEvent::Error { message });
                }
                _ => {}
            }
        }
    }
}
