//! The Nexmile app engine without a window: profiles per site code, app-link
//! dispatch, signalling with the server and the media of calls. `nexmile-cli`
//! is its headless face; the desktop app drives the same engine.

pub mod app;
pub mod capture_feed;
pub mod demo;
pub mod effects_sync;
pub mod events;
pub mod link_report;
pub mod live_session;
pub mod media_session;
pub mod profiles;
pub mod server_url;
pub mod signalling;
pub mod social_reader;

/// rustls is built without a provider: ring, as the server uses, is
/// installed once (another part of the process may have done it already).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
