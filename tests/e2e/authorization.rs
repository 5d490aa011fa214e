//! The authorisation matrix (issue 21 §8). Every protected HTTP route of the
//! OpenAPI document is tried with no credentials, wrong ones, another
//! scheme's, and expired ones; the site-owner API with no key, a wrong key
//! and another site's key; every WebSocket message that names a call or a
//! live is sent by a member of the same site who has no part in it and by a
//! user of another site. A new route or message joins the matrix by itself
//! (routes) or fails to compile here until it is added (messages).
//!
//! C1's link and H1's re-activation are in `security.rs`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nexmile_core::signal::{
    ActivateReply, ClientMessage, DeviceInfo, LiveNotice, PROTOCOL_VERSION, ServerMessage,
};
use nexmile_core::wire::codes::OsType;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::lives::live_on_air;
use crate::security::{activate_builtin, hello, socket};
use crate::{LINK, World, cli, dial, find, listen, register, world};

/// The credentials a protected route must refuse, for one scheme: what each is.
type Attempts = Vec<(&'static str, Option<String>)>;

/// A world whose ImageFlux tokens live one second and whose session tokens
/// rotate at every hello (so expired ones of both kinds can be made). The
/// test world has a second partner site, `othersite` (key `other.key`).
async fn strict_world() -> World {
    let world = world(1.0).await;
    register(&world).await;
    world
        .restarted_with_config(|config| {
            config
                .replacen("[server]\n", "[server]\nsession_rotate_after_sec = 0\n", 1)
                .replace(
                    "[[imageflux.system]]",
                    "[imageflux]\ntoken_ttl_seconds = 1\n[[imageflux.system]]",
                )
        })
        .await
}

/// A session token of hanako's that no longer works: two rotations ago.
async fn expired_session(world: &World) -> (String, String) {
    let first = crate::session_token(world, "hanako", "newsite1");
    let renewed = |message: ServerMessage| match message {
        ServerMessage::Welcome {
            session_token: Some(token),
            ..
        } => token,
        other => panic!("no new token: {other:?}"),
    };
    let second = renewed(hello(world, &first).await);
    let current = renewed(hello(world, &second).await);
    (first, current)
}

/// An ImageFlux login token past its one second.
async fn expired_imageflux(world: &World) -> String {
    let answer: Value = world
        .http()
        .post(format!("{}/api/login", world.server.url()))
        .json(&json!({ "email": "imageflux@example.com", "password": "Password123", "access_code": "0987654321" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    answer["token"].as_str().expect("a login token").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_protected_route_refuses_missing_wrong_foreign_and_expired_credentials() {
    let world = strict_world().await;
    let (expired, session) = expired_session(&world).await;
    let imageflux = expired_imageflux(&world).await;
    let some = |s: &str| Some(s.to_owned());
    let attempts = |scheme: &str| -> Attempts {
        let mut tried: Attempts = vec![("none", None), ("wrong", some("0123456789abcdef"))];
        match scheme {
            "admin" => tried.extend([
                ("a session token", some(&session)),
                ("the SkyWay admin token", some("skyway-admin-token")),
                ("an ImageFlux token", some(&imageflux)),
            ]),
            "imageflux" => tried.extend([
                ("an expired ImageFlux token", some(&imageflux)),
                ("a session token", some(&session)),
                ("the admin token", some("admin-secret")),
            ]),
            "session" => tried.extend([
                ("an expired session token", some(&expired)),
                ("the admin token", some("admin-secret")),
                ("the SkyWay admin token", some("skyway-admin-token")),
            ]),
            "skywayAdmin" => tried.extend([
                ("the admin token", some("admin-secret")),
                ("a session token", some(&session)),
            ]),
            other => panic!("a security scheme the matrix does not know: {other}"),
        }
        tried
    };
    let document = nexmile_server::web::openapi::document();
    let http = world.http();
    let mut tried = 0;
    let parameter = regex::Regex::new(r"\{[^}]+\}").unwrap();
    for (route, operations) in document["paths"].as_object().unwrap() {
        let path = route
            .replace("{path}", "wallpapers/sakura.png")
            .replace("{function}", "makecall");
        // Well-formed values, so that what answers is the credential check.
        let path = parameter
            .replace_all(&path.replace("{uid}", "1"), "x")
            .into_owned();
        for (method, operation) in operations.as_object().unwrap() {
            let Some(scheme) = operation["security"][0]
                .as_object()
                .and_then(|s| s.keys().next())
            else {
                continue;
            };
            for (what, bearer) in attempts(scheme) {
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut request =
                    http.request(method.clone(), format!("{}{path}", world.server.url()));
                // WHIP and WHEP read SDP; everything else JSON.
                request = if path.starts_with("/whip") || path.starts_with("/whep") {
                    request
                        .header("content-type", "application/sdp")
                        .body("v=0\r\n")
                } else if method != reqwest::Method::GET {
                    request.json(&json!({}))
                } else {
                    request
                };
                if let Some(bearer) = &bearer {
                    request = request.bearer_auth(bearer);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                assert!(
                    status == 401 || status == 403,
                    "{method} {path} with {what}: {status} {body}"
                );
                assert!(
                    !body.contains("hanako") && !body.contains("airi"),
                    "{method} {path} with {what} told: {body}"
                );
                tried += 1;
            }
        }
    }
    eprintln!("authorisation matrix: {tried} refused requests");
    assert!(tried > 100, "only {tried} requests tried");
    world.server.stop().await;
}

/// The site-owner API (§7) knows a site by its siteKey: without it or with
/// a wrong one nothing happens, and another site's key reaches only that
/// site's users, never newsite1's.
#[tokio::test(flavor = "multi_thread")]
async fn site_owner_requests_reach_only_their_own_sites_users() {
    let world = strict_world().await;
    let session = crate::session_token(&world, "hanako", "newsite1");
    // hanako is online at newsite1 and would show any push she gets.
    let mut online = socket(&world).await;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        session_token: session,
        device: device(),
    };
    online.send(text(&hello)).await.unwrap();
    assert!(matches!(
        next(&mut online).await,
        Some(ServerMessage::Welcome { .. })
    ));
    let push = json!({ "title": "なりすまし", "body": "偽のお知らせ", "userIds": ["hanako"] });
    let balance = json!({ "siteToken": "site-token-1", "sid": "s-forged", "userId": "hanako", "point": 100, "autoCharge": true });
    for query in ["", "siteKey=wrong.key", "siteKey=other.key"] {
        for (path, body) in [
            ("/SiteOwner/PushMessage", &push),
            ("/SiteOwner/UpdateUserBalance", &balance),
        ] {
            let answer = world
                .http()
                .post(format!("{}{path}?{query}", world.server.url()))
                .json(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            // Another site's key is a real site: its push goes to its own
            // (absent) hanako; its balance update names newsite1's token.
            let pushed_to_other_site =
                query == "siteKey=other.key" && path.ends_with("PushMessage");
            assert_eq!(
                answer.starts_with("result=0"),
                pushed_to_other_site,
                "{path}?{query}: {answer}"
            );
        }
    }
    // Nothing reached newsite1's hanako.
    let heard = tokio::time::timeout(Duration::from_millis(1500), next(&mut online)).await;
    assert!(
        !matches!(heard, Ok(Some(ServerMessage::Push { .. }))),
        "{heard:?}"
    );
    assert_eq!(world.demo.points("hanako").await, Some(1000));
    world.server.stop().await;
}

fn device() -> DeviceInfo {
    DeviceInfo {
        device_token: "7d1f0a52-0c6b-4d53-9a1e-6f1d2c3b4a59".parse().unwrap(),
        app_version: "01.00.00".into(),
        os_type: OsType::Browser,
        device_name: "intruder".into(),
        os_version: "test".into(),
    }
}

fn text(message: &ClientMessage) -> Message {
    Message::Text(serde_json::to_string(message).unwrap().into())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(socket: &mut Socket) -> Option<ServerMessage> {
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Every message a client can send after its hello, naming `call` and
/// `live` where it names one. The match below has no catch-all: a new
/// message does not compile until it is added here.
fn every_message(call: &str, live: &str) -> Vec<ClientMessage> {
    let (call, live) = (call.to_owned(), live.to_owned());
    let offer = r#"{"type":"offer","sdp":"v=0\r\n"}"#.to_owned();
    let messages = vec![
        ClientMessage::StartCall {
            call_token: call.clone(),
            offer: offer.clone(),
        },
        ClientMessage::Answer {
            call_token: call.clone(),
            offer: offer.clone(),
        },
        ClientMessage::Decline {
            call_token: call.clone(),
        },
        ClientMessage::Hangup {
            call_token: call.clone(),
        },
        ClientMessage::MakeCall {
            callee_id: "airi".into(),
            video: true,
            caller_sub_id: None,
            callee_sub_id: None,
        },
        ClientMessage::StartVideoTest {
            offer: offer.clone(),
        },
        ClientMessage::EndVideoTest,
        ClientMessage::PrepareBroadcast {
            link_id: "room-intruder".into(),
        },
        ClientMessage::BroadcastMedia {
            live_token: live.clone(),
            offer: offer.clone(),
        },
        ClientMessage::StartBroadcast {
            live_token: live.clone(),
        },
        ClientMessage::RemoveViewer {
            live_token: live.clone(),
            user_id: "hanako".into(),
        },
        ClientMessage::PaidSwitch {
            live_token: live.clone(),
            unit_price: 500,
        },
        ClientMessage::ViewLive {
            live_token: live.clone(),
            link_id: "room-airi".into(),
        },
        ClientMessage::ReceiveLive {
            live_token: live.clone(),
            offer,
        },
        ClientMessage::LiveMediaReceived {
            live_token: live.clone(),
        },
        ClientMessage::LiveComment {
            live_token: live.clone(),
            text: "乗っ取り".into(),
        },
        ClientMessage::LiveItem {
            live_token: live.clone(),
            category: "2".into(),
            item_no: "1".into(),
        },
        ClientMessage::Favorite {
            live_token: live.clone(),
            favorite: true,
        },
        ClientMessage::Payment {
            live_token: live.clone(),
            amount: 300,
            payment_id: None,
        },
        ClientMessage::LeaveLive { live_token: live },
    ];
    for message in &messages {
        match message {
            ClientMessage::Hello { .. }
            | ClientMessage::MakeCall { .. }
            | ClientMessage::StartCall { .. }
            | ClientMessage::Answer { .. }
            | ClientMessage::Decline { .. }
            | ClientMessage::Hangup { .. }
            | ClientMessage::StartVideoTest { .. }
            | ClientMessage::EndVideoTest
            | ClientMessage::PrepareBroadcast { .. }
            | ClientMessage::BroadcastMedia { .. }
            | ClientMessage::StartBroadcast { .. }
            | ClientMessage::ViewLive { .. }
            | ClientMessage::ReceiveLive { .. }
            | ClientMessage::LiveMediaReceived { .. }
            | ClientMessage::LiveComment { .. }
            | ClientMessage::LiveItem { .. }
            | ClientMessage::LeaveLive { .. }
            | ClientMessage::RemoveViewer { .. }
            | ClientMessage::PaidSwitch { .. }
            | ClientMessage::Favorite { .. }
            | ClientMessage::Payment { .. } => {}
        }
    }
    messages
}

/// `session` sends every message naming `call` and `live`, one every 50 ms,
/// and returns what the server answered.
async fn intrude(world: &World, session: &str, call: &str, live: &str) -> Vec<ServerMessage> {
    let mut socket = socket(world).await;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        session_token: session.to_owned(),
        device: device(),
    };
    socket.send(text(&hello)).await.unwrap();
    assert!(matches!(
        next(&mut socket).await,
        Some(ServerMessage::Welcome { .. })
    ));
    for message in every_message(call, live) {
        socket.send(text(&message)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut answers = Vec::new();
    while let Ok(Some(answer)) =
        tokio::time::timeout(Duration::from_millis(1500), next(&mut socket)).await
    {
        answers.push(answer);
    }
    answers
}

/// The call token of the call the partner was asked to prepare.
async fn running_call(world: &World) -> String {
    for _ in 0..200 {
        let prepared = world.demo.requests().await.into_iter().find_map(|r| {
            (r.path == "/CallService")
                .then(|| {
                    nexmile_core::codec::decode_json_body::<
                        nexmile_core::wire::call::CallServiceRequest,
                    >(r.body.as_bytes())
                    .ok()
                })
                .flatten()
                .map(|request| request.call_token)
        });
        if let Some(token) = prepared {
            return token;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no call was prepared");
}

/// taro (newsite1, in no call or live) and a user of the built-in site send
/// every message naming hanako's call with airi, and then airi's live that
/// hanako watches: both go on and end as their owners end them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nobody_steers_another_users_call_or_live() {
    let world = world(1.0).await;
    register(&world).await;
    let (events, status) = cli(
        &world,
        "taro",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&user=taro&pass=taro-pw"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    let taro = crate::session_token(&world, "taro", "newsite1");
    let ActivateReply::Activated {
        session_token: outsider,
        ..
    } = activate_builtin(&world, "3b2f9c1e-8d47-4a6b-b5e0-1c9d8e7f6a50", None).await
    else {
        panic!("the built-in site registers anyone");
    };

    // The call: airi answers, hanako hangs up after 8 s.
    let call = async {
        tokio::join!(
            listen(&world, "airi", "newsite1", &["--answer-after", "300"]),
            dial(
                &world,
                "hanako",
                format!("{LINK}/makecall/?site=newsite1&calleeId=airi&video=1"),
                &["--hangup-after", "8000"]
            ),
        )
    };
    let intruders = async {
        let token = running_call(&world).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut heard = intrude(&world, &taro, &token, "no-live").await;
        heard.extend(intrude(&world, &outsider, &token, "no-live").await);
        heard
    };
    let (((callee, callee_status), (caller, caller_status)), heard) = tokio::join!(call, intruders);
    assert_eq!(
        (caller_status, callee_status),
        (0, 0),
        "{caller:?}\n{callee:?}"
    );
    for events in [&caller, &callee] {
        let ended = find(events, "call.ended").unwrap();
        assert_eq!(
            ended["reason"], 1,
            "the caller hung up, nobody else: {ended}"
        );
        assert!(
            ended["overview"]["talkingSec"].as_i64() >= Some(7),
            "{ended}"
        );
    }
    eprintln!("the intruders heard about the call: {heard:?}");

    // The live: airi broadcasts for 10 s, hanako watches for 7 s.
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-airi");
    let broadcaster_args = ["open", &broadcast, "--live-for", "10000"];
    let broadcaster = cli(&world, "airi", &broadcaster_args);
    let audience = async {
        let (token, link_id) = live_on_air(&world).await;
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        let viewer_args = ["open", view.as_str(), "--live-for", "7000"];
        let intruders = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let taro_heard = intrude(&world, &taro, "no-call", &token).await;
            let outsider_heard = intrude(&world, &outsider, "no-call", &token).await;
            (taro_heard, outsider_heard)
        };
        tokio::join!(cli(&world, "hanako", &viewer_args), intruders)
    };
    let ((live, live_status), ((viewer, viewer_status), (taro_heard, outsider_heard))) =
        tokio::join!(broadcaster, audience);
    assert_eq!((live_status, viewer_status), (0, 0), "{live:?}\n{viewer:?}");
    // hanako watched to the end she chose: nobody removed her, and the live
    // never turned paid; airi ended it herself.
    assert_eq!(
        find(&viewer, "live.ended").unwrap()["reason"],
        "viewer_left",
        "{viewer:?}"
    );
    assert_eq!(
        find(&live, "live.ended").unwrap()["reason"],
        "broadcaster_ended",
        "{live:?}"
    );
    assert!(
        !viewer
            .iter()
            .chain(live.iter())
            .any(|e| e["event"] == "live.paid"),
        "{viewer:?}"
    );
    // The other site's user is told the live is not its site's.
    let refused = |heard: &[ServerMessage], words: &str| {
        heard.iter().any(|m| match m {
            ServerMessage::Live {
                notice:
                    LiveNotice::Ended {
                        message: Some(message),
                        ..
                    },
                ..
            } => message.contains(words),
            _ => false,
        })
    };
    assert!(refused(&outsider_heard, "別のサイト"), "{outsider_heard:?}");
    eprintln!("taro heard: {taro_heard:?}");
    world.server.stop().await;
}
