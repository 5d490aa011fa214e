//! The STUN and TURN servers a client's media may use, given in its
//! welcome. TURN credentials follow coturn's shared-secret scheme (its
//! `use-auth-secret`, the "TURN REST API" draft): the username is the
//! credential's expiry in Unix seconds and a label, the password the
//! base64 HMAC-SHA1 of that username under the secret both servers know,
//! so the TURN server checks it without asking this one.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use nexmile_core::signal::IceServer;

use crate::config::IceSection;

/// The servers for a client known as `label`, its TURN credential good
/// until `now_unix` plus the configured lifetime.
pub(crate) fn ice_servers(section: &IceSection, label: &str, now_unix: u64) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !section.stun.is_empty() {
        servers.push(IceServer {
            urls: section.stun.clone(),
            username: None,
            credential: None,
        });
    }
    if let (false, Some(secret)) = (section.turn.is_empty(), &section.turn_secret) {
        // A colon would end the expiry early in the TURN server's reading.
        let label: String = label.chars().filter(|c| *c != ':').collect();
        let username = format!("{}:{label}", now_unix + section.turn_ttl_sec);
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(username.as_bytes());
        let credential =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        servers.push(IceServer {
            urls: section.turn.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_are_coturns_shared_secret_scheme() {
        let section = IceSection {
            stun: vec!["stun:192.0.2.1:3478".into()],
            turn: vec!["turn:192.0.2.1:3478?transport=udp".into()],
            turn_secret: Some("coturn-secret".into()),
            turn_ttl_sec: 600,
        };
        let servers = ice_servers(&section, "hana:ko", 1_699_999_400);
        assert_eq!(servers[0].urls, ["stun:192.0.2.1:3478"]);
        assert_eq!(servers[0].username, None);
        assert_eq!(servers[1].username.as_deref(), Some("1700000000:hanako"));
        // `printf %s 1700000000:hanako | openssl dgst -sha1 -hmac coturn-secret -binary | base64`
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("zg4d7stT3ot308jOljT9w+IyjoU=")
        );
        assert!(ice_servers(&IceSection::default(), "hanako", 0).is_empty());
    }
}
