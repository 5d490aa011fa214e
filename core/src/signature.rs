//! Signed, idempotent requests to partner servers (beyond the spec's siteKey).
//!
//! Every request the Nexmile server makes to a partner carries three headers a
//! partner may ignore:
//!
//! ```text
//! X-Nexmile-Request-Id: 6f1c…            same on every retry of one request
//! X-Nexmile-Timestamp:  1732320000        Unix seconds when this try was sent
//! X-Nexmile-Signature:  v1=<hex>          HMAC-SHA256(api_key, "{timestamp}.{request id}.{payload}")
//! ```
//!
//! `payload` is the POST body as sent (the percent-encoded JSON) or, for GET
//! requests, the query string after `?`. A partner recomputes the HMAC with
//! its siteApiKey, compares in constant time and refuses timestamps more than
//! [`MAX_SKEW_SECS`] away from its clock; it de-duplicates on the request ID.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const REQUEST_ID_HEADER: &str = "x-nexmile-request-id";
pub const TIMESTAMP_HEADER: &str = "x-nexmile-timestamp";
pub const SIGNATURE_HEADER: &str = "x-nexmile-signature";
/// How far a signature's timestamp may be from the verifier's clock.
pub const MAX_SKEW_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(api_key: &str, timestamp: i64, request_id: &str, payload: &str) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(api_key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(request_id.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac
}

/// The `X-Nexmile-Signature` value for one try of a request.
pub fn sign(api_key: &str, timestamp: i64, request_id: &str, payload: &str) -> String {
    let tag = mac(api_key, timestamp, request_id, payload)
        .finalize()
        .into_bytes();
    format!("v1={}", hex::encode(tag))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not `v1=<64 hex digits>`")]
    Malformed,
    #[error("the timestamp is more than {MAX_SKEW_SECS} s away from now")]
    Stale,
    #[error("the signature does not match the request")]
    Mismatch,
}

/// Checks a received request's signature, in constant time, against `now` (Unix seconds).
pub fn verify(
    api_key: &str,
    timestamp: i64,
    request_id: &str,
    payload: &str,
    signature: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let tag = signature
        .strip_prefix("v1=")
        .and_then(|hex_tag| hex::decode(hex_tag).ok())
        .filter(|tag| tag.len() == 32)
        .ok_or(SignatureError::Malformed)?;
    if (now - timestamp).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    mac(api_key, timestamp, request_id, payload)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
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

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let sig = sign("test.key", 1_700_000_000, "req-1", "result=0");
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64, "{sig}");
        let ok = |key, ts, id, body, now| verify(key, ts, id, body, &sig, now);
        assert_eq!(
            ok(
                "test.key",
                1_700_000_000,
                "req-1",
                "result=0",
                1_700_000_010
            ),
            Ok(())
        );
        assert_eq!(
            ok(
                "other.key",
                1_700_000_000,
                "req-1",
                "result=0",
                1_700_000_000
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok(
                "test.key",
                1_700_000_000,
                "req-2",
                "result=0",
                1_700_000_000
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok(
                "test.key",
                1_700_000_000,
                "req-1",
                "result=1",
                1_700_000_000
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok(
                "test.key",
                1_700_000_000,
                "req-1",
                "result=0",
                1_700_000_301
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("k", 0, "r", "", "sha1=00", 0),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn matches_an_independent_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        // Our message is "{ts}.{id}.{payload}"; choose parts that spell it.
        let sig = sign("Jefe", 0, "what do ya want for nothing?", "x");
        let mut direct = HmacSha256::new_from_slice(b"Jefe").unwrap();
        direct.update(b"0.what do ya want for nothing?.x");
        assert_eq!(
            sig,
            format!("v1={}", hex::encode(direct.finalize().into_bytes()))
        );
        let rfc = {
            let mut m = HmacSha256::new_from_slice(b"Jefe").unwrap();
            m.update(b"what do ya want for nothing?");
            hex::encode(m.finalize().into_bytes())
        };
        assert_eq!(
            rfc,
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
