//! The live service (chapter 5): one task per live owns core's [`Live`]
//! state machine, feeds it what happens (the apps' messages, partner
//! replies, media, the clock) and carries out its actions. Its media (the
//! broadcaster's connection and one per admitted viewer) is a media
//! [`MediaRoom`], which forwards the broadcaster's RTP to every viewer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nexmile_compat::skyway::{ContentType, Participant, Room, room_name};
use nexmile_core::checkpoint::CheckpointSchedule;
use nexmile_core::clock::UnixMillis;
use nexmile_core::codec::encode_json_body;
use nexmile_core::datetime::{JST, WireDateTime};
use nexmile_core::live::{
    DeviceFacts, Live, LiveAction, LiveEvent, LivePhase, LiveSetup, Speaker, ViewerId,
};
use nexmile_core::signal::{LiveEndReason, LiveNotice, ServerMessage};
use nexmile_core::wire::live::{
    BroadcastAbort, BroadcastEnd, LiveRequest, LiveServiceRequest, Liver,
};
use nexmile_core::wire::payment::{PAYMENT_TIMEOUT, PaymentReply, PaymentRequest};
use nexmile_sfu::{Feed, LegEvent, LegId, LegSpec, Room as MediaRoom, SfuError};
use tokio::sync::{mpsc, oneshot};

use crate::actors::{Registration, Registry};
use crate::config::SiteConfig;
use crate::hub::{ConnId, ConnKind, ConnView};
use crate::media::recording::Tracks;
use crate::partner::REPLY_TIMEOUT;
use crate::services::Services;
use crate::social_feeds::{Comment, SocialStreams};
use crate::store::PendingReport;
use crate::tokens::{Engagement, LiveToken};

/// What reaches a live's task.
pub(crate) enum LiveCommand {
    /// The prepared broadcaster's media offer.
    Media {
        conn: ConnId,
        offer: String,
    },
    /// The broadcaster's start button.
    Start {
        conn: ConnId,
    },
    /// A viewLive link, with its linkId.
    View {
        conn: ConnId,
        link_id: String,
    },
    /// An admitted viewer's media offer.
    Receive {
        conn: ConnId,
        offer: String,
    },
    MediaReceived {
        conn: ConnId,
    },
    Comment {
        conn: ConnId,
        text: String,
    },
    Item {
        conn: ConnId,
        category: String,
        item_no: String,
    },
    /// The broadcaster ends the live, or a viewer leaves.
    Leave {
        conn: ConnId,
    },
    /// A participant's signalling connection closed.
    ConnLost {
        conn: ConnId,
    },
    /// A participant's media connection failed.
    MediaLost {
        conn: ConnId,
    },
    /// A participant's media connection is up.
    MediaConnected {
        conn: ConnId,
    },
    /// The broadcaster removes the viewer who is this user (15).
    RemoveViewer {
        conn: ConnId,
        user_id: String,
    },
    /// The broadcaster makes the live paid (14).
    PaidSwitch {
        conn: ConnId,
        unit_price: u32,
    },
    Favorite {
        conn: ConnId,
        favorite: bool,
    },
    /// A viewer's real-time payment of `amount` (§5.3.16), named by the
    /// client so that a repeated click or resend is the same payment.
    Payment {
        conn: ConnId,
        amount: u32,
        payment_id: String,
    },
    /// The partner answered (or failed) a viewer's payment: another may start.
    PaymentSettled {
        viewer: ViewerId,
    },
    /// UpdateUserBalance for `user_id`: applied if that user watches this live.
    Adjust {
        user_id: String,
        points: i64,
        applied: oneshot::Sender<bool>,
    },
    /// An administrator removes the viewer who is this user (94).
    AdminRemovesViewer {
        user_id: String,
        comment: Option<String>,
        done: oneshot::Sender<bool>,
    },
    /// Who is in the live and what flows where, for the SkyWay surface.
    Describe {
        reply: oneshot::Sender<Room>,
    },
    Event(LiveEvent),
}

/// The lives now running, by liveToken, and what their tasks share.
pub struct Lives {
    registry: Registry<LiveToken, LiveCommand>,
    services: Arc<Services>,
    /// The lives' comments as social stream feeds.
    social: Arc<SocialStreams>,
}

impl Lives {
    pub fn new(services: Arc<Services>, social: Arc<SocialStreams>) -> Self {
        Self {
            registry: Registry::default(),
            services,
            social,
        }
    }

    /// Ends every running live and viewing (13 or 29, and 33 each) and
    /// waits until each has stored its end reports, up to `limit`: for a
    /// server that is stopping.
    pub async fn stop_all(&self, limit: Duration) {
        for token in self.registry.tokens() {
            self.send(&token, LiveCommand::Event(LiveEvent::ServerStopping));
        }
        self.registry.wait_until_empty(limit).await;
    }

    pub(crate) fn send(&self, live_token: &LiveToken, command: LiveCommand) -> bool {
        self.registry.send(live_token, command)
    }

    /// Asks the live a question answered on a oneshot; false if it is not running.
    pub(crate) async fn ask(
        &self,
        live_token: &LiveToken,
        command: impl FnOnce(oneshot::Sender<bool>) -> LiveCommand,
    ) -> bool {
        self.registry.ask(live_token, command).await == Some(true)
    }

    /// Offers a balance change to every live of `site`; true if one has that user watching.
    pub async fn adjust(&self, site: &str, user_id: &str, points: i64) -> bool {
        for token in self.registry.tokens_of_site(site) {
            let applied = self
                .ask(&token, |applied| LiveCommand::Adjust {
                    user_id: user_id.to_owned(),
                    points,
                    applied,
                })
                .await;
            if applied {
                return true;
            }
        }
        false
    }

    /// Every running live as a room; one that does not answer within a
    /// second (ending, or stuck) is left out rather than holding the caller.
    pub async fn rooms(&self) -> Vec<Room> {
        let mut rooms = Vec::new();
        for token in self.registry.tokens() {
            let describe = |reply| LiveCommand::Describe { reply };
            if let Some(room) = self.registry.ask(&token, describe).await {
                rooms.push(room);
            }
        }
        rooms
    }

    pub(crate) fn running_tokens(&self) -> Vec<LiveToken> {
        self.registry.tokens()
    }
}

fn refuse(services: &Services, conn: ConnId, live_token: &str, message: &str) {
    services.hub.send(
        conn,
        ServerMessage::Live {
            live_token: live_token.to_owned(),
            notice: LiveNotice::Ended {
                reason: LiveEndReason::Refused,
                message: Some(message.to_owned()),
                summary: None,
            },
        },
    );
}

fn device_facts(view: &ConnView) -> DeviceFacts {
    DeviceFacts {
        app_ver: view.info.app_version.clone(),
        device_name: view.info.device_name.clone(),
        os_ver: view.info.os_version.clone(),
    }
}

impl Lives {
    /// The broadcastLive link from a connected app: a new live, 11 sent.
    pub fn prepare_broadcast(&self, conn: ConnId, link_id: String) {
        let services = &self.services;
        let Some(broadcaster) = services.hub.view(conn) else {
            return;
        };
        let live_token = LiveToken::new();
        let site = services
            .config
            .site
            .iter()
            .find(|s| s.code == broadcaster.device.site)
            .filter(|s| s.live_service_url.is_some())
            .cloned();
        let Some(site) = site else {
            // §2.3.5: lives need the partner's liveService.
            return refuse(
                services,
                conn,
                live_token.as_str(),
                "このサイトではライブ配信を利用できません。",
            );
        };
        if !services
            .hub
            .engage(conn, Engagement::Live(live_token.clone()))
        {
            return refuse(
                services,
                conn,
                live_token.as_str(),
                "通話中またはライブ中のため配信できません。",
            );
        }
        let setup = LiveSetup {
            site_token: site.token.clone(),
            live_token: live_token.to_string(),
            link_id,
            liver: Liver {
                liver_user_id: broadcaster.device.user_id.clone(),
                liver_user_sub_id: None,
            },
            device: device_facts(&broadcaster),
        };
        if site.social_stream {
            self.social.open(live_token.as_str());
        }
        let (live, actions) = Live::new(setup, services.clock.now());
        let (tx, inbox) = mpsc::unbounded_channel();
        let registration = self.registry.register(&live_token, &site.code, tx.clone());
        let actor = LiveActor {
            services: Arc::clone(services),
            social: Arc::clone(&self.social),
            _registration: registration,
            token: live_token,
            site,
            live,
            broadcaster: conn,
            media: None,
            source: None,
            viewers: HashMap::new(),
            by_viewer: HashMap::new(),
            next_viewer: 0,
            payments: HashMap::new(),
            tx,
            checkpoints: CheckpointSchedule::default(),
        };
        tokio::spawn(actor.run(inbox, actions));
    }
}

/// One viewer's connection and media.
struct ViewerConn {
    id: ViewerId,
    admitted: bool,
    /// The palette it was last sent; resent when a catalogue period or a
    /// specialGift window opens or closes during the live.
    palette: Vec<nexmile_core::signal::GiftItem>,
    leg: Option<LegId>,
}

/// The live's one feed in its media room.
const BROADCAST: Feed = Feed(0);
const BROADCASTER: LegSpec = LegSpec {
    publishes: Some(BROADCAST),
    receives: None,
    paces_publisher: false,
};
const VIEWER: LegSpec = LegSpec {
    publishes: None,
    receives: Some(BROADCAST),
    paces_publisher: false,
};

struct LiveActor {
    services: Arc<Services>,
    social: Arc<SocialStreams>,
    /// Keeps the live in [`Lives`] while this task runs.
    _registration: Registration<LiveToken, LiveCommand>,
    token: LiveToken,
    site: SiteConfig,
    live: Live,
    broadcaster: ConnId,
    /// The live's media engine, started with the first connection.
    media: Option<MediaRoom>,
    /// The broadcaster's media.
    source: Option<LegId>,
    viewers: HashMap<ConnId, ViewerConn>,
    by_viewer: HashMap<ViewerId, ConnId>,
    next_viewer: u64,
    /// The payment each viewer has in flight at the partner, by its ID: one
    /// at a time, so a double click never pays twice.
    payments: HashMap<ViewerId, String>,
    tx: mpsc::UnboundedSender<LiveCommand>,
    /// When the live next records its end reports as of now (crash-safe billing).
    checkpoints: CheckpointSchedule,
}

/// The running record a live's end report replaces: one for the live (13
/// or 29) and one per viewing (33).
fn report_key(request: &LiveServiceRequest) -> String {
    match &request.request {
        LiveRequest::ViewEnd(end) => format!(
            "view/{}/{}/{}",
            end.live.live_token, end.live.user_id, end.live.link_id
        ),
        LiveRequest::BroadcastEnd(BroadcastEnd { live, .. })
        | LiveRequest::BroadcastAbort(BroadcastAbort { live, .. }) => {
            format!("live/{}", live.live_token)
        }
        other => format!("other/{:?}", other.live_service_type()),
    }
}

impl LiveActor {
    async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<LiveCommand>,
        first: Vec<LiveAction>,
    ) {
        self.execute(first).await;
        let mut tick = tokio::time::interval(self.services.clock.real(Duration::from_secs(1)));
        while self.live.phase() != LivePhase::Ended {
            tokio::select! {
                Some(command) = inbox.recv() => self.on_command(command).await,
                _ = tick.tick() => {
                    self.handle(LiveEvent::Tick).await;
                    self.refresh_palettes();
                    self.checkpoint().await;
                }
            }
        }
    }

    async fn handle(&mut self, event: LiveEvent) {
        let actions = self.live.handle(event, self.services.clock.now());
        self.execute(actions).await;
    }

    /// Media events of one leg, as commands of this live.
    fn leg_events(&self, conn: ConnId) -> mpsc::UnboundedSender<(LegId, LegEvent)> {
        let (events, mut received) = mpsc::unbounded_channel();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some((_, event)) = received.recv().await {
                match event {
                    LegEvent::Lost => {
                        let _ = tx.send(LiveCommand::MediaLost { conn });
                        return;
                    }
                    LegEvent::Connected => {
                        let _ = tx.send(LiveCommand::MediaConnected { conn });
                    }
                    LegEvent::MediaArrived => {}
                }
            }
        });
        events
    }

    async fn open_leg(&mut self, conn: ConnId, offer: &str, spec: LegSpec) -> Option<LegId> {
        let events = self.leg_events(conn);
        if self.media.is_none() {
            match MediaRoom::start(&self.services.media) {
                Ok(media) => self.media = Some(media),
                Err(e) => tracing::error!("live {}: media: {e}", self.token),
            }
        }
        let opened = match &self.media {
            Some(media) => media.open(offer, spec, events).await,
            None => Err(SfuError::Closed),
        };
        match opened {
            Ok((leg, answer)) => {
                self.services.hub.send(
                    conn,
                    ServerMessage::MediaAnswer {
                        call_token: self.token.to_string(),
                        answer,
                    },
                );
                Some(leg)
            }
            Err(e) => {
                tracing::error!("live {}: media for {conn}: {e}", self.token);
                // The app or page says why before the live ends for it.
                self.services.hub.send(
                    conn,
                    ServerMessage::Error {
                        message: format!("映像・音声を接続できませんでした: {e}"),
                    },
                );
                None
            }
        }
    }

    async fn on_command(&mut self, command: LiveCommand) {
        match command {
            LiveCommand::Media { conn, offer } if conn == self.broadcaster => {
                if self.live.phase() != LivePhase::Ready || self.source.is_some() {
                    return;
                }
                match self.open_leg(conn, &offer, BROADCASTER).await {
                    Some(leg) => self.source = Some(leg),
                    None => self.handle(LiveEvent::BroadcasterLost).await,
                }
            }
            LiveCommand::Start { conn } if conn == self.broadcaster => {
                if self.source.is_some() {
                    self.handle(LiveEvent::StartPressed).await;
                } else {
                    self.tell(
                        conn,
                        LiveNotice::Refused {
                            message: "映像がまだサーバに届いていません。少し待ってからもう一度押してください。".into(),
                        },
                    );
                }
            }
            LiveCommand::View { conn, link_id } => {
                let Some(view) = self.services.hub.view(conn) else {
                    return;
                };
                if self.viewers.contains_key(&conn) || conn == self.broadcaster {
                    return;
                }
                if view.device.site != self.site.code {
                    return refuse(
                        &self.services,
                        conn,
                        self.token.as_str(),
                        "このライブは別のサイトのものです。",
                    );
                }
                if !self
                    .services
                    .hub
                    .engage(conn, Engagement::Live(self.token.clone()))
                {
                    return refuse(
                        &self.services,
                        conn,
                        self.token.as_str(),
                        "通話中またはライブ中のため視聴できません。",
                    );
                }
                self.next_viewer += 1;
                let id = ViewerId(self.next_viewer);
                self.viewers.insert(
                    conn,
                    ViewerConn {
                        id,
                        admitted: false,
                        palette: Vec::new(),
                        leg: None,
                    },
                );
                self.by_viewer.insert(id, conn);
                self.handle(LiveEvent::ViewerJoined {
                    viewer: id,
                    user_id: view.device.user_id.clone(),
                    link_id,
                    device: device_facts(&view),
                })
                .await;
            }
            LiveCommand::Receive { conn, offer } => {
                let ready = self
                    .viewers
                    .get(&conn)
                    .is_some_and(|v| v.admitted && v.leg.is_none());
                if !ready {
                    return;
                }
                let leg = match self.source {
                    Some(_) => self.open_leg(conn, &offer, VIEWER).await,
                    None => None,
                };
                let Some(leg) = leg else {
                    if let Some(id) = self.viewers.get(&conn).map(|v| v.id) {
                        self.handle(LiveEvent::ViewerLeft { viewer: id }).await;
                    }
                    return;
                };
                if let Some(viewer) = self.viewers.get_mut(&conn) {
                    viewer.leg = Some(leg);
                }
            }
            LiveCommand::MediaReceived { conn } => {
                if let Some(id) = self.viewers.get(&conn).map(|v| v.id) {
                    self.handle(LiveEvent::ViewerMediaReceived { viewer: id })
                        .await;
                }
            }
            LiveCommand::Comment { conn, text } => {
                let from = if conn == self.broadcaster {
                    Speaker::Broadcaster
                } else if let Some(viewer) = self.viewers.get(&conn) {
                    Speaker::Viewer(viewer.id)
                } else {
                    return;
                };
                self.handle(LiveEvent::Comment { from, text }).await;
            }
            LiveCommand::Item {
                conn,
                category,
                item_no,
            } => {
                let Some(id) = self.viewers.get(&conn).map(|v| v.id) else {
                    return;
                };
                // Only what this viewer's palette shows now (§5.4.5), or its
                // greeting, which may come from a category the palette hides.
                let wanted = (category, item_no);
                let greeting = self.live.greeting(id).filter(|g| *g == wanted);
                let item = match greeting {
                    Some(_) => self
                        .site
                        .gifts
                        .iter()
                        .map(|entry| &entry.item)
                        .find(|g| (&g.category, &g.item_no) == (&wanted.0, &wanted.1))
                        .cloned(),
                    None => self
                        .palette(id)
                        .into_iter()
                        .find(|g| (&g.category, &g.item_no) == (&wanted.0, &wanted.1)),
                };
                match item {
                    Some(item) => self.handle(LiveEvent::Item { viewer: id, item }).await,
                    None => self.services.hub.send(
                        conn,
                        ServerMessage::Live {
                            live_token: self.token.to_string(),
                            notice: LiveNotice::Refused {
                                message: "このギフトはありません。".into(),
                            },
                        },
                    ),
                }
            }
            LiveCommand::Leave { conn } | LiveCommand::ConnLost { conn } => {
                if conn == self.broadcaster {
                    let event = match command {
                        LiveCommand::Leave { .. } => LiveEvent::EndPressed,
                        _ => LiveEvent::BroadcasterLost,
                    };
                    self.handle(event).await;
                } else if let Some(id) = self.viewers.get(&conn).map(|v| v.id) {
                    self.handle(LiveEvent::ViewerLeft { viewer: id }).await;
                }
            }
            // §5.3.10 wants 32 after decoded media; a WHEP client has no way
            // to say so, and its connection coming up is the nearest sign.
            LiveCommand::MediaConnected { conn } => {
                let http = self
                    .services
                    .hub
                    .view(conn)
                    .is_some_and(|v| v.kind == ConnKind::Http);
                if let Some(id) = self.viewers.get(&conn).map(|v| v.id).filter(|_| http) {
                    self.handle(LiveEvent::ViewerMediaReceived { viewer: id })
                        .await;
                }
            }
            LiveCommand::MediaLost { conn } => {
                if conn == self.broadcaster {
                    self.handle(LiveEvent::BroadcasterLost).await;
                } else if let Some(id) = self.viewers.get(&conn).map(|v| v.id) {
                    self.handle(LiveEvent::ViewerLeft { viewer: id }).await;
                }
            }
            LiveCommand::RemoveViewer { conn, user_id } if conn == self.broadcaster => {
                if let Some(viewer) = self.viewer_named(&user_id) {
                    self.handle(LiveEvent::RemoveViewer { viewer }).await;
                }
            }
            LiveCommand::PaidSwitch { conn, unit_price } if conn == self.broadcaster => {
                self.handle(LiveEvent::PaidSwitch { unit_price }).await;
            }
            LiveCommand::Favorite { conn, favorite } => {
                if let Some(viewer) = self.viewers.get(&conn).map(|v| v.id) {
                    self.handle(LiveEvent::Favorite { viewer, favorite }).await;
                }
            }
            LiveCommand::Payment {
                conn,
                amount,
                payment_id,
            } => self.pay(conn, amount, payment_id),
            LiveCommand::PaymentSettled { viewer } => {
                self.payments.remove(&viewer);
            }
            LiveCommand::Adjust {
                user_id,
                points,
                applied,
            } => match self.live.viewer_of(&user_id) {
                Some(viewer) => {
                    let _ = applied.send(true);
                    self.handle(LiveEvent::BalanceAdjusted { viewer, points })
                        .await;
                }
                None => {
                    let _ = applied.send(false);
                }
            },
            LiveCommand::AdminRemovesViewer {
                user_id,
                comment,
                done,
            } => {
                let viewer = self.viewer_named(&user_id);
                let _ = done.send(viewer.is_some());
                if let Some(viewer) = viewer {
                    self.handle(LiveEvent::AdminRemovesViewer { viewer, comment })
                        .await;
                }
            }
            LiveCommand::Describe { reply } => {
                let _ = reply.send(self.room());
            }
            LiveCommand::Event(event) => self.handle(event).await,
            // Only the broadcaster starts, removes viewers or makes the live paid.
            LiveCommand::Start { .. }
            | LiveCommand::Media { .. }
            | LiveCommand::RemoveViewer { .. }
            | LiveCommand::PaidSwitch { .. } => {}
        }
    }

    /// §5.3.16: the partner's payment URL is asked (up to 180 s, off this
    /// task); the points it reports reach the viewer's ledger and 36 follows.
    fn pay(&mut self, conn: ConnId, amount: u32, payment_id: String) {
        let refuse = |message: &str| {
            self.tell(
                conn,
                LiveNotice::Refused {
                    message: message.to_owned(),
                },
            );
        };
        let Some(viewer) = self.viewers.get(&conn).map(|v| v.id) else {
            return;
        };
        let Some((link_id, user_id)) = self.live.viewer_link(viewer) else {
            return;
        };
        // Only the amounts the partner offered (quickPayments, §5.4.6).
        if !self.live.quick_payments(viewer).contains(&amount) {
            return refuse("この金額ではポイントを購入できません。");
        }
        match self.payments.get(&viewer) {
            // The same payment again (a resend): it is already on its way.
            Some(pending) if *pending == payment_id => return,
            Some(_) => {
                return refuse(
                    "前のポイント購入を処理しています。完了してからもう一度お試しください。",
                );
            }
            None => {}
        }
        let Some(url) = self.site.payment_url.clone() else {
            return refuse("このサイトではポイントを購入できません。");
        };
        let query = PaymentRequest {
            site_key: self.site.api_key.clone(),
            live_token: self.token.to_string(),
            link_id,
            user_id,
            payment: amount,
            payment_id: Some(payment_id.clone()),
        }
        .to_query();
        self.payments.insert(viewer, payment_id);
        let (client, site, tx, services) = (
            self.services.partner.clone(),
            self.site.clone(),
            self.tx.clone(),
            Arc::clone(&self.services),
        );
        let token = self.token.to_string();
        tokio::spawn(async move {
            let paid = client
                .get(&site, &url, &query, PAYMENT_TIMEOUT)
                .await
                .and_then(|delivery| delivery.accepted_body())
                .and_then(|body| PaymentReply::parse(&body));
            let _ = tx.send(LiveCommand::PaymentSettled { viewer });
            match paid {
                Ok(reply) => {
                    let event = LiveEvent::PaymentDone {
                        viewer,
                        points: reply.point,
                    };
                    let _ = tx.send(LiveCommand::Event(event));
                }
                Err(failure) => services.hub.send(
                    conn,
                    ServerMessage::Live {
                        live_token: token,
                        notice: LiveNotice::Refused {
                            message: failure.user_message_ja(),
                        },
                    },
                ),
            }
        });
    }

    fn send_palette(&self, conn: ConnId, items: Vec<nexmile_core::signal::GiftItem>) {
        self.services.hub.send(
            conn,
            ServerMessage::GiftCatalogue {
                live_token: self.token.to_string(),
                items,
            },
        );
    }

    /// Resends each viewer's palette that changed since it was sent: an
    /// item's period began or ended, or a specialGift's window did.
    fn refresh_palettes(&mut self) {
        let conns: Vec<(ConnId, ViewerId)> = self
            .viewers
            .iter()
            .filter(|(_, v)| v.admitted)
            .map(|(conn, v)| (*conn, v.id))
            .collect();
        for (conn, id) in conns {
            let palette = self.palette(id);
            let Some(viewer) = self.viewers.get_mut(&conn) else {
                continue;
            };
            if viewer.palette != palette {
                viewer.palette.clone_from(&palette);
                self.send_palette(conn, palette);
            }
        }
    }

    /// The stamps and gifts this viewer may send now.
    fn palette(&self, viewer: ViewerId) -> Vec<nexmile_core::signal::GiftItem> {
        nexmile_core::live::palette(
            &self.site.gifts,
            &self.live.special_gifts(viewer),
            self.services.clock.now(),
        )
    }

    /// The live as a SkyWay room: the broadcaster publishes once its media
    /// reached the server; each viewer with a media leg receives it.
    fn room(&self) -> Room {
        let user = |conn: ConnId| {
            self.services
                .hub
                .view(conn)
                .map(|v| v.device.user_id)
                .unwrap_or_default()
        };
        let audio_only = self
            .live
            .prepared()
            .and_then(|p| p.service.audio_only)
            .unwrap_or(false);
        let publishes = match (&self.source, audio_only) {
            (None, _) => vec![],
            (Some(_), true) => vec![ContentType::Audio],
            (Some(_), false) => vec![ContentType::Audio, ContentType::Video],
        };
        let mut participants = vec![Participant {
            name: user(self.broadcaster),
            publishes,
            receives_from: vec![],
        }];
        let mut viewers: Vec<(&ConnId, &ViewerConn)> = self.viewers.iter().collect();
        viewers.sort_by_key(|(_, v)| v.id.0);
        participants.extend(viewers.into_iter().map(|(conn, viewer)| Participant {
            name: user(*conn),
            publishes: vec![],
            receives_from: if viewer.leg.is_some() {
                vec![0]
            } else {
                vec![]
            },
        }));
        Room {
            id: self.token.to_string(),
            name: room_name(&self.site.code, "live", &self.live.setup().link_id),
            participants,
        }
    }

    /// The viewer who is `user_id` on one of its devices.
    fn viewer_named(&self, user_id: &str) -> Option<ViewerId> {
        self.viewers.iter().find_map(|(conn, viewer)| {
            self.services
                .hub
                .view(*conn)
                .filter(|view| view.device.user_id == user_id)
                .map(|_| viewer.id)
        })
    }

    fn tell(&self, conn: ConnId, notice: LiveNotice) {
        self.services.hub.send(
            conn,
            ServerMessage::Live {
                live_token: self.token.to_string(),
                notice,
            },
        );
    }

    /// Records the reports the partner gets if the server dies now (the
    /// live's 13 or 29, each viewing's 33), when due: every 4 s and after
    /// each paid viewer's billing-unit boundary.
    async fn checkpoint(&mut self) {
        let now = self.services.clock.now();
        if self.live.phase() == LivePhase::Ended || !self.checkpoints.due(now) {
            return;
        }
        let Some(url) = &self.site.live_service_url else {
            return;
        };
        let pending: Vec<PendingReport> = self
            .live
            .provisional_end_reports(now)
            .iter()
            .map(|request| PendingReport {
                key: report_key(request),
                site: self.site.code.clone(),
                url: url.clone(),
                body: encode_json_body(request),
                reason: None,
            })
            .collect();
        match self
            .services
            .store
            .checkpoint(self.token.as_str(), &pending, now.0)
            .await
        {
            Ok(()) => self
                .checkpoints
                .recorded(now, self.live.next_unit_boundary(now)),
            Err(e) => tracing::error!("live {}: checkpoint not stored: {e}", self.token),
        }
    }

    /// Before anyone hears of an ending: the end reports among `actions`
    /// (33s, and 13 or 29) queued in the outbox in one transaction that also
    /// clears their running records (all of them when the live ends).
    /// Returns whether the outbox has new entries to send.
    async fn settle(&self, actions: &[LiveAction]) -> bool {
        let Some(url) = &self.site.live_service_url else {
            return false;
        };
        let entries: Vec<_> = actions
            .iter()
            .filter_map(|action| match action {
                LiveAction::Partner {
                    request,
                    retried: true,
                    ..
                } => Some((
                    report_key(request),
                    self.services.outbox.entry(
                        &self.site.code,
                        url,
                        encode_json_body(request.as_ref()),
                    ),
                )),
                _ => None,
            })
            .collect();
        let live_ended = actions.iter().any(|a| matches!(a, LiveAction::Ended(_)));
        if entries.is_empty() && !live_ended {
            return false;
        }
        match self
            .services
            .store
            .settle(self.token.as_str(), &entries, live_ended, None)
            .await
        {
            Ok(()) => !entries.is_empty(),
            // The last checkpoint stays, and is reported at the next start.
            Err(e) => {
                tracing::error!("live {}: end reports not stored: {e}", self.token);
                false
            }
        }
    }

    /// Sends a request that expects a reply or only a status; the task
    /// ends once the partner answered (or did not in time).
    fn send_partner(
        &self,
        request: LiveServiceRequest,
        awaited: Option<nexmile_core::live::Awaited>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let url = self.site.live_service_url.clone()?;
        let body = encode_json_body(&request);
        let site = self.site.clone();
        let client = self.services.partner.clone();
        let tx = self.tx.clone();
        let kind = request.request.live_service_type();
        Some(tokio::spawn(async move {
            let request_id = uuid::Uuid::new_v4().to_string();
            let reply = client
                .post(&site, &url, &body, &request_id, REPLY_TIMEOUT)
                .await
                .and_then(|delivery| delivery.accepted_body());
            match awaited {
                Some(to) => {
                    let _ = tx.send(LiveCommand::Event(LiveEvent::Replied { to, reply }));
                }
                None => {
                    if let Err(e) = reply {
                        tracing::warn!("liveService {kind:?}: {e}");
                    }
                }
            }
        }))
    }

    fn release(&mut self, conn: ConnId) {
        if let Some(viewer) = self.viewers.remove(&conn) {
            self.by_viewer.remove(&viewer.id);
            if let (Some(leg), Some(media)) = (viewer.leg, &self.media) {
                media.close(leg);
            }
        }
        self.services.hub.free(conn);
    }

    async fn execute(&mut self, actions: Vec<LiveAction>) {
        let queued = self.settle(&actions).await;
        let mut sent = Vec::new();
        for action in actions {
            match action {
                LiveAction::Partner {
                    request,
                    retried: false,
                    awaited,
                } => sent.extend(self.send_partner(*request, awaited)),
                // 13, 29 and 33: stored by settle, before anyone was told.
                LiveAction::Partner { retried: true, .. } => {}
                LiveAction::ToBroadcaster(notice) => self.tell(self.broadcaster, notice),
                LiveAction::ToViewer(id, notice) => {
                    if let Some(conn) = self.by_viewer.get(&id) {
                        self.tell(*conn, notice);
                    }
                }
                LiveAction::ToEveryone(notice) => {
                    if let LiveNotice::Comment {
                        name,
                        text,
                        from_broadcaster,
                        image,
                        ..
                    } = &notice
                    {
                        let comment = Comment {
                            name,
                            text,
                            from_broadcaster: *from_broadcaster,
                            image: image.as_deref(),
                        };
                        let now = self.services.clock.now().0;
                        self.social.comment(self.token.as_str(), now, &comment);
                    }
                    self.tell(self.broadcaster, notice.clone());
                    for (conn, viewer) in &self.viewers {
                        if viewer.admitted {
                            self.tell(*conn, notice.clone());
                        }
                    }
                }
                LiveAction::Admit(id) => {
                    let Some(conn) = self.by_viewer.get(&id).copied() else {
                        continue;
                    };
                    let palette = self.palette(id);
                    if let Some(viewer) = self.viewers.get_mut(&conn) {
                        viewer.admitted = true;
                        viewer.palette.clone_from(&palette);
                    }
                    self.send_palette(conn, palette);
                }
                LiveAction::Release(id) => {
                    if let Some(conn) = self.by_viewer.get(&id).copied() {
                        self.release(conn);
                    }
                }
                LiveAction::Record { audio_only } => {
                    let (Some(_), Some(media)) = (self.source, &self.media) else {
                        continue;
                    };
                    let path = recording_path(
                        &self.services.config.server.recordings,
                        &self.site.code,
                        &self.live.setup().link_id,
                        self.services.clock.now(),
                    );
                    tracing::info!("live {}: recording to {}", self.token, path.display());
                    let tracks = if audio_only {
                        Tracks::AudioOnly
                    } else {
                        Tracks::AudioVideo
                    };
                    tokio::spawn(crate::media::recorder::record(
                        media.tap(BROADCAST),
                        path,
                        tracks,
                    ));
                }
                LiveAction::Ended(reason) => {
                    tracing::info!("live {} ended: {reason:?}", self.token);
                    let conns: Vec<ConnId> = self.viewers.keys().copied().collect();
                    for conn in conns {
                        self.release(conn);
                    }
                    if let (Some(source), Some(media)) = (self.source.take(), &self.media) {
                        media.close(source);
                    }
                    self.services.hub.free(self.broadcaster);
                    self.social
                        .close(self.token.as_str(), self.services.clock.now().0);
                }
            }
        }
        // The partner hears the queued reports after the requests of the
        // same moment were answered: 96 before the 13 it leads to.
        if queued {
            let outbox = self.services.outbox.clone();
            tokio::spawn(async move {
                for request in sent {
                    let _ = request.await;
                }
                outbox.wake();
            });
        }
    }
}

/// `<recordings>/<site>/<linkId>_<JST date-time>.mp4`; the partner's linkId
/// is reduced to characters safe in a file name.
fn recording_path(root: &Path, site: &str, link_id: &str, now: UnixMillis) -> PathBuf {
    let safe = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect()
    };
    let when = WireDateTime::from_unix_millis(now, JST)
        .imageflux_listing()
        .replace(':', "");
    root.join(safe(site))
        .join(format!("{}_{when}.mp4", safe(link_id)))
}
