//! The administrator API (`/admin/*`, bearer token from the config): the
//! outbox with every attempt, recent calls, and disconnecting a call (reason 4).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use nexmile_core::signature::secrets_equal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::calls::Command;
use crate::state::Ctx;

#[derive(Deserialize)]
pub struct Limit {
    #[serde(default = "fifty")]
    limit: i64,
}

fn fifty() -> i64 {
    50
}

type Reply = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn authorize(ctx: &Ctx, headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&ctx.config.server.admin_token, given) {
        (Some(token), Some(given)) if secrets_equal(token, given) => Ok(()),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "管理者トークンが必要です。"})),
        )),
    }
}

fn internal(e: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": e.to_string()})),
    )
}

pub async fn outbox(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    Query(q): Query<Limit>,
) -> Reply {
    authorize(&ctx, &headers)?;
    let entries = ctx.store.outbox(q.limit).await.map_err(internal)?;
    Ok(Json(json!(
        entries
            .into_iter()
            .map(|(entry, attempts)| json!({"entry": entry, "attempts": attempts}))
            .collect::<Vec<_>>()
    )))
}

pub async fn calls(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    Query(q): Query<Limit>,
) -> Reply {
    authorize(&ctx, &headers)?;
    let recent = ctx.store.recent_calls(q.limit).await.map_err(internal)?;
    Ok(Json(
        json!({"running": ctx.calls.running_tokens(), "recent": recent}),
    ))
}

pub async fn disconnect(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    Path(call_token): Path<String>,
) -> Reply {
    authorize(&ctx, &headers)?;
    if ctx.calls.send(&call_token, Command::Administrator) {
        Ok(Json(json!({"disconnected": call_token})))
    } else {
        Err((
            StatusCode::NOT_FOUND,
            Json(json!({"error": "その通話は実行中ではありません。"})),
        ))
    }
}
