//! Chapter 6: a link the app did not take lands on the server's page, which
//! reports the missing app to the partner (§6.2) and offers the store, or
//! continues in the web version (allowWeb=1); `/.well-known/*` lets real
//! devices open the installed app instead.

use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use crate::{World, register, world};

const ANDROID_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36";
const IPHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// A browser's view: redirects are looked at, not followed; the test's CA trusted.
fn http(world: &World) -> reqwest::Client {
    let ca = std::fs::read(&world.tls.ca).expect("the test CA");
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge([reqwest::Certificate::from_pem(&ca).expect("a PEM CA")])
        .build()
        .expect("client")
}

async fn open(
    world: &World,
    path: &str,
    ua: &str,
) -> (reqwest::StatusCode, String, Option<String>) {
    let reply = http(world)
        .get(format!("{}{path}", world.server.url()))
        .header("user-agent", ua)
        .send()
        .await
        .expect("the server answers");
    let location = reply
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (reply.status(), reply.text().await.expect("text"), location)
}

/// The not-installed reports the partner received, as query maps.
async fn reports(world: &World, count: usize) -> Vec<std::collections::HashMap<String, String>> {
    for _ in 0..50 {
        let found: Vec<_> = world
            .demo
            .requests()
            .await
            .into_iter()
            .filter(|r| r.path == "/notInstalled")
            .map(|r| {
                url::form_urlencoded::parse(r.query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} not-installed reports reached the partner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_the_app_did_not_take_reports_the_missing_app_and_offers_the_store() {
    let world = world(1.0).await;
    // airi's app was activated with a uniqueId: the server knows whose it is.
    register(&world).await;
    let known = world.demo.issue_unique_id("airi").await;
    let activate = format!(
        "{}/activateExUser/?site=newsite1&uniqueId={known}",
        crate::LINK
    );
    let (events, status) = crate::cli(&world, "airi", &["open", &activate]).await;
    assert_eq!(status, 0, "{events:?}");

    // An Android phone without the app: the report names airi, the page Google Play.
    let path = format!("/sbxapp/makecall/?site=newsite1&calleeId=hanako&video=1&uniqueId={known}");
    let (status, page, _) = open(&world, &path, ANDROID_UA).await;
    assert_eq!(status, 200);
    assert!(page.contains("Nexmile アプリが必要です"), "{page}");
    assert!(page.contains("https://play.google.com/store/apps/details?id=jp.nexmile.app"));
    assert!(
        page.contains("nexmile://makecall/"),
        "an installed app can still be opened"
    );
    let first = &reports(&world, 1).await[0];
    assert_eq!(first["siteKey"], "test.key");
    assert_eq!(first["uniqueId"], known);
    assert_eq!(first["userId"], "airi");
    assert!(
        !first.contains_key("userPw"),
        "the server keeps no passwords"
    );
    assert_eq!(first["ua"], ANDROID_UA);
    assert_eq!(first["osType"], "1");

    // An iPhone with a uniqueId the server never saw: no user, the App Store.
    let path = "/sbxapp/viewLive/?site=newsite1&liveToken=t&linkId=room&uniqueId=never-seen";
    let (status, page, _) = open(&world, path, IPHONE_UA).await;
    assert_eq!(status, 200);
    assert!(page.contains("https://apps.apple.com/jp/app/nexmile/id6450000000"));
    let second = &reports(&world, 2).await[1];
    assert_eq!(second["uniqueId"], "never-seen");
    assert!(!second.contains_key("userId"), "{second:?}");
    assert_eq!(second["osType"], "2");

    // Without a uniqueId nothing identifies the user: the page, no report.
    let (status, page, _) = open(
        &world,
        "/sbxapp/videoSetting/?site=newsite1&download=0",
        "Mozilla/5.0 (X11; Linux x86_64)",
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("https://nexmile.jp/download"), "{page}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reports(&world, 2).await.len(), 2);

    // allowWeb=1 continues in the web version, with the same link.
    let (status, _, location) = open(
        &world,
        "/sbxapp/viewLive/?site=newsite1&liveToken=t&linkId=room&allowWeb=1",
        IPHONE_UA,
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/web/viewLive/?site=newsite1&liveToken=t&linkId=room&allowWeb=1")
    );

    // A broken link says what is wrong; an unknown site says so.
    let (status, page, _) =
        open(&world, "/sbxapp/makecall/?site=newsite1&video=1", IPHONE_UA).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("リンクが正しくありません") && page.contains("calleeId"),
        "{page}"
    );
    let (status, page, _) = open(
        &world,
        "/sbxapp/videoSetting/?site=nosuchsite&download=0",
        IPHONE_UA,
    )
    .await;
    assert_eq!(status, 404);
    assert!(page.contains("site=nosuchsite"), "{page}");
    // Markup in a link is shown as text, never run.
    let (_, page, _) = open(&world, "/sbxapp/%3Cscript%3E/?site=newsite1", IPHONE_UA).await;
    assert!(!page.contains("<script>"), "{page}");
    world.server.stop().await;
}

/// The files real devices fetch before opening the app for this host's
/// links, checked against the platforms' documented formats: Android's
/// Digital Asset Links statement list and Apple's applinks association.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_well_known_files_follow_the_android_and_apple_formats() {
    let world = world(1.0).await;
    let client = http(&world);
    let fetch = |path: &'static str| {
        let url = format!("{}{path}", world.server.url());
        let client = client.clone();
        async move {
            let reply = client.get(url).send().await.expect("answers");
            // Both platforms refuse redirects and want JSON.
            assert_eq!(reply.status(), 200, "{path}");
            let kind = reply.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(kind, "application/json", "{path}");
            let text = reply.text().await.expect("text");
            assert!(text.len() < 128 * 1024, "Apple reads at most 128 KB");
            serde_json::from_str::<Value>(&text).expect("JSON")
        }
    };
    // https://developers.google.com/digital-asset-links/v1/statements
    let statements = fetch("/.well-known/assetlinks.json").await;
    let statement = &statements.as_array().expect("a list of statements")[0];
    assert_eq!(
        statement["relation"],
        serde_json::json!(["delegate_permission/common.handle_all_urls"])
    );
    let target = &statement["target"];
    assert_eq!(target["namespace"], "android_app");
    let package = Regex::new(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$").unwrap();
    assert!(package.is_match(target["package_name"].as_str().unwrap()));
    let fingerprint = Regex::new(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$").unwrap();
    let prints = target["sha256_cert_fingerprints"].as_array().unwrap();
    assert!(!prints.is_empty());
    assert!(
        prints
            .iter()
            .all(|p| fingerprint.is_match(p.as_str().unwrap()))
    );

    // https://developer.apple.com/documentation/bundleresources/applinks
    let association = fetch("/.well-known/apple-app-site-association").await;
    let details = association["applinks"]["details"]
        .as_array()
        .expect("details");
    let app_id = Regex::new(r"^[A-Z0-9]{10}\.[A-Za-z0-9.-]+$").unwrap();
    for detail in details {
        let ids = detail["appIDs"].as_array().expect("appIDs");
        assert!(ids.iter().all(|i| app_id.is_match(i.as_str().unwrap())));
        for component in detail["components"].as_array().expect("components") {
            let path = component["/"].as_str().expect("a path pattern");
            assert!(path.starts_with('/'));
        }
    }
    // The patterns cover the links the server's pages answer.
    assert_eq!(details[0]["components"][0]["/"], "/sbxapp/*");
    world.server.stop().await;
}
