//! Chapter 5: the live service requests, one type per request code, each with
//! exactly the properties of its detail table (decision 7).
//!
//! On the wire every request is one flat JSON object:
//! `{"siteToken":…,"liveServiceTp":31,"liveToken":…,"linkId":…,…}`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_segmentation::UnicodeSegmentation;

use super::codes::LiveServiceType;
use crate::datetime::WireDateTime;

/// The live and the user a request is about: liveToken, linkId, userId.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRef {
    /// The server's ID of the live.
    pub live_token: String,
    /// The partner's ID of the live, from the link.
    pub link_id: String,
    /// The partner's user acting (or acted upon, for 15 and 94).
    pub user_id: String,
}

/// The broadcaster, named in most requests: liverUserId, liverUserSubId.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Liver {
    pub liver_user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liver_user_sub_id: Option<String>,
}

/// 11 配信準備 (§5.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastPrepare {
    #[serde(flatten)]
    pub live: LiveRef,
    pub app_ver: String,
    pub device_name: String,
    pub os_ver: String,
    pub start_time: WireDateTime,
}

/// 12 配信開始 (§5.3.2) and 15 配信者による視聴者強制退出 (§5.3.5, where
/// `userId` is the viewer removed): the live, the broadcaster, the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiverEvent {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
}

/// 13 配信終了 (§5.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastEnd {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
    /// When the live became paid; absent for a free live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_start_time: Option<WireDateTime>,
    pub end_time: WireDateTime,
    pub live_sec: u64,
}

/// 14 有料配信切り替え (§5.3.4): the broadcaster asks to make the live paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaidBroadcastSwitch {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    /// The price the broadcaster asks for.
    pub unit_price: u32,
    /// The broadcaster's reward unit, from the prepare reply.
    pub unit_sec: u32,
}

/// 29 配信中止 (§5.3.6): the broadcaster leaves before starting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastAbort {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    /// When the live was prepared.
    pub start_time: WireDateTime,
    pub end_time: WireDateTime,
}

/// 96 管理者による配信者強制退出 (§5.3.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminRemovesBroadcaster {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
    pub end_time: WireDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// 97 管理者によるメッセージ送信 (§5.3.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminMessage {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
    pub comment: String,
}

/// 31 視聴準備 (§5.3.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewPrepare {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub app_ver: String,
    pub device_name: String,
    pub os_ver: String,
    pub start_time: WireDateTime,
}

/// 32 視聴開始 (§5.3.10): sent once video (or, for radio, sound) really arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewStart {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub app_ver: String,
    pub os_ver: String,
    pub start_time: WireDateTime,
    /// For a paid live: start + freeTrialSec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_start_time: Option<WireDateTime>,
}

/// 33 視聴終了 (§5.3.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewEnd {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_start_time: Option<WireDateTime>,
    pub end_time: WireDateTime,
    /// Points used for viewing (gifts and comments not included).
    pub point: u64,
    /// endTime − startTime.
    pub live_sec: u64,
    /// endTime − chargeStartTime; 0 for a free live.
    pub charge_sec: u64,
}

/// 5 スタンプ送信 / 6 ギフト送信 (§5.3.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemSend {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
    pub item_category: String,
    pub item_no: String,
    /// Points the viewer spends.
    pub point: u32,
    /// Points the broadcaster earns.
    pub liver_gift_point: u32,
}

/// 7 コメント書込み (§5.3.13; decision 6). Build it with [`CommentPost::new`]
/// so `commentLen` is counted in characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentPost {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
    pub comment: String,
    pub comment_len: u32,
    /// 0 for the broadcaster; the comment price for a viewer.
    pub point: u32,
}

/// The length of a comment as a reader counts it: user-perceived characters
/// (grapheme clusters), not bytes or UTF-16 units (§5.3.13 "バイト数ではない").
/// `が` written as か + combining mark, or a family emoji, counts once.
pub fn comment_length(comment: &str) -> u32 {
    u32::try_from(comment.graphemes(true).count()).unwrap_or(u32::MAX)
}

impl CommentPost {
    pub fn new(
        live: LiveRef,
        liver: Liver,
        start_time: WireDateTime,
        comment: String,
        point: u32,
    ) -> Self {
        Self {
            comment_len: comment_length(&comment),
            live,
            liver,
            start_time,
            comment,
            point,
        }
    }
}

/// 34 お気に入り登録 (§5.3.14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Favorite {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
    /// true: added; false: removed.
    pub favorite: bool,
}

/// 35 有料視聴切り替え (§5.3.15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaidViewSwitch {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub start_time: WireDateTime,
    /// The switch time + the switch reply's freeTrialSec.
    pub charge_start_time: WireDateTime,
}

/// 36 視聴者情報更新 (§5.3.17).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerUpdate {
    #[serde(flatten)]
    pub live: LiveRef,
    #[serde(flatten)]
    pub liver: Liver,
    pub app_ver: String,
    pub os_ver: String,
    pub start_time: WireDateTime,
}

/// 94 管理者による視聴者強制退出 (§5.3.18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminRemovesViewer {
    #[serde(flatten)]
    pub live: LiveRef,
    pub start_time: WireDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The type name, the request code and the body type, once for each code.
macro_rules! live_requests {
    ($($variant:ident($body:ty)),* $(,)?) => {
        /// One live service request; its code follows from the variant.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum LiveRequest {
            $($variant($body)),*
        }

        impl LiveRequest {
            pub fn live_service_type(&self) -> LiveServiceType {
                match self {
                    $(Self::$variant(_) => LiveServiceType::$variant),*
                }
            }

            fn serialize_tagged<S: Serializer>(&self, site_token: &str, s: S) -> Result<S::Ok, S::Error> {
                let live_service_type = self.live_service_type();
                match self {
                    $(Self::$variant(body) => Tagged { site_token, live_service_type, body }.serialize(s)),*
                }
            }

            fn from_json(
                live_service_type: LiveServiceType,
                value: serde_json::Value,
            ) -> Result<Self, serde_json::Error> {
                match live_service_type {
                    $(LiveServiceType::$variant => serde_json::from_value(value).map(Self::$variant)),*
                }
            }
        }
    };
}

live_requests! {
    Stamp(ItemSend),
    Gift(ItemSend),
    Comment(CommentPost),
    BroadcastPrepare(BroadcastPrepare),
    BroadcastStart(LiverEvent),
    BroadcastEnd(BroadcastEnd),
    PaidBroadcastSwitch(PaidBroadcastSwitch),
    BroadcasterRemovesViewer(LiverEvent),
    BroadcastAbort(BroadcastAbort),
    ViewPrepare(ViewPrepare),
    ViewStart(ViewStart),
    ViewEnd(ViewEnd),
    Favorite(Favorite),
    PaidViewSwitch(PaidViewSwitch),
    ViewerUpdate(ViewerUpdate),
    AdminRemovesViewer(AdminRemovesViewer),
    AdminRemovesBroadcaster(AdminRemovesBroadcaster),
    AdminMessage(AdminMessage),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tagged<'a, T> {
    site_token: &'a str,
    #[serde(rename = "liveServiceTp")]
    live_service_type: LiveServiceType,
    #[serde(flatten)]
    body: &'a T,
}

/// A live service request with the site it is sent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveServiceRequest {
    pub site_token: String,
    pub request: LiveRequest,
}

impl Serialize for LiveServiceRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.request.serialize_tagged(&self.site_token, s)
    }
}

impl<'de> Deserialize<'de> for LiveServiceRequest {
    /// Reads `liveServiceTp` first, then the body of that type.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Envelope {
            site_token: String,
            #[serde(rename = "liveServiceTp")]
            live_service_type: LiveServiceType,
        }
        let value = serde_json::Value::deserialize(d)?;
        let envelope = Envelope::deserialize(&value).map_err(D::Error::custom)?;
        let request =
            LiveRequest::from_json(envelope.live_service_type, value).map_err(D::Error::custom)?;
        Ok(Self {
            site_token: envelope.site_token,
            request,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> LiveRef {
        LiveRef {
            live_token: "lt-1".into(),
            link_id: "L-9".into(),
            user_id: "viewer-3".into(),
        }
    }

    fn liver() -> Liver {
        Liver {
            liver_user_id: "liver-1".into(),
            liver_user_sub_id: None,
        }
    }

    fn at(s: &str) -> WireDateTime {
        WireDateTime::parse(s).unwrap()
    }

    fn keys(r: &LiveServiceRequest) -> Vec<String> {
        let mut k: Vec<String> = serde_json::to_value(r)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    }

    #[test]
    fn view_end_is_one_flat_object_with_its_table_fields() {
        let r = LiveServiceRequest {
            site_token: "site-token-1".into(),
            request: LiveRequest::ViewEnd(ViewEnd {
                live: live(),
                liver: liver(),
                start_time: at("2024/05/01 20:00:00"),
                charge_start_time: Some(at("2024/05/01 20:01:00")),
                end_time: at("2024/05/01 20:10:00"),
                point: 45,
                live_sec: 600,
                charge_sec: 540,
            }),
        };
        assert_eq!(
            keys(&r),
            [
                "chargeSec",
                "chargeStartTime",
                "endTime",
                "linkId",
                "liveSec",
                "liveServiceTp",
                "liveToken",
                "liverUserId",
                "point",
                "siteToken",
                "startTime",
                "userId"
            ]
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.starts_with(
                r#"{"siteToken":"site-token-1","liveServiceTp":33,"liveToken":"lt-1""#
            ),
            "{json}"
        );
        let back: LiveServiceRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn stamp_and_gift_differ_only_in_the_code() {
        let item = ItemSend {
            live: live(),
            liver: liver(),
            start_time: at("2024/05/01 20:00:00"),
            item_category: "1".into(),
            item_no: "7".into(),
            point: 100,
            liver_gift_point: 50,
        };
        let stamp = LiveServiceRequest {
            site_token: "s".into(),
            request: LiveRequest::Stamp(item.clone()),
        };
        let gift = LiveServiceRequest {
            site_token: "s".into(),
            request: LiveRequest::Gift(item),
        };
        assert_eq!(serde_json::to_value(&stamp).unwrap()["liveServiceTp"], 5);
        assert_eq!(serde_json::to_value(&gift).unwrap()["liveServiceTp"], 6);
        assert_eq!(keys(&stamp), keys(&gift));
        let back: LiveServiceRequest =
            serde_json::from_str(&serde_json::to_string(&gift).unwrap()).unwrap();
        assert_eq!(back.request.live_service_type(), LiveServiceType::Gift);
    }

    #[test]
    fn comment_length_counts_characters_not_bytes() {
        assert_eq!(comment_length("こんにちは"), 5);
        assert_eq!(comment_length("abc"), 3);
        assert_eq!(comment_length("👨‍👩‍👧"), 1, "one family emoji");
        assert_eq!(comment_length("か\u{3099}"), 1, "か + combining dakuten");
        let c = CommentPost::new(
            live(),
            liver(),
            at("2024/05/01 20:00:00"),
            "楽しい！🎉".into(),
            10,
        );
        assert_eq!(c.comment_len, 5);
        let r = LiveServiceRequest {
            site_token: "s".into(),
            request: LiveRequest::Comment(c),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["liveServiceTp"], 7);
        assert_eq!(v["commentLen"], 5);
    }

    #[test]
    fn admin_removes_viewer_has_no_liver_and_unknown_codes_are_refused() {
        let r = LiveServiceRequest {
            site_token: "s".into(),
            request: LiveRequest::AdminRemovesViewer(AdminRemovesViewer {
                live: live(),
                start_time: at("2024/05/01 20:00:00"),
                comment: None,
            }),
        };
        assert_eq!(
            keys(&r),
            [
                "linkId",
                "liveServiceTp",
                "liveToken",
                "siteToken",
                "startTime",
                "userId"
            ]
        );
        assert_eq!(serde_json::to_value(&r).unwrap()["liveServiceTp"], 94);
        let bad = r#"{"siteToken":"s","liveServiceTp":95,"liveToken":"a","linkId":"b","userId":"c","startTime":"2024/05/01 20:00:00"}"#;
        assert!(serde_json::from_str::<LiveServiceRequest>(bad).is_err());
        let missing = r#"{"siteToken":"s","liveServiceTp":97,"liveToken":"a","linkId":"b","userId":"c","liverUserId":"d","startTime":"2024/05/01 20:00:00"}"#;
        assert!(
            serde_json::from_str::<LiveServiceRequest>(missing).is_err(),
            "97 needs comment"
        );
    }
}
