//! What a demo site is started with.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

/// The settings of one partner demo site. [`Default`] gives the command's
/// defaults; [`DemoConfig::in_memory`] the usual test set-up.
#[derive(Clone)]
pub struct DemoConfig {
    /// Where to listen; port 0 picks a free one ([`crate::PartnerDemo::addr`] tells which).
    pub listen: SocketAddr,
    /// `sqlite://path` (created if missing) or `sqlite::memory:`.
    pub database: String,
    /// The site code the app links carry (`site=`).
    pub site_code: String,
    /// siteApiKey / siteKey: what the Nexmile server must send, and the HMAC key.
    pub api_key: String,
    /// siteToken: the site's fixed ID in requests both ways.
    pub site_token: String,
    /// The secret the Nexmile server signs this site's requests with (its
    /// `signing_secrets`); it never travels in a request.
    pub signing_secret: Option<String>,
    /// The Nexmile server, for UpdateUserBalance after an auto-charge.
    pub nexmile_url: String,
    /// A PEM certificate authority that vouches for the Nexmile server besides
    /// the system's roots (a private deployment; the tests' own CA).
    pub nexmile_ca: Option<String>,
    /// The https base of app links (`None`: the spec's); `nexmile://` for the custom scheme.
    pub app_link_base: Option<String>,
    /// callService.callingTimeout: ringing time, 10–180 s.
    pub calling_timeout_sec: u32,
    /// Points added by one auto-charge.
    pub auto_charge_points: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 9000)),
            database: "sqlite://var/partner-demo.db".into(),
            site_code: "newsite1".into(),
            api_key: "test.key".into(),
            site_token: "site-token-1".into(),
            signing_secret: None,
            nexmile_url: "https://127.0.0.1:7443".into(),
            nexmile_ca: None,
            app_link_base: None,
            calling_timeout_sec: 30,
            auto_charge_points: 1000,
        }
    }
}

impl DemoConfig {
    /// The defaults on a free loopback port with a fresh in-memory database.
    pub fn in_memory() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            database: "sqlite::memory:".into(),
            ..Self::default()
        }
    }
}

/// Shows everything but the api key, which is the site's password.
impl fmt::Debug for DemoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoConfig")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("site_code", &self.site_code)
            .field("api_key", &nexmile_core::secret::REDACTED)
            .field("site_token", &self.site_token)
            .field("signing_secret", &nexmile_core::secret::REDACTED)
            .field("nexmile_url", &self.nexmile_url)
            .field("nexmile_ca", &self.nexmile_ca.is_some())
            .field("app_link_base", &self.app_link_base)
            .field("calling_timeout_sec", &self.calling_timeout_sec)
            .field("auto_charge_points", &self.auto_charge_points)
            .finish()
    }
}
