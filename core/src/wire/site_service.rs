//! §3.3.2–3.3.3, §4.3.1 ②, §5.3.1 ②, §5.3.9 ②: the classes a partner returns
//! in `service=` — siteService with user, serviceCharge, callService, liveService.
//!
//! Partners write these, so every field is read liberally (numbers as strings,
//! IDs as numbers, `True`/`1` booleans); ranges are checked by [`SiteService::check`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::codes::{
    CallOption, CandidateMode, RankingMode, RequiredReply, ServiceChargeType, ServiceOptions,
};
use super::customization::{
    LiveSpecialFrame, LiveSpecialGift, LiveSpecialMessage, LiveSpecialUrl, QuickPayment,
    SpecialWording,
};
use crate::lenient;

/// §3.3.2 siteService: the root of a partner's reply.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_charge: Option<ServiceCharge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_service: Option<CallService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_service: Option<LiveService>,
}

/// userAttrs: Key/Value pairs such as age and gender, shown beside the user.
pub type UserAttrs = BTreeMap<String, serde_json::Value>;

/// §3.3.3 ① user.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(deserialize_with = "lenient::text")]
    pub user_id: String,
    #[serde(deserialize_with = "lenient::text")]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub profile_image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_attrs: Option<UserAttrs>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_sub_id: Option<String>,
    /// 0–9, 9 highest; limits which gifts the user may send.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_rank: Option<u8>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_rank_image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_mode: Option<CandidateMode>,
}

/// §3.3.3 ② serviceCharge: the tariff the ledger bills by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCharge {
    #[serde(rename = "serviceChargeTp")]
    pub service_charge_type: ServiceChargeType,
    /// Seconds per billing unit: 0 (free) or 15–180.
    #[serde(deserialize_with = "lenient::int")]
    pub unit_sec: u32,
    /// Price per unit: 0 (free) or 1–9999.
    #[serde(deserialize_with = "lenient::int")]
    pub unit_price: u32,
    /// Price of one point: 0 (free) or 1–9999.
    #[serde(deserialize_with = "lenient::int")]
    pub point_price: u32,
    /// The user's points: 0–9,999,999.
    #[serde(deserialize_with = "lenient::int")]
    pub current_point: u32,
    /// Seconds before charging starts (paid lives; 0 for calls): 0–9,999,999.
    #[serde(deserialize_with = "lenient::int")]
    pub free_trial_sec: u32,
    /// When the user's points fall below this, GET autoChargeTriggerUrl.
    #[serde(deserialize_with = "lenient::int")]
    pub auto_charge_trigger_point: u32,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_charge_trigger_url: Option<String>,
}

impl ServiceCharge {
    /// unitSec, unitPrice or pointPrice of 0 means the service is free (decision 9).
    pub fn is_free(&self) -> bool {
        self.unit_sec == 0 || self.unit_price == 0 || self.point_price == 0
    }
}

/// §4.3.1 ② callService.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallService {
    #[serde(deserialize_with = "lenient::text")]
    pub call_token: String,
    pub caller_option: CallOption,
    /// The user every device of whom rings (decision 14).
    #[serde(deserialize_with = "lenient::text")]
    pub callee_user_id: String,
    #[serde(deserialize_with = "lenient::text")]
    pub callee_user_nm: String,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub callee_profile_image_url: Option<String>,
    pub callee_option: CallOption,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub callee_return_url: Option<String>,
    /// The callee's sub ID (spelt callUserSubId in the spec).
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub call_user_sub_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee_candidate_mode: Option<CandidateMode>,
    /// Put between the site name and the caller's name on the callee's screen.
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub caller_id_prefix: Option<String>,
    #[serde(deserialize_with = "lenient::bool")]
    pub video_call: bool,
    /// Ringing time before the call gives up: 10–180 s.
    #[serde(deserialize_with = "lenient::int")]
    pub calling_timeout: u32,
    /// The callee, not the caller, is billed.
    #[serde(deserialize_with = "lenient::bool")]
    pub paid_callee: bool,
}

/// §5.3.1 ② / §5.3.9 ② liveService (linkLiveService).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveService {
    #[serde(deserialize_with = "lenient::text")]
    pub link_id: String,
    /// The live's genre, spelt `janle` on the wire.
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub janle: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// Points the broadcaster earns per paid comment (viewer replies).
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub liver_comment_point: Option<u32>,
    /// Comments of at least this many characters are paid (viewer replies).
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment_charge_len: Option<u32>,
    /// Points a paid comment costs the viewer (viewer replies).
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment_charge_point: Option<u32>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment_guide: Option<String>,
    /// 20–32, default 24.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment_image_size: Option<u32>,
    /// 30–99 % of the screen width, default 90.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment_scale_width: Option<u32>,
    /// 30–80 % of the screen height, default 30.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment_scale_height: Option<u32>,
    /// Composite gift APNGs into the broadcaster's camera picture (§5.4.1).
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub apng_on_video_processor: Option<bool>,
    /// A radio live: sound only.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub audio_only: Option<bool>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub favorite: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranking_mode: Option<RankingMode>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub viewer_poke_category_no: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub viewer_poke_gift_no: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_side_recording: Option<bool>,
    /// Milliseconds the comment button stays disabled: 100–2000, default 0.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_available_comment_time: Option<u32>,
    /// Milliseconds the gift button stays disabled: 100–2000, default 0.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_available_gift_time: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub special_urls: Vec<LiveSpecialUrl>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub special_gifts: Vec<LiveSpecialGift>,
    #[serde(
        default,
        deserialize_with = "lenient::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub special_frames: Vec<LiveSpecialFrame>,
    #[serde(
        default,
        deserialize_with = "lenient::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub special_wordings: Vec<SpecialWording>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub special_messages: Vec<LiveSpecialMessage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_payments: Vec<QuickPayment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_options: Option<ServiceOptions>,
}

/// A value outside its documented range.
fn in_range(value: u32, range: std::ops::RangeInclusive<u32>) -> bool {
    range.contains(&value)
}

/// Out-of-range display settings fall back to the documented default rather
/// than refusing the live: a wrong comment size must not stop a broadcast.
fn or_default(value: Option<u32>, range: std::ops::RangeInclusive<u32>, default: u32) -> u32 {
    value.filter(|v| range.contains(v)).unwrap_or(default)
}

impl LiveService {
    pub fn comment_image_size(&self) -> u32 {
        or_default(self.comment_image_size, 20..=32, 24)
    }
    pub fn comment_scale_width(&self) -> u32 {
        or_default(self.comment_scale_width, 30..=99, 90)
    }
    pub fn comment_scale_height(&self) -> u32 {
        or_default(self.comment_scale_height, 30..=80, 30)
    }
    pub fn next_available_comment_ms(&self) -> u32 {
        or_default(self.next_available_comment_time, 100..=2000, 0)
    }
    pub fn next_available_gift_ms(&self) -> u32 {
        or_default(self.next_available_gift_time, 100..=2000, 0)
    }
}

/// Why a `result=0` reply cannot be used: a required class or field is
/// missing, or a value that billing depends on is out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceReplyError {
    #[error("the reply has no {0}")]
    Missing(&'static str),
    #[error("{field} is out of range ({expected})")]
    OutOfRange {
        field: &'static str,
        expected: &'static str,
    },
}

impl SiteService {
    /// The siteService of an accepted reply (`result=0&service=…`) with the
    /// classes a request needs checked; anything else is the failure to tell.
    pub fn from_reply(
        body: &str,
        required: RequiredReply,
    ) -> Result<Self, crate::codec::PartnerFailure> {
        use crate::codec::{PartnerFailure, PartnerReply};
        let unusable = |detail: String| PartnerFailure::Unparseable { detail };
        let service: Self = PartnerReply::parse_accepted(body)?
            .json_field("service")?
            .ok_or_else(|| unusable("the reply has no service".into()))?;
        service
            .check(required)
            .map_err(|e| unusable(e.to_string()))?;
        Ok(service)
    }

    /// Checks the classes `required` asks for and the ranges the server acts on.
    pub fn check(&self, required: RequiredReply) -> Result<(), ServiceReplyError> {
        use ServiceReplyError::{Missing, OutOfRange};
        if required.user && self.user.is_none() {
            return Err(Missing("user"));
        }
        if required.service_charge && self.service_charge.is_none() {
            return Err(Missing("serviceCharge"));
        }
        if required.call_service && self.call_service.is_none() {
            return Err(Missing("callService"));
        }
        if required.live_service && self.live_service.is_none() {
            return Err(Missing("liveService"));
        }
        if let Some(user) = &self.user
            && user.user_rank.is_some_and(|r| r > 9)
        {
            return Err(OutOfRange {
                field: "userRank",
                expected: "0 to 9",
            });
        }
        if let Some(c) = &self.service_charge {
            let checks: [(&'static str, bool, &'static str); 5] = [
                (
                    "unitSec",
                    c.unit_sec == 0 || in_range(c.unit_sec, 15..=180),
                    "0 or 15 to 180",
                ),
                ("unitPrice", in_range(c.unit_price, 0..=9999), "0 to 9999"),
                ("pointPrice", in_range(c.point_price, 0..=9999), "0 to 9999"),
                (
                    "currentPoint",
                    in_range(c.current_point, 0..=9_999_999),
                    "0 to 9999999",
                ),
                (
                    "freeTrialSec",
                    in_range(c.free_trial_sec, 0..=9_999_999),
                    "0 to 9999999",
                ),
            ];
            if let Some((field, _, expected)) = checks.into_iter().find(|(_, ok, _)| !ok) {
                return Err(OutOfRange { field, expected });
            }
        }
        if let Some(call) = &self.call_service
            && !in_range(call.calling_timeout, 10..=180)
        {
            return Err(OutOfRange {
                field: "callingTimeout",
                expected: "10 to 180",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREPARE_REPLY: &str = r#"{
        "user": {"userId": 12345678, "name": "山田 花子", "userRank": "3",
                 "userAttrs": {"age": 24, "gender": "女性"}, "candidateMode": 1},
        "serviceCharge": {"serviceChargeTp": 1, "unitSec": 60, "unitPrice": 100,
                 "pointPrice": 10, "currentPoint": "500", "freeTrialSec": 0,
                 "autoChargeTriggerPoint": 50},
        "callService": {"callToken": "c-1", "callerOption": 7, "calleeUserId": "u2",
                 "calleeUserNm": "受付", "calleeOption": 0, "callerIdPrefix": "・",
                 "videoCall": "True", "callingTimeout": 30, "paidCallee": false,
                 "callUserSubId": "sub"}
    }"#;

    #[test]
    fn reads_a_call_prepare_reply_written_loosely() {
        let s: SiteService = serde_json::from_str(PREPARE_REPLY).unwrap();
        s.check(
            super::super::codes::CallServiceType::Prepare
                .handling()
                .required_reply,
        )
        .unwrap();
        let user = s.user.as_ref().unwrap();
        assert_eq!(user.user_id, "12345678");
        assert_eq!(user.user_rank, Some(3));
        assert_eq!(user.candidate_mode, Some(CandidateMode::Ipv4Only));
        assert_eq!(user.user_attrs.as_ref().unwrap()["gender"], "女性");
        let charge = s.service_charge.as_ref().unwrap();
        assert_eq!(charge.current_point, 500);
        assert!(!charge.is_free());
        let call = s.call_service.as_ref().unwrap();
        assert!(call.video_call);
        assert!(call.caller_option.contains(CallOption::MOSAIC));
        assert_eq!(call.call_user_sub_id.as_deref(), Some("sub"));
        // What we write reads back the same.
        let again: SiteService = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn check_names_missing_classes_and_bad_ranges() {
        let s: SiteService = serde_json::from_str(PREPARE_REPLY).unwrap();
        let live = super::super::codes::LiveServiceType::ViewPrepare
            .handling()
            .required_reply;
        assert_eq!(
            s.check(live),
            Err(ServiceReplyError::Missing("liveService"))
        );
        let mut bad = s.clone();
        bad.service_charge.as_mut().unwrap().unit_sec = 10;
        assert_eq!(
            bad.check(RequiredReply::default()),
            Err(ServiceReplyError::OutOfRange {
                field: "unitSec",
                expected: "0 or 15 to 180"
            })
        );
        let mut bad = s.clone();
        bad.call_service.as_mut().unwrap().calling_timeout = 5;
        assert!(bad.check(RequiredReply::default()).is_err());
        let mut free = s;
        free.service_charge.as_mut().unwrap().unit_sec = 0;
        assert!(free.check(RequiredReply::default()).is_ok());
        assert!(free.service_charge.unwrap().is_free());
    }

    #[test]
    fn live_service_keeps_janle_and_defaults_display_ranges() {
        let l: LiveService = serde_json::from_str(
            r#"{"linkId":"L1","janle":"music","commentImageSize":50,"commentScaleWidth":"80",
                "quickPayments":[{"pointText":"100pt","paymentAmount":"1000"}],
                "specialUrls":[{"url":"https://p.example/banner.png"}],
                "serviceOptions":5}"#,
        )
        .unwrap();
        assert_eq!(l.janle.as_deref(), Some("music"));
        assert_eq!(l.comment_image_size(), 24, "50 is out of 20–32");
        assert_eq!(l.comment_scale_width(), 80);
        assert_eq!(l.comment_scale_height(), 30);
        assert_eq!(l.next_available_comment_ms(), 0);
        assert_eq!(l.quick_payments[0].payment_amount, 1000);
        assert_eq!(l.special_urls[0].image_url, "https://p.example/banner.png");
        let json = serde_json::to_string(&l).unwrap();
        assert!(json.contains(r#""janle":"music""#));
        assert!(json.contains(r#""serviceOptions":5"#));
    }
}
