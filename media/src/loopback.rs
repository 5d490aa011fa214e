//! A call between two peers in one process over loopback UDP — the stamped
//! test pattern and a tone sent, reassembled, decoded and read back — and a
//! lossy UDP relay to put between them. The media engine's proof and its
//! latency benchmark both run on it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::codec::{H264Encoder, OpusDecoder, OpusEncoder};
use crate::convert::Scaler;
use crate::frame::MediaTime;
use crate::jitter::{JitterBuffer, Playout};
use crate::ladder::Ladder;
use crate::quality::{QualityReport, StatsSnapshot};
use crate::receiver::{Received, VideoReceiver};
use crate::source::pattern::{TestPattern, read_stamp};
use crate::source::tone::{ToneShape, ToneSource, tone_share};
use crate::transport::{MediaKind, Peer, PeerConfig, PeerEvent};
use tokio::net::UdpSocket;

pub fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted
        .get((sorted.len().saturating_sub(1)) * p / 100)
        .copied()
        .unwrap_or_default()
}

fn loopback_peer_config() -> PeerConfig {
    PeerConfig {
        bind: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..PeerConfig::default()
    }
}

/// Rewrites the loopback host candidate's port in a session description.
fn with_candidate_port(description: &str, port: u16) -> (String, u16) {
    let mut json: serde_json::Value = serde_json::from_str(description).expect("description JSON");
    let sdp = json["sdp"].as_str().expect("sdp").to_owned();
    let mut original = 0;
    let rewritten: Vec<String> = sdp
        .split("\r\n")
        .map(|line| {
            if line.starts_with("a=candidate:") && line.contains(" 127.0.0.1 ") {
                let fields: Vec<&str> = line.split(' ').collect();
                let at = fields
                    .iter()
                    .position(|f| *f == "127.0.0.1")
                    .expect("address");
                original = fields[at + 1].parse().expect("port");
                let mut owned: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
                owned[at + 1] = port.to_string();
                owned.join(" ")
            } else {
                line.to_owned()
            }
        })
        .collect();
    json["sdp"] = serde_json::Value::String(rewritten.join("\r\n"));
    (json.to_string(), original)
}

/// Forwards UDP between the peers, dropping a share of RTP once told to.
pub struct Relay {
    toward_a: Arc<UdpSocket>,
    toward_b: Arc<UdpSocket>,
    share: f64,
    dropping: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl Relay {
    pub async fn start(share: f64) -> Self {
        let bind = || UdpSocket::bind("127.0.0.1:0");
        Self {
            toward_a: Arc::new(bind().await.expect("bind")),
            toward_b: Arc::new(bind().await.expect("bind")),
            share,
            dropping: Arc::new(AtomicBool::new(false)),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn start_dropping(&self) {
        self.dropping.store(true, Ordering::SeqCst);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Packets from `from` go out of `out` to `to`.
    fn forward(&self, from: Arc<UdpSocket>, out: Arc<UdpSocket>, to: SocketAddr, salt: u64) {
        let (dropping, dropped, share) = (
            Arc::clone(&self.dropping),
            Arc::clone(&self.dropped),
            self.share,
        );
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut n_packet = salt;
            while let Ok(len) = from.recv(&mut buf).await {
                n_packet += 1;
                // RTP only (first byte 0b10xxxxxx, and not an RTCP type 192–223):
                // ICE, DTLS and RTCP pass, as a real lossy path mostly lets them.
                let rtp = len > 12 && buf[0] >> 6 == 2 && !(192..=223).contains(&buf[1]);
                let roll = (n_packet.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64
                    / (1u64 << 24) as f64;
                if rtp && dropping.load(Ordering::Relaxed) && roll < share {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let _ = out.send_to(&buf[..len], to).await;
            }
        });
    }
}

pub struct Outcome {
    pub frames_sent: usize,
    /// From the start of the run to the first decoded picture.
    pub first_frame_after: Option<Duration>,
    /// (bandwidth estimate, width sent) once a second.
    pub ladder: Vec<(u64, u32)>,
    /// Sequence and glass-to-glass latency of each decoded picture, in arrival order.
    pub stamps: Vec<(u32, Duration)>,
    pub tone_share: f64,
    pub reports: Vec<QualityReport>,
}

pub struct Call {
    sender: Option<Peer>,
    receiver: Option<Peer>,
    pub connect_time: Duration,
}

impl Call {
    /// Offer from the sender, answer from the receiver, over 127.0.0.1,
    /// through `relay` if given.
    pub async fn connect(relay: Option<&Relay>) -> Self {
        Self::connect_with(loopback_peer_config(), relay).await
    }

    /// The same with both peers built from `config`.
    pub async fn connect_with(config: PeerConfig, relay: Option<&Relay>) -> Self {
        let started = Instant::now();
        let mut sender = Peer::new(config.clone()).await.expect("sender");
        let mut receiver = Peer::new(config).await.expect("receiver");
        let mut offer = sender
            .create_offer_with_control_channel()
            .await
            .expect("offer");
        let mut sender_port = 0;
        if let Some(relay) = relay {
            (offer, sender_port) =
                with_candidate_port(&offer, relay.toward_b.local_addr().unwrap().port());
        }
        let mut answer = receiver.answer(&offer).await.expect("answer");
        if let Some(relay) = relay {
            let receiver_port;
            (answer, receiver_port) =
                with_candidate_port(&answer, relay.toward_a.local_addr().unwrap().port());
            let at = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            relay.forward(
                Arc::clone(&relay.toward_a),
                Arc::clone(&relay.toward_b),
                at(receiver_port),
                1,
            );
            relay.forward(
                Arc::clone(&relay.toward_b),
                Arc::clone(&relay.toward_a),
                at(sender_port),
                2,
            );
        }
        sender.accept_answer(&answer).await.expect("accept");
        for peer in [&mut sender, &mut receiver] {
            tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(event) = peer.next_event().await {
                    if event == PeerEvent::Connected {
                        return;
                    }
                }
            })
            .await
            .expect("connected within 10 s");
        }
        Self {
            sender: Some(sender),
            receiver: Some(receiver),
            connect_time: started.elapsed(),
        }
    }

    /// The offering (sending) and answering (receiving) peers, between runs.
    pub fn peers(&mut self) -> (&mut Peer, &mut Peer) {
        (
            self.sender.as_mut().expect("not running"),
            self.receiver.as_mut().expect("not running"),
        )
    }

    /// Sends the stamped pattern and the tone for `duration`, and receives them.
    pub async fn run(&mut self, duration: Duration, width: u32, height: u32) -> Outcome {
        let sender = self.sender.take().expect("sender");
        let receiver = self.receiver.take().expect("receiver");
        let started = Instant::now();
        let sending = tokio::spawn(send(sender, duration, width, height));
        let receiving = tokio::spawn(receive(receiver, duration + Duration::from_millis(700)));
        let (sender, frames_sent, ladder) = sending.await.expect("sender task");
        let (receiver, stamps, pcm, reports, first_frame) = receiving.await.expect("receiver task");
        self.sender = Some(sender);
        self.receiver = Some(receiver);
        let steady = &pcm[pcm.len().min(48_000 / 2)..];
        Outcome {
            frames_sent,
            first_frame_after: first_frame.map(|at| at.duration_since(started)),
            ladder,
            stamps,
            tone_share: tone_share(steady, 48_000, 1000.0),
            reports,
        }
    }
}

async fn send(
    mut peer: Peer,
    duration: Duration,
    width: u32,
    height: u32,
) -> (Peer, usize, Vec<(u64, u32)>) {
    let pattern = TestPattern::new(width, height).expect("pattern size");
    let mut ladder = Ladder::for_capture(width, height);
    let mut target = ladder.update(peer.bandwidth_estimate_bps(), 0);
    let mut steps = Vec::new();
    let mut scaler = Scaler::default();
    let mut video = H264Encoder::new(target.bitrate, 30.0).expect("encoder");
    let mut audio = OpusEncoder::new(32_000).expect("opus");
    let mut tone = ToneSource::new(ToneShape::Steady { hz: 1000.0 }, 0.4);
    let frame_interval = Duration::from_secs(1) / 30;
    let audio_interval = Duration::from_millis(20);
    let start = tokio::time::Instant::now();
    let (mut frames, mut audio_packets) = (0u32, 0u32);
    loop {
        let next_frame = start + frame_interval * frames;
        let next_audio = start + audio_interval * audio_packets;
        if next_frame.duration_since(start) >= duration
            && next_audio.duration_since(start) >= duration
        {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_frame.min(next_audio)) => {}
            Some(event) = peer.next_event() => {
                if event == PeerEvent::KeyframeRequested {
                    video.request_keyframe();
                }
                continue;
            }
        }
        let now = tokio::time::Instant::now();
        if now >= next_frame && next_frame.duration_since(start) < duration {
            let now_us = i64::try_from(now.duration_since(start).as_micros()).unwrap_or(0);
            if frames % 30 == 0 {
                // The transport's estimate sets size and bitrate once a second.
                let estimate = peer.bandwidth_estimate_bps();
                target = ladder.update(estimate, now_us);
                video.set_bitrate(target.bitrate).expect("bitrate");
                steps.push((estimate, target.width));
            }
            let captured = pattern.render(frames, MediaTime::now());
            let picture = scaler
                .scale(&captured, target.width, target.height)
                .expect("scale");
            if let Some(encoded) = video.encode(&picture, now_us).expect("encode") {
                peer.send_video(&encoded.data, frame_interval)
                    .await
                    .expect("send video");
            }
            frames += 1;
        }
        if now >= next_audio && next_audio.duration_since(start) < duration {
            let mut pcm = tone.next_frame(MediaTime::now()).samples;
            pcm.extend(tone.next_frame(MediaTime::now()).samples);
            let packet = audio.encode(&pcm).expect("opus encode");
            peer.send_audio(&packet, audio_interval)
                .await
                .expect("send audio");
            audio_packets += 1;
        }
    }
    (peer, frames as usize, steps)
}

type ReceiveOutcome = (
    Peer,
    Vec<(u32, Duration)>,
    Vec<i16>,
    Vec<QualityReport>,
    Option<Instant>,
);

async fn receive(mut peer: Peer, duration: Duration) -> ReceiveOutcome {
    let mut video = VideoReceiver::new().expect("decoder");
    let mut jitter = JitterBuffer::new(48_000);
    let mut opus = OpusDecoder::new().expect("opus");
    let mut stamps = Vec::new();
    let mut pcm = Vec::new();
    let mut reports = Vec::new();
    let mut last_stats: Option<StatsSnapshot> = None;
    let mut first_frame = None;
    let deadline = tokio::time::Instant::now() + duration;
    let mut playout = tokio::time::interval(Duration::from_millis(20));
    let mut housekeeping = tokio::time::interval(Duration::from_millis(10));
    let mut report_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let mut received = Received::default();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = playout.tick() => {
                let samples = 960;
                let decoded = match jitter.pop() {
                    Playout::Packet(packet) => opus.decode(&packet, samples),
                    Playout::Lost { fec: Some(next) } => opus.decode_fec(&next, samples),
                    Playout::Lost { fec: None } | Playout::Underrun => opus.conceal(samples),
                };
                pcm.extend(decoded.unwrap_or_else(|_| vec![0; samples]));
            }
            _ = housekeeping.tick() => received = video.poll(peer.now_us()),
            _ = report_tick.tick() => {
                let now = peer.stats().await;
                if let Some(before) = &last_stats {
                    reports.push(QualityReport::between(before, &now, true));
                }
                last_stats = Some(now);
            }
            Some(event) = peer.next_event() => match event {
                PeerEvent::Rtp { kind: MediaKind::Video, packet, arrival_us } => {
                    received = video.on_packet(packet, arrival_us);
                }
                PeerEvent::Rtp { kind: MediaKind::Audio, packet, arrival_us } => {
                    jitter.push(packet.sequence, packet.timestamp, packet.payload, arrival_us);
                }
                _ => {}
            },
        }
        for picture in &received.pictures {
            peer.count_decoded_frame();
            first_frame.get_or_insert_with(Instant::now);
            if let Some(stamp) = read_stamp(picture) {
                stamps.push((
                    stamp.sequence,
                    MediaTime::now().saturating_since(stamp.captured),
                ));
            }
        }
        if received.request_keyframe {
            let _ = peer.request_keyframe().await;
        }
    }
    (peer, stamps, pcm, reports, first_frame)
}
