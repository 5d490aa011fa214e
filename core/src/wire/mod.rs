//! Every request and reply of the partner interface (chapters 3–7), with the
//! spec's exact field names on the wire and Rust names in the code.

pub mod auth;
pub mod call;
pub mod codes;
pub mod customization;
pub mod live;
pub mod payment;
pub mod site_owner;
pub mod site_service;

use std::time::Duration;

/// The standard reply timeout of the JSON requests (§4.1.2 ②, decision 8).
pub const PARTNER_TIMEOUT: Duration = Duration::from_secs(8);
