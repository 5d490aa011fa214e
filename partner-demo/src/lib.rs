//! A working partner ("連携先") website for Nexmile, for demos and for the
//! server's end-to-end tests.
//!
//! It keeps users and their points in SQLite and answers what the Nexmile
//! server sends a partner (spec chapters 3, 4, 6): `/auth`, `/CallService`,
//! `/payment`, `/liveService`, `/notInstalled`. It calls the Nexmile server
//! back (chapter 7) when a user's points are topped up by `/autocharge`.
//! Its pages list the users with app links, and the log of every request.
//!
//! Faults can be switched on per endpoint ([`Fault`]) to show how the server
//! copes with a partner that hangs, fails or talks nonsense.

mod config;
mod demo;
mod edge;
mod error;
mod faults;
mod html;
mod nexmile_client;
mod reply;
mod routes;
mod service_type;
mod signing;
mod site;
mod store;

pub use config::DemoConfig;
pub use demo::PartnerDemo;
pub use error::DemoError;
pub use faults::{Fault, FaultEndpoint, FaultKind};
pub use store::request_log::LoggedRequest;
