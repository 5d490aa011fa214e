//! The signalling protocol between the app and the Nexmile server: JSON text
//! messages on one WebSocket per profile (`/ws`), tagged by `"type"`.
//! Versioned by [`PROTOCOL_VERSION`], sent in [`ClientMessage::Hello`]; a
//! server refuses a version it does not speak with [`ServerMessage::Error`].
//!
//! Activation (§3.2) is plain HTTP (`POST /api/activate` with
//! [`ActivateRequest`]); it yields the session token the WebSocket's `hello`
//! presents. Session descriptions are the JSON of an RTCSessionDescription
//! with candidates gathered (no trickle).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::device::DeviceToken;
use crate::party::Party;
use crate::secret::{Secret, expose_secret};
use crate::wire::call::CallOverview;
use crate::wire::codes::{CallOption, OsType, TerminateReason};
use crate::wire::customization::{
    Argb, LiveSpecialFrame, LiveSpecialMessage, SpecialWording, WordingSegment, clamped,
};

pub const PROTOCOL_VERSION: u32 = 1;

/// What the app says about the device it runs on (callUser uaTp/appVer/deviceName/osVer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceInfo {
    pub device_token: DeviceToken,
    /// `99.99.99`.
    pub app_version: String,
    pub os_type: OsType,
    pub device_name: String,
    pub os_version: String,
}

/// `POST /api/activate`: the app link's activateExUser (or first launch for `nexmile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ActivateRequest {
    pub site: String,
    pub device: DeviceInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(
        default,
        serialize_with = "expose_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_pw: Option<Secret>,
    /// The built-in site: the secret the server gave this installation at its
    /// first registration, which every later registration must show (the
    /// device token, which every partner sees, proves nothing).
    #[serde(
        default,
        serialize_with = "expose_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_secret: Option<Secret>,
}

/// The answer to [`ActivateRequest`]: a profile, or the words to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ActivateReply {
    Activated {
        site: String,
        /// Shown in the app; presented by `hello`.
        session_token: String,
        user_id: String,
        name: String,
        /// §3.2 ③: face-filter packages may be downloaded.
        enable_download_effect: bool,
        /// The built-in site's users are called by this number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone_number: Option<String>,
        /// The built-in site, first registration only: the secret to keep in
        /// the keychain and show at every later registration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_secret: Option<String>,
    },
    Refused {
        message: String,
    },
}

/// What a call screen shows about the other side and what the call allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CallDetails {
    pub call_token: String,
    /// For the caller: the callee's name; for the callee: site name + prefix + caller name.
    pub peer_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_image_url: Option<String>,
    pub video: bool,
    /// The effects this side may use (callerOption / calleeOption).
    pub options: CallOption,
    pub ring_timeout_sec: u32,
    /// Where "サイトへ戻る" leads after the call, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// The IP family this side's media keeps to (§3.3.3 candidateMode: 1
    /// IPv4, 2 IPv6, 3 both; the callee's is calleeCandidateMode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<u8>")]
    pub candidate_mode: Option<crate::wire::codes::CandidateMode>,
}

/// A stamp or a gift: the two differ only in their request code (§5.3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Stamp,
    Gift,
}

/// One item of a site's stamp and gift catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GiftItem {
    pub kind: ItemKind,
    /// itemCategory.
    pub category: String,
    /// itemNo.
    pub item_no: String,
    pub name: String,
    /// Points the viewer spends.
    pub point: u32,
    /// Points the broadcaster earns (liverGiftPoint).
    pub liver_point: u32,
    /// The APNG (or picture) of the site's effect files that plays it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveRole {
    Broadcaster,
    Viewer,
}

/// What a live screen shows and allows, from the partner's 11 / 31 reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LiveDetails {
    pub live_token: String,
    pub link_id: String,
    pub role: LiveRole,
    pub liver_user_id: String,
    pub liver_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A radio live: sound only.
    pub audio_only: bool,
    /// Viewing costs points (the viewer's serviceCharge is not free).
    pub paid: bool,
    /// nextAvailableCommentTime / nextAvailableGiftTime after range checks (0: none).
    pub next_comment_ms: u32,
    pub next_gift_ms: u32,
    /// §5.4.4 specialMessages that passed their range checks.
    pub messages: Vec<TimedMessage>,
    /// The partner's liveService as sent (customisation of §5.4).
    pub settings: serde_json::Value,
    /// §5.4.2/§5.4.3 and the comment area, range-checked for drawing.
    pub appearance: LiveAppearance,
    /// The IP family this member's media keeps to (§3.3.3 candidateMode of
    /// the reply's user: 1 IPv4, 2 IPv6, 3 both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<u8>")]
    pub candidate_mode: Option<crate::wire::codes::CandidateMode>,
}

/// How this side's live screen draws its comments and guidance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LiveAppearance {
    /// specialFrames: out-of-range sizes are clamped into the spec's ranges,
    /// unreadable colours left to the default frame.
    pub frames: Vec<FrameStyle>,
    /// specialWordings: unsupported placeholders already removed.
    pub wordings: Vec<WordingStyle>,
    /// commentImageSize (20–32 px, else 24).
    pub comment_image_px: u32,
    /// commentScaleWidth (30–99 %, else 90) and commentScaleHeight (30–80 %, else 30).
    pub comment_width_percent: u32,
    pub comment_height_percent: u32,
    /// serviceOptions 1: profile images beside comments.
    pub profile_images: bool,
}

/// A §5.4.2 frame ready to draw; colours as CSS `rgba()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FrameStyle {
    /// frameDesignTp.
    pub design: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fore: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border_width: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border_radius: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font_size: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_vertical: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_horizontal: Option<f32>,
}

/// A §5.4.3 wording: text and placeholders (`Tran.UserName`) with their styles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WordingStyle {
    /// wordingTp.
    pub wording: u8,
    pub segments: Vec<WordingPiece>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WordingPiece {
    Text {
        text: String,
    },
    Placeholder {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        color: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        font_size: Option<f32>,
    },
}

impl From<&LiveSpecialFrame> for FrameStyle {
    /// The partner's frame as the screens draw it.
    fn from(frame: &LiveSpecialFrame) -> Self {
        Self {
            design: frame.frame_design_type.into(),
            fore: frame.fore_color.map(Argb::css),
            back: frame.back_color.map(Argb::css),
            border: frame.border_color.map(Argb::css),
            border_width: clamped(frame.border_width, 0.0, 9.9),
            border_radius: clamped(frame.border_circular, 0.0, 99.9),
            font_size: clamped(frame.font_size, 8.0, 24.0),
            padding_vertical: clamped(frame.padding_vertical, 0.0, 99.0),
            padding_horizontal: clamped(frame.padding_horizontal, 0.0, 99.0),
        }
    }
}

impl From<&SpecialWording> for WordingStyle {
    /// The partner's wording as the screens draw it: supported placeholders
    /// with their placeholderColors, the others removed (§5.4.3 ②).
    fn from(wording: &SpecialWording) -> Self {
        let segments = wording
            .wording_type
            .segments(&wording.wording)
            .into_iter()
            .map(|segment| match segment {
                WordingSegment::Text(text) => WordingPiece::Text { text },
                WordingSegment::Placeholder(p) => {
                    let colour = wording
                        .placeholder_colors
                        .iter()
                        .find(|c| c.placeholder.trim_matches('%') == p.name());
                    WordingPiece::Placeholder {
                        name: p.name().to_owned(),
                        color: colour.and_then(|c| c.fore_color).map(Argb::css),
                        font_size: clamped(colour.and_then(|c| c.font_size), 8.0, 24.0),
                    }
                }
            })
            .collect();
        Self {
            wording: wording.wording_type.into(),
            segments,
        }
    }
}

/// A pop-up shown `after_sec` after going on air (the broadcaster) or
/// starting to watch (a viewer), for `duration_sec` (§5.4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimedMessage {
    pub after_sec: u32,
    pub duration_sec: u32,
    pub text: String,
    /// alignmentX in percent: −100 (left) … 100 (right), 0 the centre.
    pub x_percent: i16,
    /// alignmentY in percent: −100 (top) … 100 (bottom), 0 the centre.
    pub y_percent: i16,
    /// widthRate in percent of the screen's width: 10 … 99.
    pub width_percent: u8,
    /// The partner's frame (§5.4.2) as sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<serde_json::Value>,
}

impl TimedMessage {
    /// The pop-up to show for the partner's special message, or `None`
    /// when its timing is out of the spec's ranges (connectAfterSec 5–3600,
    /// displayDuration 1–30): a message at the wrong moment is worse than
    /// none. Placement out of range falls back to the documented default
    /// (centre; 0.7 of the width), as other display settings do.
    pub fn from_special(message: &LiveSpecialMessage) -> Option<Self> {
        let in_range = |v: Option<f64>, low: f64, high: f64| v.filter(|v| (low..=high).contains(v));
        ((5..=3600).contains(&message.connect_after_sec)
            && (1..=30).contains(&message.display_duration)
            && !message.message.trim().is_empty())
        .then(|| Self {
            after_sec: message.connect_after_sec,
            duration_sec: message.display_duration,
            text: message.message.clone(),
            // In range, so the rounded percentages fit their types.
            x_percent: (in_range(message.alignment_x, -1.0, 1.0).unwrap_or(0.0) * 100.0).round()
                as i16,
            y_percent: (in_range(message.alignment_y, -1.0, 1.0).unwrap_or(0.0) * 100.0).round()
                as i16,
            width_percent: (in_range(message.width_rate, 0.1, 0.99).unwrap_or(0.7) * 100.0).round()
                as u8,
            frame: message
                .frame
                .as_ref()
                .and_then(|f| serde_json::to_value(f).ok()),
        })
    }
}

/// Why a live, or one viewer's part in it, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveEndReason {
    BroadcasterEnded,
    /// The broadcaster's app or connection was lost.
    BroadcasterLost,
    /// For a viewer: the broadcaster ended the live.
    LiveEnded,
    ViewerLeft,
    /// The partner refused (the message says why).
    Refused,
    /// The live is not on air (not started yet, or over).
    NotOnAir,
    /// No picture (or sound) reached the viewer in time (§5.3.11).
    NoMedia,
    /// Paid viewing: the viewer's points ran out (or cannot pay a paid switch).
    PointsExhausted,
    /// The broadcaster removed the viewer (§5.3.5).
    RemovedByBroadcaster,
    /// An administrator removed the broadcaster or the viewer (§5.3.7, §5.3.18).
    RemovedByAdministrator,
    ServerError,
    /// The server was stopped for maintenance (SIGTERM): every live and
    /// viewing ended and was reported.
    ServerStopping,
}

/// A viewer's totals when its viewing ended (33's figures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LiveSummary {
    pub live_sec: u64,
    pub point: u64,
    pub charge_sec: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RankedViewer {
    pub user_id: String,
    pub name: String,
    /// Points spent on gifts, stamps and paid comments in this live.
    pub points: u64,
}

/// What happens in a live, told to its broadcaster and viewers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveNotice {
    /// The partner accepted 11 (broadcaster) or 31 (viewer).
    Prepared(Box<LiveDetails>),
    /// The broadcaster: on air. A viewer: its viewing started (32 accepted).
    OnAir,
    Comment {
        user_id: String,
        name: String,
        text: String,
        from_broadcaster: bool,
        /// Points the comment cost (a paid comment), else 0.
        point: u32,
        /// The writer's profileImageUrl, shown where serviceOptions 1 allows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
    Item {
        user_id: String,
        name: String,
        item: Box<GiftItem>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
    /// A viewer started watching: the login guidance (wordingTp 21). A
    /// viewer back in the same live is announced again only where its
    /// serviceOptions 4 allows.
    Joined {
        user_id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
    /// The viewer count and ranking.
    Viewers {
        count: usize,
        ranking: Vec<RankedViewer>,
    },
    /// Once a second for a paying viewer.
    Billing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_left_sec: Option<u64>,
        used_points: u64,
    },
    /// A comment or item was not accepted; the words are for the user.
    Refused { message: String },
    /// The live became paid (§5.3.4): viewers pay this from `free_trial_sec` on.
    PaidSwitched {
        unit_sec: u32,
        unit_price: u32,
        point_price: u32,
        free_trial_sec: u32,
    },
    /// An administrator's message to the broadcaster (§5.3.8).
    AdminMessage { text: String },
    /// A viewer's details changed after the partner updated its points (§5.3.17).
    ViewerUpdated { user_id: String, name: String },
    /// The viewer's real-time payment went through (§5.3.16): these points were added.
    PaymentDone { points: i64 },
    Ended {
        reason: LiveEndReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<LiveSummary>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Hello {
        protocol: u32,
        session_token: String,
        device: DeviceInfo,
    },
    /// The makecall link: the server asks the partner (架電準備).
    MakeCall {
        callee_id: String,
        video: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller_sub_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callee_sub_id: Option<String>,
    },
    /// The caller's app starts the prepared call with its media offer (架電開始).
    StartCall {
        call_token: String,
        offer: String,
    },
    /// A ringing device answers with its media offer.
    Answer {
        call_token: String,
        offer: String,
    },
    Decline {
        call_token: String,
    },
    /// Either side ends (or the caller cancels) the call.
    Hangup {
        call_token: String,
    },
    /// videoSetting's loopback test: the server returns this media as it
    /// receives it, through the same relay calls use.
    StartVideoTest {
        offer: String,
    },
    EndVideoTest,
    /// The broadcastLive link: the server asks the partner (配信準備, 11).
    PrepareBroadcast {
        link_id: String,
    },
    /// The prepared broadcaster's media offer: its picture reaches the
    /// server (and its own preview) before the start; no viewer sees it yet.
    BroadcastMedia {
        live_token: String,
        offer: String,
    },
    /// The start button (配信開始, 12).
    StartBroadcast {
        live_token: String,
    },
    /// The viewLive link (視聴準備, 31).
    ViewLive {
        live_token: String,
        link_id: String,
    },
    /// An admitted viewer's media offer (receive only in effect).
    ReceiveLive {
        live_token: String,
        offer: String,
    },
    /// The viewer decoded the first picture (radio: sound): 視聴開始 (32) may go.
    LiveMediaReceived {
        live_token: String,
    },
    LiveComment {
        live_token: String,
        text: String,
    },
    /// A stamp or gift of the site's catalogue, by its category and number.
    LiveItem {
        live_token: String,
        category: String,
        item_no: String,
    },
    /// The broadcaster ends the live, or a viewer leaves it.
    LeaveLive {
        live_token: String,
    },
    /// The broadcaster removes a viewer (§5.3.5).
    RemoveViewer {
        live_token: String,
        user_id: String,
    },
    /// The broadcaster makes the live paid at this price per its unit (§5.3.4).
    PaidSwitch {
        live_token: String,
        unit_price: u32,
    },
    /// A viewer adds (or removes) the broadcaster to its favourites (§5.3.14).
    Favorite {
        live_token: String,
        favorite: bool,
    },
    /// A viewer buys points with one of the live's quickPayments (§5.3.16).
    Payment {
        live_token: String,
        amount: u32,
        /// Chosen by the client for each purchase and kept on resends: the
        /// server has one payment per viewer in flight and passes the ID on
        /// to the partner (`paymentId`) to recognise a repeat.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_id: Option<String>,
    },
}

/// A STUN or TURN server, as a browser's `RTCIceServer` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs of one server.
    pub urls: Vec<String>,
    /// A TURN server's short-lived credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        protocol: u32,
        user_id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone_number: Option<String>,
        /// A new session token that replaces the one the hello showed (the
        /// old one keeps working for a while); the app saves it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
        /// The STUN and TURN servers this connection's media may use.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// The partner accepted 架電準備; the caller may start.
    CallPrepared(CallDetails),
    /// The server's media answer to StartCall / Answer / StartVideoTest
    /// (whose `call_token` is `video-test`).
    MediaAnswer {
        call_token: String,
        answer: String,
    },
    /// The callee's devices are ringing.
    Ringing {
        call_token: String,
    },
    Incoming(CallDetails),
    /// Stop ringing here: answered on another device, or the caller gave up.
    IncomingCancelled {
        call_token: String,
    },
    Connected {
        call_token: String,
    },
    /// Once a second while billed: the payer's remaining time.
    Billing {
        call_token: String,
        payer: Party,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_left_sec: Option<u64>,
        used_points: u64,
    },
    CallEnded {
        /// Absent when the call was refused before it had a token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_token: Option<String>,
        reason: TerminateReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        overview: Option<CallOverview>,
    },
    /// §7.1 a partner's push message, shown as a system notification.
    Push {
        title: String,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        click_action: Option<String>,
    },
    /// A request could not be carried out; the words are for the user.
    Error {
        message: String,
    },
    /// Something in a live this app broadcasts or watches.
    Live {
        live_token: String,
        notice: LiveNotice,
    },
    /// The site's stamps and gifts, sent with a viewer's `prepared`.
    GiftCatalogue {
        live_token: String,
        items: Vec<GiftItem>,
    },
}

/// The protocol's JSON Schema: both directions' messages and the activation
/// exchange, as `docs/signalling.schema.json` publishes it.
pub fn schema() -> serde_json::Value {
    #[derive(JsonSchema)]
    #[allow(dead_code)] // only its schema is used
    #[schemars(title = "Nexmile signalling, protocol 1")]
    struct Protocol {
        client: ClientMessage,
        server: ServerMessage,
        activate_request: ActivateRequest,
        activate_reply: ActivateReply,
    }
    serde_json::to_value(schemars::schema_for!(Protocol)).expect("schemas serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_schema_is_the_codes() {
        // `NEXMILE_WRITE_SCHEMA=1 cargo test -p nexmile-core` rewrites it after a change.
        // The clone under test, as cargo says at run time (see module_graph.rs).
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(
                || env!("CARGO_MANIFEST_DIR").into(),
                std::path::PathBuf::from,
            )
            .join("../docs/signalling.schema.json");
        let generated = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
        if std::env::var_os("NEXMILE_WRITE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            published == generated,
            "docs/signalling.schema.json is stale: run NEXMILE_WRITE_SCHEMA=1 cargo test -p nexmile-core"
        );
        let schema = schema();
        let definitions = schema["$defs"].as_object().unwrap();
        for name in [
            "ClientMessage",
            "ServerMessage",
            "CallOverview",
            "TerminateReason",
            "DeviceToken",
        ] {
            assert!(definitions.contains_key(name), "{name}");
        }
    }

    #[test]
    fn messages_are_tagged_json_and_round_trip() {
        let hello = ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            session_token: "s".into(),
            device: DeviceInfo {
                device_token: "106f7a7d-e11c-ef05-2e8c-54b459aa202e".parse().unwrap(),
                app_version: "01.00.00".into(),
                os_type: OsType::Browser,
                device_name: "cli".into(),
                os_version: "Debian 12".into(),
            },
        };
        let json = serde_json::to_string(&hello).unwrap();
        assert!(
            json.starts_with(r#"{"type":"hello","protocol":1"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ClientMessage>(&json).unwrap(), hello);
        let ended = ServerMessage::CallEnded {
            call_token: Some("ct".into()),
            reason: TerminateReason::RingTimeout,
            message: None,
            overview: None,
        };
        let json = serde_json::to_string(&ended).unwrap();
        assert_eq!(
            json,
            r#"{"type":"call_ended","call_token":"ct","reason":-6}"#
        );
        let refused: ActivateReply =
            serde_json::from_str(r#"{"result":"refused","message":"会員登録が必要です"}"#).unwrap();
        assert!(matches!(refused, ActivateReply::Refused { .. }));
    }

    #[test]
    fn an_activation_request_prints_no_password() {
        let r = ActivateRequest {
            site: "newsite1".into(),
            device: DeviceInfo {
                device_token: "106f7a7d-e11c-ef05-2e8c-54b459aa202e".parse().unwrap(),
                app_version: "01.00.00".into(),
                os_type: OsType::Browser,
                device_name: "cli".into(),
                os_version: "x".into(),
            },
            unique_id: None,
            user_id: Some("hanako".into()),
            user_pw: Some(Secret::new("hanako-pw")),
            device_secret: Some(Secret::new("d3v1c3-s3cr3t")),
        };
        assert!(!format!("{r:?}").contains("hanako-pw"));
        assert!(!format!("{r:?}").contains("d3v1c3-s3cr3t"));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""user_pw":"hanako-pw""#));
        assert_eq!(serde_json::from_str::<ActivateRequest>(&json).unwrap(), r);
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;

    #[test]
    fn live_notices_are_flat_tagged_json_and_round_trip() {
        let details = LiveDetails {
            live_token: "l".into(),
            link_id: "room".into(),
            role: LiveRole::Viewer,
            liver_user_id: "airi".into(),
            liver_name: "あいり".into(),
            title: None,
            audio_only: false,
            paid: true,
            next_comment_ms: 500,
            next_gift_ms: 0,
            messages: Vec::new(),
            settings: serde_json::json!({"linkId": "room"}),
            appearance: LiveAppearance {
                frames: vec![FrameStyle {
                    design: 53,
                    fore: Some("rgba(255, 0, 0, 1.000)".into()),
                    back: None,
                    border: None,
                    border_width: Some(1.5),
                    border_radius: None,
                    font_size: Some(18.0),
                    padding_vertical: None,
                    padding_horizontal: None,
                }],
                wordings: vec![WordingStyle {
                    wording: 21,
                    segments: vec![
                        WordingPiece::Placeholder {
                            name: "Tran.UserName".into(),
                            color: None,
                            font_size: None,
                        },
                        WordingPiece::Text {
                            text: "さん来場".into(),
                        },
                    ],
                }],
                comment_image_px: 24,
                comment_width_percent: 90,
                comment_height_percent: 30,
                profile_images: true,
            },
            candidate_mode: Some(crate::wire::codes::CandidateMode::Ipv6Only),
        };
        for notice in [
            LiveNotice::Prepared(Box::new(details)),
            LiveNotice::OnAir,
            LiveNotice::Refused {
                message: "m".into(),
            },
        ] {
            let message = ServerMessage::Live {
                live_token: "l".into(),
                notice,
            };
            let json = serde_json::to_string(&message).unwrap();
            assert!(
                json.starts_with(r#"{"type":"live","live_token":"l","notice":{"kind":"#),
                "{json}"
            );
            assert_eq!(
                serde_json::from_str::<ServerMessage>(&json).unwrap(),
                message
            );
        }
    }
}
