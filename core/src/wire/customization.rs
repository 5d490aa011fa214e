//! Live customisation (§5.4): frames, fixed wordings with placeholders,
//! custom messages, limited gifts, quick payments, special URLs, colours.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::datetime::WireDateTime;
use crate::lenient;

/// §5.4.2 ② colours: `AARRGGBB` hex, alpha first (`7FFF0000` = red at 50 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argb(pub u32);

impl Argb {
    pub fn alpha(self) -> u8 {
        (self.0 >> 24) as u8
    }

    /// Also reads `#RRGGBB`/`RRGGBB` as opaque, and a leading `#` on 8 digits.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.trim().trim_start_matches('#');
        let value = u32::from_str_radix(hex, 16).ok()?;
        match hex.len() {
            8 => Some(Self(value)),
            6 => Some(Self(0xFF00_0000 | value)),
            _ => None,
        }
    }
}

impl Argb {
    /// CSS `rgba()`, alpha as a fraction.
    pub fn css(self) -> String {
        let [a, r, g, b] = self.0.to_be_bytes();
        format!("rgba({r}, {g}, {b}, {:.3})", f64::from(a) / 255.0)
    }
}

/// A colour that does not read as one is left out (the default frame's
/// colour shows), rather than refusing the reply around it.
fn opt_argb<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Argb>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .and_then(Argb::parse))
}

/// Into the spec's range: out-of-range sizes are clamped (the spec gives no
/// default to fall back to), so a partner's 30 pt font shows at 24.
pub(crate) fn clamped(value: Option<f64>, low: f64, high: f64) -> Option<f32> {
    value
        .filter(|v| v.is_finite())
        .map(|v| v.clamp(low, high) as f32)
}

impl fmt::Display for Argb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}", self.0)
    }
}

impl Serialize for Argb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Argb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("\"{text}\" is not an AARRGGBB colour"))
        })
    }
}

/// §5.4.2 ① frameDesignTp: which comment or guidance a frame decorates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum FrameDesignType {
    /// 1 配信者・コメント.
    LiverComment,
    /// 11 配信者・Poke.
    LiverPoke,
    /// 12 配信者・Poke 有料返信受取.
    LiverPaidPokeReplyReceived,
    /// 13 配信者・Poke 無料返信受取.
    LiverFreePokeReplyReceived,
    /// 21 配信者・有料ギフト受取.
    LiverPaidGiftReceived,
    /// 22 配信者・無料ギフト受取.
    LiverFreeGiftReceived,
    /// 23 配信者・有料スタンプ受取.
    LiverPaidStampReceived,
    /// 24 配信者・無料スタンプ受取.
    LiverFreeStampReceived,
    /// 25 配信者・有料配信開始.
    LiverPaidLiveStarted,
    /// 51 視聴者・視聴開始.
    ViewerJoined,
    /// 52 視聴者・有料コメント.
    ViewerPaidComment,
    /// 53 視聴者・無料コメント.
    ViewerFreeComment,
    /// 54 視聴者・お気に入り登録.
    ViewerFavorite,
    /// 61 視聴者・有料 Poke 返信.
    ViewerPaidPokeReply,
    /// 62 視聴者・無料 Poke 返信.
    ViewerFreePokeReply,
    /// 71 視聴者・有料ギフト送信.
    ViewerPaidGift,
    /// 72 視聴者・無料ギフト送信.
    ViewerFreeGift,
    /// 73 視聴者・有料スタンプ送信.
    ViewerPaidStamp,
    /// 74 視聴者・無料スタンプ送信.
    ViewerFreeStamp,
    /// 101–109 ユーザ定義 1–9 (OEM apps); holds 1–9.
    UserDefined(u8),
}

const FRAME_CODES: [(u16, FrameDesignType); 19] = [
    (1, FrameDesignType::LiverComment),
    (11, FrameDesignType::LiverPoke),
    (12, FrameDesignType::LiverPaidPokeReplyReceived),
    (13, FrameDesignType::LiverFreePokeReplyReceived),
    (21, FrameDesignType::LiverPaidGiftReceived),
    (22, FrameDesignType::LiverFreeGiftReceived),
    (23, FrameDesignType::LiverPaidStampReceived),
    (24, FrameDesignType::LiverFreeStampReceived),
    (25, FrameDesignType::LiverPaidLiveStarted),
    (51, FrameDesignType::ViewerJoined),
    (52, FrameDesignType::ViewerPaidComment),
    (53, FrameDesignType::ViewerFreeComment),
    (54, FrameDesignType::ViewerFavorite),
    (61, FrameDesignType::ViewerPaidPokeReply),
    (62, FrameDesignType::ViewerFreePokeReply),
    (71, FrameDesignType::ViewerPaidGift),
    (72, FrameDesignType::ViewerFreeGift),
    (73, FrameDesignType::ViewerPaidStamp),
    (74, FrameDesignType::ViewerFreeStamp),
];

impl TryFrom<u16> for FrameDesignType {
    type Error = String;
    fn try_from(code: u16) -> Result<Self, String> {
        if (101..=109).contains(&code) {
            return Ok(Self::UserDefined((code - 100) as u8));
        }
        FRAME_CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, t)| *t)
            .ok_or_else(|| format!("{code} is not a frameDesignTp"))
    }
}

impl From<FrameDesignType> for u16 {
    fn from(t: FrameDesignType) -> u16 {
        match t {
            FrameDesignType::UserDefined(n) => 100 + u16::from(n),
            known => FRAME_CODES
                .iter()
                .find(|(_, k)| *k == known)
                .map(|(c, _)| *c)
                .expect("every named frame type has a code"),
        }
    }
}

/// §5.4.3 置換文字列: the `%Tran.…%` placeholders of fixed wordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    UserName,
    GiftPointText,
    GiftName,
    Comment,
    LiverPokePoint,
    BlockUserNm,
    Description,
    UnitPrice,
    UnitSec,
    LiverName,
    PokePointText,
}

impl Placeholder {
    const ALL: [Self; 11] = [
        Self::UserName,
        Self::GiftPointText,
        Self::GiftName,
        Self::Comment,
        Self::LiverPokePoint,
        Self::BlockUserNm,
        Self::Description,
        Self::UnitPrice,
        Self::UnitSec,
        Self::LiverName,
        Self::PokePointText,
    ];

    /// The name inside `%…%`, as `placeholderColors.placeholder` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::UserName => "Tran.UserName",
            Self::GiftPointText => "Tran.GiftPointText",
            Self::GiftName => "Tran.GiftName",
            Self::Comment => "Tran.Comment",
            Self::LiverPokePoint => "Tran.LiverPokePoint",
            Self::BlockUserNm => "Tran.BlockUserNm",
            Self::Description => "Tran.Description",
            Self::UnitPrice => "Tran.UnitPrice",
            Self::UnitSec => "Tran.UnitSec",
            Self::LiverName => "Tran.LiverName",
            Self::PokePointText => "Tran.PokePointText",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// §5.4.3 ① wordingTp: the guidance texts the server sends during a live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum WordingType {
    LiveStarted = 1,
    PokeSent = 2,
    PaidGiftReceived = 3,
    FreeGiftReceived = 4,
    PaidStampReceived = 5,
    FreeStampReceived = 6,
    LiverComment = 7,
    PaidPokeReplyReceived = 8,
    FreePokeReplyReceived = 9,
    LiverBlocked = 11,
    LiverUnblocked = 12,
    PaidViewingStarted = 13,
    ViewerJoined = 21,
    ViewerComment = 22,
    Favorite = 23,
    PaidPokeReply = 31,
    FreePokeReply = 32,
    PaidGiftSent = 33,
    FreeGiftSent = 34,
    PaidStampSent = 35,
    FreeStampSent = 36,
}

impl WordingType {
    pub const ALL: [Self; 21] = [
        Self::LiveStarted,
        Self::PokeSent,
        Self::PaidGiftReceived,
        Self::FreeGiftReceived,
        Self::PaidStampReceived,
        Self::FreeStampReceived,
        Self::LiverComment,
        Self::PaidPokeReplyReceived,
        Self::FreePokeReplyReceived,
        Self::LiverBlocked,
        Self::LiverUnblocked,
        Self::PaidViewingStarted,
        Self::ViewerJoined,
        Self::ViewerComment,
        Self::Favorite,
        Self::PaidPokeReply,
        Self::FreePokeReply,
        Self::PaidGiftSent,
        Self::FreeGiftSent,
        Self::PaidStampSent,
        Self::FreeStampSent,
    ];

    /// デフォルト値設定: the text used when no specialWording overrides it.
    pub fn default_text(self) -> &'static str {
        match self {
            Self::LiveStarted => "%Tran.UserName%ライブはじめました",
            Self::PokeSent => "ライバーが%Tran.UserName%に Poke しました",
            Self::PaidGiftReceived => "%Tran.UserName%よりギフト%Tran.GiftPointText%受取ました",
            Self::FreeGiftReceived => "%Tran.UserName%よりギフト受取ました",
            Self::PaidStampReceived => "%Tran.UserName%よりスタンプ%Tran.GiftPointText%受取ました",
            Self::FreeStampReceived => "%Tran.UserName%よりスタンプ受取ました",
            Self::LiverComment | Self::ViewerComment => "%Tran.UserName%:%Tran.Comment%",
            Self::PaidPokeReplyReceived => {
                "%Tran.UserName%より POKE%Tran.LiverPokePoint%pt 受取ました"
            }
            Self::FreePokeReplyReceived => "%Tran.UserName%より POKE 受取ました",
            Self::LiverBlocked => "%Tran.BlockUserNm%を%Tran.Description%によりブロックしました",
            Self::LiverUnblocked => "%Tran.BlockUserNm%のブロックを解除しました",
            Self::PaidViewingStarted => "有料配信が開始されました。%Tran.UnitPrice%/分",
            Self::ViewerJoined => "%Tran.UserName%イン",
            Self::Favorite => "%Tran.UserName%:%Tran.LiverName%をお気に入り登録しました。",
            Self::PaidPokeReply => "%Tran.UserName%:Poke を%Tran.PokePointText%返しました",
            Self::FreePokeReply => "%Tran.UserName%:Poke を返しました",
            Self::PaidGiftSent => "%Tran.UserName%:ギフトを%Tran.GiftPointText%送りました",
            Self::FreeGiftSent => "%Tran.UserName%:ギフト送りました",
            Self::PaidStampSent => "%Tran.UserName%:スタンプを%Tran.GiftPointText%送りました",
            Self::FreeStampSent => "%Tran.UserName%:スタンプ送りました",
        }
    }

    /// サポートする置換文字列.
    pub fn placeholders(self) -> &'static [Placeholder] {
        use Placeholder::*;
        match self {
            Self::LiveStarted
            | Self::PokeSent
            | Self::FreePokeReplyReceived
            | Self::ViewerJoined
            | Self::FreePokeReply
            | Self::FreeGiftSent
            | Self::FreeStampSent => &[UserName],
            Self::PaidGiftReceived | Self::PaidStampReceived => {
                &[UserName, GiftPointText, GiftName]
            }
            Self::FreeGiftReceived | Self::FreeStampReceived => &[UserName, GiftName],
            Self::LiverComment | Self::ViewerComment => &[UserName, Comment],
            Self::PaidPokeReplyReceived => &[UserName, LiverPokePoint],
            Self::LiverBlocked => &[BlockUserNm, Description],
            Self::LiverUnblocked => &[BlockUserNm],
            Self::PaidViewingStarted => &[UnitPrice, UnitSec],
            Self::Favorite => &[UserName, LiverName],
            Self::PaidPokeReply => &[UserName, PokePointText],
            Self::PaidGiftSent | Self::PaidStampSent => &[UserName, GiftPointText],
        }
    }

    /// Splits `wording` into literal text and placeholders this type supports.
    /// Unsupported or unknown `%Tran.…%` placeholders are removed (§5.4.3 ②);
    /// a lone `%` stays text.
    pub fn segments(self, wording: &str) -> Vec<WordingSegment> {
        let mut out = Vec::new();
        let mut rest = wording;
        while let Some(start) = rest.find("%Tran.") {
            let after = &rest[start + 1..];
            let Some(len) = after.find('%') else { break };
            push_text(&mut out, &rest[..start]);
            let name = &after[..len];
            if let Some(p) =
                Placeholder::from_name(name).filter(|p| self.placeholders().contains(p))
            {
                out.push(WordingSegment::Placeholder(p));
            }
            rest = &after[len + 1..];
        }
        push_text(&mut out, rest);
        out
    }

    /// The wording with each supported placeholder replaced by `value(p)`.
    pub fn render(self, wording: &str, value: impl Fn(Placeholder) -> String) -> String {
        self.segments(wording)
            .into_iter()
            .map(|s| match s {
                WordingSegment::Text(t) => t,
                WordingSegment::Placeholder(p) => value(p),
            })
            .collect()
    }
}

fn push_text(out: &mut Vec<WordingSegment>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(WordingSegment::Text(previous)) = out.last_mut() {
        previous.push_str(text);
    } else {
        out.push(WordingSegment::Text(text.to_owned()));
    }
}

/// A piece of a wording: text, or a placeholder the UI styles with its
/// placeholderColors entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordingSegment {
    Text(String),
    Placeholder(Placeholder),
}

impl TryFrom<u8> for WordingType {
    type Error = String;
    fn try_from(code: u8) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| *t as u8 == code)
            .ok_or_else(|| format!("{code} is not a wordingTp"))
    }
}

impl From<WordingType> for u8 {
    fn from(t: WordingType) -> u8 {
        t as u8
    }
}

/// §5.4.2 ② liveSpecialFrame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSpecialFrame {
    #[serde(rename = "frameDesignTp")]
    pub frame_design_type: FrameDesignType,
    #[serde(
        default,
        deserialize_with = "opt_argb",
        skip_serializing_if = "Option::is_none"
    )]
    pub fore_color: Option<Argb>,
    #[serde(
        default,
        deserialize_with = "opt_argb",
        skip_serializing_if = "Option::is_none"
    )]
    pub back_color: Option<Argb>,
    #[serde(
        default,
        deserialize_with = "opt_argb",
        skip_serializing_if = "Option::is_none"
    )]
    pub border_color: Option<Argb>,
    /// 0, or 0.1–9.9.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub border_width: Option<f64>,
    /// 0–99.9.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub border_circular: Option<f64>,
    /// 8.0–24.0.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub font_size: Option<f64>,
    /// 0.1–99.0.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub padding_vertical: Option<f64>,
    /// 0.1–99.0.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub padding_horizontal: Option<f64>,
}

/// §5.4.3 ② specialWording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecialWording {
    #[serde(rename = "wordingTp")]
    pub wording_type: WordingType,
    pub wording: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placeholder_colors: Vec<LivePlaceholderColor>,
}

/// §5.4.3 ③ livePlaceholderColor. `placeholder` is written without `%`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePlaceholderColor {
    pub placeholder: String,
    #[serde(
        default,
        deserialize_with = "opt_argb",
        skip_serializing_if = "Option::is_none"
    )]
    pub fore_color: Option<Argb>,
    /// 8.0–24.0.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub font_size: Option<f64>,
}

/// §5.4.4 ① the spec's "lievSpecialMessage": a timed pop-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSpecialMessage {
    /// 5–3600 s after the start.
    #[serde(deserialize_with = "lenient::int")]
    pub connect_after_sec: u32,
    /// 1–30 s.
    #[serde(deserialize_with = "lenient::int")]
    pub display_duration: u32,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<LiveSpecialFrame>,
    /// −1.0 (left) … 1.0 (right); centre when absent.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub alignment_x: Option<f64>,
    /// −1.0 (top) … 1.0 (bottom); centre when absent.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub alignment_y: Option<f64>,
    /// 0.1–0.99 of the screen width; 0.7 when absent.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub width_rate: Option<f64>,
}

/// §5.4.5 ① liveSpecialGift: a stamp or gift shown to this user only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSpecialGift {
    #[serde(deserialize_with = "lenient::text")]
    pub gift_category_no: String,
    #[serde(deserialize_with = "lenient::text")]
    pub gift_no: String,
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_order: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_time_from: Option<WireDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_time_to: Option<WireDateTime>,
}

/// §5.4.6 ① quickPayment: one amount the viewer can buy during a live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuickPayment {
    pub point_text: String,
    #[serde(deserialize_with = "lenient::int")]
    pub payment_amount: u32,
}

/// §5.3.1 specialUrls: an image shown on the broadcast/view screen (a top
/// banner, say). The spec gives no field table; the project's decision is an
/// image URL and an optional URL opened when it is tapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSpecialUrl {
    #[serde(alias = "url")]
    pub image_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_argb_hex() {
        assert_eq!(Argb::parse("FFFF0000"), Some(Argb(0xFFFF_0000)));
        assert_eq!(Argb::parse("7FFF0000").unwrap().alpha(), 0x7F);
        assert_eq!(Argb::parse("#00ff00"), Some(Argb(0xFF00_FF00)));
        assert_eq!(Argb::parse("F00"), None);
        assert_eq!(Argb::parse("GGFF0000"), None);
        assert_eq!(
            serde_json::to_string(&Argb(0x7FFF_0000)).unwrap(),
            "\"7FFF0000\""
        );
    }

    #[test]
    fn frame_codes_cover_the_table_and_user_defined_range() {
        for code in [
            1u16, 11, 12, 13, 21, 22, 23, 24, 25, 51, 52, 53, 54, 61, 62, 71, 72, 73, 74, 101, 105,
            109,
        ] {
            let t = FrameDesignType::try_from(code).unwrap();
            assert_eq!(u16::from(t), code);
        }
        for code in [0u16, 2, 26, 100, 110] {
            assert!(FrameDesignType::try_from(code).is_err(), "{code}");
        }
        let frame: LiveSpecialFrame =
            serde_json::from_str(r#"{"frameDesignTp":53,"foreColor":"FFFF0000","fontSize":18}"#)
                .unwrap();
        assert_eq!(frame.frame_design_type, FrameDesignType::ViewerFreeComment);
        assert_eq!(frame.font_size, Some(18.0));
    }

    #[test]
    fn default_wordings_render_with_their_placeholders() {
        let name = |p: Placeholder| match p {
            Placeholder::UserName => "はなこ".to_owned(),
            Placeholder::GiftPointText => "100pt".to_owned(),
            Placeholder::Comment => "こんばんは".to_owned(),
            Placeholder::UnitPrice => "50円".to_owned(),
            other => format!("<{}>", other.name()),
        };
        let t = WordingType::PaidGiftReceived;
        assert_eq!(
            t.render(t.default_text(), name),
            "はなこよりギフト100pt受取ました"
        );
        let t = WordingType::ViewerComment;
        assert_eq!(t.render(t.default_text(), name), "はなこ:こんばんは");
        let t = WordingType::PaidViewingStarted;
        assert_eq!(
            t.render(t.default_text(), name),
            "有料配信が開始されました。50円/分"
        );
        // Every default text uses only placeholders its type supports.
        for t in WordingType::ALL {
            let rendered = t.render(t.default_text(), |p| format!("[{}]", p.name()));
            assert!(!rendered.contains("%Tran."), "{t:?}: {rendered}");
            assert_eq!(WordingType::try_from(t as u8), Ok(t));
        }
    }

    #[test]
    fn unsupported_placeholders_are_removed() {
        // §5.4.3 ②: a placeholder the type does not support is deleted.
        let t = WordingType::ViewerJoined;
        let out = t.render(
            "%Tran.UserName%さん%Tran.Comment%ようこそ%Tran.Nope% 100%",
            |_| "A".into(),
        );
        assert_eq!(out, "Aさんようこそ 100%");
        assert_eq!(
            t.segments("50% off %Tran.UserName"),
            vec![WordingSegment::Text("50% off %Tran.UserName".into())]
        );
    }
}
