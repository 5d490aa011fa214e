//! Nexmile's media engine. Every media connection the server terminates (a
//! call's two sides, a video test's one, a live's broadcaster and viewers,
//! a WHIP publisher, an ImageFlux ingest channel) is a leg of a [`Room`]:
//! one task over one UDP socket per media address (or the ports a
//! [`MediaNetwork`] shares among rooms), driving a sans-I/O engine
//! (`engine.rs`) of str0m connections.
//!
//! A leg may publish a [`Feed`] and receive one. What a feed's publisher
//! sends is forwarded as it came, the same payload to every receiver under
//! that receiver's SSRC, sequence numbers and keys, with retransmissions
//! (RTX) and keyframe requests per receiver. A call is two legs receiving
//! each other's feed; a video test one leg receiving its own; a live one
//! publisher and its viewers. Recording and HLS packaging read whole
//! pictures from a [`Tap`].

// Only the room, its legs and taps are the crate's surface.
#![deny(unreachable_pub)]

mod engine;
mod feedback;
mod keyframe_pacer;
mod network;
mod numbering;
mod room;
mod stun;
mod udp;

pub use engine::{Feed, LegEvent, LegId, LegSpec, Tapped};
pub use network::{MediaAddress, MediaNetwork, NetworkConfig};
pub use room::{KeyframeAsk, Room, Tap};

/// Why a leg or a room could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// The client's offer is not a session description the engine takes.
    #[error("bad session description: {0}")]
    BadDescription(String),
    /// The media sockets could not be set up.
    #[error("media set-up: {0}")]
    Setup(String),
    /// The room ended.
    #[error("the media room is closed")]
    Closed,
}
