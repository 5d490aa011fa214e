//! The SkyWay Channel API surface (`POST /v1/json-rpc`): channels made by
//! `createChannel` are stored; running calls and lives are channels too,
//! described by their own tasks at the moment of asking, and so are the
//! scheduled (ImageFlux) channels on air. Every method call
//! counts toward the deployment's monthly limit (429 beyond it).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nexmile_compat::skyway::{
    Answer, Body, Call, Channel, ChannelKey, ChannelSummary, ErrorObjectOwned, Id, Method, Room,
    already_exists, internal_error, invalid_request, is_room_name, not_found, response,
    unauthorized, usage_limit_exceeded,
};
use nexmile_core::datetime::{JST, WireDateTime};
use nexmile_core::signature::secrets_equal;
use serde_json::Value;

use crate::calls::Calls;
use crate::compat::imageflux::ingest::Channels;
use crate::lives::Lives;
use crate::services::Services;
use crate::store::StoreError;
use crate::store::skyway::ChannelColumn;

/// What the SkyWay surface reads: the stored channels, and the running
/// calls, lives and scheduled channels as rooms.
pub struct SkyWay {
    pub services: Arc<Services>,
    pub calls: Arc<Calls>,
    pub lives: Arc<Lives>,
    pub channels: Arc<Channels>,
}

pub(crate) async fn json_rpc(
    State(skyway): State<Arc<SkyWay>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = Body::parse(&body);
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let tokens = &skyway.services.config.skyway.admin_tokens;
    if !given.is_some_and(|given| tokens.iter().any(|t| secrets_equal(t, given))) {
        let refusal = response(body.first_id(), Err(unauthorized()));
        return (StatusCode::UNAUTHORIZED, Json(refusal)).into_response();
    }
    let answers = match body {
        Body::Refused(error) => return Json(response(Id::Null, Err(error))).into_response(),
        Body::Single(call) => match answer(&skyway, call).await {
            Some(one) => return Json(one).into_response(),
            None => Vec::new(),
        },
        Body::Batch(calls) => {
            let mut answers = Vec::new();
            for call in calls {
                answers.extend(answer(&skyway, call).await);
            }
            answers
        }
    };
    // Notifications alone get no body (JSON-RPC 2.0 §6).
    if answers.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Json(Value::Array(answers)).into_response()
    }
}

/// Carries out one call; `None` for a notification.
async fn answer(skyway: &SkyWay, call: Call) -> Option<Value> {
    let (id, method) = match call {
        Call::Request { id, method } => (Some(id), method),
        Call::Notification { method } => (None, method),
        Call::Invalid { id } => return Some(response(id, Err(invalid_request()))),
    };
    let outcome = match method {
        Ok(method) => run(skyway, method).await,
        Err(error) => Err(error),
    };
    id.map(|id| response(id, outcome))
}

async fn run(skyway: &SkyWay, method: Method) -> Result<Answer, ErrorObjectOwned> {
    let stored = |e: StoreError| internal_error(&e.to_string());
    if let Some(limit) = skyway.services.config.skyway.monthly_limit {
        let month = WireDateTime::from_unix_millis(skyway.services.clock.now(), JST).nexmile();
        let used = skyway
            .services
            .store
            .count_skyway_call(&month[..7])
            .await
            .map_err(stored)?;
        if used > limit {
            return Err(usage_limit_exceeded());
        }
    }
    match method {
        Method::Find(key) => match find(skyway, &key).await.map_err(stored)? {
            Some(channel) => Ok(Answer::Found { channel }),
            None => Err(not_found(&key)),
        },
        Method::Create { name, metadata } => {
            let created = create(skyway, name, metadata).await?;
            Ok(Answer::Created { channel: created })
        }
        Method::FindOrCreate { name, metadata } => {
            let key = ChannelKey::Name(name.clone());
            if let Some(channel) = find(skyway, &key).await.map_err(stored)? {
                return Ok(Answer::Found { channel });
            }
            // Two callers racing for one name: the loser finds the winner's.
            match create(skyway, Some(name), metadata).await {
                Ok(summary) => Ok(Answer::Found {
                    channel: empty(summary),
                }),
                Err(e) if e.code() == 409 => match find(skyway, &key).await.map_err(stored)? {
                    Some(channel) => Ok(Answer::Found { channel }),
                    None => Err(e),
                },
                Err(e) => Err(e),
            }
        }
    }
}

fn empty(summary: ChannelSummary) -> Channel {
    Channel {
        summary,
        members: Vec::new(),
        publications: Vec::new(),
        subscriptions: Vec::new(),
    }
}

/// The running calls and lives first, then the stored channels.
async fn find(skyway: &SkyWay, key: &ChannelKey) -> Result<Option<Channel>, StoreError> {
    let matches = |room: &Room| match key {
        ChannelKey::Id(id) => room.id.eq_ignore_ascii_case(id),
        ChannelKey::Name(name) => &room.name == name,
    };
    let mut rooms = skyway.calls.rooms().await;
    rooms.extend(skyway.lives.rooms().await);
    rooms.extend(skyway.channels.rooms());
    if let Some(room) = rooms.iter().find(|room| matches(room)) {
        return Ok(Some(room.channel()));
    }
    let found = match key {
        ChannelKey::Id(id) => {
            let id = id.to_ascii_lowercase();
            let store = &skyway.services.store;
            store.skyway_channel(ChannelColumn::Id, &id).await?
        }
        ChannelKey::Name(name) => {
            let store = &skyway.services.store;
            store.skyway_channel(ChannelColumn::Name, name).await?
        }
    };
    Ok(found.map(empty))
}

async fn create(
    skyway: &SkyWay,
    name: Option<String>,
    metadata: Option<String>,
) -> Result<ChannelSummary, ErrorObjectOwned> {
    if let Some(name) = &name {
        let taken = is_room_name(name)
            || find(skyway, &ChannelKey::Name(name.clone()))
                .await
                .map_err(|e| internal_error(&e.to_string()))?
                .is_some();
        if taken {
            return Err(already_exists(name));
        }
    }
    let channel = ChannelSummary {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        metadata,
    };
    let now = skyway.services.clock.now().0;
    match skyway
        .services
        .store
        .add_skyway_channel(&channel, now)
        .await
    {
        Ok(true) => Ok(channel),
        Ok(false) => Err(already_exists(channel.name.as_deref().unwrap_or_default())),
        Err(e) => Err(internal_error(&e.to_string())),
    }
}
