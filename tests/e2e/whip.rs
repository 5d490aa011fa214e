//! WHIP (RFC 9725): Chromium publishes into a Nexmile live with the
//! standard exchange (`ui/browser/whip.mjs`: the offer POSTed as
//! application/sdp with a bearer token, the 201's answer and Location, a
//! DELETE to stop) and the app watches it through the SFU. Debian's own
//! WHIP client (simple-whip-client) was tried first: it aborts at start in
//! bookworm (libsoup2 in the client, libsoup3 through webrtcbin's libnice).

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;

use crate::lives::{live_on_air, settled_codes_of};
use crate::{LINK, cli, find, register, run_to_end, session_token, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publisher_broadcasts_a_live_that_the_app_watches() {
    let world = world(1.0).await;
    register(&world).await;
    let token = session_token(&world, "airi", "newsite1");
    let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui");
    let mut publisher = tokio::process::Command::new("node");
    publisher
        .current_dir(&ui)
        .env("NEXMILE_SERVER_CERT", &world.tls.cert)
        .args([
            "browser/whip.mjs",
            "publish",
            &world.server.url(),
            &token,
            "room-whip",
            "10",
        ])
        .stderr(Stdio::inherit());
    let publisher = run_to_end(publisher, "node, the WHIP publisher");
    let viewer = async {
        let (live_token, link_id) = live_on_air(&world).await;
        assert_eq!(link_id, "room-whip");
        let view =
            format!("{LINK}/viewLive/?site=newsite1&liveToken={live_token}&linkId={link_id}");
        cli(&world, "hanako", &["open", &view, "--live-for", "4000"]).await
    };
    let (published, (hanako, status)) = tokio::join!(publisher, viewer);
    let published = String::from_utf8_lossy(&published.stdout).into_owned();
    eprintln!("whip: {published}");
    let report: Value = serde_json::from_str(published.lines().last().unwrap_or_default())
        .expect("the publisher's JSON");
    assert_eq!(report["status"], 201, "{report}");
    assert_eq!(report["contentType"], "application/sdp");
    assert!(
        report["location"]
            .as_str()
            .unwrap()
            .starts_with("/whip/session/")
    );
    assert_eq!(report["deleteStatus"], 200, "{report}");
    assert_eq!(status, 0, "{hanako:#?}");
    assert_eq!(
        find(&hanako, "live.prepared").unwrap()["liver_name"],
        "星野あいり"
    );
    let media = &find(&hanako, "live.media").expect("media summary")["media"];
    eprintln!("the app received from the WHIP publisher: {media}");
    assert!(media["frames_decoded"].as_u64().unwrap() > 20, "{media}");
    assert!(
        media["audio_packets_received"].as_u64().unwrap() > 50,
        "{media}"
    );
    // The DELETE ended the live as the app's end button does: 11, 12, 13.
    assert_eq!(settled_codes_of(&world, "airi").await, vec![11, 12, 13]);
    world.server.stop().await;
}

/// A WHEP player (Chromium) watches a live that the app broadcasts, as the
/// bearer's member: the partner sees its 31, 32 and 33 like any viewer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whep_player_watches_a_live_that_the_app_broadcasts() {
    let world = world(1.0).await;
    register(&world).await;
    let token = session_token(&world, "hanako", "newsite1");
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-airi");
    let broadcaster_args = ["open", &broadcast, "--live-for", "14000"];
    let broadcaster = cli(&world, "airi", &broadcaster_args);
    let player = async {
        let (live_token, link_id) = live_on_air(&world).await;
        let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui");
        let target = format!("{live_token}/{link_id}");
        let args = [
            "browser/whip.mjs",
            "play",
            &world.server.url(),
            &token,
            &target,
            "5",
        ];
        let mut player = tokio::process::Command::new("node");
        player
            .current_dir(&ui)
            .env("NEXMILE_SERVER_CERT", &world.tls.cert)
            .args(args)
            .stderr(Stdio::inherit());
        run_to_end(player, "node, the WHEP player").await
    };
    let ((liver, liver_status), played) = tokio::join!(broadcaster, player);
    assert_eq!(liver_status, 0, "{liver:#?}");
    let played = String::from_utf8_lossy(&played.stdout).into_owned();
    eprintln!("whep: {played}");
    let report: Value =
        serde_json::from_str(played.lines().last().unwrap_or_default()).expect("the player's JSON");
    assert_eq!(report["status"], 201, "{report}");
    assert!(
        report["location"]
            .as_str()
            .unwrap()
            .starts_with("/whep/session/")
    );
    assert!(report["framesDecoded"].as_u64().unwrap() > 30, "{report}");
    assert!(report["audioPackets"].as_u64().unwrap() > 50, "{report}");
    assert_eq!(report["deleteStatus"], 200, "{report}");
    let joined = find(&liver, "live.joined").expect("the WHEP viewer was announced");
    assert_eq!(joined["user_id"], "hanako");
    let mut codes = Vec::new();
    for _ in 0..50 {
        codes = settled_codes_of(&world, "hanako").await;
        if codes.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(codes, vec![31, 32, 33]);
    world.server.stop().await;
}

/// What a WHIP client gets wrong is refused clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_refuses_a_missing_token_a_wrong_body_and_trickle() {
    let world = world(1.0).await;
    let http = world.http();
    let url = format!("{}/whip/live/room", world.server.url());
    let no_token = http
        .post(&url)
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .expect("answers");
    assert_eq!(no_token.status(), 401);
    let not_sdp = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(not_sdp.status(), 415);
    let trickle = http
        .patch(format!("{}/whip/session/x", world.server.url()))
        .header("content-type", "application/trickle-ice-sdpfrag")
        .send()
        .await
        .expect("answers");
    assert_eq!(trickle.status(), 405);
    // Ending a session needs the bearer token that made it (RFC 9725, L2):
    // without one it is 401 before anything is looked up; with one, an
    // unknown session is 404.
    let anonymous = http
        .delete(format!("{}/whip/session/unknown", world.server.url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status(), 401);
    crate::register(&world).await;
    let gone = http
        .delete(format!("{}/whip/session/unknown", world.server.url()))
        .bearer_auth(crate::session_token(&world, "hanako", "newsite1"))
        .send()
        .await
        .expect("answers");
    assert_eq!(gone.status(), 404);
    world.server.stop().await;
}
