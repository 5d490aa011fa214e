//! A room's task: the engine driven by its sockets, the clock and its
//! owner's requests; leg events and tapped media go out on channels.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::SfuError;
use crate::engine::{Engine, Feed, LegEvent, LegId, LegSpec, TapOutput, Tapped};
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
    /// Binds one UDP socket per address (the ICE host candidates) and starts
    /// the room's task on the current runtime.
    pub fn start(bind: &[IpAddr]) -> Result<Self, SfuError> {
        let mut sockets = Vec::new();
        for ip in bind {
            if ip.is_unspecified() {
                return Err(SfuError::Setup(format!(
                    "media_ips must name the addresses clients reach, not {ip}"
                )));
            }
            let socket = Socket::bind(*ip)
                .map_err(|e| SfuError::Setup(format!("media socket on {ip}: {e}")))?;
            sockets.push(socket);
        }
        if sockets.is_empty() {
            return Err(SfuError::Setup("no media address to bind".into()));
        }
        let (commands, inbox) = mpsc::unbounded_channel();
        let (asks, asked) = mpsc::channel(16);
        tokio::spawn(run(sockets, inbox, asked));
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
                }
                let _ = reply.send(opened);
            }
            Command::Close(id) => {
                engine.close(id, now);
                self.events.remove(&id);
            }
            Command::Tap(feed, input) => {
                self.taps.entry(feed).or_default().push(input);
                engine.tap(feed);
            }
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
    sockets: Vec<Socket>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut asks: mpsc::Receiver<Feed>,
) {
    let locals = sockets.iter().map(|s| s.local).collect();
    let mut engine = Engine::new(locals, Instant::now());
    let mut owners = Owners {
        events: HashMap::new(),
        taps: HashMap::new(),
    };
    let mut inbound = Inbound::new(&sockets);
    let mut scratch = Vec::new();
    loop {
        let deadline = engine.poll_timeout(Instant::now());
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                None => break,
                Some(command) => owners.command(&mut engine, command, Instant::now()),
            },
            Some(feed) = asks.recv() => engine.want_keyframe(feed),
            () = udp::readable(&sockets) => {
                let now = Instant::now();
                udp::receive_waiting(&sockets, &mut inbound, |local, source, datagram| {
                    engine.receive(now, local, source, datagram);
                });
            }
            _ = tokio::time::sleep_until(deadline.into()) => engine.handle_timeout(Instant::now()),
        }
        udp::send_all(&sockets, engine.transmits(), &mut scratch);
        engine.flush(Instant::now(), &mut |out| {
            udp::send_all(&sockets, out, &mut scratch);
        });
        udp::send_all(&sockets, engine.transmits(), &mut scratch);
        owners.deliver(&mut engine);
    }
    engine.disconnect_all(Instant::now());
    udp::send_all(&sockets, engine.transmits(), &mut scratch);
}
