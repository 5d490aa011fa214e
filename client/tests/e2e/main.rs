//! End to end: the partner demo and the server in this process over real
//! HTTP, `nexmile-cli` processes as the apps, real WebRTC media through the
//! server's relay on loopback.

mod calls;
mod effects;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;

use nexmile_partner_demo::{DemoConfig, PartnerDemo};
use nexmile_server::RunningServer;
use nexmile_server::config::Config;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

pub(crate) struct World {
    pub(crate) demo: PartnerDemo,
    pub(crate) server: RunningServer,
    pub(crate) root: PathBuf,
    pub(crate) config: String,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) async fn world(clock_rate: f64) -> World {
    let port = free_port();
    let demo = PartnerDemo::start(DemoConfig {
        nexmile_url: format!("http://127.0.0.1:{port}"),
        calling_timeout_sec: 10,
        ..DemoConfig::in_memory()
    })
    .await
    .expect("partner demo");
    let root = std::env::temp_dir().join(format!("nexmile-e2e-{}", uuid_like()));
    let partner = demo.url();
    // A copy of the demo site's effect files, which a test may change.
    let effects = root.join("site-effects");
    copy_tree(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/effects/newsite1"),
        &effects,
    );
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
database = "sqlite://{db}"
admin_token = "admin-secret"
clock_rate = {clock_rate}
[[site]]
code = "newsite1"
name = "デモサイト"
api_key = "test.key"
token = "site-token-1"
auth_url = "{partner}/auth"
call_service_url = "{partner}/CallService"
live_service_url = "{partner}/liveService"
payment_url = "{partner}/payment"
not_installed_url = "{partner}/notInstalled"
effects_dir = "{effects}"
[[site]]
code = "othersite"
api_key = "other.key"
token = "other-token"
auth_url = "{partner}/auth"
"#,
        db = root.join("nexmile.db").display(),
        effects = effects.display(),
    );
    let server = nexmile_server::start(Config::parse(&text).expect("config"))
        .await
        .expect("server");
    World {
        demo,
        server,
        root,
        config: text,
    }
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Runs nexmile-cli with a profile directory; returns its events and exit status.
pub(crate) async fn cli(world: &World, profile: &str, args: &[&str]) -> (Vec<Value>, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexmile-cli"))
        .arg("--server")
        .arg(world.server.url())
        .arg("--profiles")
        .arg(world.root.join(profile))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("nexmile-cli runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{profile}: {line}");
        events.push(serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}")));
    }
    let status = child.wait().await.unwrap().code().unwrap_or(-1);
    (events, status)
}

/// `profile` online at `site` for one call, with `extra` listen options.
pub(crate) async fn listen(
    world: &World,
    profile: &str,
    site: &str,
    extra: &[&str],
) -> (Vec<Value>, i32) {
    let mut args = vec!["listen", "--site", site, "--calls", "1"];
    args.extend_from_slice(extra);
    cli(world, profile, &args).await
}

/// `open <link> extra…`, once a listener started alongside has had time to come online.
pub(crate) async fn dial(
    world: &World,
    profile: &str,
    link: String,
    extra: &[&str],
) -> (Vec<Value>, i32) {
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let mut args = vec!["open", link.as_str()];
    args.extend_from_slice(extra);
    cli(world, profile, &args).await
}

pub(crate) fn find<'a>(events: &'a [Value], name: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["event"] == name)
}

pub(crate) const LINK: &str = "https://sbx.stream-works.biz/sbxapp";

pub(crate) async fn register(world: &World) {
    let (events, status) = cli(
        world,
        "hanako",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&user=hanako&pass=hanako-pw"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    assert_eq!(find(&events, "activated").unwrap()["userId"], "hanako");
    let unique = world.demo.issue_unique_id("airi").await;
    let (events, status) = cli(
        world,
        "airi",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&uniqueId={unique}"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    assert_eq!(find(&events, "activated").unwrap()["userId"], "airi");
}
