//! broadcastLive and viewLive (chapter 5) on the app's side: the broadcaster
//! prepares, starts and sends its media; a viewer is admitted, receives the
//! broadcaster's media and tells the server once the first picture (or, for
//! radio, sound) really arrived; both write comments, viewers send stamps
//! and gifts. Every notice of the live is told as a `live.*` event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexmile_core::applink::SiteCode;
use nexmile_core::signal::{ClientMessage, GiftItem, LiveNotice, LiveRole, ServerMessage};
use nexmile_effects::animation::Animation;
use nexmile_effects::gift::{GiftOverlay, Placement};
use nexmile_media::frame::MediaTime;
use nexmile_media::transport::MediaKind;
use serde_json::json;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::app::{Client, Outcome, PREVIEW_OPTIONS, UserAction};
use crate::capture_feed::CaptureChoice;
use crate::media_session::{MediaSession, MediaSummary};
use crate::signalling::Signalling;

/// How one live on this device should go (the command line's flags; a
/// window leaves all to the user).
#[derive(Debug, Clone, Default)]
pub struct LivePlan {
    /// The broadcaster starts this long after the live is prepared; `None`:
    /// when the user presses start ([`UserAction::StartLive`]).
    pub start_after: Option<Duration>,
    /// Ends (broadcaster) or leaves (viewer) this long after going on air
    /// or starting to watch; `None`: when the user does, or the live ends.
    pub stay_for: Option<Duration>,
    /// Comments to write, one a second from going on air (or watching).
    pub comments: Vec<String>,
    /// Stamps and gifts to send (category, number), one a second after the comments.
    pub items: Vec<(String, String)>,
    /// A viewer buys points with these amounts (quickPayments), after the items.
    pub pay: Vec<u32>,
    /// The broadcaster removes these viewers (user IDs), one a second, after the items.
    pub remove: Vec<String>,
    /// The broadcaster makes the live paid at this price, last.
    pub paid_switch: Option<u32>,
}

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

/// One scripted step of the plan.
enum Step {
    Comment(String),
    Item(String, String),
    PaidSwitch(u32),
    Remove(String),
    Pay(u32),
}

struct LiveRun<'a> {
    client: &'a Client,
    site: SiteCode,
    plan: LivePlan,
    role: LiveRole,
    token: Option<String>,
    media: Option<MediaSession>,
    /// Fires when the first picture (radio: sound) was decoded.
    first_media: Option<oneshot::Receiver<()>>,
    audio_only: bool,
    /// §5.4.1: gifts play inside the broadcaster's video, not as an overlay.
    apng_on_video: bool,
    /// Gift animations decoded once per live, by file.
    decoded_gifts: Arc<Mutex<HashMap<String, Arc<Animation>>>>,
    reports: mpsc::UnboundedReceiver<nexmile_media::quality::QualityReport>,
    reports_tx: mpsc::UnboundedSender<nexmile_media::quality::QualityReport>,
    /// When the live (or the watching) began: the plan's steps and end count from it.
    live_since: Option<tokio::time::Instant>,
    steps: Vec<Step>,
    started: bool,
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Client {
    /// broadcastLive: prepare, start (by the plan or the user), broadcast until the end.
    pub async fn broadcast(&self, site: &SiteCode, link_id: &str, plan: LivePlan) -> Outcome {
        self.live(
            site,
            Part::Broadcaster {
                link_id: link_id.to_owned(),
            },
            plan,
        )
        .await
    }

    /// viewLive: watch the live of `live_token` until it ends or the viewer leaves.
    pub async fn view(
        &self,
        site: &SiteCode,
        live_token: &str,
        link_id: &str,
        plan: LivePlan,
    ) -> Outcome {
        self.live(
            site,
            Part::Viewer {
                live_token: live_token.to_owned(),
                link_id: link_id.to_owned(),
            },
            plan,
        )
        .await
    }

    async fn live(&self, site: &SiteCode, part: Part, plan: LivePlan) -> Outcome {
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
        let mut steps: Vec<Step> = plan.comments.iter().cloned().map(Step::Comment).collect();
        steps.extend(plan.items.iter().cloned().map(|(c, n)| Step::Item(c, n)));
        steps.extend(plan.pay.iter().copied().map(Step::Pay));
        steps.extend(plan.remove.iter().cloned().map(Step::Remove));
        steps.extend(plan.paid_switch.map(Step::PaidSwitch));
        steps.reverse();
        let mut run = LiveRun {
            client: self,
            site: site.clone(),
            plan,
            role,
            token,
            media: None,
            first_media: None,
            audio_only: false,
            apng_on_video: false,
            decoded_gifts: Arc::default(),
            reports,
            reports_tx,
            live_since: None,
            steps,
            started: false,
        };
        run.drive(&mut signalling).await
    }
}

impl LiveRun<'_> {
    fn emit(&self, event: &str, fields: serde_json::Value) {
        self.client.events.emit(event, fields);
    }

    async fn send(&self, signalling: &mut Signalling, message: ClientMessage) {
        if let Err(e) = signalling.send(&message).await {
            self.emit("error", json!({ "message": e.to_string() }));
        }
    }

    /// A media connection: the broadcaster sends its camera and microphone,
    /// a viewer only receives.
    async fn connect_media(&mut self, signalling: &mut Signalling) -> bool {
        let Some(token) = self.token.clone() else {
            return false;
        };
        let (peer, offer) = match self.client.new_peer().await {
            Ok(pair) => pair,
            Err(e) => {
                self.emit("error", json!({ "message": e }));
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
            self.emit("error", json!({ "message": e.to_string() }));
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
                let fields = serde_json::to_value(&notice).unwrap_or_default();
                match notice {
                    LiveNotice::Prepared(details) => {
                        self.audio_only = details.audio_only;
                        self.apng_on_video = details.settings["apngOnVideoProcessor"]
                            .as_bool()
                            .unwrap_or(false);
                        self.emit("live.prepared", fields);
                    }
                    LiveNotice::OnAir => {
                        self.live_since = Some(tokio::time::Instant::now());
                        self.emit("live.on_air", json!({ "liveToken": live_token }));
                    }
                    LiveNotice::Ended { .. } => {
                        self.emit("live.ended", fields);
                        return Some(Outcome::Done);
                    }
                    LiveNotice::Comment { .. } => self.emit("live.comment", fields),
                    LiveNotice::Joined { .. } => self.emit("live.joined", fields),
                    LiveNotice::Item { item, .. } => {
                        self.emit("live.item", fields);
                        self.composite(&item);
                    }
                    LiveNotice::Viewers { .. } => self.emit("live.viewers", fields),
                    LiveNotice::Billing { .. } => self.emit("live.billing", fields),
                    LiveNotice::Refused { .. } => self.emit("live.refused", fields),
                    LiveNotice::PaidSwitched { .. } => self.emit("live.paid", fields),
                    LiveNotice::AdminMessage { .. } => self.emit("live.admin_message", fields),
                    LiveNotice::ViewerUpdated { .. } => self.emit("live.viewer_updated", fields),
                    LiveNotice::PaymentDone { .. } => self.emit("live.payment", fields),
                }
                None
            }
            ServerMessage::GiftCatalogue { items, .. } => {
                self.emit("live.gifts", json!({ "items": items }));
                None
            }
            ServerMessage::Error { message } => {
                self.emit("refused", json!({ "message": message }));
                Some(Outcome::Refused)
            }
            _ => None,
        }
    }

    async fn drive(&mut self, signalling: &mut Signalling) -> Outcome {
        let mut actions = self.client.actions.subscribe();
        let mut step_tick = tokio::time::interval(Duration::from_secs(1));
        // Steps wait for the live: no burst of the ticks missed until then.
        step_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut start_at: Option<tokio::time::Instant> = None;
        let status = loop {
            let leave_at = self
                .live_since
                .zip(self.plan.stay_for)
                .map(|(since, stay)| since + stay);
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
                        if prepared {
                            if self.role == LiveRole::Broadcaster {
                                start_at = self.plan.start_after.map(|d| tokio::time::Instant::now() + d);
                            }
                            if !self.connect_media(signalling).await {
                                break Outcome::Failed;
                            }
                        }
                    }
                    Ok(None) | Err(_) => {
                        self.emit("refused", json!({ "message": "サーバとの接続が切れました。" }));
                        break Outcome::Failed;
                    }
                },
                () = sleep_until(start_at), if !self.started => {
                    start_at = None;
                    self.start(signalling).await;
                }
                received = first_media => {
                    self.first_media = None;
                    if received && let Some(live_token) = self.token.clone() {
                        self.emit("live.media_received", json!({ "liveToken": live_token }));
                        self.send(signalling, ClientMessage::LiveMediaReceived { live_token }).await;
                    }
                }
                () = sleep_until(leave_at) => {
                    self.plan.stay_for = None;
                    self.leave(signalling).await;
                }
                _ = step_tick.tick(), if self.live_since.is_some() && !self.steps.is_empty() => {
                    let (Some(step), Some(live_token)) = (self.steps.pop(), self.token.clone()) else {
                        continue;
                    };
                    let message = match step {
                        Step::Comment(text) => ClientMessage::LiveComment { live_token, text },
                        Step::Item(category, item_no) => ClientMessage::LiveItem { live_token, category, item_no },
                        Step::PaidSwitch(unit_price) => ClientMessage::PaidSwitch { live_token, unit_price },
                        Step::Remove(user_id) => ClientMessage::RemoveViewer { live_token, user_id },
                        Step::Pay(amount) => ClientMessage::Payment { live_token, amount, payment_id: Some(new_payment_id()) },
                    };
                    self.send(signalling, message).await;
                }
                Some(report) = self.reports.recv() => {
                    self.emit("quality", serde_json::to_value(report).unwrap_or_default());
                }
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
        self.emit("live.media", json!({ "role": self.role, "media": summary }));
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
            self.client.events.emit(
                "live.gift_on_video",
                json!({ "file": file, "error": "not a file of the site's effects" }),
            );
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
                    events.emit("live.gift_on_video", json!({ "file": file }));
                }
                Err(message) => events.emit(
                    "live.gift_on_video",
                    json!({ "file": file, "error": message }),
                ),
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
