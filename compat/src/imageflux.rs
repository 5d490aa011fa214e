//! The ImageFlux Live Streaming API option (`imageflux-live-streaming-api.ja.txt`):
//! its request and response bodies, the documented validation, permissions
//! and the errors the server answers with. No storage here.
//!
//! Readings of the document:
//! - A password "n < 8" is read as *at least* 8 characters (the example
//!   `Password123` has 11; fewer than 8 would be no rule worth stating).
//! - Datetimes in requests are `Y/m/d H:i:s` as the field tables say; the
//!   general `2021-11-20 10:00:00` and the listing's `2021-11-19T12:00:00`
//!   are accepted too (decision 12).
//! - The master user holds every permission whatever its flags; only a master
//!   changes the access code, and only a master edits or deletes a master.
//! - Listing schedules needs any of the schedule, delivery or view
//!   permissions (a broadcaster or viewer has to find its schedule_id); chat
//!   needs delivery or view.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a user may do (the four permissions of §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Permissions {
    #[serde(with = "flag")]
    pub delivery: bool,
    #[serde(with = "flag")]
    pub view: bool,
    #[serde(with = "flag")]
    pub schedule: bool,
    #[serde(with = "flag")]
    pub user: bool,
}

/// Listings show permissions as 1/0 (the document's example).
mod flag {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(u8::from(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        super::Flag::deserialize(d).map(|f| f.0)
    }
}

/// A boolean as JSON true/false, 1/0 or "true"/"1"/"false"/"0".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(b) => Ok(Self(b)),
            serde_json::Value::Number(n) if n.as_u64() == Some(1) => Ok(Self(true)),
            serde_json::Value::Number(n) if n.as_u64() == Some(0) => Ok(Self(false)),
            serde_json::Value::String(s) if s == "true" || s == "1" => Ok(Self(true)),
            serde_json::Value::String(s) if s == "false" || s == "0" => Ok(Self(false)),
            other => Err(serde::de::Error::custom(format!(
                "{other} is not a boolean (true/false)"
            ))),
        }
    }
}

/// The caller as its token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub is_master: bool,
    pub permissions: Permissions,
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Delivery,
    View,
    Schedule,
    User,
    /// Listing schedules: any of schedule, delivery, view.
    SeeSchedules,
    /// Chat: delivery or view.
    Chat,
    Master,
}

impl Caller {
    pub fn may(&self, need: Need) -> Result<(), ApiError> {
        let p = &self.permissions;
        let allowed = self.is_master
            || match need {
                Need::Delivery => p.delivery,
                Need::View => p.view,
                Need::Schedule => p.schedule,
                Need::User => p.user,
                Need::SeeSchedules => p.schedule || p.delivery || p.view,
                Need::Chat => p.delivery || p.view,
                Need::Master => false,
            };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match need {
                Need::Delivery => "配信権限がありません。",
                Need::View => "視聴権限がありません。",
                Need::Schedule => "スケジュール管理権限がありません。",
                Need::User => "ユーザー管理権限がありません。",
                Need::SeeSchedules => {
                    "スケジュールを見る権限（スケジュール管理・配信・視聴）がありません。"
                }
                Need::Chat => "チャットには配信権限か視聴権限が必要です。",
                Need::Master => "マスターユーザーだけが行えます。",
            }))
        }
    }
}

/// An error answered as `{"error": {"code", "message"[, "field"]}}` with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: the body is not JSON of the expected shape.
    Malformed(String),
    /// 422: a field breaks its rule.
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 401: no token, an unknown one, or an expired one.
    Unauthenticated(&'static str),
    /// 401 at login: wrong email, password or access code (not said which).
    LoginFailed,
    /// 403: the caller lacks the permission.
    Forbidden(&'static str),
    /// 404
    NotFound(&'static str),
    /// 409: overlapping schedule, taken email, started schedule, …
    Conflict(String),
    /// 429: too many logins from one address or for one account.
    TooManyAttempts,
    /// 500
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::Invalid { .. } => 422,
            Self::Unauthenticated(_) | Self::LoginFailed => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::TooManyAttempts => 429,
            Self::Internal(_) => 500,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let (code, message, field) = match self {
            Self::Malformed(m) => ("malformed_request", m.clone(), None),
            Self::Invalid { field, message } => ("validation_error", message.clone(), Some(*field)),
            Self::Unauthenticated(m) => ("unauthenticated", (*m).to_owned(), None),
            Self::LoginFailed => (
                "login_failed",
                "メールアドレス、パスワードまたはアクセスコードが正しくありません。".to_owned(),
                None,
            ),
            Self::Forbidden(m) => ("forbidden", (*m).to_owned(), None),
            Self::NotFound(m) => ("not_found", (*m).to_owned(), None),
            Self::Conflict(m) => ("conflict", m.clone(), None),
            Self::TooManyAttempts => (
                "too_many_attempts",
                "ログインの試行が多すぎます。しばらくしてからもう一度お試しください。".to_owned(),
                None,
            ),
            Self::Internal(m) => ("internal_error", m.clone(), None),
        };
        let mut error = serde_json::json!({ "code": code, "message": message });
        if let Some(field) = field {
            error["field"] = field.into();
        }
        serde_json::json!({ "ok": false, "error": error })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.body())
    }
}

/// The request's fields: the query string's, then the JSON body's over them.
pub struct Fields(serde_json::Map<String, serde_json::Value>);

impl Fields {
    pub fn read(query: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mut fields: serde_json::Map<String, serde_json::Value> = query
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                    .collect()
            })
            .unwrap_or_default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(serde_json::Value::Object(json)) => fields.extend(json),
                Ok(serde_json::Value::Null) => {}
                Ok(_) => {
                    return Err(ApiError::Malformed(
                        "リクエストの本文はJSONオブジェクトにしてください。".into(),
                    ));
                }
                Err(e) => {
                    return Err(ApiError::Malformed(format!(
                        "リクエストの本文をJSONとして読めません: {e}"
                    )));
                }
            }
        }
        Ok(Self(fields))
    }

    /// A field as sent, JSON or text.
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.get(name)
    }

    pub fn text(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::Invalid {
                field: name,
                message: format!("{name} は文字列で指定してください。"),
            }),
        }
    }

    pub fn required_text(&self, name: &'static str) -> Result<String, ApiError> {
        required(name, self.text(name)?.filter(|s| !s.is_empty()))
    }

    pub fn flag(&self, name: &'static str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => serde_json::from_value::<Flag>(value.clone())
                .map(|f| Some(f.0))
                .map_err(|_| ApiError::Invalid {
                    field: name,
                    message: format!("{name} は true か false で指定してください。"),
                }),
        }
    }

    pub fn user_id(&self) -> Result<i64, ApiError> {
        self.required_text("user_id")?
            .parse()
            .map_err(|_| ApiError::Invalid {
                field: "user_id",
                message: "user_id は整数で指定してください。".into(),
            })
    }

    /// A `Y/m/d H:i:s` (or either ImageFlux form) time, JST, as ms.
    pub fn datetime(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        self.text(name)?
            .map(|text| {
                nexmile_core::datetime::WireDateTime::parse(&text)
                    .map(|d| d.to_unix_millis(nexmile_core::datetime::JST).0)
                    .map_err(|e| ApiError::Invalid {
                        field: name,
                        message: format!("{name}: {e}"),
                    })
            })
            .transpose()
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field,
        message: message.into(),
    }
}

/// A required field.
pub fn required<T>(field: &'static str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| invalid(field, format!("{field} は必須です。")))
}

/// A name of 1 to 30 characters (not bytes).
pub fn name(field: &'static str, value: &str) -> Result<String, ApiError> {
    let count = value.trim().chars().count();
    if (1..=30).contains(&count) {
        Ok(value.trim().to_owned())
    } else {
        Err(invalid(
            field,
            format!("{field} は1〜30文字で指定してください（{count}文字）。"),
        ))
    }
}

pub fn email(value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if email_address::EmailAddress::is_valid(value) {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            "email",
            format!("email「{value}」はメールアドレスの形式ではありません。"),
        ))
    }
}

pub fn password(value: &str) -> Result<&str, ApiError> {
    let count = value.chars().count();
    if (8..=128).contains(&count) {
        Ok(value)
    } else {
        Err(invalid(
            "password",
            "password は8〜128文字で指定してください。",
        ))
    }
}

pub fn access_code(value: &str) -> Result<&str, ApiError> {
    let ok = (4..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(value)
    } else {
        Err(invalid(
            "access_code",
            "access_code は空白を含まない4〜64文字の英数字・記号で指定してください。",
        ))
    }
}

/// A chat message: 1 to 50 characters.
pub fn chat_body(value: &str) -> Result<String, ApiError> {
    let count = value.trim().chars().count();
    if (1..=50).contains(&count) {
        Ok(value.trim().to_owned())
    } else {
        Err(invalid(
            "body",
            format!("body は1〜50文字で指定してください（{count}文字）。"),
        ))
    }
}

/// A schedule's time range in ms: start before end.
pub fn time_range(start: i64, end: i64) -> Result<(i64, i64), ApiError> {
    if start < end {
        Ok((start, end))
    } else {
        Err(invalid(
            "end_datetime",
            "end_datetime は start_datetime より後にしてください。",
        ))
    }
}

/// Whether `[start, end)` overlaps any of `others` (half-open: one may end
/// when the next starts).
pub fn overlaps(start: i64, end: i64, others: &[(i64, i64)]) -> bool {
    others.iter().any(|(s, e)| start < *e && *s < end)
}

/// One rung of the HLS ladder (`imageflux_params`, ImageFlux's "hls").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HlsRung {
    /// Segment length, seconds.
    pub duration_seconds: u32,
    /// Where a player starts, seconds from the live edge (negative).
    #[serde(default)]
    pub start_time_offset: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<HlsVideo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<HlsAudio>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HlsVideo {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HlsAudio {
    pub bps: u32,
}

/// The ladder used when a schedule names none.
pub fn default_ladder() -> Vec<HlsRung> {
    vec![HlsRung {
        duration_seconds: 2,
        start_time_offset: -4,
        video: Some(HlsVideo {
            width: 1280,
            height: 720,
            fps: 30,
            bps: 2_500_000,
        }),
        audio: Some(HlsAudio { bps: 64_000 }),
    }]
}

/// Reads `imageflux_params`: a JSON array of rungs (or the JSON text of one).
pub fn ladder(value: &serde_json::Value) -> Result<Vec<HlsRung>, ApiError> {
    let field = "imageflux_params";
    let parsed: serde_json::Value = match value {
        serde_json::Value::String(text) => serde_json::from_str(text)
            .map_err(|e| invalid(field, format!("imageflux_params のJSONを読めません: {e}")))?,
        other => other.clone(),
    };
    let rungs: Vec<HlsRung> = serde_json::from_value(parsed)
        .map_err(|e| invalid(field, format!("imageflux_params の形式が違います: {e}")))?;
    if rungs.is_empty() || rungs.len() > 5 {
        return Err(invalid(
            field,
            "imageflux_params は1〜5段で指定してください。",
        ));
    }
    for rung in &rungs {
        if !(1..=10).contains(&rung.duration_seconds) {
            return Err(invalid(field, "durationSeconds は1〜10秒です。"));
        }
        if !(-60..=0).contains(&rung.start_time_offset) {
            return Err(invalid(field, "startTimeOffset は-60〜0秒です。"));
        }
        if let Some(v) = &rung.video {
            let sized = (16..=1920).contains(&v.width)
                && (16..=1080).contains(&v.height)
                && v.width % 2 == 0
                && v.height % 2 == 0;
            if !sized || !(1..=60).contains(&v.fps) || !(50_000..=20_000_000).contains(&v.bps) {
                return Err(invalid(
                    field,
                    "video は偶数の幅16〜1920・高さ16〜1080、fps 1〜60、bps 50000〜20000000 です。",
                ));
            }
        }
        if let Some(a) = &rung.audio
            && !(6_000..=510_000).contains(&a.bps)
        {
            return Err(invalid(field, "audio.bps は6000〜510000です。"));
        }
    }
    if rungs
        .iter()
        .any(|r| r.duration_seconds != rungs[0].duration_seconds)
    {
        return Err(invalid(
            field,
            "durationSeconds は全段で同じにしてください。",
        ));
    }
    Ok(rungs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_ladder_is_accepted_and_bad_rungs_are_refused() {
        let example = serde_json::json!([{ "durationSeconds": 1, "startTimeOffset": -2,
            "video": { "width": 640, "height": 480, "fps": 12, "bps": 2465792 }, "audio": { "bps": 64000 } }]);
        let rungs = ladder(&example).unwrap();
        assert_eq!(rungs[0].video.as_ref().unwrap().width, 640);
        assert_eq!(
            ladder(&serde_json::Value::String(example.to_string())).unwrap(),
            rungs
        );
        for bad in [
            serde_json::json!([]),
            serde_json::json!([{ "durationSeconds": 0 }]),
            serde_json::json!([{ "durationSeconds": 2, "video": { "width": 641, "height": 480, "fps": 12, "bps": 100000 } }]),
            serde_json::json!([{ "durationSeconds": 2, "colour": 1 }]),
            serde_json::json!({ "durationSeconds": 2 }),
        ] {
            assert!(
                matches!(
                    ladder(&bad),
                    Err(ApiError::Invalid {
                        field: "imageflux_params",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_count_characters_and_overlaps_are_half_open() {
        assert!(name("name", &"配".repeat(30)).is_ok());
        assert!(name("name", &"配".repeat(31)).is_err());
        assert!(name("name", "  ").is_err());
        assert!(overlaps(10, 20, &[(15, 30)]));
        assert!(!overlaps(10, 20, &[(20, 30), (0, 10)]));
        assert!(time_range(10, 10).is_err());
        assert!(chat_body(&"あ".repeat(50)).is_ok());
        assert!(chat_body(&"あ".repeat(51)).is_err());
        assert!(email("imageflux@example.com").is_ok());
        assert!(email("not-an-email").is_err());
        assert!(password("Password123").is_ok());
        assert!(password("short").is_err());
    }

    #[test]
    fn the_master_may_everything_and_others_what_their_flags_say() {
        let viewer = Caller {
            user_id: 11,
            is_master: false,
            permissions: Permissions {
                delivery: false,
                view: true,
                schedule: false,
                user: false,
            },
        };
        assert!(viewer.may(Need::View).is_ok());
        assert!(viewer.may(Need::Chat).is_ok());
        assert!(viewer.may(Need::SeeSchedules).is_ok());
        assert_eq!(viewer.may(Need::Schedule).unwrap_err().status(), 403);
        assert!(viewer.may(Need::Master).is_err());
        let master = Caller {
            is_master: true,
            permissions: Permissions::default(),
            ..viewer
        };
        assert!(master.may(Need::User).is_ok() && master.may(Need::Master).is_ok());
        let listed = serde_json::to_value(Permissions {
            delivery: true,
            view: true,
            schedule: false,
            user: false,
        })
        .unwrap();
        assert_eq!(
            listed,
            serde_json::json!({ "delivery": 1, "view": 1, "schedule": 0, "user": 0 })
        );
    }
}
