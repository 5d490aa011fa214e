//! The Nexmile app engine without a window. So far: what `nexmile-cli` reports
//! about app links, and its demo; profiles, sessions and signalling follow
//! with the server issue.

pub mod demo;
pub mod link_report;
