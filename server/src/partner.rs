//! HTTP to partner sites: every request signed and identified (see
//! `nexmile_core::signature`), every failure a [`PartnerFailure`] the user is
//! told about in words.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nexmile_core::codec::PartnerFailure;
use nexmile_core::signature::{REQUEST_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::SiteConfig;

/// §4.1.2 ②: a partner answers within 8 s.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(8);

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

fn failure_of(error: &reqwest::Error, timeout: Duration) -> PartnerFailure {
    if error.is_timeout() {
        PartnerFailure::Timeout {
            seconds: timeout.as_secs(),
        }
    } else {
        PartnerFailure::Unreachable {
            detail: error.to_string(),
        }
    }
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
        let payload = full.split_once('?').map_or("", |(_, q)| q).to_owned();
        let request = self.http.get(&full);
        self.send(
            site,
            request,
            &uuid::Uuid::new_v4().to_string(),
            &payload,
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
        let request = self
            .http
            .post(with_query(url, "siteKey", &site.api_key))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.to_owned());
        self.send(site, request, request_id, body, timeout).await
    }

    async fn send(
        &self,
        site: &SiteConfig,
        request: reqwest::RequestBuilder,
        request_id: &str,
        payload: &str,
        timeout: Duration,
    ) -> Result<Delivery, PartnerFailure> {
        let timestamp = unix_seconds();
        let started = Instant::now();
        let request = request
            .timeout(timeout)
            .header(REQUEST_ID_HEADER, request_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                sign(&site.api_key, timestamp, request_id, payload),
            );
        let response = request.send().await.map_err(|e| failure_of(&e, timeout))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| failure_of(&e, timeout))?;
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
