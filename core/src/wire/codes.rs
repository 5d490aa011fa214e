//! The numeric codes and option masks of the partner interface.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_repr::{Deserialize_repr, Serialize_repr};

/// §3.1.2 osType / §6.2 osType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum OsType {
    Android = 1,
    Ios = 2,
    /// The web version, and the desktop apps (which the spec does not know).
    Browser = 3,
}

impl OsType {
    /// Guesses the platform from a browser's User-Agent (§6.2 `osType` from `ua`).
    pub fn from_user_agent(ua: &str) -> Self {
        let ua = ua.to_ascii_lowercase();
        if ua.contains("android") {
            Self::Android
        } else if ua.contains("iphone") || ua.contains("ipad") || ua.contains("ipod") {
            Self::Ios
        } else {
            Self::Browser
        }
    }
}

/// §4.3.1 caller/callee `uaTp`: how the party reaches the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum UaType {
    App = 1,
    PublicLine = 2,
}

/// §3.3.3 ② serviceChargeTp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum ServiceChargeType {
    Call = 1,
    Live = 2,
}

/// §3.3.3 ① candidateMode: which IP family the user's media uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum CandidateMode {
    Ipv4Only = 1,
    Ipv6Only = 2,
    #[default]
    Both = 3,
}

/// §5.3.1 rankingMode: order of the viewer list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum RankingMode {
    #[default]
    PointsSpent = 1,
    PointsSpentThenLatestJoin = 2,
}

/// Which classes a `result=0` reply must carry (the 必須レスポンス columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequiredReply {
    pub user: bool,
    pub service_charge: bool,
    pub call_service: bool,
    pub live_service: bool,
}

/// How the server treats one request code: the columns of §4.1.2 ① / §5.1.2 ①.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHandling {
    /// 応答コード有効: the reply's `result` decides; otherwise only HTTP 200 counts.
    pub reply_decides: bool,
    pub required_reply: RequiredReply,
    /// 再送: retried on the schedule of decision 11 until a 200 arrives.
    pub retried: bool,
}

const VERDICT_ONLY: RequestHandling = RequestHandling {
    reply_decides: true,
    required_reply: RequiredReply {
        user: false,
        service_charge: false,
        call_service: false,
        live_service: false,
    },
    retried: false,
};
const STATUS_ONLY: RequestHandling = RequestHandling {
    reply_decides: false,
    ..VERDICT_ONLY
};
const STATUS_RETRIED: RequestHandling = RequestHandling {
    retried: true,
    ..STATUS_ONLY
};

/// §4.1.2 callServiceTp: the call service requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum CallServiceType {
    /// 1 架電準備 (§4.3.1).
    Prepare = 1,
    /// 3 架電開始 (§4.3.2).
    Start = 3,
    /// 4 呼出開始 (§4.3.3).
    Ringing = 4,
    /// 5 通話接続 (§4.3.4).
    Connected = 5,
    /// 6 通話終了, incomplete calls included (§4.3.5).
    End = 6,
}

impl CallServiceType {
    pub const ALL: [Self; 5] = [
        Self::Prepare,
        Self::Start,
        Self::Ringing,
        Self::Connected,
        Self::End,
    ];

    pub fn handling(self) -> RequestHandling {
        match self {
            Self::Prepare => RequestHandling {
                required_reply: RequiredReply {
                    user: true,
                    service_charge: true,
                    call_service: true,
                    live_service: false,
                },
                ..VERDICT_ONLY
            },
            Self::Start => VERDICT_ONLY,
            Self::Ringing | Self::Connected => STATUS_ONLY,
            Self::End => STATUS_RETRIED,
        }
    }
}

/// §5.1.2 liveServiceTp: the live service requests, with the codes of the
/// detail sections (decision 5: 94, 96, 97; decision 6: 7 is the comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum LiveServiceType {
    /// 5 スタンプ送信 (§5.3.12).
    Stamp = 5,
    /// 6 ギフト送信 (§5.3.12).
    Gift = 6,
    /// 7 コメント書込み (§5.3.13).
    Comment = 7,
    /// 11 配信準備 (§5.3.1).
    BroadcastPrepare = 11,
    /// 12 配信開始 (§5.3.2).
    BroadcastStart = 12,
    /// 13 配信終了 (§5.3.3).
    BroadcastEnd = 13,
    /// 14 有料配信切り替え (§5.3.4).
    PaidBroadcastSwitch = 14,
    /// 15 配信者による視聴者強制退出 (§5.3.5).
    BroadcasterRemovesViewer = 15,
    /// 29 配信中止: the broadcaster leaves before starting (§5.3.6).
    BroadcastAbort = 29,
    /// 31 視聴準備 (§5.3.9).
    ViewPrepare = 31,
    /// 32 視聴開始, once media really arrived (§5.3.10).
    ViewStart = 32,
    /// 33 視聴終了 (§5.3.11).
    ViewEnd = 33,
    /// 34 お気に入り登録 (§5.3.14).
    Favorite = 34,
    /// 35 有料視聴切り替え (§5.3.15).
    PaidViewSwitch = 35,
    /// 36 視聴者情報更新, after UpdateUserBalance (§5.3.17).
    ViewerUpdate = 36,
    /// 94 管理者による視聴者強制退出 (§5.3.18).
    AdminRemovesViewer = 94,
    /// 96 管理者による配信者強制退出 (§5.3.7).
    AdminRemovesBroadcaster = 96,
    /// 97 管理者によるメッセージ送信 (§5.3.8).
    AdminMessage = 97,
}

impl LiveServiceType {
    pub const ALL: [Self; 18] = [
        Self::Stamp,
        Self::Gift,
        Self::Comment,
        Self::BroadcastPrepare,
        Self::BroadcastStart,
        Self::BroadcastEnd,
        Self::PaidBroadcastSwitch,
        Self::BroadcasterRemovesViewer,
        Self::BroadcastAbort,
        Self::ViewPrepare,
        Self::ViewStart,
        Self::ViewEnd,
        Self::Favorite,
        Self::PaidViewSwitch,
        Self::ViewerUpdate,
        Self::AdminRemovesViewer,
        Self::AdminRemovesBroadcaster,
        Self::AdminMessage,
    ];

    pub fn handling(self) -> RequestHandling {
        let full = RequiredReply {
            user: true,
            service_charge: true,
            call_service: false,
            live_service: true,
        };
        match self {
            Self::BroadcastPrepare | Self::ViewPrepare | Self::ViewerUpdate => RequestHandling {
                required_reply: full,
                ..VERDICT_ONLY
            },
            Self::PaidBroadcastSwitch => RequestHandling {
                required_reply: RequiredReply {
                    service_charge: true,
                    ..RequiredReply::default()
                },
                ..VERDICT_ONLY
            },
            Self::BroadcastStart
            | Self::BroadcasterRemovesViewer
            | Self::ViewStart
            | Self::Stamp
            | Self::Gift
            | Self::Comment
            | Self::PaidViewSwitch => VERDICT_ONLY,
            Self::BroadcastEnd | Self::BroadcastAbort | Self::ViewEnd => STATUS_RETRIED,
            Self::AdminRemovesViewer
            | Self::AdminRemovesBroadcaster
            | Self::AdminMessage
            | Self::Favorite => STATUS_ONLY,
        }
    }
}

/// §4.3.5 通話切断理由: why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(i8)]
pub enum TerminateReason {
    /// 1 架電者切断.
    CallerHungUp = 1,
    /// 2 受電者切断.
    CalleeHungUp = 2,
    /// 3 利用可能時間満了: the ledger ran out.
    TimeExhausted = 3,
    /// 4 管理者切断.
    Administrator = 4,
    /// −1 発信中止: the caller gave up before an answer.
    CallerCancelled = -1,
    /// −2 入電通知不達: the ring never reached the callee.
    NotDelivered = -2,
    /// −4 話中: the callee is busy (in another call or live).
    Busy = -4,
    /// −5 拒否: the callee declined.
    Declined = -5,
    /// −6 発信時間満了: callingTimeout passed.
    RingTimeout = -6,
    /// −8 架電開始なし: prepared, but the client never connected.
    NeverStarted = -8,
    /// −9 強制終了: server internal error.
    InternalError = -9,
}

impl TerminateReason {
    /// 通話成立: the call was connected before it ended.
    pub fn was_connected(self) -> bool {
        (self as i8) > 0
    }
}

/// On the wire a mask is its number; unknown bits are kept.
macro_rules! mask_as_number {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u32(self.bits())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::lenient::int::<D, u32>(d).map(Self::from_bits_retain)
            }
        }
    };
}

bitflags::bitflags! {
    /// §4.3.1 callOption (callerOption / calleeOption): what the partner allows.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct CallOption: u32 {
        /// 1 フェースフィルター.
        const FACE_FILTER = 1;
        /// 2 モザイク.
        const MOSAIC = 2;
        /// 4 壁紙.
        const WALLPAPER = 4;
        /// 8 録画・録音許可: screen recording allowed (blocked by default).
        const RECORDING = 8;
        // Bits the spec may add later survive a round trip.
        const _ = !0;
    }
}
mask_as_number!(CallOption);

bitflags::bitflags! {
    /// §5.3.1 serviceOptions.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ServiceOptions: u32 {
        /// 1 プロフィールイメージ表示許可.
        const SHOW_PROFILE_IMAGE = 1;
        /// 2 録画・録音許可.
        const RECORDING = 2;
        /// 4 同一ライブで毎回ログインガイダンスを出す.
        const LOGIN_GUIDANCE_EVERY_TIME = 4;
        const _ = !0;
    }
}
mask_as_number!(ServiceOptions);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_the_spec_numbers() {
        assert_eq!(serde_json::to_string(&CallServiceType::End).unwrap(), "6");
        assert_eq!(
            serde_json::to_string(&TerminateReason::NeverStarted).unwrap(),
            "-8"
        );
        assert_eq!(serde_json::to_string(&OsType::Ios).unwrap(), "2");
        let codes: Vec<u8> = LiveServiceType::ALL.iter().map(|t| *t as u8).collect();
        assert_eq!(
            codes,
            [
                5, 6, 7, 11, 12, 13, 14, 15, 29, 31, 32, 33, 34, 35, 36, 94, 96, 97
            ]
        );
        assert!(
            serde_json::from_str::<LiveServiceType>("95").is_err(),
            "95 is not sent (decision 5)"
        );
        assert!(serde_json::from_str::<CallServiceType>("2").is_err());
    }

    #[test]
    fn administrator_codes_follow_the_detail_sections() {
        // Decision 5.
        assert_eq!(LiveServiceType::AdminRemovesViewer as u8, 94);
        assert_eq!(LiveServiceType::AdminRemovesBroadcaster as u8, 96);
        assert_eq!(LiveServiceType::AdminMessage as u8, 97);
        // Decision 6: 7 is the comment request.
        assert_eq!(LiveServiceType::Comment as u8, 7);
    }

    #[test]
    fn handling_follows_the_request_tables() {
        let retried: Vec<u8> = LiveServiceType::ALL
            .into_iter()
            .filter(|t| t.handling().retried)
            .map(|t| t as u8)
            .collect();
        assert_eq!(retried, [13, 29, 33]);
        let status_only: Vec<u8> = LiveServiceType::ALL
            .into_iter()
            .filter(|t| !t.handling().reply_decides)
            .map(|t| t as u8)
            .collect();
        assert_eq!(status_only, [13, 29, 33, 34, 94, 96, 97]);
        assert!(
            LiveServiceType::ViewerUpdate
                .handling()
                .required_reply
                .live_service
        );
        assert_eq!(
            LiveServiceType::PaidBroadcastSwitch
                .handling()
                .required_reply,
            RequiredReply {
                service_charge: true,
                ..RequiredReply::default()
            }
        );
        let call: Vec<(u8, bool, bool)> = CallServiceType::ALL
            .into_iter()
            .map(|t| (t as u8, t.handling().reply_decides, t.handling().retried))
            .collect();
        assert_eq!(
            call,
            [
                (1, true, false),
                (3, true, false),
                (4, false, false),
                (5, false, false),
                (6, false, true)
            ]
        );
        assert!(
            CallServiceType::Prepare
                .handling()
                .required_reply
                .call_service
        );
    }

    #[test]
    fn terminate_reasons_tell_connected_calls() {
        let connected = [1, 2, 3, 4];
        for reason in [
            TerminateReason::CallerHungUp,
            TerminateReason::CalleeHungUp,
            TerminateReason::TimeExhausted,
            TerminateReason::Administrator,
            TerminateReason::CallerCancelled,
            TerminateReason::NotDelivered,
            TerminateReason::Busy,
            TerminateReason::Declined,
            TerminateReason::RingTimeout,
            TerminateReason::NeverStarted,
            TerminateReason::InternalError,
        ] {
            assert_eq!(reason.was_connected(), connected.contains(&(reason as i8)));
        }
    }

    #[test]
    fn masks_are_numbers_and_keep_unknown_bits() {
        let o = CallOption::MOSAIC | CallOption::WALLPAPER;
        assert_eq!(serde_json::to_string(&o).unwrap(), "6");
        let read: CallOption = serde_json::from_str("\"13\"").unwrap();
        assert!(
            read.contains(CallOption::FACE_FILTER | CallOption::WALLPAPER | CallOption::RECORDING)
        );
        let future: ServiceOptions = serde_json::from_str("19").unwrap();
        assert_eq!(future.bits(), 19);
        assert!(future.contains(ServiceOptions::SHOW_PROFILE_IMAGE | ServiceOptions::RECORDING));
    }

    #[test]
    fn os_type_from_user_agent() {
        assert_eq!(
            OsType::from_user_agent("Mozilla/5.0 (Linux; Android 14; Pixel 8)"),
            OsType::Android
        );
        assert_eq!(
            OsType::from_user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"),
            OsType::Ios
        );
        assert_eq!(
            OsType::from_user_agent("Mozilla/5.0 (X11; Linux x86_64)"),
            OsType::Browser
        );
    }
}
