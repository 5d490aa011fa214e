//! The log of every request the site received from, or sent to, the Nexmile server.

use nexmile_core::clock::UnixMillis;
use nexmile_core::datetime::{JST, WireDateTime};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;

/// One logged request, as `/log.json` and [`crate::PartnerDemo::requests`] give it.
/// Passwords (`userPw`, `pass`) are masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub id: i64,
    /// Local time (JST) `yyyy/MM/dd HH:mm:ss`.
    pub at: String,
    /// `in`: the Nexmile server called this site; `out`: this site called it.
    pub direction: String,
    pub method: String,
    pub path: String,
    /// The query string as received, without `?`.
    pub query: String,
    pub body: String,
    /// X-Nexmile-Request-Id, when sent.
    pub request_id: Option<String>,
    /// `valid`, `unsigned`, `invalid: <why>`, or `-` for requests this site sent.
    pub signature: String,
    /// `None` while the request is still being answered (or was never answered).
    pub reply_status: Option<u16>,
    pub reply_body: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogDirection {
    Incoming,
    Outgoing,
}

impl LogDirection {
    fn as_str(self) -> &'static str {
        match self {
            Self::Incoming => "in",
            Self::Outgoing => "out",
        }
    }
}

/// A request as it arrives (or leaves); its reply is added by [`Store::log_reply`].
pub(crate) struct NewLogEntry<'a> {
    pub at: UnixMillis,
    pub direction: LogDirection,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a str,
    pub request_id: Option<&'a str>,
    pub signature: &'a str,
}

/// The names whose values never reach the log.
const SECRET_NAMES: [&str; 3] = ["userPw", "pass", "password"];

/// `a=1&userPw=x` → `a=1&userPw=***`, leaving everything else as sent.
fn mask_passwords(text: &str) -> String {
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_NAMES.contains(&name) => {
                format!("{name}={}", nexmile_core::secret::REDACTED)
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl LoggedRequest {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let at: i64 = row.try_get("at")?;
        let status: Option<i64> = row.try_get("reply_status")?;
        Ok(Self {
            id: row.try_get("id")?,
            at: WireDateTime::from_unix_millis(UnixMillis(at), JST).to_string(),
            direction: row.try_get("direction")?,
            method: row.try_get("method")?,
            path: row.try_get("path")?,
            query: row.try_get("query")?,
            body: row.try_get("body")?,
            request_id: row.try_get("request_id")?,
            signature: row.try_get("signature")?,
            reply_status: status.and_then(|s| u16::try_from(s).ok()),
            reply_body: row.try_get("reply_body")?,
        })
    }
}

impl Store {
    /// Logs a request as it arrives; the ID to add its reply under.
    pub async fn log_request(&self, entry: &NewLogEntry<'_>) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO requests (at, direction, method, path, query, body, request_id, signature) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(entry.at.0)
        .bind(entry.direction.as_str())
        .bind(entry.method)
        .bind(entry.path)
        .bind(mask_passwords(entry.query))
        .bind(mask_passwords(entry.body))
        .bind(entry.request_id)
        .bind(entry.signature)
        .fetch_one(&self.pool)
        .await
    }

    /// Adds the reply to a logged request; `status` is `None` when no answer came.
    pub async fn log_reply(
        &self,
        id: i64,
        status: Option<u16>,
        body: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE requests SET reply_status = ?, reply_body = ? WHERE id = ?")
            .bind(status.map(i64::from))
            .bind(body)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The whole log, oldest first.
    pub async fn logged_requests(&self) -> Result<Vec<LoggedRequest>, sqlx::Error> {
        sqlx::query(
            "SELECT id, at, direction, method, path, query, body, request_id, signature, \
             reply_status, reply_body FROM requests ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(LoggedRequest::from_row)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_the_rest_kept_as_sent() {
        assert_eq!(
            mask_passwords("siteApiKey=k&userId=hanako&userPw=hanako%2Dpw&osType=1"),
            "siteApiKey=k&userId=hanako&userPw=***&osType=1"
        );
        assert_eq!(mask_passwords("user=a&pass=b"), "user=a&pass=***");
        assert_eq!(mask_passwords("%7B%22a%22%3A1%7D"), "%7B%22a%22%3A1%7D");
        assert_eq!(mask_passwords(""), "");
    }
}
