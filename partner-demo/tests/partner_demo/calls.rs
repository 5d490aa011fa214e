//! Chapter 4: the call service requests against the demo site.

use nexmile_core::codec::{PartnerFailure, PartnerReply, encode_json_body};
use nexmile_core::wire::codes::{CallOption, CallServiceType, ServiceChargeType};
use nexmile_core::wire::site_service::SiteService;

use crate::support::{API_KEY, call_request, signed_call_service, start};

fn service_of(body: &str) -> SiteService {
    PartnerReply::parse_accepted(body)
        .unwrap()
        .json_field::<SiteService>("service")
        .unwrap()
        .expect("a service")
}

#[tokio::test]
async fn prepare_replies_the_callers_tariff_and_both_users_options() {
    let site = start().await;
    let request = call_request(CallServiceType::Prepare, "ct-1", "hanako", "airi");
    let (status, body) = site.call_service(&request).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("result=0&service="), "{body}");
    let service = service_of(&body);
    service
        .check(CallServiceType::Prepare.handling().required_reply)
        .unwrap();

    let user = service.user.as_ref().unwrap();
    assert_eq!(
        (user.user_id.as_str(), user.name.as_str()),
        ("hanako", "山田花子")
    );
    let image = user.profile_image_url.as_deref().unwrap();
    assert_eq!(image, format!("{}/avatar/hanako.svg", site.demo.url()));
    let (status, svg) = site.get("/avatar/hanako.svg").await;
    assert_eq!(status, 200);
    assert!(svg.starts_with("<svg") && svg.contains('山'));

    let charge = service.service_charge.as_ref().unwrap();
    assert_eq!(charge.service_charge_type, ServiceChargeType::Call);
    assert_eq!(
        (charge.unit_sec, charge.unit_price, charge.point_price),
        (60, 100, 1)
    );
    assert_eq!(charge.current_point, 1000, "the caller pays");
    assert_eq!(charge.free_trial_sec, 0);
    assert_eq!(
        charge.auto_charge_trigger_url.as_deref(),
        Some(format!("{}/autocharge?userId=hanako", site.demo.url()).as_str())
    );

    let call = service.call_service.as_ref().unwrap();
    assert_eq!(call.call_token, "ct-1");
    assert_eq!(call.callee_user_id, "airi");
    assert_eq!(call.callee_user_nm, "星野あいり");
    assert_eq!(
        call.callee_option,
        CallOption::FACE_FILTER | CallOption::MOSAIC | CallOption::WALLPAPER
    );
    assert_eq!(
        call.caller_option,
        CallOption::FACE_FILTER | CallOption::MOSAIC
    );
    assert_eq!(call.caller_id_prefix.as_deref(), Some("・"));
    assert!(call.video_call);
    assert_eq!(call.calling_timeout, 30);
    assert!(!call.paid_callee);
    site.demo.shutdown().await;
}

#[tokio::test]
async fn a_paid_callee_is_the_payer() {
    let site = start().await;
    let (_, body) = site
        .call_service(&call_request(
            CallServiceType::Prepare,
            "ct-2",
            "yuki",
            "support",
        ))
        .await;
    let service = service_of(&body);
    let charge = service.service_charge.unwrap();
    assert_eq!(charge.current_point, 5000, "the callee's points");
    assert!(
        charge
            .auto_charge_trigger_url
            .unwrap()
            .ends_with("userId=support")
    );
    assert!(service.call_service.unwrap().paid_callee);
    assert_eq!(service.user.unwrap().user_id, "yuki", "user is the caller");

    // The end of that call is charged to the callee.
    let (status, _) = site
        .call_service(&call_request(
            CallServiceType::End,
            "ct-2",
            "yuki",
            "support",
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(site.demo.points("support").await, Some(5000 - 250));
    assert_eq!(site.demo.points("yuki").await, Some(20));
    site.demo.shutdown().await;
}

#[tokio::test]
async fn prepare_refuses_in_words() {
    let site = start().await;
    let refusal = |body: String| match PartnerReply::parse_accepted(&body) {
        Err(PartnerFailure::Refused {
            result: 1,
            message: Some(message),
        }) => message,
        other => panic!("not a refusal with a message: {other:?} from {body}"),
    };
    let (_, body) = site
        .call_service(&call_request(CallServiceType::Prepare, "c", "yuki", "airi"))
        .await;
    assert_eq!(refusal(body), "ポイントが不足しています");
    // Free callees need no points.
    let (_, body) = site
        .call_service(&call_request(CallServiceType::Prepare, "c", "yuki", "taro"))
        .await;
    assert!(PartnerReply::parse_accepted(&body).is_ok(), "{body}");
    for (caller, callee) in [
        ("nobody", "airi"),
        ("hanako", "nobody"),
        ("hanako", "hanako"),
    ] {
        let (status, body) = site
            .call_service(&call_request(CallServiceType::Prepare, "c", caller, callee))
            .await;
        assert_eq!(status, 200);
        assert!(!refusal(body).is_empty());
    }
    site.demo.shutdown().await;
}

#[tokio::test]
async fn start_is_refused_when_the_callee_blocked_the_caller() {
    let site = start().await;
    site.demo.block("airi", "taro").await;
    let (_, body) = site
        .call_service(&call_request(CallServiceType::Start, "c", "taro", "airi"))
        .await;
    let refused = PartnerReply::parse_accepted(&body).unwrap_err();
    assert!(refused.user_message_ja().contains("拒否"), "{refused:?}");
    let (_, body) = site
        .call_service(&call_request(CallServiceType::Start, "c", "hanako", "airi"))
        .await;
    assert_eq!(body, "result=0");
    for status_only in [CallServiceType::Ringing, CallServiceType::Connected] {
        let (status, body) = site
            .call_service(&call_request(status_only, "c", "hanako", "airi"))
            .await;
        assert_eq!((status, body.as_str()), (200, ""));
    }
    site.demo.shutdown().await;
}

#[tokio::test]
async fn a_retried_call_end_is_charged_once() {
    let site = start().await;
    let end = call_request(CallServiceType::End, "ct-end", "hanako", "airi");
    let body = encode_json_body(&end);
    for _try in 0..3 {
        let (status, reply) = site
            .call_service_with(
                &body,
                API_KEY,
                &signed_call_service(&site, "req-end-1", &body),
            )
            .await;
        assert_eq!((status, reply.as_str()), (200, ""));
    }
    assert_eq!(site.demo.points("hanako").await, Some(1000 - 250));
    // The same call under a new request ID is still the same call.
    let (status, _) = site
        .call_service_with(
            &body,
            API_KEY,
            &signed_call_service(&site, "req-end-2", &body),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(site.demo.points("hanako").await, Some(750));
    // A call that ran past the payer's points takes what there is.
    let mut long = call_request(CallServiceType::End, "ct-long", "yuki", "airi");
    long.call_overview.as_mut().unwrap().talking_point = 9999;
    site.call_service(&long).await;
    assert_eq!(site.demo.points("yuki").await, Some(0));

    let ends = site.demo.requests().await;
    assert_eq!(ends.len(), 5);
    assert!(ends[..4].iter().all(|r| r.signature == "valid"));
    assert_eq!(ends[0].request_id.as_deref(), Some("req-end-1"));
    site.demo.shutdown().await;
}

#[tokio::test]
async fn a_wrong_site_key_or_token_is_refused() {
    let site = start().await;
    let prepare = encode_json_body(&call_request(
        CallServiceType::Prepare,
        "c",
        "hanako",
        "airi",
    ));
    let (status, body) = site.call_service_with(&prepare, "bad.key", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(PartnerReply::parse(&body).unwrap().result, -1);
    // A status-only request must not look delivered.
    let end = encode_json_body(&call_request(CallServiceType::End, "c", "hanako", "airi"));
    let (status, _) = site.call_service_with(&end, "bad.key", &[]).await;
    assert_eq!(status, 403);
    assert_eq!(site.demo.points("hanako").await, Some(1000));

    let mut other_site = call_request(CallServiceType::Prepare, "c", "hanako", "airi");
    other_site.site_token = "another-site".into();
    let (_, body) = site.call_service(&other_site).await;
    assert_eq!(PartnerReply::parse(&body).unwrap().result, -1);
    let (status, _) = site.call_service_with("not json", API_KEY, &[]).await;
    assert_eq!(status, 400);
    site.demo.shutdown().await;
}
