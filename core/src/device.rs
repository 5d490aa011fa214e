//! §3.1.2 deviceToken (decision 15): a UUID made once per installation, not
//! per profile, and kept until the app is removed. Core has no randomness of
//! its own: the caller passes 16 random bytes once and stores the result
//! beside the profiles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceToken(Uuid);

/// Text that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a deviceToken is a UUID such as 106f7a7d-e11c-4f05-8e8c-54b459aa202e")]
pub struct InvalidDeviceToken;

impl DeviceToken {
    /// A new random (version 4) token from 16 bytes of the OS's randomness.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

impl FromStr for DeviceToken {
    type Err = InvalidDeviceToken;
    /// Reads any UUID: tokens made by the spec's own apps need not be v4.
    fn from_str(text: &str) -> Result<Self, InvalidDeviceToken> {
        Uuid::try_parse(text.trim())
            .map(Self)
            .map_err(|_| InvalidDeviceToken)
    }
}

impl fmt::Display for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for DeviceToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_a_random_uuid_that_reads_back_unchanged() {
        // Decision 15: made once from randomness, then only read back.
        let token = DeviceToken::from_random_bytes([7; 16]);
        let text = token.to_string();
        assert_eq!(text, "07070707-0707-4707-8707-070707070707");
        assert_eq!(text.parse::<DeviceToken>(), Ok(token));
        let stored = serde_json::to_string(&token).unwrap();
        assert_eq!(serde_json::from_str::<DeviceToken>(&stored).unwrap(), token);
        // The spec's example token is accepted as it is.
        let example: DeviceToken = "106f7a7d-e11c-ef05-2e8c-54b459aa202e".parse().unwrap();
        assert_eq!(example.to_string(), "106f7a7d-e11c-ef05-2e8c-54b459aa202e");
        assert_eq!("not-a-uuid".parse::<DeviceToken>(), Err(InvalidDeviceToken));
        assert_ne!(DeviceToken::from_random_bytes([1; 16]), token);
    }
}
