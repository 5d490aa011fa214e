//! Two peers in one process over loopback UDP: synthetic camera and tone →
//! encode → WebRTC → reassemble → decode, read back from the pictures' stamps.

use std::time::Duration;

use nexmile_media::loopback::{Call, Relay, percentile};
use nexmile_media::quality::StatsSnapshot;
use nexmile_media::transport::{CandidateMode, Peer, PeerConfig, PeerEvent};

/// The calls run one at a time: on a 2-core machine two 720p calls at once
/// would measure the machine, not the media path.
static ONE_CALL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
use nexmile_media::quality::{CandidateType, IpFamily, QualityReport, TransportProtocol, Verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_seconds_of_720p30_arrive_in_order_with_the_tone() {
    let _turn = ONE_CALL_AT_A_TIME.lock().await;
    let mut call = Call::connect(None).await;
    println!("two peers built and connected in {:?}", call.connect_time);
    let outcome = call.run(Duration::from_secs(10), 1280, 720).await;

    println!(
        "bandwidth estimate and width sent, each second: {:?}",
        outcome.ladder
    );
    let sent = outcome.frames_sent;
    let got = &outcome.stamps;
    let in_order = got.windows(2).all(|w| w[0].0 < w[1].0);
    println!(
        "sent {sent} frames, decoded {} ({:.1} %), in order: {in_order}",
        got.len(),
        100.0 * got.len() as f64 / sent as f64
    );
    assert!(sent >= 295, "the sender kept 30 fps: {sent}");
    assert!(in_order, "pictures arrive in capture order");
    assert!(
        got.len() * 100 >= sent * 99,
        "at least 99 % of frames: {} of {sent}",
        got.len()
    );

    let latencies: Vec<Duration> = got.iter().map(|(_, latency)| *latency).collect();
    println!(
        "glass-to-glass latency: median {:?}, p95 {:?}",
        percentile(&latencies, 50),
        percentile(&latencies, 95)
    );
    assert!(
        outcome.tone_share > 0.5,
        "the 1 kHz tone arrived: share {:.2}",
        outcome.tone_share
    );

    let report: &QualityReport = outcome.reports.last().expect("a report a second");
    println!(
        "last quality report: {}",
        serde_json::to_string(report).unwrap()
    );
    assert_eq!(report.verdict, Verdict::Good);
    let route = report.route.expect("the selected pair is known");
    assert_eq!(
        (route.local, route.protocol, route.family),
        (CandidateType::Host, TransportProtocol::Udp, IpFamily::V4)
    );
    assert!(report.rtt_ms.is_some_and(|rtt| rtt < 50.0));
    assert!(report.receive_fps > 20.0, "{report:?}");
    // The pattern is mostly still (bars and one moving square), so H.264 needs
    // only ~100 kbps of the 2.5 Mbps allowed.
    assert!(report.receive_kbps > 30.0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_loss_shows_in_the_quality_report() {
    let _turn = ONE_CALL_AT_A_TIME.lock().await;
    // A relay of the test's own between the peers drops 12 % of media packets
    // both ways once the call is up.
    let relay = Relay::start(0.12).await;
    let mut call = Call::connect(Some(&relay)).await;
    let clean = call.run(Duration::from_secs(3), 640, 360).await;
    relay.start_dropping();
    let lossy = call.run(Duration::from_secs(5), 640, 360).await;

    let before = clean.reports.last().expect("reports before the loss");
    let during = lossy.reports.last().expect("reports during the loss");
    println!("before: {}", serde_json::to_string(before).unwrap());
    println!("during: {}", serde_json::to_string(during).unwrap());
    println!("relay dropped {} packets", relay.dropped());
    println!("estimate/width before: {:?}", clean.ladder);
    println!("estimate/width during: {:?}", lossy.ladder);
    assert!(relay.dropped() > 20);
    assert!(before.loss_inbound < 0.02, "{before:?}");
    assert!(
        during.loss_inbound.max(during.loss_outbound) > 0.03,
        "{during:?}"
    );
    assert!(during.verdict > Verdict::Good, "{during:?}");
    // NACK and keyframe requests keep pictures coming.
    assert!(!lossy.stamps.is_empty());
    // GCC sees the loss and lowers the estimate the encoder follows.
    let peak = lossy
        .ladder
        .iter()
        .map(|(estimate, _)| *estimate)
        .max()
        .unwrap();
    let last = lossy.ladder.last().unwrap().0;
    assert!(last * 4 < peak * 3, "estimate fell from {peak} to {last}");
}

/// Waits for the first event `wanted` picks out, for at most 5 s.
async fn wait_for<T>(peer: &mut Peer, wanted: impl Fn(PeerEvent) -> Option<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(found) = peer.next_event().await.and_then(&wanted) {
                return found;
            }
        }
    })
    .await
    .expect("the event came within 5 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_messages_cross_the_data_channel_and_media_survives_an_ice_restart() {
    let _turn = ONE_CALL_AT_A_TIME.lock().await;
    let mut call = Call::connect(None).await;
    {
        let (sender, receiver) = call.peers();
        wait_for(sender, |e| (e == PeerEvent::DataChannelOpen).then_some(())).await;
        sender
            .send_data("{\"type\":\"mute\",\"audio\":true}".as_bytes())
            .await
            .unwrap();
        let message = wait_for(receiver, |e| match e {
            PeerEvent::Data(bytes) => Some(bytes),
            _ => None,
        })
        .await;
        assert_eq!(message, br#"{"type":"mute","audio":true}"#);
        receiver.send_data(b"ack").await.unwrap();
        let reply = wait_for(sender, |e| match e {
            PeerEvent::Data(bytes) => Some(bytes),
            _ => None,
        })
        .await;
        assert_eq!(reply, b"ack");

        // A network change: fresh ICE credentials, same session.
        let offer = sender.restart_ice().await.unwrap();
        assert!(offer.contains("ice-ufrag"));
        let answer = receiver.answer(&offer).await.unwrap();
        sender.accept_answer(&answer).await.unwrap();
    }
    let after = call.run(Duration::from_secs(2), 640, 360).await;
    assert!(
        after.stamps.len() >= 50,
        "pictures keep coming after the restart: {}",
        after.stamps.len()
    );
}

async fn route_family(mode: CandidateMode) -> Option<IpFamily> {
    let config = PeerConfig {
        candidate_mode: mode,
        bind: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        ..PeerConfig::default()
    };
    let mut call = Call::connect_with(config, None).await;
    let outcome = call.run(Duration::from_secs(2), 320, 180).await;
    assert!(!outcome.stamps.is_empty());
    let (sender, _) = call.peers();
    let stats: StatsSnapshot = sender.stats().await;
    stats.route.map(|r| r.family)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn candidate_mode_keeps_media_on_the_chosen_ip_family() {
    let _turn = ONE_CALL_AT_A_TIME.lock().await;
    // §3.3.3 candidateMode 1 and 2, with both families available to bind.
    assert_eq!(
        route_family(CandidateMode::Ipv4Only).await,
        Some(IpFamily::V4)
    );
    assert_eq!(
        route_family(CandidateMode::Ipv6Only).await,
        Some(IpFamily::V6)
    );
}
