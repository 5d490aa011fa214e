//! Calls: every ending of the reason table, partner faults, billing, the outbox.

use std::time::Duration;

use nexmile_core::codec::decode_json_body;
use nexmile_core::wire::call::CallServiceRequest;
use nexmile_core::wire::codes::{CallServiceType, TerminateReason};
use nexmile_partner_demo::{Fault, FaultEndpoint, FaultKind};
use nexmile_server::config::Config;
use serde_json::Value;

use crate::{LINK, World, cli, dial, find, listen, register, world};

fn call_link(callee: &str) -> String {
    format!("{LINK}/makecall/?site=newsite1&calleeId={callee}&video=1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_call_rings_connects_is_billed_and_reported() {
    let world = world(1.0).await;
    register(&world).await;
    let ((callee_events, callee_status), (caller_events, caller_status)) = tokio::join!(
        listen(&world, "airi", "newsite1", &["--answer-after", "1500"]),
        dial(
            &world,
            "hanako",
            call_link("airi"),
            &["--hangup-after", "4000"]
        ),
    );
    assert_eq!(caller_status, 0, "{caller_events:#?}");
    assert_eq!(callee_status, 0, "{callee_events:#?}");
    let prepared = find(&caller_events, "call.prepared").unwrap();
    assert_eq!(prepared["peer_name"], "星野あいり");
    let incoming = find(&callee_events, "call.incoming").unwrap();
    assert_eq!(incoming["peer_name"], "デモサイト・山田花子");
    for events in [&caller_events, &callee_events] {
        assert!(find(events, "call.connected").is_some());
        let ended = find(events, "call.ended").unwrap();
        assert_eq!(ended["reason"], 1, "the caller hung up");
        let media = &ended["media"];
        assert!(media["frames_decoded"].as_u64().unwrap() > 30, "{media}");
        assert!(
            media["audio_packets_received"].as_u64().unwrap() > 50,
            "{media}"
        );
        assert!(find(events, "quality").is_some());
    }
    let billing = find(&caller_events, "billing").unwrap();
    assert_eq!(billing["payer"], "caller");
    let overview = &find(&caller_events, "call.ended").unwrap()["overview"];
    assert_eq!(overview["talkingSec"], 4);
    // 4 s at 100 yen per 60 s, 1 yen a point: 6.67 → 7 points.
    assert_eq!(overview["talkingPoint"], 7);
    assert_eq!(overview["startPoint"], 1000);
    // The partner saw 1, 3, 4, 5 and (through the outbox) 6, and charged once:
    // wait until it has answered the 6, i.e. applied it.
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = world
            .demo
            .requests()
            .await
            .iter()
            .filter(|r| r.path == "/CallService")
            .map(|r| {
                assert_eq!(r.signature, "valid", "every request is signed");
                let request: CallServiceRequest = decode_json_body(r.body.as_bytes()).unwrap();
                (request.call_service_type as u8, r.reply_status)
            })
            .collect();
        if seen.contains(&(6, Some(200))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kinds: Vec<u8> = seen.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds, vec![1, 3, 4, 5, 6]);
    assert_eq!(world.demo.points("hanako").await, Some(993));
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_unconnected_endings_have_their_reasons() {
    let world = world(1.0).await;
    register(&world).await;
    // Nobody of airi's is online: −2.
    let (events, status) = cli(&world, "hanako", &["open", &call_link("airi")]).await;
    assert_eq!(status, 0, "{events:?}");
    assert_eq!(find(&events, "call.ended").unwrap()["reason"], -2);
    // Declined: −5.
    let (callee, caller) = tokio::join!(
        listen(&world, "airi", "newsite1", &["--decline"]),
        dial(&world, "hanako", call_link("airi"), &[])
    );
    assert_eq!(
        find(&caller.0, "call.ended").unwrap()["reason"],
        -5,
        "{caller:?} {callee:?}"
    );
    // The partner refuses prepare with its words; and without words, the default text.
    world
        .demo
        .set_fault(Fault {
            endpoint: FaultEndpoint::CallService,
            call_service_type: Some(CallServiceType::Prepare),
            kind: FaultKind::Refuse,
            message: Some("ただいま通話できません".into()),
            times: Some(1),
        })
        .await;
    let (events, status) = cli(&world, "hanako", &["open", &call_link("airi")]).await;
    assert_eq!(status, 3);
    assert_eq!(
        find(&events, "refused").unwrap()["message"],
        "ただいま通話できません"
    );
    for (kind, words) in [
        (FaultKind::Refuse, "連携先サイトに拒否されました。"),
        (
            FaultKind::Garbage,
            "連携先サイトの応答を読み取れませんでした。",
        ),
        (
            FaultKind::Http500,
            "連携先サイトでエラーが発生しました（HTTP 500）。",
        ),
    ] {
        world
            .demo
            .set_fault(Fault {
                endpoint: FaultEndpoint::CallService,
                call_service_type: Some(CallServiceType::Prepare),
                kind,
                message: None,
                times: Some(1),
            })
            .await;
        let (events, status) = cli(&world, "hanako", &["open", &call_link("airi")]).await;
        assert_eq!(status, 3, "{events:?}");
        assert_eq!(find(&events, "refused").unwrap()["message"], words);
    }
    // A wrong password: the partner's refusal at auth.
    let (events, status) = cli(
        &world,
        "mallory",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&user=hanako&pass=wrong"),
        ],
    )
    .await;
    assert_eq!(status, 3, "{events:?}");
    assert!(find(&events, "refused").is_some());
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_taking_points_mid_call_cuts_it_off_and_other_sites_cannot() {
    let world = world(1.0).await;
    register(&world).await;
    let take = r#"{"siteToken":"site-token-1","sid":"s-1","userId":"hanako","point":950,"comment":"サイト内で使用","autoCharge":false}"#;
    let partner = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Wrong key, and another site's key with this site's token: refused, nothing changed.
        let wrong = world
            .site_owner("/SiteOwner/UpdateUserBalance", "nope", take)
            .await;
        assert!(wrong.starts_with("result=-1"), "{wrong}");
        let other = world
            .site_owner("/SiteOwner/UpdateUserBalance", "other.key", take)
            .await;
        assert!(other.starts_with("result=-1"), "{other}");
        for _ in 0..100 {
            let reply = world
                .site_owner("/SiteOwner/UpdateUserBalance", "test.key", take)
                .await;
            if reply == "result=0" {
                // The partner's retry of the same sid (a timeout on its
                // side): the same answer, and the points taken once.
                let again = world
                    .site_owner("/SiteOwner/UpdateUserBalance", "test.key", take)
                    .await;
                assert_eq!(again, "result=0");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the call never became billable");
    };
    let (callee, caller, ()) = tokio::join!(
        listen(&world, "airi", "newsite1", &["--answer-after", "200"]),
        dial(
            &world,
            "hanako",
            call_link("airi"),
            &["--hangup-after", "30000"]
        ),
        partner,
    );
    let ended = find(&caller.0, "call.ended").unwrap();
    assert_eq!(ended["reason"], 3, "money ran out: {callee:?}");
    assert_eq!(ended["overview"]["outsideUsagePoint"], 950);
    // Falling under autoChargeTriggerPoint requested the partner's URL, once.
    let autocharges = world
        .demo
        .requests()
        .await
        .into_iter()
        .filter(|r| r.path == "/autocharge" && r.direction == "in")
        .count();
    assert_eq!(autocharges, 1);
    assert_eq!(find(&callee.0, "call.ended").unwrap()["reason"], 3);
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_end_reports_survive_a_restart_with_one_request_id() {
    let world = world(1.0).await;
    register(&world).await;
    world
        .demo
        .set_fault(Fault {
            endpoint: FaultEndpoint::CallService,
            call_service_type: Some(CallServiceType::End),
            kind: FaultKind::Http500,
            message: None,
            times: None,
        })
        .await;
    // airi is offline: the call ends at once (−2) and its 6 meets a broken partner.
    let (events, _) = cli(&world, "hanako", &["open", &call_link("airi")]).await;
    assert_eq!(find(&events, "call.ended").unwrap()["reason"], -2);
    let ends =
        |requests: Vec<nexmile_partner_demo::LoggedRequest>| -> Vec<(Option<String>, Option<u16>)> {
            requests
                .into_iter()
                .filter(|r| r.path == "/CallService")
                .filter(|r| {
                    decode_json_body::<CallServiceRequest>(r.body.as_bytes())
                        .is_ok_and(|q| q.call_service_type == CallServiceType::End)
                })
                .map(|r| (r.request_id, r.reply_status))
                .collect()
        };
    // First try at once, the retry after 1 s: both refused.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let failed = ends(world.demo.requests().await);
    assert!(
        failed.len() >= 2 && failed.iter().all(|(_, s)| *s == Some(500)),
        "{failed:?}"
    );
    let http = world.http();
    let World {
        demo,
        server,
        root,
        config,
        ..
    } = world;
    server.stop().await;
    demo.clear_faults().await;
    // A new server on the same database delivers it at the next step of the schedule (2 s).
    let server = nexmile_server::start(Config::parse(&config).unwrap())
        .await
        .unwrap();
    let mut delivered = Vec::new();
    for _ in 0..80 {
        delivered = ends(demo.requests().await);
        if delivered.last().is_some_and(|(_, s)| *s == Some(200)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered.last().unwrap().1, Some(200), "{delivered:?}");
    let ids: std::collections::HashSet<_> = delivered.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        ids.len(),
        1,
        "every try carries the same request ID: {delivered:?}"
    );
    // The partner has answered; the server records the try right after.
    let mut outbox = Value::Null;
    for _ in 0..50 {
        outbox = http
            .get(format!("{}/admin/outbox", server.url()))
            .bearer_auth("admin-secret")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if outbox[0]["entry"]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entry = &outbox[0];
    assert_eq!(entry["entry"]["state"], "delivered", "{outbox}");
    let statuses: Vec<_> = entry["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.last(), Some(&200));
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 500),
        "{statuses:?}"
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(root);
}

async fn register_taro(world: &World) {
    let (events, status) = cli(
        world,
        "taro",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&user=taro&pass=taro-pw"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
}

fn admin(world: &World) -> reqwest::RequestBuilder {
    world
        .http()
        .get(format!("{}/admin/calls", world.server.url()))
        .bearer_auth("admin-secret")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_callee_push_and_the_administrators_cut() {
    let world = world(1.0).await;
    register(&world).await;
    register_taro(&world).await;
    let operator = async {
        // Wait for the call to run, then: a second caller finds airi busy (−4),
        // a push reaches airi's app, and the administrator ends the call (4).
        let token = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let calls: Value = admin(&world).send().await.unwrap().json().await.unwrap();
            if let Some(token) = calls["running"][0].as_str() {
                break token.to_owned();
            }
        };
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let (busy, _) = cli(&world, "taro", &["open", &call_link("airi")]).await;
        assert_eq!(find(&busy, "call.ended").unwrap()["reason"], -4, "{busy:?}");
        let push = r#"{"title":"お知らせ","body":"新着メッセージがあります","clickAction":"https://example.jp/inbox","userIds":["airi"]}"#;
        assert_eq!(
            world
                .site_owner("/SiteOwner/PushMessage", "test.key", push)
                .await,
            "result=0"
        );
        let unauthorised = world
            .http()
            .post(format!(
                "{}/admin/calls/{token}/disconnect",
                world.server.url()
            ))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorised.status(), 401);
        let cut = world
            .http()
            .post(format!(
                "{}/admin/calls/{token}/disconnect",
                world.server.url()
            ))
            .bearer_auth("admin-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(cut.status(), 200);
    };
    let (callee, caller, ()) = tokio::join!(
        listen(&world, "airi", "newsite1", &["--answer-after", "200"]),
        dial(
            &world,
            "hanako",
            call_link("airi"),
            &["--hangup-after", "60000"]
        ),
        operator,
    );
    assert_eq!(find(&caller.0, "call.ended").unwrap()["reason"], 4);
    assert_eq!(find(&callee.0, "call.ended").unwrap()["reason"], 4);
    let push = find(&callee.0, "push").expect("the push reached the app");
    assert_eq!(push["title"], "お知らせ");
    assert_eq!(push["clickAction"], "https://example.jp/inbox");
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_hangs_up_and_a_silent_partner_is_reported_in_words() {
    let world = world(1.0).await;
    register(&world).await;
    let (callee, caller) = tokio::join!(
        listen(
            &world,
            "airi",
            "newsite1",
            &["--answer-after", "200", "--hangup-after", "1500"]
        ),
        dial(&world, "hanako", call_link("airi"), &[])
    );
    assert_eq!(
        find(&caller.0, "call.ended").unwrap()["reason"],
        2,
        "{callee:?}"
    );
    // The caller gives up while it rings (−1); the callee's ring stops.
    let (callee, caller) = tokio::join!(
        listen(&world, "airi", "newsite1", &["--answer-after", "5000"]),
        dial(
            &world,
            "hanako",
            call_link("airi"),
            &["--cancel-after", "500"]
        )
    );
    assert_eq!(
        find(&caller.0, "call.ended").unwrap()["reason"],
        -1,
        "{caller:?}"
    );
    assert!(find(&callee.0, "call.cancelled").is_some(), "{callee:?}");
    // The partner holds 架電準備 past the 8 s limit.
    world
        .demo
        .set_fault(Fault {
            endpoint: FaultEndpoint::CallService,
            call_service_type: Some(CallServiceType::Prepare),
            kind: FaultKind::Timeout,
            message: None,
            times: Some(1),
        })
        .await;
    let (events, status) = cli(&world, "hanako", &["open", &call_link("airi")]).await;
    assert_eq!(status, 3, "{events:?}");
    assert_eq!(
        find(&events, "refused").unwrap()["message"],
        "連携先サイトから応答がありませんでした。"
    );
    world.server.stop().await;
}

/// The app's side of the signalling, spoken directly: a caller that prepares and never starts.
async fn prepare_only(world: &World) -> Vec<nexmile_core::signal::ServerMessage> {
    use futures_util::{SinkExt, StreamExt};
    use nexmile_core::signal::{ClientMessage, DeviceInfo, PROTOCOL_VERSION};
    let session_token = crate::session_token(world, "hanako", "newsite1");
    let (url, tls) = world.websocket();
    let (mut socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(&url, None, false, Some(tls))
            .await
            .unwrap();
    let send = |m: ClientMessage| {
        tokio_tungstenite::tungstenite::Message::Text(serde_json::to_string(&m).unwrap().into())
    };
    socket
        .send(send(ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            session_token,
            device: DeviceInfo {
                device_token: "106f7a7d-e11c-ef05-2e8c-54b459aa202e".parse().unwrap(),
                app_version: "01.00.00".into(),
                os_type: nexmile_core::wire::codes::OsType::Browser,
                device_name: "test".into(),
                os_version: "test".into(),
            },
        }))
        .await
        .unwrap();
    socket
        .send(send(ClientMessage::MakeCall {
            callee_id: "airi".into(),
            video: false,
            caller_sub_id: None,
            callee_sub_id: None,
        }))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(Ok(frame)) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let message: nexmile_core::signal::ServerMessage = serde_json::from_str(&text).unwrap();
            let ended = matches!(
                message,
                nexmile_core::signal::ServerMessage::CallEnded { .. }
            );
            seen.push(message);
            if ended {
                break;
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_on_a_fast_clock_ring_timeout_and_never_started() {
    // The server's clock runs 10× faster: the partner's 10 s ring takes 1 s,
    // the 30 s wait for the app to start a prepared call 3 s.
    let world = world(10.0).await;
    register(&world).await;
    let (_, caller) = tokio::join!(
        listen(&world, "airi", "newsite1", &["--answer-after", "5000"]),
        dial(&world, "hanako", call_link("airi"), &[])
    );
    assert_eq!(
        find(&caller.0, "call.ended").unwrap()["reason"],
        -6,
        "{caller:?}"
    );
    let seen = prepare_only(&world).await;
    match seen.last() {
        Some(nexmile_core::signal::ServerMessage::CallEnded {
            reason, overview, ..
        }) => {
            assert_eq!(*reason, TerminateReason::NeverStarted);
            assert!(overview.as_ref().unwrap().incoming_time.is_none());
        }
        other => panic!("{other:?}"),
    }
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_faults_at_auth_and_at_start() {
    let world = world(1.0).await;
    register(&world).await;
    let fault = |endpoint, call_service_type, kind| Fault {
        endpoint,
        call_service_type,
        kind,
        message: None,
        times: Some(1),
    };
    // Auth: garbage and HTTP 500 are refusals in words, and no profile is made.
    for (kind, words) in [
        (
            FaultKind::Garbage,
            "連携先サイトの応答を読み取れませんでした。",
        ),
        (
            FaultKind::Http500,
            "連携先サイトでエラーが発生しました（HTTP 500）。",
        ),
    ] {
        world
            .demo
            .set_fault(fault(FaultEndpoint::Auth, None, kind))
            .await;
        let (events, status) = cli(
            &world,
            "newcomer",
            &[
                "open",
                &format!("{LINK}/activateExUser/?site=newsite1&user=taro&pass=taro-pw"),
            ],
        )
        .await;
        assert_eq!(
            (status, &find(&events, "refused").unwrap()["message"]),
            (3, &Value::from(words))
        );
        assert!(!world.root.join("newcomer/newsite1").exists());
    }
    // Start (架電開始, 3): airi has blocked hanako, so the partner refuses; no 6 follows.
    world.demo.block("airi", "hanako").await;
    let (events, status) = cli(&world, "hanako", &["open", &call_link("airi")]).await;
    assert_eq!(status, 3, "{events:?}");
    assert!(find(&events, "refused").is_some());
    // A start that fails (500, garbage, silence past 8 s) ends with −9 and is reported with 6.
    for kind in [FaultKind::Http500, FaultKind::Garbage, FaultKind::Timeout] {
        world
            .demo
            .set_fault(fault(
                FaultEndpoint::CallService,
                Some(CallServiceType::Start),
                kind,
            ))
            .await;
        let (events, _) = cli(&world, "hanako", &["open", &call_link("taro")]).await;
        let ended = find(&events, "call.ended").unwrap_or_else(|| panic!("{events:?}"));
        assert_eq!(ended["reason"], -9, "{kind:?}");
        assert_eq!(ended["overview"]["terminateReason"], -9);
        assert!(ended["message"].as_str().is_some());
    }
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_site_calls_an_app_phone_number() {
    let world = world(1.0).await;
    // First use of the built-in site registers the device and shows its number.
    let (callee_online, _) = cli(
        &world,
        "b",
        &["listen", "--site", "nexmile", "--calls", "0"],
    )
    .await;
    let number = find(&callee_online, "activated").unwrap()["phoneNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(number.starts_with("050") && number.len() == 11, "{number}");
    let link = format!("{LINK}/makecall/?site=nexmile&calleeId={number}&video=1");
    let (callee, caller) = tokio::join!(
        listen(&world, "b", "nexmile", &["--answer-after", "200"]),
        dial(&world, "a", link.clone(), &["--hangup-after", "1500"])
    );
    let ended = find(&caller.0, "call.ended").unwrap_or_else(|| panic!("{caller:?}"));
    assert_eq!(ended["reason"], 1);
    assert_eq!(
        ended["overview"]["talkingPoint"], 0,
        "calls on the built-in site are free"
    );
    assert!(ended["media"]["frames_decoded"].as_u64().unwrap() > 10);
    assert!(
        find(&callee.0, "call.incoming").unwrap()["peer_name"]
            .as_str()
            .unwrap()
            .starts_with("Nexmile")
    );
    // An unknown number is refused in words.
    let (events, status) = cli(
        &world,
        "a",
        &[
            "open",
            &format!("{LINK}/makecall/?site=nexmile&calleeId=05000000000&video=0"),
        ],
    )
    .await;
    assert_eq!(status, 3);
    assert_eq!(
        find(&events, "refused").unwrap()["message"],
        "この番号は登録されていません。"
    );
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_callee_is_billed_instead_of_the_caller() {
    let world = world(1.0).await;
    register(&world).await;
    let (events, status) = cli(
        &world,
        "support",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&user=support&pass=support-pw"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    let (callee, caller) = tokio::join!(
        listen(&world, "support", "newsite1", &["--answer-after", "200"]),
        dial(
            &world,
            "hanako",
            call_link("support"),
            &["--hangup-after", "2000"]
        )
    );
    assert_eq!(
        find(&caller.0, "billing").unwrap()["payer"],
        "callee",
        "{caller:?}"
    );
    assert_eq!(find(&callee.0, "billing").unwrap()["payer"], "callee");
    let overview = &find(&caller.0, "call.ended").unwrap()["overview"];
    // 2 s at 10 yen a minute is 0.33 points, a started point is a used point.
    assert_eq!(
        (
            overview["startPoint"].as_u64(),
            overview["talkingPoint"].as_u64()
        ),
        (Some(5000), Some(1))
    );
    for _ in 0..50 {
        if world.demo.points("support").await == Some(4999) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(world.demo.points("support").await, Some(4999));
    assert_eq!(
        world.demo.points("hanako").await,
        Some(1000),
        "the caller pays nothing"
    );
    world.server.stop().await;
}
