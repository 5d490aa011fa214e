//! The request code of a CallService or liveService body, read before (or
//! without) decoding the whole request, and the checks every such request
//! passes before its handler.

use axum::http::StatusCode;
use nexmile_core::codec::{decode_json_body, decode_query};
use nexmile_core::signature::secrets_equal;
use nexmile_core::wire::codes::{CallServiceType, LiveServiceType};
use nexmile_core::wire::site_owner::SiteKeyQuery;
use serde::de::DeserializeOwned;

use crate::reply::Reply;
use crate::site::Site;

/// The `siteKey` of a request's query ("" when there is none).
pub(crate) fn site_key_of(query: Option<&str>) -> String {
    decode_query::<SiteKeyQuery>(query.unwrap_or(""))
        .map(|q| q.site_key)
        .unwrap_or_default()
}

/// Which service a JSON request body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceKind {
    Call,
    Live,
}

impl ServiceKind {
    fn field(self) -> &'static str {
        match self {
            Self::Call => "callServiceTp",
            Self::Live => "liveServiceTp",
        }
    }

    /// The `callServiceTp` / `liveServiceTp` of `body`, if it has one.
    pub fn code_of(self, body: &[u8]) -> Option<u8> {
        let json: serde_json::Value = decode_json_body(body).ok()?;
        json.get(self.field())?
            .as_u64()
            .and_then(|code| u8::try_from(code).ok())
    }

    /// The request, once it passed what every one of this service passes:
    /// siteKey first (the spec has it checked before the body is parsed), a
    /// readable body, this site's siteToken. Otherwise the reply to send; a
    /// refused status-only request gets 403, since a 200 would count as done.
    pub fn admit<T: DeserializeOwned>(
        self,
        site: &Site,
        query: Option<&str>,
        body: &[u8],
        site_token: impl Fn(&T) -> &str,
    ) -> Result<T, Reply> {
        let refusal_status = if self.reply_decides(body) {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        site.check_key(&site_key_of(query))
            .map_err(|rejection| rejection.with_status(refusal_status))?;
        let request: T = decode_json_body(body).map_err(|e| {
            Reply::rejected(
                StatusCode::BAD_REQUEST,
                &format!("リクエストを読み取れません: {e}"),
            )
        })?;
        if !secrets_equal(site_token(&request), &site.config.site_token) {
            return Err(Reply::rejected(
                refusal_status,
                "サイトトークンが一致しません。",
            ));
        }
        Ok(request)
    }

    /// Whether the server reads this request's `result` (応答コード有効), or
    /// only its HTTP status; unknown codes count as verdicts.
    pub fn reply_decides(self, body: &[u8]) -> bool {
        let Some(code) = self.code_of(body) else {
            return true;
        };
        match self {
            Self::Call => CallServiceType::ALL
                .into_iter()
                .find(|t| *t as u8 == code)
                .is_none_or(|t| t.handling().reply_decides),
            Self::Live => LiveServiceType::ALL
                .into_iter()
                .find(|t| *t as u8 == code)
                .is_none_or(|t| t.handling().reply_decides),
        }
    }
}
