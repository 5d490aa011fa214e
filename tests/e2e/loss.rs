//! 5 % of the packets lost on the way to an app: it sits in a network
//! namespace of its own (tests/netns.sh) whose kernel drops that share of
//! the UDP arriving there. The figures are the receiver's own, from the
//! pictures it decoded, with and without retransmission on its own stream
//! (RTX), beside a viewer on a clean path.

use nexmile_testkit::netns::Namespace;
use nexmile_testkit::world_at;
use serde_json::Value;

use crate::lives::live_on_air;
use crate::{LINK, Server, World, cli_at, cli_in, find, register};

fn server(world: &World) -> Server {
    Server {
        url: world.server.url(),
        root: world.root.clone(),
        ca: world.tls.ca.clone(),
    }
}

/// The receiver's figures: pictures decoded, numbered pictures never
/// decoded, freezes and their total length.
fn smoothness(who: &str, media: &Value) -> (u64, u64, u64, f64) {
    let figures = (
        media["frames_decoded"].as_u64().unwrap(),
        media["pictures_missing"].as_u64().unwrap(),
        media["freezes"].as_u64().unwrap(),
        media["frozen_ms"].as_f64().unwrap(),
    );
    println!(
        "{who}: {} pictures decoded, {} missing, {} freezes ({:.0} ms frozen)",
        figures.0, figures.1, figures.2, figures.3
    );
    figures
}

/// Two app viewers of one live behind the same 5 % loss, one offering RTX
/// (as apps and browsers do) and one not (the engine then resends
/// nothing), and one on a clean path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_viewers_behind_loss_keep_watching_with_and_without_rtx() {
    let ns = Namespace::up();
    let world = world_at(ns.host, 1.0).await;
    register(&world).await;
    let server = server(&world);
    for user in ["taro", "support"] {
        let link = format!("{LINK}/activateExUser/?site=newsite1&user={user}&pass={user}-pw");
        let (events, status) = cli_at(&server, user, &["open", &link]).await;
        assert_eq!(status, 0, "{events:?}");
    }
    ns.lose_arriving_udp(5);

    let host = ns.host.to_string();
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-airi");
    let broadcaster_args = ["--bind", &host, "open", &broadcast, "--live-for", "16000"];
    let broadcaster = cli_at(&server, "airi", &broadcaster_args);
    let viewers = async {
        let (token, link_id) = live_on_air(&world).await;
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        let with_rtx = ["open", &view, "--live-for", "12000"];
        let without_rtx = ["--no-retransmission", "open", &view, "--live-for", "12000"];
        // The control: a viewer on a clean path sees only what the
        // broadcaster's busy encoder skipped.
        let clean = ["--bind", &host, "open", &view, "--live-for", "12000"];
        tokio::join!(
            cli_in(&ns, &server, "hanako", &with_rtx),
            cli_in(&ns, &server, "taro", &without_rtx),
            cli_at(&server, "support", &clean),
        )
    };
    let ((liver, liver_status), ((hanako, hanako_status), (taro, taro_status), (support, _))) =
        tokio::join!(broadcaster, viewers);
    assert_eq!(liver_status, 0, "{liver:#?}");
    assert_eq!(hanako_status, 0, "{hanako:#?}");
    assert_eq!(taro_status, 0, "{taro:#?}");
    let media = |events: &[Value]| find(events, "live.media").expect("a summary")["media"].clone();
    let with = smoothness("viewer with RTX", &media(&hanako));
    let without = smoothness("viewer without RTX", &media(&taro));
    let control = smoothness("viewer on a clean path", &media(&support));
    // Everyone watched the whole time, the clean path lost nothing, and
    // with RTX hardly a picture went (without it, 262 of 361 did).
    assert!(with.0 > 0 && without.0 > 0, "{with:?} {without:?}");
    assert!(with.1 < with.0 / 20, "{with:?}");
    assert!(control.0 > 150 && control.1 == 0, "{control:?}");
    world.server.stop().await;
}

/// A 10 s video call from hanako on this host to airi in the namespace
/// (`callee_options` before airi's command); both events, both ended well.
async fn call_into(
    ns: &Namespace,
    server: &Server,
    callee_options: &[&str],
) -> (Vec<Value>, Vec<Value>) {
    let host = ns.host.to_string();
    let link = format!("{LINK}/makecall/?site=newsite1&calleeId=airi&video=1");
    let listen = ["listen", "--site", "newsite1", "--calls", "1"];
    let callee = [callee_options, &listen[..], &["--answer-after", "200"]].concat();
    let ((airi, airi_status), (hanako, hanako_status)) =
        tokio::join!(cli_in(ns, server, "airi", &callee), async {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            let caller = ["--bind", &host, "open", &link, "--hangup-after", "10000"];
            cli_at(server, "hanako", &caller).await
        });
    assert_eq!(airi_status, 0, "{airi:#?}");
    assert_eq!(hanako_status, 0, "{hanako:#?}");
    (airi, hanako)
}

/// A call whose callee is behind 5 % loss, once offering RTX and once not:
/// with it hardly a picture is lost; without it the engine resends
/// nothing, and the figures say what that costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_behind_loss_is_repaired_with_and_without_rtx() {
    let ns = Namespace::up();
    let world = world_at(ns.host, 1.0).await;
    register(&world).await;
    ns.lose_arriving_udp(5);
    let server = server(&world);
    let mut figures = Vec::new();
    for retransmission in [true, false] {
        let options: &[&str] = if retransmission {
            &[]
        } else {
            &["--no-retransmission"]
        };
        let (airi, _) = call_into(&ns, &server, options).await;
        let media = &find(&airi, "call.ended").expect("the call ended")["media"];
        let who = if retransmission {
            "callee with RTX"
        } else {
            "callee without RTX"
        };
        figures.push(smoothness(who, media));
    }
    let (decoded, missing, _, _) = figures[0];
    assert!(decoded > 150, "{figures:?}");
    // With RTX a picture may go when its resend is lost too; hardly any more.
    assert!(missing < decoded / 20, "{figures:?}");
    // Without, the call still shows pictures (each loss costs a keyframe).
    assert!(figures[1].0 > 0, "{figures:?}");
    world.server.stop().await;
}

/// Calls whose callee's path carries 100 kbit/s (a queue that fills and
/// drops, as a slow access link does), beside a clean one: the server tells
/// the caller what gets through (REMB from the callee's losses), and the
/// caller's sending budget falls to it. The caller's own estimate covers
/// only its way to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_on_a_slow_path_lowers_what_its_caller_sends() {
    let ns = Namespace::up();
    let world = world_at(ns.host, 1.0).await;
    register(&world).await;
    let server = server(&world);
    let mut budgets = Vec::new();
    for capped in [false, true] {
        if capped {
            ns.cap_arriving(100);
        }
        let (_, hanako) = call_into(&ns, &server, &[]).await;
        let budget = hanako
            .iter()
            .filter(|e| e["event"] == "quality")
            .filter_map(|e| e["budgetKbps"].as_f64())
            .next_back()
            .expect("the caller reported its budget");
        let path = if capped { "100 kbit/s" } else { "clean" };
        println!("caller's budget at the end, callee's path {path}: {budget:.0} kbit/s");
        budgets.push(budget);
    }
    assert!(budgets[0] > 500.0, "{budgets:?}");
    assert!(budgets[1] <= 200.0, "{budgets:?}");
    world.server.stop().await;
}
