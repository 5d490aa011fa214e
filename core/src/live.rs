//! One live (chapter 5) as a state machine: the broadcaster's requests
//! (11 prepare, 12 start, 13 end, 29 abort), each viewer's (31 prepare, 32
//! start once media really arrived, 33 end), and the comments (7), stamps
//! (5) and gifts (6) between them, with paid viewing billed per viewer by
//! the [`Ledger`]. Sans-I/O: the server feeds it [`LiveEvent`]s with the
//! time and carries out the [`LiveAction`]s.
//!
//! ```text
//! Preparing ─11 ok─▶ Ready ─start─▶ Starting ─12 ok─▶ OnAir ─end / lost─▶ Ended (13, retried)
//!     │ refused        │ lost          │ refused / lost
//!     ▼                ▼               ▼
//!   Ended           Ended (29)       Ended (29 when lost)
//!
//! viewer: Preparing ─31 ok─▶ Admitted ─media─▶ Starting ─32 ok─▶ Watching ─leave / points / removed─▶ gone (33)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::billing::{Ledger, LedgerEvent};
use crate::clock::{UnixMillis, rounded_seconds};
use crate::codec::{PartnerFailure, PartnerReply};
use crate::datetime::{JST, WireDateTime};
use crate::signal::{
    FrameStyle, GiftItem, ItemKind, LiveAppearance, LiveDetails, LiveEndReason, LiveNotice,
    LiveRole, LiveSummary, RankedViewer, TimedMessage, WordingStyle,
};
use crate::wire::codes::{LiveServiceType, RankingMode, ServiceOptions};
use crate::wire::customization::LiveSpecialGift;
use crate::wire::live::{
    AdminMessage, AdminRemovesBroadcaster, AdminRemovesViewer, BroadcastAbort, BroadcastEnd,
    BroadcastPrepare, CommentPost, Favorite, ItemSend, LiveRef, LiveRequest, LiveServiceRequest,
    Liver, LiverEvent, PaidBroadcastSwitch, PaidViewSwitch, ViewEnd, ViewPrepare, ViewStart,
    ViewerUpdate, comment_length,
};
use crate::wire::site_service::{LiveService, ServiceCharge, SiteService, User};
use unicode_segmentation::UnicodeSegmentation;

/// How long an admitted viewer has to receive the first picture (or, for
/// radio, sound) before the viewing counts as failed (§5.3.11).
pub const VIEW_MEDIA_DEADLINE: Duration = Duration::from_secs(30);
/// The longest comment accepted, in characters.
pub const COMMENT_MAX_CHARS: u32 = 200;
/// Bytes a comment may take, checked before its characters are counted: 200
/// characters of anything fit (200 flags of 28 bytes are 5.6 KiB);
/// megabytes of combining marks stacked on one character (which counts
/// once) do not.
pub const COMMENT_MAX_BYTES: usize = 8192;
/// Bytes one character may take (a family emoji is 25, a flag 28).
pub const COMMENT_MAX_CHAR_BYTES: usize = 64;

/// A viewer's session, numbered by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewerId(pub u64);

/// The app that made a request: for appVer, deviceName and osVer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    pub app_ver: String,
    pub device_name: String,
    pub os_ver: String,
}

/// The fixed facts of a live, from the broadcaster's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSetup {
    pub site_token: String,
    pub live_token: String,
    pub link_id: String,
    pub liver: Liver,
    pub device: DeviceFacts,
}

/// What a partner's 11 or 31 reply settled.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedLive {
    pub user: User,
    pub charge: ServiceCharge,
    pub service: LiveService,
}

/// Reads an 11 / 31 / 36 reply: `result=0&service=…` with user,
/// serviceCharge and liveService, whose linkId must be the request's (§5.3.1 ②).
pub fn parse_prepare_reply(
    body: &str,
    kind: LiveServiceType,
    link_id: &str,
) -> Result<PreparedLive, PartnerFailure> {
    let unusable = |detail: String| PartnerFailure::Unparseable { detail };
    match SiteService::from_reply(body, kind.handling().required_reply)? {
        SiteService {
            live_service: Some(service),
            ..
        } if service.link_id != link_id => Err(unusable(format!(
            "the reply's linkId \"{}\" is not the request's \"{link_id}\"",
            service.link_id
        ))),
        SiteService {
            user: Some(user),
            service_charge: Some(charge),
            live_service: Some(service),
            ..
        } => Ok(PreparedLive {
            user,
            charge,
            service,
        }),
        _ => Err(unusable("the reply lacks a required class".into())),
    }
}

/// A stamp or gift the site registered, with when it shows (§5.4.5: a
/// hidden item shows only where a viewer's specialGifts unlock it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct CatalogueEntry {
    #[serde(flatten)]
    pub item: GiftItem,
    #[serde(default)]
    pub hidden: bool,
    /// The palette's order: ordered items come first, by it; the rest
    /// follow in the order of registration.
    #[serde(default)]
    pub display_order: Option<u32>,
    /// The registered period of validity; either side may be open.
    #[serde(default)]
    pub visible_from: Option<WireDateTime>,
    #[serde(default)]
    pub visible_to: Option<WireDateTime>,
}

fn within(from: Option<WireDateTime>, to: Option<WireDateTime>, now: UnixMillis) -> bool {
    from.is_none_or(|f| f.to_unix_millis(JST) <= now)
        && to.is_none_or(|t| now <= t.to_unix_millis(JST))
}

/// The stamps and gifts one viewer may send now, in display order: the
/// registered items in their period, and those the viewer's specialGifts
/// show (their own period and order win; an item not registered is not shown).
pub fn palette(
    catalogue: &[CatalogueEntry],
    specials: &[LiveSpecialGift],
    now: UnixMillis,
) -> Vec<GiftItem> {
    let mut shown: Vec<(u32, usize, GiftItem)> = catalogue
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            let special = specials.iter().find(|s| {
                s.gift_category_no == entry.item.category && s.gift_no == entry.item.item_no
            });
            let (visible, order) = match special {
                Some(s) => (
                    within(s.display_time_from, s.display_time_to, now),
                    s.display_order.or(entry.display_order),
                ),
                None => (
                    !entry.hidden && within(entry.visible_from, entry.visible_to, now),
                    entry.display_order,
                ),
            };
            visible.then(|| (order.unwrap_or(u32::MAX), index, entry.item.clone()))
        })
        .collect();
    shown.sort_by_key(|(order, index, _)| (*order, *index));
    shown.into_iter().map(|(_, _, item)| item).collect()
}

/// Which request a partner's reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    Prepare,
    Start,
    ViewerPrepare(ViewerId),
    ViewerStart(ViewerId),
    Comment(u64),
    Item(u64),
    /// 15: the broadcaster's removal of this viewer.
    Removal(ViewerId),
    /// 14: the broadcaster's paid switch.
    PaidSwitch,
    /// 35: this viewer's switch to paid viewing.
    PaidView(ViewerId),
    /// 36: this viewer's details after a partner's point update.
    ViewerUpdate(ViewerId),
}

/// Who wrote a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Broadcaster,
    Viewer(ViewerId),
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// The partner answered `to`: the accepted reply's body, or why not.
    Replied {
        to: Awaited,
        reply: Result<String, PartnerFailure>,
    },
    /// The broadcaster pressed start; its media connection is being set up.
    StartPressed,
    /// The broadcaster ended the live.
    EndPressed,
    /// The broadcaster's app or connection is gone.
    BroadcasterLost,
    /// The server is shutting down (SIGTERM, Ctrl-C): the live and every
    /// viewing end now, each reported.
    ServerStopping,
    /// A viewLive link reached the server.
    ViewerJoined {
        viewer: ViewerId,
        user_id: String,
        /// The link's linkId (§5.3.9), used in this viewer's requests.
        link_id: String,
        device: DeviceFacts,
    },
    /// The viewer's app decoded the first picture (or, for radio, sound).
    ViewerMediaReceived {
        viewer: ViewerId,
    },
    /// The viewer left, or its app or connection is gone.
    ViewerLeft {
        viewer: ViewerId,
    },
    Comment {
        from: Speaker,
        text: String,
    },
    /// A stamp or gift of the site's catalogue (the server found the item).
    Item {
        viewer: ViewerId,
        item: GiftItem,
    },
    /// The broadcaster removes a viewer (15).
    RemoveViewer {
        viewer: ViewerId,
    },
    /// The broadcaster makes the live paid at `unit_price` (14).
    PaidSwitch {
        unit_price: u32,
    },
    /// A viewer's favourite button (34).
    Favorite {
        viewer: ViewerId,
        favorite: bool,
    },
    /// The partner changed a watching viewer's points (UpdateUserBalance): 36.
    BalanceAdjusted {
        viewer: ViewerId,
        points: i64,
    },
    /// The viewer's real-time payment went through (§5.3.16): its points
    /// move as for a partner's update, and it is told.
    PaymentDone {
        viewer: ViewerId,
        points: i64,
    },
    /// An administrator removes the broadcaster (96) and so ends the live.
    AdminRemovesBroadcaster {
        comment: Option<String>,
    },
    /// An administrator removes a viewer (94).
    AdminRemovesViewer {
        viewer: ViewerId,
        comment: Option<String>,
    },
    /// An administrator's message to the broadcaster (97).
    AdminMessage {
        text: String,
    },
    /// Time passes; sent at least once a second.
    Tick,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiveAction {
    /// Send to the partner's liveService URL. `retried` requests (13, 29, 33)
    /// go through the durable outbox; `awaited` ones come back as
    /// [`LiveEvent::Replied`] within the reply timeout.
    Partner {
        request: Box<LiveServiceRequest>,
        retried: bool,
        awaited: Option<Awaited>,
    },
    ToBroadcaster(LiveNotice),
    ToViewer(ViewerId, LiveNotice),
    /// The broadcaster and every viewer admitted to the live.
    ToEveryone(LiveNotice),
    /// The viewer may connect to the broadcaster's media now.
    Admit(ViewerId),
    /// The viewer is out: close its media (it was told why).
    Release(ViewerId),
    /// The live is over: close every connection (all were told why).
    Ended(LiveEndReason),
    /// The live went on air with serverSideRecording: record the
    /// broadcaster's media (sound alone for a radio live) until it ends.
    Record {
        audio_only: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LivePhase {
    Preparing,
    Ready,
    Starting,
    OnAir,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViewerPhase {
    Preparing,
    Admitted,
    Starting,
    Watching,
}

#[derive(Debug, Clone)]
struct Viewer {
    user_id: String,
    /// The linkId of the viewer's own viewLive link (§5.3.9), in its requests.
    link_id: String,
    device: DeviceFacts,
    phase: ViewerPhase,
    prepared: Option<PreparedLive>,
    /// Media must arrive by then (Admitted), else the viewing failed.
    deadline: Option<UnixMillis>,
    started_at: Option<UnixMillis>,
    /// Paid viewing: charged from the start plus freeTrialSec.
    ledger: Option<Ledger>,
    /// When charging starts (start or paid switch, plus the free trial).
    charge_start: Option<UnixMillis>,
    /// Points the partner added or took while the viewer watched for free.
    balance_change: i64,
    /// Points spent on gifts, stamps and paid comments: the ranking.
    spent: u64,
    last_comment: Option<UnixMillis>,
    last_item: Option<UnixMillis>,
}

impl Viewer {
    /// The points the viewer has now: its 31 reply's currentPoint, less
    /// what it spent, moved by the partner's updates; or its ledger's balance.
    fn points_now(&self, now: UnixMillis) -> i64 {
        match &self.ledger {
            Some(ledger) => {
                i64::from(ledger.start_points())
                    + i64::try_from(ledger.auto_charge_points()).unwrap_or(0)
                    - i64::try_from(ledger.outside_usage_points()).unwrap_or(0)
                    - i64::try_from(ledger.used_points(now)).unwrap_or(0)
            }
            None => {
                let start = self
                    .prepared
                    .as_ref()
                    .map_or(0, |p| i64::from(p.charge.current_point));
                start - i64::try_from(self.spent).unwrap_or(0) + self.balance_change
            }
        }
    }

    fn name(&self) -> String {
        self.prepared
            .as_ref()
            .map_or_else(|| self.user_id.clone(), |p| p.user.name.clone())
    }

    fn image(&self) -> Option<String> {
        self.prepared.as_ref()?.user.profile_image_url.clone()
    }
}

fn options(service: &LiveService) -> ServiceOptions {
    service.service_options.unwrap_or(ServiceOptions::empty())
}

/// A comment or item waiting for the partner's verdict.
#[derive(Debug, Clone)]
enum Pending {
    Comment {
        from: Speaker,
        text: String,
        point: u32,
    },
    Item {
        viewer: ViewerId,
        item: GiftItem,
    },
}

#[derive(Debug, Clone)]
pub struct Live {
    setup: LiveSetup,
    phase: LivePhase,
    prepared: Option<PreparedLive>,
    prepared_at: UnixMillis,
    on_air_at: Option<UnixMillis>,
    viewers: BTreeMap<ViewerId, Viewer>,
    pending: BTreeMap<u64, Pending>,
    next_pending: u64,
    broadcaster_last_comment: Option<UnixMillis>,
    /// When the live became paid (14 accepted): 13's chargeStartTime.
    paid_since: Option<UnixMillis>,
    /// The viewers' tariff from the paid switch.
    paid_charge: Option<ServiceCharge>,
    ended: Option<LiveEndReason>,
    /// Viewers announced once (login guidance, §5.3.1 serviceOptions 4).
    announced: BTreeSet<String>,
}

fn wire_time(at: UnixMillis) -> WireDateTime {
    WireDateTime::from_unix_millis(at, JST)
}

fn refused(failure: &PartnerFailure) -> Option<String> {
    Some(failure.user_message_ja())
}

impl Live {
    /// A new live; the server sends the returned 配信準備 (11) at once.
    pub fn new(setup: LiveSetup, now: UnixMillis) -> (Self, Vec<LiveAction>) {
        let live = Self {
            setup,
            phase: LivePhase::Preparing,
            prepared: None,
            prepared_at: now,
            on_air_at: None,
            viewers: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_pending: 0,
            broadcaster_last_comment: None,
            paid_since: None,
            paid_charge: None,
            ended: None,
            announced: BTreeSet::new(),
        };
        let prepare = LiveRequest::BroadcastPrepare(BroadcastPrepare {
            live: live.live_ref(&live.setup.liver.liver_user_id),
            app_ver: live.setup.device.app_ver.clone(),
            device_name: live.setup.device.device_name.clone(),
            os_ver: live.setup.device.os_ver.clone(),
            start_time: wire_time(now),
        });
        let action = live.partner(prepare, Some(Awaited::Prepare));
        (live, vec![action])
    }

    pub fn phase(&self) -> LivePhase {
        self.phase
    }

    pub fn setup(&self) -> &LiveSetup {
        &self.setup
    }

    pub fn prepared(&self) -> Option<&PreparedLive> {
        self.prepared.as_ref()
    }

    pub fn reason(&self) -> Option<LiveEndReason> {
        self.ended
    }

    /// Viewers admitted or watching now.
    pub fn audience(&self) -> usize {
        self.viewers
            .values()
            .filter(|v| v.phase != ViewerPhase::Preparing)
            .count()
    }

    /// The amounts a viewer may pay in (its 31 reply's quickPayments, §5.4.6);
    /// empty for a viewer not admitted.
    pub fn quick_payments(&self, viewer: ViewerId) -> Vec<u32> {
        self.viewers
            .get(&viewer)
            .and_then(|v| v.prepared.as_ref())
            .map(|p| {
                p.service
                    .quick_payments
                    .iter()
                    .map(|q| q.payment_amount)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The viewer's greeting (viewerPokeCategoryNo / viewerPokeGiftNo of its
    /// 31 reply, §5.3.9): the item its 挨拶 button sends; `None`: no greeting.
    pub fn greeting(&self, viewer: ViewerId) -> Option<(String, String)> {
        let service = &self.viewers.get(&viewer)?.prepared.as_ref()?.service;
        let category = service.viewer_poke_category_no.clone()?;
        let item = service.viewer_poke_gift_no.clone()?;
        (!category.is_empty() && !item.is_empty()).then_some((category, item))
    }

    /// The viewer's specialGifts (its 31 reply, §5.4.5).
    pub fn special_gifts(&self, viewer: ViewerId) -> Vec<LiveSpecialGift> {
        self.viewers
            .get(&viewer)
            .and_then(|v| v.prepared.as_ref())
            .map(|p| p.service.special_gifts.clone())
            .unwrap_or_default()
    }

    /// The linkId and user a viewer's requests carry (the payment GET).
    pub fn viewer_link(&self, viewer: ViewerId) -> Option<(String, String)> {
        self.viewers
            .get(&viewer)
            .map(|v| (v.link_id.clone(), v.user_id.clone()))
    }

    /// Whether `user_id` is a viewer of this live now (UpdateUserBalance).
    /// The end reports (29 or 13, and each admitted viewer's 33) the partner
    /// would get if the server stopped at `now`: what a crash-safe record
    /// keeps, so that a server that dies still reports the live and every
    /// viewing with their seconds and points so far.
    pub fn provisional_end_reports(&self, now: UnixMillis) -> Vec<LiveServiceRequest> {
        let mut stopped = self.clone();
        stopped
            .handle(LiveEvent::ServerStopping, now)
            .into_iter()
            .filter_map(|action| match action {
                LiveAction::Partner {
                    request,
                    retried: true,
                    ..
                } => Some(*request),
                _ => None,
            })
            .collect()
    }

    /// The soonest billing-unit boundary among the paid viewers.
    pub fn next_unit_boundary(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.viewers
            .values()
            .filter_map(|v| v.ledger.as_ref()?.next_unit_boundary(now))
            .min()
    }

    pub fn viewer_of(&self, user_id: &str) -> Option<ViewerId> {
        self.viewers
            .iter()
            .find(|(_, v)| v.user_id == user_id && v.phase == ViewerPhase::Watching)
            .map(|(id, _)| *id)
    }

    /// A partner's point change for a watching viewer; false if none.
    pub fn adjust(&mut self, viewer: ViewerId, points: i64) -> bool {
        match self
            .viewers
            .get_mut(&viewer)
            .and_then(|v| v.ledger.as_mut())
        {
            Some(ledger) => {
                ledger.adjust(points);
                true
            }
            None => false,
        }
    }

    /// The live as a viewer's requests name it: the viewer's own linkId.
    fn viewer_ref(&self, viewer: &Viewer) -> LiveRef {
        LiveRef {
            live_token: self.setup.live_token.clone(),
            link_id: viewer.link_id.clone(),
            user_id: viewer.user_id.clone(),
        }
    }

    fn live_ref(&self, user_id: &str) -> LiveRef {
        LiveRef {
            live_token: self.setup.live_token.clone(),
            link_id: self.setup.link_id.clone(),
            user_id: user_id.to_owned(),
        }
    }

    fn partner(&self, request: LiveRequest, awaited: Option<Awaited>) -> LiveAction {
        let retried = request.live_service_type().handling().retried;
        LiveAction::Partner {
            request: Box::new(LiveServiceRequest {
                site_token: self.setup.site_token.clone(),
                request,
            }),
            retried,
            awaited,
        }
    }

    fn details(&self, role: LiveRole, prepared: &PreparedLive) -> LiveDetails {
        let liver_name = self
            .prepared
            .as_ref()
            .map_or_else(String::new, |p| p.user.name.clone());
        let service = &prepared.service;
        LiveDetails {
            live_token: self.setup.live_token.clone(),
            link_id: self.setup.link_id.clone(),
            role,
            liver_user_id: self.setup.liver.liver_user_id.clone(),
            liver_name,
            title: service.title.clone(),
            audio_only: service.audio_only.unwrap_or(false),
            paid: !prepared.charge.is_free(),
            next_comment_ms: service.next_available_comment_ms(),
            next_gift_ms: service.next_available_gift_ms(),
            messages: service
                .special_messages
                .iter()
                .filter_map(TimedMessage::from_special)
                .collect(),
            settings: serde_json::to_value(service).unwrap_or_default(),
            appearance: LiveAppearance {
                frames: service
                    .special_frames
                    .iter()
                    .map(FrameStyle::from)
                    .collect(),
                wordings: service
                    .special_wordings
                    .iter()
                    .map(WordingStyle::from)
                    .collect(),
                comment_image_px: service.comment_image_size(),
                comment_width_percent: service.comment_scale_width(),
                comment_height_percent: service.comment_scale_height(),
                profile_images: options(service).contains(ServiceOptions::SHOW_PROFILE_IMAGE),
            },
            candidate_mode: prepared.user.candidate_mode,
        }
    }

    pub fn handle(&mut self, event: LiveEvent, now: UnixMillis) -> Vec<LiveAction> {
        if self.phase == LivePhase::Ended {
            return Vec::new();
        }
        match event {
            LiveEvent::Replied { to, reply } => self.on_reply(to, reply, now),
            LiveEvent::StartPressed if self.phase == LivePhase::Ready => {
                self.phase = LivePhase::Starting;
                let start = LiveRequest::BroadcastStart(LiverEvent {
                    live: self.live_ref(&self.setup.liver.liver_user_id),
                    liver: self.setup.liver.clone(),
                    start_time: wire_time(now),
                });
                vec![self.partner(start, Some(Awaited::Start))]
            }
            LiveEvent::StartPressed => Vec::new(),
            LiveEvent::EndPressed => self.end(LiveEndReason::BroadcasterEnded, None, now),
            LiveEvent::BroadcasterLost => self.end(LiveEndReason::BroadcasterLost, None, now),
            LiveEvent::ServerStopping => self.end(LiveEndReason::ServerStopping, None, now),
            LiveEvent::ViewerJoined {
                viewer,
                user_id,
                link_id,
                device,
            } => self.on_viewer_joined(viewer, user_id, link_id, device, now),
            LiveEvent::ViewerMediaReceived { viewer } => self.on_viewer_media(viewer, now),
            LiveEvent::ViewerLeft { viewer } => {
                self.viewer_out(viewer, LiveEndReason::ViewerLeft, None, now)
            }
            LiveEvent::Comment { from, text } => self.on_comment(from, text, now),
            LiveEvent::Item { viewer, item } => self.on_item(viewer, item, now),
            LiveEvent::Tick => self.on_tick(now),
            LiveEvent::RemoveViewer { viewer } => self.on_remove_viewer(viewer, now),
            LiveEvent::PaidSwitch { unit_price } => self.on_paid_switch(unit_price),
            LiveEvent::Favorite { viewer, favorite } => {
                let Some(live) = self.viewers.get(&viewer).map(|v| self.viewer_ref(v)) else {
                    return Vec::new();
                };
                let request = LiveRequest::Favorite(Favorite {
                    live,
                    liver: self.setup.liver.clone(),
                    start_time: wire_time(now),
                    favorite,
                });
                vec![self.partner(request, None)]
            }
            LiveEvent::BalanceAdjusted { viewer, points } => {
                self.on_balance_adjusted(viewer, points, now)
            }
            LiveEvent::PaymentDone { viewer, points } => {
                let mut actions = self.on_balance_adjusted(viewer, points, now);
                if !actions.is_empty() {
                    let done = LiveNotice::PaymentDone { points };
                    actions.insert(0, LiveAction::ToViewer(viewer, done));
                }
                actions
            }
            LiveEvent::AdminRemovesBroadcaster { comment } => {
                let user = self.setup.liver.liver_user_id.clone();
                let request = LiveRequest::AdminRemovesBroadcaster(AdminRemovesBroadcaster {
                    live: self.live_ref(&user),
                    liver: self.setup.liver.clone(),
                    start_time: wire_time(self.prepared_at),
                    end_time: wire_time(now),
                    comment: comment.clone(),
                });
                let mut actions = vec![self.partner(request, None)];
                actions.extend(self.end(LiveEndReason::RemovedByAdministrator, comment, now));
                actions
            }
            LiveEvent::AdminRemovesViewer { viewer, comment } => {
                let Some(user_id) = self.viewers.get(&viewer).map(|v| v.user_id.clone()) else {
                    return Vec::new();
                };
                let request = LiveRequest::AdminRemovesViewer(AdminRemovesViewer {
                    live: self.live_ref(&user_id),
                    start_time: wire_time(now),
                    comment: comment.clone(),
                });
                let mut actions = vec![self.partner(request, None)];
                actions.extend(self.viewer_out(
                    viewer,
                    LiveEndReason::RemovedByAdministrator,
                    comment,
                    now,
                ));
                actions
            }
            LiveEvent::AdminMessage { text } => {
                let user = self.setup.liver.liver_user_id.clone();
                let request = LiveRequest::AdminMessage(AdminMessage {
                    live: self.live_ref(&user),
                    liver: self.setup.liver.clone(),
                    start_time: wire_time(now),
                    comment: text.clone(),
                });
                vec![
                    self.partner(request, None),
                    LiveAction::ToBroadcaster(LiveNotice::AdminMessage { text }),
                ]
            }
        }
    }

    /// 15: asked of the partner; the viewer leaves once it agrees.
    fn on_remove_viewer(&mut self, id: ViewerId, now: UnixMillis) -> Vec<LiveAction> {
        let Some(user_id) = self.viewers.get(&id).map(|v| v.user_id.clone()) else {
            return Vec::new();
        };
        let request = LiveRequest::BroadcasterRemovesViewer(LiverEvent {
            live: self.live_ref(&user_id),
            liver: self.setup.liver.clone(),
            start_time: wire_time(now),
        });
        vec![self.partner(request, Some(Awaited::Removal(id)))]
    }

    /// 14: the broadcaster asks; the reply's serviceCharge is the viewers' tariff.
    fn on_paid_switch(&mut self, unit_price: u32) -> Vec<LiveAction> {
        let refuse = |message: &str| {
            vec![LiveAction::ToBroadcaster(LiveNotice::Refused {
                message: message.to_owned(),
            })]
        };
        if self.phase != LivePhase::OnAir {
            return refuse("配信中のみ有料配信に切り替えられます。");
        }
        if self.paid_since.is_some() {
            return refuse("すでに有料配信です。");
        }
        if unit_price == 0 {
            return refuse("有料配信の単価を指定してください。");
        }
        let user = self.setup.liver.liver_user_id.clone();
        let unit_sec = self.prepared.as_ref().map_or(0, |p| p.charge.unit_sec);
        let request = LiveRequest::PaidBroadcastSwitch(PaidBroadcastSwitch {
            live: self.live_ref(&user),
            liver: self.setup.liver.clone(),
            unit_price,
            unit_sec,
        });
        vec![self.partner(request, Some(Awaited::PaidSwitch))]
    }

    /// 14 accepted: every watching viewer who can pay one unit is switched
    /// (35); one who cannot is disconnected (§5.3.15).
    fn on_paid_switched(&mut self, charge: ServiceCharge, now: UnixMillis) -> Vec<LiveAction> {
        self.paid_since = Some(now);
        self.paid_charge = Some(charge.clone());
        let mut actions = vec![LiveAction::ToEveryone(LiveNotice::PaidSwitched {
            unit_sec: charge.unit_sec,
            unit_price: charge.unit_price,
            point_price: charge.point_price,
            free_trial_sec: charge.free_trial_sec,
        })];
        let watching: Vec<ViewerId> = self
            .viewers
            .iter()
            .filter(|(_, v)| v.phase == ViewerPhase::Watching && v.ledger.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in watching {
            let Some(viewer) = self.viewers.get(&id) else {
                continue;
            };
            let points = viewer.points_now(now);
            if points * i64::from(charge.point_price) < i64::from(charge.unit_price) {
                actions.extend(self.viewer_out(id, LiveEndReason::PointsExhausted, None, now));
                continue;
            }
            let charge_start = now + Duration::from_secs(u64::from(charge.free_trial_sec));
            let request = LiveRequest::PaidViewSwitch(PaidViewSwitch {
                live: self.viewer_ref(viewer),
                liver: self.setup.liver.clone(),
                start_time: wire_time(now),
                charge_start_time: wire_time(charge_start),
            });
            actions.push(self.partner(request, Some(Awaited::PaidView(id))));
        }
        actions
    }

    /// UpdateUserBalance reached a watching viewer: its ledger moves, and 36
    /// asks the partner for the viewer's details again.
    fn on_balance_adjusted(
        &mut self,
        id: ViewerId,
        points: i64,
        now: UnixMillis,
    ) -> Vec<LiveAction> {
        let Some(viewer) = self.viewers.get_mut(&id) else {
            return Vec::new();
        };
        match viewer.ledger.as_mut() {
            Some(ledger) => ledger.adjust(points),
            None => viewer.balance_change += points,
        }
        let device = viewer.device.clone();
        let live = self.viewer_ref(&self.viewers[&id]);
        let request = LiveRequest::ViewerUpdate(ViewerUpdate {
            live,
            liver: self.setup.liver.clone(),
            app_ver: device.app_ver,
            os_ver: device.os_ver,
            start_time: wire_time(now),
        });
        vec![self.partner(request, Some(Awaited::ViewerUpdate(id)))]
    }

    fn on_reply(
        &mut self,
        to: Awaited,
        reply: Result<String, PartnerFailure>,
        now: UnixMillis,
    ) -> Vec<LiveAction> {
        match to {
            Awaited::Prepare if self.phase == LivePhase::Preparing => {
                match reply.and_then(|body| {
                    parse_prepare_reply(
                        &body,
                        LiveServiceType::BroadcastPrepare,
                        &self.setup.link_id,
                    )
                }) {
                    Ok(prepared) => {
                        self.phase = LivePhase::Ready;
                        self.prepared = Some(prepared.clone());
                        let details = self.details(LiveRole::Broadcaster, &prepared);
                        vec![LiveAction::ToBroadcaster(LiveNotice::Prepared(Box::new(
                            details,
                        )))]
                    }
                    // Refused at prepare: the partner need not know the token; no 29.
                    Err(failure) => self.finish(LiveEndReason::Refused, refused(&failure)),
                }
            }
            Awaited::Start if self.phase == LivePhase::Starting => match reply {
                Ok(_) => {
                    self.phase = LivePhase::OnAir;
                    self.on_air_at = Some(now);
                    let mut actions = vec![LiveAction::ToBroadcaster(LiveNotice::OnAir)];
                    if let Some(service) = self.prepared.as_ref().map(|p| &p.service)
                        && service.server_side_recording == Some(true)
                    {
                        actions.push(LiveAction::Record {
                            audio_only: service.audio_only.unwrap_or(false),
                        });
                    }
                    actions
                }
                // The partner refused the start itself: it needs no 29.
                Err(failure) => self.finish(LiveEndReason::Refused, refused(&failure)),
            },
            Awaited::ViewerPrepare(id) => self.on_viewer_prepared(id, reply, now),
            Awaited::ViewerStart(id) => self.on_viewer_started(id, reply, now),
            Awaited::Comment(n) | Awaited::Item(n) => match self.pending.remove(&n) {
                Some(pending) => self.on_verdict(pending, reply),
                None => Vec::new(),
            },
            Awaited::Removal(id) => match reply.and_then(|b| PartnerReply::parse_accepted(&b)) {
                Ok(_) => self.viewer_out(id, LiveEndReason::RemovedByBroadcaster, None, now),
                Err(failure) => vec![LiveAction::ToBroadcaster(LiveNotice::Refused {
                    message: failure.user_message_ja(),
                })],
            },
            Awaited::PaidSwitch if self.phase == LivePhase::OnAir => {
                let required = LiveServiceType::PaidBroadcastSwitch
                    .handling()
                    .required_reply;
                match reply.and_then(|body| SiteService::from_reply(&body, required)) {
                    Ok(SiteService {
                        service_charge: Some(charge),
                        ..
                    }) if !charge.is_free() => self.on_paid_switched(charge, now),
                    Ok(_) => vec![LiveAction::ToBroadcaster(LiveNotice::Refused {
                        message: "連携先サイトの有料配信の料金が読み取れませんでした。".into(),
                    })],
                    Err(failure) => vec![LiveAction::ToBroadcaster(LiveNotice::Refused {
                        message: failure.user_message_ja(),
                    })],
                }
            }
            Awaited::PaidSwitch => Vec::new(),
            Awaited::PaidView(id) => match reply.and_then(|b| PartnerReply::parse_accepted(&b)) {
                Ok(_) => {
                    let Some(charge) = self.paid_charge.clone() else {
                        return Vec::new();
                    };
                    let Some(viewer) = self.viewers.get_mut(&id) else {
                        return Vec::new();
                    };
                    // The switch's tariff on the viewer's points now, after its free trial.
                    let mut tariff = charge;
                    tariff.current_point =
                        u32::try_from(viewer.points_now(now).max(0)).unwrap_or(u32::MAX);
                    viewer.ledger = Some(Ledger::new(&tariff, now));
                    viewer.charge_start =
                        Some(now + Duration::from_secs(u64::from(tariff.free_trial_sec)));
                    Vec::new()
                }
                Err(failure) => self.viewer_out(id, LiveEndReason::Refused, refused(&failure), now),
            },
            Awaited::ViewerUpdate(id) => {
                let link_id = self
                    .viewers
                    .get(&id)
                    .map(|v| v.link_id.clone())
                    .unwrap_or_default();
                let parsed = reply.and_then(|body| {
                    parse_prepare_reply(&body, LiveServiceType::ViewerUpdate, &link_id)
                });
                let Ok(prepared) = parsed else {
                    // The update is the partner's to give; without it the viewer goes on as before.
                    return Vec::new();
                };
                let Some(viewer) = self.viewers.get_mut(&id) else {
                    return Vec::new();
                };
                let notice = LiveNotice::ViewerUpdated {
                    user_id: viewer.user_id.clone(),
                    name: prepared.user.name.clone(),
                };
                viewer.prepared = Some(prepared);
                vec![
                    LiveAction::ToViewer(id, notice.clone()),
                    LiveAction::ToBroadcaster(notice),
                ]
            }
            Awaited::Prepare | Awaited::Start => Vec::new(),
        }
    }

    fn on_viewer_joined(
        &mut self,
        id: ViewerId,
        user_id: String,
        link_id: String,
        device: DeviceFacts,
        now: UnixMillis,
    ) -> Vec<LiveAction> {
        if self.phase != LivePhase::OnAir {
            let notice = LiveNotice::Ended {
                reason: LiveEndReason::NotOnAir,
                message: None,
                summary: None,
            };
            return vec![LiveAction::ToViewer(id, notice), LiveAction::Release(id)];
        }
        let request = LiveRequest::ViewPrepare(ViewPrepare {
            live: LiveRef {
                live_token: self.setup.live_token.clone(),
                link_id: link_id.clone(),
                user_id: user_id.clone(),
            },
            liver: self.setup.liver.clone(),
            app_ver: device.app_ver.clone(),
            device_name: device.device_name.clone(),
            os_ver: device.os_ver.clone(),
            start_time: wire_time(now),
        });
        self.viewers.insert(
            id,
            Viewer {
                user_id,
                link_id,
                device,
                phase: ViewerPhase::Preparing,
                prepared: None,
                deadline: None,
                started_at: None,
                ledger: None,
                charge_start: None,
                balance_change: 0,
                spent: 0,
                last_comment: None,
                last_item: None,
            },
        );
        vec![self.partner(request, Some(Awaited::ViewerPrepare(id)))]
    }

    fn on_viewer_prepared(
        &mut self,
        id: ViewerId,
        reply: Result<String, PartnerFailure>,
        now: UnixMillis,
    ) -> Vec<LiveAction> {
        let Some(viewer) = self.viewers.get(&id) else {
            return Vec::new();
        };
        if viewer.phase != ViewerPhase::Preparing {
            return Vec::new();
        }
        let link_id = viewer.link_id.clone();
        match reply
            .and_then(|body| parse_prepare_reply(&body, LiveServiceType::ViewPrepare, &link_id))
        {
            Ok(prepared) => {
                let details = self.details(LiveRole::Viewer, &prepared);
                let viewer = self.viewers.get_mut(&id).expect("checked above");
                viewer.phase = ViewerPhase::Admitted;
                viewer.deadline = Some(now + VIEW_MEDIA_DEADLINE);
                viewer.prepared = Some(prepared);
                let mut actions = vec![
                    LiveAction::ToViewer(id, LiveNotice::Prepared(Box::new(details))),
                    LiveAction::Admit(id),
                ];
                actions.push(self.viewers_notice());
                actions
            }
            Err(failure) => {
                self.viewers.remove(&id);
                let notice = LiveNotice::Ended {
                    reason: LiveEndReason::Refused,
                    message: refused(&failure),
                    summary: None,
                };
                vec![LiveAction::ToViewer(id, notice), LiveAction::Release(id)]
            }
        }
    }

    /// §5.3.10: 32 only once the viewer really received media.
    fn on_viewer_media(&mut self, id: ViewerId, now: UnixMillis) -> Vec<LiveAction> {
        let Some(viewer) = self.viewers.get_mut(&id) else {
            return Vec::new();
        };
        if viewer.phase != ViewerPhase::Admitted {
            return Vec::new();
        }
        viewer.phase = ViewerPhase::Starting;
        viewer.started_at = Some(now);
        let paid = viewer
            .prepared
            .as_ref()
            .map(|p| &p.charge)
            .filter(|c| !c.is_free());
        let charge_start =
            paid.map(|c| wire_time(now + Duration::from_secs(u64::from(c.free_trial_sec))));
        let device = viewer.device.clone();
        let live = self.viewer_ref(&self.viewers[&id]);
        let request = LiveRequest::ViewStart(ViewStart {
            live,
            liver: self.setup.liver.clone(),
            app_ver: device.app_ver,
            os_ver: device.os_ver,
            start_time: wire_time(now),
            charge_start_time: charge_start,
        });
        vec![self.partner(request, Some(Awaited::ViewerStart(id)))]
    }

    fn on_viewer_started(
        &mut self,
        id: ViewerId,
        reply: Result<String, PartnerFailure>,
        now: UnixMillis,
    ) -> Vec<LiveAction> {
        let Some(viewer) = self.viewers.get_mut(&id) else {
            return Vec::new();
        };
        if viewer.phase != ViewerPhase::Starting {
            return Vec::new();
        }
        match reply {
            Ok(_) => {
                viewer.phase = ViewerPhase::Watching;
                viewer.deadline = None;
                let started = viewer.started_at.unwrap_or(now);
                let paid = viewer.prepared.as_ref().filter(|p| !p.charge.is_free());
                viewer.ledger = paid.map(|p| Ledger::new(&p.charge, started));
                viewer.charge_start =
                    paid.map(|p| started + Duration::from_secs(u64::from(p.charge.free_trial_sec)));
                let every_time = viewer.prepared.as_ref().is_some_and(|p| {
                    options(&p.service).contains(ServiceOptions::LOGIN_GUIDANCE_EVERY_TIME)
                });
                let joined = LiveNotice::Joined {
                    user_id: viewer.user_id.clone(),
                    name: viewer.name(),
                    image: viewer.image(),
                };
                let first_time = self.announced.insert(viewer.user_id.clone());
                let mut actions = vec![LiveAction::ToViewer(id, LiveNotice::OnAir)];
                if first_time || every_time {
                    actions.push(LiveAction::ToEveryone(joined));
                }
                actions.push(self.viewers_notice());
                actions
            }
            // The partner refused the viewing itself: it needs no 33.
            Err(failure) => {
                self.viewers.remove(&id);
                let notice = LiveNotice::Ended {
                    reason: LiveEndReason::Refused,
                    message: refused(&failure),
                    summary: None,
                };
                vec![
                    LiveAction::ToViewer(id, notice),
                    LiveAction::Release(id),
                    self.viewers_notice(),
                ]
            }
        }
    }

    fn on_comment(&mut self, from: Speaker, text: String, now: UnixMillis) -> Vec<LiveAction> {
        let tell = |message: &str| {
            let notice = LiveNotice::Refused {
                message: message.to_owned(),
            };
            match from {
                Speaker::Broadcaster => vec![LiveAction::ToBroadcaster(notice)],
                Speaker::Viewer(id) => vec![LiveAction::ToViewer(id, notice)],
            }
        };
        if self.phase != LivePhase::OnAir {
            return tell("配信中のみコメントできます。");
        }
        let text = text.trim().to_owned();
        if text.len() > COMMENT_MAX_BYTES
            || text
                .graphemes(true)
                .any(|character| character.len() > COMMENT_MAX_CHAR_BYTES)
        {
            return tell("コメントが長すぎるか、使えない文字が含まれています。");
        }
        let length = comment_length(&text);
        if length == 0 {
            return tell("コメントが空です。");
        }
        if length > COMMENT_MAX_CHARS {
            return tell(&format!("コメントは {COMMENT_MAX_CHARS} 文字までです。"));
        }
        // The writer as its requests name the live: a viewer by its own linkId.
        let live = match from {
            Speaker::Broadcaster => self.live_ref(&self.setup.liver.liver_user_id),
            Speaker::Viewer(id) => match self.viewers.get(&id) {
                Some(viewer) => self.viewer_ref(viewer),
                None => return tell("視聴中のみコメントできます。"),
            },
        };
        // Each side's own reply (11 or 31) sets its interval.
        let (last, point, interval) = match from {
            Speaker::Broadcaster => (
                &mut self.broadcaster_last_comment,
                0,
                self.prepared
                    .as_ref()
                    .map_or(0, |p| p.service.next_available_comment_ms()),
            ),
            Speaker::Viewer(id) => {
                let Some(viewer) = self
                    .viewers
                    .get_mut(&id)
                    .filter(|v| v.phase == ViewerPhase::Watching)
                else {
                    return tell("視聴中のみコメントできます。");
                };
                // §5.3.9: comments of commentChargeLen characters or more cost commentChargePoint.
                let service = viewer.prepared.as_ref().map(|p| &p.service);
                let charge_len = service.and_then(|s| s.comment_charge_len).unwrap_or(0);
                let point = if charge_len > 0 && length >= charge_len {
                    service.and_then(|s| s.comment_charge_point).unwrap_or(0)
                } else {
                    0
                };
                let interval = service.map_or(0, LiveService::next_available_comment_ms);
                (&mut viewer.last_comment, point, interval)
            }
        };
        // nextAvailableCommentTime holds on the server too, not only in the UI.
        if last.is_some_and(|at| now.millis_since(at) < u64::from(interval)) {
            return tell("コメントの間隔が短すぎます。少し待ってから送ってください。");
        }
        *last = Some(now);
        let request = LiveRequest::Comment(CommentPost::new(
            live,
            self.setup.liver.clone(),
            wire_time(now),
            text.clone(),
            point,
        ));
        let n = self.next_pending;
        self.next_pending += 1;
        self.pending
            .insert(n, Pending::Comment { from, text, point });
        vec![self.partner(request, Some(Awaited::Comment(n)))]
    }

    fn on_item(&mut self, id: ViewerId, item: GiftItem, now: UnixMillis) -> Vec<LiveAction> {
        let refuse = |message: &str| {
            vec![LiveAction::ToViewer(
                id,
                LiveNotice::Refused {
                    message: message.to_owned(),
                },
            )]
        };
        if self.phase != LivePhase::OnAir {
            return refuse("配信中のみ送れます。");
        }
        let Some(viewer) = self
            .viewers
            .get_mut(&id)
            .filter(|v| v.phase == ViewerPhase::Watching)
        else {
            return refuse("視聴中のみ送れます。");
        };
        // The viewer's 31 reply sets nextAvailableGiftTime; the server holds it too.
        let interval = viewer
            .prepared
            .as_ref()
            .map_or(0, |p| p.service.next_available_gift_ms());
        if viewer
            .last_item
            .is_some_and(|at| now.millis_since(at) < u64::from(interval))
        {
            return refuse("送信の間隔が短すぎます。少し待ってから送ってください。");
        }
        viewer.last_item = Some(now);
        let live = self.viewer_ref(&self.viewers[&id]);
        let send = ItemSend {
            live,
            liver: self.setup.liver.clone(),
            start_time: wire_time(now),
            item_category: item.category.clone(),
            item_no: item.item_no.clone(),
            point: item.point,
            liver_gift_point: item.liver_point,
        };
        let request = match item.kind {
            ItemKind::Stamp => LiveRequest::Stamp(send),
            ItemKind::Gift => LiveRequest::Gift(send),
        };
        let n = self.next_pending;
        self.next_pending += 1;
        self.pending.insert(n, Pending::Item { viewer: id, item });
        vec![self.partner(request, Some(Awaited::Item(n)))]
    }

    /// The partner's verdict on a comment or item: shown to everyone, or
    /// the sender is told why not.
    fn on_verdict(
        &mut self,
        pending: Pending,
        reply: Result<String, PartnerFailure>,
    ) -> Vec<LiveAction> {
        let reply = reply.and_then(|body| PartnerReply::parse_accepted(&body).map(|_| ()));
        match (pending, reply) {
            (Pending::Comment { from, text, point }, Ok(())) => {
                let (user_id, name, image) = match from {
                    Speaker::Broadcaster => (
                        self.setup.liver.liver_user_id.clone(),
                        self.prepared
                            .as_ref()
                            .map_or_else(String::new, |p| p.user.name.clone()),
                        self.prepared
                            .as_ref()
                            .and_then(|p| p.user.profile_image_url.clone()),
                    ),
                    Speaker::Viewer(id) => match self.viewers.get_mut(&id) {
                        Some(viewer) => {
                            viewer.spent += u64::from(point);
                            if let Some(ledger) = viewer.ledger.as_mut() {
                                ledger.adjust(-i64::from(point));
                            }
                            (viewer.user_id.clone(), viewer.name(), viewer.image())
                        }
                        // Gone meanwhile: the comment still stands, as the partner accepted it.
                        None => (String::new(), String::new(), None),
                    },
                };
                let mut actions = vec![LiveAction::ToEveryone(LiveNotice::Comment {
                    user_id,
                    name,
                    text,
                    from_broadcaster: from == Speaker::Broadcaster,
                    point,
                    image,
                })];
                if point > 0 {
                    actions.push(self.viewers_notice());
                }
                actions
            }
            (Pending::Item { viewer: id, item }, Ok(())) => {
                let (user_id, name, image) = match self.viewers.get_mut(&id) {
                    Some(viewer) => {
                        viewer.spent += u64::from(item.point);
                        if let Some(ledger) = viewer.ledger.as_mut() {
                            ledger.adjust(-i64::from(item.point));
                        }
                        (viewer.user_id.clone(), viewer.name(), viewer.image())
                    }
                    None => (String::new(), String::new(), None),
                };
                vec![
                    LiveAction::ToEveryone(LiveNotice::Item {
                        user_id,
                        name,
                        item: Box::new(item),
                        image,
                    }),
                    self.viewers_notice(),
                ]
            }
            (Pending::Comment { from, .. }, Err(failure)) => {
                let notice = LiveNotice::Refused {
                    message: failure.user_message_ja(),
                };
                vec![match from {
                    Speaker::Broadcaster => LiveAction::ToBroadcaster(notice),
                    Speaker::Viewer(id) => LiveAction::ToViewer(id, notice),
                }]
            }
            (Pending::Item { viewer, .. }, Err(failure)) => vec![LiveAction::ToViewer(
                viewer,
                LiveNotice::Refused {
                    message: failure.user_message_ja(),
                },
            )],
        }
    }

    fn on_tick(&mut self, now: UnixMillis) -> Vec<LiveAction> {
        let mut actions = Vec::new();
        let ids: Vec<ViewerId> = self.viewers.keys().copied().collect();
        for id in ids {
            let Some(viewer) = self.viewers.get_mut(&id) else {
                continue;
            };
            if viewer.deadline.is_some_and(|d| now >= d) {
                actions.extend(self.viewer_out(id, LiveEndReason::NoMedia, None, now));
                continue;
            }
            let Some(ledger) = viewer.ledger.as_mut() else {
                continue;
            };
            let exhausted = ledger
                .tick(now)
                .into_iter()
                .any(|e| matches!(e, LedgerEvent::Exhausted));
            let billing = LiveNotice::Billing {
                time_left_sec: ledger.time_left(now).map(|d| d.as_secs()),
                used_points: ledger.used_points(now),
            };
            actions.push(LiveAction::ToViewer(id, billing));
            if exhausted {
                actions.extend(self.viewer_out(id, LiveEndReason::PointsExhausted, None, now));
            }
        }
        actions
    }

    /// The viewer count and ranking (§5.3.1 rankingMode), to everyone.
    fn viewers_notice(&self) -> LiveAction {
        let mode = self
            .prepared
            .as_ref()
            .and_then(|p| p.service.ranking_mode)
            .unwrap_or_default();
        let mut watching: Vec<&Viewer> = self
            .viewers
            .values()
            .filter(|v| v.phase != ViewerPhase::Preparing)
            .collect();
        watching.sort_by(|a, b| {
            let by_points = b.spent.cmp(&a.spent);
            match mode {
                RankingMode::PointsSpent => by_points,
                RankingMode::PointsSpentThenLatestJoin => {
                    by_points.then_with(|| b.started_at.cmp(&a.started_at))
                }
            }
        });
        LiveAction::ToEveryone(LiveNotice::Viewers {
            count: watching.len(),
            ranking: watching
                .iter()
                .map(|v| RankedViewer {
                    user_id: v.user_id.clone(),
                    name: v.name(),
                    points: v.spent,
                })
                .collect(),
        })
    }

    /// The viewer leaves the live, and everyone learns the new count.
    fn viewer_out(
        &mut self,
        id: ViewerId,
        reason: LiveEndReason,
        message: Option<String>,
        now: UnixMillis,
    ) -> Vec<LiveAction> {
        let mut actions = self.release_viewer(id, reason, message, now);
        if !actions.is_empty() && self.phase == LivePhase::OnAir {
            actions.push(self.viewers_notice());
        }
        actions
    }

    /// The viewer leaves: 33 if it was admitted, told why, released.
    fn release_viewer(
        &mut self,
        id: ViewerId,
        reason: LiveEndReason,
        message: Option<String>,
        now: UnixMillis,
    ) -> Vec<LiveAction> {
        let Some(viewer) = self.viewers.remove(&id) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let summary = (viewer.phase != ViewerPhase::Preparing).then(|| {
            let started = viewer.started_at.unwrap_or(now);
            let point = viewer.ledger.as_ref().map_or(0, |l| l.used_points(now));
            let charge_sec = viewer.ledger.as_ref().map_or(0, |l| l.charged_seconds(now));
            let charge_start = viewer.charge_start;
            let live_sec = rounded_seconds(started, now);
            actions.push(self.partner(
                LiveRequest::ViewEnd(ViewEnd {
                    live: self.viewer_ref(&viewer),
                    liver: self.setup.liver.clone(),
                    start_time: wire_time(started),
                    charge_start_time: charge_start.map(wire_time),
                    end_time: wire_time(now),
                    point,
                    live_sec,
                    charge_sec,
                }),
                None,
            ));
            LiveSummary {
                live_sec,
                point,
                charge_sec,
            }
        });
        actions.push(LiveAction::ToViewer(
            id,
            LiveNotice::Ended {
                reason,
                message,
                summary,
            },
        ));
        actions.push(LiveAction::Release(id));
        actions
    }

    /// The broadcaster's side ends: 29 before on air, 13 after, and every viewer out.
    fn end(
        &mut self,
        reason: LiveEndReason,
        message: Option<String>,
        now: UnixMillis,
    ) -> Vec<LiveAction> {
        let liver = self.setup.liver.clone();
        let user = liver.liver_user_id.clone();
        let mut actions = Vec::new();
        match self.phase {
            LivePhase::Preparing => {}
            LivePhase::Ready | LivePhase::Starting => {
                actions.push(self.partner(
                    LiveRequest::BroadcastAbort(BroadcastAbort {
                        live: self.live_ref(&user),
                        liver,
                        start_time: wire_time(self.prepared_at),
                        end_time: wire_time(now),
                    }),
                    None,
                ));
            }
            LivePhase::OnAir => {
                let ids: Vec<ViewerId> = self.viewers.keys().copied().collect();
                // Viewers first, so the live is still on air for their 33; the
                // live is ending, so no one needs the shrinking count.
                for id in ids {
                    actions.extend(self.release_viewer(id, LiveEndReason::LiveEnded, None, now));
                }
                let on_air = self.on_air_at.unwrap_or(now);
                actions.push(self.partner(
                    LiveRequest::BroadcastEnd(BroadcastEnd {
                        live: self.live_ref(&user),
                        liver,
                        start_time: wire_time(on_air),
                        charge_start_time: self.paid_since.map(wire_time),
                        end_time: wire_time(now),
                        live_sec: rounded_seconds(on_air, now),
                    }),
                    None,
                ));
            }
            LivePhase::Ended => return Vec::new(),
        }
        actions.extend(self.finish(reason, message));
        actions
    }

    fn finish(&mut self, reason: LiveEndReason, message: Option<String>) -> Vec<LiveAction> {
        self.phase = LivePhase::Ended;
        self.ended = Some(reason);
        let notice = LiveNotice::Ended {
            reason,
            message,
            summary: None,
        };
        // Viewers admitted meanwhile were ended above; only the broadcaster is left to tell.
        vec![LiveAction::ToBroadcaster(notice), LiveAction::Ended(reason)]
    }
}
