//! `cargo bench -p nexmile-server --bench live_comments`: comments per
//! second delivered to 1,000 viewers of one live.
//!
//! The server and the partner demo run in this process (testkit's world) on
//! loopback; every participant is an app's signalling WebSocket, activated at
//! `/api/activate`, then `hello` and the live's messages. The broadcaster
//! (taro) goes on air with a radio live (the demo's `radio-` linkId: sound
//! only) over a real WebRTC leg; 1,000 viewers open its viewLive link, from
//! the demo's four other members, 250 devices each (the demo has no way to
//! add members).
//!
//! Only a watching viewer may comment, so 50 of the viewers receive the sound
//! and report it (32), as the app does; they and the broadcaster are the
//! senders. They comment all at once, in rounds as often as
//! nextAvailableCommentTime (the demo's 500 ms) allows: each round is a burst
//! of 51 × 1,001 deliveries, so the rate at which it reaches every receiver
//! is the server's fan-out, not the rate limit. The other 950 viewers are
//! admitted and open no media; to keep them past the 30 s media deadline the
//! server's clock runs at 0.2× (150 s real), which stretches the comment
//! interval to 2.5 s too: rounds are that far apart.
//!
//! Most of the run is the joins: each admission sends the whole ranking (one
//! entry per viewer) to every viewer, so a thousand joins cost ~3×10⁸
//! entries; the deadline above is sized for them.
//!
//! Printed: comments, deliveries (comments × 1,001 receivers: the viewers and
//! the broadcaster), deliveries per second while a round is out, send →
//! receipt latency (median, p99), and process CPU (/proc/self/stat: server,
//! partner and the 1,001 clients share it) beside an idle spell of the live.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use nexmile_core::signal::{
    ActivateReply, ActivateRequest, ClientMessage, DeviceInfo, LiveNotice, PROTOCOL_VERSION,
    ServerMessage,
};
use nexmile_core::wire::codes::OsType;
use nexmile_media::codec::{OpusDecoder, OpusEncoder};
use nexmile_media::frame::MediaTime;
use nexmile_media::source::tone::{ToneShape, ToneSource};
use nexmile_media::transport::{MediaKind, Peer, PeerConfig, PeerEvent};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

const VIEWERS: usize = 1_000;
/// Viewers that receive the sound and comment (the broadcaster comments too).
const SENDERS: usize = 50;
/// The server's clock against real time: the joins and the rounds must fit
/// in the media deadline of the first viewer admitted (30 s / 0.2 = 150 s).
const CLOCK_RATE: f64 = 0.2;
/// nextAvailableCommentTime of the demo's replies, in server time.
const COMMENT_INTERVAL: Duration = Duration::from_millis(500);
const ROUNDS: u64 = 6;
const IDLE: Duration = Duration::from_secs(5);
const LINK_ID: &str = "radio-bench";
const BROADCASTER: (&str, &str) = ("taro", "taro-pw");
/// The demo's other members. taro charges nothing for calls, so the demo
/// makes his live free: no viewer is billed each tick.
const AUDIENCE: [(&str, &str); 4] = [
    ("hanako", "hanako-pw"),
    ("yuki", "yuki-pw"),
    ("airi", "airi-pw"),
    ("support", "support-pw"),
];

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// µs since the first call: comments carry their send time in their text.
fn clock_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 (1-based), in clock ticks of 100 Hz.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn device(n: usize) -> DeviceInfo {
    DeviceInfo {
        device_token: format!("106f7a7d-e11c-ef05-2e8c-{n:012x}").parse().unwrap(),
        app_version: "01.00.00".into(),
        os_type: OsType::Browser,
        device_name: "bench".into(),
        os_version: "bench".into(),
    }
}

/// The server as every participant reaches it: HTTPS and WSS, trusting the
/// world's test certificate authority.
#[derive(Clone)]
struct Server {
    http: reqwest::Client,
    url: String,
    wss: String,
    tls: tokio_tungstenite::Connector,
}

async fn session(server: Server, n: usize, (user, password): (&str, &str)) -> String {
    let request = ActivateRequest {
        site: "newsite1".into(),
        device: device(n),
        unique_id: None,
        user_id: Some(user.into()),
        user_pw: Some(nexmile_core::secret::Secret::new(password)),
        device_secret: None,
    };
    let reply: ActivateReply = server
        .http
        .post(format!("{}/api/activate", server.url))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match reply {
        ActivateReply::Activated { session_token, .. } => session_token,
        ActivateReply::Refused { message } => panic!("{message}"),
    }
}

async fn send(socket: &mut Socket, message: &ClientMessage) {
    let text = serde_json::to_string(message).unwrap();
    socket.send(Message::Text(text.into())).await.unwrap();
}

/// The next message worth reading; `None` once the connection is gone.
/// Viewer-count notices are skipped unparsed: while viewers join they are
/// most of the traffic, each with a ranking of every viewer.
async fn next_message(socket: &mut Socket) -> Option<ServerMessage> {
    const VIEWERS_NOTICE: &[u8] = br#""notice":{"kind":"viewers""#;
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => {
                let head = &text.as_bytes()[..text.len().min(128)];
                if !head
                    .windows(VIEWERS_NOTICE.len())
                    .any(|w| w == VIEWERS_NOTICE)
                {
                    return Some(serde_json::from_str(&text).unwrap());
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Reads until `pick` takes a message; an error or the live ending fails the bench.
async fn until<T>(socket: &mut Socket, mut pick: impl FnMut(ServerMessage) -> Option<T>) -> T {
    loop {
        match next_message(socket).await {
            None => panic!("the server closed the connection"),
            Some(ServerMessage::Error { message }) => panic!("{message}"),
            Some(ServerMessage::Live {
                notice:
                    LiveNotice::Ended {
                        reason, message, ..
                    },
                ..
            }) => panic!("the live ended: {reason:?} {message:?}"),
            Some(message) => {
                if let Some(picked) = pick(message) {
                    return picked;
                }
            }
        }
    }
}

fn on_air(message: ServerMessage) -> Option<()> {
    matches!(
        message,
        ServerMessage::Live {
            notice: LiveNotice::OnAir,
            ..
        }
    )
    .then_some(())
}

fn media_answer(message: ServerMessage) -> Option<String> {
    match message {
        ServerMessage::MediaAnswer { answer, .. } => Some(answer),
        _ => None,
    }
}

async fn connect(server: &Server, session_token: String, n: usize) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
        &server.wss,
        None,
        true,
        Some(server.tls.clone()),
    )
    .await
    .unwrap();
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        session_token,
        device: device(n),
    };
    send(&mut socket, &hello).await;
    until(&mut socket, |m| {
        matches!(m, ServerMessage::Welcome { .. }).then_some(())
    })
    .await;
    socket
}

async fn loopback_peer() -> Peer {
    Peer::new(PeerConfig {
        bind: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        ..PeerConfig::default()
    })
    .await
    .unwrap()
}

/// 1 s of a tone in Opus, 20 ms a packet.
fn sound() -> Vec<Vec<u8>> {
    let mut tone = ToneSource::new(ToneShape::Steady { hz: 440.0 }, 0.3);
    let mut opus = OpusEncoder::new(32_000).unwrap();
    (0..50)
        .map(|_| {
            let mut pcm = tone.next_frame(MediaTime(0)).samples;
            pcm.extend(tone.next_frame(MediaTime(0)).samples);
            opus.encode(&pcm).unwrap()
        })
        .collect()
}

/// The broadcaster prepares the live, sends its sound and goes on air; the
/// sound plays on in a task of its own.
async fn go_on_air(server: &Server, session_token: String) -> Socket {
    let mut socket = connect(server, session_token, 0).await;
    let prepare = ClientMessage::PrepareBroadcast {
        link_id: LINK_ID.into(),
    };
    send(&mut socket, &prepare).await;
    let live_token = until(&mut socket, |m| match m {
        ServerMessage::Live {
            notice: LiveNotice::Prepared(details),
            ..
        } => Some(details.live_token),
        _ => None,
    })
    .await;
    let mut peer = loopback_peer().await;
    let offer = peer.create_offer().await.unwrap();
    let media = ClientMessage::BroadcastMedia {
        live_token: live_token.clone(),
        offer,
    };
    send(&mut socket, &media).await;
    let answer = until(&mut socket, media_answer).await;
    peer.accept_answer(&answer).await.unwrap();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for packet in sound().iter().cycle() {
            tick.tick().await;
            let _ = peer.send_audio(packet, Duration::from_millis(20)).await;
        }
    });
    send(&mut socket, &ClientMessage::StartBroadcast { live_token }).await;
    until(&mut socket, on_air).await;
    socket
}

/// Drains a viewer's media; `heard` fires once a packet of sound decoded.
async fn listen(mut peer: Peer, heard: oneshot::Sender<()>) {
    let mut decoder = OpusDecoder::new().unwrap();
    let mut heard = Some(heard);
    while let Some(event) = peer.next_event().await {
        if let PeerEvent::Rtp {
            kind: MediaKind::Audio,
            packet,
            ..
        } = event
            && heard.is_some()
            && decoder.decode(&packet.payload, 960).is_ok()
            && let Some(heard) = heard.take()
        {
            let _ = heard.send(());
        }
    }
}

struct Live {
    server: Server,
    token: String,
    link_id: String,
}

/// A viewer is admitted (31 accepted); a sender also receives the sound,
/// says so, and is watching (32 accepted) on return.
async fn join(live: &Live, session_token: String, n: usize, sender: bool) -> Socket {
    let mut socket = connect(&live.server, session_token, n).await;
    let view = ClientMessage::ViewLive {
        live_token: live.token.clone(),
        link_id: live.link_id.clone(),
    };
    send(&mut socket, &view).await;
    until(&mut socket, |m| match m {
        ServerMessage::Live {
            notice: LiveNotice::Prepared(_),
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    if !sender {
        return socket;
    }
    let mut peer = loopback_peer().await;
    let offer = peer.create_offer().await.unwrap();
    let receive = ClientMessage::ReceiveLive {
        live_token: live.token.clone(),
        offer,
    };
    send(&mut socket, &receive).await;
    let answer = until(&mut socket, media_answer).await;
    peer.accept_answer(&answer).await.unwrap();
    let (heard, first_sound) = oneshot::channel();
    tokio::spawn(listen(peer, heard));
    first_sound.await.unwrap();
    let received = ClientMessage::LiveMediaReceived {
        live_token: live.token.clone(),
    };
    send(&mut socket, &received).await;
    until(&mut socket, on_air).await;
    socket
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cue {
    Wait,
    Round(u64),
    Done,
}

#[derive(Default)]
struct Tally {
    joined: AtomicUsize,
    delivered: AtomicU64,
    last_receipt_us: AtomicU64,
}

/// One participant: receives every comment and notes its latency; a sender
/// comments once per round. Returns the latencies when done.
async fn attend(
    mut socket: Socket,
    me: usize,
    live_token: String,
    sender: bool,
    mut cue: watch::Receiver<Cue>,
    tally: Arc<Tally>,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    loop {
        tokio::select! {
            message = next_message(&mut socket) => match message {
                Some(ServerMessage::Live { notice: LiveNotice::Comment { text, .. }, .. }) => {
                    let now = clock_us();
                    let sent: u64 = text.rsplit(' ').next().unwrap().parse().unwrap();
                    latencies.push(Duration::from_micros(now.saturating_sub(sent)));
                    tally.delivered.fetch_add(1, Ordering::Relaxed);
                    tally.last_receipt_us.fetch_max(now, Ordering::Relaxed);
                }
                Some(ServerMessage::Live { notice: LiveNotice::Refused { message }, .. }) => {
                    panic!("participant {me}: {message}")
                }
                Some(ServerMessage::Live { notice: LiveNotice::Ended { reason, .. }, .. }) => {
                    panic!("participant {me}: the live ended for it: {reason:?}")
                }
                Some(_) => {}
                None => panic!("participant {me}: the server closed the connection"),
            },
            Ok(()) = cue.changed() => {
                let now = *cue.borrow_and_update();
                match now {
                    Cue::Round(round) if sender => {
                        let text = format!("{me} {round} {}", clock_us());
                        let comment = ClientMessage::LiveComment { live_token: live_token.clone(), text };
                        send(&mut socket, &comment).await;
                    }
                    Cue::Done => return latencies,
                    Cue::Round(_) | Cue::Wait => {}
                }
            }
        }
    }
}

async fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let since = Instant::now();
    while !done() {
        assert!(since.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn bench() {
    let world = nexmile_testkit::world(CLOCK_RATE).await;
    let (wss, tls) = world.websocket();
    let server = Server {
        http: world.http(),
        url: world.server.url(),
        wss,
        tls,
    };
    let began = Instant::now();
    let sessions: Vec<String> = stream::iter(0..=VIEWERS)
        .map(|n| {
            let user = match n {
                0 => BROADCASTER,
                _ => AUDIENCE[n % AUDIENCE.len()],
            };
            session(server.clone(), n, user)
        })
        .buffered(16)
        .collect()
        .await;
    let activated = began.elapsed();
    let mut sessions = sessions.into_iter();
    let broadcaster = go_on_air(&server, sessions.next().unwrap()).await;
    // The liveToken as the partner lists the live for its viewLive links.
    let (token, link_id, _) = world.demo.lives_on_air().await.into_iter().next().unwrap();
    let live = Arc::new(Live {
        server,
        token,
        link_id,
    });
    let tally = Arc::new(Tally::default());
    let (cue_tx, cue) = watch::channel(Cue::Wait);
    let mut tasks = vec![tokio::spawn(attend(
        broadcaster,
        0,
        live.token.clone(),
        true,
        cue.clone(),
        Arc::clone(&tally),
    ))];
    // Eight joins at a time: a thousand at once outrun the demo's one SQLite
    // connection (its replies to 31 time out).
    let joining = Arc::new(Semaphore::new(8));
    let mut join_all = |from: usize, to: usize, sessions: &mut dyn Iterator<Item = String>| {
        for n in from..=to {
            let (live, cue, tally) = (Arc::clone(&live), cue.clone(), Arc::clone(&tally));
            let (joining, session) = (Arc::clone(&joining), sessions.next().unwrap());
            let sender = n <= SENDERS;
            tasks.push(tokio::spawn(async move {
                let permit = joining.acquire().await.unwrap();
                let socket = join(&live, session, n, sender).await;
                drop(permit);
                tally.joined.fetch_add(1, Ordering::Relaxed);
                attend(socket, n, live.token.clone(), sender, cue, tally).await
            }));
        }
    };
    let began = Instant::now();
    join_all(1, SENDERS, &mut sessions);
    wait_for("senders watching", Duration::from_secs(30), || {
        tally.joined.load(Ordering::Relaxed) == SENDERS
    })
    .await;
    let senders_watching = began.elapsed();
    join_all(SENDERS + 1, VIEWERS, &mut sessions);
    wait_for("viewers admitted", Duration::from_secs(150), || {
        tally.joined.load(Ordering::Relaxed) == VIEWERS
    })
    .await;
    let admitted = began.elapsed();

    let before = cpu_time();
    tokio::time::sleep(IDLE).await;
    let idle_share = (cpu_time() - before).as_secs_f64() / IDLE.as_secs_f64();

    let receivers = VIEWERS as u64 + 1;
    let per_round = SENDERS as u64 + 1;
    let interval = COMMENT_INTERVAL.div_f64(CLOCK_RATE);
    let (before, began) = (cpu_time(), Instant::now());
    let mut busy = Duration::ZERO;
    for round in 0..ROUNDS {
        if round > 0 {
            // The server counts the interval from each comment's arrival:
            // the last round has fully arrived by now.
            tokio::time::sleep(interval).await;
        }
        let first_sent = clock_us();
        cue_tx.send(Cue::Round(round)).unwrap();
        let expected = (round + 1) * per_round * receivers;
        wait_for("a round delivered", Duration::from_secs(30), || {
            tally.delivered.load(Ordering::Relaxed) == expected
        })
        .await;
        busy += Duration::from_micros(tally.last_receipt_us.load(Ordering::Relaxed) - first_sent);
    }
    let (cpu, span) = (cpu_time() - before, began.elapsed());
    cue_tx.send(Cue::Done).unwrap();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let comments = ROUNDS * per_round;
    let deliveries = latencies.len() as u64;
    let comment_cpu = cpu.as_secs_f64() - idle_share * span.as_secs_f64();
    println!(
        "one radio live through the server and the partner demo on loopback, {VIEWERS} viewers + the broadcaster \
         on WebSocket; {cores} cores, tokio on 2 workers; server clock at {CLOCK_RATE}× real time"
    );
    println!(
        "setup: {} devices activated in {:.1} s; {SENDERS} viewers receiving the sound and watching in {:.1} s; \
         all {VIEWERS} admitted in {:.1} s",
        VIEWERS + 1,
        activated.as_secs_f64(),
        senders_watching.as_secs_f64(),
        admitted.as_secs_f64()
    );
    println!(
        "{ROUNDS} rounds of {per_round} comments at once, {:.1} s apart (nextAvailableCommentTime): \
         {comments} comments, {deliveries} deliveries ({receivers} receivers each)",
        interval.as_secs_f64()
    );
    println!(
        "fan-out: {:.0} deliveries/s while a round is out ({:.1} comments/s to {receivers} receivers); \
         {:.0}/s over the {:.1} s with the rate limit's pauses",
        deliveries as f64 / busy.as_secs_f64(),
        comments as f64 / busy.as_secs_f64(),
        deliveries as f64 / span.as_secs_f64(),
        span.as_secs_f64()
    );
    println!(
        "latency send → receipt: median {:.1} ms, p99 {:.1} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
    println!(
        "process CPU (server, partner demo and all clients): {cpu:?} over {:.1} s = {:.1}% of one core; \
         the idle live (its sound to {SENDERS} viewers and the recording, ticks): {:.1}%; {:.1} µs of CPU per delivery beyond it",
        span.as_secs_f64(),
        cpu.as_secs_f64() / span.as_secs_f64() * 100.0,
        idle_share * 100.0,
        comment_cpu / deliveries as f64 * 1e6
    );
    let _ = std::fs::remove_dir_all(&world.root);
}

fn main() {
    // A participant's failure (a refused comment, a viewer dropped) ends the bench.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::exit(1);
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
    // The peers' tasks and the server end with the process; nothing more to measure.
    std::process::exit(0);
}
