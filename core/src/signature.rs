//! Signed, idempotent requests to partner servers (beyond the spec's siteKey).
//!
//! Every request the Nexmile server makes to a partner carries headers a
//! partner may ignore:
//!
//! ```text
//! X-Nexmile-Request-Id: 6f1c…            same on every retry of one request
//! X-Nexmile-Timestamp:  1732320000        Unix seconds when this try was sent
//! X-Nexmile-Signature:  v2=<hex>[,v2=<hex>]
//! ```
//!
//! Each `v2` is HMAC-SHA256(signing secret,
//! `"{timestamp}.{request id}.{METHOD}.{host}.{path and query}.{body}"`), one
//! per secret the site has configured (two while a secret is rotated). The
//! secret is the site's own: unlike the siteApiKey it never travels in a
//! request, and the signature covers where the request goes, not only what it
//! says. A partner recomputes it with its secret for the method, the `Host`
//! it was addressed by, the path and raw query it received and the body as
//! received, accepts any one match (compared in constant time), refuses
//! timestamps more than [`MAX_SKEW_SECS`] from its clock, and de-duplicates
//! on the request ID.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const REQUEST_ID_HEADER: &str = "x-nexmile-request-id";
pub const TIMESTAMP_HEADER: &str = "x-nexmile-timestamp";
pub const SIGNATURE_HEADER: &str = "x-nexmile-signature";
/// How far a signature's timestamp may be from the verifier's clock.
pub const MAX_SKEW_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// What a signature covers of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// `host` or `host:port`, as in the URL and the `Host` header.
    pub host: &'a str,
    /// `/path?query`, the query exactly as sent.
    pub path_and_query: &'a str,
    /// The body exactly as sent; empty for a GET.
    pub body: &'a str,
}

fn mac(secret: &str, timestamp: i64, request_id: &str, request: &SignedRequest) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    for (index, part) in [
        timestamp.to_string().as_str(),
        request_id,
        request.method,
        request.host,
        request.path_and_query,
        request.body,
    ]
    .into_iter()
    .enumerate()
    {
        if index > 0 {
            mac.update(b".");
        }
        mac.update(part.as_bytes());
    }
    mac
}

/// The `X-Nexmile-Signature` value for one try of a request: a `v2=` per
/// secret; `None` without secrets (the request then goes unsigned).
pub fn sign(
    secrets: &[String],
    timestamp: i64,
    request_id: &str,
    request: &SignedRequest,
) -> Option<String> {
    (!secrets.is_empty()).then(|| {
        secrets
            .iter()
            .map(|secret| {
                let tag = mac(secret, timestamp, request_id, request)
                    .finalize()
                    .into_bytes();
                format!("v2={}", hex::encode(tag))
            })
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not `v2=<64 hex digits>`, comma-separated")]
    Malformed,
    #[error("the timestamp is more than {MAX_SKEW_SECS} s away from now")]
    Stale,
    #[error("the signature does not match the request")]
    Mismatch,
}

/// Checks a received request's signature header, in constant time, against
/// `now` (Unix seconds): one of its `v2` values must match one of `secrets`.
pub fn verify(
    secrets: &[&str],
    timestamp: i64,
    request_id: &str,
    request: &SignedRequest,
    header: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let tags = header
        .split(',')
        .map(|one| {
            one.trim()
                .strip_prefix("v2=")
                .and_then(|hex_tag| hex::decode(hex_tag).ok())
                .filter(|tag| tag.len() == 32)
                .ok_or(SignatureError::Malformed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if (now - timestamp).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let matched = secrets.iter().any(|secret| {
        tags.iter().any(|tag| {
            mac(secret, timestamp, request_id, request)
                .verify_slice(tag)
                .is_ok()
        })
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Compares two secrets (siteKey, tokens) without leaking where they differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    // Lengths are not secret; contents are.
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POST: SignedRequest = SignedRequest {
        method: "POST",
        host: "partner.example:8443",
        path_and_query: "/CallService?siteKey=test.key",
        body: "%7B%7D",
    };

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let secrets = vec!["s3cret".to_owned()];
        let header = sign(&secrets, 1_700_000_000, "req-1", &POST).unwrap();
        assert!(
            header.starts_with("v2=") && header.len() == 3 + 64,
            "{header}"
        );
        let check = |secret: &str, ts, id, request: &SignedRequest, now| {
            verify(&[secret], ts, id, request, &header, now)
        };
        assert_eq!(
            check("s3cret", 1_700_000_000, "req-1", &POST, 1_700_000_010),
            Ok(())
        );
        let mismatch = Err(SignatureError::Mismatch);
        assert_eq!(
            check("other", 1_700_000_000, "req-1", &POST, 1_700_000_000),
            mismatch
        );
        assert_eq!(
            check("s3cret", 1_700_000_001, "req-1", &POST, 1_700_000_000),
            mismatch
        );
        assert_eq!(
            check("s3cret", 1_700_000_000, "req-2", &POST, 1_700_000_000),
            mismatch
        );
        // Replayed to another method, host, path, query or with another body.
        for moved in [
            SignedRequest {
                method: "GET",
                ..POST
            },
            SignedRequest {
                host: "partner.example",
                ..POST
            },
            SignedRequest {
                path_and_query: "/payment?siteKey=test.key",
                ..POST
            },
            SignedRequest {
                path_and_query: "/CallService?siteKey=test.kex",
                ..POST
            },
            SignedRequest {
                body: "%7B%20%7D",
                ..POST
            },
        ] {
            assert_eq!(
                check("s3cret", 1_700_000_000, "req-1", &moved, 1_700_000_000),
                mismatch
            );
        }
        assert_eq!(
            check("s3cret", 1_700_000_000, "req-1", &POST, 1_700_000_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&["k"], 0, "r", &POST, "v1=00", 0),
            Err(SignatureError::Malformed)
        );
        assert_eq!(sign(&[], 0, "r", &POST), None, "no secret, no signature");
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let both = vec!["new".to_owned(), "old".to_owned()];
        let header = sign(&both, 10, "r", &POST).unwrap();
        assert_eq!(header.matches("v2=").count(), 2);
        assert_eq!(verify(&["old"], 10, "r", &POST, &header, 10), Ok(()));
        assert_eq!(verify(&["new"], 10, "r", &POST, &header, 10), Ok(()));
        assert_eq!(
            verify(&["older"], 10, "r", &POST, &header, 10),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn matches_an_independent_hmac_sha256() {
        let request = SignedRequest {
            method: "GET",
            host: "h",
            path_and_query: "/p?q=1",
            body: "",
        };
        let header = sign(&["Jefe".to_owned()], 0, "id", &request).unwrap();
        let mut direct = HmacSha256::new_from_slice(b"Jefe").unwrap();
        direct.update(b"0.id.GET.h./p?q=1.");
        assert_eq!(
            header,
            format!("v2={}", hex::encode(direct.finalize().into_bytes()))
        );
        // The primitive itself: RFC 4231 test case 2.
        let mut rfc = HmacSha256::new_from_slice(b"Jefe").unwrap();
        rfc.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(rfc.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_equal("test.key", "test.key"));
        assert!(!secrets_equal("test.key", "test.kez"));
        assert!(!secrets_equal("test.key", "test.key2"));
    }
}
