//! Signatures, fault injection, and the smaller endpoints.

use std::time::{Duration, Instant};

use nexmile_core::codec::{
    DEFAULT_REFUSAL_MESSAGE, PartnerFailure, PartnerReply, encode_json_body,
};
use nexmile_core::signature::{REQUEST_ID_HEADER, SIGNATURE_HEADER};
use nexmile_core::wire::auth::AuthReply;
use nexmile_core::wire::codes::CallServiceType;
use nexmile_core::wire::payment::PaymentReply;
use nexmile_partner_demo::{Fault, FaultEndpoint, FaultKind};

use crate::support::{
    API_KEY, auth_query, call_request, signed_call_service, signed_headers, start,
};

#[tokio::test]
async fn a_good_signature_is_accepted_and_a_bad_one_rejected() {
    let site = start().await;
    let path = auth_query(API_KEY, "userId=taro&userPw=taro-pw");
    let (status, body) = site
        .get_with(&path, &signed_headers(&site, "req-a", "GET", &path, ""))
        .await;
    assert_eq!(status, 200);
    assert!(AuthReply::parse(&body).is_ok(), "{body}");

    let (status, body) = site
        .get_with(
            &path,
            &signed_headers(&site, "req-b", "GET", "/auth?a-different=query", ""),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        PartnerReply::parse(&body).unwrap().message.as_deref(),
        Some("署名が一致しません。")
    );
    // A signature without its timestamp is no signature.
    let headers = vec![
        (REQUEST_ID_HEADER, "req-c".to_owned()),
        (SIGNATURE_HEADER, "v2=00".to_owned()),
    ];
    assert_eq!(site.get_with(&path, &headers).await.0, 401);
    let mut stale = signed_headers(&site, "req-d", "GET", &path, "");
    stale[1].1 = "1000".to_owned();
    assert_eq!(site.get_with(&path, &stale).await.0, 401);

    // POSTs sign their body as sent.
    let body = encode_json_body(&call_request(
        CallServiceType::Ringing,
        "c",
        "hanako",
        "airi",
    ));
    let good = signed_call_service(&site, "req-e", &body);
    assert_eq!(site.call_service_with(&body, API_KEY, &good).await.0, 200);
    let for_other_body = signed_call_service(&site, "req-f", "x");
    assert_eq!(
        site.call_service_with(&body, API_KEY, &for_other_body)
            .await
            .0,
        401
    );

    let verdicts: Vec<String> = site
        .demo
        .requests()
        .await
        .into_iter()
        .map(|r| r.signature)
        .collect();
    assert_eq!(verdicts[0], "valid");
    assert!(verdicts[1].starts_with("invalid"), "{verdicts:?}");
    assert_eq!(verdicts[4], "valid");
    site.demo.shutdown().await;
}

#[tokio::test]
async fn faults_garble_fail_and_refuse() {
    let site = start().await;
    let auth = auth_query(API_KEY, "userId=taro&userPw=taro-pw");

    // Switched on over HTTP, as a tool would.
    let set = site
        .http
        .post(format!("{}/demo/faults", site.demo.url()))
        .json_body(r#"{"endpoint":"auth","fault":"garbage","times":1}"#)
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success());
    let (status, body) = site.get(&auth).await;
    assert_eq!((status, body.as_str()), (200, "<html>not a reply"));
    assert!(matches!(
        AuthReply::parse(&body),
        Err(PartnerFailure::Unparseable { .. })
    ));
    assert!(
        AuthReply::parse(&site.get(&auth).await.1).is_ok(),
        "times=1 is spent"
    );

    // Only prepare fails; start is untouched.
    site.demo
        .set_fault(
            Fault::new(FaultEndpoint::CallService, FaultKind::Http500)
                .for_call_service_type(CallServiceType::Prepare),
        )
        .await;
    let prepare = call_request(CallServiceType::Prepare, "c", "hanako", "airi");
    assert_eq!(site.call_service(&prepare).await.0, 500);
    let start_call = call_request(CallServiceType::Start, "c", "hanako", "airi");
    assert_eq!(site.call_service(&start_call).await.1, "result=0");

    site.demo
        .set_fault(
            Fault::new(FaultEndpoint::CallService, FaultKind::Refuse)
                .with_message("営業時間外です"),
        )
        .await;
    let refused =
        PartnerReply::parse_accepted(&site.call_service(&start_call).await.1).unwrap_err();
    assert_eq!(refused.user_message_ja(), "営業時間外です");

    site.demo
        .set_fault(Fault::new(FaultEndpoint::Payment, FaultKind::Refuse))
        .await;
    let (_, body) = site
        .get(&format!(
            "/payment?siteKey={API_KEY}&liveToken=lt&linkId=L1&userId=taro&payment=500"
        ))
        .await;
    assert_eq!(body, "result=-1");
    let refused = PaymentReply::parse(&body).unwrap_err();
    assert_eq!(refused.user_message_ja(), DEFAULT_REFUSAL_MESSAGE);

    let cleared = site
        .http
        .delete(format!("{}/demo/faults", site.demo.url()))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    assert!(PartnerReply::parse_accepted(&site.call_service(&prepare).await.1).is_ok());
    site.demo.shutdown().await;
}

#[tokio::test]
async fn a_timeout_fault_holds_the_request_until_shutdown() {
    let site = start().await;
    site.demo
        .set_fault(Fault::new(FaultEndpoint::LiveService, FaultKind::Timeout))
        .await;
    let held = site
        .http
        .post(format!("{}/liveService?siteKey={API_KEY}", site.demo.url()))
        .body("%7B%22liveServiceTp%22%3A31%7D")
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(held.unwrap_err().is_timeout());
    let log = site.demo.requests().await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].reply_status, None, "never answered");
    let stopping = Instant::now();
    site.demo.shutdown().await;
    assert!(stopping.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn payment_live_service_and_not_installed() {
    let site = start().await;
    let (status, body) = site
        .get(&format!(
            "/payment?siteKey={API_KEY}&liveToken=lt-1&linkId=L1&userId=taro&payment=300"
        ))
        .await;
    assert_eq!(status, 200);
    let paid = PaymentReply::parse(&body).unwrap();
    assert_eq!((paid.user_id.as_str(), paid.point), ("taro", 300));
    assert!(!paid.sid.is_empty());
    assert_eq!(site.demo.points("taro").await, Some(800));
    let (_, body) = site
        .get(&format!(
            "/payment?siteKey={API_KEY}&liveToken=lt-1&linkId=L1&userId=nobody&payment=300"
        ))
        .await;
    assert!(matches!(
        PaymentReply::parse(&body),
        Err(PartnerFailure::Refused { .. })
    ));

    let live = site
        .http
        .post(format!("{}/liveService?siteKey={API_KEY}", site.demo.url()))
        .body("%7B%22liveServiceTp%22%3A31%7D")
        .send()
        .await
        .unwrap();
    // A request without its siteToken is refused, saying what is missing.
    assert_eq!(live.status(), 400);
    let refusal = live.text().await.unwrap();
    let refusal = PartnerReply::parse_accepted(&refusal).unwrap_err();
    assert!(refusal.to_string().contains("siteToken"), "{refusal}");

    let report = format!(
        "/notInstalled?siteKey={API_KEY}&userId=taro&userPw=taro-pw&uniqueId=u1&ua=Mozilla%2F5.0&osType=3"
    );
    assert_eq!(site.get(&report).await, (200, String::new()));
    let wrong_key = report.replace(API_KEY, "bad.key");
    assert_eq!(site.get(&wrong_key).await.0, 403);
    let logged = site.demo.requests().await;
    assert!(logged.last().unwrap().query.contains("userPw=***&"));
    site.demo.shutdown().await;
}

/// `RequestBuilder::json` needs reqwest's json feature; a JSON string does as well.
trait JsonBody {
    fn json_body(self, json: &str) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, json: &str) -> Self {
        self.header("content-type", "application/json")
            .body(json.to_owned())
    }
}
