//! The administrator's bearer token, checked once for every `/admin/*`
//! route (a route layer), so no handler can forget it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nexmile_core::signature::secrets_equal;

use crate::config::Config;
use crate::error::ApiError;

pub(crate) async fn require_admin(
    State(config): State<Arc<Config>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&config.server.admin_token, given) {
        (Some(token), Some(given)) if secrets_equal(token, given) => next.run(request).await,
        _ => ApiError::new(StatusCode::UNAUTHORIZED, "管理者トークンが必要です。").into_response(),
    }
}
