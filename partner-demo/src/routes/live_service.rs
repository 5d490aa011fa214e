//! Chapter 5 (lives, not served yet: accepted and logged) and §6.2 アプリ未インストール報告.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use nexmile_core::codec::{decode_query, encode_accepted_reply};
use nexmile_core::wire::auth::NotInstalledReport;
use nexmile_core::wire::site_owner::SiteKeyQuery;

use crate::reply::Reply;
use crate::service_type::ServiceKind;
use crate::site::SharedSite;

fn site_key_of(query: Option<&str>) -> String {
    decode_query::<SiteKeyQuery>(query.unwrap_or(""))
        .map(|q| q.site_key)
        .unwrap_or_default()
}

pub(crate) async fn live_service(
    State(site): State<SharedSite>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Reply {
    if let Err(rejection) = site.check_key(&site_key_of(query.as_deref())) {
        // A status-only request (end, abort…) refused with 200 would count as done.
        return if ServiceKind::Live.reply_decides(&body) {
            rejection
        } else {
            rejection.with_status(StatusCode::FORBIDDEN)
        };
    }
    let code = ServiceKind::Live.code_of(&body);
    tracing::info!(
        ?code,
        "liveService request accepted (lives are not served yet)"
    );
    Reply::ok(encode_accepted_reply::<()>(None))
}

pub(crate) async fn not_installed(
    State(site): State<SharedSite>,
    RawQuery(query): RawQuery,
) -> Reply {
    if let Err(rejection) = site.check_key(&site_key_of(query.as_deref())) {
        return rejection.with_status(StatusCode::FORBIDDEN);
    }
    match decode_query::<NotInstalledReport>(query.as_deref().unwrap_or("")) {
        Ok(report) => tracing::info!(
            unique_id = %report.unique_id, user_id = ?report.user_id,
            os_type = ?report.os_type, ua = %report.ua, "the app is not installed"
        ),
        Err(e) => tracing::warn!(error = %e, "an incomplete not-installed report"),
    }
    Reply::empty()
}
