//! Attacks on identity: what a member of a site must not be able to do to
//! another member (decision 14, security review C1).

use nexmile_core::signal::{ActivateReply, ActivateRequest, DeviceInfo};
use nexmile_core::wire::codes::OsType;

use crate::{LINK, World, cli, find, world};

/// The browser device every attack here connects as, named `name`.
fn test_device(name: &str) -> DeviceInfo {
    DeviceInfo {
        device_token: "106f7a7d-e11c-ef05-2e8c-54b459aa202e".parse().unwrap(),
        app_version: "01.00.00".into(),
        os_type: OsType::Browser,
        device_name: name.into(),
        os_version: "test".into(),
    }
}

/// `POST /api/activate` at the built-in site as device `token`, showing `secret`.
pub(crate) async fn activate_builtin(
    world: &World,
    token: &str,
    secret: Option<&str>,
) -> ActivateReply {
    let request = ActivateRequest {
        site: "nexmile".into(),
        device: DeviceInfo {
            device_token: token.parse().unwrap(),
            app_version: "01.00.00".into(),
            os_type: OsType::Browser,
            device_name: "test".into(),
            os_version: "test".into(),
        },
        unique_id: None,
        user_id: None,
        user_pw: None,
        device_secret: secret.map(nexmile_core::secret::Secret::new),
    };
    world
        .http()
        .post(format!("{}/api/activate", world.server.url()))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The server's first answer to a `hello` with `session_token`.
pub(crate) async fn hello(
    world: &World,
    session_token: &str,
) -> nexmile_core::signal::ServerMessage {
    use futures_util::{SinkExt, StreamExt};
    use nexmile_core::signal::{ClientMessage, PROTOCOL_VERSION};
    use tokio_tungstenite::tungstenite::Message;
    let (url, tls) = world.websocket();
    let (mut socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(&url, None, false, Some(tls))
            .await
            .unwrap();
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        session_token: session_token.to_owned(),
        device: test_device("test"),
    };
    socket
        .send(Message::Text(serde_json::to_string(&hello).unwrap().into()))
        .await
        .unwrap();
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("no answer to hello: {other:?}"),
        }
    }
}

/// H1: the device token is sent to every partner, so it proves nothing.
/// Re-registering a device at the built-in site needs the secret the server
/// gave it; without it nobody takes the device's number or ends its session.
#[tokio::test(flavor = "multi_thread")]
async fn a_known_device_token_does_not_take_a_built_in_number() {
    let world = world(1.0).await;
    let token = "0d3c5e1a-7b2f-4c11-9e4d-5a6b7c8d9e0f";
    let ActivateReply::Activated {
        phone_number: Some(number),
        device_secret: Some(secret),
        session_token,
        ..
    } = activate_builtin(&world, token, None).await
    else {
        panic!("the first registration gives a number and a secret");
    };
    for attempt in [None, Some("0".repeat(64).as_str())] {
        match activate_builtin(&world, token, attempt).await {
            ActivateReply::Refused { message } => {
                assert!(message.contains("鍵と一致しません"), "{message}")
            }
            other => panic!("{attempt:?} took the number: {other:?}"),
        }
    }
    // The owner's session still works, and the owner re-registers with the
    // secret: the same number, a new session, no new secret.
    let welcome = hello(&world, &session_token).await;
    assert!(
        matches!(welcome, nexmile_core::signal::ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    match activate_builtin(&world, token, Some(&secret)).await {
        ActivateReply::Activated {
            phone_number,
            device_secret,
            session_token: renewed,
            ..
        } => {
            assert_eq!(phone_number.as_deref(), Some(number.as_str()));
            assert_eq!(device_secret, None, "issued once");
            assert_ne!(renewed, session_token);
        }
        other => panic!("the owner was refused: {other:?}"),
    }
}

/// C1: a member redeems their own one-time ID but names another member as
/// `user`. The partner vouched only for the ID's owner, so the server refuses,
/// and the victim's calls never reach the attacker.
#[tokio::test(flavor = "multi_thread")]
async fn own_unique_id_with_another_users_name_is_refused() {
    let world = world(1.0).await;
    let own = world.demo.issue_unique_id("taro").await;
    let (events, status) = cli(
        &world,
        "attacker",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&uniqueId={own}&user=hanako"),
        ],
    )
    .await;
    assert_eq!(status, 3, "{events:?}");
    let refused = find(&events, "refused").expect("a refusal");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("認証したユーザと一致しません"),
        "{refused}"
    );
    assert!(find(&events, "activated").is_none());

    // The same one-time ID with its owner's own name is fine.
    let own = world.demo.issue_unique_id("taro").await;
    let (events, status) = cli(
        &world,
        "taro",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&uniqueId={own}&user=taro"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    assert_eq!(find(&events, "activated").unwrap()["userId"], "taro");
}

/// A WebSocket to the server's `/ws`, trusting the test's CA.
pub(crate) async fn socket(
    world: &World,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (url, tls) = world.websocket();
    tokio_tungstenite::connect_async_tls_with_config(&url, None, false, Some(tls))
        .await
        .unwrap()
        .0
}

/// H3: a hello far over the 64 KiB message cap is never parsed, and the
/// server ends the connection without a welcome.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_hello_is_refused_unread() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let world = world(1.0).await;
    let mut socket = socket(&world).await;
    let huge = format!(
        r#"{{"type":"hello","pad":"{}"}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let _ = socket.send(Message::Text(huge.into())).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Text(text)) => {
                    assert!(!text.contains("welcome"), "{text}");
                }
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection stayed open");
}

/// A flood of messages from a registered app: beyond 30 a second (60 at
/// once) they are refused unanswered, and a flood that goes on is closed.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_flood_is_cut_short_and_closed() {
    use futures_util::{SinkExt, StreamExt};
    use nexmile_core::signal::{ClientMessage, PROTOCOL_VERSION};
    use tokio_tungstenite::tungstenite::Message;
    let world = world(1.0).await;
    crate::register(&world).await;
    let session_token = crate::session_token(&world, "hanako", "newsite1");
    let mut socket = socket(&world).await;
    let text = |m: &ClientMessage| Message::Text(serde_json::to_string(m).unwrap().into());
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        session_token,
        device: test_device("flood"),
    };
    socket.send(text(&hello)).await.unwrap();
    // Each would be answered "this live is not on air".
    let leave = ClientMessage::LeaveLive {
        live_token: "no-such-live".into(),
    };
    let (mut sink, mut stream) = socket.split();
    let flood = async move {
        for _ in 0..2_000 {
            if sink.send(text(&leave)).await.is_err() {
                break;
            }
        }
    };
    let read = async move {
        let mut answers = 0;
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(Message::Text(_)) => answers += 1,
                    Ok(Message::Close(_)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        (answers, closed.is_ok())
    };
    let ((), (answers, closed)) = tokio::join!(flood, read);
    eprintln!("flood: {answers} answers, then closed: {closed}");
    assert!(closed, "the flooding connection stayed open");
    // The welcome and at most the burst (60) plus a few refills answered
    // (fewer when the close comes before the queued answers go out).
    assert!(answers <= 80, "{answers} answers");
}

/// M13: a hello with a token old enough (here: any) gets a new one; the old
/// one still works for a grace period but is not rotated again; an
/// administrator's revocation closes the user's connections and ends every
/// token of theirs. The app saves a rotated token and goes on with it.
#[tokio::test(flavor = "multi_thread")]
async fn session_tokens_rotate_and_an_administrator_revokes_them() {
    use futures_util::{SinkExt, StreamExt};
    use nexmile_core::signal::{ClientMessage, PROTOCOL_VERSION, ServerMessage};
    use tokio_tungstenite::tungstenite::Message;
    let world = world(1.0).await;
    crate::register(&world).await;
    let world = world.restarted_with("session_rotate_after_sec = 0").await;
    let first = crate::session_token(&world, "hanako", "newsite1");
    let rotated = |welcome: ServerMessage| match welcome {
        ServerMessage::Welcome { session_token, .. } => session_token,
        other => panic!("not welcomed: {other:?}"),
    };
    // The app is given a new token at its hello, saves it and signs in
    // with it next time.
    let video_test = format!("{LINK}/videoSetting/?site=newsite1&download=0");
    let (events, status) = cli(
        &world,
        "hanako",
        &["open", &video_test, "--duration", "500"],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    let second = crate::session_token(&world, "hanako", "newsite1");
    assert_ne!(second, first);
    // The replaced token still works (an app that did not save in time),
    // and rotates nothing: the second stays the current one.
    assert_eq!(rotated(hello(&world, &first).await), None);
    let third = rotated(hello(&world, &second).await).expect("a new token");
    assert_ne!(third, second);
    // Only the last replaced token has a grace: the first is over.
    assert!(matches!(
        hello(&world, &first).await,
        ServerMessage::Error { .. }
    ));

    // hanako is connected when the administrator revokes her sessions.
    let mut connected = socket(&world).await;
    let hello_with = |token: &str| {
        Message::Text(
            serde_json::to_string(&ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                session_token: token.to_owned(),
                device: test_device("test"),
            })
            .unwrap()
            .into(),
        )
    };
    connected.send(hello_with(&third)).await.unwrap();
    assert!(matches!(connected.next().await, Some(Ok(Message::Text(_)))));
    let revoked: serde_json::Value = world
        .http()
        .post(format!(
            "{}/admin/sites/newsite1/users/hanako/revoke",
            world.server.url()
        ))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(revoked["revoked"].as_u64() >= Some(1), "{revoked}");
    assert!(revoked["closed"].as_u64() >= Some(1), "{revoked}");
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match connected.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the revoked connection stayed open");
    for token in [&second, &third] {
        assert!(
            matches!(hello(&world, token).await, ServerMessage::Error { .. }),
            "a revoked token still works"
        );
    }
    world.server.stop().await;
}

/// H3: an app that stops reading while the server has much to tell it (here
/// its partner pushes 20 KiB messages) is closed once its queue is full,
/// instead of having every message kept for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_never_reads_is_closed_not_buffered() {
    use futures_util::{SinkExt, StreamExt};
    use nexmile_core::signal::{ClientMessage, PROTOCOL_VERSION};
    use tokio_tungstenite::tungstenite::Message;
    let world = world(1.0).await;
    crate::register(&world).await;
    let session_token = crate::session_token(&world, "hanako", "newsite1");
    let mut socket = socket(&world).await;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        session_token,
        device: test_device("never reads"),
    };
    socket
        .send(Message::Text(serde_json::to_string(&hello).unwrap().into()))
        .await
        .unwrap();
    // 3,000 pushes of 20 KiB (60 MB) while the app reads nothing.
    const PUSHES: usize = 3_000;
    let body =
        serde_json::json!({ "title": "大量", "body": "あ".repeat(6_800), "userIds": ["hanako"] });
    let http = world.http();
    for _ in 0..PUSHES {
        let answer = http
            .post(format!(
                "{}/SiteOwner/PushMessage?siteKey=test.key",
                world.server.url()
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(answer.starts_with("result=0"), "{answer}");
    }
    // Reading now finds what the kernel's buffers held, then the end: far
    // fewer than were pushed.
    let mut received = 0;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Text(_)) => received += 1,
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    eprintln!("a reader that never read: {received} of {PUSHES} pushes, then closed");
    assert!(closed.is_ok(), "the connection stayed open");
    assert!(received < PUSHES, "every push was kept for it: {received}");
    world.server.stop().await;
}

/// H3: a half-open connection (the network between went silent: no FIN, no
/// pong) is dropped by the server within 60 s. A proxy in the test carries
/// the connection and then stops forwarding either way.
#[tokio::test(flavor = "multi_thread")]
async fn a_half_open_connection_is_dropped_within_a_minute() {
    use futures_util::SinkExt;
    use nexmile_core::signal::{ClientMessage, PROTOCOL_VERSION};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message;
    let world = world(1.0).await;
    crate::register(&world).await;
    let session_token = crate::session_token(&world, "hanako", "newsite1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let server = world.server.addr;
    let silent = Arc::new(AtomicBool::new(false));
    // The server's side of the path: when it sees end of stream, it closed.
    let (server_closed_tx, server_closed) = tokio::sync::oneshot::channel::<std::time::Instant>();
    let path = {
        let silent = Arc::clone(&silent);
        tokio::spawn(async move {
            let (mut client, _) = listener.accept().await.unwrap();
            let mut upstream = tokio::net::TcpStream::connect(server).await.unwrap();
            let mut closed = Some(server_closed_tx);
            let (mut from_client, mut from_server) = ([0u8; 16_384], [0u8; 16_384]);
            loop {
                tokio::select! {
                    n = client.read(&mut from_client) => match n {
                        Ok(n) if n > 0 => {
                            if !silent.load(Ordering::Relaxed) {
                                upstream.write_all(&from_client[..n]).await.unwrap();
                            }
                        }
                        _ => std::future::pending::<()>().await,
                    },
                    n = upstream.read(&mut from_server) => match n {
                        Ok(n) if n > 0 => {
                            if !silent.load(Ordering::Relaxed) {
                                client.write_all(&from_server[..n]).await.unwrap();
                            }
                        }
                        // The server hung up: what the test waits for.
                        _ => {
                            if let Some(closed) = closed.take() {
                                let _ = closed.send(std::time::Instant::now());
                            }
                            std::future::pending::<()>().await;
                        }
                    },
                }
            }
        })
    };
    let (_, tls) = world.websocket();
    let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://127.0.0.1:{}/ws", proxy.port()),
        None,
        false,
        Some(tls),
    )
    .await
    .unwrap();
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        session_token,
        device: test_device("half-open"),
    };
    socket
        .send(Message::Text(serde_json::to_string(&hello).unwrap().into()))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    // The path goes silent: nothing more either way, and nobody closes it.
    silent.store(true, Ordering::Relaxed);
    let since = std::time::Instant::now();
    let dropped = tokio::time::timeout(std::time::Duration::from_secs(60), server_closed)
        .await
        .expect("the server kept a half-open connection past a minute")
        .unwrap();
    eprintln!("half-open connection dropped after {:?}", dropped - since);
    path.abort();
    drop(socket);
    world.server.stop().await;
}
