//! The plain-text replies of the partner interface.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexmile_core::codec::encode_refused_reply;

/// A reply body in the partner format (`result=…&…`) with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: String,
}

/// The result code of a refusal the user is meant to read (§3.2.1 ④'s example).
const REFUSED: i64 = 1;
/// The result code of a request refused for who sent it (key, signature, form).
const REJECTED: i64 = -1;

impl Reply {
    pub fn ok(body: impl Into<String>) -> Self {
        Self {
            status: StatusCode::OK,
            body: body.into(),
        }
    }

    /// HTTP 200 with no body: all a status-only request needs.
    pub fn empty() -> Self {
        Self::ok("")
    }

    /// `result=1&message=…`: the user is told why.
    pub fn refused(message: &str) -> Self {
        Self::ok(encode_refused_reply(REFUSED, Some(message)))
    }

    /// `result=-1&message=…`: the request itself is not acceptable.
    pub fn rejected(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            body: encode_refused_reply(REJECTED, Some(message)),
        }
    }

    pub fn with_status(self, status: StatusCode) -> Self {
        Self { status, ..self }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.body,
        )
            .into_response()
    }
}

/// A database failure while answering: HTTP 500, logged.
pub(crate) struct SiteFailure(sqlx::Error);

impl From<sqlx::Error> for SiteFailure {
    fn from(e: sqlx::Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for SiteFailure {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "database failure");
        Reply::rejected(
            StatusCode::INTERNAL_SERVER_ERROR,
            "サイト内部でエラーが発生しました。",
        )
        .into_response()
    }
}

pub(crate) type Answer = Result<Reply, SiteFailure>;
