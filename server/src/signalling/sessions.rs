//! Device session tokens (security review M13). A token is issued at
//! activation and the store keeps only its SHA-256. It is valid for
//! `session_ttl_days` after it was issued, and a hello that shows it once it
//! is older than `session_rotate_after_sec` gets a new one in the welcome.
//! The token a rotation replaced stays valid for [`GRACE`], so an app that
//! connects twice at once, or stops before saving the new token, is not
//! signed out. An administrator can revoke a user's tokens at once.

use crate::config::ServerSection;
use crate::secrets::{new_secret, secret_hash};
use crate::services::Services;
use crate::store::{Device, Shown, StoreError};

/// How long a replaced token still works.
const GRACE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The configured lifetimes, in the server clock's milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionPolicy {
    pub ttl_ms: i64,
    pub rotate_after_ms: i64,
}

impl SessionPolicy {
    pub(crate) fn of(server: &ServerSection) -> Self {
        Self {
            ttl_ms: i64::from(server.session_ttl_days).saturating_mul(24 * 60 * 60 * 1000),
            rotate_after_ms: i64::try_from(server.session_rotate_after_sec)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        }
    }
}

/// The device a session token belongs to, if it is valid now.
pub(crate) async fn device_of_token(
    services: &Services,
    token: &str,
) -> Result<Option<(Device, Shown)>, StoreError> {
    let policy = SessionPolicy::of(&services.config.server);
    let now = services.clock.now().0;
    services
        .store
        .device_by_session(&secret_hash(token), now.saturating_sub(policy.ttl_ms), now)
        .await
}

/// The device whose session token a request carries as
/// `Authorization: Bearer …`, if that token is valid now.
pub(crate) async fn device_of_bearer(
    services: &Services,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Device>, StoreError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return Ok(None);
    };
    Ok(device_of_token(services, token)
        .await?
        .map(|(device, _)| device))
}

/// At a hello: a new token when the shown one is current and old enough
/// (`None` otherwise, or when another connection rotated it first).
pub(crate) async fn rotate_if_due(
    services: &Services,
    device: &Device,
    shown: Shown,
) -> Result<Option<String>, StoreError> {
    let Shown::Current { issued_at } = shown else {
        return Ok(None);
    };
    let policy = SessionPolicy::of(&services.config.server);
    let now = services.clock.now().0;
    if now.saturating_sub(issued_at) < policy.rotate_after_ms {
        return Ok(None);
    }
    let token = new_secret();
    let rotated = services
        .store
        .rotate_session(
            device,
            &secret_hash(&token),
            now,
            now.saturating_add(GRACE_MS),
        )
        .await?;
    Ok(rotated.then_some(token))
}
