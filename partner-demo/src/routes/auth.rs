//! §3.2 ユーザ認証: who the app's user is, by one-time ID or by ID and password.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use nexmile_core::codec::decode_query;
use nexmile_core::signature::secrets_equal;
use nexmile_core::wire::auth::{AuthReply, AuthRequest};

use crate::reply::{Answer, Reply};
use crate::site::{SharedSite, now};

pub(crate) async fn auth(State(site): State<SharedSite>, RawQuery(query): RawQuery) -> Answer {
    let Ok(request) = decode_query::<AuthRequest>(query.as_deref().unwrap_or("")) else {
        return Ok(Reply::rejected(
            StatusCode::OK,
            "認証リクエストを読み取れません。",
        ));
    };
    if let Err(rejection) = site.check_key(&request.site_api_key) {
        return Ok(rejection);
    }
    let unique_id = request.unique_id.as_deref().filter(|id| !id.is_empty());
    let user = match (unique_id, &request.user_id, &request.user_pw) {
        (Some(unique_id), _, _) => {
            let Some(user) = site.store.redeem_unique_id(unique_id, now()).await? else {
                return Ok(Reply::refused(
                    "ワンタイムIDが無効か、有効期限が切れています。サイトのページを開き直してください。",
                ));
            };
            user
        }
        (None, Some(user_id), Some(password)) => match site.store.user(user_id).await? {
            Some(user) if secrets_equal(password.expose(), &user.password) => user,
            _ => {
                return Ok(Reply::refused(
                    "ユーザIDまたはパスワードが正しくありません。",
                ));
            }
        },
        _ => {
            return Ok(Reply::refused(
                "ユーザを特定できません。サイトのページからやり直してください。",
            ));
        }
    };
    tracing::info!(user_id = %user.user_id, by_unique_id = unique_id.is_some(), "authenticated");
    // Decision 14: name the user, so a uniqueId registration knows who it is.
    Ok(Reply::ok(
        AuthReply {
            enable_download_effect: user.enable_download_effect,
            user_id: Some(user.user_id),
            name: Some(user.name),
        }
        .encode(),
    ))
}
