//! The site's SQLite database, through sqlx's Any driver.

mod calls;
mod lives;
pub(crate) mod request_log;
mod seed;
mod users;

use std::path::Path;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::error::DemoError;

pub(crate) use calls::{CallEnd, TopUp};
pub(crate) use lives::LiveRecord;
pub(crate) use request_log::{LogDirection, NewLogEntry};
pub(crate) use users::{UNIQUE_ID_LIFETIME, UserAccount};

const SCHEMA: [&str; 9] = [
    "CREATE TABLE IF NOT EXISTS users (
        user_id TEXT PRIMARY KEY,
        password TEXT NOT NULL,
        name TEXT NOT NULL,
        profile_image_url TEXT,
        points INTEGER NOT NULL DEFAULT 0,
        enable_download_effect INTEGER NOT NULL DEFAULT 1,
        call_option INTEGER NOT NULL DEFAULT 0,
        paid_callee INTEGER NOT NULL DEFAULT 0,
        call_unit_sec INTEGER NOT NULL DEFAULT 0,
        call_unit_price INTEGER NOT NULL DEFAULT 0
    )",
    // §3.3.3 candidateMode of a member who asked for one IP family (1 or
    // 2), told with the member's details; a table of its own, so a demo
    // database made before it gains it.
    "CREATE TABLE IF NOT EXISTS candidate_modes (
        user_id TEXT PRIMARY KEY,
        candidate_mode INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS unique_ids (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        used_at INTEGER
    )",
    "CREATE TABLE IF NOT EXISTS blocks (
        blocker_id TEXT NOT NULL,
        blocked_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (blocker_id, blocked_id)
    )",
    // request_id is unique too: a retried 通話終了 is applied once.
    "CREATE TABLE IF NOT EXISTS calls (
        call_token TEXT PRIMARY KEY,
        request_id TEXT UNIQUE,
        caller_id TEXT NOT NULL,
        callee_id TEXT NOT NULL,
        payer_id TEXT NOT NULL,
        overview TEXT NOT NULL,
        charged_points INTEGER NOT NULL,
        ended_at INTEGER NOT NULL
    )",
    // Points bought (real-time payment) or auto-charged, by the sid sent back.
    "CREATE TABLE IF NOT EXISTS top_ups (
        sid TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        points INTEGER NOT NULL,
        source TEXT NOT NULL,
        at INTEGER NOT NULL
    )",
    // Lives by the liveToken of their 11, for the page's viewLive links.
    "CREATE TABLE IF NOT EXISTS lives (
        live_token TEXT PRIMARY KEY,
        link_id TEXT NOT NULL,
        liver_id TEXT NOT NULL,
        title TEXT NOT NULL,
        prepared_at INTEGER NOT NULL,
        on_air_at INTEGER,
        ended_at INTEGER
    )",
    // Points spent in lives (gifts, stamps, paid comments, viewing), once per request.
    "CREATE TABLE IF NOT EXISTS live_spending (
        request_id TEXT PRIMARY KEY,
        live_token TEXT NOT NULL,
        user_id TEXT NOT NULL,
        what TEXT NOT NULL,
        points INTEGER NOT NULL,
        at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        direction TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        query TEXT NOT NULL,
        body TEXT NOT NULL,
        request_id TEXT,
        signature TEXT NOT NULL,
        reply_status INTEGER,
        reply_body TEXT
    )",
];

#[derive(Clone)]
pub(crate) struct Store {
    pool: AnyPool,
}

impl Store {
    /// Opens (creating if needed) the database, its tables and the seed users.
    pub async fn open(database: &str) -> Result<Self, DemoError> {
        sqlx::any::install_default_drivers();
        let url = connect_url(database)?;
        // One connection: an in-memory database lives as long as its
        // connection, and SQLite has one writer anyway.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect(&url)
            .await?;
        let store = Self { pool };
        for statement in SCHEMA {
            sqlx::query(statement).execute(&store.pool).await?;
        }
        seed::seed_if_empty(&store.pool).await?;
        Ok(store)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `sqlite://var/x.db` gets `?mode=rwc` and its folder, so a first run just works.
fn connect_url(database: &str) -> Result<String, DemoError> {
    let Some(path) = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
    else {
        return Ok(database.to_owned());
    };
    if path.contains(":memory:") || path.contains("mode=memory") || database.contains('?') {
        return Ok(database.to_owned());
    }
    if let Some(folder) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder).map_err(|source| DemoError::DatabaseFolder {
            path: folder.to_owned(),
            source,
        })?;
    }
    Ok(format!("{database}?mode=rwc"))
}
