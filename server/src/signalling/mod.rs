//! The apps' control plane: their registration, their session tokens, the
//! signalling WebSocket, and where each of their messages goes.

pub(crate) mod activate;
pub(crate) mod dispatch;
pub(crate) mod ice;
pub(crate) mod sessions;
pub(crate) mod ws;
