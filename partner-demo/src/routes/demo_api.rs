//! JSON for tests and tools: the log, the users, and the fault switches.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::faults::Fault;
use crate::reply::SiteFailure;
use crate::site::SharedSite;
use crate::store::request_log::LoggedRequest;

pub(crate) async fn log(
    State(site): State<SharedSite>,
) -> Result<Json<Vec<LoggedRequest>>, SiteFailure> {
    Ok(Json(site.store.logged_requests().await?))
}

/// A user as `/users.json` shows it: everything but the password.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserSummary {
    user_id: String,
    name: String,
    points: i64,
    profile_image_url: String,
    enable_download_effect: bool,
    call_option: u32,
    paid_callee: bool,
    call_unit_sec: u32,
    call_unit_price: u32,
}

pub(crate) async fn users(
    State(site): State<SharedSite>,
) -> Result<Json<Vec<UserSummary>>, SiteFailure> {
    let users = site.store.users().await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserSummary {
                profile_image_url: u
                    .profile_image_url
                    .unwrap_or_else(|| site.avatar_url(&u.user_id)),
                user_id: u.user_id,
                name: u.name,
                points: u.points,
                enable_download_effect: u.enable_download_effect,
                call_option: u.call_option.bits(),
                paid_callee: u.paid_callee,
                call_unit_sec: u.call_unit_sec,
                call_unit_price: u.call_unit_price,
            })
            .collect(),
    ))
}

pub(crate) async fn faults(State(site): State<SharedSite>) -> Json<Vec<Fault>> {
    Json(site.faults.list())
}

pub(crate) async fn set_fault(
    State(site): State<SharedSite>,
    Json(fault): Json<Fault>,
) -> StatusCode {
    tracing::info!(?fault, "fault switched on");
    site.faults.set(fault);
    StatusCode::NO_CONTENT
}

pub(crate) async fn clear_faults(State(site): State<SharedSite>) -> StatusCode {
    tracing::info!("faults cleared");
    site.faults.clear();
    StatusCode::NO_CONTENT
}
