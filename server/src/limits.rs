//! How often one address or one device may do what costs the server or a
//! partner something: register, place a call, run a video test; and how many
//! signalling connections each may hold. Over a limit the answer is a clear
//! refusal in words, never a silent drop.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// The limits of `[limits]` in the configuration (per minute, with the
/// burst allowed at once). The defaults let a call centre of a few hundred
/// agents behind one address work and stop one client's loop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub activations_per_minute_per_ip: u32,
    pub activations_per_minute_per_device: u32,
    pub calls_per_minute_per_ip: u32,
    pub calls_per_minute_per_device: u32,
    pub video_tests_per_minute_per_ip: u32,
    pub video_tests_per_minute_per_device: u32,
    /// ImageFlux logins (`POST /api/login`), right or wrong.
    pub logins_per_minute_per_ip: u32,
    pub logins_per_minute_per_account: u32,
    /// Open signalling connections of one address, and of one device.
    pub connections_per_ip: usize,
    pub connections_per_device: usize,
    /// Messages a second one connection may send (twice that at once).
    pub messages_per_second: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            activations_per_minute_per_ip: 120,
            activations_per_minute_per_device: 10,
            calls_per_minute_per_ip: 600,
            calls_per_minute_per_device: 60,
            video_tests_per_minute_per_ip: 120,
            video_tests_per_minute_per_device: 6,
            logins_per_minute_per_ip: 60,
            logins_per_minute_per_account: 10,
            connections_per_ip: 1000,
            connections_per_device: 8,
            messages_per_second: 30,
        }
    }
}

/// What is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Costly {
    Activation,
    Call,
    VideoTest,
    /// Keyed by the account (the email) instead of a device.
    Login,
}

struct PerKey {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    device: DefaultKeyedRateLimiter<String>,
}

impl PerKey {
    fn new(per_ip: u32, per_device: u32) -> Self {
        Self {
            ip: RateLimiter::keyed(per_minute(per_ip)),
            device: RateLimiter::keyed(per_minute(per_device)),
        }
    }
}

/// `n` a minute, a quarter of them (at least 5) at once: a person retrying
/// a few times in a row is never refused, a loop soon is.
fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least one");
    let burst = NonZeroU32::new((n.get() / 4).max(5)).expect("at least five");
    Quota::per_minute(n).allow_burst(burst)
}

pub struct Limits {
    activation: PerKey,
    call: PerKey,
    video_test: PerKey,
    login: PerKey,
    /// §6.2 reports to partners, one per uniqueId in ten minutes.
    not_installed: DefaultKeyedRateLimiter<String>,
    pub section: LimitsSection,
}

impl Limits {
    pub fn new(section: &LimitsSection) -> Self {
        Self {
            activation: PerKey::new(
                section.activations_per_minute_per_ip,
                section.activations_per_minute_per_device,
            ),
            call: PerKey::new(
                section.calls_per_minute_per_ip,
                section.calls_per_minute_per_device,
            ),
            video_test: PerKey::new(
                section.video_tests_per_minute_per_ip,
                section.video_tests_per_minute_per_device,
            ),
            login: PerKey::new(
                section.logins_per_minute_per_ip,
                section.logins_per_minute_per_account,
            ),
            not_installed: RateLimiter::keyed(
                Quota::with_period(std::time::Duration::from_secs(600))
                    .expect("a period")
                    .allow_burst(NonZeroU32::MIN),
            ),
            section: section.clone(),
        }
    }

    /// Whether a visit to the not-installed page sends the partner its §6.2
    /// report: once per site and uniqueId in ten minutes (a reloaded page is
    /// the same member), and within the address's activation budget, so an
    /// anonymous loop cannot make the server flood a partner (M10).
    pub fn report_not_installed(&self, ip: IpAddr, site: &str, unique_id: &str) -> bool {
        self.not_installed
            .check_key(&format!("{site}/{unique_id}"))
            .is_ok()
            && self.activation.ip.check_key(&ip).is_ok()
    }

    /// `Err` with the words for the user when `ip` or `device` has done
    /// `what` too often; each allowed try counts against both.
    pub fn check(&self, what: Costly, ip: IpAddr, device: &str) -> Result<(), String> {
        let limiter = match what {
            Costly::Activation => &self.activation,
            Costly::Call => &self.call,
            Costly::VideoTest => &self.video_test,
            Costly::Login => &self.login,
        };
        if limiter.ip.check_key(&ip).is_err()
            || limiter.device.check_key(&device.to_owned()).is_err()
        {
            tracing::warn!(%ip, device, ?what, "rate limited");
            return Err(match what {
                Costly::Activation => {
                    "登録の試行が多すぎます。しばらくしてからもう一度お試しください。"
                }
                Costly::Call => "発信が多すぎます。しばらくしてからもう一度お試しください。",
                Costly::VideoTest => {
                    "ビデオテストの開始が多すぎます。しばらくしてからもう一度お試しください。"
                }
                Costly::Login => {
                    "ログインの試行が多すぎます。しばらくしてからもう一度お試しください。"
                }
            }
            .into());
        }
        Ok(())
    }

    /// Forgets keys whose limits are back to full, so that addresses and
    /// devices seen once do not stay in memory.
    pub fn forget_idle(&self) {
        for limiter in [&self.activation, &self.call, &self.video_test, &self.login] {
            limiter.ip.retain_recent();
            limiter.device.retain_recent();
        }
        self.not_installed.retain_recent();
    }
}

/// The client's address: the peer's, or, when the peer is one of the
/// `trusted_proxies` (a reverse proxy in front of the server), the last
/// address that proxy appended to `X-Forwarded-For`.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_per_device_while_others_go_on() {
        let limits = Limits::new(&LimitsSection::default());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        // 60 calls a minute per device: 15 at once, then refused.
        for _ in 0..15 {
            assert!(limits.check(Costly::Call, ip, "device-a").is_ok());
        }
        let refused = limits.check(Costly::Call, ip, "device-a").unwrap_err();
        assert!(refused.contains("発信が多すぎます"), "{refused}");
        // Another device at the same address, and another kind of request.
        assert!(limits.check(Costly::Call, ip, "device-b").is_ok());
        assert!(limits.check(Costly::VideoTest, ip, "device-a").is_ok());
    }

    #[test]
    fn an_address_is_limited_across_devices() {
        let limits = Limits::new(&LimitsSection {
            activations_per_minute_per_ip: 40,
            ..LimitsSection::default()
        });
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let allowed = (0..20)
            .filter(|n| {
                limits
                    .check(Costly::Activation, ip, &format!("d{n}"))
                    .is_ok()
            })
            .count();
        assert_eq!(allowed, 10, "a burst of 40 / 4");
    }

    #[test]
    fn a_not_installed_report_goes_once_per_member_and_within_the_address_budget() {
        let limits = Limits::new(&LimitsSection {
            activations_per_minute_per_ip: 20,
            ..LimitsSection::default()
        });
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(limits.report_not_installed(ip, "newsite1", "u-1"));
        // The same member reloading the page: no second report.
        assert!(!limits.report_not_installed(ip, "newsite1", "u-1"));
        assert!(limits.report_not_installed(ip, "othersite", "u-1"));
        // A loop of fresh uniqueIds from one address soon stops reaching partners.
        let sent = (0..20)
            .filter(|n| limits.report_not_installed(ip, "newsite1", &format!("x{n}")))
            .count();
        assert!(sent < 5, "{sent} of 20 reported");
    }

    #[test]
    fn the_forwarded_address_counts_only_behind_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &headers, &[proxy]),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(stranger, &headers, &[proxy]), stranger);
    }
}
