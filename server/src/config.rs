//! The server's TOML configuration: where it listens, its database, and the
//! partner sites it serves. The built-in site `nexmile` needs no entry.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    #[serde(default)]
    pub site: Vec<SiteConfig>,
    /// The mobile and desktop apps: app-link verification and install pages.
    #[serde(default)]
    pub apps: AppsSection,
    /// The SkyWay Channel API surface (`/v1/json-rpc`); off without tokens.
    #[serde(default)]
    pub skyway: SkywaySection,
    /// The social stream feeds of lives' comments (`/socialstream/…`).
    #[serde(default)]
    pub socialstream: SocialStreamSection,
    /// The ImageFlux Live Streaming API surface (`/api/login`, `/api/schedule`, …).
    #[serde(default)]
    pub imageflux: ImageFluxSection,
    /// Rates and connection counts allowed per address and per device.
    #[serde(default)]
    pub limits: crate::limits::LimitsSection,
    /// Where the media engine listens and what clients are told of it.
    #[serde(default)]
    pub media: MediaSection,
    /// The STUN and TURN servers handed to clients.
    #[serde(default)]
    pub ice: IceSection,
}

/// The media engine's addresses and ports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// The addresses media sockets bind, each an address of this machine
    /// that clients reach (directly, or through `public_ips`).
    #[serde(default = "default_media_ips")]
    pub ips: Vec<IpAddr>,
    /// What clients are told instead, in the order of `ips`: the public
    /// address a 1:1 NAT maps to each, port for port (a cloud server's
    /// elastic IP). Empty: `ips` themselves.
    #[serde(default)]
    pub public_ips: Vec<IpAddr>,
    /// One UDP port for all media (one firewall rule); without it each
    /// call or live binds a free port of its own.
    #[serde(default)]
    pub udp_port: Option<u16>,
    /// ICE over TCP on this port, for clients whose network drops UDP
    /// (RFC 6544 passive candidates).
    #[serde(default)]
    pub tcp_port: Option<u16>,
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            ips: default_media_ips(),
            public_ips: Vec::new(),
            udp_port: None,
            tcp_port: None,
        }
    }
}

impl MediaSection {
    /// The media engine's network configuration.
    pub fn network(&self) -> nexmile_sfu::NetworkConfig {
        let addresses = self
            .ips
            .iter()
            .enumerate()
            .map(|(i, bind)| nexmile_sfu::MediaAddress {
                bind: *bind,
                advertised: self.public_ips.get(i).copied().unwrap_or(*bind),
            })
            .collect();
        nexmile_sfu::NetworkConfig {
            addresses,
            udp_port: self.udp_port,
            tcp_port: self.tcp_port,
        }
    }
}

/// STUN and TURN servers for clients, TURN with coturn's shared-secret
/// credentials (its `use-auth-secret` and `static-auth-secret`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceSection {
    /// `stun:host:port` URLs: clients learn their public address.
    #[serde(default)]
    pub stun: Vec<String>,
    /// `turn:host:port?transport=udp|tcp` and `turns:host:443?transport=tcp`
    /// URLs: a relay for networks that reach nothing else.
    #[serde(default)]
    pub turn: Vec<String>,
    /// coturn's `static-auth-secret`; each client is given a username
    /// `<expiry>:<user>` and its HMAC-SHA1 under this secret as password.
    #[serde(default)]
    pub turn_secret: Option<String>,
    /// How long a client's TURN credential is good for.
    #[serde(default = "twelve_hours")]
    pub turn_ttl_sec: u64,
}

impl Default for IceSection {
    fn default() -> Self {
        Self {
            stun: Vec::new(),
            turn: Vec::new(),
            turn_secret: None,
            turn_ttl_sec: twelve_hours(),
        }
    }
}

fn twelve_hours() -> u64 {
    12 * 60 * 60
}

/// ImageFlux: token lifetime and the systems (tenants) created at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFluxSection {
    /// How long a login token is good for.
    #[serde(default = "a_day_in_seconds")]
    pub token_ttl_seconds: u64,
    /// Systems made at start if missing (their access code and master user);
    /// later changes through the API are kept.
    #[serde(default)]
    pub system: Vec<ImageFluxSystem>,
    /// The key access codes are hashed under (HMAC-SHA256); without it one
    /// is made at first start and kept in the database. Kept apart from the
    /// database, it keeps a stolen copy from being searched for codes.
    #[serde(default)]
    pub access_code_key: Option<String>,
}

impl Default for ImageFluxSection {
    fn default() -> Self {
        Self {
            token_ttl_seconds: a_day_in_seconds(),
            system: Vec::new(),
            access_code_key: None,
        }
    }
}

fn a_day_in_seconds() -> u64 {
    24 * 60 * 60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFluxSystem {
    pub name: String,
    pub access_code: String,
    pub master_name: String,
    pub master_email: String,
    pub master_password: String,
}

/// How readers of the social stream are paced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialStreamSection {
    /// The refreshInterval (seconds) answered when the server is not busy.
    #[serde(default = "ten")]
    pub refresh_interval: u32,
    /// Readers waiting at once beyond which the interval grows: one more
    /// step of `refresh_interval` per this many (up to 60 s).
    #[serde(default = "five_hundred")]
    pub readers_per_step: u32,
}

impl Default for SocialStreamSection {
    fn default() -> Self {
        Self {
            refresh_interval: ten(),
            readers_per_step: five_hundred(),
        }
    }
}

fn ten() -> u32 {
    10
}

fn five_hundred() -> u32 {
    500
}

/// SkyWay Channel API: who may call it and how often.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkywaySection {
    /// The SkyWay Admin Auth Tokens this deployment accepts (`Bearer …`).
    #[serde(default)]
    pub admin_tokens: Vec<String>,
    /// Method calls allowed per calendar month (JST) before 429; none = no limit.
    #[serde(default)]
    pub monthly_limit: Option<u64>,
}

/// What the app-link pages and `/.well-known/*` say about the installed apps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppsSection {
    /// Android: the package whose signing certificates may open app links
    /// (`assetlinks.json`).
    #[serde(default)]
    pub android_package: Option<String>,
    /// SHA-256 fingerprints of its signing certificates, `AA:BB:…` (32 bytes).
    #[serde(default)]
    pub android_sha256_cert_fingerprints: Vec<String>,
    /// iOS: `TEAMID.bundle.id` of the apps that open app links
    /// (`apple-app-site-association`).
    #[serde(default)]
    pub ios_app_ids: Vec<String>,
    /// Where the install page sends each platform.
    #[serde(default)]
    pub android_store_url: Option<String>,
    #[serde(default)]
    pub ios_store_url: Option<String>,
    #[serde(default)]
    pub desktop_download_url: Option<String>,
    /// The path of this host's app links (the https base's path), default
    /// `/sbxapp` as in the spec's `https://sbx.stream-works.biz/sbxapp`.
    #[serde(default)]
    pub link_path: Option<String>,
}

impl AppsSection {
    pub fn link_path(&self) -> &str {
        self.link_path
            .as_deref()
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| p.starts_with('/') && p.len() > 1)
            .unwrap_or("/sbxapp")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: SocketAddr,
    pub public_url: String,
    /// `sqlite://path` (created if missing), `sqlite::memory:` or `postgres://…`.
    pub database: String,
    /// `Authorization: Bearer <token>` for `/admin/*`; without it the admin API is off.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// Where `/admin/*` is served instead of `listen` (e.g. a loopback or
    /// private-network address), with the same TLS; the public listener then
    /// answers 404 there. Without it `/admin/*` shares `listen`.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// A device's session token works this many days after it was issued;
    /// an app in use gets a new one well before (see below).
    #[serde(default = "ninety")]
    pub session_ttl_days: u32,
    /// A hello with a token older than this gets a new one in the welcome.
    #[serde(default = "a_day_in_seconds")]
    pub session_rotate_after_sec: u64,
    /// How fast the server's clock runs against real time: 1 in production;
    /// tests run billing and deadlines faster with a larger rate.
    #[serde(default = "one")]
    pub clock_rate: f64,
    /// Where serverSideRecording lives are written, one folder per site.
    #[serde(default = "default_recordings")]
    pub recordings: std::path::PathBuf,
    /// The web version's built files (`ui/dist-web`), served under `/web/`.
    #[serde(default = "default_web_dir")]
    pub web_dir: std::path::PathBuf,
    /// HTTPS and WSS served by the server itself. Without it the server
    /// speaks plain HTTP, for a TLS-terminating reverse proxy in front of it
    /// (`docs/deploy/`), or on loopback.
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Reverse proxies in front of the server: from these peers the client's
    /// address is the last one in `X-Forwarded-For` (for the limits).
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    /// Whether the built-in site `nexmile` (app phone numbers, no partner)
    /// registers devices; a deployment for partner sites only turns it off.
    #[serde(default = "yes")]
    pub builtin_site: bool,
    /// `Strict-Transport-Security: max-age=…` on every answer when
    /// `public_url` is https (directly or through a proxy); 0 sends none.
    #[serde(default = "a_year_in_seconds")]
    pub hsts_max_age: u64,
}

/// The certificate the server presents, reloaded when either file changes
/// (a renewal by certbot or an ACME client needs no restart).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM: the certificate, then its chain.
    pub cert: std::path::PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
    /// A plain-HTTP listener that answers every request with a permanent
    /// redirect to the same path at `public_url` (usually port 80).
    #[serde(default)]
    pub redirect_listen: Option<SocketAddr>,
}

fn yes() -> bool {
    true
}

fn ninety() -> u32 {
    90
}

fn a_year_in_seconds() -> u64 {
    365 * 24 * 60 * 60
}

fn default_web_dir() -> std::path::PathBuf {
    "ui/dist-web".into()
}

fn default_recordings() -> std::path::PathBuf {
    "var/recordings".into()
}

fn default_media_ips() -> Vec<IpAddr> {
    vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
}

fn one() -> f64 {
    1.0
}

/// One partner site (the I/F 設定仕様書 of chapter 3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site code of app links.
    pub code: String,
    /// Shown to the callee before the caller's name (サイト名, §4.3.1 callerIdPrefix).
    #[serde(default)]
    pub name: Option<String>,
    /// siteApiKey / siteKey.
    pub api_key: String,
    /// siteToken.
    pub token: String,
    /// HMAC keys of `X-Nexmile-Signature` (shared with the partner, never
    /// sent): every request carries a signature with each, so while a
    /// secret is rotated list the new and the old. None: requests go unsigned.
    #[serde(default)]
    pub signing_secrets: Vec<String>,
    pub auth_url: String,
    #[serde(default)]
    pub call_service_url: Option<String>,
    #[serde(default)]
    pub live_service_url: Option<String>,
    #[serde(default)]
    pub payment_url: Option<String>,
    #[serde(default)]
    pub not_installed_url: Option<String>,
    /// The site's effect files (wallpapers/, face-filters/, gifts/, models/),
    /// served to its users; relative paths are from the server's directory.
    #[serde(default)]
    pub effects_dir: Option<std::path::PathBuf>,
    /// Whether the comments of this site's lives are readable by anyone
    /// with the liveToken as a social stream (`/socialstream/get.json/<liveToken>/…`).
    #[serde(default)]
    pub social_stream: bool,
    /// The site's stamps and gifts for lives (`[[site.gift]]`), in
    /// registration order, with their visibility (§5.4.5).
    #[serde(default, rename = "gift")]
    pub gifts: Vec<nexmile_core::live::CatalogueEntry>,
}

impl SiteConfig {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.code)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("site code {0:?} is configured twice or is the built-in `nexmile`")]
    DuplicateSite(String),
    #[error("site {site:?}: its {what} is empty or the same as another site's")]
    SiteCredential { site: String, what: &'static str },
    #[error(
        "admin_token is empty: give a long random one, or leave it out to turn the admin API off"
    )]
    EmptyAdminToken,
    #[error("clock_rate must be positive")]
    ClockRate,
    #[error("media.public_ips has {public} addresses for {bound} in media.ips")]
    PublicIps { public: usize, bound: usize },
    #[error("ice.turn needs ice.turn_secret (coturn's static-auth-secret)")]
    TurnSecret,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: "config".into(),
            source: Box::new(source),
        })?;
        let mut codes = std::collections::HashSet::from(["nexmile"]);
        let mut credentials = std::collections::HashSet::new();
        for site in &config.site {
            if !codes.insert(site.code.as_str()) {
                return Err(ConfigError::DuplicateSite(site.code.clone()));
            }
            // A partner is known by its api_key (siteKey) and token: an empty
            // or shared one would let one site act as another (review L4).
            for (what, value) in [("api_key", &site.api_key), ("token", &site.token)] {
                if value.trim().is_empty() || !credentials.insert(value.as_str()) {
                    return Err(ConfigError::SiteCredential {
                        site: site.code.clone(),
                        what,
                    });
                }
            }
            if site.signing_secrets.iter().any(|s| s.trim().is_empty()) {
                return Err(ConfigError::SiteCredential {
                    site: site.code.clone(),
                    what: "signing_secrets",
                });
            }
        }
        if config
            .server
            .admin_token
            .as_ref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(ConfigError::EmptyAdminToken);
        }
        if config.server.clock_rate.is_nan() || config.server.clock_rate <= 0.0 {
            return Err(ConfigError::ClockRate);
        }
        let media = &config.media;
        if !media.public_ips.is_empty() && media.public_ips.len() != media.ips.len() {
            return Err(ConfigError::PublicIps {
                public: media.public_ips.len(),
                bound: media.ips.len(),
            });
        }
        let ice = &config.ice;
        if !ice.turn.is_empty()
            && ice
                .turn_secret
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
        {
            return Err(ConfigError::TurnSecret);
        }
        Ok(config)
    }

    pub fn site(&self, code: &str) -> Option<&SiteConfig> {
        self.site.iter().find(|s| s.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_parses_with_its_gift_catalogue() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/nexmile.toml");
        let config = Config::load(&path).unwrap();
        let gifts = &config.site[0].gifts;
        assert_eq!(gifts.len(), 4);
        assert!(gifts[2].hidden);
        assert_eq!(gifts[1].item.name, "ハート");
        assert_eq!(gifts[1].item.kind, nexmile_core::signal::ItemKind::Gift);
    }

    #[test]
    fn the_issue_example_parses_and_bad_files_say_why() {
        let config = Config::parse(
            r#"
[server]
listen = "127.0.0.1:7443"
public_url = "http://127.0.0.1:7443"
database = "sqlite://var/nexmile.db"
[[site]]
code = "newsite1"
api_key = "test.key"
token = "site-token-1"
auth_url = "http://127.0.0.1:9000/auth"
call_service_url = "http://127.0.0.1:9000/CallService"
live_service_url = "http://127.0.0.1:9000/liveService"
payment_url = "http://127.0.0.1:9000/payment"
not_installed_url = "http://127.0.0.1:9000/notInstalled"
"#,
        )
        .unwrap();
        assert_eq!(config.site("newsite1").unwrap().display_name(), "newsite1");
        assert_eq!(config.server.clock_rate, 1.0);
        let e = Config::parse("[server]\nlisten = 1").unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let twice = "[server]\nlisten=\"127.0.0.1:1\"\npublic_url=\"x\"\ndatabase=\"sqlite::memory:\"\n[[site]]\ncode=\"nexmile\"\napi_key=\"k\"\ntoken=\"t\"\nauth_url=\"u\"\n";
        let shared = "[server]\nlisten=\"127.0.0.1:1\"\npublic_url=\"x\"\ndatabase=\"sqlite::memory:\"\n\
            [[site]]\ncode=\"a\"\napi_key=\"k\"\ntoken=\"t1\"\nauth_url=\"u\"\n\
            [[site]]\ncode=\"b\"\napi_key=\"k\"\ntoken=\"t2\"\nauth_url=\"u\"\n";
        assert!(matches!(
            Config::parse(shared),
            Err(ConfigError::SiteCredential {
                what: "api_key",
                ..
            })
        ));
        let empty = shared.replace("api_key=\"k\"\ntoken=\"t2\"", "api_key=\"k2\"\ntoken=\" \"");
        assert!(matches!(
            Config::parse(&empty),
            Err(ConfigError::SiteCredential { what: "token", .. })
        ));
        assert!(matches!(
            Config::parse(twice),
            Err(ConfigError::DuplicateSite(_))
        ));
    }
}
