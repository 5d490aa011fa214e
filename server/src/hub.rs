//! The signalling connections now open: one per profile of each device.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nexmile_core::signal::{DeviceInfo, ServerMessage};
use tokio::sync::mpsc;

use crate::store::Device;

pub type ConnId = u64;

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
    tx: mpsc::UnboundedSender<ServerMessage>,
    /// The call this device is in or ringing for.
    call: Option<String>,
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
    pub call: Option<String>,
}

impl Hub {
    pub fn register(
        &self,
        kind: ConnKind,
        device: Device,
        info: DeviceInfo,
        tx: mpsc::UnboundedSender<ServerMessage>,
    ) -> ConnId {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let conn = Conn {
            kind,
            device,
            info,
            tx,
            call: None,
        };
        self.conns.lock().expect("hub lock").insert(id, conn);
        id
    }

    /// Forgets a connection; returns the call it was in.
    pub fn unregister(&self, id: ConnId) -> Option<String> {
        self.conns
            .lock()
            .expect("hub lock")
            .remove(&id)
            .and_then(|c| c.call)
    }

    pub fn send(&self, id: ConnId, message: ServerMessage) {
        if let Some(conn) = self.conns.lock().expect("hub lock").get(&id) {
            let _ = conn.tx.send(message);
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

    /// Marks a connection as taken by `call` (or free with `None`). Taking
    /// fails when it is already in another call.
    pub fn set_call(&self, id: ConnId, call: Option<&str>) -> bool {
        let mut conns = self.conns.lock().expect("hub lock");
        let Some(conn) = conns.get_mut(&id) else {
            return false;
        };
        match (call, &conn.call) {
            (Some(new), Some(current)) if new != current => false,
            _ => {
                conn.call = call.map(str::to_owned);
                true
            }
        }
    }

    /// Frees every connection still marked with `call`.
    pub fn release_call(&self, call: &str) {
        for conn in self.conns.lock().expect("hub lock").values_mut() {
            if conn.call.as_deref() == Some(call) {
                conn.call = None;
            }
        }
    }

    /// Sends to every connection of the users at `site`; returns how many got it.
    pub fn send_to_users(&self, site: &str, user_ids: &[String], message: &ServerMessage) -> usize {
        let conns = self.conns.lock().expect("hub lock");
        conns
            .values()
            .filter(|c| c.device.site == site && user_ids.contains(&c.device.user_id))
            .filter(|c| c.tx.send(message.clone()).is_ok())
            .count()
    }
}

fn view(id: ConnId, c: &Conn) -> ConnView {
    ConnView {
        id,
        kind: c.kind,
        device: c.device.clone(),
        info: c.info.clone(),
        call: c.call.clone(),
    }
}
