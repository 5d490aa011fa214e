//! Where the server's media is reached, shared by all rooms: the addresses
//! clients are told (a public address before a 1:1 NAT), and the
//! firewall-friendly paths, one UDP port for every room and ICE over TCP
//! (RFC 6544 passive candidates, RFC 4571 framing) on one port.
//!
//! A room with its own sockets reads them itself. What arrives on a shared
//! port is routed here: a new remote address or TCP connection is bound to
//! the room whose leg its first STUN check names (by ICE username
//! fragment), and everything after it from there goes to that room.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use str0m::net::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::SfuError;
use crate::stun::username_target;
use crate::udp::{self, Inbound, Socket};

/// One address media is carried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaAddress {
    /// What the sockets bind: an address of this machine.
    pub bind: IpAddr,
    /// What clients are told (ICE candidates): `bind` itself, or the public
    /// address a 1:1 NAT maps to it, port for port.
    pub advertised: IpAddr,
}

/// Where the media engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub addresses: Vec<MediaAddress>,
    /// One UDP port for every room (a firewall opens one port); without it
    /// each room binds a free port of its own, which costs no routing.
    pub udp_port: Option<u16>,
    /// ICE over TCP on this port, for clients whose network drops UDP.
    pub tcp_port: Option<u16>,
}

impl NetworkConfig {
    /// Media on these addresses, as clients reach them, a UDP port per room.
    pub fn direct(ips: &[IpAddr]) -> Self {
        Self {
            addresses: ips
                .iter()
                .map(|ip| MediaAddress {
                    bind: *ip,
                    advertised: *ip,
                })
                .collect(),
            udp_port: None,
            tcp_port: None,
        }
    }
}

/// A datagram (or a TCP frame) from a shared port, for a room.
pub(crate) struct Arrived {
    pub protocol: Protocol,
    /// The advertised address it came to.
    pub local: SocketAddr,
    pub source: SocketAddr,
    pub data: Vec<u8>,
}

/// Datagrams waiting for a room beyond this are dropped, as a full socket
/// buffer would.
const ROOM_QUEUE: usize = 4096;

/// A TCP connection's frames waiting to be written.
const TCP_QUEUE: usize = 1024;

/// A TCP connection must name a leg within this, or it is closed.
const TCP_FIRST_FRAME: Duration = Duration::from_secs(10);

/// TCP connections from one address that have not named a leg yet, beyond
/// which more are closed at once: a client needs one per candidate pair,
/// a flood of silent connections would hold a descriptor each.
const UNNAMED_PER_ADDRESS: usize = 8;

/// A path on a shared port: (the advertised local address, the remote one).
type Path = (SocketAddr, SocketAddr);

/// Where the frames and datagrams of shared ports go.
#[derive(Default)]
struct Routes {
    /// Each open leg's room, by the leg's ICE username fragment.
    rooms: HashMap<String, mpsc::Sender<Arrived>>,
    /// Remote addresses on the shared UDP sockets, bound to a leg's room.
    udp: HashMap<Path, (String, mpsc::Sender<Arrived>)>,
    /// Each TCP connection's writer, by (advertised local, remote) address.
    tcp: HashMap<Path, (String, mpsc::Sender<Vec<u8>>)>,
}

struct Shared {
    addresses: Vec<MediaAddress>,
    /// The shared UDP sockets (single-port mode).
    udp: Vec<Arc<Socket>>,
    /// The advertised addresses of the TCP listeners.
    tcp: Vec<SocketAddr>,
    routes: Mutex<Routes>,
    /// TCP connections per remote address that have not named a leg yet.
    unnamed: Mutex<HashMap<IpAddr, usize>>,
    /// The shared ports' readers, ended by [`MediaNetwork::stop`].
    readers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The server's media network: cheap to clone, one per server.
#[derive(Clone)]
pub struct MediaNetwork {
    shared: Arc<Shared>,
}

impl MediaNetwork {
    /// Binds the shared ports (if any) and starts reading them on the
    /// current runtime.
    pub async fn start(config: NetworkConfig) -> Result<Self, SfuError> {
        if config.addresses.is_empty() {
            return Err(SfuError::Setup("no media address to bind".into()));
        }
        for address in &config.addresses {
            if address.bind.is_unspecified() || address.advertised.is_unspecified() {
                return Err(SfuError::Setup(format!(
                    "media addresses must name what clients reach, not {}",
                    address.bind
                )));
            }
        }
        let mut udp_sockets = Vec::new();
        if let Some(port) = config.udp_port {
            for address in &config.addresses {
                let socket = Socket::bind(SocketAddr::new(address.bind, port), address.advertised)
                    .map_err(|e| {
                        SfuError::Setup(format!("media UDP port {}:{port}: {e}", address.bind))
                    })?;
                udp_sockets.push(Arc::new(socket));
            }
        }
        let mut listeners = Vec::new();
        if let Some(port) = config.tcp_port {
            for address in &config.addresses {
                let listener = TcpListener::bind(SocketAddr::new(address.bind, port))
                    .await
                    .map_err(|e| {
                        SfuError::Setup(format!("media TCP port {}:{port}: {e}", address.bind))
                    })?;
                let port = listener
                    .local_addr()
                    .map_err(|e| SfuError::Setup(e.to_string()))?;
                listeners.push((listener, SocketAddr::new(address.advertised, port.port())));
            }
        }
        let shared = Arc::new(Shared {
            addresses: config.addresses,
            udp: udp_sockets,
            tcp: listeners
                .iter()
                .map(|(_, advertised)| *advertised)
                .collect(),
            routes: Mutex::default(),
            unnamed: Mutex::default(),
            readers: Mutex::default(),
        });
        let mut readers = Vec::new();
        if !shared.udp.is_empty() {
            readers.push(tokio::spawn(read_shared_udp(Arc::clone(&shared))));
        }
        for (listener, advertised) in listeners {
            readers.push(tokio::spawn(accept_tcp(
                listener,
                advertised,
                Arc::clone(&shared),
            )));
        }
        *shared
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = readers;
        Ok(Self { shared })
    }

    /// Stops reading the shared ports and closes the TCP listeners (the
    /// server is stopping; its rooms have ended).
    pub fn stop(&self) {
        let readers = std::mem::take(
            &mut *self
                .shared
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        readers.iter().for_each(tokio::task::JoinHandle::abort);
        let mut routes = self.routes();
        routes.rooms.clear();
        routes.udp.clear();
        routes.tcp.clear();
    }

    pub(crate) fn addresses(&self) -> &[MediaAddress] {
        &self.shared.addresses
    }

    /// The shared UDP sockets; empty when each room binds its own.
    pub(crate) fn shared_udp(&self) -> &[Arc<Socket>] {
        &self.shared.udp
    }

    /// The advertised addresses taking ICE over TCP.
    pub(crate) fn tcp_addresses(&self) -> &[SocketAddr] {
        &self.shared.tcp
    }

    /// What names `ufrag` on a shared port goes to `room`.
    pub(crate) fn route(&self, ufrag: &str, room: mpsc::Sender<Arrived>) {
        self.routes().rooms.insert(ufrag.to_owned(), room);
    }

    /// The leg of `ufrag` is gone: its addresses and connections with it.
    pub(crate) fn forget(&self, ufrag: &str) {
        let mut routes = self.routes();
        routes.rooms.remove(ufrag);
        routes.udp.retain(|_, (owner, _)| owner != ufrag);
        // Dropping a writer ends its connection.
        routes.tcp.retain(|_, (owner, _)| owner != ufrag);
    }

    /// Sends a frame on the TCP connection between `local` and `remote`.
    pub(crate) fn send_tcp(&self, local: SocketAddr, remote: SocketAddr, frame: &[u8]) {
        let writer = self
            .routes()
            .tcp
            .get(&(local, remote))
            .map(|(_, writer)| writer.clone());
        // A full queue drops the frame, as a congested path would.
        if let Some(writer) = writer {
            let _ = writer.try_send(frame.to_vec());
        }
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.shared.routes()
    }
}

impl Shared {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The room a datagram from `source` to `local` belongs to: known by its
    /// address, or named by the STUN check it is.
    fn udp_room(
        &self,
        local: SocketAddr,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Option<mpsc::Sender<Arrived>> {
        let mut routes = self.routes();
        if let Some((_, room)) = routes.udp.get(&(local, source)) {
            return Some(room.clone());
        }
        let ufrag = username_target(datagram)?;
        let room = routes.rooms.get(ufrag)?.clone();
        routes
            .udp
            .insert((local, source), (ufrag.to_owned(), room.clone()));
        Some(room)
    }
}

async fn read_shared_udp(shared: Arc<Shared>) {
    let mut inbound = Inbound::new(&shared.udp);
    loop {
        udp::readable(&shared.udp).await;
        udp::receive_waiting(&shared.udp, &mut inbound, |local, source, datagram| {
            let Some(room) = shared.udp_room(local, source, datagram) else {
                return;
            };
            let arrived = Arrived {
                protocol: Protocol::Udp,
                local,
                source,
                data: datagram.to_vec(),
            };
            if let Err(mpsc::error::TrySendError::Closed(_)) = room.try_send(arrived) {
                shared.routes().udp.remove(&(local, source));
            }
        });
    }
}

async fn accept_tcp(listener: TcpListener, advertised: SocketAddr, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                // Dropping the stream closes it.
                if let Some(unnamed) = Unnamed::count(&shared, remote.ip()) {
                    tokio::spawn(serve_tcp(
                        stream,
                        advertised,
                        remote,
                        Arc::clone(&shared),
                        unnamed,
                    ));
                }
            }
            Err(e) => {
                tracing::debug!("media TCP accept: {e}");
                // Out of descriptors: let some close before trying again.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One TCP connection that has not named a leg yet, counted against its
/// address until it does or closes.
struct Unnamed {
    shared: Arc<Shared>,
    from: IpAddr,
}

impl Unnamed {
    /// Counted, or `None` when its address has too many already.
    fn count(shared: &Arc<Shared>, from: IpAddr) -> Option<Self> {
        let mut unnamed = shared
            .unnamed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = unnamed.entry(from).or_default();
        if *count >= UNNAMED_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(Self {
            shared: Arc::clone(shared),
            from,
        })
    }
}

impl Drop for Unnamed {
    fn drop(&mut self) {
        let mut unnamed = self
            .shared
            .unnamed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = unnamed.get_mut(&self.from) {
            *count -= 1;
            if *count == 0 {
                unnamed.remove(&self.from);
            }
        }
    }
}

/// One RFC 4571 frame: a 16-bit length, then that many bytes.
async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let length = stream.read_u16().await?;
    let mut frame = vec![0; usize::from(length)];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

/// One client's ICE-TCP connection: bound to the room its first frame (a
/// STUN check) names, then carrying that leg's frames both ways.
async fn serve_tcp(
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    shared: Arc<Shared>,
    unnamed: Unnamed,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let Ok(Ok(first)) = tokio::time::timeout(TCP_FIRST_FRAME, read_frame(&mut reader)).await else {
        return;
    };
    drop(unnamed);
    let Some(ufrag) = username_target(&first).map(str::to_owned) else {
        return;
    };
    let (frames, mut outgoing) = mpsc::channel::<Vec<u8>>(TCP_QUEUE);
    let Some(room) = ({
        let mut routes = shared.routes();
        let room = routes.rooms.get(&ufrag).cloned();
        if room.is_some() {
            routes.tcp.insert((local, remote), (ufrag.clone(), frames));
        }
        room
    }) else {
        return;
    };
    tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            let Ok(length) = u16::try_from(frame.len()) else {
                continue;
            };
            let mut framed = Vec::with_capacity(frame.len() + 2);
            framed.extend_from_slice(&length.to_be_bytes());
            framed.extend_from_slice(&frame);
            if writer.write_all(&framed).await.is_err() {
                break;
            }
        }
    });
    let mut data = first;
    loop {
        let arrived = Arrived {
            protocol: Protocol::Tcp,
            local,
            source: remote,
            data,
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = room.try_send(arrived) {
            break;
        }
        match read_frame(&mut reader).await {
            Ok(frame) => data = frame,
            Err(_) => break,
        }
    }
    shared.routes().tcp.remove(&(local, remote));
}

/// A room's inbox for what shared ports bring it.
pub(crate) fn room_inbox() -> (mpsc::Sender<Arrived>, mpsc::Receiver<Arrived>) {
    mpsc::channel(ROOM_QUEUE)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::io::AsyncReadExt;

    use super::*;

    /// Whether the server closed `stream` (EOF or reset) within a moment.
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut byte = [0];
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await {
            Ok(Ok(0) | Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    #[tokio::test]
    async fn silent_tcp_connections_from_one_address_are_capped() {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let network = MediaNetwork::start(NetworkConfig {
            tcp_port: Some(0),
            ..NetworkConfig::direct(&[loopback])
        })
        .await
        .unwrap();
        let port = network.tcp_addresses()[0];
        let mut held = Vec::new();
        for _ in 0..UNNAMED_PER_ADDRESS {
            held.push(TcpStream::connect(port).await.unwrap());
        }
        // One more from the same address is closed at once; those within
        // the cap wait for their first frame.
        let mut extra = TcpStream::connect(port).await.unwrap();
        assert!(closed(&mut extra).await);
        assert!(!closed(&mut held[0]).await);
        // A connection that ends frees its place.
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = TcpStream::connect(port).await.unwrap();
        assert!(!closed(&mut again).await);
        network.stop();
    }
}
