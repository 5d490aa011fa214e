//! The Nexmile specifications as Rust, shared by the client and the server.
//!
//! Everything here is pure: no sockets, no files, no clock of its own. Time comes
//! in as [`clock::UnixMillis`] values passed by the caller, so tests run on
//! simulated time.
//!
//! - [`applink`]: the app-link grammar of spec chapter 2.
//! - [`wire`]: every request and reply of the partner interface (chapters 3–7)
//!   with the spec's exact field names, and their codes and option masks.
//! - [`codec`]: the QUERY strings, the percent-encoded JSON bodies and the
//!   partner reply format `result=…&service=…|message=…`.
//! - [`datetime`]: the date formats of the Nexmile and ImageFlux interfaces.
//! - [`effects`]: the effect-package manifest.
//! - [`billing`]: the per-second ledger of §3.3.3 ③.
//! - [`call`]: one 1:1 call as a state machine (chapter 4).
//! - [`live`]: one live with its viewers as a state machine (chapter 5).
//! - [`retry`]: the retry schedule of requests marked 再送.
//! - [`checkpoint`]: when a running service records its charge, crash-safe.
//! - [`signal`]: the app ↔ server signalling messages.
//! - [`signature`]: the request ID and HMAC headers on requests to partners.

pub mod applink;
pub mod billing;
pub mod call;
pub mod checkpoint;
pub mod clock;
pub mod codec;
pub mod datetime;
pub mod device;
pub mod effects;
mod lenient;
pub mod live;
pub mod party;
pub mod retry;
mod schema;
pub mod secret;
pub mod signal;
pub mod signature;
pub mod wire;
