//! Chapter 4: the call service requests (callServiceTp 1, 3, 4, 5, 6).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use nexmile_core::codec::{encode_accepted_reply, encode_query};
use nexmile_core::signature::REQUEST_ID_HEADER;
use nexmile_core::wire::call::CallServiceRequest;
use nexmile_core::wire::codes::{CallServiceType, ServiceChargeType};
use nexmile_core::wire::site_service::{CallService, ServiceCharge, SiteService, User};

use crate::reply::{Answer, Reply};
use crate::service_type::ServiceKind;
use crate::site::{POINT_PRICE_YEN, SharedSite, Site, now};
use crate::store::{CallEnd, UserAccount};

/// The refusal when the payer cannot afford one billing unit.
const INSUFFICIENT_POINTS: &str = "ポイントが不足しています";
/// Below this many points the server asks `/autocharge` to top the payer up.
const AUTO_CHARGE_TRIGGER_POINT: u32 = 100;
/// Shown between the site name and the caller's name on the callee's screen.
const CALLER_ID_PREFIX: &str = "・";
/// serviceCharge.currentPoint's range.
const MAX_CURRENT_POINT: i64 = 9_999_999;

pub(crate) async fn call_service(
    State(site): State<SharedSite>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let admitted =
        ServiceKind::Call.admit(&site, query.as_deref(), &body, |r: &CallServiceRequest| {
            &r.site_token
        });
    let request = match admitted {
        Ok(request) => request,
        Err(refusal) => return Ok(refusal),
    };
    match request.call_service_type {
        CallServiceType::Prepare => prepare(&site, &request).await,
        CallServiceType::Start => start(&site, &request).await,
        CallServiceType::Ringing | CallServiceType::Connected => Ok(Reply::empty()),
        CallServiceType::End => {
            let request_id = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok());
            end(&site, &request, request_id).await
        }
    }
}

/// 架電準備 (§4.3.1): who calls whom, at what price, with which options.
async fn prepare(site: &Site, request: &CallServiceRequest) -> Answer {
    let (caller_id, callee_id) = (&request.caller.user_id, &request.callee.user_id);
    if caller_id == callee_id {
        return Ok(Reply::refused("自分自身には発信できません。"));
    }
    let Some(caller) = site.store.user(caller_id).await? else {
        return Ok(Reply::refused("発信者が会員として登録されていません。"));
    };
    let Some(callee) = site.store.user(callee_id).await? else {
        return Ok(Reply::refused("通話相手が見つかりません。"));
    };
    let payer = if callee.paid_callee { &callee } else { &caller };
    let charge = service_charge(site, &callee, payer);
    if !charge.is_free()
        && payer.points.saturating_mul(i64::from(charge.point_price)) < i64::from(charge.unit_price)
    {
        return Ok(Reply::refused(INSUFFICIENT_POINTS));
    }
    let service = SiteService {
        user: Some(User {
            user_id: caller.user_id.clone(),
            name: caller.name.clone(),
            profile_image_url: Some(profile_image(site, &caller)),
            candidate_mode: site.store.candidate_mode(&caller.user_id).await?,
            ..User::default()
        }),
        service_charge: Some(charge),
        call_service: Some(CallService {
            call_token: request.call_token.clone(),
            caller_option: caller.call_option,
            callee_user_id: callee.user_id.clone(),
            callee_user_nm: callee.name.clone(),
            callee_profile_image_url: Some(profile_image(site, &callee)),
            callee_option: callee.call_option,
            callee_return_url: None,
            call_user_sub_id: None,
            callee_candidate_mode: site.store.candidate_mode(&callee.user_id).await?,
            caller_id_prefix: Some(CALLER_ID_PREFIX.into()),
            video_call: request.video_call,
            calling_timeout: site.config.calling_timeout_sec.clamp(10, 180),
            paid_callee: callee.paid_callee,
        }),
        live_service: None,
    };
    Ok(Reply::ok(encode_accepted_reply(Some((
        "service", &service,
    )))))
}

/// The callee's tariff, billed to `payer`.
fn service_charge(site: &Site, callee: &UserAccount, payer: &UserAccount) -> ServiceCharge {
    let current_point = payer.points.clamp(0, MAX_CURRENT_POINT);
    ServiceCharge {
        service_charge_type: ServiceChargeType::Call,
        unit_sec: callee.call_unit_sec,
        unit_price: callee.call_unit_price,
        point_price: POINT_PRICE_YEN,
        current_point: u32::try_from(current_point).unwrap_or(0),
        free_trial_sec: 0,
        auto_charge_trigger_point: AUTO_CHARGE_TRIGGER_POINT,
        auto_charge_trigger_url: Some(format!(
            "{}/autocharge?{}",
            site.url,
            encode_query(&[("userId", payer.user_id.as_str())])
        )),
    }
}

fn profile_image(site: &Site, user: &UserAccount) -> String {
    user.profile_image_url
        .clone()
        .unwrap_or_else(|| site.avatar_url(&user.user_id))
}

/// 架電開始 (§4.3.2): refused when the callee has blocked the caller.
async fn start(site: &Site, request: &CallServiceRequest) -> Answer {
    let blocked = site
        .store
        .is_blocked(&request.callee.user_id, &request.caller.user_id)
        .await?;
    if blocked {
        return Ok(Reply::refused("相手のユーザに着信を拒否されています。"));
    }
    Ok(Reply::ok(encode_accepted_reply::<()>(None)))
}

/// 通話終了 (§4.3.5, retried): record the call and charge its points once.
async fn end(site: &Site, request: &CallServiceRequest, request_id: Option<&str>) -> Answer {
    let Some(overview) = &request.call_overview else {
        return Ok(Reply::rejected(
            StatusCode::BAD_REQUEST,
            "通話終了に callOverview がありません。",
        ));
    };
    let (caller_id, callee_id) = (&request.caller.user_id, &request.callee.user_id);
    let callee_pays = site
        .store
        .user(callee_id)
        .await?
        .is_some_and(|callee| callee.paid_callee);
    let payer_id = if callee_pays { callee_id } else { caller_id };
    let charged = site
        .store
        .record_call_end(&CallEnd {
            call_token: &request.call_token,
            request_id,
            caller_id,
            callee_id,
            payer_id,
            overview,
            at: now(),
        })
        .await?;
    match charged {
        Some(points) => tracing::info!(
            call_token = %request.call_token, payer = %payer_id, points,
            talking_sec = overview.talking_sec, "call ended and charged"
        ),
        None => tracing::info!(
            call_token = %request.call_token, ?request_id,
            "call end repeated: already recorded, nothing charged"
        ),
    }
    Ok(Reply::empty())
}
