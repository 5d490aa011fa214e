//! The encodings of the partner interface (§3.1.1 ③④, §3.3.1, decisions 2, 4, 7, 8).
//!
//! - QUERY: `key=value&…`, form-encoded (`serde_urlencoded`).
//! - JSON: one serialized object, then percent-encoded as a whole and sent as
//!   an `application/x-www-form-urlencoded` POST body.
//! - Partner replies: `result=0&service=<encoded JSON>`, `result=0`, or
//!   `result=<non-zero>&message=<encoded text>` (also the spec's `messsge`).

use std::collections::HashMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What `encodeURIComponent` leaves alone; everything else is `%XX`-encoded.
pub const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The text shown when a partner refuses without a message (§3.1.2).
pub const DEFAULT_REFUSAL_MESSAGE: &str = "連携先サイトに拒否されました。";

/// A body or query that does not decode into the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

/// A value as a QUERY string (`a=1&b=x%20y`); `None` fields are left out.
pub fn encode_query<T: Serialize>(value: &T) -> String {
    serde_urlencoded::to_string(value).expect("wire types serialize to flat key/value pairs")
}

pub fn decode_query<T: DeserializeOwned>(query: &str) -> Result<T, DecodeError> {
    serde_urlencoded::from_str(query.trim().trim_start_matches('?'))
        .map_err(|e| DecodeError(format!("query: {e}")))
}

/// A request object as the POST body of decision 7: JSON, then percent-encoded.
pub fn encode_json_body<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).expect("wire types serialize to JSON");
    utf8_percent_encode(&json, URI_COMPONENT).to_string()
}

/// Decodes a JSON body whether it came percent-encoded (as the spec says) or
/// raw (as many partners send it). `+` is a space, as in any form body.
pub fn decode_json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let json = json_text_of(body).ok_or_else(|| DecodeError("body is not JSON".into()))?;
    serde_json::from_str(&json).map_err(|e| DecodeError(format!("JSON body: {e}")))
}

fn json_text_of(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.starts_with('{') || text.starts_with('[') {
        return Some(text.to_owned());
    }
    let plus_as_space = text.replace('+', " ");
    let decoded = percent_decode(plus_as_space.as_bytes())
        .decode_utf8()
        .ok()?;
    let decoded = decoded.trim();
    (decoded.starts_with('{') || decoded.starts_with('[')).then(|| decoded.to_owned())
}

/// The body of a partner→server call (decision 4): a JSON body (raw or
/// encoded), a form body, or, with an empty body, the query parameters.
pub fn decode_partner_call<T: DeserializeOwned>(
    query: &str,
    body: &[u8],
) -> Result<T, DecodeError> {
    if json_text_of(body).is_some() {
        return decode_json_body(body);
    }
    let body_text = std::str::from_utf8(body)
        .map_err(|_| DecodeError("body is not UTF-8".into()))?
        .trim();
    if body_text.is_empty() {
        decode_query(query)
    } else {
        decode_query(body_text)
    }
}

/// Why a partner request gave no usable answer (decision 8). Each is shown to
/// the user in words; none is a crash or a hang.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerFailure {
    #[error("the partner refused (result={result}): {}", .message.as_deref().unwrap_or("no message"))]
    Refused {
        result: i64,
        message: Option<String>,
    },
    #[error("the partner's reply could not be read: {detail}")]
    Unparseable { detail: String },
    #[error("the partner answered HTTP {status}")]
    HttpStatus { status: u16 },
    #[error("the partner did not answer within {seconds} s")]
    Timeout { seconds: u64 },
    #[error("the partner could not be reached: {detail}")]
    Unreachable { detail: String },
}

impl PartnerFailure {
    /// What the app shows the user, Japanese first as the UI speaks.
    pub fn user_message_ja(&self) -> String {
        match self {
            Self::Refused {
                message: Some(m), ..
            } if !m.trim().is_empty() => m.clone(),
            Self::Refused { .. } => DEFAULT_REFUSAL_MESSAGE.to_owned(),
            Self::Unparseable { .. } => "連携先サイトの応答を読み取れませんでした。".to_owned(),
            Self::HttpStatus { status } => {
                format!("連携先サイトでエラーが発生しました（HTTP {status}）。")
            }
            Self::Timeout { .. } => "連携先サイトから応答がありませんでした。".to_owned(),
            Self::Unreachable { .. } => "連携先サイトに接続できませんでした。".to_owned(),
        }
    }

    fn unparseable(detail: impl fmt::Display) -> Self {
        Self::Unparseable {
            detail: detail.to_string(),
        }
    }
}

/// A partner's QUERY-form reply, with `result` read and the refusal text found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerReply {
    pub result: i64,
    /// `message`, or the misspelt `messsge` of §3.3.1 ②; `message` wins (decision 2).
    pub message: Option<String>,
    fields: HashMap<String, String>,
}

impl PartnerReply {
    /// Reads `result=…&…`. A body without an integer `result` is unparseable.
    pub fn parse(body: &str) -> Result<Self, PartnerFailure> {
        let mut fields: HashMap<String, String> = HashMap::new();
        for (key, value) in form_urlencoded::parse(body.trim().as_bytes()) {
            fields.entry(key.into_owned()).or_insert(value.into_owned());
        }
        let result = fields
            .get("result")
            .ok_or_else(|| PartnerFailure::unparseable("no result field"))?
            .trim()
            .parse::<i64>()
            .map_err(|_| PartnerFailure::unparseable("result is not an integer"))?;
        let message = fields
            .get("message")
            .or_else(|| fields.get("messsge"))
            .cloned();
        Ok(Self {
            result,
            message,
            fields,
        })
    }

    /// Reads a reply and turns a refusal into `Err(Refused)`.
    pub fn parse_accepted(body: &str) -> Result<Self, PartnerFailure> {
        let reply = Self::parse(body)?;
        if reply.result == 0 {
            Ok(reply)
        } else {
            Err(PartnerFailure::Refused {
                result: reply.result,
                message: reply.message,
            })
        }
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The JSON carried in `name` (`service`, or `json` of the gift dump).
    pub fn json_field<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, PartnerFailure> {
        self.field(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                serde_json::from_str(v)
                    .map_err(|e| PartnerFailure::unparseable(format!("{name}: {e}")))
            })
            .transpose()
    }

    /// Reads the whole reply (without `result`/`message`) as a flat QUERY type.
    pub fn fields_as<T: DeserializeOwned>(&self) -> Result<T, PartnerFailure> {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.fields.iter())
            .finish();
        decode_query(&query).map_err(PartnerFailure::unparseable)
    }
}

/// `result=0`, or `result=0&<name>=<encoded JSON>` when there is a payload.
pub fn encode_accepted_reply<T: Serialize>(payload: Option<(&str, &T)>) -> String {
    match payload {
        None => "result=0".to_owned(),
        Some((name, value)) => format!("result=0&{name}={}", encode_json_body(value)),
    }
}

/// `result=<code>&message=<encoded text>`; `code` must not be 0.
pub fn encode_refused_reply(result: i64, message: Option<&str>) -> String {
    debug_assert_ne!(result, 0, "a refusal has a non-zero result");
    match message {
        None => format!("result={result}"),
        Some(m) => format!(
            "result={result}&message={}",
            utf8_percent_encode(m, URI_COMPONENT)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        site_token: String,
        point: u32,
        comment: Option<String>,
    }

    #[test]
    fn json_body_is_percent_encoded_json_and_decodes_either_way() {
        // Decision 7.
        let s = Sample {
            site_token: "tok en&=".into(),
            point: 5,
            comment: Some("こんにちは+1".into()),
        };
        let body = encode_json_body(&s);
        assert!(
            body.starts_with("%7B%22siteToken%22%3A%22tok%20en%26%3D%22"),
            "{body}"
        );
        assert!(!body.contains(['{', '"', ' ', '&', '=', '+']));
        assert_eq!(decode_json_body::<Sample>(body.as_bytes()).unwrap(), s);
        // A partner that sends raw JSON, or encodes spaces as '+', is understood too.
        let raw = serde_json::to_string(&s).unwrap();
        assert_eq!(decode_json_body::<Sample>(raw.as_bytes()).unwrap(), s);
        let plus = "%7B%22siteToken%22%3A%22a+b%22%2C%22point%22%3A1%7D";
        assert_eq!(
            decode_json_body::<Sample>(plus.as_bytes())
                .unwrap()
                .site_token,
            "a b"
        );
        assert!(decode_json_body::<Sample>(b"hello").is_err());
        assert!(decode_json_body::<Sample>(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn partner_calls_accept_json_form_and_query_bodies() {
        // Decision 4: siteKey always in the query; the fields anywhere.
        let want = Sample {
            site_token: "t1".into(),
            point: 30,
            comment: None,
        };
        let q = "siteKey=test.key";
        let json = br#"{"siteToken":"t1","point":30}"#;
        assert_eq!(decode_partner_call::<Sample>(q, json).unwrap(), want);
        let encoded = encode_json_body(&want);
        assert_eq!(
            decode_partner_call::<Sample>(q, encoded.as_bytes()).unwrap(),
            want
        );
        let form = b"siteToken=t1&point=30";
        assert_eq!(decode_partner_call::<Sample>(q, form).unwrap(), want);
        let in_query = "siteKey=test.key&siteToken=t1&point=30";
        assert_eq!(decode_partner_call::<Sample>(in_query, b"").unwrap(), want);
        assert!(decode_partner_call::<Sample>(q, b"point=abc").is_err());
    }

    #[test]
    fn refusal_reads_message_and_the_misspelt_messsge() {
        // Decision 2.
        let r =
            PartnerReply::parse("result=-1&messsge=%E6%AE%8B%E9%AB%98%E4%B8%8D%E8%B6%B3").unwrap();
        assert_eq!(r.result, -1);
        assert_eq!(r.message.as_deref(), Some("残高不足"));
        let both = PartnerReply::parse("result=-1&messsge=old&message=new").unwrap();
        assert_eq!(both.message.as_deref(), Some("new"), "message wins");
        let both = PartnerReply::parse("result=-1&message=new&messsge=old").unwrap();
        assert_eq!(
            both.message.as_deref(),
            Some("new"),
            "message wins in any order"
        );
    }

    #[test]
    fn refusal_without_message_shows_the_default_text() {
        // Decision 8.
        let e = PartnerReply::parse_accepted("result=9").unwrap_err();
        assert_eq!(
            e,
            PartnerFailure::Refused {
                result: 9,
                message: None
            }
        );
        assert_eq!(e.user_message_ja(), "連携先サイトに拒否されました。");
        let e = PartnerReply::parse_accepted("result=-1&message=").unwrap_err();
        assert_eq!(e.user_message_ja(), DEFAULT_REFUSAL_MESSAGE);
        let e = PartnerReply::parse_accepted(
            "result=-1&message=%E5%96%B6%E6%A5%AD%E6%99%82%E9%96%93%E5%A4%96",
        )
        .unwrap_err();
        assert_eq!(e.user_message_ja(), "営業時間外");
    }

    #[test]
    fn garbage_replies_are_unparseable_failures_with_words() {
        // Decision 8: never a crash.
        for body in [
            "",
            "OK",
            "<html>500</html>",
            "result=ok",
            "result=",
            "\u{0}\u{1}",
        ] {
            let e = PartnerReply::parse(body).unwrap_err();
            assert!(matches!(e, PartnerFailure::Unparseable { .. }), "{body:?}");
            assert!(!e.user_message_ja().is_empty());
        }
        let r = PartnerReply::parse_accepted("result=0&service=%7Bnot%20json").unwrap();
        assert!(matches!(
            r.json_field::<Sample>("service"),
            Err(PartnerFailure::Unparseable { .. })
        ));
        for failure in [
            PartnerFailure::HttpStatus { status: 503 },
            PartnerFailure::Timeout { seconds: 8 },
        ] {
            assert!(failure.user_message_ja().starts_with("連携先サイト"));
        }
    }

    #[test]
    fn accepted_reply_round_trips_its_payload() {
        let s = Sample {
            site_token: "x y".into(),
            point: 1,
            comment: Some("a&b=c".into()),
        };
        let body = encode_accepted_reply(Some(("service", &s)));
        let r = PartnerReply::parse_accepted(&body).unwrap();
        assert_eq!(r.json_field::<Sample>("service").unwrap(), Some(s));
        assert_eq!(encode_accepted_reply::<Sample>(None), "result=0");
        let r = PartnerReply::parse_accepted("result=0\r\n").unwrap();
        assert_eq!(r.json_field::<Sample>("service").unwrap(), None);
        assert_eq!(
            encode_refused_reply(-1, Some("残高 不足")),
            "result=-1&message=%E6%AE%8B%E9%AB%98%20%E4%B8%8D%E8%B6%B3"
        );
    }
}
