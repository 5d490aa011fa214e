//! The auto-charge trigger (serviceCharge.autoChargeTriggerUrl): the server
//! calls it when the payer's points run low; the site adds points and tells
//! the server with §7.2 UpdateUserBalance.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use nexmile_core::codec::{decode_query, encode_accepted_reply};
use nexmile_core::wire::site_owner::UpdateUserBalance;
use serde::Deserialize;

use crate::reply::{Answer, Reply};
use crate::site::{SharedSite, now};
use crate::store::{LogDirection, NewLogEntry, TopUp};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AutoChargeQuery {
    user_id: String,
}

pub(crate) async fn autocharge(
    State(site): State<SharedSite>,
    RawQuery(query): RawQuery,
) -> Answer {
    let Ok(AutoChargeQuery { user_id }) = decode_query(query.as_deref().unwrap_or("")) else {
        return Ok(Reply::rejected(
            StatusCode::BAD_REQUEST,
            "userId がありません。",
        ));
    };
    let points = site.config.auto_charge_points;
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let balance = site
        .store
        .top_up(&TopUp {
            sid: &sid,
            user_id: &user_id,
            points: i64::from(points),
            source: "autocharge",
            at: now(),
        })
        .await?;
    let Some(balance) = balance else {
        return Ok(Reply::refused("ユーザが見つかりません。").with_status(StatusCode::NOT_FOUND));
    };
    tracing::info!(%user_id, points, balance, %sid, "auto-charged");
    let update = UpdateUserBalance {
        site_token: site.config.site_token.clone(),
        sid,
        user_id,
        point: points,
        comment: Some("オートチャージ".into()),
        auto_charge: true,
    };
    // Answer the trigger at once: the server may be waiting on this reply
    // while it handles UpdateUserBalance.
    tokio::spawn(report_balance(site, update));
    Ok(Reply::ok(encode_accepted_reply::<()>(None)))
}

/// Sends UpdateUserBalance and puts it, with its outcome, in the request log.
async fn report_balance(site: SharedSite, update: UpdateUserBalance) {
    let at = now();
    let sent = site.nexmile.update_user_balance(&update).await;
    let (status, reply) = match &sent.outcome {
        Ok((status, body)) => {
            tracing::info!(user_id = %update.user_id, status, reply = %body, "UpdateUserBalance sent");
            (Some(*status), body.clone())
        }
        Err(e) => {
            tracing::warn!(user_id = %update.user_id, error = %e, "UpdateUserBalance failed");
            (None, format!("no answer: {e}"))
        }
    };
    let logged = site
        .store
        .log_request(&NewLogEntry {
            at,
            direction: LogDirection::Outgoing,
            method: "POST",
            path: sent.path,
            query: &sent.query,
            body: &sent.body,
            request_id: None,
            signature: "-",
        })
        .await;
    let result = match logged {
        Ok(id) => site.store.log_reply(id, status, &reply).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot log UpdateUserBalance");
    }
}
