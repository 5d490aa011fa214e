//! The server's random secrets (session tokens, device secrets, keys) and
//! what the store keeps of them.

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
