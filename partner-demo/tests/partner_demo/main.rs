//! The partner demo over real HTTP on loopback, as the Nexmile server sees it.
//! One test binary (one link) with a module per area.

mod auth;
mod autocharge;
mod calls;
mod edge;
mod pages;
mod support;
