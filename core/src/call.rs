//! One 1:1 call as a state machine (chapter 4): what to ask the partner, when
//! to ring, when to bill, and why it ended. Sans-I/O: the server feeds it
//! [`CallEvent`]s with the time and carries out the [`CallAction`]s.
//!
//! ```text
//! Preparing ─1 ok─▶ Prepared ─start─▶ Starting ─3 ok─▶ Ringing ─answer─▶ Answering ─media─▶ Connected
//!     │ refused          │ 30 s: −8        │ refused         │ −1 −2 −4 −5 −6      │              │ 1 2 3 4
//!     ▼                  ▼                 ▼                 ▼                     ▼              ▼
//!  (no 6)              Ended ◀───────────────────────────────────────────────────────────────── Ended (6 sent, retried)
//! ```
//!
//! After a successful prepare every ending sends 通話終了 (6) with its
//! callOverview, so the partner can close its record of the callToken. The
//! two exceptions: a refusal at prepare (the partner may not know the token)
//! and a refusal at start (the partner itself ended it).

use std::time::Duration;

use crate::billing::{Ledger, LedgerEvent};
use crate::clock::{UnixMillis, rounded_seconds};
use crate::codec::PartnerFailure;
use crate::datetime::{JST, WireDateTime};
use crate::party::Party;
use crate::wire::call::{CallOverview, CallParty, CallServiceRequest};
use crate::wire::codes::{CallOption, CallServiceType, TerminateReason, UaType};
use crate::wire::site_service::{CallService, ServiceCharge, User};

/// How long a prepared call waits for the caller's app to start it (−8).
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long an answered call waits for media both ways before it is a failure (−9).
pub const MEDIA_DEADLINE: Duration = Duration::from_secs(20);
/// The allowed range of callingTimeout (§4.3.1 ②).
pub const CALLING_TIMEOUT_RANGE: (u32, u32) = (10, 180);

/// What the partner's prepare reply settled (the parts the call uses).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedCall {
    pub user: User,
    pub charge: ServiceCharge,
    pub service: CallService,
}

impl PreparedCall {
    /// callingTimeout clamped into 10–180 s (a partner's out-of-range value is not fatal).
    pub fn ring_timeout(&self) -> Duration {
        let (low, high) = CALLING_TIMEOUT_RANGE;
        Duration::from_secs(u64::from(self.service.calling_timeout.clamp(low, high)))
    }

    /// The options the given side may use.
    pub fn options(&self, party: Party) -> CallOption {
        match party {
            Party::Caller => self.service.caller_option,
            Party::Callee => self.service.callee_option,
        }
    }

    /// Who the ledger bills: the caller, or the callee when paidCallee.
    pub fn payer(&self) -> Party {
        if self.service.paid_callee {
            Party::Callee
        } else {
            Party::Caller
        }
    }
}

/// Whether the callee's devices could be rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingOutcome {
    Ringing,
    /// No device of the callee is connected (−2).
    Unreachable,
    /// Every connected device is in another call or live (−4).
    Busy,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// The partner's answer to 架電準備 (1).
    PrepareReplied(Result<Box<PreparedCall>, PartnerFailure>),
    /// The caller's app connected to start the call.
    StartRequested,
    /// The partner's answer to 架電開始 (3).
    StartReplied(Result<(), PartnerFailure>),
    /// The server tried the callee's devices.
    RingResult(RingOutcome),
    /// A callee device pressed answer (the callee's device details fill `callee`).
    Answered {
        callee: CallParty,
    },
    Declined,
    /// Media flows both ways through the server.
    MediaFlowing,
    HungUp(Party),
    /// The administrator ended the call (§4.3.5 reason 4).
    Administrator,
    /// The partner changed the payer's points (UpdateUserBalance, §7.2).
    BalanceAdjusted(i64),
    /// Something in the server failed (−9).
    InternalError,
    /// Time passes; sent at least once a second.
    Tick,
}

/// What the server must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAction {
    /// Send this request to the partner's CallService URL. `retried` requests
    /// (通話終了) go through the durable outbox; the others expect a reply
    /// within 8 s and come back as an event.
    Partner {
        request: Box<CallServiceRequest>,
        retried: bool,
    },
    /// Tell the caller the call is prepared (names, options, timeout).
    Prepared,
    /// Ring every device of the callee user.
    Ring,
    /// Stop ringing the callee's devices (answered elsewhere, or the call ended).
    StopRinging,
    /// Both sides: the call is connected.
    Connected,
    /// GET the partner's auto-charge URL once.
    AutoCharge { url: String },
    /// The call is over: tell both sides and release the media.
    Ended {
        reason: TerminateReason,
        /// For the user, when a partner refusal or failure ended it.
        message: Option<String>,
        /// Present when 6 is sent.
        overview: Option<CallOverview>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Preparing,
    Prepared,
    Starting,
    Ringing,
    Answering,
    Connected,
    Ended,
}

/// The fixed facts of a call from the caller's app link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    pub site_token: String,
    pub call_token: String,
    pub caller: CallParty,
    /// `user_id` is the link's calleeId.
    pub callee: CallParty,
    pub video: bool,
}

#[derive(Debug, Clone)]
pub struct Call {
    request: CallRequest,
    phase: Phase,
    prepared: Option<PreparedCall>,
    /// When the current phase's deadline passes (start, ring, media).
    deadline: Option<UnixMillis>,
    /// incomingTime: when the caller's app started the call.
    started_at: Option<UnixMillis>,
    connected_at: Option<UnixMillis>,
    ledger: Option<Ledger>,
    ended: Option<TerminateReason>,
}

impl Call {
    /// A new call; the server sends the returned 架電準備 (1) at once.
    pub fn new(request: CallRequest, now: UnixMillis) -> (Self, Vec<CallAction>) {
        let call = Self {
            request,
            phase: Phase::Preparing,
            prepared: None,
            deadline: None,
            started_at: None,
            connected_at: None,
            ledger: None,
            ended: None,
        };
        let prepare = call.partner(CallServiceType::Prepare, now, None);
        (call, vec![prepare])
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn request(&self) -> &CallRequest {
        &self.request
    }

    pub fn prepared(&self) -> Option<&PreparedCall> {
        self.prepared.as_ref()
    }

    /// The terminate reason, once ended.
    pub fn reason(&self) -> Option<TerminateReason> {
        self.ended
    }

    /// The remaining paid time; `None` while not billing or when free.
    pub fn time_left(&self, now: UnixMillis) -> Option<Duration> {
        self.ledger.as_ref().and_then(|l| l.time_left(now))
    }

    /// Points used so far.
    pub fn used_points(&self, now: UnixMillis) -> u64 {
        self.ledger.as_ref().map_or(0, |l| l.used_points(now))
    }

    /// The 通話終了 (6) the partner would get if the server stopped at `now`:
    /// what a crash-safe record keeps, so that a server that dies still
    /// reports the call, with the reason a server stop gives (4 管理者切断 once
    /// connected, −9 強制終了 before). `None` when no 6 would be sent.
    pub fn provisional_end_report(&self, now: UnixMillis) -> Option<CallServiceRequest> {
        let mut stopped = self.clone();
        stopped
            .handle(CallEvent::Administrator, now)
            .into_iter()
            .find_map(|action| match action {
                CallAction::Partner {
                    request,
                    retried: true,
                } => Some(*request),
                _ => None,
            })
    }

    /// The next billing-unit boundary of a connected, charged call.
    pub fn next_unit_boundary(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.ledger.as_ref()?.next_unit_boundary(now)
    }

    /// The next moment a [`CallEvent::Tick`] matters (a deadline).
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        self.deadline
    }

    pub fn handle(&mut self, event: CallEvent, now: UnixMillis) -> Vec<CallAction> {
        if self.phase == Phase::Ended {
            return Vec::new();
        }
        use CallEvent as E;
        use Phase as P;
        match (self.phase, event) {
            (P::Preparing, E::PrepareReplied(Ok(prepared))) => {
                self.prepared = Some(*prepared);
                self.phase = P::Prepared;
                self.deadline = Some(now + START_DEADLINE);
                vec![CallAction::Prepared]
            }
            (P::Preparing, E::PrepareReplied(Err(failure))) => {
                self.end_without_report(TerminateReason::InternalError, &failure)
            }
            (P::Prepared, E::StartRequested) => {
                self.phase = P::Starting;
                self.started_at = Some(now);
                self.deadline = None;
                vec![self.partner(CallServiceType::Start, now, None)]
            }
            (P::Starting, E::StartReplied(Ok(()))) => {
                self.phase = P::Ringing;
                self.deadline = self.prepared.as_ref().map(|p| now + p.ring_timeout());
                vec![CallAction::Ring]
            }
            (P::Starting, E::StartReplied(Err(failure))) => match failure {
                PartnerFailure::Refused { .. } => {
                    self.end_without_report(TerminateReason::CallerCancelled, &failure)
                }
                _ => self.end(TerminateReason::InternalError, now, Some(&failure)),
            },
            (P::Ringing, E::RingResult(RingOutcome::Ringing)) => Vec::new(),
            (P::Ringing, E::RingResult(RingOutcome::Unreachable)) => {
                self.end(TerminateReason::NotDelivered, now, None)
            }
            (P::Ringing, E::RingResult(RingOutcome::Busy)) => {
                self.end(TerminateReason::Busy, now, None)
            }
            (P::Ringing, E::Answered { callee }) => {
                self.request.callee = CallParty {
                    user_id: self.request.callee.user_id.clone(),
                    user_sub_id: self.request.callee.user_sub_id.clone(),
                    ..callee
                };
                self.phase = P::Answering;
                self.deadline = Some(now + MEDIA_DEADLINE);
                vec![
                    CallAction::StopRinging,
                    self.partner(CallServiceType::Ringing, now, None),
                ]
            }
            (P::Ringing, E::Declined) => self.end(TerminateReason::Declined, now, None),
            (P::Answering, E::MediaFlowing) => {
                self.phase = P::Connected;
                self.connected_at = Some(now);
                self.deadline = None;
                let prepared = self.prepared.as_ref().expect("prepared before connecting");
                self.ledger = Some(Ledger::new(&prepared.charge, now));
                vec![
                    CallAction::Connected,
                    self.partner(CallServiceType::Connected, now, None),
                ]
            }
            (P::Connected, E::HungUp(Party::Caller)) => {
                self.end(TerminateReason::CallerHungUp, now, None)
            }
            (P::Connected, E::HungUp(Party::Callee)) => {
                self.end(TerminateReason::CalleeHungUp, now, None)
            }
            (P::Connected, E::Administrator) => self.end(TerminateReason::Administrator, now, None),
            // Before the connection, the administrator's cut is the server's doing.
            (_, E::Administrator) | (_, E::InternalError) => {
                self.end(TerminateReason::InternalError, now, None)
            }
            (P::Preparing | P::Prepared | P::Starting | P::Ringing, E::HungUp(Party::Caller)) => {
                self.end(TerminateReason::CallerCancelled, now, None)
            }
            (P::Answering, E::HungUp(party)) => self.end(
                match party {
                    Party::Caller => TerminateReason::CallerCancelled,
                    Party::Callee => TerminateReason::Declined,
                },
                now,
                None,
            ),
            (P::Connected, E::BalanceAdjusted(points)) => {
                if let Some(ledger) = &mut self.ledger {
                    ledger.adjust(points);
                }
                self.bill(now)
            }
            (_, E::Tick) => self.tick(now),
            // Anything else is out of order (a late reply, a double click): ignored.
            _ => Vec::new(),
        }
    }

    fn tick(&mut self, now: UnixMillis) -> Vec<CallAction> {
        if let Some(deadline) = self.deadline
            && now >= deadline
        {
            let reason = match self.phase {
                Phase::Prepared => TerminateReason::NeverStarted,
                Phase::Ringing => TerminateReason::RingTimeout,
                _ => TerminateReason::InternalError,
            };
            return self.end(reason, now, None);
        }
        self.bill(now)
    }

    fn bill(&mut self, now: UnixMillis) -> Vec<CallAction> {
        let Some(ledger) = &mut self.ledger else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let mut exhausted = false;
        for event in ledger.tick(now) {
            match event {
                LedgerEvent::AutoChargeTriggered { url } => {
                    actions.push(CallAction::AutoCharge { url })
                }
                LedgerEvent::Exhausted => exhausted = true,
            }
        }
        if exhausted {
            actions.extend(self.end(TerminateReason::TimeExhausted, now, None));
        }
        actions
    }

    fn end_without_report(
        &mut self,
        reason: TerminateReason,
        failure: &PartnerFailure,
    ) -> Vec<CallAction> {
        self.phase = Phase::Ended;
        self.ended = Some(reason);
        self.deadline = None;
        vec![CallAction::Ended {
            reason,
            message: Some(failure.user_message_ja()),
            overview: None,
        }]
    }

    fn end(
        &mut self,
        reason: TerminateReason,
        now: UnixMillis,
        failure: Option<&PartnerFailure>,
    ) -> Vec<CallAction> {
        let was_ringing = matches!(self.phase, Phase::Ringing);
        self.phase = Phase::Ended;
        self.ended = Some(reason);
        self.deadline = None;
        let mut actions = Vec::new();
        if was_ringing {
            actions.push(CallAction::StopRinging);
        }
        let overview = self.overview(reason, now);
        if let Some(overview) = &overview {
            actions.push(self.partner(CallServiceType::End, now, Some(overview.clone())));
        }
        actions.push(CallAction::Ended {
            reason,
            message: failure.map(PartnerFailure::user_message_ja),
            overview,
        });
        actions
    }

    /// callOverview (§4.3.5 ①); `None` before a successful prepare.
    fn overview(&self, reason: TerminateReason, now: UnixMillis) -> Option<CallOverview> {
        let prepared = self.prepared.as_ref()?;
        let at = |t: UnixMillis| WireDateTime::from_unix_millis(t, JST);
        let ledger = self.ledger.as_ref();
        Some(CallOverview {
            terminate_reason: reason,
            incoming_time: self.started_at.map(at),
            connect_time: self.connected_at.map(at),
            terminate_time: at(now),
            talking_sec: self.connected_at.map_or(0, |c| rounded_seconds(c, now)),
            charge_price: prepared.charge.unit_price,
            charge_unit_sec: prepared.charge.unit_sec,
            point_price: prepared.charge.point_price,
            start_point: prepared.charge.current_point,
            talking_point: ledger.map_or(0, |l| l.used_points(now)),
            auto_charge_point: ledger.map_or(0, Ledger::auto_charge_points),
            outside_usage_point: ledger.map_or(0, Ledger::outside_usage_points),
        })
    }

    fn partner(
        &self,
        kind: CallServiceType,
        now: UnixMillis,
        overview: Option<CallOverview>,
    ) -> CallAction {
        let mut callee = self.request.callee.clone();
        if kind != CallServiceType::Prepare {
            // §4.3.2: from 3 on the callee carries uaTp. It is an app user (public
            // lines are not carried); which device answers is known from 4 on.
            callee.ua_type.get_or_insert(UaType::App);
        }
        let request = CallServiceRequest {
            site_token: self.request.site_token.clone(),
            call_service_type: kind,
            call_token: self.request.call_token.clone(),
            caller: self.request.caller.clone(),
            callee,
            video_call: self
                .prepared
                .as_ref()
                .map_or(self.request.video, |p| p.service.video_call),
            call_status_time: WireDateTime::from_unix_millis(now, JST),
            call_overview: overview,
        };
        CallAction::Partner {
            request: Box::new(request),
            retried: kind.handling().retried,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codes::ServiceChargeType;

    const T0: UnixMillis = UnixMillis(1_732_320_000_000);

    fn at(ms: i64) -> UnixMillis {
        UnixMillis(T0.0 + ms)
    }

    fn device(id: &str) -> CallParty {
        CallParty {
            user_id: id.into(),
            user_sub_id: None,
            ua_type: Some(UaType::App),
            app_ver: Some("01.00.00".into()),
            device_name: Some("nexmile-cli".into()),
            os_ver: Some("Debian 12".into()),
        }
    }

    fn prepared(points: u32, paid_callee: bool) -> PreparedCall {
        PreparedCall {
            user: User {
                user_id: "hanako".into(),
                name: "山田花子".into(),
                ..User::default()
            },
            charge: ServiceCharge {
                service_charge_type: ServiceChargeType::Call,
                unit_sec: 60,
                unit_price: 100,
                point_price: 1,
                current_point: points,
                free_trial_sec: 0,
                auto_charge_trigger_point: 150,
                auto_charge_trigger_url: Some("http://partner/autocharge?userId=hanako".into()),
            },
            service: CallService {
                call_token: "ct-1".into(),
                caller_option: CallOption::MOSAIC,
                callee_user_id: "airi".into(),
                callee_user_nm: "星野あいり".into(),
                callee_profile_image_url: None,
                callee_option: CallOption::all(),
                callee_return_url: None,
                call_user_sub_id: None,
                callee_candidate_mode: None,
                caller_id_prefix: Some("・".into()),
                video_call: true,
                calling_timeout: 30,
                paid_callee,
            },
        }
    }

    fn new_call() -> Call {
        let (call, actions) = Call::new(
            CallRequest {
                site_token: "site-token-1".into(),
                call_token: "ct-1".into(),
                caller: device("hanako"),
                callee: CallParty {
                    user_id: "airi".into(),
                    user_sub_id: None,
                    ua_type: None,
                    app_ver: None,
                    device_name: None,
                    os_ver: None,
                },
                video: true,
            },
            T0,
        );
        assert!(
            matches!(&actions[..], [CallAction::Partner { request, retried: false }]
            if request.call_service_type == CallServiceType::Prepare && request.check().is_ok())
        );
        call
    }

    fn ringing(points: u32) -> Call {
        let mut call = new_call();
        assert_eq!(
            call.handle(
                CallEvent::PrepareReplied(Ok(Box::new(prepared(points, false)))),
                at(100)
            ),
            vec![CallAction::Prepared]
        );
        let start = call.handle(CallEvent::StartRequested, at(200));
        assert!(matches!(&start[..], [CallAction::Partner { request, .. }]
            if request.call_service_type == CallServiceType::Start));
        assert_eq!(
            call.handle(CallEvent::StartReplied(Ok(())), at(300)),
            vec![CallAction::Ring]
        );
        call
    }

    fn connected(points: u32) -> Call {
        let mut call = ringing(points);
        let answered = call.handle(
            CallEvent::Answered {
                callee: device("airi"),
            },
            at(1_000),
        );
        assert!(
            matches!(&answered[..], [CallAction::StopRinging, CallAction::Partner { request, .. }]
            if request.call_service_type == CallServiceType::Ringing && request.check().is_ok())
        );
        let media = call.handle(CallEvent::MediaFlowing, at(1_500));
        assert!(
            matches!(&media[..], [CallAction::Connected, CallAction::Partner { request, .. }]
            if request.call_service_type == CallServiceType::Connected)
        );
        call
    }

    /// The reason and overview of the ending among `actions`, checking 6 is sent retried.
    fn ending(actions: &[CallAction]) -> (TerminateReason, Option<CallOverview>) {
        let end = actions.iter().find_map(|a| match a {
            CallAction::Partner { request, retried }
                if request.call_service_type == CallServiceType::End =>
            {
                assert!(*retried, "通話終了 goes through the outbox");
                request.check().unwrap();
                Some(request.call_overview.clone().unwrap())
            }
            _ => None,
        });
        let reason = actions
            .iter()
            .find_map(|a| match a {
                CallAction::Ended {
                    reason, overview, ..
                } => {
                    assert_eq!(overview, &end);
                    Some(*reason)
                }
                _ => None,
            })
            .expect("ended");
        (reason, end)
    }

    #[test]
    fn hang_ups_after_connection_are_reasons_1_and_2_with_the_talking_time() {
        let mut call = connected(1_000);
        let (reason, overview) = ending(&call.handle(CallEvent::HungUp(Party::Caller), at(62_000)));
        assert_eq!(reason, TerminateReason::CallerHungUp);
        let overview = overview.unwrap();
        // 60.5 s of talk rounds half up to 61 s; 60.5 s at 100 per 60 s is 100.83 → 101 points.
        assert_eq!(overview.talking_sec, 61);
        assert_eq!(overview.talking_point, 101);
        assert_eq!(overview.start_point, 1_000);
        assert_eq!(overview.charge_price, 100);
        assert_eq!(
            overview.incoming_time.unwrap().nexmile(),
            "2024/11/23 09:00:00"
        );
        assert!(overview.connect_time.is_some());
        let mut call = connected(1_000);
        let (reason, _) = ending(&call.handle(CallEvent::HungUp(Party::Callee), at(5_000)));
        assert_eq!(reason, TerminateReason::CalleeHungUp);
        assert!(
            call.handle(CallEvent::HungUp(Party::Caller), at(6_000))
                .is_empty()
        );
    }

    #[test]
    fn the_provisional_end_report_is_the_6_a_server_stop_would_send() {
        let call = connected(1_000);
        let report = call.provisional_end_report(at(31_500)).unwrap();
        assert_eq!(report.call_service_type, CallServiceType::End);
        report.check().unwrap();
        let overview = report.call_overview.unwrap();
        // Connected at 1.5 s: 30 s of talk, 50 points at 100 per minute.
        assert_eq!(overview.terminate_reason, TerminateReason::Administrator);
        assert_eq!((overview.talking_sec, overview.talking_point), (30, 50));
        // Taking it changes nothing: the call goes on and ends as it will.
        assert_eq!(call.phase(), Phase::Connected);
        assert_eq!(call.next_unit_boundary(at(31_500)), Some(at(61_500)));
        // Before the connection a stop is the server's failure, −9.
        let early = ringing(1_000).provisional_end_report(at(400)).unwrap();
        assert_eq!(
            early.call_overview.unwrap().terminate_reason,
            TerminateReason::InternalError
        );
        // Before a prepare there is nothing to report.
        assert_eq!(new_call().provisional_end_report(at(100)), None);
    }

    #[test]
    fn money_running_out_ends_with_3_and_triggers_auto_charge_once() {
        // 250 points at 100 per minute: the trigger (150) is crossed after 60 s,
        // and less than one unit price remains after 90 s.
        let mut call = connected(250);
        let mut auto_charges = 0;
        let mut end = None;
        for second in 2..200 {
            for action in call.handle(CallEvent::Tick, at(second * 1_000)) {
                match action {
                    CallAction::AutoCharge { .. } => auto_charges += 1,
                    CallAction::Ended { reason, .. } => end = Some((reason, second)),
                    _ => {}
                }
            }
            if end.is_some() {
                break;
            }
        }
        assert_eq!(auto_charges, 1);
        let (reason, second) = end.unwrap();
        assert_eq!(reason, TerminateReason::TimeExhausted);
        // Connected at 1.5 s; 150 money used after 90 s of charging → ends at the 92nd-second tick.
        assert_eq!(second, 92);
    }

    #[test]
    fn a_balance_update_extends_the_call() {
        let mut call = connected(250);
        let before = call.time_left(at(2_000)).unwrap();
        call.handle(CallEvent::BalanceAdjusted(100), at(2_000));
        let after = call.time_left(at(2_000)).unwrap();
        assert_eq!(after - before, Duration::from_secs(60));
        call.handle(CallEvent::BalanceAdjusted(-50), at(3_000));
        let (_, overview) = ending(&call.handle(CallEvent::HungUp(Party::Caller), at(4_000)));
        let overview = overview.unwrap();
        assert_eq!(
            (overview.auto_charge_point, overview.outside_usage_point),
            (100, 50)
        );
        assert!(
            call.handle(CallEvent::Tick, at(5_000)).is_empty(),
            "nothing after the end"
        );
    }

    #[test]
    fn every_unconnected_ending_has_its_reason() {
        type Step = Box<dyn Fn(&mut Call) -> Vec<CallAction>>;
        let cases: Vec<(Step, TerminateReason)> = vec![
            (
                Box::new(|c| c.handle(CallEvent::HungUp(Party::Caller), at(500))),
                TerminateReason::CallerCancelled,
            ),
            (
                Box::new(|c| c.handle(CallEvent::RingResult(RingOutcome::Unreachable), at(400))),
                TerminateReason::NotDelivered,
            ),
            (
                Box::new(|c| c.handle(CallEvent::RingResult(RingOutcome::Busy), at(400))),
                TerminateReason::Busy,
            ),
            (
                Box::new(|c| c.handle(CallEvent::Declined, at(900))),
                TerminateReason::Declined,
            ),
            (
                Box::new(|c| {
                    assert!(c.handle(CallEvent::Tick, at(30_299)).is_empty());
                    c.handle(CallEvent::Tick, at(30_300))
                }),
                TerminateReason::RingTimeout,
            ),
            (
                Box::new(|c| c.handle(CallEvent::InternalError, at(900))),
                TerminateReason::InternalError,
            ),
        ];
        for (act, expected) in cases {
            let mut call = ringing(1_000);
            let actions = act(&mut call);
            assert_eq!(
                actions.first(),
                Some(&CallAction::StopRinging),
                "{expected:?}"
            );
            let (reason, overview) = ending(&actions);
            assert_eq!(reason, expected);
            let overview = overview.unwrap();
            assert_eq!((overview.talking_sec, overview.talking_point), (0, 0));
            assert!(overview.connect_time.is_none() && overview.incoming_time.is_some());
            assert!(!reason.was_connected());
        }
    }

    #[test]
    fn a_prepared_call_never_started_ends_with_minus_8() {
        let mut call = new_call();
        call.handle(
            CallEvent::PrepareReplied(Ok(Box::new(prepared(100, false)))),
            at(0),
        );
        assert_eq!(call.next_deadline(), Some(at(30_000)));
        assert!(call.handle(CallEvent::Tick, at(29_999)).is_empty());
        let (reason, overview) = ending(&call.handle(CallEvent::Tick, at(30_000)));
        assert_eq!(reason, TerminateReason::NeverStarted);
        assert!(
            overview.unwrap().incoming_time.is_none(),
            "the app never started it"
        );
    }

    #[test]
    fn partner_refusals_end_the_attempt_with_the_partners_words() {
        let refused = PartnerFailure::Refused {
            result: 1,
            message: Some("ポイントが不足しています".into()),
        };
        let mut call = new_call();
        let actions = call.handle(CallEvent::PrepareReplied(Err(refused.clone())), at(10));
        assert_eq!(
            actions,
            vec![CallAction::Ended {
                reason: TerminateReason::InternalError,
                message: Some("ポイントが不足しています".into()),
                overview: None
            }]
        );
        // Refused at start: no 6 (the partner ended it); failed at start: 6 with −9.
        let mut call = new_call();
        call.handle(
            CallEvent::PrepareReplied(Ok(Box::new(prepared(100, false)))),
            at(0),
        );
        call.handle(CallEvent::StartRequested, at(10));
        let actions = call.handle(
            CallEvent::StartReplied(Err(PartnerFailure::Refused {
                result: -1,
                message: None,
            })),
            at(20),
        );
        assert!(
            matches!(&actions[..], [CallAction::Ended { overview: None, message: Some(m), .. }] if m == "連携先サイトに拒否されました。")
        );
        let mut call = new_call();
        call.handle(
            CallEvent::PrepareReplied(Ok(Box::new(prepared(100, false)))),
            at(0),
        );
        call.handle(CallEvent::StartRequested, at(10));
        let actions = call.handle(
            CallEvent::StartReplied(Err(PartnerFailure::Timeout { seconds: 8 })),
            at(8_010),
        );
        let (reason, _) = ending(&actions);
        assert_eq!(reason, TerminateReason::InternalError);
        assert!(
            matches!(actions.last(), Some(CallAction::Ended { message: Some(m), .. }) if m.contains("応答がありません"))
        );
    }

    #[test]
    fn administrator_and_media_failure() {
        let mut call = connected(1_000);
        let (reason, _) = ending(&call.handle(CallEvent::Administrator, at(3_000)));
        assert_eq!(reason, TerminateReason::Administrator);
        let mut call = ringing(1_000);
        call.handle(
            CallEvent::Answered {
                callee: device("airi"),
            },
            at(1_000),
        );
        let (reason, _) = ending(&call.handle(CallEvent::Tick, at(21_000)));
        assert_eq!(
            reason,
            TerminateReason::InternalError,
            "no media within 20 s"
        );
    }

    #[test]
    fn paid_callee_bills_the_callee_and_video_follows_the_partner() {
        let p = prepared(100, true);
        assert_eq!(p.payer(), Party::Callee);
        let mut call = new_call();
        let mut reply = prepared(100, false);
        reply.service.video_call = false;
        reply.service.calling_timeout = 500;
        assert_eq!(reply.ring_timeout(), Duration::from_secs(180));
        call.handle(CallEvent::PrepareReplied(Ok(Box::new(reply))), at(0));
        let actions = call.handle(CallEvent::StartRequested, at(10));
        assert!(
            matches!(&actions[..], [CallAction::Partner { request, .. }] if !request.video_call)
        );
    }
}
