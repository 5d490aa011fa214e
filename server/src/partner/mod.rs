//! HTTP to partner sites: every request signed and identified (see
//! `nexmile_core::signature`), every failure a [`PartnerFailure`] the user is
//! told about in words.

pub mod outbox;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nexmile_core::codec::PartnerFailure;
use nexmile_core::signature::{
    REQUEST_ID_HEADER, SIGNATURE_HEADER, SignedRequest, TIMESTAMP_HEADER, sign,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::SiteConfig;

/// §4.1.2 ②: a partner answers within 8 s.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(8);

/// The most of a partner's reply that is read: every reply of the spec is a
/// short query string; more is a broken or hostile partner.
pub const REPLY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct PartnerClient {
    http: reqwest::Client,
}

/// What one try produced, for the outbox's attempt log.
#[derive(Debug)]
pub struct Delivery {
    pub status: u16,
    pub body: String,
    pub latency: Duration,
}

/// `url` with `name=value` appended to its query.
pub fn with_query(url: &str, name: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}{name}={}",
        utf8_percent_encode(value, NON_ALPHANUMERIC)
    )
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The failure in words, without the URL: its query carries the siteKey,
/// and a password in an auth request; neither may reach a log or the outbox.
fn failure_of(error: reqwest::Error, timeout: Duration) -> PartnerFailure {
    if error.is_timeout() {
        PartnerFailure::Timeout {
            seconds: timeout.as_secs(),
        }
    } else {
        PartnerFailure::Unreachable {
            detail: error.without_url().to_string(),
        }
    }
}

/// Whether `url` is on one of the hosts the site's configured URLs name:
/// nothing is sent, and nothing signed, anywhere else (a reply may carry an
/// auto-charge URL that points at an internal address).
fn on_site_host(site: &SiteConfig, url: &str) -> bool {
    let host = |u: &str| {
        url::Url::parse(u).ok().and_then(|u| {
            Some((
                u.scheme().to_owned(),
                u.host_str()?.to_owned(),
                u.port_or_known_default(),
            ))
        })
    };
    let Some(target) = host(url) else {
        return false;
    };
    [
        Some(&site.auth_url),
        site.call_service_url.as_ref(),
        site.live_service_url.as_ref(),
        site.payment_url.as_ref(),
        site.not_installed_url.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|configured| host(configured).as_ref() == Some(&target))
}

impl Default for PartnerClient {
    fn default() -> Self {
        Self::new()
    }
}

impl PartnerClient {
    pub fn new() -> Self {
        // reqwest's TLS without a built-in provider: use ring (already linked by webrtc).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("nexmile-server/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            // A redirect would carry the signed request to a host of the
            // redirector's choosing: a partner's 3xx is its answer.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's settings are valid");
        Self { http }
    }

    /// GET `url?query` (auth, not-installed report, payment, auto-charge).
    pub async fn get(
        &self,
        site: &SiteConfig,
        url: &str,
        query: &str,
        timeout: Duration,
    ) -> Result<Delivery, PartnerFailure> {
        let full = if query.is_empty() {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&{query}")
        } else {
            format!("{url}?{query}")
        };
        if !on_site_host(site, &full) {
            return Err(PartnerFailure::Unreachable {
                detail: format!("not a host of site {}", site.code),
            });
        }
        self.send(
            site,
            reqwest::Method::GET,
            &full,
            None,
            &uuid::Uuid::new_v4().to_string(),
            timeout,
        )
        .await
    }

    /// POST the percent-encoded JSON `body` to `url?siteKey=…` (decision 7).
    pub async fn post(
        &self,
        site: &SiteConfig,
        url: &str,
        body: &str,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Delivery, PartnerFailure> {
        if !on_site_host(site, url) {
            return Err(PartnerFailure::Unreachable {
                detail: format!("not a host of site {}", site.code),
            });
        }
        let url = with_query(url, "siteKey", &site.api_key);
        self.send(
            site,
            reqwest::Method::POST,
            &url,
            Some(body),
            request_id,
            timeout,
        )
        .await
    }

    /// One try: the request signed for its method, host, path, query and
    /// body with each of the site's signing secrets.
    async fn send(
        &self,
        site: &SiteConfig,
        method: reqwest::Method,
        url: &str,
        form_body: Option<&str>,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Delivery, PartnerFailure> {
        let parsed = url::Url::parse(url).map_err(|e| PartnerFailure::Unreachable {
            detail: format!("not a URL: {e}"),
        })?;
        let timestamp = unix_seconds();
        let signed = SignedRequest {
            method: method.as_str(),
            host: &parsed[url::Position::BeforeHost..url::Position::AfterPort],
            path_and_query: &parsed[url::Position::BeforePath..url::Position::AfterQuery],
            body: form_body.unwrap_or(""),
        };
        let signature = sign(&site.signing_secrets, timestamp, request_id, &signed);
        let started = Instant::now();
        let mut request = self
            .http
            .request(method, parsed.clone())
            .timeout(timeout)
            .header(REQUEST_ID_HEADER, request_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string());
        if let Some(body) = form_body {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.to_owned());
        }
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let mut response = request.send().await.map_err(|e| failure_of(e, timeout))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failure_of(e, timeout))? {
            if body.len() + chunk.len() > REPLY_LIMIT {
                return Err(PartnerFailure::Unparseable {
                    detail: format!("a reply longer than {REPLY_LIMIT} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        Ok(Delivery {
            status,
            body,
            latency: started.elapsed(),
        })
    }
}

impl Delivery {
    /// The body of a 2xx reply, or the status as a failure.
    pub fn accepted_body(self) -> Result<String, PartnerFailure> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(PartnerFailure::HttpStatus {
                status: self.status,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteConfig {
        toml::from_str(
            r#"
code = "s"
api_key = "k"
token = "t"
auth_url = "https://partner.example/auth"
call_service_url = "https://partner.example:8443/CallService"
"#,
        )
        .unwrap()
    }

    #[test]
    fn only_the_sites_own_hosts_are_called() {
        let site = site();
        assert!(on_site_host(
            &site,
            "https://partner.example/autocharge?u=1"
        ));
        assert!(on_site_host(&site, "https://partner.example:8443/x"));
        for elsewhere in [
            "http://partner.example/autocharge",
            "https://partner.example:9443/x",
            "https://169.254.169.254/latest/meta-data",
            "https://partner.example.evil/x",
            "not a url",
        ] {
            assert!(!on_site_host(&site, elsewhere), "{elsewhere}");
        }
    }
}
