//! The web version in a real browser: Debian's Chromium, headless with a
//! fake camera and microphone, driven by Playwright (`ui/browser/open.mjs`).
//! The browser's own WebRTC meets the server's SFU and the app's engine on
//! the other side, so these are the interoperation tests of the server.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;

use crate::lives::live_on_air;
use crate::{World, cli, find, listen, register, run_to_end, world};

/// Opens `path` on the server in Chromium for up to `seconds`, screenshots
/// it into `target/e2e-screens/web/<name>.png`, then clicks `clicks` in order.
async fn browser(world: &World, path: &str, name: &str, seconds: u32, clicks: &[&str]) -> Value {
    let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui");
    let screens = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-screens/web");
    std::fs::create_dir_all(&screens).expect("screenshot folder");
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(&ui)
        .env("NEXMILE_SERVER_CERT", &world.tls.cert)
        .arg("browser/open.mjs")
        .arg(format!("{}{path}", world.server.url()))
        .arg(screens.join(format!("{name}.png")))
        .arg(seconds.to_string())
        .args(clicks.iter().flat_map(|c| ["--click", c]))
        .stderr(Stdio::inherit());
    let out = run_to_end(
        command,
        "node, the Playwright driver (scripts/setup.sh installs it)",
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("browser: {text}");
    serde_json::from_str(text.lines().last().unwrap_or_default()).expect("the driver's JSON")
}

/// The browser decoded pictures and heard sound, over H.264 and Opus (the
/// negotiated codecs are printed for the record).
fn assert_media_flowed(report: &Value) {
    let stats = &report["stats"];
    assert!(
        stats["framesDecoded"].as_u64().unwrap_or(0) > 30,
        "{report}"
    );
    assert!(
        stats["audioLevel"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
    let codecs: Vec<&str> = stats["codecs"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    eprintln!("negotiated in the browser: {codecs:?}");
    assert!(codecs.contains(&"video/H264"), "{codecs:?}");
    assert!(codecs.contains(&"audio/opus"), "{codecs:?}");
}

/// A member without the app follows the partner's viewLive link with
/// allowWeb=1 and watches a live that `nexmile-cli` broadcasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_the_app_watches_a_live_broadcast_by_the_app() {
    let world = world(1.0).await;
    register(&world).await;
    let unique = world.demo.issue_unique_id("taro").await;
    let broadcast = format!(
        "{}/broadcastLive/?site=newsite1&linkId=room-airi",
        crate::LINK
    );
    let broadcaster_args = ["open", &broadcast, "--live-for", "25000"];
    let broadcaster = cli(&world, "airi", &broadcaster_args);
    let viewer = async {
        let (token, link_id) = live_on_air(&world).await;
        let link = format!(
            "/sbxapp/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}&uniqueId={unique}&allowWeb=1"
        );
        // A heart from the palette, then leave.
        let clicks = ["[data-item='2/1']", "[data-leave]"];
        browser(&world, &link, "live-viewer", 20, &clicks).await
    };
    let ((liver, liver_status), report) = tokio::join!(broadcaster, viewer);
    assert_eq!(liver_status, 0, "{liver:#?}");
    assert!(
        report["url"]
            .as_str()
            .unwrap_or_default()
            .contains("/web/viewLive/"),
        "{report}"
    );
    assert_media_flowed(&report);
    // The broadcaster saw the browser's viewer arrive, and the partner got
    // the viewer's 31, 32 (after the first decoded picture) and 33.
    let joined = find(&liver, "live.joined").expect("the browser viewer arrived");
    assert_eq!(joined["user_id"], "taro");
    // Recording was not allowed (no serviceOptions 2): the picture carried
    // taro's ID and the time, and the page said why.
    let shown = report["shown"].as_str().unwrap_or_default();
    assert!(shown.contains("このOSでは録画を防げないため"), "{shown}");
    assert!(shown.contains("taro"), "{shown}");
    // The heart from the browser's palette reached the broadcaster and cost taro 50 points.
    let item = find(&liver, "live.item").expect("the browser's gift arrived");
    assert_eq!(item["name"], "佐藤太郎");
    assert_eq!(item["item"]["name"], "ハート");
    let mut codes = Vec::new();
    for _ in 0..50 {
        codes = crate::lives::settled_codes_of(&world, "taro").await;
        if codes.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(codes, vec![31, 32, 6, 33]);
    assert_eq!(world.demo.points("taro").await, Some(450));
    world.server.stop().await;
}

/// A browser caller and an app callee (`nexmile-cli listen`) complete a video
/// call through the server; each side decodes the other's pictures and sound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_caller_and_an_app_callee_complete_a_video_call() {
    let world = world(1.0).await;
    register(&world).await;
    let unique = world.demo.issue_unique_id("taro").await;
    let link = format!(
        "/sbxapp/makecall/?site=newsite1&calleeId=airi&video=1&uniqueId={unique}&allowWeb=1"
    );
    let caller = async {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        browser(&world, &link, "call-caller", 15, &["[data-end]"]).await
    };
    let ((callee, callee_status), report) = tokio::join!(
        listen(&world, "airi", "newsite1", &["--answer-after", "300"]),
        caller
    );
    assert_eq!(callee_status, 0, "{callee:#?}");
    assert_media_flowed(&report);
    // The app decoded the browser's fake camera and heard its microphone.
    let incoming = find(&callee, "call.incoming").expect("the call rang");
    assert!(
        incoming["peer_name"].as_str().unwrap().contains("佐藤"),
        "{incoming}"
    );
    let ended = find(&callee, "call.ended").expect("the call ended");
    assert_eq!(ended["reason"], 1, "the browser hung up");
    let media = &ended["media"];
    assert!(media["frames_decoded"].as_u64().unwrap() > 30, "{media}");
    assert!(
        media["audio_packets_received"].as_u64().unwrap() > 50,
        "{media}"
    );
    world.server.stop().await;
}

/// The video test in the browser: its own picture and sound come back
/// through the server's SFU and decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_runs_the_video_test_through_the_server() {
    let world = world(1.0).await;
    register(&world).await;
    let unique = world.demo.issue_unique_id("taro").await;
    let link =
        format!("/sbxapp/videoSetting/?site=newsite1&download=0&uniqueId={unique}&allowWeb=1");
    let report = browser(&world, &link, "video-test", 15, &["[data-end]"]).await;
    assert_media_flowed(&report);
    let text = report["text"].as_str().unwrap_or_default();
    assert!(text.contains("終了しました"), "ended by its button: {text}");
    world.server.stop().await;
}

/// A member broadcasts from the browser (broadcastLive with allowWeb=1): the
/// preview, 配信開始, and the app watching the browser's camera.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_broadcasts_a_live_that_the_app_watches() {
    let world = world(1.0).await;
    register(&world).await;
    let unique = world.demo.issue_unique_id("taro").await;
    let link = format!(
        "/sbxapp/broadcastLive/?site=newsite1&linkId=room-taro&uniqueId={unique}&allowWeb=1"
    );
    let clicks = ["[data-start]", "wait:9000", "[data-end]"];
    let broadcaster = browser(&world, &link, "live-broadcaster", 3, &clicks);
    let viewer = async {
        let (token, link_id) = live_on_air(&world).await;
        let view = format!(
            "{}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}",
            crate::LINK
        );
        cli(&world, "hanako", &["open", &view, "--live-for", "4000"]).await
    };
    let (report, (hanako, status)) = tokio::join!(broadcaster, viewer);
    assert_eq!(status, 0, "{hanako:#?}");
    assert!(
        report["shown"]
            .as_str()
            .unwrap_or_default()
            .contains("配信開始"),
        "{report}"
    );
    assert_eq!(
        find(&hanako, "live.prepared").unwrap()["liver_name"],
        "佐藤太郎"
    );
    let media = &find(&hanako, "live.media").expect("media summary")["media"];
    eprintln!("the app received from the browser broadcaster: {media}");
    assert!(media["frames_decoded"].as_u64().unwrap() > 20, "{media}");
    assert!(
        media["audio_packets_received"].as_u64().unwrap() > 50,
        "{media}"
    );
    assert_eq!(
        crate::lives::settled_codes_of(&world, "taro").await,
        vec![11, 12, 13]
    );
    world.server.stop().await;
}
