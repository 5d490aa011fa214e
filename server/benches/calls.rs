//! `cargo bench -p nexmile-server`: the call service's two figures.
//!
//! 1. Call attempts per second through the partner flow: an app prepares a
//!    call over `/ws` (架電準備 to the partner demo over HTTP), the server
//!    answers, the app cancels, and 通話終了 goes out through the outbox.
//!    Sequential and 16 at once.
//! 2. CPU for 1,000 concurrently billed calls: 1,000 call tasks like the
//!    server's, each ticking core's call machine once a second, for 5 s,
//!    measured as process CPU time (/proc/self/stat) beside the same tasks
//!    ticking an empty body (the reference: what the tokio timers alone cost),
//!    and the billing tick of 1,000 calls timed on its own (median of 300).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nexmile_core::call::{Call, CallEvent, CallRequest, PreparedCall};
use nexmile_core::clock::UnixMillis;
use nexmile_core::signal::{
    ActivateReply, ActivateRequest, ClientMessage, DeviceInfo, PROTOCOL_VERSION, ServerMessage,
};
use nexmile_core::wire::call::CallParty;
use nexmile_core::wire::codes::{CallOption, OsType, ServiceChargeType, UaType};
use nexmile_core::wire::site_service::{CallService, ServiceCharge, User};
use nexmile_partner_demo::{DemoConfig, PartnerDemo};
use nexmile_server::config::Config;
use tokio_tungstenite::tungstenite::Message;

fn device(n: u8) -> DeviceInfo {
    DeviceInfo {
        device_token: format!("106f7a7d-e11c-ef05-2e8c-54b459aa20{n:02x}")
            .parse()
            .unwrap(),
        app_version: "01.00.00".into(),
        os_type: OsType::Browser,
        device_name: "bench".into(),
        os_version: "bench".into(),
    }
}

async fn session(server: &str, n: u8) -> String {
    let request = ActivateRequest {
        site: "newsite1".into(),
        device: device(n),
        unique_id: None,
        user_id: Some("hanako".into()),
        user_pw: Some(nexmile_core::secret::Secret::new("hanako-pw")),
        device_secret: None,
    };
    let reply: ActivateReply = reqwest::Client::new()
        .post(format!("{server}/api/activate"))
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_message(socket: &mut Socket) -> ServerMessage {
    loop {
        if let Some(Ok(Message::Text(t))) = socket.next().await {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// One app connection that prepares and cancels calls, `count` times.
async fn attempts(server: String, token: String, n: u8, count: u32) {
    let url = server.replace("http://", "ws://") + "/ws";
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let text = |m: &ClientMessage| Message::Text(serde_json::to_string(m).unwrap().into());
    socket
        .send(text(&ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            session_token: token,
            device: device(n),
        }))
        .await
        .unwrap();
    assert!(matches!(
        next_message(&mut socket).await,
        ServerMessage::Welcome { .. }
    ));
    for _ in 0..count {
        let call = ClientMessage::MakeCall {
            callee_id: "airi".into(),
            video: false,
            caller_sub_id: None,
            callee_sub_id: None,
        };
        socket.send(text(&call)).await.unwrap();
        let call_token = loop {
            match next_message(&mut socket).await {
                ServerMessage::CallPrepared(details) => break details.call_token,
                ServerMessage::CallEnded { message, .. } => panic!("{message:?}"),
                _ => {}
            }
        };
        socket
            .send(text(&ClientMessage::Hangup { call_token }))
            .await
            .unwrap();
        while !matches!(
            next_message(&mut socket).await,
            ServerMessage::CallEnded { .. }
        ) {}
    }
}

async fn call_attempts_per_second() {
    let demo = PartnerDemo::start(DemoConfig::in_memory()).await.unwrap();
    let partner = demo.url();
    let dir = std::env::temp_dir().join(format!("nexmile-bench-{}", std::process::id()));
    let config = Config::parse(&format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1"
database = "sqlite://{}"
[[site]]
code = "newsite1"
api_key = "test.key"
token = "site-token-1"
auth_url = "{partner}/auth"
call_service_url = "{partner}/CallService"
"#,
        dir.join("bench.db").display()
    ))
    .unwrap();
    let server = nexmile_server::start(config).await.unwrap();
    let url = server.url();
    for (label, clients, per_client) in [("one at a time", 1u8, 200u32), ("16 at once", 16, 25)] {
        let mut tokens = Vec::new();
        for n in 0..clients {
            tokens.push(session(&url, n).await);
        }
        let started = Instant::now();
        let tasks: Vec<_> = tokens
            .into_iter()
            .enumerate()
            .map(|(n, token)| tokio::spawn(attempts(url.clone(), token, n as u8, per_client)))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let total = u32::from(clients) * per_client;
        let rate = f64::from(total) / started.elapsed().as_secs_f64();
        println!(
            "prepare → cancel → 通話終了 through the partner demo, {label}: {total} calls, {rate:.0} calls/s"
        );
    }
    server.stop().await;
    demo.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
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

fn connected_call(n: u32, now: UnixMillis) -> Call {
    let party = |id: String| CallParty {
        user_id: id,
        user_sub_id: None,
        ua_type: Some(UaType::App),
        app_ver: None,
        device_name: None,
        os_ver: None,
    };
    let (mut call, _) = Call::new(
        CallRequest {
            site_token: "site-token-1".into(),
            call_token: format!("call-{n}"),
            caller: party(format!("caller-{n}")),
            callee: party(format!("callee-{n}")),
            video: true,
        },
        now,
    );
    let prepared = PreparedCall {
        user: User::default(),
        charge: ServiceCharge {
            service_charge_type: ServiceChargeType::Call,
            unit_sec: 60,
            unit_price: 100,
            point_price: 1,
            current_point: 1_000_000,
            free_trial_sec: 0,
            auto_charge_trigger_point: 100,
            auto_charge_trigger_url: Some("http://partner/autocharge".into()),
        },
        service: CallService {
            call_token: format!("call-{n}"),
            caller_option: CallOption::empty(),
            callee_user_id: format!("callee-{n}"),
            callee_user_nm: "callee".into(),
            callee_profile_image_url: None,
            callee_option: CallOption::empty(),
            callee_return_url: None,
            call_user_sub_id: None,
            callee_candidate_mode: None,
            caller_id_prefix: None,
            video_call: true,
            calling_timeout: 30,
            paid_callee: false,
        },
    };
    for event in [
        CallEvent::PrepareReplied(Ok(Box::new(prepared))),
        CallEvent::StartRequested,
        CallEvent::StartReplied(Ok(())),
        CallEvent::Answered {
            callee: party(format!("callee-{n}")),
        },
        CallEvent::MediaFlowing,
    ] {
        call.handle(event, now);
    }
    call
}

async fn cpu_for(sessions: u32, bill: bool, span: Duration) -> Duration {
    let start = UnixMillis(1_732_320_000_000);
    let before = cpu_time();
    let tasks: Vec<_> = (0..sessions)
        .map(|n| {
            tokio::spawn(async move {
                let mut call = connected_call(n, start);
                let began = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                while began.elapsed() < span {
                    tick.tick().await;
                    if bill {
                        let now = start + began.elapsed();
                        std::hint::black_box(call.handle(CallEvent::Tick, now));
                        std::hint::black_box(call.time_left(now));
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    cpu_time() - before
}

/// The billing work alone: one tick of 1,000 connected calls, repeated.
fn tick_of_a_thousand() -> Duration {
    let start = UnixMillis(1_732_320_000_000);
    let mut calls: Vec<Call> = (0..1_000).map(|n| connected_call(n, start)).collect();
    let mut rounds = Vec::new();
    for second in 1..=300 {
        let now = start + Duration::from_secs(second);
        let began = Instant::now();
        for call in &mut calls {
            std::hint::black_box(call.handle(CallEvent::Tick, now));
            std::hint::black_box(call.time_left(now));
        }
        rounds.push(began.elapsed());
    }
    rounds.sort();
    rounds[rounds.len() / 2]
}

async fn billed_sessions_cpu() {
    let tick = tick_of_a_thousand();
    println!(
        "one billing tick of 1,000 connected calls (core's machine + time left): median {tick:?}, \
         i.e. {:.3}% of one core at one tick a second",
        tick.as_secs_f64() * 100.0
    );
    let span = Duration::from_secs(5);
    let reference = cpu_for(1_000, false, span).await;
    let billed = cpu_for(1_000, true, span).await;
    let share = |cpu: Duration| cpu.as_secs_f64() / span.as_secs_f64() * 100.0;
    println!(
        "1,000 billed calls for {span:?}: {:.2}% of one core ({billed:?} CPU); \
         the same tasks ticking an empty body (reference): {:.2}% ({reference:?}); billing adds {:.2} percentage points",
        share(billed),
        share(reference),
        share(billed) - share(reference)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        call_attempts_per_second().await;
        billed_sessions_cpu().await;
    });
}
