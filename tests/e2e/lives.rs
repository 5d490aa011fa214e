//! Lives: a broadcaster and two viewers through the server's fan-out, every
//! request the partner sees, comments, a gift and the points they cost.

use std::time::Duration;

use nexmile_core::clock::UnixMillis;
use nexmile_core::codec::decode_json_body;
use nexmile_core::datetime::{JST, WireDateTime};
use nexmile_core::wire::live::LiveServiceRequest;
use nexmile_testkit::{ffprobe, probed_number, probed_stream, world_with_gifts};
use serde_json::Value;

use crate::{LINK, World, cli, find, register, world};

fn all<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// The liveToken of the live on air, once the partner has recorded its start.
pub(crate) async fn live_on_air(world: &World) -> (String, String) {
    for _ in 0..200 {
        if let Some((token, link_id, _)) = world.demo.lives_on_air().await.into_iter().next() {
            return (token, link_id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no live went on air");
}

/// The liveService requests the partner received: (code, userId, reply status).
async fn live_requests(world: &World) -> Vec<(u8, String, Option<u16>)> {
    world
        .demo
        .requests()
        .await
        .iter()
        .filter(|r| r.path == "/liveService")
        .map(|r| {
            assert_eq!(r.signature, "valid", "every request is signed");
            let request: LiveServiceRequest = decode_json_body(r.body.as_bytes()).unwrap();
            let json = serde_json::to_value(&request).unwrap();
            let user = json["userId"].as_str().unwrap_or_default().to_owned();
            (
                request.request.live_service_type() as u8,
                user,
                r.reply_status,
            )
        })
        .collect()
}

/// The same once the live's end (13, through the outbox) has been answered.
/// The liveService codes `user` sent, once the live has ended.
pub(crate) async fn settled_codes_of(world: &World, user: &str) -> Vec<u8> {
    settled_live_requests(world)
        .await
        .into_iter()
        .filter(|(_, u, _)| u == user)
        .map(|(code, _, _)| code)
        .collect()
}

async fn settled_live_requests(world: &World) -> Vec<(u8, String, Option<u16>)> {
    for _ in 0..100 {
        let seen = live_requests(world).await;
        if seen
            .iter()
            .any(|(code, _, status)| *code == 13 && *status == Some(200))
        {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the live's end never reached the partner: {:?}",
        live_requests(world).await
    );
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

    // airi has her site's effect files, gift animations included.
    let download = format!("{LINK}/videoSetting/?site=newsite1&download=1");
    let (events, status) = cli(&world, "airi", &["open", &download]).await;
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
            "--gift",
            "9:1",
            "--pay",
            "999",
            "--pay",
            "300",
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
    // The demo allows profile images (serviceOptions 1): comments carry the writer's.
    let first = find(&liver_events, "live.comment").unwrap();
    assert!(
        first["image"]
            .as_str()
            .is_some_and(|i| i.ends_with("/avatar/hanako.svg")),
        "{first}"
    );
    let prepared = find(&liver_events, "live.prepared").unwrap();
    assert_eq!(prepared["appearance"]["profile_images"], true, "{prepared}");
    assert_eq!(prepared["appearance"]["wordings"][0]["wording"], 21);
    let item = find(&liver_events, "live.item").expect("the gift arrived");
    assert_eq!(item["name"], "山田花子");
    assert_eq!(item["item"]["name"], "ハート");
    // The heart's APNG went into airi's outgoing picture (§5.4.1), which
    // every viewer decodes; nothing failed on the way.
    let on_video = find(&liver_events, "live.gift_on_video").expect("composited");
    assert_eq!(on_video["file"], "gifts/heart.png");
    assert!(on_video.get("error").is_none(), "{on_video}");
    let sent = &find(&liver_events, "live.media").unwrap()["media"];
    assert_eq!(sent["effect_errors"], 0, "{sent}");
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
    // hanako's 1000 points unlock the hidden fireworks for her (specialGifts),
    // at the top of her palette; taro's palette has the public two only.
    let palette = |events: &[Value]| -> Vec<String> {
        find(events, "live.gifts").unwrap()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(palette(&hanako), ["花火", "拍手", "ハート"]);
    assert_eq!(palette(&taro), ["拍手", "ハート"]);
    // Her greeting (viewerPoke*) is not in the palette but goes through.
    let items: Vec<&str> = all(&liver_events, "live.item")
        .iter()
        .map(|i| i["item"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["ハート", "こんにちは"]);

    // What the partner saw, in order per user, all answered.
    let seen = settled_live_requests(&world).await;
    let codes_of = |user: &str| -> Vec<u8> {
        seen.iter()
            .filter(|(_, u, _)| u == user)
            .map(|(c, _, _)| *c)
            .collect()
    };
    assert_eq!(codes_of("airi"), vec![11, 12, 13], "{seen:?}");
    assert_eq!(codes_of("taro"), vec![31, 32, 33], "{seen:?}");
    // The payment (a GET to /payment, not a liveService request) is followed by 36.
    assert_eq!(
        codes_of("hanako"),
        vec![31, 32, 7, 7, 6, 5, 36, 33],
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|(_, _, status)| *status == Some(200)),
        "{seen:?}"
    );
    // 300 points bought, 50 for the heart, 10 for the long comment; the
    // viewing itself stayed inside the 30 s free trial.
    assert_eq!(world.demo.points("hanako").await, Some(1240));
    assert_eq!(find(&hanako, "live.payment").unwrap()["points"], 300);
    assert!(
        all(&hanako, "live.refused")
            .iter()
            .any(|r| r["message"] == "この金額ではポイントを購入できません。")
    );
    assert_eq!(
        find(&liver_events, "live.viewer_updated").unwrap()["user_id"],
        "hanako"
    );

    // The live was recorded on the server: pictures and sound that an
    // independent reader decodes from start to end, gift frames included.
    let probe = ffprobe(&recording_of(&world, "room-airi").await);
    let video = probed_stream(&probe, "h264");
    assert!(video["width"].as_u64().unwrap() > 0, "{video}");
    let pictures = probed_number(&video["nb_read_frames"]);
    let sound = probed_number(&probed_stream(&probe, "opus")["nb_read_frames"]);
    let duration = probed_number(&probe["format"]["duration"]);
    eprintln!("recorded {duration} s: {pictures} pictures, {sound} sound packets");
    assert!(duration > 9.0, "{duration} s");
    assert!(
        pictures > duration * 20.0,
        "{pictures} pictures in {duration} s"
    );
    assert!(sound > duration * 40.0, "{sound} packets in {duration} s");
    world.server.stop().await;
}

/// POST to the administrator API with the test server's token.
async fn admin(world: &World, path: &str, comment: &str) -> reqwest::StatusCode {
    world
        .http()
        .post(format!("{}{path}", world.server.url()))
        .bearer_auth("admin-secret")
        .header("content-type", "application/json")
        .body(serde_json::json!({ "comment": comment }).to_string())
        .send()
        .await
        .expect("the server answers")
        .status()
}

/// The live's recording (serverSideRecording: the demo records every live),
/// once the recorder has closed it, downloaded through the admin API.
async fn recording_of(world: &World, link_id: &str) -> std::path::PathBuf {
    let http = world.http();
    let listing = || async {
        let list: Value = http
            .get(format!("{}/admin/recordings", world.server.url()))
            .bearer_auth("admin-secret")
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("JSON");
        list["recordings"]
            .as_array()
            .expect("a list")
            .iter()
            .find(|r| {
                r["file"]
                    .as_str()
                    .is_some_and(|f| f.starts_with(&format!("{link_id}_")))
            })
            .cloned()
    };
    // The recorder closes the file a moment after the live's end.
    let mut last_size = None;
    let mut entry = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        entry = listing().await;
        let size = entry.as_ref().map(|e| e["bytes"].clone());
        if size.is_some() && size == last_size {
            break;
        }
        last_size = size;
    }
    let entry = entry.unwrap_or_else(|| panic!("no recording of {link_id}"));
    assert_eq!(entry["site"], "newsite1");
    let url = format!("{}{}", world.server.url(), entry["url"].as_str().unwrap());
    // Without the token: refused.
    let refused = http.get(&url).send().await.expect("answers").status();
    assert_eq!(refused, reqwest::StatusCode::UNAUTHORIZED);
    // Players seek by range.
    let head = http
        .get(&url)
        .bearer_auth("admin-secret")
        .header("range", "bytes=0-7")
        .send()
        .await
        .expect("answers");
    assert_eq!(head.status(), reqwest::StatusCode::PARTIAL_CONTENT);
    assert_eq!(&head.bytes().await.expect("bytes")[4..8], b"ftyp");
    let whole = http
        .get(&url)
        .bearer_auth("admin-secret")
        .send()
        .await
        .expect("answers")
        .bytes()
        .await
        .expect("the file");
    assert_eq!(Some(whole.len() as u64), entry["bytes"].as_u64());
    let path = world.root.join(format!("{link_id}.mp4"));
    std::fs::write(&path, &whole).expect("saved");
    path
}

async fn activate(world: &World, user: &str) {
    let link = format!("{LINK}/activateExUser/?site=newsite1&user={user}&pass={user}-pw");
    let (events, status) = cli(world, user, &["open", &link]).await;
    assert_eq!(status, 0, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_switch_removals_a_point_update_and_the_administrator_end_a_live() {
    let world = world(1.0).await;
    register(&world).await;
    activate(&world, "taro").await;
    activate(&world, "yuki").await;

    // taro (free to watch) talks for five seconds while his viewers arrive,
    // then removes airi and makes the live paid.
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-taro");
    let broadcaster_args = [
        "open",
        &broadcast,
        "--live-for",
        "60000",
        "--comment",
        "1",
        "--comment",
        "2",
        "--comment",
        "3",
        "--comment",
        "4",
        "--comment",
        "5",
        "--remove",
        "airi",
        "--paid-switch",
        "120",
    ];
    let broadcaster = cli(&world, "taro", &broadcaster_args);
    let rest = async {
        let (token, link_id) = live_on_air(&world).await;
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        let view_args = ["open", view.as_str()];
        let administrator = async {
            // Once airi and yuki are out: a message, hanako's points topped
            // up, hanako removed, and at last the broadcaster.
            for _ in 0..300 {
                let codes: Vec<u8> = live_requests(&world)
                    .await
                    .iter()
                    .map(|(c, _, _)| *c)
                    .collect();
                if codes.contains(&15) && codes.iter().filter(|c| **c == 33).count() >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let base = format!("/admin/lives/{token}");
            assert_eq!(
                admin(
                    &world,
                    &format!("{base}/message"),
                    "音量を少し下げてください"
                )
                .await,
                200
            );
            let top_up = r#"{"siteToken":"site-token-1","sid":"s-live-1","userId":"hanako","point":100,"comment":"ポイント購入","autoCharge":true}"#;
            assert_eq!(
                world
                    .site_owner("/SiteOwner/UpdateUserBalance", "test.key", top_up)
                    .await,
                "result=0"
            );
            tokio::time::sleep(Duration::from_millis(800)).await;
            assert_eq!(
                admin(
                    &world,
                    &format!("{base}/viewers/hanako/disconnect"),
                    "規約違反"
                )
                .await,
                200
            );
            assert_eq!(
                admin(&world, &format!("{base}/viewers/hanako/disconnect"), "").await,
                404
            );
            assert_eq!(
                admin(&world, &format!("{base}/disconnect"), "配信を終了します").await,
                200
            );
        };
        let (viewers, ()) = tokio::join!(
            async {
                tokio::join!(
                    cli(&world, "hanako", &view_args),
                    cli(&world, "yuki", &view_args),
                    cli(&world, "airi", &view_args),
                )
            },
            administrator
        );
        viewers
    };
    let ((liver, liver_status), ((hanako, s1), (yuki, s2), (airi, s3))) =
        tokio::join!(broadcaster, rest);
    assert_eq!((liver_status, s1, s2, s3), (0, 0, 0, 0), "{liver:#?}");

    let reason = |events: &[Value]| find(events, "live.ended").unwrap()["reason"].clone();
    assert_eq!(
        reason(&yuki),
        "points_exhausted",
        "20 points cannot pay 120 a minute"
    );
    assert_eq!(reason(&airi), "removed_by_broadcaster");
    assert_eq!(reason(&hanako), "removed_by_administrator");
    assert_eq!(reason(&liver), "removed_by_administrator");
    assert_eq!(find(&hanako, "live.paid").unwrap()["unit_price"], 120);
    assert_eq!(
        find(&liver, "live.admin_message").unwrap()["text"],
        "音量を少し下げてください"
    );
    assert_eq!(
        find(&liver, "live.viewer_updated").unwrap()["user_id"],
        "hanako"
    );

    let seen = settled_live_requests(&world).await;
    let codes_of = |user: &str| -> Vec<u8> {
        seen.iter()
            .filter(|(_, u, _)| u == user)
            .map(|(c, _, _)| *c)
            .collect()
    };
    assert_eq!(
        codes_of("taro"),
        vec![11, 12, 7, 7, 7, 7, 7, 14, 97, 96, 13],
        "{seen:?}"
    );
    assert_eq!(codes_of("yuki"), vec![31, 32, 33], "{seen:?}");
    assert_eq!(codes_of("airi"), vec![31, 32, 15, 33], "{seen:?}");
    assert_eq!(codes_of("hanako"), vec![31, 32, 35, 36, 94, 33], "{seen:?}");
    world.server.stop().await;
}

/// A radio live carries sound alone: no picture is sent, and the viewer's
/// 32 goes once sound was decoded (§5.3.10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_radio_live_carries_sound_alone_and_starts_viewing_on_sound() {
    let world = world(1.0).await;
    register(&world).await;
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=radio-hanako");
    let broadcaster_args = ["open", &broadcast, "--live-for", "7000"];
    let broadcaster = cli(&world, "hanako", &broadcaster_args);
    let viewer = async {
        let (token, link_id) = live_on_air(&world).await;
        assert_eq!(link_id, "radio-hanako");
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        cli(&world, "airi", &["open", &view, "--live-for", "4000"]).await
    };
    let ((liver, liver_status), (airi, airi_status)) = tokio::join!(broadcaster, viewer);
    assert_eq!((liver_status, airi_status), (0, 0), "{airi:#?}");
    assert_eq!(find(&airi, "live.prepared").unwrap()["audio_only"], true);
    assert!(find(&airi, "live.media_received").is_some());
    let sent = &find(&liver, "live.media").unwrap()["media"];
    assert_eq!(
        sent["frames_sent"], 0,
        "no pictures from a radio live: {sent}"
    );
    let heard = &find(&airi, "live.media").unwrap()["media"];
    assert_eq!(heard["frames_decoded"], 0, "{heard}");
    assert!(
        heard["audio_packets_received"].as_u64().unwrap() > 50,
        "{heard}"
    );
    let seen = settled_live_requests(&world).await;
    let codes: Vec<u8> = seen
        .iter()
        .filter(|(_, u, _)| u == "airi")
        .map(|(c, _, _)| *c)
        .collect();
    assert_eq!(codes, vec![31, 32, 33], "{seen:?}");
    // Its recording is sound alone.
    let probe = ffprobe(&recording_of(&world, "radio-hanako").await);
    assert_eq!(
        probe["streams"].as_array().map(Vec::len),
        Some(1),
        "{probe:#}"
    );
    let sound = probed_number(&probed_stream(&probe, "opus")["nb_read_frames"]);
    assert!(sound > 200.0, "{sound} sound packets");
    world.server.stop().await;
}

/// A catalogue item whose period starts while a viewer watches appears in
/// its palette then, without rejoining (and the server accepts it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gift_whose_period_starts_mid_live_reaches_the_palette_of_a_viewer_watching() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let from = WireDateTime::from_unix_millis(UnixMillis(now + 9_000), JST).nexmile();
    let gift = format!(
        "[[site.gift]]\nkind = \"gift\"\ncategory = \"4\"\nitem_no = \"1\"\nname = \"流れ星\"\npoint = 10\nliver_point = 5\nvisible_from = \"{from}\"\n"
    );
    let world = world_with_gifts(1.0, &gift).await;
    register(&world).await;
    activate(&world, "taro").await;
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-airi");
    let broadcaster_args = ["open", &broadcast, "--live-for", "16000"];
    let broadcaster = cli(&world, "airi", &broadcaster_args);
    let viewer = async {
        let (token, link_id) = live_on_air(&world).await;
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        cli(&world, "taro", &["open", &view, "--live-for", "11000"]).await
    };
    let ((liver, liver_status), (taro, taro_status)) = tokio::join!(broadcaster, viewer);
    assert_eq!((liver_status, taro_status), (0, 0), "{liver:#?}");
    let palettes: Vec<Vec<String>> = all(&taro, "live.gifts")
        .iter()
        .map(|g| {
            g["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        palettes,
        [vec!["拍手", "ハート"], vec!["拍手", "ハート", "流れ星"]],
        "the palette at admission, then once the period began"
    );
    world.server.stop().await;
}

/// M6: one payment per viewer in flight. While the partner sits on the
/// first purchase, a second click is refused in words instead of paying twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_purchase_waits_for_the_first() {
    use nexmile_partner_demo::{Fault, FaultEndpoint, FaultKind};
    let world = world(1.0).await;
    register(&world).await;
    world
        .demo
        .set_fault(Fault {
            endpoint: FaultEndpoint::Payment,
            call_service_type: None,
            kind: FaultKind::Timeout,
            message: None,
            times: Some(1),
        })
        .await;
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-airi");
    let broadcaster_args = ["open", &broadcast, "--live-for", "9000"];
    let broadcaster = cli(&world, "airi", &broadcaster_args);
    let viewer = async {
        let (token, link_id) = live_on_air(&world).await;
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        cli(
            &world,
            "hanako",
            &[
                "open",
                &view,
                "--live-for",
                "5000",
                "--pay",
                "300",
                "--pay",
                "300",
            ],
        )
        .await
    };
    let ((_, airi_status), (hanako, hanako_status)) = tokio::join!(broadcaster, viewer);
    assert_eq!((airi_status, hanako_status), (0, 0), "{hanako:?}");
    assert!(
        all(&hanako, "live.refused").iter().any(|r| r["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("前のポイント購入を処理しています"))),
        "{hanako:?}"
    );
    // Neither purchase was paid: the first is held by the partner, the second refused.
    assert!(find(&hanako, "live.payment").is_none(), "{hanako:?}");
    assert_eq!(world.demo.points("hanako").await, Some(1000));
    world.server.stop().await;
}
