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

use crate::calls::{self, Command, MakeCall};
use crate::hub::{ConnCaps, ConnId, ConnKind};
use crate::limits::{Costly, client_ip};
use crate::lives::{self, LiveCommand};
use crate::state::Ctx;

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message or frame read, before and after `hello`: an SDP
/// offer with every codec is under 16 KiB, a comment under 1 KiB.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// A ping this often; a peer heard nothing from for [`SILENCE_LIMIT`] is
/// gone (a half-open TCP connection never says so). Checked at each ping,
/// so a silent peer is dropped at the third, 45 s after it fell silent.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(40);
/// A write that does not finish by then means a peer that stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages over the rate are refused; this many refused in a row end the connection.
const FLOOD_LIMIT: u32 = 200;

pub async fn upgrade(
    State(ctx): State<Arc<Ctx>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let ip = client_ip(peer.ip(), &headers, &ctx.config.server.trusted_proxies);
    // tungstenite zero-fills its whole read buffer on each read attempt, and
    // the session polls for input after every message it sends: the default
    // 128 KiB made that 13 % of the CPU of a comment going to 1,000 viewers.
    // Signalling messages are a few KiB; longer ones are read in more chunks.
    ws.read_buffer_size(8 * 1024)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(ctx, socket, ip))
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

async fn session(ctx: Arc<Ctx>, mut socket: WebSocket, ip: IpAddr) {
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
    let (device, shown) = match crate::sessions::device_of_token(&ctx, &session_token).await {
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
    if device.site == "nexmile" && !ctx.config.server.builtin_site {
        return refuse(socket, "このサーバでは Nexmile 番号は使えません。").await;
    }
    // A failed rotation keeps the shown token, which stays valid.
    let rotated = crate::sessions::rotate_if_due(&ctx, &device, shown)
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
    };
    let device_token = device.device_token.clone();
    let limits = &ctx.limits.section;
    let caps = ConnCaps {
        per_ip: limits.connections_per_ip,
        per_device: limits.connections_per_device,
    };
    let conn = match ctx.hub.register(ConnKind::App, device, info, ip, tx, caps) {
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
                                    if let Err(words) = costly_allowed(&ctx, &message, ip, &device_token) {
                                        ctx.hub.send(conn, ServerMessage::Error { message: words });
                                        continue;
                                    }
                                    dispatch(&ctx, conn, message).await;
                                }
                                Err(e) => ctx.hub.send(conn, ServerMessage::Error {
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
    disconnect(&ctx, conn);
}

/// A call or a video test costs the server media and the partner a
/// request: limited per address and per device.
fn costly_allowed(
    ctx: &Ctx,
    message: &ClientMessage,
    ip: IpAddr,
    device_token: &str,
) -> Result<(), String> {
    let what = match message {
        ClientMessage::MakeCall { .. } => Costly::Call,
        ClientMessage::StartVideoTest { .. } => Costly::VideoTest,
        _ => return Ok(()),
    };
    ctx.limits.check(what, ip, device_token)
}

/// A connection is gone: its video test ends, and its call or live hears so.
pub(crate) fn disconnect(ctx: &Ctx, conn: ConnId) {
    end_video_test(ctx, conn);
    if let Some(token) = ctx.hub.unregister(conn)
        && !ctx.calls.send(&token, Command::ConnLost { conn })
    {
        ctx.lives.send(&token, LiveCommand::ConnLost { conn });
    }
}

pub(crate) async fn dispatch(ctx: &Arc<Ctx>, conn: ConnId, message: ClientMessage) {
    let (call_token, command) = match message {
        ClientMessage::Hello { .. } => return,
        ClientMessage::MakeCall {
            callee_id,
            video,
            caller_sub_id,
            callee_sub_id,
        } => {
            let request = MakeCall {
                callee_id,
                video,
                caller_sub_id,
                callee_sub_id,
            };
            return calls::make_call(ctx, conn, request).await;
        }
        ClientMessage::StartVideoTest { offer } => {
            return start_video_test(ctx, conn, &offer).await;
        }
        ClientMessage::EndVideoTest => return end_video_test(ctx, conn),
        ClientMessage::StartCall { call_token, offer } => {
            (call_token, Command::Start { conn, offer })
        }
        ClientMessage::Answer { call_token, offer } => {
            (call_token, Command::Answer { conn, offer })
        }
        ClientMessage::Decline { call_token } => (call_token, Command::Decline { conn }),
        ClientMessage::Hangup { call_token } => (call_token, Command::Hangup { conn }),
        ClientMessage::PrepareBroadcast { link_id } => {
            return lives::prepare_broadcast(ctx, conn, link_id);
        }
        live => return dispatch_live(ctx, conn, live),
    };
    if !ctx.calls.send(&call_token, command) {
        ctx.hub.send(
            conn,
            ServerMessage::CallEnded {
                call_token: Some(call_token),
                reason: nexmile_core::wire::codes::TerminateReason::InternalError,
                message: Some("この通話はすでに終了しています。".into()),
                overview: None,
            },
        );
    }
}

/// A message about a running live, to that live's task.
fn dispatch_live(ctx: &Arc<Ctx>, conn: ConnId, message: ClientMessage) {
    let (live_token, command) = match message {
        ClientMessage::BroadcastMedia { live_token, offer } => {
            (live_token, LiveCommand::Media { conn, offer })
        }
        ClientMessage::StartBroadcast { live_token } => (live_token, LiveCommand::Start { conn }),
        ClientMessage::ViewLive {
            live_token,
            link_id,
        } => (live_token, LiveCommand::View { conn, link_id }),
        ClientMessage::ReceiveLive { live_token, offer } => {
            (live_token, LiveCommand::Receive { conn, offer })
        }
        ClientMessage::LiveMediaReceived { live_token } => {
            (live_token, LiveCommand::MediaReceived { conn })
        }
        ClientMessage::LiveComment { live_token, text } => {
            (live_token, LiveCommand::Comment { conn, text })
        }
        ClientMessage::LiveItem {
            live_token,
            category,
            item_no,
        } => (
            live_token,
            LiveCommand::Item {
                conn,
                category,
                item_no,
            },
        ),
        ClientMessage::LeaveLive { live_token } => (live_token, LiveCommand::Leave { conn }),
        ClientMessage::RemoveViewer {
            live_token,
            user_id,
        } => (live_token, LiveCommand::RemoveViewer { conn, user_id }),
        ClientMessage::PaidSwitch {
            live_token,
            unit_price,
        } => (live_token, LiveCommand::PaidSwitch { conn, unit_price }),
        ClientMessage::Favorite {
            live_token,
            favorite,
        } => (live_token, LiveCommand::Favorite { conn, favorite }),
        ClientMessage::Payment {
            live_token,
            amount,
            payment_id,
        } => {
            // Clients before payment IDs: each message is its own payment.
            let payment_id = payment_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            (
                live_token,
                LiveCommand::Payment {
                    conn,
                    amount,
                    payment_id,
                },
            )
        }
        _ => return,
    };
    if !ctx.lives.send(&live_token, command) {
        ctx.hub.send(
            conn,
            ServerMessage::Live {
                live_token,
                notice: nexmile_core::signal::LiveNotice::Ended {
                    reason: nexmile_core::signal::LiveEndReason::NotOnAir,
                    message: Some("このライブは終了しているか、まだ始まっていません。".into()),
                    summary: None,
                },
            },
        );
    }
}

const VIDEO_TEST: &str = "video-test";

/// The video test's one leg: its own media comes straight back.
const ECHO: nexmile_sfu::LegSpec = nexmile_sfu::LegSpec {
    publishes: Some(nexmile_sfu::Feed(0)),
    receives: Some(nexmile_sfu::Feed(0)),
    paces_publisher: true,
};

/// videoSetting's loopback test: one leg whose media comes straight back,
/// through the same engine and server path as a call's.
async fn start_video_test(ctx: &Arc<Ctx>, conn: ConnId, offer: &str) {
    end_video_test(ctx, conn);
    // The leg reports nothing the test needs: its end is the connection's.
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    let opened = match nexmile_sfu::Room::start(&ctx.config.server.media_ips) {
        Ok(media) => media
            .open(offer, ECHO, events)
            .await
            .map(|(_, answer)| (media, answer)),
        Err(e) => Err(e),
    };
    match opened {
        Ok((media, answer)) => {
            ctx.video_tests
                .lock()
                .expect("video tests lock")
                .insert(conn, media);
            ctx.hub.send(
                conn,
                ServerMessage::MediaAnswer {
                    call_token: VIDEO_TEST.into(),
                    answer,
                },
            );
        }
        Err(e) => ctx.hub.send(
            conn,
            ServerMessage::Error {
                message: format!("ビデオテストを開始できませんでした: {e}"),
            },
        ),
    }
}

fn end_video_test(ctx: &Ctx, conn: ConnId) {
    // Dropped, the test's media room ends its connection.
    drop(
        ctx.video_tests
            .lock()
            .expect("video tests lock")
            .remove(&conn),
    );
}
