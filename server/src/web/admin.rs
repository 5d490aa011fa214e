//! The administrator API (`/admin/*`, bearer token from the config): the
//! outbox with every attempt, recent calls, and disconnecting a call (reason 4).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use nexmile_core::live::LiveEvent;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::calls::{Calls, Command};
use crate::config::Config;
use crate::error::ApiError;
use crate::hls::HlsChannels;
use crate::lives::{LiveCommand, Lives};
use crate::services::Services;
use crate::store::Store;
use crate::tokens::{CallToken, LiveToken};

#[derive(Deserialize)]
pub(crate) struct Limit {
    #[serde(default = "fifty")]
    limit: i64,
}

fn fifty() -> i64 {
    50
}

type Reply = Result<Json<Value>, ApiError>;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

pub(crate) async fn outbox(State(store): State<Store>, Query(q): Query<Limit>) -> Reply {
    let entries = store.outbox(q.limit).await.map_err(internal)?;
    Ok(Json(json!(
        entries
            .into_iter()
            .map(|(entry, attempts)| json!({"entry": entry, "attempts": attempts}))
            .collect::<Vec<_>>()
    )))
}

pub(crate) async fn calls(
    State(store): State<Store>,
    State(calls): State<Arc<Calls>>,
    Query(q): Query<Limit>,
) -> Reply {
    let recent = store.recent_calls(q.limit).await.map_err(internal)?;
    Ok(Json(
        json!({"running": calls.running_tokens(), "recent": recent}),
    ))
}

/// What an administrator says when removing someone from a live, or to its broadcaster.
#[derive(Deserialize, Default)]
pub(crate) struct AdminWords {
    #[serde(default)]
    comment: Option<String>,
}

fn not_running() -> ApiError {
    ApiError::not_found("そのライブは配信中ではありません。")
}

pub(crate) async fn lives(State(lives): State<Arc<Lives>>) -> Reply {
    Ok(Json(json!({"running": lives.running_tokens()})))
}

/// §5.3.7: the broadcaster is removed (96) and the live ends (13).
pub(crate) async fn remove_broadcaster(
    State(lives): State<Arc<Lives>>,
    Path(live_token): Path<LiveToken>,
    words: Option<Json<AdminWords>>,
) -> Reply {
    let comment = words.and_then(|Json(w)| w.comment);
    let event = LiveEvent::AdminRemovesBroadcaster { comment };
    if lives.send(&live_token, LiveCommand::Event(event)) {
        Ok(Json(json!({"ended": live_token})))
    } else {
        Err(not_running())
    }
}

/// §5.3.18: one viewer is removed (94, then 33).
pub(crate) async fn remove_viewer(
    State(lives): State<Arc<Lives>>,
    Path((live_token, user_id)): Path<(LiveToken, String)>,
    words: Option<Json<AdminWords>>,
) -> Reply {
    let comment = words.and_then(|Json(w)| w.comment);
    let removed = lives
        .ask(&live_token, |done| LiveCommand::AdminRemovesViewer {
            user_id: user_id.clone(),
            comment,
            done,
        })
        .await;
    if removed {
        Ok(Json(json!({"removed": user_id})))
    } else {
        Err(ApiError::not_found(
            "その視聴者はこのライブを視聴していません。",
        ))
    }
}

/// §5.3.8: a message to the broadcaster (97), shown on its screen.
pub(crate) async fn message_broadcaster(
    State(lives): State<Arc<Lives>>,
    Path(live_token): Path<LiveToken>,
    words: Option<Json<AdminWords>>,
) -> Reply {
    let text = words
        .and_then(|Json(w)| w.comment)
        .filter(|t| !t.trim().is_empty());
    let Some(text) = text else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "comment にメッセージを書いてください。",
        ));
    };
    let event = LiveEvent::AdminMessage { text };
    if lives.send(&live_token, LiveCommand::Event(event)) {
        Ok(Json(json!({"sent": live_token})))
    } else {
        Err(not_running())
    }
}

pub(crate) async fn disconnect(
    State(calls): State<Arc<Calls>>,
    Path(call_token): Path<CallToken>,
) -> Reply {
    if calls.send(&call_token, Command::Administrator) {
        Ok(Json(json!({"disconnected": call_token})))
    } else {
        Err(ApiError::not_found("その通話は実行中ではありません。"))
    }
}

/// Signs a site's user out of every device (security review M13): their
/// session tokens stop working and their open connections close; the app
/// must register again through the site.
pub(crate) async fn revoke_sessions(
    State(services): State<Arc<Services>>,
    Path((site, user_id)): Path<(String, String)>,
) -> Reply {
    let revoked = services
        .store
        .revoke_sessions(&site, &user_id)
        .await
        .map_err(internal)?;
    let closed = services.hub.close_user(&site, &user_id);
    tracing::info!(
        "administrator revoked {site}/{user_id}: {revoked} devices, {closed} connections"
    );
    Ok(Json(json!({ "revoked": revoked, "closed": closed })))
}

/// The recorded lives (serverSideRecording), newest first.
pub(crate) async fn recordings(State(config): State<Arc<Config>>) -> Reply {
    let root = config.server.recordings.clone();
    let mut found = tokio::task::spawn_blocking(move || list_recordings(&root))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    found.sort_by(|a, b| b["modified_ms"].as_i64().cmp(&a["modified_ms"].as_i64()));
    Ok(Json(json!({ "recordings": found })))
}

fn list_recordings(root: &std::path::Path) -> std::io::Result<Vec<Value>> {
    let mut found = Vec::new();
    let sites = match std::fs::read_dir(root) {
        Ok(sites) => sites,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for site in sites.flatten().filter(|e| e.path().is_dir()) {
        let site_code = site.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(site.path())?.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let meta = file.metadata()?;
            if !meta.is_file() || !name.ends_with(".mp4") {
                continue;
            }
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            found.push(json!({
                "site": site_code,
                "file": name,
                "bytes": meta.len(),
                "modified_ms": modified_ms,
                "url": format!("/admin/recordings/{site_code}/{name}"),
            }));
        }
    }
    Ok(found)
}

/// One recording's MP4, with range requests (players seek in it).
pub(crate) async fn recording(
    State(config): State<Arc<Config>>,
    Path((site, file)): Path<(String, String)>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    // Names as the recorder writes them: nothing that climbs out of the folder.
    let plain = |name: &str| {
        !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !plain(&site) || !plain(&file) || !file.ends_with(".mp4") {
        return ApiError::not_found("その録画はありません。").into_response();
    }
    let path = config.server.recordings.join(site).join(file);
    match tower_http::services::ServeFile::new(path)
        .oneshot(request)
        .await
    {
        Ok(response) => response.into_response(),
        Err(e) => internal(e).into_response(),
    }
}

/// A scheduled channel's HLS packaging figures (segments, their length, the
/// delay from a segment's first picture to its publication).
pub(crate) async fn hls(State(hls): State<Arc<HlsChannels>>, Path(channel): Path<String>) -> Reply {
    match hls.figures(&channel) {
        Some(figures) => Ok(Json(json!(figures))),
        None => Err(ApiError::not_found("そのチャンネルのHLSはありません。")),
    }
}
