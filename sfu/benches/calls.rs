//! `cargo bench -p nexmile-sfu --bench calls`: concurrent two-party 720p
//! calls through the media engine on loopback, one room per call as the
//! server makes them.
//!
//! The rooms run on a runtime of one worker thread ("sfu"), so their CPU is
//! one core's share, read per thread from /proc. The parties (two per call)
//! are str0m connections in RTP mode on a runtime of their own ("parties"):
//! each sends a 720p picture stream of about 2 Mbps (30 pictures a second
//! of 7 packets, a keyframe when asked and every 2 s) and Opus-sized sound
//! at 50 packets a second, with RTX, and counts what it receives without
//! decoding: a receiver that costs little more than its SRTP, so the
//! engine's core, not the parties', sets the limit for as long as it can.
//! Every packet carries its send time; a receiver measures latency at each
//! picture's last packet and loss from its own stream's sequence numbers.
//!
//! N grows until loss reaches 1 % or the 99th-percentile latency 200 ms.
//! Printed per step: the engine's CPU and the parties', CPU per call, loss,
//! latency, and the time from a call's offers to the first whole keyframe
//! at each side (the first picture a decoder could show), median and p95.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexmile_sfu::{Feed, LegSpec, MediaNetwork, NetworkConfig, Room};
use str0m::format::Codec;
use str0m::media::{Direction, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

mod support;
use support::{Client, H264_PT, clock_us, runtime, threads_cpu};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

const FPS: u32 = 30;
/// 7 packets of 1,150 bytes a picture: 1.93 Mbps of pictures at 30 fps.
const PACKETS_PER_PICTURE: usize = 7;
const PAYLOAD: usize = 1150;
const KEYFRAME_EVERY: u64 = 60;
const SOUND_PAYLOAD: usize = 80;
const STEPS: [usize; 10] = [10, 25, 50, 75, 100, 150, 200, 250, 300, 400];
const WARM_UP: Duration = Duration::from_secs(4);
const WINDOW: Duration = Duration::from_secs(6);
const MAX_LOSS: f64 = 0.01;
const MAX_P99: Duration = Duration::from_millis(200);
/// Opus's payload type in str0m's and the apps' offers.
const OPUS: u8 = 111;

/// One packet of a picture: an H.264 FU-A fragment of an IDR or P slice
/// (what the engine looks at to find keyframes), then the send time.
fn picture_packet(keyframe: bool, index: usize) -> Vec<u8> {
    let (indicator, slice) = if keyframe { (0x7c, 5) } else { (0x5c, 1) };
    let start = if index == 0 { 0x80 } else { 0 };
    let end = if index + 1 == PACKETS_PER_PICTURE {
        0x40
    } else {
        0
    };
    let mut payload = vec![0u8; PAYLOAD];
    payload[0] = indicator;
    payload[1] = start | end | slice;
    payload[2..10].copy_from_slice(&clock_us().to_be_bytes());
    payload
}

/// What one party received, counted while `measuring` is set.
#[derive(Default)]
struct Seen {
    video_sequences: HashSet<u64>,
    sound_packets: u64,
    latencies: Vec<Duration>,
}

struct PartyStats {
    seen: Mutex<Seen>,
    /// From the call's start to its first whole keyframe received.
    first_picture: Mutex<Option<Duration>>,
}

/// One side of a call: its own connection to the call's room.
struct Party {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    video: Mid,
    audio: Mid,
    video_number: u64,
    audio_number: u64,
    pictures: u64,
    keyframe_wanted: bool,
    /// The first packet of a keyframe arrived; its last one completes it.
    keyframe_started: bool,
    timeout: Instant,
}

impl Party {
    async fn join(room: &Room, spec: LegSpec) -> Self {
        let (Client { rtc, socket, local }, audio, video) =
            Client::join(room, spec, Direction::SendRecv).await;
        let now = Instant::now();
        Self {
            rtc,
            socket,
            local,
            video,
            audio,
            video_number: 1,
            audio_number: 1,
            pictures: 0,
            keyframe_wanted: true,
            keyframe_started: false,
            timeout: now,
        }
    }

    fn send_picture(&mut self) {
        if !self.rtc.is_connected() {
            return;
        }
        let keyframe = self.keyframe_wanted || self.pictures.is_multiple_of(KEYFRAME_EVERY);
        self.keyframe_wanted = false;
        let now = Instant::now();
        let time = (self.pictures * 3000) as u32;
        self.pictures += 1;
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(self.video, None) else {
            return;
        };
        for index in 0..PACKETS_PER_PICTURE {
            stream.write_rtp(
                RtpWrite::new(
                    Pt::from(H264_PT),
                    SeqNo::from(self.video_number),
                    time,
                    now,
                    picture_packet(keyframe, index),
                )
                .marker(index + 1 == PACKETS_PER_PICTURE)
                .nackable(true),
            );
            self.video_number += 1;
        }
    }

    fn send_sound(&mut self) {
        if !self.rtc.is_connected() {
            return;
        }
        let number = self.audio_number;
        self.audio_number += 1;
        let mut api = self.rtc.direct_api();
        if let Some(stream) = api.stream_tx_by_mid(self.audio, None) {
            stream.write_rtp(RtpWrite::new(
                Pt::from(OPUS),
                SeqNo::from(number),
                (number * 960) as u32,
                Instant::now(),
                vec![0xfc; SOUND_PAYLOAD],
            ));
        }
    }

    /// Everything str0m has to send or say, until its next timeout.
    async fn drain(&mut self, stats: &PartyStats, measuring: &AtomicBool, started: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.timeout = at;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(Event::KeyframeRequest(_))) => self.keyframe_wanted = true,
                Ok(Output::Event(Event::RtpPacket(packet))) => {
                    let video = self
                        .rtc
                        .codec_config()
                        .find(|p| p.pt() == packet.header.payload_type)
                        .is_some_and(|p| p.spec().codec == Codec::H264);
                    if !video {
                        if measuring.load(Ordering::Relaxed) {
                            stats.seen.lock().unwrap().sound_packets += 1;
                        }
                        continue;
                    }
                    let payload = &packet.payload;
                    if payload.len() >= 10 && payload[1] & 0x80 != 0 {
                        self.keyframe_started = payload[1] & 0x1f == 5;
                    }
                    if packet.header.marker && self.keyframe_started {
                        let mut first = stats.first_picture.lock().unwrap();
                        first.get_or_insert_with(|| started.elapsed());
                    }
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    let mut seen = stats.seen.lock().unwrap();
                    seen.video_sequences.insert(*packet.seq_no);
                    if packet.header.marker && payload.len() >= 10 {
                        let sent = u64::from_be_bytes(payload[2..10].try_into().unwrap());
                        seen.latencies
                            .push(Duration::from_micros(clock_us().saturating_sub(sent)));
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(e) => panic!("party: {e}"),
            }
        }
    }

    async fn run(mut self, stats: Arc<PartyStats>, measuring: Arc<AtomicBool>, started: Instant) {
        let mut pictures = tokio::time::interval(Duration::from_secs(1) / FPS);
        let mut sound = tokio::time::interval(Duration::from_millis(20));
        let mut buffer = vec![0u8; 2000];
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => {
                    let Ok((size, source)) = received else { return };
                    let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buffer[..size]) else {
                        continue;
                    };
                    let _ = self.rtc.handle_input(Input::Receive(Instant::now(), receive));
                }
                _ = tokio::time::sleep_until(self.timeout.into()) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                }
                _ = pictures.tick() => self.send_picture(),
                _ = sound.tick() => self.send_sound(),
            }
            self.drain(&stats, &measuring, started).await;
        }
    }
}

struct Call {
    /// Kept: dropped, the room ends.
    _room: Room,
    sides: [Arc<PartyStats>; 2],
}

async fn start_call(sfu: &tokio::runtime::Handle, measuring: &Arc<AtomicBool>) -> Call {
    let room = {
        // No shared ports: nothing of the network runs on this runtime.
        let network = MediaNetwork::start(NetworkConfig::direct(&[LOOPBACK]))
            .await
            .unwrap();
        let _inside = sfu.enter();
        Room::start(&network).unwrap()
    };
    let started = Instant::now();
    let mut sides = Vec::new();
    for (own, other) in [(0, 1), (1, 0)] {
        let spec = LegSpec {
            publishes: Some(Feed(own)),
            receives: Some(Feed(other)),
            paces_publisher: true,
        };
        let party = Party::join(&room, spec).await;
        let stats = Arc::new(PartyStats {
            seen: Mutex::default(),
            first_picture: Mutex::default(),
        });
        tokio::spawn(party.run(Arc::clone(&stats), Arc::clone(measuring), started));
        sides.push(stats);
    }
    let [a, b] = <[Arc<PartyStats>; 2]>::try_from(sides).ok().unwrap();
    Call {
        _room: room,
        sides: [a, b],
    }
}

struct Step {
    calls: usize,
    sfu_share: f64,
    parties_share: f64,
    loss: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(Duration::MAX)
}

fn measure(calls: &[Call], measuring: &AtomicBool) -> Step {
    for side in calls.iter().flat_map(|c| &c.sides) {
        *side.seen.lock().unwrap() = Seen::default();
    }
    let (sfu_before, parties_before) = (threads_cpu("sfu"), threads_cpu("parties"));
    measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(WINDOW);
    measuring.store(false, Ordering::Relaxed);
    let (sfu_cpu, parties_cpu) = (
        threads_cpu("sfu") - sfu_before,
        threads_cpu("parties") - parties_before,
    );
    let (mut span, mut gaps) = (0u64, 0u64);
    let mut latencies = Vec::new();
    for side in calls.iter().flat_map(|c| &c.sides) {
        let seen = side.seen.lock().unwrap();
        if let (Some(low), Some(high)) = (
            seen.video_sequences.iter().min(),
            seen.video_sequences.iter().max(),
        ) {
            span += high - low + 1;
            gaps += high - low + 1 - seen.video_sequences.len() as u64;
        } else {
            // A side that received nothing lost everything.
            span += u64::from(FPS) * PACKETS_PER_PICTURE as u64 * WINDOW.as_secs();
            gaps += u64::from(FPS) * PACKETS_PER_PICTURE as u64 * WINDOW.as_secs();
        }
        latencies.extend_from_slice(&seen.latencies);
    }
    latencies.sort();
    let window = WINDOW.as_secs_f64();
    Step {
        calls: calls.len(),
        sfu_share: sfu_cpu.as_secs_f64() / window,
        parties_share: parties_cpu.as_secs_f64() / window,
        loss: gaps as f64 / span.max(1) as f64,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Concurrent calls, two parties each sending ~{:.0} kbps of 720p30-sized pictures \
         (+ sound) through one room per call on loopback; {cores} cores",
        (FPS as usize * PACKETS_PER_PICTURE * PAYLOAD * 8) as f64 / 1000.0
    );
    let sfu = runtime("sfu");
    let parties = runtime("parties");
    let measuring = Arc::new(AtomicBool::new(false));
    let mut calls: Vec<Call> = Vec::new();
    let mut passed: Option<Step> = None;
    for target in STEPS {
        let joined_from = calls.len();
        while calls.len() < target {
            // Five at a time: joins overlap as real ones do.
            let batch = (target - calls.len()).min(5);
            let handle = sfu.handle().clone();
            let started = parties.block_on(async {
                let joins: Vec<_> = (0..batch)
                    .map(|_| start_call(&handle, &measuring))
                    .collect();
                futures_util::future::join_all(joins).await
            });
            calls.extend(started);
        }
        std::thread::sleep(WARM_UP);
        let mut first: Vec<Duration> = calls[joined_from..]
            .iter()
            .flat_map(|c| &c.sides)
            .map(|s| s.first_picture.lock().unwrap().unwrap_or(Duration::MAX))
            .collect();
        first.sort();
        let step = measure(&calls, &measuring);
        let passes = step.loss < MAX_LOSS && step.p99 < MAX_P99;
        println!(
            "{:>4} calls: engine {:>5.1}% of a core ({:.2} ms of CPU per call-second), parties \
             {:>5.1}%; loss {:.2}%; latency p50 {:.1} ms, p99 {:.1} ms; offers to first keyframe \
             of the {} new sides: median {:.0} ms, p95 {:.0} ms{}",
            step.calls,
            step.sfu_share * 100.0,
            step.sfu_share * 1000.0 / step.calls as f64,
            step.parties_share * 100.0,
            step.loss * 100.0,
            step.p50.as_secs_f64() * 1e3,
            step.p99.as_secs_f64() * 1e3,
            first.len(),
            percentile(&first, 0.5).as_secs_f64() * 1e3,
            percentile(&first, 0.95).as_secs_f64() * 1e3,
            if passes { "" } else { "  ✗" }
        );
        if !passes {
            break;
        }
        passed = Some(step);
    }
    match passed {
        None => println!("no step met < 1% loss and p99 < 200 ms"),
        Some(step) => {
            let limit = if step.parties_share > 0.9 && step.sfu_share < 0.9 {
                "the parties' core saturated first; projected from the engine's CPU per call"
            } else {
                "measured"
            };
            println!(
                "largest N with < 1% loss and p99 < 200 ms: {} calls at {:.1}% of an engine core; \
                 per core: {:.0} calls ({limit})",
                step.calls,
                step.sfu_share * 100.0,
                step.calls as f64 / step.sfu_share
            );
        }
    }
    std::process::exit(0);
}
