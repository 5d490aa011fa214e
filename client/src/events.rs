//! What the engine tells whoever runs it (the window, or `nexmile-cli`'s
//! printed lines): one typed event per step. Each serialises as one JSON
//! object whose `event` names it; `docs/engine-events.schema.json` publishes
//! their schema, from which the UI's TypeScript types are generated.
//! The reports the events carry are declared here too.

use nexmile_core::party::Party;
use nexmile_core::signal::{CallDetails, GiftItem, LiveNotice, LiveRole};
use nexmile_core::wire::call::CallOverview;
use nexmile_core::wire::codes::TerminateReason;
use nexmile_effects::chain::EffectSettings;
use nexmile_media::quality::QualityReport;
use nexmile_media::sound_out::SpeakerInUse;
use schemars::JsonSchema;
use serde::Serialize;

/// One step of what the engine does.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "event")]
pub enum EngineEvent {
    /// A site's registration went through; its profile is saved.
    #[serde(rename = "activated", rename_all = "camelCase")]
    Activated {
        site: String,
        user_id: String,
        name: String,
        enable_download_effect: bool,
        phone_number: Option<String>,
    },
    /// Something broke; the words are for the user.
    #[serde(rename = "error")]
    Error { message: String },
    /// The server or the partner said no; the words are for the user.
    #[serde(rename = "refused")]
    Refused { message: String },
    /// The server renewed the session token but it could not be kept.
    #[serde(rename = "session.not_saved")]
    SessionNotSaved { message: String },
    /// Connected to the server as the site's user: calls can reach this device.
    #[serde(rename = "online", rename_all = "camelCase")]
    Online {
        site: String,
        user_id: String,
        name: String,
        phone_number: Option<String>,
    },
    /// The connection is lost; it is tried again after this pause.
    #[serde(rename = "offline", rename_all = "camelCase")]
    Offline { retry_in_sec: u64 },

    /// The effects a test, call or live applies, and those the call's
    /// options refuse (in Japanese); or why the saved choice cannot be read.
    #[serde(rename = "effects")]
    Effects {
        #[serde(skip_serializing_if = "Option::is_none")]
        settings: Option<EffectSettings>,
        refused: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The effect files' download, after each tenth of the whole.
    #[serde(rename = "effects.progress")]
    EffectsProgress {
        file: String,
        received: u64,
        total: u64,
    },
    /// The effect files' download is over.
    #[serde(rename = "effects.synced")]
    EffectsSynced(SyncReport),

    /// The camera, microphone and speaker in use: at the start and on every change.
    #[serde(rename = "devices")]
    Devices {
        #[serde(flatten)]
        sources: SourcesInUse,
        speaker: SpeakerInUse,
    },
    /// The microphone's level after processing, a few times a second (the meter).
    #[serde(rename = "microphoneLevel")]
    MicrophoneLevel { dbfs: f64 },
    /// One second of the media connection.
    #[serde(rename = "quality")]
    Quality(QualityReport),

    /// The video test's media runs.
    #[serde(rename = "video_test.started")]
    VideoTestStarted,
    /// The video test ended: what came back.
    #[serde(rename = "video_test.result")]
    VideoTestResult { media: MediaSummary },

    /// The partner accepted the call; it starts.
    #[serde(rename = "call.prepared")]
    CallPrepared(CallDetails),
    /// A call rings on this device.
    #[serde(rename = "call.incoming")]
    CallIncoming(CallDetails),
    /// The caller gave up before this device answered.
    #[serde(rename = "call.cancelled", rename_all = "camelCase")]
    CallCancelled { call_token: String },
    /// The callee's device rings.
    #[serde(rename = "call.ringing", rename_all = "camelCase")]
    CallRinging { call_token: String },
    /// Both sides talk; billing runs.
    #[serde(rename = "call.connected", rename_all = "camelCase")]
    CallConnected { call_token: String },
    /// The media path went silent (a cut, a hand-over): the call or live
    /// goes on, and its screen says it is reconnecting.
    #[serde(rename = "media.interrupted")]
    MediaInterrupted,
    /// The media path is back after an interruption.
    #[serde(rename = "media.restored")]
    MediaRestored,
    /// Once a second while billed: the payer's remaining time.
    #[serde(rename = "billing", rename_all = "camelCase")]
    Billing {
        payer: Party,
        time_left_sec: Option<u64>,
        used_points: u64,
    },
    /// §7.1: a partner's push message.
    #[serde(rename = "push", rename_all = "camelCase")]
    Push {
        title: String,
        body: String,
        image_url: Option<String>,
        click_action: Option<String>,
    },
    /// The call is over, with what its media did on this side.
    #[serde(rename = "call.ended", rename_all = "camelCase")]
    CallEnded {
        call_token: Option<String>,
        reason: TerminateReason,
        message: Option<String>,
        overview: Option<CallOverview>,
        media: Option<MediaSummary>,
    },
    /// The link's page to go back to on the partner's site.
    #[serde(rename = "return_url")]
    ReturnUrl { url: String },

    /// The live's notices as the server sent them (each carries its `kind`).
    #[serde(rename = "live.prepared")]
    LivePrepared(LiveNotice),
    #[serde(rename = "live.on_air", rename_all = "camelCase")]
    LiveOnAir { live_token: String },
    #[serde(rename = "live.ended")]
    LiveEnded(LiveNotice),
    #[serde(rename = "live.comment")]
    LiveComment(LiveNotice),
    #[serde(rename = "live.joined")]
    LiveJoined(LiveNotice),
    #[serde(rename = "live.item")]
    LiveItem(LiveNotice),
    #[serde(rename = "live.viewers")]
    LiveViewers(LiveNotice),
    #[serde(rename = "live.billing")]
    LiveBilling(LiveNotice),
    #[serde(rename = "live.refused")]
    LiveRefused(LiveNotice),
    #[serde(rename = "live.paid")]
    LivePaid(LiveNotice),
    #[serde(rename = "live.admin_message")]
    LiveAdminMessage(LiveNotice),
    #[serde(rename = "live.viewer_updated")]
    LiveViewerUpdated(LiveNotice),
    #[serde(rename = "live.payment")]
    LivePayment(LiveNotice),
    /// The site's stamps and gifts for this live.
    #[serde(rename = "live.gifts")]
    LiveGifts { items: Vec<GiftItem> },
    /// A viewer's first picture (radio: sound) was decoded.
    #[serde(rename = "live.media_received", rename_all = "camelCase")]
    LiveMediaReceived { live_token: String },
    /// The live is over for this device: what its media did.
    #[serde(rename = "live.media")]
    LiveMedia { role: LiveRole, media: MediaSummary },
    /// §5.4.1: a gift's animation drawn into the broadcaster's picture, or why not.
    #[serde(rename = "live.gift_on_video")]
    LiveGiftOnVideo {
        file: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },

    /// An app link that cannot be read (the command line's).
    #[serde(rename = "invalid_link")]
    InvalidLink {
        code: String,
        parameter: Option<String>,
        message: String,
    },
    /// The window's: an app link that cannot be read.
    #[serde(rename = "link.invalid")]
    LinkInvalid {
        link: String,
        code: String,
        parameter: Option<String>,
        message: String,
    },
    /// The window's: a link came while another runs.
    #[serde(rename = "link.busy")]
    LinkBusy { function: String },
    /// The window's: a link from outside is asked about before it runs.
    #[serde(rename = "link.confirm")]
    LinkConfirm {
        function: String,
        site: String,
        callee: Option<String>,
        video: bool,
    },
    /// The window's: the person said no to a link.
    #[serde(rename = "link.declined")]
    LinkDeclined { function: String, site: String },
    /// The window's: a link starts.
    #[serde(rename = "link.opened", rename_all = "camelCase")]
    LinkOpened {
        function: String,
        site: String,
        download: bool,
        return_url: Option<String>,
    },
    /// The window's: a link ran to its end.
    #[serde(rename = "link.done")]
    LinkDone { function: String, outcome: Outcome },
    /// The window's: a system notification was clicked.
    #[serde(rename = "notification.opened")]
    NotificationOpened { kind: NotificationKind },
}

/// Which notification was clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Call,
    Push,
}

impl EngineEvent {
    /// The event of one of the notices of the live `live_token`.
    pub fn live(live_token: String, notice: LiveNotice) -> Self {
        match notice {
            LiveNotice::Prepared(_) => Self::LivePrepared(notice),
            LiveNotice::OnAir => Self::LiveOnAir { live_token },
            LiveNotice::Ended { .. } => Self::LiveEnded(notice),
            LiveNotice::Comment { .. } => Self::LiveComment(notice),
            LiveNotice::Joined { .. } => Self::LiveJoined(notice),
            LiveNotice::Item { .. } => Self::LiveItem(notice),
            LiveNotice::Viewers { .. } => Self::LiveViewers(notice),
            LiveNotice::Billing { .. } => Self::LiveBilling(notice),
            LiveNotice::Refused { .. } => Self::LiveRefused(notice),
            LiveNotice::PaidSwitched { .. } => Self::LivePaid(notice),
            LiveNotice::AdminMessage { .. } => Self::LiveAdminMessage(notice),
            LiveNotice::ViewerUpdated { .. } => Self::LiveViewerUpdated(notice),
            LiveNotice::PaymentDone { .. } => Self::LivePayment(notice),
        }
    }
}

// What the events carry. They live here, beside the events, so that this
// module depends on no other of the engine's (each of those tells events).

/// How an app link, a listen, a live or a feed reading ended. The CLI maps
/// it to its exit status; the window to what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It ran to its end.
    Done,
    /// The server or the partner said no (a `refused` event told why).
    Refused,
    /// It could not run to its end: unreachable, broken, cut off.
    Failed,
}

/// What a call's media did, reported at its end.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct MediaSummary {
    pub frames_sent: u64,
    pub frames_decoded: u64,
    pub audio_packets_received: u64,
    pub video_packets_received: u64,
    /// Capture-to-display delay of the received pictures (their stamps), median.
    pub latency_ms_median: Option<f64>,
    pub latency_ms_p95: Option<f64>,
    /// Time the effect chain took per outgoing picture, median (none: no chain).
    pub effects_ms_median: Option<f64>,
    /// Effect passes that failed on a picture (the picture went on unchanged).
    pub effect_errors: u64,
    /// Received sound: intervals played from packets, rebuilt from FEC,
    /// concealed, and the playout buffer's runs dry.
    pub audio_decoded: u64,
    pub audio_fec_recovered: u64,
    pub audio_concealed: u64,
    pub audio_underruns: u64,
    /// The jitter buffer's target depth at the end.
    pub jitter_target_ms: f64,
    /// Times the speaker found nothing queued or underran (each a click or gap).
    pub speaker_starved: u64,
    /// Arrival to the speaker (jitter buffer and device queue), median.
    pub audio_delay_ms_median: Option<f64>,
    /// When pictures were shown against their sound, median (+ later).
    pub av_offset_ms_median: Option<f64>,
    /// Gaps between decoded pictures over three median gaps, and their
    /// total length.
    pub freezes: u64,
    pub frozen_ms: f64,
    /// Numbered pictures (the synthetic camera's) that never arrived.
    pub pictures_missing: u64,
}

/// One source in use, as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceInUse {
    /// Empty when no device is in use.
    pub name: String,
    pub synthetic: bool,
    /// Why the chosen device is not the one in use, or why none is: the
    /// system's words, and [`CaptureError::code`] for the window's.
    pub reason: Option<String>,
    pub problem: Option<&'static str>,
}

/// What the session's capture is using now; sent at the start and on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SourcesInUse {
    pub camera: SourceInUse,
    pub microphone: SourceInUse,
}

/// What a sync of the site's effect files did.
#[derive(Debug, Default, Clone, Serialize, JsonSchema)]
pub struct SyncReport {
    pub version: String,
    pub downloaded: Vec<String>,
    pub kept: usize,
    pub removed: Vec<String>,
    /// Bytes a resumed download did not have to fetch again.
    pub resumed_bytes: u64,
    pub bytes_fetched: u64,
    /// Files whose first download was bad and that were fetched again.
    pub refetched: Vec<String>,
    /// Files that stayed bad or could not be fetched, with why.
    pub failed: Vec<(String, String)>,
}

/// The events' JSON Schema, as `docs/engine-events.schema.json` publishes it.
/// The events are only ever written, so the schema says what is written: a
/// field that is `null` when empty is always there.
pub fn schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::default()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<EngineEvent>();
    serde_json::to_value(schema).expect("schemas serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_schema_is_the_events() {
        // `NEXMILE_WRITE_SCHEMA=1 cargo test --workspace --lib` rewrites it
        // after a change; then `cd ui && npm run types` regenerates the UI's types.
        // The clone under test, as cargo says at run time (see module_graph.rs).
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(
                || env!("CARGO_MANIFEST_DIR").into(),
                std::path::PathBuf::from,
            )
            .join("../docs/engine-events.schema.json");
        let generated = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
        if std::env::var_os("NEXMILE_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            published == generated,
            "docs/engine-events.schema.json is stale: run NEXMILE_WRITE_SCHEMA=1 cargo test --workspace --lib"
        );
    }

    #[test]
    fn events_are_flat_objects_named_by_their_event_field() {
        let billing = EngineEvent::Billing {
            payer: Party::Caller,
            time_left_sec: None,
            used_points: 12,
        };
        assert_eq!(
            serde_json::to_value(&billing).unwrap(),
            serde_json::json!({"event": "billing", "payer": "caller", "timeLeftSec": null, "usedPoints": 12})
        );
        // A live's notice keeps its own `kind` beside the event's name.
        let comment = EngineEvent::live(
            "lt".into(),
            LiveNotice::AdminMessage {
                text: "こんにちは".into(),
            },
        );
        assert_eq!(
            serde_json::to_value(&comment).unwrap(),
            serde_json::json!({"event": "live.admin_message", "kind": "admin_message", "text": "こんにちは"})
        );
        let on_air = EngineEvent::live("lt".into(), LiveNotice::OnAir);
        assert_eq!(
            serde_json::to_value(&on_air).unwrap(),
            serde_json::json!({"event": "live.on_air", "liveToken": "lt"})
        );
        assert_eq!(
            serde_json::to_string(&EngineEvent::VideoTestStarted).unwrap(),
            r#"{"event":"video_test.started"}"#
        );
    }
}
