//! The signalling WebSocket (`/ws`): `hello` with a session token first,
//! then call messages both ways (see `nexmile_core::signal`).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use governor::{Quota, RateLimiter};
use nexmile_core::signal::{ClientMessage, PROTOCOL_VERSION, ServerMessage};
use tokio::time::Instant;

use crate::hub::{ConnCaps, ConnKind};
use crate::limits::{Costly, client_ip};
use crate::services::Services;
use crate::signalling::dispatch::Dispatcher;

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message or frame read, before and after `hello`: an SDP
/// offer with every codec is under 16 KiB, a comment under 1 KiB.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;
/// A ping this often; a peer heard nothing from for [`SILENCE_LIMIT`] is
/// gone (a half-open TCP connection never says so). Checked at each ping,
/// so a silent peer is dropped at the third, 45 s after it fell silent.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(40);
/// A write that does not finish by then means a peer that stopped reading.
/// Not sooner: on a slow access link that media fills, TCP backs off for
/// seconds at a time, and 10 s dropped a callee who was still in the call
/// (its client then waited on a connection the server had closed).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages over the rate are refused; this many refused in a row end the connection.
const FLOOD_LIMIT: u32 = 200;

pub(crate) async fn upgrade(
    State(dispatcher): State<Arc<Dispatcher>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let trusted = &dispatcher.services.config.server.trusted_proxies;
    let ip = client_ip(peer.ip(), &headers, trusted);
    // tungstenite zero-fills its whole read buffer on each read attempt, and
    // the session polls for input after every message it sends: the default
    // 128 KiB made that 13 % of the CPU of a comment going to 1,000 viewers.
    // Signalling messages are a few KiB; longer ones are read in more chunks.
    ws.read_buffer_size(8 * 1024)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(dispatcher, socket, ip))
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    let text = serde_json::to_string(message).expect("server messages serialize");
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

async fn refuse(mut socket: WebSocket, message: &str) {
    let _ = send(
        &mut socket,
        &ServerMessage::Error {
            message: message.to_owned(),
        },
    )
    .await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn session(dispatcher: Arc<Dispatcher>, mut socket: WebSocket, ip: IpAddr) {
    let services = &dispatcher.services;
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        return refuse(socket, "最初に hello を送ってください。").await;
    };
    let Ok(ClientMessage::Hello {
        protocol,
        session_token,
        device: info,
    }) = serde_json::from_str::<ClientMessage>(&text)
    else {
        return refuse(socket, "最初に hello を送ってください。").await;
    };
    if protocol != PROTOCOL_VERSION {
        return refuse(
            socket,
            &format!("このアプリは古いため接続できません（プロトコル {protocol}）。アプリを更新してください。"),
        )
        .await;
    }
    let (device, shown) =
        match crate::signalling::sessions::device_of_token(services, &session_token).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return refuse(
                    socket,
                    "登録が無効です。サイトのアプリリンクから登録し直してください。",
                )
                .await;
            }
            Err(e) => {
                tracing::error!("{e}");
                return refuse(socket, "サーバでエラーが発生しました。").await;
            }
        };
    if device.site == "nexmile" && !services.config.server.builtin_site {
        return refuse(socket, "このサーバでは Nexmile 番号は使えません。").await;
    }
    // A failed rotation keeps the shown token, which stays valid.
    let rotated = crate::signalling::sessions::rotate_if_due(services, &device, shown)
        .await
        .unwrap_or_else(|e| {
            tracing::error!("session rotation: {e}");
            None
        });
    let (tx, mut outgoing) = crate::hub::outgoing();
    let welcome = ServerMessage::Welcome {
        protocol: PROTOCOL_VERSION,
        user_id: device.user_id.clone(),
        name: device.name.clone(),
        phone_number: device.phone_number.clone(),
        session_token: rotated,
        ice_servers: crate::signalling::ice::ice_servers(
            &services.config.ice,
            &device.user_id,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
    };
    let device_token = device.device_token.clone();
    let limits = &services.limits.section;
    let caps = ConnCaps {
        per_ip: limits.connections_per_ip,
        per_device: limits.connections_per_device,
    };
    let conn = match services
        .hub
        .register(ConnKind::App, device, info, ip, tx, caps)
    {
        Ok(conn) => conn,
        Err(message) => return refuse(socket, &message).await,
    };
    let rate = NonZeroU32::new(limits.messages_per_second.max(1)).expect("at least one");
    let flood = RateLimiter::direct(
        Quota::per_second(rate).allow_burst(rate.saturating_mul(NonZeroU32::new(2).expect("two"))),
    );
    let mut refused_in_a_row = 0;
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    if send(&mut socket, &welcome).await {
        loop {
            tokio::select! {
                incoming = socket.recv() => {
                    heard = Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            if flood.check().is_err() {
                                refused_in_a_row += 1;
                                if refused_in_a_row >= FLOOD_LIMIT {
                                    tracing::warn!(%ip, "connection {conn} flooded the server: closed");
                                    break;
                                }
                                continue;
                            }
                            refused_in_a_row = 0;
                            match serde_json::from_str::<ClientMessage>(&text) {
                                Ok(message) => {
                                    if let Err(words) = costly_allowed(services, &message, ip, &device_token) {
                                        services.hub.send(conn, ServerMessage::Error { message: words });
                                        continue;
                                    }
                                    dispatcher.dispatch(conn, message).await;
                                }
                                Err(e) => services.hub.send(conn, ServerMessage::Error {
                                    message: format!("メッセージを読み取れませんでした: {e}"),
                                }),
                            }
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => {}
                    }
                },
                message = outgoing.recv() => match message {
                    Some(message) => {
                        if !send(&mut socket, &message).await {
                            break;
                        }
                    }
                    // The queue overflowed: a reader that does not read.
                    None => break,
                },
                _ = ping.tick() => {
                    if heard.elapsed() > SILENCE_LIMIT {
                        tracing::info!(%ip, "connection {conn} silent for {SILENCE_LIMIT:?}: closed");
                        break;
                    }
                    let pinged = tokio::time::timeout(
                        SEND_TIMEOUT,
                        socket.send(Message::Ping(Vec::new().into())),
                    )
                    .await;
                    if !matches!(pinged, Ok(Ok(()))) {
                        break;
                    }
                }
            }
        }
    }
    dispatcher.disconnect(conn);
}

/// A call or a video test costs the server media and the partner a
/// request: limited per address and per device.
fn costly_allowed(
    services: &Services,
    message: &ClientMessage,
    ip: IpAddr,
    device_token: &str,
) -> Result<(), String> {
    let what = match message {
        ClientMessage::MakeCall { .. } => Costly::Call,
        ClientMessage::StartVideoTest { .. } => Costly::VideoTest,
        _ => return Ok(()),
    };
    services.limits.check(what, ip, device_token)
}
