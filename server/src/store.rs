//! Storage: one set of queries over sqlx's Any driver, so SQLite (default,
//! one file) and PostgreSQL run the same code. Schema changes are numbered
//! steps applied once at start.

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct StoreError(#[from] sqlx::Error);

/// Numbered schema steps; `schema_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE devices (
        site TEXT NOT NULL,
        device_token TEXT NOT NULL,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        session_token TEXT NOT NULL UNIQUE,
        enable_download_effect INTEGER NOT NULL,
        phone_number TEXT,
        activated_at BIGINT NOT NULL,
        PRIMARY KEY (site, device_token)
    )",
    "CREATE TABLE calls (
        call_token TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        caller_id TEXT NOT NULL,
        callee_id TEXT NOT NULL,
        reason INTEGER,
        overview TEXT,
        created_at BIGINT NOT NULL,
        ended_at BIGINT
    )",
    "CREATE TABLE outbox (
        request_id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        first_try BIGINT NOT NULL,
        failures INTEGER NOT NULL,
        next_try BIGINT NOT NULL,
        state TEXT NOT NULL
    )",
    "CREATE TABLE outbox_attempts (
        request_id TEXT NOT NULL,
        at BIGINT NOT NULL,
        status INTEGER NOT NULL,
        latency_ms BIGINT NOT NULL,
        error TEXT
    )",
    "CREATE INDEX outbox_due ON outbox (state, next_try)",
    // §6.2: a uniqueId the server has seen, and whose it was.
    "CREATE TABLE unique_ids (
        site TEXT NOT NULL,
        unique_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        seen_at BIGINT NOT NULL,
        PRIMARY KEY (site, unique_id)
    )",
    // SkyWay Channel API: channels made by createChannel, and calls per month.
    "CREATE TABLE skyway_channels (
        id TEXT PRIMARY KEY,
        name TEXT UNIQUE,
        metadata TEXT,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE skyway_usage (
        month TEXT PRIMARY KEY,
        calls BIGINT NOT NULL
    )",
    // ImageFlux Live Streaming API: systems (tenants), their users, login
    // tokens (hashed), schedules and each schedule's chat.
    "CREATE TABLE if_systems (
        system_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        access_code_hash TEXT NOT NULL UNIQUE
    )",
    "CREATE TABLE if_users (
        user_id BIGINT PRIMARY KEY,
        system_id TEXT NOT NULL,
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        is_master INTEGER NOT NULL,
        perm_delivery INTEGER NOT NULL,
        perm_view INTEGER NOT NULL,
        perm_schedule INTEGER NOT NULL,
        perm_user INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (system_id, email)
    )",
    "CREATE TABLE if_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE TABLE if_schedules (
        schedule_id TEXT PRIMARY KEY,
        system_id TEXT NOT NULL,
        name TEXT NOT NULL,
        start_at BIGINT NOT NULL,
        end_at BIGINT NOT NULL,
        params TEXT NOT NULL,
        channel_id TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL
    )",
    "CREATE TABLE if_chat (
        schedule_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        user_name TEXT NOT NULL,
        body TEXT NOT NULL,
        at BIGINT NOT NULL,
        PRIMARY KEY (schedule_id, seq)
    )",
];

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
}

/// One activated device of a site's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub site: String,
    pub device_token: String,
    pub user_id: String,
    pub name: String,
    pub session_token: String,
    pub enable_download_effect: bool,
    pub phone_number: Option<String>,
}

/// One request waiting in (or gone from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct OutboxEntry {
    pub request_id: String,
    pub site: String,
    pub url: String,
    pub body: String,
    pub first_try: i64,
    pub failures: u32,
    pub next_try: i64,
    /// `pending`, `delivered` or `dropped`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Attempt {
    pub at: i64,
    /// The HTTP status, 0 when there was none (timeout, refused connection).
    pub status: u16,
    pub latency_ms: i64,
    pub error: Option<String>,
}

fn device_of(row: &sqlx::any::AnyRow) -> Result<Device, sqlx::Error> {
    Ok(Device {
        site: row.try_get("site")?,
        device_token: row.try_get("device_token")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        session_token: row.try_get("session_token")?,
        enable_download_effect: row.try_get::<i32, _>("enable_download_effect")? != 0,
        phone_number: row.try_get("phone_number")?,
    })
}

fn entry_of(row: &sqlx::any::AnyRow) -> Result<OutboxEntry, sqlx::Error> {
    Ok(OutboxEntry {
        request_id: row.try_get("request_id")?,
        site: row.try_get("site")?,
        url: row.try_get("url")?,
        body: row.try_get("body")?,
        first_try: row.try_get("first_try")?,
        failures: u32::try_from(row.try_get::<i32, _>("failures")?).unwrap_or(0),
        next_try: row.try_get("next_try")?,
        state: row.try_get("state")?,
    })
}

const DEVICE_COLUMNS: &str =
    "site, device_token, user_id, name, session_token, enable_download_effect, phone_number";
const OUTBOX_COLUMNS: &str = "request_id, site, url, body, first_try, failures, next_try, state";

impl Store {
    /// Opens (creating a SQLite file if needed) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let url = if let Some(path) = url.strip_prefix("sqlite://")
            && !path.contains('?')
        {
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                let _ = std::fs::create_dir_all(dir);
            }
            format!("sqlite://{path}?mode=rwc")
        } else {
            url.to_owned()
        };
        // In-memory SQLite is one database per connection: keep to one.
        let connections = if url.contains(":memory:") { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .connect(&url)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .execute(&self.pool)
            .await?;
        let done: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&self.pool)
            .await?;
        let done = usize::try_from(done.unwrap_or(0)).unwrap_or(0);
        for (index, step) in MIGRATIONS.iter().enumerate().skip(done) {
            let mut tx = self.pool.begin().await?;
            sqlx::query(step).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind(i32::try_from(index + 1).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Records (or replaces) a device's activation at a site.
    pub async fn save_device(&self, device: &Device, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM devices WHERE site = $1 AND device_token = $2")
            .bind(&device.site)
            .bind(&device.device_token)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO devices ({DEVICE_COLUMNS}, activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&device.site)
        .bind(&device.device_token)
        .bind(&device.user_id)
        .bind(&device.name)
        .bind(&device.session_token)
        .bind(i32::from(device.enable_download_effect))
        .bind(device.phone_number.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remembers whose `unique_id` this is at `site` (the latest activation wins).
    pub async fn save_unique_id(
        &self,
        site: &str,
        unique_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM unique_ids WHERE site = $1 AND unique_id = $2")
            .bind(site)
            .bind(unique_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO unique_ids (site, unique_id, user_id, seen_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(site)
        .bind(unique_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn user_of_unique_id(
        &self,
        site: &str,
        unique_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT user_id FROM unique_ids WHERE site = $1 AND unique_id = $2")
                .bind(site)
                .bind(unique_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn device_by_session(
        &self,
        session_token: &str,
    ) -> Result<Option<Device>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE session_token = $1"
        ))
        .bind(session_token)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(device_of).transpose()?)
    }

    pub async fn device(
        &self,
        site: &str,
        device_token: &str,
    ) -> Result<Option<Device>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE site = $1 AND device_token = $2"
        ))
        .bind(site)
        .bind(device_token)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(device_of).transpose()?)
    }

    /// The built-in site's user reached by an app phone number.
    pub async fn device_by_phone(
        &self,
        site: &str,
        phone: &str,
    ) -> Result<Option<Device>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE site = $1 AND phone_number = $2"
        ))
        .bind(site)
        .bind(phone)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(device_of).transpose()?)
    }

    pub async fn call_started(
        &self,
        call_token: &str,
        site: &str,
        caller: &str,
        callee: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO calls (call_token, site, caller_id, callee_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(call_token)
        .bind(site)
        .bind(caller)
        .bind(callee)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn call_ended(
        &self,
        call_token: &str,
        reason: i32,
        overview: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE calls SET reason = $1, overview = $2, ended_at = $3 WHERE call_token = $4",
        )
        .bind(reason)
        .bind(overview.map(str::to_owned))
        .bind(now)
        .bind(call_token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Recent calls, newest first, as (token, site, caller, callee, reason, overview JSON).
    pub async fn recent_calls(&self, limit: i64) -> Result<Vec<CallRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT call_token, site, caller_id, callee_id, reason, overview, created_at, ended_at
             FROM calls ORDER BY created_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CallRecord {
                    call_token: row.try_get("call_token")?,
                    site: row.try_get("site")?,
                    caller_id: row.try_get("caller_id")?,
                    callee_id: row.try_get("callee_id")?,
                    reason: row.try_get("reason")?,
                    overview: row
                        .try_get::<Option<String>, _>("overview")?
                        .and_then(|text| serde_json::from_str(&text).ok()),
                    created_at: row.try_get("created_at")?,
                    ended_at: row.try_get("ended_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError)
    }

    pub async fn enqueue(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&entry.request_id)
        .bind(&entry.site)
        .bind(&entry.url)
        .bind(&entry.body)
        .bind(entry.first_try)
        .bind(i32::try_from(entry.failures).unwrap_or(i32::MAX))
        .bind(entry.next_try)
        .bind(&entry.state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Pending entries due by `now`, oldest first.
    pub async fn due(&self, now: i64) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' AND next_try <= $1 ORDER BY next_try"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entry_of).collect::<Result<_, _>>()?)
    }

    /// When the next pending entry is due.
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(next_try) FROM outbox WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Records one try and the entry's new state, together.
    pub async fn record_attempt(
        &self,
        entry: &OutboxEntry,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO outbox_attempts (request_id, at, status, latency_ms, error) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&entry.request_id)
        .bind(attempt.at)
        .bind(i32::from(attempt.status))
        .bind(attempt.latency_ms)
        .bind(attempt.error.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE outbox SET failures = $1, next_try = $2, state = $3 WHERE request_id = $4",
        )
        .bind(i32::try_from(entry.failures).unwrap_or(i32::MAX))
        .bind(entry.next_try)
        .bind(&entry.state)
        .bind(&entry.request_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest outbox entries with their attempts, for the admin API.
    pub async fn outbox(&self, limit: i64) -> Result<Vec<(OutboxEntry, Vec<Attempt>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY first_try DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut result = Vec::new();
        for row in &rows {
            let entry = entry_of(row)?;
            let attempts = sqlx::query(
                "SELECT at, status, latency_ms, error FROM outbox_attempts WHERE request_id = $1 ORDER BY at",
            )
            .bind(&entry.request_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|a| {
                Ok(Attempt {
                    at: a.try_get("at")?,
                    status: u16::try_from(a.try_get::<i32, _>("status")?).unwrap_or(0),
                    latency_ms: a.try_get("latency_ms")?,
                    error: a.try_get("error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
            result.push((entry, attempts));
        }
        Ok(result)
    }
}

/// One call as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct CallRecord {
    pub call_token: String,
    pub site: String,
    pub caller_id: String,
    pub callee_id: String,
    pub reason: Option<i32>,
    pub overview: Option<serde_json::Value>,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}
