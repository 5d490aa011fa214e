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
    /// The Nexmile server, for UpdateUserBalance after an auto-charge.
    pub nexmile_url: String,
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
            nexmile_url: "http://127.0.0.1:7443".into(),
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
            .field("nexmile_url", &self.nexmile_url)
            .field("app_link_base", &self.app_link_base)
            .field("calling_timeout_sec", &self.calling_timeout_sec)
            .field("auto_charge_points", &self.auto_charge_points)
            .finish()
    }
}
