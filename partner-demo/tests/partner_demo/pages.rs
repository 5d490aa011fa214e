//! The top page's app links, the JSON views, and a database that outlives the site.

use nexmile_core::applink::{AppLink, AppLinkAction, AppLinkParser, VideoSettingMode};
use nexmile_core::wire::auth::AuthReply;
use nexmile_partner_demo::{DemoConfig, LoggedRequest};

use crate::support::{API_KEY, auth_query, start, start_with};

const BASE: &str = "https://links.example.com/app";

/// Every `href` of the page that starts with `prefix`, unescaped.
fn links(page: &str, prefix: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(href, _)| href))
        .filter(|href| href.starts_with(prefix))
        .map(|href| href.replace("&amp;", "&"))
        .collect()
}

#[tokio::test]
async fn the_top_page_links_parse_back_and_their_one_time_ids_work() {
    let site = start_with(DemoConfig {
        app_link_base: Some(BASE.into()),
        ..DemoConfig::in_memory()
    })
    .await;
    let (status, page) = site.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("山田花子") && page.contains("Nexmile partner demo"));
    let parser = AppLinkParser::default().with_base(BASE).unwrap();
    let parsed: Vec<AppLink> = links(&page, BASE)
        .iter()
        .map(|link| parser.parse(link).unwrap_or_else(|e| panic!("{link}: {e}")))
        .collect();
    // 5 users × (a live, a radio live, 2 registrations, 2 video settings, 4 calls).
    assert_eq!(parsed.len(), 5 * 10);
    assert!(matches!(
        &parsed[0].action,
        AppLinkAction::BroadcastLive { link_id } if link_id == "room-airi"
    ));
    assert!(parsed.iter().all(|l| l.site.as_str() == "newsite1"));
    assert!(parsed.iter().all(|l| l.return_url.is_some()));

    let one_time: Vec<&str> = parsed
        .iter()
        .filter(|l| {
            matches!(
                l.action,
                AppLinkAction::ActivateExUser {
                    credentials: None,
                    named_user: None,
                }
            )
        })
        .filter_map(|l| l.unique_id.as_deref())
        .collect();
    assert_eq!(one_time.len(), 5);
    let (_, body) = site
        .get(&auth_query(API_KEY, &format!("uniqueId={}", one_time[0])))
        .await;
    assert!(AuthReply::parse(&body).unwrap().user_id.is_some());

    let with_password = parsed.iter().find_map(|l| match &l.action {
        AppLinkAction::ActivateExUser {
            credentials: Some(c),
            ..
        } if c.user == "yuki" => Some(c.pass.expose().to_owned()),
        _ => None,
    });
    assert_eq!(with_password.as_deref(), Some("yuki-pw"));
    let calls_to_airi = parsed
        .iter()
        .filter(|l| {
            matches!(&l.action, AppLinkAction::MakeCall { callee_id, video: true, .. } if callee_id == "airi")
        })
        .count();
    assert_eq!(calls_to_airi, 4, "from everyone else");
    assert!(parsed.iter().any(|l| l.action
        == AppLinkAction::VideoSetting {
            mode: VideoSettingMode::DownloadEffects
        }));

    // Each view makes new one-time IDs.
    let (_, again) = site.get("/").await;
    assert!(!again.contains(one_time[1]));
    site.demo.shutdown().await;
}

#[tokio::test]
async fn desktop_links_use_the_custom_scheme() {
    let site = start_with(DemoConfig {
        app_link_base: Some("nexmile://".into()),
        ..DemoConfig::in_memory()
    })
    .await;
    let (_, page) = site.get("/").await;
    let desktop = links(&page, "nexmile://");
    assert_eq!(desktop.len(), 5 * 10);
    let call = AppLinkParser::default().parse(&desktop[9]).unwrap();
    assert!(matches!(call.action, AppLinkAction::MakeCall { .. }));
    site.demo.shutdown().await;
}

#[tokio::test]
async fn users_and_log_as_json_and_the_log_page() {
    let site = start().await;
    let (_, users) = site.get("/users.json").await;
    let users: serde_json::Value = serde_json::from_str(&users).unwrap();
    let points: Vec<(String, i64)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["userId"].as_str().unwrap().to_owned(),
                u["points"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        points,
        [
            ("airi".to_owned(), 0),
            ("hanako".to_owned(), 1000),
            ("support".to_owned(), 5000),
            ("taro".to_owned(), 500),
            ("yuki".to_owned(), 20),
        ]
    );
    assert!(users.to_string().find("password").is_none());

    site.get(&auth_query(API_KEY, "userId=yuki&userPw=yuki-pw"))
        .await;
    let (_, log) = site.get("/log.json").await;
    let log: Vec<LoggedRequest> = serde_json::from_str(&log).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/auth");
    assert_eq!(log[0].direction, "in");
    assert!(
        log[0]
            .reply_body
            .as_deref()
            .unwrap()
            .starts_with("result=0")
    );
    let (status, page) = site.get("/log").await;
    assert_eq!(status, 200);
    assert!(page.contains("/auth") && page.contains("userPw=***"));
    assert!(!page.contains("yuki-pw"));
    site.demo.shutdown().await;
}

#[tokio::test]
async fn a_database_file_keeps_points_across_restarts() {
    let folder = std::env::temp_dir().join(format!("partner-demo-{}", uuid_like()));
    let config = DemoConfig {
        database: format!("sqlite://{}/nested/demo.db", folder.display()),
        ..DemoConfig::in_memory()
    };
    let site = start_with(config.clone()).await;
    site.get(&format!(
        "/payment?siteKey={API_KEY}&liveToken=lt&linkId=L&userId=yuki&payment=80"
    ))
    .await;
    site.demo.shutdown().await;

    let site = start_with(config).await;
    assert_eq!(site.demo.points("yuki").await, Some(100));
    assert_eq!(site.demo.points("hanako").await, Some(1000), "seeded once");
    assert_eq!(site.demo.requests().await.len(), 1);
    site.demo.shutdown().await;
    std::fs::remove_dir_all(folder).unwrap();
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}
