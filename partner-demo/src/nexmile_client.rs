//! The calls this site makes to the Nexmile server (spec chapter 7).

use std::sync::Once;
use std::time::Duration;

use nexmile_core::codec::encode_query;
use nexmile_core::wire::site_owner::{UpdateUserBalance, paths};

use crate::config::DemoConfig;
use crate::error::DemoError;

/// Long enough for a busy server, short enough that a dead one is noticed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A request sent to the Nexmile server and what came back.
pub(crate) struct Sent {
    pub path: &'static str,
    pub query: String,
    pub body: String,
    /// The HTTP status and body, or why there were none.
    pub outcome: Result<(u16, String), String>,
}

pub(crate) struct NexmileClient {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    // reqwest's rustls wants a provider even for plain http; another part of
    // the process may have installed one already, which is as good.
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl NexmileClient {
    pub fn new(config: &DemoConfig) -> Result<Self, DemoError> {
        install_crypto_provider();
        let extra_roots = match &config.nexmile_ca {
            Some(pem) => vec![reqwest::Certificate::from_pem(pem.as_bytes())?],
            None => Vec::new(),
        };
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .tls_certs_merge(extra_roots)
                .build()?,
            base: config.nexmile_url.trim_end_matches('/').to_owned(),
            api_key: config.api_key.clone(),
        })
    }

    /// §7.2 ユーザポイント更新: POST with a JSON body, siteKey in the query.
    pub async fn update_user_balance(&self, update: &UpdateUserBalance) -> Sent {
        let path = paths::UPDATE_USER_BALANCE;
        let query = encode_query(&[("siteKey", self.api_key.as_str())]);
        let body = serde_json::to_string(update).expect("UpdateUserBalance serializes");
        let sent = self
            .http
            .post(format!("{}{path}?{query}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                response
                    .text()
                    .await
                    .map(|text| (status, text))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        Sent {
            path,
            query,
            body,
            outcome,
        }
    }
}
