//! Why a demo site could not start.

use std::net::SocketAddr;
use std::path::PathBuf;

use nexmile_core::applink::{InvalidBase, InvalidSiteCode};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot create the database folder {path}: {source}")]
    DatabaseFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the site code: {0}")]
    SiteCode(#[from] InvalidSiteCode),
    #[error("the app-link base: {0}")]
    AppLinkBase(#[from] InvalidBase),
    #[error("the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}
