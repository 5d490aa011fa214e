//! Starting a demo site and talking to it like the Nexmile server does.

use nexmile_core::codec::encode_json_body;
use nexmile_core::datetime::WireDateTime;
use nexmile_core::signature::{
    REQUEST_ID_HEADER, SIGNATURE_HEADER, SignedRequest, TIMESTAMP_HEADER, sign,
};
use nexmile_core::wire::call::{CallOverview, CallParty, CallServiceRequest};
use nexmile_core::wire::codes::{CallServiceType, TerminateReason, UaType};
use nexmile_partner_demo::{DemoConfig, PartnerDemo};

pub const API_KEY: &str = "test.key";
/// The secret the tests sign with, as the Nexmile server would.
pub const SIGNING_SECRET: &str = "demo-test-signing-secret";
pub const DEVICE_TOKEN: &str = "106f7a7d-e11c-4f05-8e8c-54b459aa202e";

pub struct TestSite {
    pub demo: PartnerDemo,
    pub http: reqwest::Client,
}

pub fn http_client() -> reqwest::Client {
    // reqwest's rustls needs a provider even for http; the site may have installed it already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub async fn start() -> TestSite {
    start_with(DemoConfig::in_memory()).await
}

pub async fn start_with(mut config: DemoConfig) -> TestSite {
    config
        .signing_secret
        .get_or_insert_with(|| SIGNING_SECRET.into());
    TestSite {
        demo: PartnerDemo::start(config).await.expect("the demo starts"),
        http: http_client(),
    }
}

/// The three signature headers for one try of `method path_and_query` to
/// `site` with `body` (empty for a GET).
pub fn signed_headers(
    site: &TestSite,
    request_id: &str,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let host = site.demo.addr().to_string();
    let request = SignedRequest {
        method,
        host: &host,
        path_and_query,
        body,
    };
    let signature = sign(&[SIGNING_SECRET.to_owned()], now, request_id, &request).unwrap();
    vec![
        (REQUEST_ID_HEADER, request_id.to_owned()),
        (TIMESTAMP_HEADER, now.to_string()),
        (SIGNATURE_HEADER, signature),
    ]
}

/// [`signed_headers`] for a CallService POST of `body`.
pub fn signed_call_service(
    site: &TestSite,
    request_id: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let path = format!("/CallService?siteKey={API_KEY}");
    signed_headers(site, request_id, "POST", &path, body)
}

impl TestSite {
    pub async fn get(&self, path_and_query: &str) -> (u16, String) {
        self.get_with(path_and_query, &[]).await
    }

    pub async fn get_with(
        &self,
        path_and_query: &str,
        headers: &[(&'static str, String)],
    ) -> (u16, String) {
        let mut request = self
            .http
            .get(format!("{}{path_and_query}", self.demo.url()));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("the site answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// POSTs a CallService request as decision 7 says: percent-encoded JSON.
    pub async fn call_service(&self, request: &CallServiceRequest) -> (u16, String) {
        self.call_service_with(&encode_json_body(request), API_KEY, &[])
            .await
    }

    pub async fn call_service_with(
        &self,
        body: &str,
        site_key: &str,
        headers: &[(&'static str, String)],
    ) -> (u16, String) {
        let mut request = self
            .http
            .post(format!(
                "{}/CallService?siteKey={site_key}",
                self.demo.url()
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("the site answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

pub fn auth_query(site_api_key: &str, who: &str) -> String {
    format!(
        "/auth?siteApiKey={site_api_key}&deviceToken={DEVICE_TOKEN}&appVersion=01.02.03&osType=1&{who}"
    )
}

fn party(user_id: &str) -> CallParty {
    CallParty {
        user_id: user_id.into(),
        user_sub_id: None,
        ua_type: Some(UaType::App),
        app_ver: Some("01.02.03".into()),
        device_name: Some("Pixel 8".into()),
        os_ver: Some("14".into()),
    }
}

fn at() -> WireDateTime {
    WireDateTime::parse("2024/05/01 10:00:00").unwrap()
}

pub fn call_request(
    call_service_type: CallServiceType,
    call_token: &str,
    caller: &str,
    callee: &str,
) -> CallServiceRequest {
    CallServiceRequest {
        site_token: "site-token-1".into(),
        call_service_type,
        call_token: call_token.into(),
        caller: party(caller),
        callee: party(callee),
        video_call: true,
        call_status_time: at(),
        call_overview: (call_service_type == CallServiceType::End).then(|| CallOverview {
            terminate_reason: TerminateReason::CallerHungUp,
            incoming_time: Some(at()),
            connect_time: Some(at()),
            terminate_time: at(),
            talking_sec: 150,
            charge_price: 100,
            charge_unit_sec: 60,
            point_price: 1,
            start_point: 1000,
            talking_point: 250,
            auto_charge_point: 0,
            outside_usage_point: 0,
        }),
    }
}
