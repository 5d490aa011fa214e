//! What the engine's benches share: str0m clients in RTP mode, a clock,
//! per-thread CPU from /proc, and runtimes of one named worker thread.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nexmile_sfu::{LegEvent, LegId, LegSpec, Room};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::{Candidate, Rtc};
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// The engine's H.264 payload type (and 103 its RTX), which these
/// clients offer as apps do.
pub const H264_PT: u8 = 102;
pub const H264_RTX_PT: u8 = 103;

/// A client of a room: str0m in RTP mode on a loopback socket of its own.
pub struct Client {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub local: SocketAddr,
}

impl Client {
    /// Offers sound and pictures in `direction`, answered for `spec`; with
    /// the m-lines of the sound and the pictures.
    pub async fn join(room: &Room, spec: LegSpec, direction: Direction) -> (Self, Mid, Mid) {
        let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .await
            .unwrap();
        let local = socket.local_addr().unwrap();
        let mut config = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .set_stats_interval(None);
        config.codec_config().add_h264(
            Pt::from(H264_PT),
            Some(Pt::from(H264_RTX_PT)),
            true,
            0x42e01f,
        );
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut sdp = rtc.sdp_api();
        let audio = sdp.add_media(MediaKind::Audio, direction, None, None, None);
        let video = sdp.add_media(MediaKind::Video, direction, None, None, None);
        let (offer, pending) = sdp.apply().unwrap();
        let (events, _) = mpsc::unbounded_channel::<(LegId, LegEvent)>();
        let offer = serde_json::to_string(&offer).unwrap();
        let (_, answer) = room.open(&offer, spec, events).await.unwrap();
        let answer: SdpAnswer = serde_json::from_str(&answer).unwrap();
        rtc.sdp_api().accept_answer(pending, answer).unwrap();
        (Self { rtc, socket, local }, audio, video)
    }
}

/// µs since the first call: the send times the receivers subtract from.
pub fn clock_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// CPU time of this process's threads whose name starts with `prefix`.
pub fn threads_cpu(prefix: &str) -> Duration {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime, fields 14 and 15 of stat, in 100 Hz ticks.
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    Duration::from_millis(ticks * 10)
}

/// A runtime of one worker thread named `name`: its CPU is one core's share.
pub fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}
