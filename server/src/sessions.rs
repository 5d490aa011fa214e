//! Device session tokens (security review M13). A token is issued at
//! activation and the store keeps only its SHA-256. It is valid for
//! `session_ttl_days` after it was issued, and a hello that shows it once it
//! is older than `session_rotate_after_sec` gets a new one in the welcome.
//! The token a rotation replaced stays valid for [`GRACE`], so an app that
//! connects twice at once, or stops before saving the new token, is not
//! signed out. An administrator can revoke a user's tokens at once.

use std::sync::Arc;

use crate::config::ServerSection;
use crate::state::Ctx;
use crate::store::{Device, StoreError};

/// How long a replaced token still works.
const GRACE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// 256 random bits as hex: a session token or a device secret.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    hex::encode(bytes)
}

/// What the store keeps of a secret: its SHA-256, never the secret. The
/// secrets are 256 random bits, so a fast hash is enough (no guessing).
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The configured lifetimes, in the server clock's milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub ttl_ms: i64,
    pub rotate_after_ms: i64,
}

impl SessionPolicy {
    pub fn of(server: &ServerSection) -> Self {
        Self {
            ttl_ms: i64::from(server.session_ttl_days).saturating_mul(24 * 60 * 60 * 1000),
            rotate_after_ms: i64::try_from(server.session_rotate_after_sec)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        }
    }
}

/// Which of a device's tokens was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The current one, issued at this time (server clock, ms).
    Current { issued_at: i64 },
    /// The one the last rotation replaced, within its grace.
    Replaced,
}

/// The device a session token belongs to, if it is valid now.
pub async fn device_of_token(
    ctx: &Ctx,
    token: &str,
) -> Result<Option<(Device, Shown)>, StoreError> {
    let policy = SessionPolicy::of(&ctx.config.server);
    let now = ctx.clock.now().0;
    ctx.store
        .device_by_session(&secret_hash(token), now.saturating_sub(policy.ttl_ms), now)
        .await
}

/// At a hello: a new token when the shown one is current and old enough
/// (`None` otherwise, or when another connection rotated it first).
pub async fn rotate_if_due(
    ctx: &Arc<Ctx>,
    device: &Device,
    shown: Shown,
) -> Result<Option<String>, StoreError> {
    let Shown::Current { issued_at } = shown else {
        return Ok(None);
    };
    let policy = SessionPolicy::of(&ctx.config.server);
    let now = ctx.clock.now().0;
    if now.saturating_sub(issued_at) < policy.rotate_after_ms {
        return Ok(None);
    }
    let token = new_secret();
    let rotated = ctx
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
