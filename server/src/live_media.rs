//! A live's media on str0m: the broadcaster's and every viewer's WebRTC
//! connections, driven by one task over one UDP socket per media address.
//!
//! The broadcaster's RTP is forwarded as it came: the same payload (one
//! `Arc`, no copy) goes to every viewer, under that viewer's SSRC, sequence
//! numbers and keys. The `webrtc`-crate legs of [`crate::sfu`] reassemble each
//! picture and packetise it again per viewer, each viewer with its own tasks
//! and socket: 12.6 µs of CPU per forwarded packet, 250 viewers per core at
//! 2 Mbps (server/benches/lives.rs). Calls keep those legs: with two parties
//! the per-packet cost does not matter, and their retransmissions (the
//! `webrtc` crate's NACK responder, without RTX) are what our clients speak.
//!
//! A viewer who joins, or asks for a keyframe after a loss, gets nothing of
//! the video until the next keyframe starts; the requests of all viewers go
//! to the broadcaster through one [`KeyframePacer`]. A viewer on a
//! slow path loses its own packets in the network; nothing here waits for it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::task::Poll;
use std::time::{Duration, Instant};

use nexmile_media::h264_rtp::H264Depacketizer;
use nexmile_media::reassembly::{AssemblerAction, Depacketizer, FrameAssembler, RtpPacket};
use nexmile_media::transport::TransportError;
use quinn_udp::{RecvMeta, UdpSocketState};
use str0m::change::SdpOffer;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{Extension, ExtensionValues, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::keyframe_pacer::KeyframePacer;
use crate::recording::Tracks;
use crate::sfu::{LegEvent, LegInput, RECORDER_QUEUE, Side, recorder};

/// One media address: its socket, with quinn-udp's segmentation offload
/// (several equal datagrams to one viewer in one send, GSO; several received
/// in one read, GRO and recvmmsg), which per datagram costs a fraction of a
/// `sendto` each.
struct Socket {
    udp: UdpSocket,
    local: SocketAddr,
    state: UdpSocketState,
}

impl Socket {
    fn bind(ip: IpAddr) -> std::io::Result<Self> {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
        socket.set_nonblocking(true)?;
        let state = UdpSocketState::new((&socket).into())?;
        // Room for a picture to every viewer and their reports at once (the
        // kernel caps it at net.core.[rw]mem_max).
        let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER);
        let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER);
        let local = socket.local_addr()?;
        Ok(Self {
            udp: UdpSocket::from_std(socket)?,
            local,
            state,
        })
    }

    /// Datagrams from one viewer's drain, in order: each run of equal sizes
    /// (the last of a run may be shorter) to one destination goes in one
    /// send. A full socket buffer drops them, as a congested path would.
    fn send(&self, queued: &[Transmit], scratch: &mut Vec<u8>) {
        let most = self.state.max_gso_segments().max(1);
        let mut start = 0;
        while start < queued.len() {
            let first = &queued[start];
            let size = first.contents.len();
            let mut end = start + 1;
            while end < queued.len()
                && end - start < most
                && queued[end].destination == first.destination
                && queued[end].contents.len() <= size
                && queued[end - 1].contents.len() == size
            {
                end += 1;
            }
            let run = &queued[start..end];
            let contents: &[u8] = if run.len() == 1 {
                &first.contents
            } else {
                scratch.clear();
                run.iter()
                    .for_each(|t| scratch.extend_from_slice(&t.contents));
                scratch
            };
            let transmit = quinn_udp::Transmit {
                destination: first.destination,
                ecn: None,
                contents,
                segment_size: (run.len() > 1).then_some(size),
                src_ip: None,
            };
            let sent = self.udp.try_io(Interest::WRITABLE, || {
                self.state.try_send((&self.udp).into(), &transmit)
            });
            if let Err(e) = sent
                && e.kind() != std::io::ErrorKind::WouldBlock
            {
                tracing::debug!("live media send to {}: {e}", first.destination);
            }
            start = end;
        }
    }
}

const SOCKET_BUFFER: usize = 4 << 20;

/// Timeouts already due that one drain takes at once.
const DUE_ROUNDS: usize = 4;

/// Reads (of up to [`Inbound::BUFFERS`] batches each) per socket before
/// what they carried is forwarded.
const RECEIVE_READS: usize = 16;

/// A picture's packets, and the sound between, are forwarded together once
/// its last one (the RTP marker) arrived, so each viewer is written and sent
/// to once per picture; this long at most (a radio live's sound, a lost
/// last packet).
const HOLD: Duration = Duration::from_millis(12);

/// Which end of the live a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Broadcaster,
    Viewer,
}

/// One connection of a live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegId(u64);

enum Command {
    Open {
        offer: String,
        role: Role,
        events: mpsc::UnboundedSender<LegEvent>,
        reply: oneshot::Sender<Result<(LegId, String), TransportError>>,
    },
    Close(LegId),
    Record(mpsc::Sender<LegInput>),
}

/// A live's media engine; the task ends when this is dropped.
pub struct LiveMedia {
    commands: mpsc::UnboundedSender<Command>,
    /// Where a recorder's keyframe requests go.
    asks: mpsc::Sender<LegInput>,
}

impl LiveMedia {
    /// Binds one UDP socket per address (the ICE host candidates) and starts
    /// the task on the current runtime.
    pub fn start(bind: &[IpAddr]) -> Result<Self, TransportError> {
        let mut sockets = Vec::new();
        for ip in bind {
            if ip.is_unspecified() {
                return Err(TransportError::WebRtc(format!(
                    "media_ips must name the addresses clients reach, not {ip}"
                )));
            }
            let socket = Socket::bind(*ip)
                .map_err(|e| TransportError::WebRtc(format!("media socket on {ip}: {e}")))?;
            sockets.push(socket);
        }
        if sockets.is_empty() {
            return Err(TransportError::WebRtc("no media address to bind".into()));
        }
        let (commands, inbox) = mpsc::unbounded_channel();
        let (asks, asked) = mpsc::channel(16);
        tokio::spawn(Engine::new(sockets).run(inbox, asked));
        Ok(Self { commands, asks })
    }

    /// Answers a client's offer; a viewer receives the broadcaster's media
    /// from its next keyframe on.
    pub async fn open(
        &self,
        offer: &str,
        role: Role,
        events: mpsc::UnboundedSender<LegEvent>,
    ) -> Result<(LegId, String), TransportError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Open {
                offer: offer.to_owned(),
                role,
                events,
                reply,
            })
            .map_err(|_| TransportError::Closed)?;
        answer.await.map_err(|_| TransportError::Closed)?
    }

    pub fn close(&self, leg: LegId) {
        let _ = self.commands.send(Command::Close(leg));
    }

    /// Writes the broadcaster's media to `path` (a fragmented MP4) from its
    /// next keyframe until the live's media ends.
    pub fn record(&self, path: PathBuf, tracks: Tracks) {
        let (input, inbox) = mpsc::channel(RECORDER_QUEUE);
        let _ = self.commands.send(Command::Record(input));
        tokio::spawn(recorder(inbox, path, tracks, self.asks.clone()));
    }
}

/// What a viewer's connection sends on one kind of media.
#[derive(Clone, Copy)]
struct Outgoing {
    mid: Mid,
    pt: Pt,
    /// The stream being forwarded, and what its sequence numbers are moved
    /// by: outgoing numbers start at 1, so SRTP's rollover counter starts at
    /// 0 as a new receiver expects.
    source: Option<(Ssrc, i64)>,
    /// The last outgoing number, from which a new source stream continues.
    last: u64,
}

impl Outgoing {
    /// The outgoing number of one of the source's packets; none for a
    /// retransmission from before this viewer started.
    fn number(&mut self, ssrc: Ssrc, sequence: u64) -> Option<u64> {
        let sequence = i64::try_from(sequence).ok()?;
        let shift = match self.source {
            Some((current, shift)) if current == ssrc => shift,
            // The first packet, or a new stream of the broadcaster's: numbering goes on.
            _ => {
                let shift = i64::try_from(self.last).ok()? + 1 - sequence;
                self.source = Some((ssrc, shift));
                shift
            }
        };
        let number = u64::try_from(sequence + shift).ok().filter(|n| *n > 0)?;
        self.last = self.last.max(number);
        Some(number)
    }
}

struct Leg {
    rtc: Rtc,
    role: Role,
    events: mpsc::UnboundedSender<LegEvent>,
    /// The m-line of each kind, from the offer.
    mids: Vec<(MediaKind, Mid)>,
    video: Option<Outgoing>,
    audio: Option<Outgoing>,
    waiting_for_keyframe: bool,
    media_seen: bool,
    timeout: Instant,
}

impl Leg {
    fn mid(&self, kind: MediaKind) -> Option<Mid> {
        self.mids.iter().find(|(k, _)| *k == kind).map(|(_, m)| *m)
    }

    fn slot(&mut self, kind: MediaKind) -> &mut Option<Outgoing> {
        match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        }
    }

    /// What this viewer's connection sends `kind` on, settled at its first
    /// packet of that kind (`params`: the broadcaster's codec).
    fn outgoing(&mut self, kind: MediaKind, params: PayloadParams) -> Option<&mut Outgoing> {
        if self.slot(kind).is_none() {
            let mid = self.mid(kind)?;
            // The same codec; failing an exact match of its parameters (a
            // browser's H.264 against an app's), the viewer's one of that
            // codec: each side negotiated only the one H.264 the engine offers.
            let config = self.rtc.codec_config();
            let pt = config
                .match_params(params)
                .or_else(|| config.find(|p| p.spec().codec == params.spec().codec))?
                .pt();
            *self.slot(kind) = Some(Outgoing {
                mid,
                pt,
                source: None,
                last: 0,
            });
        }
        self.slot(kind).as_mut()
    }
}

/// What a leg's output asked of the engine.
enum Wanted {
    Keyframe,
    Lost,
}

/// The ufrag a STUN message is addressed to: the part of its USERNAME before
/// the colon (RFC 8445 §7.2.2, the receiver's fragment first), or `None` for
/// anything that is not a STUN message with one. Read by hand because
/// str0m's STUN parser is not public API, and this is a few bounds checks.
fn stun_username_target(datagram: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    // RFC 8489 §5: two zero bits, a type, a length, the cookie, a transaction ID.
    if datagram.len() < 20 || datagram[0] & 0xc0 != 0 || datagram[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let mut attributes = datagram.get(20..20 + length)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let size = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + size)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split_once(':').map(|(target, _)| target);
        }
        // Values are padded to four bytes.
        attributes = attributes.get((4 + size).next_multiple_of(4)..)?;
    }
    None
}

struct Engine {
    sockets: Vec<Socket>,
    legs: HashMap<LegId, Leg>,
    by_remote: HashMap<SocketAddr, LegId>,
    /// Each leg by its local ICE username fragment, which a client's STUN
    /// checks name: how a new address finds its leg.
    by_ufrag: HashMap<String, LegId>,
    broadcaster: Option<LegId>,
    next_leg: u64,
    keyframes: KeyframePacer,
    /// Whether a viewer waited for a keyframe at the last flush.
    viewer_waiting: bool,
    /// The broadcaster's pictures for recorders, reassembled only while one listens.
    taps: Vec<mpsc::Sender<LegInput>>,
    assembler: FrameAssembler<H264Depacketizer>,
    last_timestamp: Option<u32>,
    epoch: Instant,
    /// The broadcaster's packets not yet forwarded.
    received: Vec<str0m::rtp::RtpPacket>,
    outbox: Outbox,
    lost: Vec<LegId>,
}

/// A leg's outputs until it has nothing more to send: datagrams go out
/// (a full socket buffer drops them, as a congested path would), events are
/// returned for the engine.
fn drain(
    leg: &mut Leg,
    sockets: &[Socket],
    outbox: &mut Outbox,
    received: &mut Vec<str0m::rtp::RtpPacket>,
) -> Vec<Wanted> {
    let mut wanted = Vec::new();
    let now = Instant::now();
    let mut rounds = 0;
    loop {
        match leg.rtc.poll_output() {
            // Written packets leave on the send queue's timeout, which is
            // due at once: taken here rather than on a trip through the loop.
            Ok(Output::Timeout(at)) if at <= now && rounds < DUE_ROUNDS => {
                rounds += 1;
                if let Err(e) = leg.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!("live media timeout: {e}");
                }
            }
            Ok(Output::Timeout(at)) => {
                leg.timeout = at;
                break;
            }
            Ok(Output::Transmit(t)) => outbox.queued.push(t),
            Ok(Output::Event(event)) => match event {
                Event::Connected => {
                    let _ = leg.events.send(LegEvent::Connected(Side::A));
                    if leg.role == Role::Viewer {
                        wanted.push(Wanted::Keyframe);
                    }
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                | Event::Closed => wanted.push(Wanted::Lost),
                Event::MediaAdded(added) => leg.mids.push((added.kind, added.mid)),
                Event::KeyframeRequest(_) => wanted.push(Wanted::Keyframe),
                Event::RtpPacket(packet) if leg.role == Role::Broadcaster => {
                    if !leg.media_seen {
                        leg.media_seen = true;
                        let _ = leg.events.send(LegEvent::MediaArrived(Side::A));
                    }
                    received.push(packet);
                }
                _ => {}
            },
            Err(e) => {
                tracing::warn!("live media: {e}");
                wanted.push(Wanted::Lost);
                break;
            }
        }
    }
    if !leg.rtc.is_alive() {
        wanted.push(Wanted::Lost);
    }
    outbox.send(sockets);
    wanted
}

/// A leg's datagrams of one drain, sent together.
#[derive(Default)]
struct Outbox {
    queued: Vec<Transmit>,
    /// The runs sent in one piece, reused.
    scratch: Vec<u8>,
}

impl Outbox {
    fn send(&mut self, sockets: &[Socket]) {
        // In order per socket (there is one per media address).
        self.queued.sort_by_key(|t| t.source);
        for run in self.queued.chunk_by(|a, b| a.source == b.source) {
            if let Some(socket) = sockets.iter().find(|s| s.local == run[0].source) {
                socket.send(run, &mut self.scratch);
            }
        }
        self.queued.clear();
    }
}

/// Buffers for one read of several datagrams (recvmmsg, each buffer able to
/// hold one GRO batch).
struct Inbound {
    buffers: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
}

impl Inbound {
    const BUFFERS: usize = 4;

    fn new(sockets: &[Socket]) -> Self {
        let segments = sockets
            .iter()
            .map(|s| s.state.gro_segments())
            .max()
            .unwrap_or(1);
        Self {
            buffers: vec![vec![0; segments.max(1) * 1500]; Self::BUFFERS],
            meta: vec![RecvMeta::default(); Self::BUFFERS],
        }
    }
}

/// The header extensions a viewer gets: what describes the media, not the
/// broadcaster's own transport (MID, RID, TWCC and send times are the
/// viewer's connection's).
fn forwarded_extensions(from: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: from.audio_level,
        voice_activity: from.voice_activity,
        video_orientation: from.video_orientation,
        ..ExtensionValues::default()
    }
}

/// A packet of the broadcaster's, as every viewer's copy needs it.
struct Described {
    kind: MediaKind,
    params: PayloadParams,
    keyframe_starts: bool,
    extensions: ExtensionValues,
}

/// Writes one of the broadcaster's packets on a viewer's connection; false
/// when the viewer does not take it (waiting for a keyframe, no such media).
fn write_to_viewer(leg: &mut Leg, packet: &str0m::rtp::RtpPacket, what: &Described) -> bool {
    if what.kind == MediaKind::Video && leg.waiting_for_keyframe {
        if !what.keyframe_starts {
            return false;
        }
        leg.waiting_for_keyframe = false;
    }
    let Some(out) = leg.outgoing(what.kind, what.params) else {
        return false;
    };
    let Some(number) = out.number(packet.header.ssrc, *packet.seq_no) else {
        return false;
    };
    let (mid, pt) = (out.mid, out.pt);
    let mut api = leg.rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(mid, None) else {
        return false;
    };
    stream.write_rtp(
        RtpWrite::new(
            pt,
            SeqNo::from(number),
            packet.header.timestamp,
            packet.timestamp,
            packet.payload.clone(),
        )
        .marker(packet.header.marker)
        .ext_vals(what.extensions.clone())
        .nackable(true),
    );
    true
}

impl Engine {
    fn new(sockets: Vec<Socket>) -> Self {
        Self {
            sockets,
            legs: HashMap::new(),
            by_remote: HashMap::new(),
            by_ufrag: HashMap::new(),
            broadcaster: None,
            next_leg: 0,
            keyframes: KeyframePacer::default(),
            viewer_waiting: false,
            taps: Vec::new(),
            assembler: FrameAssembler::new(H264Depacketizer),
            last_timestamp: None,
            epoch: Instant::now(),
            received: Vec::new(),
            outbox: Outbox::default(),
            lost: Vec::new(),
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut asks: mpsc::Receiver<LegInput>,
    ) {
        let mut inbound = Inbound::new(&self.sockets);
        loop {
            let now = Instant::now();
            let mut deadline = self
                .legs
                .values()
                .map(|leg| leg.timeout)
                .min()
                .unwrap_or(now + Duration::from_secs(1));
            if !self.taps.is_empty() {
                // The assembler's own timeouts (a picture that never completes).
                deadline = deadline.min(now + Duration::from_millis(10));
            }
            if let Some(first) = self.received.first() {
                deadline = deadline.min(first.timestamp + HOLD);
            }
            if let Some(at) = self.keyframes.next_due(self.viewer_waiting) {
                deadline = deadline.min(at);
            }
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    None => break,
                    Some(command) => self.command(command),
                },
                Some(_) = asks.recv() => self.keyframes.want(),
                () = readable(&self.sockets) => self.receive_waiting(&mut inbound),
                _ = tokio::time::sleep_until(deadline.into()) => self.timeouts(Instant::now()),
            }
            self.flush();
        }
        for leg in self.legs.values_mut() {
            leg.rtc.disconnect();
        }
    }

    /// The datagrams waiting on the sockets, a bounded number of reads so
    /// the first of a burst is not held long.
    fn receive_waiting(&mut self, inbound: &mut Inbound) {
        for index in 0..self.sockets.len() {
            for _ in 0..RECEIVE_READS {
                let socket = &self.sockets[index];
                let mut slices: Vec<std::io::IoSliceMut> = inbound
                    .buffers
                    .iter_mut()
                    .map(|b| std::io::IoSliceMut::new(b))
                    .collect();
                let read = socket.udp.try_io(Interest::READABLE, || {
                    socket
                        .state
                        .recv((&socket.udp).into(), &mut slices, &mut inbound.meta)
                });
                drop(slices);
                let Ok(count) = read else {
                    break;
                };
                for (meta, buffer) in inbound.meta[..count].iter().zip(&inbound.buffers) {
                    // One GRO batch holds several datagrams of `stride` bytes.
                    for datagram in buffer[..meta.len].chunks(meta.stride.max(1)) {
                        self.receive(index, meta.addr, datagram);
                    }
                }
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Open {
                offer,
                role,
                events,
                reply,
            } => {
                let _ = reply.send(self.open(&offer, role, events));
            }
            Command::Close(id) => self.remove(id),
            Command::Record(tap) => {
                self.taps.push(tap);
                self.keyframes.want();
            }
        }
    }

    fn open(
        &mut self,
        offer: &str,
        role: Role,
        events: mpsc::UnboundedSender<LegEvent>,
    ) -> Result<(LegId, String), TransportError> {
        let bad = |e: &dyn std::fmt::Display| TransportError::BadDescription(e.to_string());
        // JSON of an RTCSessionDescription, as the apps and browsers send it.
        let offer: SdpOffer = serde_json::from_str(offer).map_err(|e| bad(&e))?;
        let now = Instant::now();
        // ICE-lite: the server has known addresses and answers the client's checks.
        let mut config = Rtc::builder()
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .set_stats_interval(None);
        // One H.264: constrained baseline, packetization mode 1, what every
        // app decodes, so a browser broadcasting picks it too and any
        // viewer's connection takes the broadcaster's packets as they are.
        // RTX where the other side offers it (browsers): str0m resends only so.
        config
            .codec_config()
            .add_h264(Pt::from(102), Some(Pt::from(103)), true, 0x42e01f);
        if role == Role::Viewer {
            // The SFU does not adapt what it forwards, so a viewer's
            // connection carries no transport-wide sequence numbers or send
            // times to estimate with: only what says what the media is.
            config = config
                .clear_extension_map()
                .set_extension(1, Extension::AudioLevel)
                .set_extension(4, Extension::RtpMid)
                .set_extension(13, Extension::VideoOrientation);
        }
        let mut rtc = config.build(now);
        for socket in &self.sockets {
            let candidate = Candidate::host(socket.local, "udp").map_err(|e| bad(&e))?;
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| bad(&e))?;
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        self.by_ufrag
            .insert(rtc.direct_api().local_ice_credentials().ufrag, id);
        let mut leg = Leg {
            rtc,
            role,
            events,
            mids: Vec::new(),
            video: None,
            audio: None,
            waiting_for_keyframe: true,
            media_seen: false,
            timeout: now,
        };
        drain(
            &mut leg,
            &self.sockets,
            &mut self.outbox,
            &mut self.received,
        );
        if role == Role::Broadcaster
            && let Some(old) = self.broadcaster.replace(id)
        {
            self.remove(old);
        }
        self.legs.insert(id, leg);
        let answer = serde_json::to_string(&answer).map_err(|e| bad(&e))?;
        Ok((id, answer))
    }

    fn remove(&mut self, id: LegId) {
        if let Some(mut leg) = self.legs.remove(&id) {
            leg.rtc.disconnect();
            let mut received = Vec::new();
            drain(&mut leg, &self.sockets, &mut self.outbox, &mut received);
        }
        self.by_remote.retain(|_, leg| *leg != id);
        self.by_ufrag.retain(|_, leg| *leg != id);
        if self.broadcaster == Some(id) {
            self.broadcaster = None;
            // The recorders finish their files.
            for tap in self.taps.drain(..) {
                let _ = tap.try_send(LegInput::Close);
            }
        }
    }

    /// Whether a connected viewer with video still waits for its first
    /// keyframe (the pacer then asks again until it comes).
    fn viewer_waiting(&self) -> bool {
        self.legs.values().any(|leg| {
            leg.role == Role::Viewer
                && leg.waiting_for_keyframe
                && leg.mid(MediaKind::Video).is_some()
                && leg.rtc.is_connected()
        })
    }

    /// Sends the broadcaster a PLI; the pacer decided it is due. Without a
    /// broadcaster's video yet the request stays due for when it comes.
    fn request_keyframe(&mut self, now: Instant) {
        let Some(id) = self.broadcaster else {
            return;
        };
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let Some(mid) = leg.mid(MediaKind::Video) else {
            return;
        };
        if let Some(stream) = leg.rtc.direct_api().stream_rx_by_mid(mid, None) {
            stream.request_keyframe(KeyframeRequestKind::Pli);
            self.keyframes.sent(now);
            self.settle(id);
        }
    }

    /// One datagram to the leg it is for. What the broadcaster sent waits
    /// in `received` for [`Self::flush`], so a burst is forwarded in one pass.
    fn receive(&mut self, socket: usize, source: SocketAddr, datagram: &[u8]) {
        let now = Instant::now();
        let destination = self.sockets[socket].local;
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, datagram) else {
            return;
        };
        let input = Input::Receive(now, receive);
        let id = match self.by_remote.get(&source) {
            Some(id) => *id,
            // A new address: only a STUN check naming one of our ICE
            // username fragments introduces it, and only that leg checks its
            // integrity. A spoofed datagram costs one lookup, not an HMAC per
            // viewer; anything else from an unknown address is dropped.
            None => {
                let Some(&id) = stun_username_target(datagram).and_then(|u| self.by_ufrag.get(u))
                else {
                    return;
                };
                if !self
                    .legs
                    .get(&id)
                    .is_some_and(|leg| leg.rtc.accepts(&input))
                {
                    return;
                }
                self.by_remote.insert(source, id);
                id
            }
        };
        if let Some(leg) = self.legs.get_mut(&id)
            && let Err(e) = leg.rtc.handle_input(input)
        {
            tracing::debug!("live media input: {e}");
        }
        self.settle(id);
    }

    fn timeouts(&mut self, now: Instant) {
        let due: Vec<LegId> = self
            .legs
            .iter_mut()
            .filter(|(_, leg)| leg.timeout <= now)
            .map(|(id, leg)| {
                let _ = leg.rtc.handle_input(Input::Timeout(now));
                *id
            })
            .collect();
        for id in due {
            self.settle(id);
        }
        if !self.taps.is_empty() {
            let actions = self.assembler.poll(self.now_us());
            self.on_assembled(actions);
        }
    }

    /// Drains one leg after a change: its datagrams go out, the
    /// broadcaster's packets wait for [`Self::flush`], requests are noted.
    fn settle(&mut self, id: LegId) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        for wanted in drain(leg, &self.sockets, &mut self.outbox, &mut self.received) {
            match wanted {
                Wanted::Keyframe => self.keyframes.want(),
                Wanted::Lost => self.lost.push(id),
            }
        }
    }

    /// Forwards what the broadcaster sent since the last flush, drops the
    /// legs that were lost and passes keyframe requests on.
    fn flush(&mut self) {
        let now = Instant::now();
        if !self.received.is_empty() && !self.holding(now) {
            self.forward();
        }
        for id in std::mem::take(&mut self.lost) {
            if let Some(leg) = self.legs.get(&id) {
                let _ = leg.events.send(LegEvent::Lost(Side::A));
            }
            self.remove(id);
        }
        self.viewer_waiting = self.viewer_waiting();
        if self.keyframes.due(now, self.viewer_waiting) {
            self.request_keyframe(now);
        }
    }

    /// Whether the packets received wait for the rest of their picture
    /// (sound waits with them: each viewer is then written once per picture).
    fn holding(&self, now: Instant) -> bool {
        let Some(first) = self.received.first() else {
            return false;
        };
        now < first.timestamp + HOLD && !self.received.iter().any(|p| p.header.marker)
    }

    /// The broadcaster's packets since the last flush to every viewer (each
    /// viewer written all of them, then drained once), and to the recorders.
    fn forward(&mut self) {
        let mut packets = std::mem::take(&mut self.received);
        let Some(source) = self.broadcaster.and_then(|id| self.legs.get(&id)) else {
            packets.clear();
            self.received = packets;
            return;
        };
        // What each packet is, found once for all viewers.
        let described: Vec<Option<Described>> = packets
            .iter()
            .map(|packet| {
                let params = source
                    .rtc
                    .codec_config()
                    .find(|p| p.pt() == packet.header.payload_type)
                    .copied()?;
                let kind = if params.spec().codec == Codec::Opus {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                Some(Described {
                    kind,
                    keyframe_starts: kind == MediaKind::Video
                        && H264Depacketizer.starts_keyframe(&packet.payload),
                    extensions: forwarded_extensions(&packet.header.ext_vals),
                    params,
                })
            })
            .collect();
        let mut none = Vec::new();
        for (id, leg) in &mut self.legs {
            if leg.role != Role::Viewer || !leg.rtc.is_connected() {
                continue;
            }
            let mut wrote = false;
            for (packet, what) in packets.iter().zip(&described) {
                if let Some(what) = what {
                    wrote |= write_to_viewer(leg, packet, what);
                }
            }
            if !wrote {
                continue;
            }
            for wanted in drain(leg, &self.sockets, &mut self.outbox, &mut none) {
                match wanted {
                    Wanted::Keyframe => self.keyframes.want(),
                    Wanted::Lost => self.lost.push(*id),
                }
            }
        }
        if !self.taps.is_empty() {
            for (packet, what) in packets.iter().zip(&described) {
                if let Some(what) = what {
                    self.tap(what.kind, packet);
                }
            }
        }
        packets.clear();
        self.received = packets;
    }

    fn now_us(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(i64::MAX)
    }

    fn tap(&mut self, kind: MediaKind, packet: &str0m::rtp::RtpPacket) {
        match kind {
            MediaKind::Audio => {
                let data = packet.payload.to_vec();
                self.taps.retain(|tap| !tap.is_closed());
                for tap in &self.taps {
                    let _ = tap.try_send(LegInput::Audio { data: data.clone() });
                }
            }
            MediaKind::Video => {
                let actions = self.assembler.insert(
                    RtpPacket {
                        sequence: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        marker: packet.header.marker,
                        payload: packet.payload.to_vec(),
                    },
                    self.now_us(),
                );
                self.on_assembled(actions);
            }
        }
    }

    fn on_assembled(&mut self, actions: Vec<AssemblerAction>) {
        for action in actions {
            match action {
                AssemblerAction::Frame(frame) => {
                    let duration =
                        crate::sfu::picture_duration(&mut self.last_timestamp, frame.rtp_timestamp);
                    self.taps.retain(|tap| !tap.is_closed());
                    for tap in &self.taps {
                        let _ = tap.try_send(LegInput::Video {
                            data: frame.data.clone(),
                            duration,
                        });
                    }
                }
                AssemblerAction::RequestKeyframe => self.keyframes.want(),
                // str0m asks for retransmissions itself.
                AssemblerAction::Nack(_) => {}
            }
        }
    }
}

/// Until one of the sockets has something to read.
async fn readable(sockets: &[Socket]) {
    std::future::poll_fn(|cx| {
        if sockets
            .iter()
            .any(|socket| socket.udp.poll_recv_ready(cx).is_ready())
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// A STUN binding request with these attributes (type, value).
    fn stun(attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attributes {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        let mut message = vec![0x00, 0x01];
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&body);
        message
    }

    #[test]
    fn a_stun_check_names_the_leg_by_its_ufrag_and_nothing_else_does() {
        // PRIORITY before USERNAME (a value that needs no padding), then a padded one.
        let check = stun(&[(0x0024, &[0, 0, 0, 1]), (0x0006, b"srv1:cli")]);
        assert_eq!(stun_username_target(&check), Some("srv1"));
        let padded = stun(&[(0x0006, b"abc:de"), (0x0008, &[0; 20])]);
        assert_eq!(stun_username_target(&padded), Some("abc"));
        // No USERNAME (an indication), no colon, RTP, DTLS, a cut-off message,
        // a length past the end, an attribute past the end: nobody's.
        assert_eq!(stun_username_target(&stun(&[(0x0024, &[0; 4])])), None);
        assert_eq!(stun_username_target(&stun(&[(0x0006, b"nocolon")])), None);
        assert_eq!(stun_username_target(&[0x80, 0x60, 0, 1, 0, 0, 0, 0]), None);
        assert_eq!(stun_username_target(&[22, 254, 253, 0, 0]), None);
        assert_eq!(stun_username_target(&check[..30]), None);
        let mut lying = check.clone();
        lying[3] = 0xff;
        assert_eq!(stun_username_target(&lying), None);
        let mut overlong = stun(&[(0x0006, b"a:b")]);
        overlong[23] = 200;
        assert_eq!(stun_username_target(&overlong), None);
    }

    #[test]
    fn numbering_starts_at_one_skips_older_retransmissions_and_goes_on_across_streams() {
        let mut out = Outgoing {
            mid: Mid::from("0"),
            pt: Pt::from(102),
            source: None,
            last: 0,
        };
        let (first, second) = (Ssrc::from(7), Ssrc::from(9));
        assert_eq!(out.number(first, 70_000), Some(1));
        assert_eq!(out.number(first, 70_002), Some(3));
        assert_eq!(
            out.number(first, 69_999),
            None,
            "from before the viewer started"
        );
        assert_eq!(
            out.number(first, 70_001),
            Some(2),
            "a late one keeps its place"
        );
        // The broadcaster's new stream starts lower; the viewer's numbers go on.
        assert_eq!(out.number(second, 2), Some(4));
        assert_eq!(out.number(second, 3), Some(5));
    }

    #[tokio::test]
    async fn a_malformed_offer_and_an_unspecified_address_are_refused_with_reasons() {
        let unspecified = LiveMedia::start(&[IpAddr::V4(Ipv4Addr::UNSPECIFIED)]);
        assert!(
            matches!(unspecified, Err(TransportError::WebRtc(why)) if why.contains("media_ips"))
        );
        let media = LiveMedia::start(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap();
        let (events, _) = mpsc::unbounded_channel();
        for offer in [
            "not a description",
            r#"{"type":"offer","sdp":"v=0 garbage"}"#,
        ] {
            let refused = media.open(offer, Role::Viewer, events.clone()).await;
            assert!(
                matches!(refused, Err(TransportError::BadDescription(_))),
                "{offer}: {refused:?}"
            );
        }
    }
}
