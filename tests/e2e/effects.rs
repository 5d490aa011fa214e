//! Effect packages: served per site, synced into the profile by
//! `videoSetting … download=1`, only what changed, resumable, checked.

use std::path::Path;

use nexmile_effects::animation::Animation;
use nexmile_effects::face_filter::FacePackage;
use serde_json::Value;

use crate::{LINK, World, cli, dial, find, listen, register, world};

fn download_link() -> String {
    format!("{LINK}/videoSetting/?site=newsite1&download=1")
}

fn effects_of(world: &World, profile: &str) -> std::path::PathBuf {
    world.root.join(profile).join("newsite1/effects")
}

fn names(report: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = report[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn sync(world: &World, profile: &str) -> (Value, i32, Vec<Value>) {
    let (events, status) = cli(world, profile, &["open", &download_link()]).await;
    let report = find(&events, "effects.synced")
        .unwrap_or_else(|| panic!("{events:?}"))
        .clone();
    (report, status, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_gets_the_sites_effects_and_then_only_what_changed() {
    let world = world(1.0).await;
    register(&world).await;
    let (report, status, events) = sync(&world, "hanako").await;
    assert_eq!(status, 0, "{events:?}");
    assert_eq!(
        names(&report, "downloaded"),
        [
            "face-filters/cat-ears/ears.png",
            "face-filters/cat-ears/manifest.json",
            "face-filters/glasses/glasses.png",
            "face-filters/glasses/manifest.json",
            "gifts/heart.png",
            "wallpapers/office.png",
            "wallpapers/sakura.png",
        ]
    );
    let last = events
        .iter()
        .rev()
        .find(|e| e["event"] == "effects.progress")
        .unwrap();
    assert_eq!(
        last["received"], last["total"],
        "the progress reaches the whole"
    );
    // What arrived is usable by the effects themselves.
    let dir = effects_of(&world, "hanako");
    let glasses = FacePackage::load(&dir.join("face-filters/glasses")).unwrap();
    assert_eq!(glasses.name, "まるメガネ");
    let heart = Animation::decode(&std::fs::read(dir.join("gifts/heart.png")).unwrap()).unwrap();
    assert_eq!(heart.frames().len(), 8);
    image::open(dir.join("wallpapers/sakura.png")).unwrap();

    // Nothing changed: nothing fetched.
    let (again, _, _) = sync(&world, "hanako").await;
    assert_eq!(
        (again["kept"].as_u64(), again["bytes_fetched"].as_u64()),
        (Some(7), Some(0))
    );
    assert_eq!(again["version"], report["version"]);

    // The site replaces a wallpaper and drops a gift; the server restarts.
    let site = world.root.join("site-effects");
    std::fs::copy(
        site.join("wallpapers/sakura.png"),
        site.join("wallpapers/office.png"),
    )
    .unwrap();
    std::fs::remove_file(site.join("gifts/heart.png")).unwrap();
    let World {
        demo,
        server,
        root,
        config,
        tls,
    } = world;
    server.stop().await;
    let server = nexmile_server::start(nexmile_server::config::Config::parse(&config).unwrap())
        .await
        .unwrap();
    let world = World {
        demo,
        server,
        root,
        config,
        tls,
    };
    let (diff, status, _) = sync(&world, "hanako").await;
    assert_eq!(status, 0);
    assert_eq!(names(&diff, "downloaded"), ["wallpapers/office.png"]);
    assert_eq!(names(&diff, "removed"), ["gifts/heart.png"]);
    assert_ne!(diff["version"], report["version"]);
    assert!(!dir.join("gifts/heart.png").exists());
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_filters_only_for_users_the_partner_allows() {
    let world = world(1.0).await;
    // yuki's auth reply carries enableDownloadEffect=0.
    let (events, status) = cli(
        &world,
        "yuki",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&user=yuki&pass=yuki-pw"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    assert_eq!(
        find(&events, "activated").unwrap()["enableDownloadEffect"],
        false
    );
    let (report, status, _) = sync(&world, "yuki").await;
    assert_eq!(status, 0);
    assert_eq!(
        names(&report, "downloaded"),
        [
            "gifts/heart.png",
            "wallpapers/office.png",
            "wallpapers/sakura.png"
        ]
    );
    // Asking for a face-filter file directly is refused, and paths outside the catalogue are unknown.
    let token = crate::session_token(&world, "yuki", "newsite1");
    let token = token.as_str();
    let get = |path: &str| {
        world
            .http()
            .get(format!("{}/api/effects/files/{path}", world.server.url()))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        get("face-filters/glasses/glasses.png")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(get("../nexmile.db").await.unwrap().status(), 404);
    assert_eq!(get("README.md").await.unwrap().status(), 404);
    let anonymous = world
        .http()
        .get(format!("{}/api/effects/manifest", world.server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    world.server.stop().await;
}

fn truncate_to_half(from: &Path, part: &Path) -> u64 {
    let bytes = std::fs::read(from).unwrap();
    let half = bytes.len() / 2;
    std::fs::write(part, &bytes[..half]).unwrap();
    std::fs::remove_file(from).unwrap();
    half as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_downloads_resume_and_bad_files_never_take_their_place() {
    let world = world(1.0).await;
    register(&world).await;
    sync(&world, "hanako").await;
    let dir = effects_of(&world, "hanako");
    // A download cut off half-way resumes from where it stopped.
    let half = truncate_to_half(
        &dir.join("wallpapers/sakura.png"),
        &dir.join("wallpapers/sakura.png.part"),
    );
    // A local file damaged on disk is noticed and fetched again.
    std::fs::write(dir.join("gifts/heart.png"), b"not an animation").unwrap();
    let (report, status, _) = sync(&world, "hanako").await;
    assert_eq!(status, 0, "{report}");
    assert_eq!(report["resumed_bytes"], half);
    assert_eq!(
        names(&report, "downloaded"),
        ["gifts/heart.png", "wallpapers/sakura.png"]
    );
    image::open(dir.join("wallpapers/sakura.png")).unwrap();
    assert!(!dir.join("wallpapers/sakura.png.part").exists());

    // The server's copy goes bad after it was catalogued: the bytes never match
    // the manifest, so after one more try the file is left out and reported;
    // the good copy already in the profile stays.
    std::fs::write(world.root.join("site-effects/gifts/heart.png"), b"corrupt").unwrap();
    std::fs::remove_file(dir.join("gifts/heart.png")).unwrap();
    let (report, status, _) = sync(&world, "hanako").await;
    assert_eq!(status, 1);
    assert_eq!(names(&report, "refetched"), ["gifts/heart.png"]);
    assert_eq!(report["failed"][0][0], "gifts/heart.png");
    assert!(report["failed"][0][1].as_str().unwrap().contains("SHA-256"));
    assert!(
        !dir.join("gifts/heart.png").exists(),
        "a bad file never takes its place"
    );
    assert!(!dir.join("gifts/heart.png.part").exists());

    // A server that sends more than the manifest says is cut off at its size:
    // nothing beyond it reaches the disk.
    let sakura = world.root.join("site-effects/wallpapers/sakura.png");
    let mut grown = std::fs::read(&sakura).unwrap();
    grown.resize(grown.len() * 8, 0);
    std::fs::write(&sakura, &grown).unwrap();
    std::fs::remove_file(dir.join("wallpapers/sakura.png")).unwrap();
    let (report, status, _) = sync(&world, "hanako").await;
    assert_eq!(status, 1);
    let failed = report["failed"].as_array().unwrap();
    let sakura_failed = failed
        .iter()
        .find(|f| f[0] == "wallpapers/sakura.png")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        sakura_failed[1]
            .as_str()
            .unwrap()
            .contains("more than the manifest"),
        "{report}"
    );
    assert!(!dir.join("wallpapers/sakura.png").exists());
    assert!(!dir.join("wallpapers/sakura.png.part").exists());
    world.server.stop().await;
}

fn video_test_link() -> String {
    format!("{LINK}/videoSetting/?site=newsite1&download=0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_video_test_returns_the_picture_and_its_effects_follow_into_calls() {
    let world = world(1.0).await;
    register(&world).await;
    sync(&world, "hanako").await;
    // The video test: own picture through the server and back, with a
    // wallpaper and a mosaic chosen (and saved).
    let (events, status) = cli(
        &world,
        "hanako",
        &[
            "open",
            &video_test_link(),
            "--wallpaper",
            "picture:wallpapers/sakura.png",
            "--mosaic",
            "whole",
            "--duration",
            "3000",
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    let effects = find(&events, "effects").unwrap();
    assert_eq!(
        effects["refused"],
        serde_json::json!([]),
        "the preview allows every effect"
    );
    let result = &find(&events, "video_test.result").unwrap()["media"];
    assert!(result["frames_decoded"].as_u64().unwrap() > 20, "{result}");
    assert!(result["effects_ms_median"].as_f64().is_some(), "{result}");
    assert_eq!(result["effect_errors"], 0);
    let saved: Value = serde_json::from_slice(
        &std::fs::read(world.root.join("hanako/newsite1/effect-settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["mosaic"]["area"], "wholeFrame");

    // A call applies them under the partner's callerOption (hanako: face filter
    // and mosaic, no wallpaper): the mosaic goes out, the wallpaper is off and said why.
    let (_, caller) = tokio::join!(
        listen(&world, "airi", "newsite1", &["--answer-after", "200"]),
        dial(
            &world,
            "hanako",
            format!("{LINK}/makecall/?site=newsite1&calleeId=airi&video=1"),
            &["--hangup-after", "1500"]
        )
    );
    let effects = find(&caller.0, "effects").unwrap_or_else(|| panic!("{caller:?}"));
    assert_eq!(
        effects["refused"],
        serde_json::json!(["このサイトでは壁紙を使用できません。"])
    );
    let media = &find(&caller.0, "call.ended").unwrap()["media"];
    assert!(media["effects_ms_median"].as_f64().is_some(), "{media}");

    // A wallpaper file that is not there: that effect is off, said, and the test still runs.
    let (events, status) = cli(
        &world,
        "hanako",
        &[
            "open",
            &video_test_link(),
            "--wallpaper",
            "picture:wallpapers/missing.png",
            "--duration",
            "1500",
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    let refused = find(&events, "effects").unwrap()["refused"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(refused.starts_with("壁紙を使用できません（"), "{refused}");
    world.server.stop().await;
}
