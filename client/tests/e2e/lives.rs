//! Lives: a broadcaster and two viewers through the server's fan-out, every
//! request the partner sees, comments, a gift and the points they cost.

use std::time::Duration;

use nexmile_core::codec::decode_json_body;
use nexmile_core::wire::live::{LiveRequest, LiveServiceRequest};
use serde_json::Value;

use crate::{LINK, World, cli, find, register, world};

fn all<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// The liveToken of the live on air, once the partner has recorded its start.
async fn live_on_air(world: &World) -> (String, String) {
    for _ in 0..200 {
        if let Some((token, link_id, _)) = world.demo.lives_on_air().await.into_iter().next() {
            return (token, link_id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no live went on air");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_reaches_two_viewers_with_comments_and_a_gift_and_every_request_is_reported() {
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

    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-airi");
    let broadcaster_args = ["open", &broadcast, "--live-for", "14000"];
    let broadcaster = cli(&world, "airi", &broadcaster_args);
    let viewers = async {
        let (token, link_id) = live_on_air(&world).await;
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        // 50 characters or more: a paid comment at this site.
        let long = "今日の配信もとても楽しいです。いつも元気をもらっています。これからもずっと応援しています！ありがとう！";
        let hanako_args = [
            "open",
            &view,
            "--live-for",
            "7000",
            "--comment",
            "こんばんは",
            "--comment",
            long,
            "--gift",
            "2:1",
            "--gift",
            "9:9",
        ];
        let taro_args = ["open", &view, "--live-for", "3000"];
        tokio::join!(
            cli(&world, "hanako", &hanako_args),
            cli(&world, "taro", &taro_args),
        )
    };
    let ((liver_events, liver_status), ((hanako, hanako_status), (taro, taro_status))) =
        tokio::join!(broadcaster, viewers);
    assert_eq!(liver_status, 0, "{liver_events:#?}");
    assert_eq!(hanako_status, 0, "{hanako:#?}");
    assert_eq!(taro_status, 0, "{taro:#?}");

    // The broadcaster went on air, saw both viewers, the comments and the gift.
    assert!(find(&liver_events, "live.on_air").is_some());
    let most = all(&liver_events, "live.viewers")
        .iter()
        .map(|v| v["count"].as_u64().unwrap())
        .max();
    assert_eq!(most, Some(2));
    let comments: Vec<&str> = all(&liver_events, "live.comment")
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert_eq!(comments[0], "こんばんは");
    let item = find(&liver_events, "live.item").expect("the gift arrived");
    assert_eq!(item["name"], "山田花子");
    assert_eq!(item["item"]["name"], "ハート");
    let ended = find(&liver_events, "live.ended").unwrap();
    assert_eq!(ended["reason"], "broadcaster_ended");

    // Each viewer was admitted, received pictures, and left with its summary.
    for (events, name) in [(&hanako, "hanako"), (&taro, "taro")] {
        let prepared =
            find(events, "live.prepared").unwrap_or_else(|| panic!("{name}: {events:#?}"));
        assert_eq!(prepared["liver_name"], "星野あいり");
        assert_eq!(prepared["paid"], true, "airi charges for her time");
        assert!(find(events, "live.media_received").is_some(), "{name}");
        let ended = find(events, "live.ended").unwrap();
        assert_eq!(ended["reason"], "viewer_left", "{name}");
        assert!(
            ended["summary"]["live_sec"].as_u64().unwrap() >= 2,
            "{ended}"
        );
        let media = &find(events, "live.media").unwrap()["media"];
        assert!(
            media["frames_decoded"].as_u64().unwrap() > 20,
            "{name}: {media}"
        );
        assert!(
            media["audio_packets_received"].as_u64().unwrap() > 20,
            "{name}: {media}"
        );
    }
    // The unknown gift was refused by the server; the long comment was paid.
    assert!(
        all(&hanako, "live.refused")
            .iter()
            .any(|r| r["message"] == "このギフトはありません。")
    );
    let paid: Vec<u64> = all(&hanako, "live.comment")
        .iter()
        .map(|c| c["point"].as_u64().unwrap())
        .collect();
    assert_eq!(paid, vec![0, 10]);
    assert!(
        find(&hanako, "live.gifts").unwrap()["items"]
            .as_array()
            .unwrap()
            .len()
            == 2
    );

    // What the partner saw, in order per user, all answered.
    let mut seen: Vec<(u8, String, Option<u16>)> = Vec::new();
    for _ in 0..100 {
        seen = world
            .demo
            .requests()
            .await
            .iter()
            .filter(|r| r.path == "/liveService")
            .map(|r| {
                assert_eq!(r.signature, "valid", "every request is signed");
                let request: LiveServiceRequest = decode_json_body(r.body.as_bytes()).unwrap();
                let user = match &request.request {
                    LiveRequest::BroadcastPrepare(r) => r.live.user_id.clone(),
                    LiveRequest::ViewPrepare(r) => r.live.user_id.clone(),
                    LiveRequest::ViewStart(r) => r.live.user_id.clone(),
                    LiveRequest::ViewEnd(r) => r.live.user_id.clone(),
                    LiveRequest::Comment(r) => r.live.user_id.clone(),
                    LiveRequest::Gift(r) => r.live.user_id.clone(),
                    LiveRequest::BroadcastStart(r) => r.live.user_id.clone(),
                    LiveRequest::BroadcastEnd(r) => r.live.user_id.clone(),
                    other => panic!("unexpected {other:?}"),
                };
                (
                    request.request.live_service_type() as u8,
                    user,
                    r.reply_status,
                )
            })
            .collect();
        if seen
            .iter()
            .any(|(code, _, status)| *code == 13 && *status == Some(200))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let codes_of = |user: &str| -> Vec<u8> {
        seen.iter()
            .filter(|(_, u, _)| u == user)
            .map(|(c, _, _)| *c)
            .collect()
    };
    assert_eq!(codes_of("airi"), vec![11, 12, 13], "{seen:?}");
    assert_eq!(codes_of("taro"), vec![31, 32, 33], "{seen:?}");
    assert_eq!(codes_of("hanako"), vec![31, 32, 7, 7, 6, 33], "{seen:?}");
    assert!(
        seen.iter().all(|(_, _, status)| *status == Some(200)),
        "{seen:?}"
    );
    // 50 points for the heart, 10 for the long comment; the viewing itself
    // stayed inside the 30 s free trial.
    assert_eq!(world.demo.points("hanako").await, Some(940));
    world.server.stop().await;
}
