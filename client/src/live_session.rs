//! broadcastLive and viewLive (chapter 5) on the app's side: the broadcaster
//! prepares, starts and sends its media; a viewer is admitted, receives the
//! broadcaster's media and tells the server once the first picture (or, for
//! radio, sound) really arrived; both write comments, viewers send stamps
//! and gifts. Every notice of the live is told as a `live.*` event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nexmile_core::applink::SiteCode;
use nexmile_core::signal::{ClientMessage, GiftItem, LiveNotice, LiveRole, ServerMessage};
use nexmile_effects::animation::Animation;
use nexmile_effects::gift::{GiftOverlay, Placement};
use nexmile_media::frame::MediaTime;
use nexmile_media::transport::{CandidateMode, MediaKind};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::app::{Client, Outcome, PREVIEW_OPTIONS, UserAction};
use crate::capture_feed::CaptureChoice;
use crate::events::EngineEvent;
use crate::media_session::{MediaSession, MediaSummary};
use crate::signalling::Signalling;

/// Where a gift plays in the broadcaster's picture: centred, low, a third wide.
const GIFT_PLACEMENT: Placement = Placement {
    center_x: 0.5,
    center_y: 0.62,
    width: 0.34,
};

/// What the device does in the live.
enum Part {
    Broadcaster { link_id: String },
    Viewer { live_token: String, link_id: String },
}

struct LiveRun<'a> {
    client: &'a Client,
    site: SiteCode,
    role: LiveRole,
    token: Option<String>,
    media: Option<MediaSession>,
    /// Fires when the first picture (radio: sound) was decoded.
    first_media: Option<oneshot::Receiver<()>>,
    audio_only: bool,
    /// The IP families this member's media may use (the site's candidateMode).
    candidate_mode: CandidateMode,
    /// §5.4.1: gifts play inside the broadcaster's video, not as an overlay.
    apng_on_video: bool,
    /// Gift animations decoded once per live, by file.
    decoded_gifts: Arc<Mutex<HashMap<String, Arc<Animation>>>>,
    reports: mpsc::UnboundedReceiver<nexmile_media::quality::QualityReport>,
    reports_tx: mpsc::UnboundedSender<nexmile_media::quality::QualityReport>,
    started: bool,
}

impl Client {
    /// broadcastLive: prepare, start when the user does
    /// ([`UserAction::StartLive`]), broadcast until the end.
    pub async fn broadcast(&self, site: &SiteCode, link_id: &str) -> Outcome {
        self.live(
            site,
            Part::Broadcaster {
                link_id: link_id.to_owned(),
            },
        )
        .await
    }

    /// viewLive: watch the live of `live_token` until it ends or the viewer leaves.
    pub async fn view(&self, site: &SiteCode, live_token: &str, link_id: &str) -> Outcome {
        self.live(
            site,
            Part::Viewer {
                live_token: live_token.to_owned(),
                link_id: link_id.to_owned(),
            },
        )
        .await
    }

    async fn live(&self, site: &SiteCode, part: Part) -> Outcome {
        let mut signalling = match self.connect(site).await {
            Ok(s) => s,
            Err(message) => return self.refused(&message),
        };
        let (role, first, token) = match part {
            Part::Broadcaster { link_id } => (
                LiveRole::Broadcaster,
                ClientMessage::PrepareBroadcast { link_id },
                None,
            ),
            Part::Viewer {
                live_token,
                link_id,
            } => (
                LiveRole::Viewer,
                ClientMessage::ViewLive {
                    live_token: live_token.clone(),
                    link_id,
                },
                Some(live_token),
            ),
        };
        if let Err(e) = signalling.send(&first).await {
            return self.refused(&e.to_string());
        }
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let mut run = LiveRun {
            client: self,
            site: site.clone(),
            role,
            token,
            media: None,
            first_media: None,
            audio_only: false,
            candidate_mode: CandidateMode::Both,
            apng_on_video: false,
            decoded_gifts: Arc::default(),
            reports,
            reports_tx,
            started: false,
        };
        run.drive(&mut signalling).await
    }
}

impl LiveRun<'_> {
    fn emit(&self, event: EngineEvent) {
        self.client.events.emit(event);
    }

    fn error(&self, message: String) {
        self.emit(EngineEvent::Error { message });
    }

    async fn send(&self, signalling: &mut Signalling, message: ClientMessage) {
        if let Err(e) = signalling.send(&message).await {
            self.error(e.to_string());
        }
    }

    /// A media connection: the broadcaster sends its camera and microphone,
    /// a viewer only receives.
    async fn connect_media(&mut self, signalling: &mut Signalling) -> bool {
        let Some(token) = self.token.clone() else {
            return false;
        };
        let (peer, offer) = match self.client.new_peer(signalling, self.candidate_mode).await {
            Ok(pair) => pair,
            Err(e) => {
                self.error(e);
                return false;
            }
        };
        let message = match self.role {
            LiveRole::Broadcaster => ClientMessage::BroadcastMedia {
                live_token: token,
                offer,
            },
            LiveRole::Viewer => ClientMessage::ReceiveLive {
                live_token: token,
                offer,
            },
        };
        self.send(signalling, message).await;
        let answer = loop {
            match signalling.recv().await {
                Ok(Some(ServerMessage::MediaAnswer { answer, .. })) => break answer,
                Ok(Some(other)) => {
                    if let Some(status) = self.on_message(other) {
                        return status == Outcome::Done;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        };
        if let Err(e) = peer.accept_answer(&answer).await {
            self.error(e.to_string());
            return false;
        }
        let mut io = self.client.session_io(self.reports_tx.clone(), &self.site);
        io.expect_incoming = self.role == LiveRole::Viewer;
        // A radio live carries sound alone (§5.3.1 audioOnly).
        io.send_video = !self.audio_only;
        if self.role == LiveRole::Viewer {
            io.capture = CaptureChoice::ReceiveOnly;
            let (fired, first) = oneshot::channel();
            let kind = if self.audio_only {
                MediaKind::Audio
            } else {
                MediaKind::Video
            };
            io.first_media = Some((fired, kind));
            self.first_media = Some(first);
        }
        // The broadcaster's effects are those its video test saved; a live
        // has no option mask to limit them (§5.3.1 has none).
        let chain = match self.role {
            LiveRole::Broadcaster => self.client.chain_for(&self.site, PREVIEW_OPTIONS).await,
            LiveRole::Viewer => None,
        };
        self.media = Some(MediaSession::start(peer, self.client.video_size, chain, io));
        true
    }

    /// One server message; `Some(status)` when the live is over for this device.
    fn on_message(&mut self, message: ServerMessage) -> Option<Outcome> {
        match message {
            ServerMessage::Live { live_token, notice } => {
                if self.token.is_none() {
                    self.token = Some(live_token.clone());
                }
                if self.token.as_deref() != Some(&live_token) {
                    return None;
                }
                let mut outcome = None;
                let mut gift = None;
                match &notice {
                    LiveNotice::Prepared(details) => {
                        self.audio_only = details.audio_only;
                        self.candidate_mode =
                            details.candidate_mode.map(Into::into).unwrap_or_default();
                        self.apng_on_video = details.settings["apngOnVideoProcessor"]
                            .as_bool()
                            .unwrap_or(false);
                    }
                    LiveNotice::Ended { .. } => outcome = Some(Outcome::Done),
                    LiveNotice::Item { item, .. } => gift = Some(item.clone()),
                    _ => {}
                }
                self.emit(EngineEvent::live(live_token, notice));
                // After the item's own event: the drawing is told after it.
                if let Some(item) = gift {
                    self.composite(&item);
                }
                outcome
            }
            ServerMessage::GiftCatalogue { items, .. } => {
                self.emit(EngineEvent::LiveGifts { items });
                None
            }
            ServerMessage::Error { message } => {
                self.emit(EngineEvent::Refused { message });
                Some(Outcome::Refused)
            }
            _ => None,
        }
    }

    async fn drive(&mut self, signalling: &mut Signalling) -> Outcome {
        let mut actions = self.client.actions.subscribe();
        let status = loop {
            let first_media = async {
                match self.first_media.as_mut() {
                    Some(first) => first.await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = signalling.recv() => match message {
                    Ok(Some(message)) => {
                        let prepared = matches!(&message, ServerMessage::Live { notice: LiveNotice::Prepared(_), .. });
                        if let Some(status) = self.on_message(message) {
                            break status;
                        }
                        // The media connects at once: the broadcaster sees its
                        // preview (with effects) before it starts; an admitted
                        // viewer starts watching.
                        if prepared && !self.connect_media(signalling).await {
                            break Outcome::Failed;
                        }
                    }
                    Ok(None) | Err(_) => {
                        self.emit(EngineEvent::Refused { message: "サーバとの接続が切れました。".into() });
                        break Outcome::Failed;
                    }
                },
                received = first_media => {
                    self.first_media = None;
                    if received && let Some(live_token) = self.token.clone() {
                        self.emit(EngineEvent::LiveMediaReceived { live_token: live_token.clone() });
                        self.send(signalling, ClientMessage::LiveMediaReceived { live_token }).await;
                    }
                }
                Some(report) = self.reports.recv() => self.emit(EngineEvent::Quality(report)),
                action = actions.recv() => match action {
                    Ok(UserAction::Hangup) => self.leave(signalling).await,
                    Ok(UserAction::StartLive) if !self.started && self.role == LiveRole::Broadcaster => {
                        self.start(signalling).await;
                    }
                    Ok(UserAction::Comment(text)) => {
                        if let Some(live_token) = self.token.clone() {
                            self.send(signalling, ClientMessage::LiveComment { live_token, text }).await;
                        }
                    }
                    Ok(UserAction::SendItem { category, item_no }) => {
                        if let Some(live_token) = self.token.clone() {
                            self.send(signalling, ClientMessage::LiveItem { live_token, category, item_no }).await;
                        }
                    }
                    Ok(UserAction::PaidSwitch(unit_price)) => {
                        if let Some(live_token) = self.token.clone() {
                            self.send(signalling, ClientMessage::PaidSwitch { live_token, unit_price }).await;
                        }
                    }
                    Ok(UserAction::RemoveViewer(user_id)) => {
                        if let Some(live_token) = self.token.clone() {
                            self.send(signalling, ClientMessage::RemoveViewer { live_token, user_id }).await;
                        }
                    }
                    Ok(UserAction::Pay(amount)) => {
                        if let Some(live_token) = self.token.clone() {
                            let payment_id = Some(new_payment_id());
                            self.send(signalling, ClientMessage::Payment { live_token, amount, payment_id }).await;
                        }
                    }
                    Ok(UserAction::Favorite(favorite)) => {
                        if let Some(live_token) = self.token.clone() {
                            self.send(signalling, ClientMessage::Favorite { live_token, favorite }).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => self.leave(signalling).await,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                },
            }
        };
        let summary = match self.media.take() {
            Some(media) => media.finish().await,
            None => MediaSummary::default(),
        };
        self.emit(EngineEvent::LiveMedia {
            role: self.role,
            media: summary,
        });
        status
    }

    /// §5.4.1: the broadcaster draws a received gift's animation into its
    /// own outgoing picture, so every viewer sees it on the same frames. A
    /// file that is missing or broken leaves the picture as it is, and says so.
    fn composite(&self, item: &GiftItem) {
        let (true, LiveRole::Broadcaster, Some(file), Some(media)) = (
            self.apng_on_video,
            self.role,
            item.file.clone(),
            self.media.as_ref(),
        ) else {
            return;
        };
        // The gift's file name comes from the server: it must stay in the effects.
        if !nexmile_core::effects::is_contained_path(&file) {
            self.emit(EngineEvent::LiveGiftOnVideo {
                file,
                error: Some("not a file of the site's effects".into()),
            });
            return;
        }
        let path = self.client.profiles.effects_dir(&self.site).join(&file);
        let (gifts, events, cache) = (
            media.gift_sender(),
            Arc::clone(&self.client.events),
            Arc::clone(&self.decoded_gifts),
        );
        tokio::spawn(async move {
            let cached = cache.lock().expect("gift cache").get(&file).cloned();
            let animation = match cached {
                Some(animation) => Ok(animation),
                None => tokio::task::spawn_blocking(move || {
                    let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
                    Animation::decode(&bytes)
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string())),
            };
            match animation {
                Ok(animation) => {
                    cache
                        .lock()
                        .expect("gift cache")
                        .insert(file.clone(), Arc::clone(&animation));
                    let overlay = GiftOverlay::new(animation, GIFT_PLACEMENT, MediaTime::now());
                    let _ = gifts.send(overlay);
                    events.emit(EngineEvent::LiveGiftOnVideo { file, error: None });
                }
                Err(message) => events.emit(EngineEvent::LiveGiftOnVideo {
                    file,
                    error: Some(message),
                }),
            }
        });
    }

    /// The start button: 12 goes out; on air when the partner agrees.
    async fn start(&mut self, signalling: &mut Signalling) {
        self.started = true;
        if let Some(live_token) = self.token.clone() {
            self.send(signalling, ClientMessage::StartBroadcast { live_token })
                .await;
        }
    }

    async fn leave(&mut self, signalling: &mut Signalling) {
        if let Some(live_token) = self.token.clone() {
            self.send(signalling, ClientMessage::LeaveLive { live_token })
                .await;
        }
    }
}

/// A new purchase's ID: random, so that the server and the partner can tell
/// a repeat of the same purchase from a second one.
fn new_payment_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
