//! The engine's UDP I/O: a socket per media address, with quinn-udp's
//! segmentation offload.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;

use quinn_udp::{RecvMeta, UdpSocketState};
use str0m::net::{Protocol, Transmit};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// One media address: its socket, with quinn-udp's segmentation offload
/// (several equal datagrams to one viewer in one send, GSO; several received
/// in one read, GRO and recvmmsg), which per datagram costs a fraction of a
/// `sendto` each.
pub(crate) struct Socket {
    udp: UdpSocket,
    /// The address clients are told: the bound port on the public address
    /// when a 1:1 NAT stands between (what arrives is addressed to it, what
    /// leaves comes from it, as far as the connections know).
    pub advertised: SocketAddr,
    state: UdpSocketState,
}

impl Socket {
    /// A socket on `bind` (port 0: any free one) that clients reach at
    /// `advertised`.
    pub(crate) fn bind(bind: SocketAddr, advertised: IpAddr) -> std::io::Result<Self> {
        let socket = std::net::UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        let state = UdpSocketState::new((&socket).into())?;
        // Room for a picture to every receiver and their reports at once (the
        // kernel caps it at net.core.[rw]mem_max).
        let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER);
        let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER);
        let advertised = SocketAddr::new(advertised, socket.local_addr()?.port());
        Ok(Self {
            udp: UdpSocket::from_std(socket)?,
            advertised,
            state,
        })
    }

    /// Datagrams from this socket, in order: each run of equal sizes (the
    /// last of a run may be shorter) to one destination goes in one send. A full socket buffer drops them, as a congested path would.
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
                tracing::debug!("media send to {}: {e}", first.destination);
            }
            start = end;
        }
    }
}

const SOCKET_BUFFER: usize = 4 << 20;

/// Reads (of up to [`Inbound::BUFFERS`] batches each) per socket at one
/// wake, so the first of a burst is not held long.
const RECEIVE_READS: usize = 16;

/// Buffers for one read of several datagrams (recvmmsg, each buffer able to
/// hold one GRO batch).
pub(crate) struct Inbound {
    buffers: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
}

impl Inbound {
    const BUFFERS: usize = 4;

    pub(crate) fn new(sockets: &[Arc<Socket>]) -> Self {
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

/// Sends a batch of datagrams, in order per socket (one per media address);
/// what goes over ICE-TCP goes to `tcp`.
pub(crate) fn send_all(
    sockets: &[Arc<Socket>],
    queued: &mut Vec<Transmit>,
    scratch: &mut Vec<u8>,
    tcp: &dyn Fn(&Transmit),
) {
    queued.sort_by_key(|t| (t.proto == Protocol::Tcp, t.source));
    for run in queued.chunk_by(|a, b| a.source == b.source && a.proto == b.proto) {
        if run[0].proto == Protocol::Tcp {
            run.iter().for_each(tcp);
        } else if let Some(socket) = sockets.iter().find(|s| s.advertised == run[0].source) {
            socket.send(run, scratch);
        }
    }
    queued.clear();
}

/// The datagrams waiting on the sockets, each passed to `receive` with the
/// socket's address and its source; a bounded number of reads per socket.
pub(crate) fn receive_waiting(
    sockets: &[Arc<Socket>],
    inbound: &mut Inbound,
    mut receive: impl FnMut(SocketAddr, SocketAddr, &[u8]),
) {
    for socket in sockets {
        for _ in 0..RECEIVE_READS {
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
                    receive(socket.advertised, meta.addr, datagram);
                }
            }
        }
    }
}

/// Until one of the sockets has something to read.
pub(crate) async fn readable(sockets: &[Arc<Socket>]) {
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
