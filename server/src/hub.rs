//! The signalling connections now open: one per profile of each device.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nexmile_core::signal::{DeviceInfo, ServerMessage};
use tokio::sync::mpsc;

use crate::store::Device;
use crate::tokens::Engagement;

pub(crate) type ConnId = u64;

/// Messages waiting for one connection. A reader this far behind is not
/// reading: it is closed rather than buffered without end.
pub(crate) const OUTGOING_QUEUE: usize = 1024;

/// A connection's outgoing queue.
pub(crate) fn outgoing() -> (mpsc::Sender<ServerMessage>, mpsc::Receiver<ServerMessage>) {
    mpsc::channel(OUTGOING_QUEUE)
}

/// How many connections one address and one device may hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnCaps {
    pub per_ip: usize,
    pub per_device: usize,
}

/// What is at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// The app (or the web version) over the signalling WebSocket.
    App,
    /// A WHIP/WHEP client over HTTP: it cannot say when it decoded a picture,
    /// so its media counts as received once its connection is up.
    Http,
}

struct Conn {
    kind: ConnKind,
    device: Device,
    info: DeviceInfo,
    ip: IpAddr,
    /// `None` once the queue overflowed: the session then ends.
    tx: Option<mpsc::Sender<ServerMessage>>,
    /// The call or live this connection is taken by.
    engaged: Option<Engagement>,
}

#[derive(Default)]
pub struct Hub {
    next: AtomicU64,
    conns: Mutex<HashMap<ConnId, Conn>>,
}

/// A connection as the call service sees it.
#[derive(Debug, Clone)]
pub struct ConnView {
    pub id: ConnId,
    pub kind: ConnKind,
    pub device: Device,
    pub info: DeviceInfo,
}

impl Conn {
    /// Queues `message`; a full queue closes the connection's queue.
    fn push(&mut self, id: ConnId, message: ServerMessage) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        match tx.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    "connection {id} ({}) reads too slowly: {OUTGOING_QUEUE} messages waiting, closed",
                    self.ip
                );
                self.tx = None;
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl Hub {
    /// Registers a connection, unless its address or device already holds
    /// as many as `caps` allows (the words for the refusal).
    pub fn register(
        &self,
        kind: ConnKind,
        device: Device,
        info: DeviceInfo,
        ip: IpAddr,
        tx: mpsc::Sender<ServerMessage>,
        caps: ConnCaps,
    ) -> Result<ConnId, String> {
        let mut conns = self.conns.lock().expect("hub lock");
        let from_ip = conns.values().filter(|c| c.ip == ip).count();
        let of_device = conns
            .values()
            .filter(|c| {
                c.device.site == device.site && c.device.device_token == device.device_token
            })
            .count();
        if from_ip >= caps.per_ip || of_device >= caps.per_device {
            tracing::warn!(%ip, from_ip, of_device, "connection refused: too many");
            return Err(
                "接続が多すぎます。ほかのウィンドウや端末を閉じてからもう一度お試しください。"
                    .into(),
            );
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let conn = Conn {
            kind,
            device,
            info,
            ip,
            tx: Some(tx),
            engaged: None,
        };
        conns.insert(id, conn);
        Ok(id)
    }

    /// Closes every connection of a site's user (their sessions were
    /// revoked): dropping the queue ends each session's loop. How many.
    pub fn close_user(&self, site: &str, user_id: &str) -> usize {
        let mut conns = self.conns.lock().expect("hub lock");
        let mut closed = 0;
        for conn in conns.values_mut() {
            if conn.device.site == site
                && conn.device.user_id == user_id
                && conn.tx.take().is_some()
            {
                closed += 1;
            }
        }
        closed
    }

    /// Forgets a connection; returns the call or live it was in.
    pub(crate) fn unregister(&self, id: ConnId) -> Option<Engagement> {
        self.conns
            .lock()
            .expect("hub lock")
            .remove(&id)
            .and_then(|c| c.engaged)
    }

    pub fn send(&self, id: ConnId, message: ServerMessage) {
        if let Some(conn) = self.conns.lock().expect("hub lock").get_mut(&id) {
            conn.push(id, message);
        }
    }

    pub fn view(&self, id: ConnId) -> Option<ConnView> {
        self.conns
            .lock()
            .expect("hub lock")
            .get(&id)
            .map(|c| view(id, c))
    }

    /// Every connection of `user_id` at `site`.
    pub fn user_conns(&self, site: &str, user_id: &str) -> Vec<ConnView> {
        self.conns
            .lock()
            .expect("hub lock")
            .iter()
            .filter(|(_, c)| c.device.site == site && c.device.user_id == user_id)
            .map(|(id, c)| view(*id, c))
            .collect()
    }

    /// Marks a connection as taken by a call or live. It fails when the
    /// connection is already taken by another.
    pub(crate) fn engage(&self, id: ConnId, by: Engagement) -> bool {
        let mut conns = self.conns.lock().expect("hub lock");
        let Some(conn) = conns.get_mut(&id) else {
            return false;
        };
        match &conn.engaged {
            Some(current) if *current != by => false,
            _ => {
                conn.engaged = Some(by);
                true
            }
        }
    }

    /// Frees a connection, whatever took it.
    pub(crate) fn free(&self, id: ConnId) {
        if let Some(conn) = self.conns.lock().expect("hub lock").get_mut(&id) {
            conn.engaged = None;
        }
    }

    /// Frees every connection still taken by `by`.
    pub(crate) fn release(&self, by: &Engagement) {
        for conn in self.conns.lock().expect("hub lock").values_mut() {
            if conn.engaged.as_ref() == Some(by) {
                conn.engaged = None;
            }
        }
    }

    /// Sends to every connection of the users at `site`; returns how many got it.
    pub fn send_to_users(&self, site: &str, user_ids: &[String], message: &ServerMessage) -> usize {
        let mut conns = self.conns.lock().expect("hub lock");
        conns
            .iter_mut()
            .filter(|(_, c)| c.device.site == site && user_ids.contains(&c.device.user_id))
            .filter_map(|(id, c)| c.push(*id, message.clone()).then_some(()))
            .count()
    }
}

fn view(id: ConnId, c: &Conn) -> ConnView {
    ConnView {
        id,
        kind: c.kind,
        device: c.device.clone(),
        info: c.info.clone(),
    }
}
