//! The sans-I/O core: the str0m connections of one room, fed datagrams, the
//! time and requests, and polled for datagrams to send, leg events and
//! tapped media. Nothing here reads a clock or touches a socket.
//!
//! A publisher's RTP is forwarded as it came: the same payload (one `Arc`,
//! no copy) goes to every receiver of its feed, under that receiver's SSRC,
//! sequence numbers and keys; each receiver's connection resends what its
//! receiver NACKs (RTX) from its own cache. A receiver who joins, or asks
//! for a keyframe after a loss, gets nothing of the video until the next
//! keyframe starts; the requests of all receivers of a feed go to its
//! publisher through one [`KeyframePacer`]. A receiver on a slow path loses
//! its own packets in the network; nothing here waits for it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nexmile_media::h264_rtp::H264Depacketizer;
use nexmile_media::reassembly::{AssemblerAction, Depacketizer, FrameAssembler, RtpPacket};
use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive, TcpType, Transmit};
use str0m::rtp::{Extension, ExtensionValues, RtpWrite, SeqNo, StreamRx};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::SfuError;
use crate::feedback::LossRate;
use crate::keyframe_pacer::KeyframePacer;
use crate::numbering::Outgoing;

/// Timeouts already due that one drain takes at once.
const DUE_ROUNDS: usize = 4;

/// A picture's packets, and the sound between, are forwarded together once
/// its last one (the RTP marker) arrived, so each receiver is written and
/// sent to once per picture; this long at most (a radio live's sound, a
/// lost last packet).
const HOLD: Duration = Duration::from_millis(12);

/// How often a tapped feed's reassembler looks for pictures that will not
/// complete.
const TAP_POLL: Duration = Duration::from_millis(10);

const VIDEO_CLOCK: u32 = 90_000;

/// How often a pacing receiver's reports are read and its publisher told.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// What a receiver's connection keeps to resend: 3 s of a 4 Mbps picture
/// stream (about 350 packets a second).
const RTX_CACHE_PACKETS: usize = 1024;
const RTX_CACHE_AGE: Duration = Duration::from_secs(3);

/// One connection of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegId(u64);

/// A stream of media a leg publishes in its room and others receive: a
/// call's side, a live's broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Feed(pub u8);

/// What a leg does in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegSpec {
    /// The feed its client's media becomes; a new publisher of a feed
    /// replaces the old one (a broadcaster who reconnected).
    pub publishes: Option<Feed>,
    /// The feed it is sent, from that feed's next keyframe.
    pub receives: Option<Feed>,
    /// Whether what its receiver loses lowers what that feed's publisher
    /// is asked to send (REMB): a call's sides, not a live's viewers.
    pub paces_publisher: bool,
}

/// What happened to a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEvent {
    /// ICE and DTLS are done.
    Connected,
    /// The first media packet from its client arrived.
    MediaArrived,
    /// Its connection failed or closed; the leg is gone.
    Lost,
}

/// A tapped feed's media: whole pictures and sound packets.
#[derive(Debug, Clone)]
pub enum Tapped {
    /// An H.264 access unit (Annex B) and how long it shows.
    Video { data: Vec<u8>, duration: Duration },
    /// An Opus packet.
    Audio { data: Vec<u8> },
}

/// What the core hands its tap owner.
#[derive(Debug)]
pub(crate) enum TapOutput {
    Media(Feed, Tapped),
    /// The feed's publisher left: its taps are finished.
    Ended(Feed),
}

struct Leg {
    rtc: Rtc,
    spec: LegSpec,
    /// The m-line of each kind, from the offer.
    mids: Vec<(MediaKind, Mid)>,
    video: Option<Outgoing>,
    audio: Option<Outgoing>,
    waiting_for_keyframe: bool,
    media_seen: bool,
    timeout: Instant,
    /// For a receiver that paces its publisher: the rate its losses allow.
    rate: Option<LossRate>,
    target_bps: Option<f64>,
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

    /// What this leg's connection sends `kind` on, settled at its first
    /// packet of that kind (`params`: the publisher's codec).
    fn outgoing(&mut self, kind: MediaKind, params: PayloadParams) -> Option<&mut Outgoing> {
        if self.slot(kind).is_none() {
            let mid = self.mid(kind)?;
            // The same codec; failing an exact match of its parameters (a
            // browser's H.264 against an app's), the receiver's one of that
            // codec: each side negotiated only the one H.264 the engine offers.
            let config = self.rtc.codec_config();
            let pt = config
                .match_params(params)
                .or_else(|| config.find(|p| p.spec().codec == params.spec().codec))?
                .pt();
            *self.slot(kind) = Some(Outgoing::new(mid, pt));
            if let Some(stream) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
                // Every NACK answered while the packet is cached: str0m's
                // default drops queued resends once they pass 15 % of what
                // is sent, which a lossy path reaches in bursts (a keyframe).
                stream.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, None);
            }
        }
        self.slot(kind).as_mut()
    }

    /// Whether it still waits for the first keyframe of the video it receives.
    fn waits_for_keyframe(&self) -> bool {
        self.waiting_for_keyframe
            && self.spec.receives.is_some()
            && self.mid(MediaKind::Video).is_some()
            && self.rtc.is_connected()
    }
}

/// What a leg's output asked of the engine.
enum Wanted {
    Keyframe,
    Lost,
}

/// One feed's state: who publishes it, its keyframe requests, and what of
/// it waits to be forwarded.
struct FeedState {
    publisher: Option<LegId>,
    keyframes: KeyframePacer,
    /// Whether a receiver waited for a keyframe at the last flush.
    receiver_waiting: bool,
    /// The publisher's packets not yet forwarded.
    received: Vec<str0m::rtp::RtpPacket>,
    /// Pictures for taps, reassembled only while one listens.
    tap: Option<TapAssembly>,
    /// When its receivers' rates were last read for its publisher.
    paced_at: Option<Instant>,
}

struct TapAssembly {
    assembler: FrameAssembler<H264Depacketizer>,
    last_timestamp: Option<u32>,
}

impl FeedState {
    fn new() -> Self {
        Self {
            publisher: None,
            keyframes: KeyframePacer::default(),
            receiver_waiting: false,
            received: Vec::new(),
            tap: None,
            paced_at: None,
        }
    }

    /// Whether the packets received wait for the rest of their picture
    /// (sound waits with them: each receiver is then written once per picture).
    fn holding(&self, now: Instant) -> bool {
        let Some(first) = self.received.first() else {
            return false;
        };
        now < first.timestamp + HOLD && !self.received.iter().any(|p| p.header.marker)
    }
}

/// The str0m connections of one room and what flows between them.
pub(crate) struct Engine {
    /// The media addresses as clients are told them (ICE host candidates):
    /// UDP sockets, and TCP ports taking ICE over TCP (RFC 6544, passive).
    locals: Vec<(Protocol, SocketAddr)>,
    legs: HashMap<LegId, Leg>,
    by_remote: HashMap<SocketAddr, LegId>,
    /// Each leg by its local ICE username fragment, which a client's STUN
    /// checks name: how a new address finds its leg.
    by_ufrag: HashMap<String, LegId>,
    feeds: HashMap<Feed, FeedState>,
    next_leg: u64,
    epoch: Instant,
    transmits: Vec<Transmit>,
    events: VecDeque<(LegId, LegEvent)>,
    tapped: VecDeque<TapOutput>,
    lost: Vec<LegId>,
}

/// A leg's outputs until it has nothing more to send: datagrams are queued,
/// the packets it published go to `received`, requests are returned.
fn drain(
    id: LegId,
    leg: &mut Leg,
    now: Instant,
    transmits: &mut Vec<Transmit>,
    events: &mut VecDeque<(LegId, LegEvent)>,
    received: Option<&mut Vec<str0m::rtp::RtpPacket>>,
) -> Vec<Wanted> {
    let mut received = received;
    let mut wanted = Vec::new();
    let mut rounds = 0;
    loop {
        match leg.rtc.poll_output() {
            // Written packets leave on the send queue's timeout, which is
            // due at once: taken here rather than on a trip through the loop.
            Ok(Output::Timeout(at)) if at <= now && rounds < DUE_ROUNDS => {
                rounds += 1;
                if let Err(e) = leg.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!("media timeout: {e}");
                }
            }
            Ok(Output::Timeout(at)) => {
                leg.timeout = at;
                break;
            }
            Ok(Output::Transmit(t)) => transmits.push(t),
            Ok(Output::Event(event)) => match event {
                Event::Connected => {
                    events.push_back((id, LegEvent::Connected));
                    if leg.spec.receives.is_some() {
                        wanted.push(Wanted::Keyframe);
                    }
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                | Event::Closed => wanted.push(Wanted::Lost),
                Event::MediaAdded(added) => leg.mids.push((added.kind, added.mid)),
                Event::KeyframeRequest(_) => wanted.push(Wanted::Keyframe),
                Event::MediaEgressStats(stats) if Some(stats.mid) == leg.mid(MediaKind::Video) => {
                    if let (Some(rate), Some(loss)) = (&mut leg.rate, stats.loss) {
                        leg.target_bps = Some(rate.on_report(stats.bytes, loss, now));
                    }
                }
                Event::RtpPacket(packet) => {
                    if let Some(received) = received.as_deref_mut() {
                        if !leg.media_seen {
                            leg.media_seen = true;
                            events.push_back((id, LegEvent::MediaArrived));
                        }
                        received.push(packet);
                    }
                }
                _ => {}
            },
            Err(e) => {
                tracing::warn!("media: {e}");
                wanted.push(Wanted::Lost);
                break;
            }
        }
    }
    if !leg.rtc.is_alive() {
        wanted.push(Wanted::Lost);
    }
    wanted
}

/// The header extensions a receiver gets: what describes the media, not
/// the publisher's own transport (MID, RID, TWCC and send times are the
/// receiver's connection's).
fn forwarded_extensions(from: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: from.audio_level,
        voice_activity: from.voice_activity,
        video_orientation: from.video_orientation,
        ..ExtensionValues::default()
    }
}

/// A packet of the publisher's, as every receiver's copy needs it.
struct Described {
    kind: MediaKind,
    params: PayloadParams,
    keyframe_starts: bool,
    extensions: ExtensionValues,
}

/// Writes one of the publisher's packets on a receiver's connection; false
/// when the receiver does not take it (waiting for a keyframe, no such media).
fn write_to_receiver(leg: &mut Leg, packet: &str0m::rtp::RtpPacket, what: &Described) -> bool {
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

/// The answer's tracks under IDs of their own. str0m names what it sends
/// on an m-line after the offer's own track there, and the webrtc crate
/// (the apps' transport) routes incoming RTCP by track ID, remote tracks
/// first: with one ID for both directions, a call's keyframe requests went
/// to the app's receiver instead of its encoder.
fn own_track_ids(sdp: &str) -> String {
    sdp.split("\r\n")
        .map(|line| {
            // `a=msid:<stream> <track>`, `a=ssrc:<ssrc> msid:<stream> <track>`.
            let names_track = (line.starts_with("a=msid:") || line.starts_with("a=ssrc:"))
                && line
                    .split_once("msid:")
                    .is_some_and(|(_, ids)| ids.contains(' '));
            if names_track {
                format!("{line}-sfu")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A picture lasts until the next one: the RTP clock's step from the last
/// picture (`last`, updated), or a 30 fps picture's when the step is not plausible.
fn picture_duration(last: &mut Option<u32>, timestamp: u32) -> Duration {
    let step = last
        .map(|last| timestamp.wrapping_sub(last))
        .filter(|step| *step > 0 && *step < VIDEO_CLOCK)
        .unwrap_or(VIDEO_CLOCK / 30);
    *last = Some(timestamp);
    Duration::from_micros(u64::from(step) * 1_000_000 / u64::from(VIDEO_CLOCK))
}

impl Engine {
    /// A room on these media addresses (each a socket or listener the I/O
    /// layer reads).
    pub(crate) fn new(locals: Vec<(Protocol, SocketAddr)>, now: Instant) -> Self {
        Self {
            locals,
            legs: HashMap::new(),
            by_remote: HashMap::new(),
            by_ufrag: HashMap::new(),
            feeds: HashMap::new(),
            next_leg: 0,
            epoch: now,
            transmits: Vec::new(),
            events: VecDeque::new(),
            tapped: VecDeque::new(),
            lost: Vec::new(),
        }
    }

    /// Answers a client's offer (the JSON of an RTCSessionDescription, as
    /// apps and browsers send it) with the JSON of the answer.
    pub(crate) fn open(
        &mut self,
        offer: &str,
        spec: LegSpec,
        now: Instant,
    ) -> Result<(LegId, String), SfuError> {
        let bad = |e: &dyn std::fmt::Display| SfuError::BadDescription(e.to_string());
        let offer: SdpOffer = serde_json::from_str(offer).map_err(|e| bad(&e))?;
        // ICE-lite: the server has known addresses and answers the client's checks.
        let mut config = Rtc::builder()
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            // Its receiver's reports, once a second, for a leg that paces
            // its publisher.
            .set_stats_interval(spec.paces_publisher.then_some(REPORT_INTERVAL));
        // One H.264: constrained baseline, packetization mode 1, what every
        // app decodes, so a browser publishing picks it too and any
        // receiver's connection takes the publisher's packets as they are.
        // RTX where the other side offers it: str0m resends only so.
        config
            .codec_config()
            .add_h264(Pt::from(102), Some(Pt::from(103)), true, 0x42e01f);
        if spec.publishes.is_none() {
            // The engine does not adapt what it forwards, so a receive-only
            // connection carries no transport-wide sequence numbers or send
            // times to estimate with: only what says what the media is.
            config = config
                .clear_extension_map()
                .set_extension(1, Extension::AudioLevel)
                .set_extension(4, Extension::RtpMid)
                .set_extension(13, Extension::VideoOrientation);
        }
        let mut rtc = config.build(now);
        for (protocol, local) in &self.locals {
            let candidate = match protocol {
                Protocol::Tcp => Candidate::builder()
                    .tcp()
                    .host(*local)
                    .tcptype(TcpType::Passive)
                    .build(),
                _ => Candidate::host(*local, "udp"),
            };
            rtc.add_local_candidate(candidate.map_err(|e| bad(&e))?);
        }
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| bad(&e))?;
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        self.by_ufrag
            .insert(rtc.direct_api().local_ice_credentials().ufrag, id);
        let mut leg = Leg {
            rtc,
            spec,
            mids: Vec::new(),
            video: None,
            audio: None,
            waiting_for_keyframe: true,
            media_seen: false,
            timeout: now,
            rate: spec.paces_publisher.then(LossRate::new),
            target_bps: None,
        };
        let mut none = Vec::new();
        drain(
            id,
            &mut leg,
            now,
            &mut self.transmits,
            &mut self.events,
            Some(&mut none),
        );
        if let Some(feed) = spec.publishes {
            let old = self
                .feeds
                .entry(feed)
                .or_insert_with(FeedState::new)
                .publisher
                .replace(id);
            if let Some(old) = old {
                // The feed goes on from the new publisher: its receivers
                // and taps wait for its first keyframe.
                self.remove(old, now);
                self.feed(feed).received.clear();
            }
        }
        if let Some(feed) = spec.receives {
            self.feed(feed);
        }
        self.legs.insert(id, leg);
        let answer = serde_json::json!({
            "type": "answer",
            "sdp": own_track_ids(&answer.to_sdp_string()),
        });
        Ok((id, answer.to_string()))
    }

    fn feed(&mut self, feed: Feed) -> &mut FeedState {
        self.feeds.entry(feed).or_insert_with(FeedState::new)
    }

    /// The ICE username fragment a leg's client names in its checks.
    pub(crate) fn ufrag(&self, id: LegId) -> Option<&str> {
        self.by_ufrag
            .iter()
            .find(|(_, leg)| **leg == id)
            .map(|(ufrag, _)| ufrag.as_str())
    }

    /// Ends a leg (its client hung up, or its owner is done with it).
    pub(crate) fn close(&mut self, id: LegId, now: Instant) {
        self.remove(id, now);
    }

    /// Starts reassembling a feed's pictures for [`Self::poll_tapped`]
    /// (recording, HLS), from its next keyframe.
    pub(crate) fn tap(&mut self, feed: Feed) {
        let state = self.feed(feed);
        if state.tap.is_none() {
            state.tap = Some(TapAssembly {
                assembler: FrameAssembler::new(H264Depacketizer),
                last_timestamp: None,
            });
        }
        state.keyframes.want();
    }

    /// Stops reassembling a feed's pictures: nobody reads them any more.
    pub(crate) fn untap(&mut self, feed: Feed) {
        if let Some(state) = self.feeds.get_mut(&feed) {
            state.tap = None;
        }
    }

    /// A tap lost a picture: its feed's publisher is asked for a keyframe.
    pub(crate) fn want_keyframe(&mut self, feed: Feed) {
        self.feed(feed).keyframes.want();
    }

    fn remove(&mut self, id: LegId, now: Instant) {
        if let Some(mut leg) = self.legs.remove(&id) {
            leg.rtc.disconnect();
            drain(
                id,
                &mut leg,
                now,
                &mut self.transmits,
                &mut VecDeque::new(),
                None,
            );
        }
        self.by_remote.retain(|_, leg| *leg != id);
        self.by_ufrag.retain(|_, leg| *leg != id);
        for (feed, state) in &mut self.feeds {
            if state.publisher == Some(id) {
                state.publisher = None;
                state.received.clear();
                if state.tap.take().is_some() {
                    self.tapped.push_back(TapOutput::Ended(*feed));
                }
            }
        }
    }

    /// One datagram (or RFC 4571 frame over TCP) from `source` to the media
    /// address `local`. What a publisher sent waits for [`Self::flush`], so a
    /// burst is forwarded in one pass.
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        protocol: Protocol,
        local: SocketAddr,
        source: SocketAddr,
        datagram: &[u8],
    ) {
        let Ok(receive) = Receive::new(protocol, source, local, datagram) else {
            return;
        };
        let input = Input::Receive(now, receive);
        let id = match self.by_remote.get(&source) {
            Some(id) => *id,
            // A new address: only a STUN check naming one of our ICE
            // username fragments introduces it, and only that leg checks its
            // integrity. A spoofed datagram costs one lookup, not an HMAC per
            // leg; anything else from an unknown address is dropped.
            None => {
                let Some(&id) =
                    crate::stun::username_target(datagram).and_then(|u| self.by_ufrag.get(u))
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
            tracing::debug!("media input: {e}");
        }
        self.settle(id, now);
    }

    /// When [`Self::handle_timeout`] is next due.
    pub(crate) fn poll_timeout(&self, now: Instant) -> Instant {
        let mut deadline = self
            .legs
            .values()
            .map(|leg| leg.timeout)
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        for state in self.feeds.values() {
            if state.tap.is_some() {
                // The reassembler's own timeouts (a picture that never completes).
                deadline = deadline.min(now + TAP_POLL);
            }
            if let Some(first) = state.received.first() {
                deadline = deadline.min(first.timestamp + HOLD);
            }
            if let Some(at) = state.keyframes.next_due(state.receiver_waiting) {
                deadline = deadline.min(at);
            }
        }
        deadline
    }

    /// The connections' timers (retransmissions, reports, ICE), the
    /// reassemblers' and the held pictures'.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
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
            self.settle(id, now);
        }
        let now_us = self.micros(now);
        let feeds: Vec<Feed> = self.feeds.keys().copied().collect();
        for feed in feeds {
            let actions = match self.feeds.get_mut(&feed).and_then(|s| s.tap.as_mut()) {
                Some(tap) => tap.assembler.poll(now_us),
                None => continue,
            };
            self.on_assembled(feed, actions);
        }
    }

    /// After a batch of inputs: forwards what publishers sent (a whole
    /// picture at a time), drops the legs that were lost and passes
    /// keyframe requests on. `send` takes each receiver's datagrams as soon
    /// as they are written (and must clear them), while they are still in
    /// the cache: a picture to 300 viewers is 2 MB of datagrams.
    pub(crate) fn flush(&mut self, now: Instant, send: &mut dyn FnMut(&mut Vec<Transmit>)) {
        let feeds: Vec<Feed> = self.feeds.keys().copied().collect();
        for feed in &feeds {
            let state = &self.feeds[feed];
            if !state.received.is_empty() && !state.holding(now) {
                self.forward(*feed, now, send);
            }
        }
        for id in std::mem::take(&mut self.lost) {
            if self.legs.contains_key(&id) {
                self.events.push_back((id, LegEvent::Lost));
            }
            self.remove(id, now);
        }
        for feed in feeds {
            let waiting = self
                .legs
                .values()
                .any(|leg| leg.spec.receives == Some(feed) && leg.waits_for_keyframe());
            let Some(state) = self.feeds.get_mut(&feed) else {
                continue;
            };
            state.receiver_waiting = waiting;
            if state.keyframes.due(now, waiting) {
                self.request_keyframe(feed, now);
            }
            self.pace_publisher(feed, now);
        }
    }

    /// Tells a feed's publisher, once a report interval, what its slowest
    /// pacing receiver takes (REMB on its video). Looked at once an
    /// interval, not per flush: a live's feed has a thousand receivers.
    fn pace_publisher(&mut self, feed: Feed, now: Instant) {
        let Some(state) = self.feeds.get_mut(&feed) else {
            return;
        };
        if state.paced_at.is_some_and(|at| now < at + REPORT_INTERVAL) {
            return;
        }
        state.paced_at = Some(now);
        let target = self
            .legs
            .values()
            .filter(|leg| leg.spec.receives == Some(feed))
            .filter_map(|leg| leg.target_bps)
            .reduce(f64::min);
        if let Some(target) = target {
            // Within u64 by LossRate's bounds.
            let remb = Bitrate::bps(target as u64);
            self.ask_publisher(feed, now, |video| video.request_remb(remb));
        }
    }

    /// Puts a request on the video a feed's publisher sends (a PLI, a
    /// REMB) and drains its connection; false without such video yet.
    fn ask_publisher(&mut self, feed: Feed, now: Instant, ask: impl FnOnce(&mut StreamRx)) -> bool {
        let Some(id) = self.feeds.get(&feed).and_then(|s| s.publisher) else {
            return false;
        };
        let Some(leg) = self.legs.get_mut(&id) else {
            return false;
        };
        let Some(mid) = leg.mid(MediaKind::Video) else {
            return false;
        };
        let mut api = leg.rtc.direct_api();
        let Some(video) = api.stream_rx_by_mid(mid, None) else {
            return false;
        };
        ask(video);
        self.settle(id, now);
        true
    }

    /// Datagrams to send: the I/O layer sends and clears them.
    pub(crate) fn transmits(&mut self) -> &mut Vec<Transmit> {
        &mut self.transmits
    }

    pub(crate) fn poll_event(&mut self) -> Option<(LegId, LegEvent)> {
        self.events.pop_front()
    }

    pub(crate) fn poll_tapped(&mut self) -> Option<TapOutput> {
        self.tapped.pop_front()
    }

    /// Ends every connection (the room is closing).
    pub(crate) fn disconnect_all(&mut self, now: Instant) {
        let ids: Vec<LegId> = self.legs.keys().copied().collect();
        for id in ids {
            self.remove(id, now);
        }
    }

    fn micros(&self, now: Instant) -> i64 {
        i64::try_from(now.saturating_duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX)
    }

    /// Sends a feed's publisher a PLI; the pacer decided it is due. Without
    /// the publisher's video yet the request stays due for when it comes.
    fn request_keyframe(&mut self, feed: Feed, now: Instant) {
        let pli = |video: &mut StreamRx| video.request_keyframe(KeyframeRequestKind::Pli);
        if self.ask_publisher(feed, now, pli)
            && let Some(state) = self.feeds.get_mut(&feed)
        {
            state.keyframes.sent(now);
        }
    }

    /// Drains one leg after a change: its datagrams are queued, what it
    /// published waits for [`Self::flush`], requests are noted.
    fn settle(&mut self, id: LegId, now: Instant) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let spec = leg.spec;
        let received = spec
            .publishes
            .and_then(|feed| self.feeds.get_mut(&feed))
            .filter(|state| state.publisher == Some(id))
            .map(|state| &mut state.received);
        let wanted = drain(
            id,
            leg,
            now,
            &mut self.transmits,
            &mut self.events,
            received,
        );
        self.note(id, spec, wanted);
    }

    fn note(&mut self, id: LegId, spec: LegSpec, wanted: Vec<Wanted>) {
        for wanted in wanted {
            match wanted {
                Wanted::Keyframe => {
                    if let Some(state) = spec.receives.and_then(|f| self.feeds.get_mut(&f)) {
                        state.keyframes.want();
                    }
                }
                Wanted::Lost => self.lost.push(id),
            }
        }
    }

    /// A feed's packets since the last flush to every receiver (each
    /// written all of them, then drained once), and to its taps.
    fn forward(&mut self, feed: Feed, now: Instant, send: &mut dyn FnMut(&mut Vec<Transmit>)) {
        let Some(state) = self.feeds.get_mut(&feed) else {
            return;
        };
        let mut packets = std::mem::take(&mut state.received);
        let Some(publisher) = state.publisher.and_then(|id| self.legs.get(&id)) else {
            return;
        };
        // What each packet is, found once for all receivers.
        let described: Vec<Option<Described>> = packets
            .iter()
            .map(|packet| {
                let params = publisher
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
        let mut requests = Vec::new();
        for (id, leg) in &mut self.legs {
            if leg.spec.receives != Some(feed) || !leg.rtc.is_connected() {
                continue;
            }
            let mut wrote = false;
            for (packet, what) in packets.iter().zip(&described) {
                if let Some(what) = what {
                    wrote |= write_to_receiver(leg, packet, what);
                }
            }
            if wrote {
                // A leg that publishes too (a call's side, a video test)
                // may have media of its own in this drain: kept for its feed.
                let mut published = Vec::new();
                let sink = leg.spec.publishes.is_some().then_some(&mut published);
                let wanted = drain(*id, leg, now, &mut self.transmits, &mut self.events, sink);
                send(&mut self.transmits);
                requests.push((*id, leg.spec, wanted, published));
            }
        }
        for (id, spec, wanted, published) in requests {
            self.note(id, spec, wanted);
            if let Some(state) = spec.publishes.and_then(|f| self.feeds.get_mut(&f))
                && state.publisher == Some(id)
            {
                state.received.extend(published);
            }
        }
        if self.feeds.get(&feed).is_some_and(|s| s.tap.is_some()) {
            for (packet, what) in packets.iter().zip(&described) {
                if let Some(what) = what {
                    self.tap_packet(feed, what.kind, packet, now);
                }
            }
        }
        packets.clear();
        // The buffer goes back for the next picture (nothing arrived in
        // between: this leg's packets are only drained here and in `settle`).
        if let Some(state) = self.feeds.get_mut(&feed)
            && state.received.is_empty()
        {
            state.received = packets;
        }
    }

    fn tap_packet(
        &mut self,
        feed: Feed,
        kind: MediaKind,
        packet: &str0m::rtp::RtpPacket,
        now: Instant,
    ) {
        match kind {
            MediaKind::Audio => {
                self.tapped.push_back(TapOutput::Media(
                    feed,
                    Tapped::Audio {
                        data: packet.payload.to_vec(),
                    },
                ));
            }
            MediaKind::Video => {
                let now_us = self.micros(now);
                let Some(tap) = self.feeds.get_mut(&feed).and_then(|s| s.tap.as_mut()) else {
                    return;
                };
                let actions = tap.assembler.insert(
                    RtpPacket {
                        sequence: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        marker: packet.header.marker,
                        payload: packet.payload.to_vec(),
                    },
                    now_us,
                );
                self.on_assembled(feed, actions);
            }
        }
    }

    fn on_assembled(&mut self, feed: Feed, actions: Vec<AssemblerAction>) {
        for action in actions {
            match action {
                AssemblerAction::Frame(frame) => {
                    let Some(tap) = self.feeds.get_mut(&feed).and_then(|s| s.tap.as_mut()) else {
                        return;
                    };
                    let duration = picture_duration(&mut tap.last_timestamp, frame.rtp_timestamp);
                    self.tapped.push_back(TapOutput::Media(
                        feed,
                        Tapped::Video {
                            data: frame.data,
                            duration,
                        },
                    ));
                }
                AssemblerAction::RequestKeyframe => self.want_keyframe(feed),
                // str0m asks for retransmissions itself.
                AssemblerAction::Nack(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use str0m::bwe::BweKind;
    use str0m::change::SdpAnswer;
    use str0m::media::Direction;

    use super::*;

    /// The engine's one media address in these tests (nothing is sent: the
    /// datagrams go from hand to hand).
    const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5000);

    /// A client of the engine: str0m as an app uses WebRTC, sending and
    /// receiving sound and pictures.
    struct Client {
        rtc: Rtc,
        addr: SocketAddr,
        video: Mid,
        /// The pictures' packets received: (sequence number, first payload byte).
        received: Vec<(u64, u8)>,
        keyframe_requests: usize,
        /// What the engine asked it to send at most (REMB), bits per second.
        remb: Vec<u64>,
        timeout: Instant,
        next_number: u64,
    }

    impl Client {
        /// Offers sound and pictures both ways; the engine answers.
        fn join(engine: &mut Engine, port: u16, spec: LegSpec, now: Instant) -> (LegId, Self) {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), port);
            let mut config = Rtc::builder()
                .set_rtp_mode(true)
                .clear_codecs()
                .enable_opus(true, false);
            config
                .codec_config()
                .add_h264(Pt::from(102), Some(Pt::from(103)), true, 0x42e01f);
            let mut rtc = config.build(now);
            rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
            let mut sdp = rtc.sdp_api();
            sdp.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
            let video = sdp.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
            let (offer, pending) = sdp.apply().unwrap();
            let offer = serde_json::to_string(&offer).unwrap();
            let (id, answer) = engine.open(&offer, spec, now).unwrap();
            let answer: SdpAnswer = serde_json::from_str(&answer).unwrap();
            rtc.sdp_api().accept_answer(pending, answer).unwrap();
            let client = Self {
                rtc,
                addr,
                video,
                received: Vec::new(),
                keyframe_requests: 0,
                remb: Vec::new(),
                timeout: now,
                next_number: 1,
            };
            (id, client)
        }

        /// Sends a one-packet picture: an IDR slice, or a P slice.
        fn send_picture(&mut self, keyframe: bool, now: Instant) {
            let payload: &[u8] = if keyframe {
                &[0x65, 0x88, 0x84, 0x00]
            } else {
                &[0x41, 0x9a, 0x02, 0x00]
            };
            let number = self.next_number;
            self.next_number += 1;
            let mut api = self.rtc.direct_api();
            let stream = api.stream_tx_by_mid(self.video, None).unwrap();
            stream.write_rtp(
                RtpWrite::new(
                    Pt::from(102),
                    SeqNo::from(number),
                    u32::try_from(number * 3000).unwrap(),
                    now,
                    payload,
                )
                .marker(true)
                .nackable(true),
            );
        }

        /// The first payload byte of each picture packet received.
        fn pictures(&self) -> Vec<u8> {
            self.received.iter().map(|(_, first)| *first).collect()
        }
    }

    /// The engine and its clients, with datagrams passed by hand on a
    /// simulated clock.
    struct Net {
        now: Instant,
        engine: Engine,
        clients: Vec<Client>,
        events: Vec<(LegId, LegEvent)>,
        /// Clients whose datagrams are lost (a dropped network).
        cut: Vec<usize>,
        /// A client whose path carries so many datagrams a second at most:
        /// the rest is lost, as a full queue drops them.
        capped: Option<(usize, f64)>,
        /// Datagrams that path may still carry now (a token bucket).
        allowance: f64,
        allowance_at: Instant,
    }

    impl Net {
        fn new() -> Self {
            let now = Instant::now();
            Self {
                now,
                engine: Engine::new(vec![(Protocol::Udp, SERVER)], now),
                clients: Vec::new(),
                events: Vec::new(),
                cut: Vec::new(),
                capped: None,
                allowance: 0.0,
                allowance_at: now,
            }
        }

        fn join(&mut self, spec: LegSpec) -> LegId {
            let port = 6000 + u16::try_from(self.clients.len()).unwrap();
            let (id, client) = Client::join(&mut self.engine, port, spec, self.now);
            self.clients.push(client);
            id
        }

        /// Moves datagrams until none is left in flight.
        fn settle(&mut self) {
            loop {
                let mut moved = false;
                for (index, client) in self.clients.iter_mut().enumerate() {
                    while let Ok(output) = client.rtc.poll_output() {
                        match output {
                            Output::Timeout(at) => {
                                client.timeout = at;
                                break;
                            }
                            Output::Transmit(t) => {
                                moved = true;
                                if !self.cut.contains(&index) {
                                    self.engine.receive(
                                        self.now,
                                        t.proto,
                                        t.destination,
                                        t.source,
                                        &t.contents,
                                    );
                                }
                            }
                            Output::Event(Event::RtpPacket(packet)) => {
                                if packet.header.payload_type == Pt::from(102) {
                                    client.received.push((*packet.seq_no, packet.payload[0]));
                                }
                            }
                            Output::Event(Event::KeyframeRequest(_)) => {
                                client.keyframe_requests += 1;
                            }
                            Output::Event(Event::EgressBitrateEstimate(BweKind::Remb {
                                estimate,
                                ..
                            })) => client.remb.push(estimate.as_u64()),
                            Output::Event(_) => {}
                        }
                    }
                }
                let mut transmits = Vec::new();
                self.engine
                    .flush(self.now, &mut |out| transmits.append(out));
                transmits.append(self.engine.transmits());
                for t in transmits {
                    moved = true;
                    let Some(index) = self.clients.iter().position(|c| c.addr == t.destination)
                    else {
                        continue;
                    };
                    if self.cut.contains(&index) {
                        continue;
                    }
                    if let Some((capped, per_second)) = self.capped
                        && capped == index
                    {
                        let elapsed = self.now.duration_since(self.allowance_at);
                        self.allowance =
                            (self.allowance + elapsed.as_secs_f64() * per_second).min(5.0);
                        self.allowance_at = self.now;
                        if self.allowance < 1.0 {
                            continue;
                        }
                        self.allowance -= 1.0;
                    }
                    let receive =
                        Receive::new(Protocol::Udp, t.source, t.destination, &t.contents).unwrap();
                    let _ = self.clients[index]
                        .rtc
                        .handle_input(Input::Receive(self.now, receive));
                }
                while let Some(event) = self.engine.poll_event() {
                    self.events.push(event);
                }
                if !moved {
                    return;
                }
            }
        }

        /// Runs the clock forward `span`, from timeout to timeout.
        fn run(&mut self, span: Duration) {
            let until = self.now + span;
            loop {
                self.settle();
                let next = self
                    .clients
                    .iter()
                    .map(|c| c.timeout)
                    .chain([self.engine.poll_timeout(self.now), until])
                    .min()
                    .unwrap()
                    .max(self.now + Duration::from_millis(1));
                if next > until {
                    return;
                }
                self.now = next;
                for client in &mut self.clients {
                    if client.timeout <= self.now {
                        let _ = client.rtc.handle_input(Input::Timeout(self.now));
                    }
                }
                self.engine.handle_timeout(self.now);
            }
        }

        fn send_picture(&mut self, client: usize, keyframe: bool) {
            let now = self.now;
            self.clients[client].send_picture(keyframe, now);
            self.run(Duration::from_millis(33));
        }

        fn saw(&self, leg: LegId, event: LegEvent) -> bool {
            self.events.contains(&(leg, event))
        }
    }

    #[test]
    fn the_answer_names_its_tracks_apart_from_the_offers() {
        let sdp = "v=0\r\na=msid:s1 t1\r\na=ssrc:7 cname:c\r\na=ssrc:7 msid:s1 t1\r\na=mid:0\r\n";
        assert_eq!(
            own_track_ids(sdp),
            "v=0\r\na=msid:s1 t1-sfu\r\na=ssrc:7 cname:c\r\na=ssrc:7 msid:s1 t1-sfu\r\na=mid:0\r\n"
        );
    }

    const IDR: u8 = 0x65;
    const P: u8 = 0x41;

    #[test]
    fn a_calls_sides_see_each_other_from_a_keyframe_their_requests_reach_the_other() {
        let mut net = Net::new();
        let caller = net.join(LegSpec {
            publishes: Some(Feed(0)),
            receives: Some(Feed(1)),
            paces_publisher: true,
        });
        let callee = net.join(LegSpec {
            publishes: Some(Feed(1)),
            receives: Some(Feed(0)),
            paces_publisher: true,
        });
        // The first requests go out as DTLS completes and may come before
        // the client can read them: the pacer repeats them a second later.
        net.run(Duration::from_millis(2500));
        assert!(net.saw(caller, LegEvent::Connected) && net.saw(callee, LegEvent::Connected));
        // Each side, connected and waiting, asked the other for a keyframe.
        assert!(net.clients[0].keyframe_requests >= 1, "caller asked");
        assert!(net.clients[1].keyframe_requests >= 1, "callee asked");
        // A picture before the first keyframe is not passed on.
        net.send_picture(0, false);
        assert!(net.clients[1].received.is_empty());
        assert!(net.saw(caller, LegEvent::MediaArrived));
        net.send_picture(0, true);
        net.send_picture(0, false);
        assert_eq!(net.clients[1].pictures(), [IDR, P]);
        // Numbered from 1 on the callee's own connection.
        let numbers: Vec<u64> = net.clients[1].received.iter().map(|r| r.0).collect();
        assert_eq!(numbers, [1, 2]);
        // The other way, and nothing comes back to its sender.
        net.send_picture(1, true);
        assert_eq!(net.clients[0].pictures(), [IDR]);
        assert_eq!(net.clients[1].pictures(), [IDR, P]);
    }

    /// A call whose callee's path carries `per_second` datagrams at most
    /// (none: a clean path) for 6 s of pictures: what the caller is asked
    /// to send at most.
    fn caller_asked_for(per_second: Option<f64>) -> Vec<u64> {
        let mut net = Net::new();
        for (own, other) in [(0, 1), (1, 0)] {
            net.join(LegSpec {
                publishes: Some(Feed(own)),
                receives: Some(Feed(other)),
                paces_publisher: true,
            });
        }
        net.run(Duration::from_millis(2500));
        net.capped = per_second.map(|rate| (1, rate));
        net.allowance_at = net.now;
        for number in 0..180 {
            net.send_picture(0, number % 60 == 0);
        }
        net.clients[0].remb.clone()
    }

    #[test]
    fn a_callee_on_a_path_too_slow_slows_its_caller_and_a_clean_one_does_not() {
        let clean = caller_asked_for(None);
        // Pictures alone are 30 datagrams a second; resends go on top.
        let lossy = caller_asked_for(Some(20.0));
        let most = crate::feedback::MAX_BPS as u64;
        assert!(clean.iter().all(|bps| *bps == most), "{clean:?}");
        // What got through of these small pictures is far under the floor.
        let least = crate::feedback::MIN_BPS as u64;
        assert_eq!(lossy.last(), Some(&least), "{lossy:?}");
    }

    #[test]
    fn a_video_tests_pictures_come_back_to_their_sender() {
        let mut net = Net::new();
        let echo = net.join(LegSpec {
            publishes: Some(Feed(0)),
            receives: Some(Feed(0)),
            paces_publisher: true,
        });
        net.run(Duration::from_secs(1));
        assert!(net.saw(echo, LegEvent::Connected));
        net.send_picture(0, true);
        net.send_picture(0, false);
        assert_eq!(net.clients[0].pictures(), [IDR, P]);
    }

    #[test]
    fn a_tap_gets_whole_pictures_and_ends_when_its_publisher_leaves() {
        let mut net = Net::new();
        let publisher = net.join(LegSpec {
            publishes: Some(Feed(0)),
            receives: None,
            paces_publisher: false,
        });
        net.run(Duration::from_secs(1));
        net.engine.tap(Feed(0));
        net.run(Duration::from_millis(400));
        assert!(net.clients[0].keyframe_requests >= 1, "the tap asked");
        net.send_picture(0, true);
        let mut tapped = Vec::new();
        while let Some(output) = net.engine.poll_tapped() {
            tapped.push(output);
        }
        assert!(
            matches!(&tapped[..], [TapOutput::Media(Feed(0), Tapped::Video { data, .. })] if data.ends_with(&[IDR, 0x88, 0x84, 0x00])),
            "{tapped:?}"
        );
        net.engine.close(publisher, net.now);
        assert!(matches!(
            net.engine.poll_tapped(),
            Some(TapOutput::Ended(Feed(0)))
        ));
    }

    #[test]
    fn a_client_gone_silent_is_reported_lost_and_its_leg_removed() {
        let mut net = Net::new();
        let viewer = net.join(LegSpec {
            publishes: None,
            receives: Some(Feed(0)),
            paces_publisher: false,
        });
        net.run(Duration::from_secs(1));
        assert!(net.saw(viewer, LegEvent::Connected));
        net.cut.push(0);
        net.run(Duration::from_secs(60));
        assert!(net.saw(viewer, LegEvent::Lost), "{:?}", net.events);
        assert!(net.engine.legs.is_empty());
    }
}
