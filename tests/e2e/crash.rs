//! The server dies (SIGKILL) in the middle of a billed call and a paid live
//! with two viewers, and is started again: the partner receives each end
//! report once, with the seconds up to the server's last checkpoint, and
//! charges each payer once. Then a SIGTERM during a call: it ends with
//! reason 4 and its report is stored before the process exits.
//!
//! The server is a process of its own here (`nexmile-server`), the apps are
//! `nexmile-cli` processes, the partner is the demo site in this process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nexmile_core::codec::decode_json_body;
use nexmile_core::wire::call::CallServiceRequest;
use nexmile_core::wire::live::LiveServiceRequest;
use nexmile_testkit::ServerProcess;
use serde_json::Value;

use crate::{LINK, Server, cli_at};

/// Server seconds per real second: the demo's 30 s free trial of paid
/// viewing passes in 15 s. (At ×4 a busy machine's second of scheduling
/// delay is 4 s of server time, which the 5 s checkpoint cannot absorb.)
const RATE: f64 = 2.0;

fn server_binary() -> PathBuf {
    nexmile_testkit::binary("nexmile-server")
}

/// One request the partner received, decoded: its type code and JSON.
struct Received {
    code: u8,
    json: Value,
    status: Option<u16>,
}

async fn received(world: &ServerProcess) -> Vec<Received> {
    world
        .demo
        .requests()
        .await
        .into_iter()
        .filter_map(|r| match r.path.as_str() {
            "/CallService" => {
                let request: CallServiceRequest = decode_json_body(r.body.as_bytes()).ok()?;
                Some(Received {
                    code: request.call_service_type as u8,
                    json: serde_json::to_value(&request).ok()?,
                    status: r.reply_status,
                })
            }
            "/liveService" => {
                let request: LiveServiceRequest = decode_json_body(r.body.as_bytes()).ok()?;
                Some(Received {
                    code: request.request.live_service_type() as u8,
                    json: serde_json::to_value(&request).ok()?,
                    status: r.reply_status,
                })
            }
            _ => None,
        })
        .collect()
}

/// Waits until the partner has received `count` requests of `code`
/// (answered, when `answered`); returns the moment it saw the last one.
async fn until_received(world: &ServerProcess, code: u8, count: usize, answered: bool) -> Instant {
    for _ in 0..1200 {
        let seen = received(world)
            .await
            .into_iter()
            .filter(|r| r.code == code && (!answered || r.status == Some(200)))
            .count();
        if seen >= count {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the partner never received {count} × {code}: {}",
        world.log()
    );
}

fn all_of(requests: &[Received], code: u8) -> Vec<&Value> {
    requests
        .iter()
        .filter(|r| r.code == code)
        .map(|r| &r.json)
        .collect()
}

/// Server seconds between two real moments.
fn server_seconds(from: Instant, to: Instant) -> f64 {
    to.duration_since(from).as_secs_f64() * RATE
}

/// A reported figure is the truth less at most one 5 s checkpoint interval;
/// 1 s more either way is the test's own timing (polls, delivery).
fn assert_within_a_checkpoint(what: &str, reported: u64, truth: f64) {
    let reported = reported as f64;
    eprintln!("{what}: reported {reported} s, truly {truth:.1} s");
    assert!(
        reported <= truth + 1.0 && reported >= truth - 6.0,
        "{what}: reported {reported} s, truly {truth:.1} s"
    );
}

fn number(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

async fn points(world: &ServerProcess, user: &str) -> i64 {
    world.demo.points(user).await.expect("a demo user")
}

async fn register(server: &Server, user: &str) {
    let (events, status) = cli_at(
        server,
        user,
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&user={user}&pass={user}-pw"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{user}: {events:?}");
}

/// yuki calls the support line (its site pays), which answers: a billed call.
async fn call_the_support_line(server: &Server) {
    spawn_cli(
        server,
        "support",
        [
            "listen",
            "--site",
            "newsite1",
            "--calls",
            "1",
            "--answer-after",
            "300",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    spawn_cli(
        server,
        "yuki",
        vec![
            "open".into(),
            format!("{LINK}/makecall/?site=newsite1&calleeId=support&video=1"),
            "--hangup-after".into(),
            "600000".into(),
        ],
    );
}

/// Runs `args` as `profile` in the background; its output is not awaited.
fn spawn_cli(server: &Server, profile: &'static str, args: Vec<String>) {
    let server = server.clone();
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_at(&server, profile, &args).await
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_reports_each_running_call_and_viewing_once_at_its_next_start() {
    let mut world = ServerProcess::start(server_binary(), RATE).await;
    let server = Server {
        url: world.url.clone(),
        root: world.root.clone(),
        ca: world.tls.ca.clone(),
    };
    for user in ["yuki", "support", "airi", "hanako", "taro"] {
        register(&server, user).await;
    }
    let before = (
        points(&world, "support").await,
        points(&world, "hanako").await,
        points(&world, "taro").await,
    );

    // A call billed to the support line (its site pays, 10 yen a minute),
    // and airi's paid live watched by hanako and taro.
    let long = "600000".to_owned();
    call_the_support_line(&server).await;
    spawn_cli(
        &server,
        "airi",
        vec![
            "open".into(),
            format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-crash"),
            "--live-for".into(),
            long.clone(),
        ],
    );
    let on_air = until_received(&world, 12, 1, true).await;
    let (token, link_id, _) = world.demo.lives_on_air().await.remove(0);
    for viewer in ["hanako", "taro"] {
        spawn_cli(
            &server,
            viewer,
            vec![
                "open".into(),
                format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}"),
                "--live-for".into(),
                long.clone(),
            ],
        );
    }
    let connected = until_received(&world, 5, 1, false).await;
    let watching = until_received(&world, 32, 2, true).await;
    // Past the viewers' 30 s free trial, into paid time.
    tokio::time::sleep(Duration::from_secs(20)).await;

    world.kill();
    let killed = Instant::now();
    let before_restart = received(&world).await;
    assert!(
        all_of(&before_restart, 6).is_empty() && all_of(&before_restart, 13).is_empty(),
        "nothing ended before the kill"
    );
    assert!(all_of(&before_restart, 33).is_empty());

    world.start_server().await;
    until_received(&world, 6, 1, true).await;
    until_received(&world, 13, 1, true).await;
    until_received(&world, 33, 2, true).await;
    // Whatever else might come (a second report, a retry) has time to.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = received(&world).await;

    let ends = all_of(&after, 6);
    assert_eq!(ends.len(), 1, "one 通話終了: {ends:?}");
    let overview = &ends[0]["callOverview"];
    assert_eq!(overview["terminateReason"], 4, "{overview}");
    let talked = number(overview, "talkingSec");
    assert_within_a_checkpoint("talkingSec", talked, server_seconds(connected, killed));
    let talking_point = number(overview, "talkingPoint");
    assert!(talking_point > 0, "{overview}");

    let live_ends = all_of(&after, 13);
    assert_eq!(live_ends.len(), 1, "one ライブ終了: {live_ends:?}");
    assert_within_a_checkpoint(
        "the live's liveSec",
        number(live_ends[0], "liveSec"),
        server_seconds(on_air, killed),
    );
    let view_ends = all_of(&after, 33);
    assert_eq!(view_ends.len(), 2, "one 視聴終了 each: {view_ends:?}");
    let mut viewed = Vec::new();
    for end in &view_ends {
        let user = end["userId"].as_str().unwrap().to_owned();
        assert_within_a_checkpoint(
            &format!("{user}'s liveSec"),
            number(end, "liveSec"),
            server_seconds(watching, killed),
        );
        assert!(number(end, "point") > 0, "paid time was watched: {end}");
        viewed.push((user, number(end, "point")));
    }
    viewed.sort();
    assert_eq!(
        viewed.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
        ["hanako", "taro"]
    );

    // Each payer was charged once, by what the reports say.
    let after_points = (
        points(&world, "support").await,
        points(&world, "hanako").await,
        points(&world, "taro").await,
    );
    assert_eq!(
        after_points,
        (
            before.0 - i64::try_from(talking_point).unwrap(),
            before.1 - i64::try_from(viewed[0].1).unwrap(),
            before.2 - i64::try_from(viewed[1].1).unwrap(),
        )
    );
    assert!(
        world
            .log()
            .contains("end reports queued from their last checkpoints"),
        "the restart says what it recovered"
    );

    // A SIGTERM during a call: it ends with reason 4 before the process
    // exits, and its report is delivered after the next start.
    call_the_support_line(&server).await;
    let connected = until_received(&world, 5, 2, false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stopping = Instant::now();
    let status = world.terminate();
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    world.start_server().await;
    until_received(&world, 6, 2, true).await;
    let ends = all_of(&received(&world).await, 6)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let overview = &ends[1]["callOverview"];
    assert_eq!(overview["terminateReason"], 4, "{overview}");
    // Ended at the stop itself, not at a checkpoint.
    let talked = number(overview, "talkingSec") as f64;
    let truth = server_seconds(connected, stopping);
    eprintln!("SIGTERM: talkingSec {talked}, truly {truth:.1}");
    assert!(
        (talked - truth).abs() <= 1.5,
        "talkingSec {talked}, truly {truth:.1}"
    );
    let _ = std::fs::remove_dir_all(&world.root);
}
