//! §5.3.16 リアルタイム決済: a viewer buys points during a live.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use nexmile_core::codec::decode_query;
use nexmile_core::wire::payment::{PaymentReply, PaymentRequest};

use crate::reply::{Answer, Reply};
use crate::site::{POINT_PRICE_YEN, SharedSite, now};
use crate::store::TopUp;

pub(crate) async fn payment(State(site): State<SharedSite>, RawQuery(query): RawQuery) -> Answer {
    let Ok(request) = decode_query::<PaymentRequest>(query.as_deref().unwrap_or("")) else {
        return Ok(Reply::rejected(
            StatusCode::OK,
            "決済リクエストを読み取れません。",
        ));
    };
    if let Err(rejection) = site.check_key(&request.site_key) {
        return Ok(rejection);
    }
    let points = i64::from(request.payment / POINT_PRICE_YEN);
    if points == 0 {
        return Ok(Reply::refused("決済金額が正しくありません。"));
    }
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let balance = site
        .store
        .top_up(&TopUp {
            sid: &sid,
            user_id: &request.user_id,
            points,
            source: "payment",
            at: now(),
        })
        .await?;
    let Some(balance) = balance else {
        return Ok(Reply::refused("ユーザが見つかりません。"));
    };
    tracing::info!(
        user_id = %request.user_id, live_token = %request.live_token, link_id = %request.link_id,
        yen = request.payment, points, balance, %sid, "payment"
    );
    Ok(Reply::ok(
        PaymentReply {
            sid,
            user_id: request.user_id,
            point: points,
            comment: Some("リアルタイム決済".into()),
        }
        .encode(),
    ))
}
