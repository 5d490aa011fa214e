//! End to end: the partner demo and the server in this process over real
//! HTTP, `nexmile-cli` processes as the apps, real WebRTC media through the
//! server's relay on loopback.

mod authorization;
mod calls;
mod crash;
mod effects;
mod imageflux;
mod lives;
mod loss;
mod networks;
mod not_installed;
mod proxy;
mod security;
mod skyway;
mod socialstream;
mod sound;
mod web;
mod whip;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

pub(crate) use nexmile_testkit::{World, world};

/// Longer than any program a test runs takes on a loaded machine (the
/// longest, a 16 s live, ends within a minute): one still running then has
/// hung, and its test fails saying so instead of holding the whole suite.
const PROGRAM_DEADLINE: Duration = Duration::from_secs(240);

/// `command` run to its end, as `Command::output` does, killed and failing
/// the test if it outlives [`PROGRAM_DEADLINE`].
pub(crate) async fn run_to_end(mut command: Command, what: &str) -> std::process::Output {
    let output = command.kill_on_drop(true).output();
    match tokio::time::timeout(PROGRAM_DEADLINE, output).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("{what} does not run: {e}")),
        Err(_) => panic!("{what} still running after {PROGRAM_DEADLINE:?}: killed"),
    }
}

/// Runs nexmile-cli with a profile directory; returns its events and exit status.
pub(crate) async fn cli(world: &World, profile: &str, args: &[&str]) -> (Vec<Value>, i32) {
    let server = Server {
        url: world.server.url(),
        root: world.root.clone(),
        ca: world.tls.ca.clone(),
    };
    cli_at(&server, profile, args).await
}

/// Where a nexmile-cli connects: the server, its CA, the profiles' folder.
#[derive(Clone)]
pub(crate) struct Server {
    pub url: String,
    pub root: std::path::PathBuf,
    pub ca: std::path::PathBuf,
}

/// [`cli`] against any server.
pub(crate) async fn cli_at(server: &Server, profile: &str, args: &[&str]) -> (Vec<Value>, i32) {
    cli_with_env(server, profile, args, &[]).await
}

/// [`cli_at`] with more environment (a sound server, its devices).
pub(crate) async fn cli_with_env(
    server: &Server,
    profile: &str,
    args: &[&str],
    env: &[(String, String)],
) -> (Vec<Value>, i32) {
    let command = Command::new(nexmile_testkit::binary("nexmile-cli"));
    run_cli(command, server, profile, args, env).await
}

/// [`cli_at`] on another "machine": inside the network namespace `ns`.
pub(crate) async fn cli_in(
    ns: &nexmile_testkit::netns::Namespace,
    server: &Server,
    profile: &str,
    args: &[&str],
) -> (Vec<Value>, i32) {
    let command = ns.command(nexmile_testkit::binary("nexmile-cli"));
    run_cli(command, server, profile, args, &[]).await
}

async fn run_cli(
    mut command: Command,
    server: &Server,
    profile: &str,
    args: &[&str],
    env: &[(String, String)],
) -> (Vec<Value>, i32) {
    let mut child = command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--server")
        .arg(&server.url)
        .arg("--profiles")
        .arg(server.root.join(profile))
        .arg("--ca-file")
        .arg(&server.ca)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("nexmile-cli runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    let to_end = async {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{profile}: {line}");
            events.push(serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}")));
        }
        child.wait().await.unwrap().code().unwrap_or(-1)
    };
    match tokio::time::timeout(PROGRAM_DEADLINE, to_end).await {
        Ok(status) => (events, status),
        // Dropped, the child is killed.
        Err(_) => panic!(
            "nexmile-cli {profile} {args:?} still running after {PROGRAM_DEADLINE:?}: \
             killed; it printed {events:#?}"
        ),
    }
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
    let server = Server {
        url: world.server.url(),
        root: world.root.clone(),
        ca: world.tls.ca.clone(),
    };
    register_at(world, &server).await;
}

/// [`register`] through `server` (an address other than the one it binds).
pub(crate) async fn register_at(world: &World, server: &Server) {
    let (events, status) = cli_at(
        server,
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
    let (events, status) = cli_at(
        server,
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

/// The session token the headless app keeps for `profile` at `site`.
pub(crate) fn session_token(world: &World, profile: &str, site: &str) -> String {
    let profiles = nexmile_client::profiles::Profiles::open(world.root.join(profile)).unwrap();
    let site = nexmile_core::applink::SiteCode::new(site).unwrap();
    profiles
        .load(&site)
        .unwrap()
        .expect("registered")
        .session_token
}
