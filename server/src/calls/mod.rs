//! The call service (chapter 4): one task per call owns core's [`Call`]
//! state machine, feeds it what happens (app messages, partner replies,
//! media, the clock) and carries out its actions.

use std::sync::Arc;
use std::time::Duration;

use nexmile_compat::skyway::{ContentType, Participant, Room, room_name};
use nexmile_core::call::{
    Call, CallAction, CallEvent, CallRequest, Phase, PreparedCall, RingOutcome,
};
use nexmile_core::checkpoint::CheckpointSchedule;
use nexmile_core::codec::{PartnerFailure, PartnerReply, encode_json_body};
use nexmile_core::party::Party;
use nexmile_core::signal::{CallDetails, ServerMessage};
use nexmile_core::wire::call::{CallParty, CallServiceRequest};
use nexmile_core::wire::codes::{CallOption, CallServiceType, ServiceChargeType, UaType};
use nexmile_core::wire::site_service::{CallService, ServiceCharge, SiteService, User};
use nexmile_sfu::{Feed, LegEvent, LegId, LegSpec, Room as MediaRoom};
use tokio::sync::{mpsc, oneshot};

use crate::actors::{Registration, Registry};
use crate::config::SiteConfig;
use crate::hub::ConnId;
use crate::partner::REPLY_TIMEOUT;
use crate::services::Services;
use crate::store::{CallEnd, PendingReport};
use crate::tokens::{CallToken, Engagement};

/// What reaches a call's task.
pub(crate) enum Command {
    Start {
        conn: ConnId,
        offer: String,
    },
    Answer {
        conn: ConnId,
        offer: String,
    },
    Decline {
        conn: ConnId,
    },
    Hangup {
        conn: ConnId,
    },
    /// A participant's signalling connection closed.
    ConnLost {
        conn: ConnId,
    },
    Administrator,
    /// UpdateUserBalance for `user_id`: applied if this call bills that user.
    Adjust {
        user_id: String,
        points: i64,
        applied: oneshot::Sender<bool>,
    },
    /// Who is in the call and what flows where, for the SkyWay surface.
    Describe {
        reply: oneshot::Sender<Room>,
    },
    Event(CallEvent),
}

/// The calls now running, by callToken, and what their tasks share.
pub struct Calls {
    registry: Registry<CallToken, Command>,
    services: Arc<Services>,
}

impl Calls {
    pub fn new(services: Arc<Services>) -> Self {
        Self {
            registry: Registry::default(),
            services,
        }
    }

    pub(crate) fn send(&self, call_token: &CallToken, command: Command) -> bool {
        self.registry.send(call_token, command)
    }

    /// Offers a balance change to every call of `site`; true if one billed that user.
    pub async fn adjust(&self, site: &str, user_id: &str, points: i64) -> bool {
        for token in self.registry.tokens_of_site(site) {
            let command = |applied| Command::Adjust {
                user_id: user_id.to_owned(),
                points,
                applied,
            };
            // A call busy for longer than a second is not this user's.
            if self.registry.ask(&token, command).await == Some(true) {
                return true;
            }
        }
        false
    }

    /// Ends every running call as an administrator would (4 once connected,
    /// −9 before) and waits until each has stored its end report, up to
    /// `limit`: for a server that is stopping.
    pub async fn stop_all(&self, limit: Duration) {
        for token in self.registry.tokens() {
            self.send(&token, Command::Administrator);
        }
        self.registry.wait_until_empty(limit).await;
    }

    /// Every running call as a room; one that does not answer within a
    /// second is left out rather than holding the caller.
    pub async fn rooms(&self) -> Vec<Room> {
        let mut rooms = Vec::new();
        for token in self.registry.tokens() {
            if let Some(room) = self
                .registry
                .ask(&token, |reply| Command::Describe { reply })
                .await
            {
                rooms.push(room);
            }
        }
        rooms
    }

    pub(crate) fn running_tokens(&self) -> Vec<CallToken> {
        self.registry.tokens()
    }
}

/// The makecall link's request from a connected app.
pub struct MakeCall {
    pub callee_id: String,
    pub video: bool,
    pub caller_sub_id: Option<String>,
    pub callee_sub_id: Option<String>,
}

impl Calls {
    /// Starts a call for the app on `conn`.
    pub async fn make_call(&self, conn: ConnId, request: MakeCall) {
        let services = &self.services;
        let Some(caller) = services.hub.view(conn) else {
            return;
        };
        let call_token = CallToken::new();
        if !services
            .hub
            .engage(conn, Engagement::Call(call_token.clone()))
        {
            services.hub.send(
                conn,
                ServerMessage::Error {
                    message: "通話中のため発信できません。".into(),
                },
            );
            return;
        }
        let site = services.config.site(&caller.device.site).cloned();
        let now = services.clock.now();
        let call_request = CallRequest {
            site_token: site.as_ref().map_or_else(String::new, |s| s.token.clone()),
            call_token: call_token.to_string(),
            caller: CallParty {
                user_id: caller.device.user_id.clone(),
                user_sub_id: request.caller_sub_id,
                ua_type: Some(UaType::App),
                app_ver: Some(caller.info.app_version.clone()),
                device_name: Some(caller.info.device_name.clone()),
                os_ver: Some(caller.info.os_version.clone()),
            },
            callee: CallParty {
                user_id: request.callee_id.clone(),
                user_sub_id: request.callee_sub_id,
                ua_type: None,
                app_ver: None,
                device_name: None,
                os_ver: None,
            },
            video: request.video,
        };
        let (call, actions) = Call::new(call_request, now);
        let (tx, inbox) = mpsc::unbounded_channel();
        let registration = self
            .registry
            .register(&call_token, &caller.device.site, tx.clone());
        if let Err(e) = services
            .store
            .call_started(
                call_token.as_str(),
                &caller.device.site,
                &caller.device.user_id,
                &request.callee_id,
                now.0,
            )
            .await
        {
            tracing::error!("call {call_token}: {e}");
        }
        let (leg_tx, leg_events) = mpsc::unbounded_channel();
        let mut actor = CallActor {
            services: Arc::clone(services),
            _registration: registration,
            call,
            site,
            token: call_token,
            caller: conn,
            callee: None,
            ringing: Vec::new(),
            media: None,
            legs: [None, None],
            arrived: [false, false],
            tx,
            leg_tx,
            checkpoints: CheckpointSchedule::default(),
        };
        if actor.site.is_none() {
            // The built-in site has no partner: the server prepares the call itself.
            let local = actor.prepare_locally(&request.callee_id).await;
            actor
                .tx
                .send(Command::Event(CallEvent::PrepareReplied(local)))
                .ok();
        }
        actor.execute(actions).await;
        tokio::spawn(actor.run(inbox, leg_events));
    }
}

struct CallActor {
    services: Arc<Services>,
    /// Keeps the call in [`Calls`] while this task runs.
    _registration: Registration<CallToken, Command>,
    call: Call,
    site: Option<SiteConfig>,
    token: CallToken,
    caller: ConnId,
    callee: Option<ConnId>,
    ringing: Vec<ConnId>,
    /// The call's media room, started with the caller's leg.
    media: Option<MediaRoom>,
    /// Each side's connection: the caller's, the callee's.
    legs: [Option<LegId>; 2],
    arrived: [bool; 2],
    tx: mpsc::UnboundedSender<Command>,
    leg_tx: mpsc::UnboundedSender<(LegId, LegEvent)>,
    /// When the call next records its end report as of now (crash-safe billing).
    checkpoints: CheckpointSchedule,
}

fn side_index(party: Party) -> usize {
    match party {
        Party::Caller => 0,
        Party::Callee => 1,
    }
}

/// Each side publishes its own feed and receives the other's.
fn leg_spec(party: Party) -> LegSpec {
    let (own, other) = match party {
        Party::Caller => (Feed(0), Feed(1)),
        Party::Callee => (Feed(1), Feed(0)),
    };
    LegSpec {
        publishes: Some(own),
        receives: Some(other),
        paces_publisher: true,
    }
}

/// Reads 架電準備's reply: `result=0&service=…` with user, serviceCharge and callService.
fn parse_prepare_reply(body: &str) -> Result<Box<PreparedCall>, PartnerFailure> {
    let unusable = |detail: String| PartnerFailure::Unparseable { detail };
    match SiteService::from_reply(body, CallServiceType::Prepare.handling().required_reply)? {
        SiteService {
            user: Some(user),
            service_charge: Some(charge),
            call_service: Some(service),
            ..
        } => Ok(Box::new(PreparedCall {
            user,
            charge,
            service,
        })),
        _ => Err(unusable("the reply lacks a required class".into())),
    }
}

impl CallActor {
    async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Command>,
        mut leg_events: mpsc::UnboundedReceiver<(LegId, LegEvent)>,
    ) {
        let mut tick = tokio::time::interval(self.services.clock.real(Duration::from_secs(1)));
        while self.call.phase() != Phase::Ended {
            tokio::select! {
                Some(command) = inbox.recv() => self.on_command(command).await,
                Some(event) = leg_events.recv() => self.on_leg(event).await,
                _ = tick.tick() => {
                    self.handle(CallEvent::Tick).await;
                    self.report_billing();
                    self.checkpoint().await;
                }
            }
        }
        // Late commands (an UpdateUserBalance racing the end) get their answer.
        inbox.close();
        while let Ok(command) = inbox.try_recv() {
            if let Command::Adjust { applied, .. } = command {
                let _ = applied.send(false);
            }
        }
    }

    async fn handle(&mut self, event: CallEvent) {
        let actions = self.call.handle(event, self.services.clock.now());
        self.execute(actions).await;
    }

    fn party_of(&self, conn: ConnId) -> Option<Party> {
        if conn == self.caller {
            Some(Party::Caller)
        } else if Some(conn) == self.callee {
            Some(Party::Callee)
        } else {
            None
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Start { conn, offer } if conn == self.caller => {
                if self.call.phase() != Phase::Prepared {
                    return;
                }
                if self.open_leg(conn, Party::Caller, &offer).await {
                    self.handle(CallEvent::StartRequested).await;
                } else {
                    self.handle(CallEvent::InternalError).await;
                }
            }
            Command::Answer { conn, offer } if self.ringing.contains(&conn) => {
                if self.call.phase() != Phase::Ringing {
                    return;
                }
                self.callee = Some(conn);
                if !self.open_leg(conn, Party::Callee, &offer).await {
                    self.handle(CallEvent::InternalError).await;
                    return;
                }
                let view = self.services.hub.view(conn);
                let callee = CallParty {
                    user_id: String::new(),
                    user_sub_id: None,
                    ua_type: Some(UaType::App),
                    app_ver: view.as_ref().map(|v| v.info.app_version.clone()),
                    device_name: view.as_ref().map(|v| v.info.device_name.clone()),
                    os_ver: view.as_ref().map(|v| v.info.os_version.clone()),
                };
                self.handle(CallEvent::Answered { callee }).await;
            }
            Command::Decline { conn } if self.ringing.contains(&conn) => {
                self.handle(CallEvent::Declined).await;
            }
            Command::Hangup { conn } | Command::ConnLost { conn } => {
                if let Some(party) = self.party_of(conn) {
                    self.handle(CallEvent::HungUp(party)).await;
                } else {
                    self.ringing.retain(|c| *c != conn);
                }
            }
            Command::Administrator => self.handle(CallEvent::Administrator).await,
            Command::Adjust {
                user_id,
                points,
                applied,
            } => {
                let bills_user = self.call.phase() == Phase::Connected
                    && self.payer_id().as_deref() == Some(user_id.as_str());
                if bills_user {
                    self.handle(CallEvent::BalanceAdjusted(points)).await;
                    self.report_billing();
                }
                let _ = applied.send(bills_user);
            }
            Command::Describe { reply } => {
                let _ = reply.send(self.room());
            }
            Command::Event(event) => self.handle(event).await,
            // A message from a device that is not part of this call: ignored.
            _ => {}
        }
    }

    async fn on_leg(&mut self, (leg, event): (LegId, LegEvent)) {
        let party = if self.legs[0] == Some(leg) {
            Party::Caller
        } else if self.legs[1] == Some(leg) {
            Party::Callee
        } else {
            return;
        };
        match event {
            LegEvent::MediaArrived => {
                self.arrived[side_index(party)] = true;
                if self.arrived == [true, true] {
                    self.handle(CallEvent::MediaFlowing).await;
                }
            }
            LegEvent::Lost => self.handle(CallEvent::HungUp(party)).await,
            LegEvent::Connected => {}
        }
    }

    /// The call as a SkyWay room: each side publishes once its media leg
    /// is open, and receives the other's once both are.
    fn room(&self) -> Room {
        let video = self
            .call
            .prepared()
            .map_or(self.call.request().video, |p| p.service.video_call);
        let kinds = if video {
            vec![ContentType::Audio, ContentType::Video]
        } else {
            vec![ContentType::Audio]
        };
        let linked = self.legs.iter().all(Option::is_some);
        let side = |index: usize, name: String| Participant {
            name,
            publishes: if self.legs[index].is_some() {
                kinds.clone()
            } else {
                vec![]
            },
            receives_from: if linked { vec![1 - index] } else { vec![] },
        };
        let mut participants = vec![side(0, self.call.request().caller.user_id.clone())];
        if let Some(callee) = self.callee.and_then(|conn| self.services.hub.view(conn)) {
            participants.push(side(1, callee.device.user_id));
        }
        let site = self.site.as_ref().map_or("", |s| s.code.as_str());
        Room {
            id: self.token.to_string(),
            name: room_name(site, "call", self.token.as_str()),
            participants,
        }
    }

    /// The payer's user ID at the site (the caller, or the callee when paidCallee).
    fn payer_id(&self) -> Option<String> {
        let prepared = self.call.prepared()?;
        Some(match prepared.payer() {
            Party::Caller => self.call.request().caller.user_id.clone(),
            Party::Callee => prepared.service.callee_user_id.clone(),
        })
    }

    async fn open_leg(&mut self, conn: ConnId, party: Party, offer: &str) -> bool {
        if self.media.is_none() {
            match MediaRoom::start(&self.services.media) {
                Ok(media) => self.media = Some(media),
                Err(e) => {
                    tracing::error!("call {}: media: {e}", self.token);
                    return false;
                }
            }
        }
        let Some(media) = &self.media else {
            return false;
        };
        match media
            .open(offer, leg_spec(party), self.leg_tx.clone())
            .await
        {
            Ok((leg, answer)) => {
                self.legs[side_index(party)] = Some(leg);
                self.services.hub.send(
                    conn,
                    ServerMessage::MediaAnswer {
                        call_token: self.token.to_string(),
                        answer,
                    },
                );
                true
            }
            Err(e) => {
                tracing::warn!("call {}: media: {e}", self.token);
                false
            }
        }
    }

    fn report_billing(&self) {
        if self.call.phase() != Phase::Connected {
            return;
        }
        let Some(prepared) = self.call.prepared() else {
            return;
        };
        let now = self.services.clock.now();
        let message = ServerMessage::Billing {
            call_token: self.token.to_string(),
            payer: prepared.payer(),
            time_left_sec: self.call.time_left(now).map(|d| d.as_secs()),
            used_points: self.call.used_points(now),
        };
        self.services.hub.send(self.caller, message.clone());
        if let Some(callee) = self.callee {
            self.services.hub.send(callee, message);
        }
    }

    /// The built-in site's prepare: the callee is an app phone number, calls are free.
    async fn prepare_locally(&self, phone: &str) -> Result<Box<PreparedCall>, PartnerFailure> {
        let refused = |message: &str| PartnerFailure::Refused {
            result: 1,
            message: Some(message.to_owned()),
        };
        let callee = match self
            .services
            .store
            .device_by_phone("nexmile", phone.trim())
            .await
        {
            Ok(Some(device)) => device,
            Ok(None) => return Err(refused("この番号は登録されていません。")),
            Err(e) => {
                tracing::error!("{e}");
                return Err(refused("サーバでエラーが発生しました。"));
            }
        };
        let caller = self.services.hub.view(self.caller);
        let allowed = CallOption::FACE_FILTER | CallOption::MOSAIC | CallOption::WALLPAPER;
        Ok(Box::new(PreparedCall {
            user: User {
                user_id: self.call.request().caller.user_id.clone(),
                name: caller.map_or_else(String::new, |c| c.device.name),
                ..User::default()
            },
            charge: ServiceCharge {
                service_charge_type: ServiceChargeType::Call,
                unit_sec: 0,
                unit_price: 0,
                point_price: 0,
                current_point: 0,
                free_trial_sec: 0,
                auto_charge_trigger_point: 0,
                auto_charge_trigger_url: None,
            },
            service: CallService {
                call_token: self.token.to_string(),
                caller_option: allowed,
                callee_user_id: callee.user_id,
                callee_user_nm: callee.name,
                callee_profile_image_url: None,
                callee_option: allowed,
                callee_return_url: None,
                call_user_sub_id: None,
                callee_candidate_mode: None,
                caller_id_prefix: None,
                video_call: self.call.request().video,
                calling_timeout: 30,
                paid_callee: false,
            },
        }))
    }

    fn details(&self, party: Party) -> Option<CallDetails> {
        let prepared = self.call.prepared()?;
        let service = &prepared.service;
        let (peer_name, peer_image_url, return_url, candidate_mode) = match party {
            Party::Caller => (
                service.callee_user_nm.clone(),
                service.callee_profile_image_url.clone(),
                None,
                prepared.user.candidate_mode,
            ),
            Party::Callee => {
                let site_name = self.site.as_ref().map_or("Nexmile", |s| s.display_name());
                let prefix = service.caller_id_prefix.as_deref().unwrap_or("");
                (
                    format!("{site_name}{prefix}{}", prepared.user.name),
                    prepared.user.profile_image_url.clone(),
                    service.callee_return_url.clone(),
                    service.callee_candidate_mode,
                )
            }
        };
        Some(CallDetails {
            call_token: self.token.to_string(),
            peer_name,
            peer_image_url,
            video: service.video_call,
            options: prepared.options(party),
            ring_timeout_sec: u32::try_from(prepared.ring_timeout().as_secs()).unwrap_or(30),
            return_url,
            candidate_mode,
        })
    }

    /// Records the 6 the partner gets if the server dies now, when one is due
    /// (every 4 s and after each billing-unit boundary).
    async fn checkpoint(&mut self) {
        let now = self.services.clock.now();
        if self.call.phase() == Phase::Ended || !self.checkpoints.due(now) {
            return;
        }
        let (Some(site), Some(report)) = (&self.site, self.call.provisional_end_report(now)) else {
            return;
        };
        let Some(url) = &site.call_service_url else {
            return;
        };
        let pending = PendingReport {
            key: format!("call/{}", self.token),
            site: site.code.clone(),
            url: url.clone(),
            reason: report
                .call_overview
                .as_ref()
                .map(|o| i32::from(o.terminate_reason as i8)),
            body: encode_json_body(&report),
        };
        match self
            .services
            .store
            .checkpoint(self.token.as_str(), &[pending], now.0)
            .await
        {
            Ok(()) => self
                .checkpoints
                .recorded(now, self.call.next_unit_boundary(now)),
            Err(e) => tracing::error!("call {}: checkpoint not stored: {e}", self.token),
        }
    }

    /// Before anyone hears that the call ended: its 通話終了 (6) queued in the
    /// outbox and its end written, in one transaction.
    async fn settle(&self, actions: &[CallAction]) {
        let Some((reason, overview)) = actions.iter().find_map(|a| match a {
            CallAction::Ended {
                reason, overview, ..
            } => Some((*reason, overview)),
            _ => None,
        }) else {
            return;
        };
        let report = actions.iter().find_map(|a| match a {
            CallAction::Partner {
                request,
                retried: true,
            } => Some(request),
            _ => None,
        });
        let mut entries = Vec::new();
        if let (Some(request), Some(site)) = (report, &self.site)
            && let Some(url) = &site.call_service_url
        {
            if let Err(e) = request.check() {
                tracing::error!("call {}: {e}", self.token);
            }
            let entry =
                self.services
                    .outbox
                    .entry(&site.code, url, encode_json_body(request.as_ref()));
            entries.push((format!("call/{}", self.token), entry));
        }
        let overview = overview
            .as_ref()
            .and_then(|o| serde_json::to_string(o).ok());
        let end = CallEnd {
            call_token: self.token.as_str(),
            reason: i32::from(reason as i8),
            overview: overview.as_deref(),
            at: self.services.clock.now().0,
        };
        match self
            .services
            .store
            .settle(self.token.as_str(), &entries, true, Some(&end))
            .await
        {
            Ok(()) if !entries.is_empty() => self.services.outbox.wake(),
            Ok(()) => {}
            // Its last checkpoint stays, and is reported at the next start.
            Err(e) => tracing::error!("call {}: end not stored: {e}", self.token),
        }
    }

    /// Sends a request that expects a reply (1, 3) or only a status (4, 5).
    fn send_partner(&self, request: CallServiceRequest) {
        let Some(site) = self.site.clone() else {
            // The built-in site: its start needs no partner's consent.
            if request.call_service_type == CallServiceType::Start {
                let _ = self
                    .tx
                    .send(Command::Event(CallEvent::StartReplied(Ok(()))));
            }
            return;
        };
        let Some(url) = site.call_service_url.clone() else {
            // A site without a CallService URL takes calls on the server's terms.
            let _ = self.tx.send(Command::Event(CallEvent::InternalError));
            return;
        };
        if let Err(e) = request.check() {
            tracing::error!("call {}: {e}", self.token);
        }
        let body = encode_json_body(&request);
        let kind = request.call_service_type;
        let client = self.services.partner.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let request_id = uuid::Uuid::new_v4().to_string();
            let reply = client
                .post(&site, &url, &body, &request_id, REPLY_TIMEOUT)
                .await
                .and_then(|delivery| delivery.accepted_body());
            let event = match kind {
                CallServiceType::Prepare => {
                    CallEvent::PrepareReplied(reply.and_then(|body| parse_prepare_reply(&body)))
                }
                CallServiceType::Start => CallEvent::StartReplied(
                    reply.and_then(|body| PartnerReply::parse_accepted(&body).map(|_| ())),
                ),
                // 4 and 5 want only an HTTP status; nothing depends on it.
                _ => {
                    if let Err(e) = reply {
                        tracing::warn!("CallService {kind:?}: {e}");
                    }
                    return;
                }
            };
            let _ = tx.send(Command::Event(event));
        });
    }

    async fn execute(&mut self, actions: Vec<CallAction>) {
        self.settle(&actions).await;
        for action in actions {
            match action {
                CallAction::Partner {
                    request,
                    retried: false,
                } => self.send_partner(*request),
                // 6: stored by settle, with the call's end.
                CallAction::Partner { retried: true, .. } => {}
                CallAction::Prepared => {
                    if let Some(details) = self.details(Party::Caller) {
                        self.services
                            .hub
                            .send(self.caller, ServerMessage::CallPrepared(details));
                    }
                }
                CallAction::Ring => {
                    let outcome = self.ring();
                    self.tx
                        .send(Command::Event(CallEvent::RingResult(outcome)))
                        .ok();
                }
                CallAction::StopRinging => {
                    for conn in std::mem::take(&mut self.ringing) {
                        if Some(conn) != self.callee {
                            self.services.hub.free(conn);
                            self.services.hub.send(
                                conn,
                                ServerMessage::IncomingCancelled {
                                    call_token: self.token.to_string(),
                                },
                            );
                        }
                    }
                }
                CallAction::Connected => {
                    let message = ServerMessage::Connected {
                        call_token: self.token.to_string(),
                    };
                    self.services.hub.send(self.caller, message.clone());
                    if let Some(callee) = self.callee {
                        self.services.hub.send(callee, message);
                    }
                }
                CallAction::AutoCharge { url } => {
                    if let Some(site) = self.site.clone() {
                        let client = self.services.partner.clone();
                        tokio::spawn(async move {
                            if let Err(e) = client.get(&site, &url, "", REPLY_TIMEOUT).await {
                                tracing::warn!("auto-charge {url}: {e}");
                            }
                        });
                    }
                }
                CallAction::Ended {
                    reason,
                    message,
                    overview,
                } => {
                    let ended = ServerMessage::CallEnded {
                        call_token: Some(self.token.to_string()),
                        reason,
                        message,
                        overview: overview.clone(),
                    };
                    self.services.hub.send(self.caller, ended.clone());
                    if let Some(callee) = self.callee {
                        self.services.hub.send(callee, ended);
                    }
                    // Dropped, the room ends both connections.
                    self.media = None;
                    self.services
                        .hub
                        .release(&Engagement::Call(self.token.clone()));
                }
            }
        }
    }

    /// Rings every free device of the callee user (decision 14).
    fn ring(&mut self) -> RingOutcome {
        let (Some(prepared), Some(details)) = (self.call.prepared(), self.details(Party::Callee))
        else {
            return RingOutcome::Unreachable;
        };
        let site = self
            .site
            .as_ref()
            .map_or("nexmile", |s| s.code.as_str())
            .to_owned();
        let conns: Vec<_> = self
            .services
            .hub
            .user_conns(&site, &prepared.service.callee_user_id)
            .into_iter()
            .filter(|c| c.id != self.caller)
            .collect();
        if conns.is_empty() {
            return RingOutcome::Unreachable;
        }
        for conn in &conns {
            if self
                .services
                .hub
                .engage(conn.id, Engagement::Call(self.token.clone()))
            {
                self.ringing.push(conn.id);
                self.services
                    .hub
                    .send(conn.id, ServerMessage::Incoming(details.clone()));
            }
        }
        if self.ringing.is_empty() {
            return RingOutcome::Busy;
        }
        self.services.hub.send(
            self.caller,
            ServerMessage::Ringing {
                call_token: self.token.to_string(),
            },
        );
        RingOutcome::Ringing
    }
}
