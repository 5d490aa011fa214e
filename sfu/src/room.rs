//! A room's task: the engine driven by its sockets, the clock and its
//! owner's requests; leg events and tapped media go out on channels.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::net::Protocol;

use tokio::sync::{mpsc, oneshot};

use crate::SfuError;
use crate::engine::{Engine, Feed, LegEvent, LegId, LegSpec, TapOutput, Tapped};
use crate::network::{self, Arrived, MediaNetwork};
use crate::udp::{self, Inbound, Socket};

/// A tap's queue: deep, since a lost picture spoils a recording or an HLS
/// segment until the next keyframe, and a disk stalls longer than a network leg.
const TAP_QUEUE: usize = 2048;

enum Command {
    Open {
        offer: String,
        spec: LegSpec,
        events: mpsc::UnboundedSender<(LegId, LegEvent)>,
        reply: oneshot::Sender<Result<(LegId, String), SfuError>>,
    },
    Close(LegId),
    Tap(Feed, mpsc::Sender<Tapped>),
}

/// A room's media: its task ends, and every connection with it, when the
/// last handle is dropped.
pub struct Room {
    commands: mpsc::UnboundedSender<Command>,
    /// Where taps' keyframe requests go: a channel of their own, so a tap
    /// outliving the room does not keep its task running.
    asks: mpsc::Sender<Feed>,
}

/// A feed's whole pictures and sound, until its publisher leaves.
pub struct Tap {
    pub media: mpsc::Receiver<Tapped>,
    pub keyframes: KeyframeAsk,
}

/// Asks a tapped feed's publisher for a keyframe (the tap lost a picture).
#[derive(Clone)]
pub struct KeyframeAsk {
    feed: Feed,
    asks: mpsc::Sender<Feed>,
}

impl KeyframeAsk {
    pub fn ask(&self) {
        // A full queue already holds a request.
        let _ = self.asks.try_send(self.feed);
    }
}

impl Room {
    /// Binds one UDP socket per media address (unless the network shares
    /// one port among rooms) and starts the room's task on the current
    /// runtime.
    pub fn start(network: &MediaNetwork) -> Result<Self, SfuError> {
        let mut own = Vec::new();
        if network.shared_udp().is_empty() {
            for address in network.addresses() {
                let bind = SocketAddr::new(address.bind, 0);
                let socket = Socket::bind(bind, address.advertised).map_err(|e| {
                    SfuError::Setup(format!("media socket on {}: {e}", address.bind))
                })?;
                own.push(Arc::new(socket));
            }
        }
        let (commands, inbox) = mpsc::unbounded_channel();
        let (asks, asked) = mpsc::channel(16);
        tokio::spawn(run(network.clone(), own, inbox, asked));
        Ok(Self { commands, asks })
    }

    /// Answers a client's offer; its events go to `events` with its ID.
    pub async fn open(
        &self,
        offer: &str,
        spec: LegSpec,
        events: mpsc::UnboundedSender<(LegId, LegEvent)>,
    ) -> Result<(LegId, String), SfuError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Open {
                offer: offer.to_owned(),
                spec,
                events,
                reply,
            })
            .map_err(|_| SfuError::Closed)?;
        answer.await.map_err(|_| SfuError::Closed)?
    }

    pub fn close(&self, leg: LegId) {
        let _ = self.commands.send(Command::Close(leg));
    }

    /// A feed's pictures and sound from its next keyframe (asked for now).
    pub fn tap(&self, feed: Feed) -> Tap {
        let (input, media) = mpsc::channel(TAP_QUEUE);
        let _ = self.commands.send(Command::Tap(feed, input));
        Tap {
            media,
            keyframes: KeyframeAsk {
                feed,
                asks: self.asks.clone(),
            },
        }
    }
}

/// The task's state beside the engine: where each leg's events and each
/// feed's tapped media go.
struct Owners {
    events: HashMap<LegId, mpsc::UnboundedSender<(LegId, LegEvent)>>,
    taps: HashMap<Feed, Vec<mpsc::Sender<Tapped>>>,
    network: MediaNetwork,
    /// Where the shared ports send what a leg of this room is sent.
    inbox: mpsc::Sender<Arrived>,
    /// Each leg's ICE username fragment, routed on the shared ports.
    ufrags: HashMap<LegId, String>,
}

impl Owners {
    fn command(&mut self, engine: &mut Engine, command: Command, now: Instant) {
        match command {
            Command::Open {
                offer,
                spec,
                events,
                reply,
            } => {
                let opened = engine.open(&offer, spec, now);
                if let Ok((id, _)) = &opened {
                    self.events.insert(*id, events);
                    if let Some(ufrag) = engine.ufrag(*id) {
                        self.network.route(ufrag, self.inbox.clone());
                        self.ufrags.insert(*id, ufrag.to_owned());
                    }
                }
                let _ = reply.send(opened);
            }
            Command::Close(id) => {
                engine.close(id, now);
                self.events.remove(&id);
                self.forget(id);
            }
            Command::Tap(feed, input) => {
                self.taps.entry(feed).or_default().push(input);
                engine.tap(feed);
            }
        }
    }

    fn forget(&mut self, id: LegId) {
        if let Some(ufrag) = self.ufrags.remove(&id) {
            self.network.forget(&ufrag);
        }
    }

    /// Hands out what the engine produced: events to leg owners, media to taps.
    fn deliver(&mut self, engine: &mut Engine) {
        while let Some((id, event)) = engine.poll_event() {
            if let Some(owner) = self.events.get(&id) {
                let _ = owner.send((id, event));
            }
            if event == LegEvent::Lost {
                self.events.remove(&id);
                self.forget(id);
            }
        }
        while let Some(output) = engine.poll_tapped() {
            match output {
                TapOutput::Media(feed, media) => {
                    let Some(taps) = self.taps.get_mut(&feed) else {
                        continue;
                    };
                    taps.retain(|tap| !tap.is_closed());
                    if taps.is_empty() {
                        self.taps.remove(&feed);
                        engine.untap(feed);
                        continue;
                    }
                    // A full queue loses this piece for that tap only (it
                    // asks for a keyframe when it notices).
                    if let Some((last, others)) = taps.split_last() {
                        for tap in others {
                            let _ = tap.try_send(media.clone());
                        }
                        let _ = last.try_send(media);
                    }
                }
                // Dropping the senders ends the taps' queues.
                TapOutput::Ended(feed) => {
                    self.taps.remove(&feed);
                }
            }
        }
    }
}

async fn run(
    network: MediaNetwork,
    own: Vec<Arc<Socket>>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut asks: mpsc::Receiver<Feed>,
) {
    // The room's UDP addresses: its own sockets, or the shared ones.
    let sending: Vec<Arc<Socket>> = if own.is_empty() {
        network.shared_udp().to_vec()
    } else {
        own.clone()
    };
    let mut locals: Vec<(Protocol, SocketAddr)> = sending
        .iter()
        .map(|socket| (Protocol::Udp, socket.advertised))
        .collect();
    locals.extend(network.tcp_addresses().iter().map(|a| (Protocol::Tcp, *a)));
    let mut engine = Engine::new(locals, Instant::now());
    let (inbox, mut arrivals) = network::room_inbox();
    let mut owners = Owners {
        events: HashMap::new(),
        taps: HashMap::new(),
        network: network.clone(),
        inbox,
        ufrags: HashMap::new(),
    };
    let mut inbound = Inbound::new(&own);
    let mut scratch = Vec::new();
    let tcp = |t: &str0m::net::Transmit| network.send_tcp(t.source, t.destination, &t.contents);
    loop {
        let deadline = engine.poll_timeout(Instant::now());
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                None => break,
                Some(command) => owners.command(&mut engine, command, Instant::now()),
            },
            Some(feed) = asks.recv() => engine.want_keyframe(feed),
            () = udp::readable(&own) => {
                let now = Instant::now();
                udp::receive_waiting(&own, &mut inbound, |local, source, datagram| {
                    engine.receive(now, Protocol::Udp, local, source, datagram);
                });
            }
            Some(first) = arrivals.recv() => {
                let now = Instant::now();
                let mut arrived = Some(first);
                while let Some(a) = arrived {
                    engine.receive(now, a.protocol, a.local, a.source, &a.data);
                    arrived = arrivals.try_recv().ok();
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => engine.handle_timeout(Instant::now()),
        }
        udp::send_all(&sending, engine.transmits(), &mut scratch, &tcp);
        engine.flush(Instant::now(), &mut |out| {
            udp::send_all(&sending, out, &mut scratch, &tcp);
        });
        udp::send_all(&sending, engine.transmits(), &mut scratch, &tcp);
        owners.deliver(&mut engine);
    }
    engine.disconnect_all(Instant::now());
    udp::send_all(&sending, engine.transmits(), &mut scratch, &tcp);
    for ufrag in owners.ufrags.values() {
        network.forget(ufrag);
    }
}
