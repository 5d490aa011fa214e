//! The optional X-Nexmile-* signature headers on requests from the server.

use axum::http::HeaderMap;
use nexmile_core::signature::{
    REQUEST_ID_HEADER, SIGNATURE_HEADER, SignedRequest, TIMESTAMP_HEADER, verify,
};

/// What the signature headers of a request say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    /// No signature headers: the spec does not require them, so accepted.
    Unsigned,
    Valid,
    Invalid(String),
}

impl SignatureCheck {
    /// Checks `request` at `now` (Unix seconds) against the site's signing
    /// secret (`None`: this site has none, so a signature cannot be checked).
    pub fn of(
        headers: &HeaderMap,
        secret: Option<&str>,
        request: &SignedRequest,
        now: i64,
    ) -> Self {
        let header = |name| headers.get(name).map(|v| v.to_str().unwrap_or(""));
        let (id, timestamp, signature) = (
            header(REQUEST_ID_HEADER),
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
        );
        // The request ID alone is only for de-duplication; a signature needs all three.
        let (Some(id), Some(timestamp), Some(signature)) = (id, timestamp, signature) else {
            return if timestamp.is_none() && signature.is_none() {
                Self::Unsigned
            } else {
                Self::Invalid("incomplete signature headers".into())
            };
        };
        let Some(secret) = secret else {
            return Self::Invalid("this site has no signing secret to check it with".into());
        };
        let Ok(timestamp) = timestamp.trim().parse::<i64>() else {
            return Self::Invalid("the timestamp is not a number".into());
        };
        match verify(&[secret], timestamp, id, request, signature.trim(), now) {
            Ok(()) => Self::Valid,
            Err(e) => Self::Invalid(e.to_string()),
        }
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self, Self::Invalid(_))
    }

    /// As the request log shows it.
    pub fn describe(&self) -> String {
        match self {
            Self::Unsigned => "unsigned".into(),
            Self::Valid => "valid".into(),
            Self::Invalid(why) => format!("invalid: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmile_core::signature::sign;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    const GET: SignedRequest = SignedRequest {
        method: "GET",
        host: "127.0.0.1:9000",
        path_and_query: "/auth?a=1",
        body: "",
    };

    #[test]
    fn unsigned_valid_and_invalid() {
        let now = 1_700_000_000;
        let secret = Some("k");
        assert_eq!(
            SignatureCheck::of(&HeaderMap::new(), secret, &GET, now),
            SignatureCheck::Unsigned
        );
        let only_id = headers(&[(REQUEST_ID_HEADER, "r1".into())]);
        assert_eq!(
            SignatureCheck::of(&only_id, secret, &GET, now),
            SignatureCheck::Unsigned
        );
        let signed = headers(&[
            (REQUEST_ID_HEADER, "r1".into()),
            (TIMESTAMP_HEADER, now.to_string()),
            (
                SIGNATURE_HEADER,
                sign(&["k".to_owned()], now, "r1", &GET).unwrap(),
            ),
        ]);
        assert_eq!(
            SignatureCheck::of(&signed, secret, &GET, now),
            SignatureCheck::Valid
        );
        let elsewhere = SignedRequest {
            path_and_query: "/auth?a=2",
            ..GET
        };
        assert!(SignatureCheck::of(&signed, secret, &elsewhere, now).is_invalid());
        assert!(SignatureCheck::of(&signed, Some("other"), &GET, now).is_invalid());
        assert!(SignatureCheck::of(&signed, None, &GET, now).is_invalid());
        let no_id = headers(&[(TIMESTAMP_HEADER, now.to_string())]);
        assert!(SignatureCheck::of(&no_id, secret, &GET, now).is_invalid());
    }
}
