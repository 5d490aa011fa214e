//! Calls through the networks people are on (issue 24 §5): apps behind home
//! routers' NAT, behind a firewall that drops UDP, and a server behind a
//! cloud's 1:1 NAT. Each "machine" is a network namespace of
//! tests/netns.sh; the kernel does the address translation and the
//! filtering. The routes are the apps' own reports of the candidate pair
//! their media took.

use nexmile_testkit::netns::{Namespace, PublicAddress};
use nexmile_testkit::{World, free_port, world_edited};
use serde_json::Value;

use crate::{LINK, Server, cli_in, find, register_at};

/// A server whose HTTPS and media bind `public.private` while clients are
/// told `public.public`, with `media` added to its `[media]` section.
async fn server_behind_nat(public: &PublicAddress, media: &str) -> (World, Server) {
    let (private, shown) = (public.private, public.public);
    let world = world_edited(shown, 1.0, |config| {
        config
            .replacen(
                &format!("listen = \"{shown}:"),
                &format!("listen = \"{private}:"),
                1,
            )
            .replacen(
                &format!("[media]\nips = [\"{shown}\"]\n"),
                &format!("[media]\nips = [\"{private}\"]\npublic_ips = [\"{shown}\"]\n{media}\n"),
                1,
            )
    })
    .await;
    let server = Server {
        url: format!("https://{shown}:{}", world.server.addr.port()),
        root: world.root.clone(),
        ca: world.tls.ca.clone(),
    };
    register_at(&world, &server).await;
    (world, server)
}

/// The world's server at the address it binds, hanako and airi
/// registered there.
async fn registered(world: &World) -> Server {
    let server = Server {
        url: world.server.url(),
        root: world.root.clone(),
        ca: world.tls.ca.clone(),
    };
    register_at(world, &server).await;
    server
}

/// A 6 s video call from hanako (in `caller`) to airi (in `callee`); both
/// apps' events, after checking both ended well.
async fn call_between(
    server: &Server,
    caller: &Namespace,
    callee: &Namespace,
) -> (Vec<Value>, Vec<Value>) {
    let link = format!("{LINK}/makecall/?site=newsite1&calleeId=airi&video=1");
    let listen = ["listen", "--site", "newsite1", "--calls", "1"];
    let answering = [&listen[..], &["--answer-after", "200"]].concat();
    let ((airi, airi_status), (hanako, hanako_status)) =
        tokio::join!(cli_in(callee, server, "airi", &answering), async {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            cli_in(
                caller,
                server,
                "hanako",
                &["open", &link, "--hangup-after", "6000"],
            )
            .await
        });
    assert_eq!(airi_status, 0, "{airi:#?}");
    assert_eq!(hanako_status, 0, "{hanako:#?}");
    (hanako, airi)
}

/// The pictures an app decoded in its call.
fn pictures_decoded(events: &[Value]) -> u64 {
    find(events, "call.ended").expect("the call ended")["media"]["frames_decoded"]
        .as_u64()
        .expect("a count of pictures")
}

/// The candidate pair an app's media took, from its last quality report.
fn route(events: &[Value]) -> Value {
    events
        .iter()
        .rev()
        .filter(|e| e["event"] == "quality")
        .find_map(|e| e.get("route").filter(|r| !r.is_null()).cloned())
        .expect("a quality report naming the route")
}

/// Two apps, each behind a home router's NAT (private addresses, their
/// packets masqueraded), call each other through a server behind a 1:1
/// NAT: it binds a private address nobody outside reaches and tells
/// clients its public one, with every call on one UDP port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_behind_two_nats_call_through_the_servers_public_address() {
    let public = PublicAddress::up();
    let (hanako_home, airi_home) = (Namespace::behind_nat(), Namespace::behind_nat());
    let udp_port = free_port();
    let (world, server) = server_behind_nat(&public, &format!("udp_port = {udp_port}")).await;

    let (hanako, airi) = call_between(&server, &hanako_home, &airi_home).await;
    let (sent, received) = (pictures_decoded(&airi), pictures_decoded(&hanako));
    println!("through two NATs: airi decoded {sent} pictures, hanako {received}");
    // 6 s of pictures each way, from the first keyframe.
    assert!(sent > 60 && received > 60, "{sent} {received}");
    for events in [&hanako, &airi] {
        let route = route(events);
        assert_eq!(route["protocol"], "udp", "{route}");
        // The app's own address is private; the server saw its router's.
        assert_eq!(route["local"], "host", "{route}");
    }
    world.server.stop().await;
}

/// An app behind a firewall that drops every UDP packet (a corporate
/// network) reaches the server over ICE-TCP, its passive candidate on one
/// TCP port, and talks with an app on an open network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_whose_network_drops_udp_calls_over_ice_tcp() {
    let public = PublicAddress::up();
    let (office, home) = (Namespace::up(), Namespace::behind_nat());
    office.drop_udp();
    let tcp_port = free_port();
    let (world, server) = server_behind_nat(&public, &format!("tcp_port = {tcp_port}")).await;

    let (hanako, airi) = call_between(&server, &office, &home).await;
    let (sent, received) = (pictures_decoded(&airi), pictures_decoded(&hanako));
    println!(
        "from behind a UDP-dropping firewall: airi decoded {sent} pictures, hanako {received}"
    );
    assert!(sent > 60 && received > 60, "{sent} {received}");
    assert_eq!(route(&hanako)["protocol"], "tcp", "{}", route(&hanako));
    assert_eq!(route(&airi)["protocol"], "udp", "{}", route(&airi));
    world.server.stop().await;
}

/// A coturn of the Debian package, as README's "TURN with coturn" runs it
/// beside the server: shared-secret credentials, relaying from `ip`.
struct Coturn {
    process: std::process::Child,
    address: std::net::SocketAddr,
}

impl Coturn {
    const SECRET: &str = "the-turn-secret-of-this-test";

    /// Started on `ip` and answering STUN.
    async fn start(ip: std::net::IpAddr) -> Self {
        let port = free_port();
        let relays = free_port();
        let log = std::env::temp_dir().join(format!("nexmile-coturn-{port}.log"));
        let process = std::process::Command::new("turnserver")
            .args([
                "--listening-ip",
                &ip.to_string(),
                "--relay-ip",
                &ip.to_string(),
            ])
            .args(["--listening-port", &port.to_string()])
            .args(["--min-port", &relays.to_string()])
            .args(["--max-port", &(relays + 50).to_string()])
            .args(["--use-auth-secret", "--static-auth-secret", Self::SECRET])
            .args(["--realm", "nexmile.test", "--fingerprint", "--no-cli"])
            .args(["--no-tls", "--no-dtls", "--no-tcp-relay", "--simple-log"])
            .arg("--log-file")
            .arg(&log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("turnserver (Debian's coturn, installed by scripts/setup.sh)");
        let turn = Self {
            process,
            address: std::net::SocketAddr::new(ip, port),
        };
        turn.wait_for_stun().await;
        turn
    }

    /// Until a STUN binding request is answered.
    async fn wait_for_stun(&self) {
        let socket = tokio::net::UdpSocket::bind((self.address.ip(), 0))
            .await
            .unwrap();
        // A binding request: type 1, no attributes, the magic cookie, an ID.
        let mut request = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        request.extend_from_slice(b"nexmile-turn");
        let mut reply = [0; 512];
        for _ in 0..100 {
            socket.send_to(&request, self.address).await.unwrap();
            let answered = tokio::time::timeout(
                std::time::Duration::from_millis(100),
                socket.recv(&mut reply),
            )
            .await;
            if let Ok(Ok(length)) = answered
                && length >= 20
                && reply[..2] == [1, 1]
            {
                return;
            }
        }
        panic!("coturn did not answer STUN on {}", self.address);
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// An app whose firewall lets UDP out only to the company's TURN server
/// calls through it: the server's welcome gave it coturn's address and a
/// short-lived credential, coturn checked that credential against the
/// secret it shares with the server, and the app's media is relayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_allowed_only_its_turn_server_calls_through_the_relay() {
    let office = Namespace::up();
    let turn = Coturn::start(office.host).await;
    office.allow_udp_only_to(turn.address);
    let world = world_edited(office.host, 1.0, |config| {
        format!(
            "{config}\n[ice]\nturn = [\"turn:{}?transport=udp\"]\nturn_secret = \"{}\"\nturn_ttl_sec = 600\n",
            turn.address,
            Coturn::SECRET
        )
    })
    .await;
    let server = registered(&world).await;

    let host = office.host.to_string();
    let link = format!("{LINK}/makecall/?site=newsite1&calleeId=airi&video=1");
    let listen = [
        "--bind", &host, "listen", "--site", "newsite1", "--calls", "1",
    ];
    let answering = [&listen[..], &["--answer-after", "200"]].concat();
    let ((airi, airi_status), (hanako, hanako_status)) =
        tokio::join!(crate::cli_at(&server, "airi", &answering), async {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            cli_in(
                &office,
                &server,
                "hanako",
                &["open", &link, "--hangup-after", "6000"],
            )
            .await
        });
    assert_eq!(airi_status, 0, "{airi:#?}");
    assert_eq!(hanako_status, 0, "{hanako:#?}");
    let (sent, received) = (pictures_decoded(&airi), pictures_decoded(&hanako));
    println!("relayed by coturn: airi decoded {sent} pictures, hanako {received}");
    assert!(sent > 60 && received > 60, "{sent} {received}");
    let route = route(&hanako);
    assert_eq!(route["local"], "relay", "{route}");
    assert_eq!(route["protocol"], "udp", "{route}");
    world.server.stop().await;
}

/// The link of a caller's machine goes dead for 3 s in the middle of a
/// call (everything dropped, signalling included) and comes back: the
/// call goes on, its pictures come back, and the seconds billed are the
/// seconds talked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_goes_on_after_a_three_second_cut() {
    let home = Namespace::up();
    let world = nexmile_testkit::world_at(home.host, 1.0).await;
    let server = registered(&world).await;

    let host = home.host.to_string();
    let link = format!("{LINK}/makecall/?site=newsite1&calleeId=airi&video=1");
    let listen = [
        "--bind", &host, "listen", "--site", "newsite1", "--calls", "1",
    ];
    let answering = [&listen[..], &["--answer-after", "200"]].concat();
    let cut = async {
        // About 4 s into the call (it connects about 2 s after the start).
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        home.cut();
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        home.mend();
    };
    let ((airi, airi_status), (hanako, hanako_status), ()) = tokio::join!(
        crate::cli_at(&server, "airi", &answering),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            cli_in(
                &home,
                &server,
                "hanako",
                &["open", &link, "--hangup-after", "12000"],
            )
            .await
        },
        cut
    );
    assert_eq!(hanako_status, 0, "{hanako:#?}");
    assert_eq!(airi_status, 0, "{airi:#?}");
    let ended = find(&hanako, "call.ended").expect("the call ended");
    println!(
        "after a 3 s cut: reason {}, {} s talked, hanako decoded {} pictures ({} freezes, {:.0} ms frozen), airi {}",
        ended["reason"],
        ended["overview"]["talkingSec"],
        ended["media"]["frames_decoded"],
        ended["media"]["freezes"],
        ended["media"]["frozen_ms"].as_f64().unwrap_or(0.0),
        pictures_decoded(&airi)
    );
    // Hung up by the caller (1) 12 s after it connected, not cut off; the
    // seconds billed are the seconds between connection and hang-up.
    assert_eq!(ended["reason"], 1, "{ended:#}");
    let overview = &ended["overview"];
    let talked = overview["talkingSec"].as_u64().unwrap();
    let clock = |field: &str| -> u64 {
        let time = overview[field]
            .as_str()
            .expect("a time")
            .rsplit(' ')
            .next()
            .unwrap();
        time.split(':')
            .map(|part| part.parse::<u64>().unwrap())
            .fold(0, |seconds, part| seconds * 60 + part)
    };
    let between = clock("terminateTime") - clock("connectTime");
    assert!((11..=13).contains(&talked), "{ended:#}");
    assert!(talked.abs_diff(between) <= 1, "{ended:#}");
    // If the app noticed the silence (its screen said 再接続中…), it also
    // noticed the path come back.
    let path_events: Vec<&Value> = hanako
        .iter()
        .filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("media.")))
        .collect();
    if let Some(last) = path_events.last() {
        assert_eq!(last["event"], "media.restored", "{path_events:?}");
    }
    // Pictures came back after the cut: 9 of the 12 s at 30 a second,
    // less what a keyframe after the loss takes.
    assert!(pictures_decoded(&hanako) > 200, "{ended:#}");
    assert!(pictures_decoded(&airi) > 200, "{airi:#?}");
    world.server.stop().await;
}

/// A world whose server carries media on 127.0.0.1 and ::1.
async fn dual_stack_world() -> World {
    world_edited(std::net::IpAddr::from([127, 0, 0, 1]), 1.0, |config| {
        config.replacen(
            "[media]\nips = [\"127.0.0.1\"]",
            "[media]\nips = [\"127.0.0.1\", \"::1\"]",
            1,
        )
    })
    .await
}

/// The address family a candidateMode names.
fn family(mode: nexmile_core::wire::codes::CandidateMode) -> &'static str {
    match mode {
        nexmile_core::wire::codes::CandidateMode::Ipv4Only => "IPv4",
        _ => "IPv6",
    }
}

/// §3.3.3 candidateMode end to end: the site says which IP family each
/// member's media keeps to (the caller's in its user details, the callee's
/// as calleeCandidateMode), the server passes it on with the call, and each
/// app offers only that family, on a machine and a server that have both.
/// Two calls with the modes swapped, so neither app's own preference can
/// pass for the mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_side_of_a_call_keeps_to_the_ip_family_its_site_names() {
    use nexmile_core::wire::codes::CandidateMode;

    let world = dual_stack_world().await;
    let server = registered(&world).await;
    let both = ["--bind", "127.0.0.1", "--bind", "::1"];
    let link = format!("{LINK}/makecall/?site=newsite1&calleeId=airi&video=1");
    for (hanako_mode, airi_mode) in [
        (CandidateMode::Ipv4Only, CandidateMode::Ipv6Only),
        (CandidateMode::Ipv6Only, CandidateMode::Ipv4Only),
    ] {
        world.demo.set_candidate_mode("hanako", hanako_mode).await;
        world.demo.set_candidate_mode("airi", airi_mode).await;
        let listen = [
            "listen",
            "--site",
            "newsite1",
            "--calls",
            "1",
            "--answer-after",
            "200",
        ];
        let answering = [&both[..], &listen[..]].concat();
        let calling = [&both[..], &["open", &link, "--hangup-after", "3000"]].concat();
        let ((airi, airi_status), (hanako, hanako_status)) =
            tokio::join!(crate::cli_at(&server, "airi", &answering), async {
                tokio::time::sleep(std::time::Duration::from_millis(800)).await;
                crate::cli_at(&server, "hanako", &calling).await
            });
        assert_eq!(airi_status, 0, "{airi:#?}");
        assert_eq!(hanako_status, 0, "{hanako:#?}");
        println!(
            "candidateMode {} and {}: hanako's route {}, airi's {}",
            hanako_mode as u8,
            airi_mode as u8,
            route(&hanako),
            route(&airi)
        );
        assert_eq!(route(&hanako)["family"], family(hanako_mode));
        assert_eq!(route(&airi)["family"], family(airi_mode));
        assert!(pictures_decoded(&hanako) > 30 && pictures_decoded(&airi) > 30);
    }
    world.server.stop().await;
}

/// candidateMode in a live: the broadcaster's and the viewer's media each
/// keep to the family their site names (the user of the 11 / 31 reply).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lives_broadcaster_and_viewer_keep_to_their_ip_families() {
    use nexmile_core::wire::codes::CandidateMode;

    let world = dual_stack_world().await;
    let server = registered(&world).await;
    world
        .demo
        .set_candidate_mode("airi", CandidateMode::Ipv6Only)
        .await;
    world
        .demo
        .set_candidate_mode("hanako", CandidateMode::Ipv4Only)
        .await;
    let both = ["--bind", "127.0.0.1", "--bind", "::1"];
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-airi");
    let broadcasting = [&both[..], &["open", &broadcast, "--live-for", "9000"]].concat();
    let viewer = async {
        let (token, link_id) = crate::lives::live_on_air(&world).await;
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        let viewing = [&both[..], &["open", &view, "--live-for", "5000"]].concat();
        crate::cli_at(&server, "hanako", &viewing).await
    };
    let ((airi, airi_status), (hanako, hanako_status)) =
        tokio::join!(crate::cli_at(&server, "airi", &broadcasting), viewer);
    assert_eq!(airi_status, 0, "{airi:#?}");
    assert_eq!(hanako_status, 0, "{hanako:#?}");
    println!(
        "a live: the broadcaster's route {}, the viewer's {}",
        route(&airi),
        route(&hanako)
    );
    assert_eq!(route(&airi)["family"], family(CandidateMode::Ipv6Only));
    assert_eq!(route(&hanako)["family"], family(CandidateMode::Ipv4Only));
    let decoded = find(&hanako, "live.media").expect("a summary")["media"]["frames_decoded"]
        .as_u64()
        .unwrap();
    assert!(decoded > 30, "{decoded}");
    world.server.stop().await;
}
