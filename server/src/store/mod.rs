//! Storage: one set of queries over sqlx's Any driver, so SQLite (default,
//! one file) and PostgreSQL run the same code. The schema's steps are
//! files in `server/migrations`, applied once each at start.

pub(crate) mod imageflux;
pub(crate) mod skyway;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{AnyPool, Row};

#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct StoreError(#[from] sqlx::Error);

/// The schema: one file per step in `server/migrations`, run once each by
/// sqlx's migrator (recorded in `_sqlx_migrations`; under a lock, so
/// servers starting together on one PostgreSQL do not race).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Before the migrator, steps were counted in `schema_version`, and step 22
/// replaced the session tokens kept in clear by their hashes (SQL has no
/// portable SHA-256). A database from then is adopted: the steps it ran
/// are recorded as applied, and, if it had not reached step 22, its tokens
/// are hashed once the migrator has run.
const HASHED_SESSIONS_STEP: i64 = 22;

/// A report that a running service would send if the server stopped now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReport {
    /// `call/<callToken>`, `live/<liveToken>` or `view/<liveToken>/<user>/<linkId>`.
    pub key: String,
    pub site: String,
    pub url: String,
    pub body: String,
    /// A call's terminateReason in the report, kept for the calls table.
    pub reason: Option<i32>,
}

/// How a call ended, written with its end report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd<'a> {
    pub call_token: &'a str,
    pub reason: i32,
    pub overview: Option<&'a str>,
    pub at: i64,
}

/// What a start found of services a dead server left running.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// End reports moved into the outbox.
    pub reports: usize,
    /// Calls marked ended (with or without a report).
    pub calls: usize,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

/// Which of a device's tokens was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The current one, issued at this time (server clock, ms).
    Current { issued_at: i64 },
    /// The one the last rotation replaced, within its grace.
    Replaced,
}

/// One activated device of a site's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub site: String,
    pub device_token: String,
    pub user_id: String,
    pub name: String,
    /// SHA-256 (hex) of the current session token (see `sessions`).
    pub session_hash: String,
    pub enable_download_effect: bool,
    pub phone_number: Option<String>,
    /// The built-in site: SHA-256 (hex) of the device's registration secret.
    pub secret_hash: Option<String>,
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
        session_hash: row.try_get("session_token")?,
        enable_download_effect: row.try_get::<i32, _>("enable_download_effect")? != 0,
        phone_number: row.try_get("phone_number")?,
        secret_hash: row.try_get("secret_hash")?,
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

/// Replaces each device's session token kept in clear by its hash; the
/// device counts as signed in since its activation.
async fn hash_clear_session_tokens(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT site, device_token, session_token, activated_at FROM devices")
        .fetch_all(&mut **tx)
        .await?;
    for row in rows {
        let clear: String = row.try_get("session_token")?;
        sqlx::query(
            "UPDATE devices SET session_token = $1, session_issued_at = $2 WHERE site = $3 AND device_token = $4",
        )
        .bind(crate::secrets::secret_hash(&clear))
        .bind(row.try_get::<i64, _>("activated_at")?)
        .bind(row.try_get::<String, _>("site")?)
        .bind(row.try_get::<String, _>("device_token")?)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

const DEVICE_COLUMNS: &str = "site, device_token, user_id, name, session_token, enable_download_effect, phone_number, secret_hash";
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
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        // WAL: readers never wait for the writer, and a commit
                        // is one append. FULL: a committed end report survives
                        // a power cut, not only a crash. A writer waits up to
                        // 30 s for another instead of failing at once.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 30000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Brings the schema up to date.
    async fn migrate(&self) -> Result<(), StoreError> {
        let counted = self.adopt_counted_steps().await?;
        MIGRATOR.run(&self.pool).await.map_err(sqlx::Error::from)?;
        if let Some(done) = counted {
            // One transaction: a start that dies here adopts and hashes again.
            let mut tx = self.pool.begin().await?;
            if done < HASHED_SESSIONS_STEP {
                hash_clear_session_tokens(&mut tx).await?;
            }
            sqlx::query("DROP TABLE schema_version")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// How many steps a database from before the migrator ran (`None` for
    /// any other), recorded as applied migrations of the same numbers.
    async fn adopt_counted_steps(&self) -> Result<Option<i64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let probe = if conn.backend_name() == "PostgreSQL" {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        } else {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        };
        let tables: i64 = sqlx::query_scalar(probe).fetch_one(&mut *conn).await?;
        if tables == 0 {
            return Ok(None);
        }
        let done: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *conn)
            .await?;
        let done = i64::from(done.unwrap_or(0));
        conn.ensure_migrations_table()
            .await
            .map_err(sqlx::Error::from)?;
        for step in MIGRATOR.iter().filter(|m| m.version <= done) {
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES ($1, $2, TRUE, $3, 0) ON CONFLICT (version) DO NOTHING",
            )
            .bind(step.version)
            .bind(step.description.as_ref())
            .bind(step.checksum.to_vec())
            .execute(&mut *conn)
            .await?;
        }
        Ok(Some(done))
    }

    /// The server key called `name`: `fresh` if none was kept yet (then
    /// kept), else the one kept, also when another server made it first.
    pub async fn server_key(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM server_keys WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
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
            "INSERT INTO devices ({DEVICE_COLUMNS}, activated_at, session_issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
        ))
        .bind(&device.site)
        .bind(&device.device_token)
        .bind(&device.user_id)
        .bind(&device.name)
        .bind(&device.session_hash)
        .bind(i32::from(device.enable_download_effect))
        .bind(device.phone_number.clone())
        .bind(device.secret_hash.clone())
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

    /// The device whose current session token hashes to `hash` and was
    /// issued after `issued_after`, or whose replaced one does and is still
    /// in its grace at `now`.
    pub async fn device_by_session(
        &self,
        hash: &str,
        issued_after: i64,
        now: i64,
    ) -> Result<Option<(Device, Shown)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS}, session_issued_at FROM devices
             WHERE (session_token = $1 AND session_issued_at > $2)
                OR (previous_session = $1 AND previous_valid_until > $3)"
        ))
        .bind(hash)
        .bind(issued_after)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let device = device_of(&row)?;
        let shown = if device.session_hash == hash {
            Shown::Current {
                issued_at: row.try_get("session_issued_at")?,
            }
        } else {
            Shown::Replaced
        };
        Ok(Some((device, shown)))
    }

    /// Replaces `device`'s current token (if it is still the one `device`
    /// holds: another connection may have rotated it first) by `new_hash`;
    /// the old one works until `grace_until`. Whether it was replaced.
    pub async fn rotate_session(
        &self,
        device: &Device,
        new_hash: &str,
        now: i64,
        grace_until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE devices SET previous_session = session_token, previous_valid_until = $1,
                 session_token = $2, session_issued_at = $3
             WHERE site = $4 AND device_token = $5 AND session_token = $6",
        )
        .bind(grace_until)
        .bind(new_hash)
        .bind(now)
        .bind(&device.site)
        .bind(&device.device_token)
        .bind(&device.session_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes every session token of a site's user (an administrator's
    /// decision): the app must register again through the site. Returns how
    /// many devices were signed out.
    pub async fn revoke_sessions(&self, site: &str, user_id: &str) -> Result<u64, StoreError> {
        // The column is NOT NULL UNIQUE: a value no hash can equal (hashes are hex).
        let done = sqlx::query(
            "UPDATE devices SET session_token = 'revoked:' || site || ':' || device_token,
                 previous_session = NULL, previous_valid_until = NULL
             WHERE site = $1 AND user_id = $2",
        )
        .bind(site)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
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

    /// Replaces the records of `owner` (a call or live token) with `reports`:
    /// what the partner gets if the server dies before they are settled.
    pub async fn checkpoint(
        &self,
        owner: &str,
        reports: &[PendingReport],
        now: i64,
    ) -> Result<(), StoreError> {
        retry_busy(|| async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM running_reports WHERE owner = $1")
                .bind(owner)
                .execute(&mut *tx)
                .await?;
            for report in reports {
                insert_running(&mut tx, owner, report, now).await?;
            }
            tx.commit().await
        })
        .await?;
        Ok(())
    }

    /// Settles end reports in one transaction: queued in the outbox, their
    /// running records gone (all of `owner`'s when `service_ended`), and a
    /// call's end written. Nobody is told the call ended before this returns,
    /// and a report is either running or queued, never both nor neither.
    pub async fn settle(
        &self,
        owner: &str,
        reports: &[(String, OutboxEntry)],
        service_ended: bool,
        call_end: Option<&CallEnd<'_>>,
    ) -> Result<(), StoreError> {
        retry_busy(|| async {
            let mut tx = self.pool.begin().await?;
            for (key, entry) in reports {
                insert_outbox(&mut tx, entry).await?;
                sqlx::query("DELETE FROM running_reports WHERE report_key = $1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            if service_ended {
                sqlx::query("DELETE FROM running_reports WHERE owner = $1")
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(end) = call_end {
                update_call_end(&mut tx, end).await?;
            }
            tx.commit().await
        })
        .await?;
        Ok(())
    }

    /// At start: every report a dead server left running goes to the
    /// outbox as recorded (`first_try` now), and every call it left open
    /// is marked ended: with its report's reason, or −9 when it had none.
    pub async fn recover(&self, now: i64) -> Result<Recovered, StoreError> {
        let recovered = retry_busy(|| async {
            let mut tx = self.pool.begin().await?;
            let rows = sqlx::query(
                "SELECT report_key, owner, site, url, body, reason, recorded_at FROM running_reports",
            )
            .fetch_all(&mut *tx)
            .await?;
            let mut recovered = Recovered::default();
            for row in &rows {
                let owner: String = row.try_get("owner")?;
                let entry = OutboxEntry {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    site: row.try_get("site")?,
                    url: row.try_get("url")?,
                    body: row.try_get("body")?,
                    first_try: now,
                    failures: 0,
                    next_try: now,
                    state: "pending".into(),
                };
                insert_outbox(&mut tx, &entry).await?;
                recovered.reports += 1;
                if let Some(reason) = row.try_get::<Option<i32>, _>("reason")? {
                    let at: i64 = row.try_get("recorded_at")?;
                    let end = CallEnd {
                        call_token: &owner,
                        reason,
                        overview: None,
                        at,
                    };
                    update_call_end(&mut tx, &end).await?;
                }
            }
            sqlx::query("DELETE FROM running_reports")
                .execute(&mut *tx)
                .await?;
            let open = sqlx::query(
                "UPDATE calls SET reason = $1, ended_at = $2 WHERE ended_at IS NULL",
            )
            .bind(-9)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            recovered.calls = usize::try_from(open.rows_affected()).unwrap_or(0)
                + rows.iter().filter(|r| r.try_get::<Option<i32>, _>("reason").ok().flatten().is_some()).count();
            tx.commit().await?;
            Ok(recovered)
        })
        .await?;
        Ok(recovered)
    }

    /// The answer already given to UpdateUserBalance `sid` of `site`.
    pub async fn balance_update(
        &self,
        site: &str,
        sid: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT answer FROM balance_updates WHERE site = $1 AND sid = $2")
                .bind(site)
                .bind(sid)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn save_balance_update(
        &self,
        site: &str,
        sid: &str,
        answer: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        retry_busy(|| async {
            sqlx::query(
                "INSERT INTO balance_updates (site, sid, answer, at) VALUES ($1, $2, $3, $4)",
            )
            .bind(site)
            .bind(sid)
            .bind(answer)
            .bind(now)
            .execute(&self.pool)
            .await
        })
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
        retry_busy(|| async {
            let mut tx = self.pool.begin().await?;
            insert_outbox(&mut tx, entry).await?;
            tx.commit().await
        })
        .await?;
        Ok(())
    }

    /// Pending entries due by `now`, oldest first.
    /// Claims at most `limit` of `site`'s pending entries due at `now`,
    /// oldest first, that no worker holds, for the worker to deliver until
    /// `lease_until`: another server on the same database skips them
    /// meanwhile, and a worker that died lets them go when the lease ends.
    pub async fn claim_due(
        &self,
        site: &str,
        worker: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET locked_until = $1, locked_by = $5
             WHERE request_id IN (
                 SELECT request_id FROM outbox
                 WHERE site = $4 AND state = 'pending' AND next_try <= $2
                   AND (locked_until IS NULL OR locked_until <= $2)
                 ORDER BY next_try LIMIT $3)
               AND state = 'pending' AND (locked_until IS NULL OR locked_until <= $2)
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .bind(site)
        .bind(worker)
        .fetch_all(&self.pool)
        .await?;
        let mut entries = rows.iter().map(entry_of).collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|e| e.next_try);
        Ok(entries)
    }

    /// Ends every claim `worker` holds (a server that stops gives them back).
    pub async fn release_claims(&self, worker: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET locked_until = NULL, locked_by = NULL WHERE locked_by = $1")
            .bind(worker)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The sites that have pending entries.
    pub async fn sites_pending(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT site FROM outbox WHERE state = 'pending'")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Forgets delivered and dropped entries, and their attempts, first
    /// tried before `before`; how many entries went.
    pub async fn prune_outbox(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM outbox_attempts WHERE request_id IN (
                 SELECT request_id FROM outbox WHERE state <> 'pending' AND first_try < $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let gone = sqlx::query("DELETE FROM outbox WHERE state <> 'pending' AND first_try < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone)
    }

    /// When `site`'s next pending entry is due.
    pub async fn next_due(&self, site: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_try) FROM outbox WHERE site = $1 AND state = 'pending'",
        )
        .bind(site)
        .fetch_one(&self.pool)
        .await?)
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
            "UPDATE outbox SET failures = $1, next_try = $2, state = $3, locked_until = NULL, locked_by = NULL WHERE request_id = $4",
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

type Tx = sqlx::Transaction<'static, sqlx::Any>;

async fn insert_outbox(tx: &mut Tx, entry: &OutboxEntry) -> Result<(), sqlx::Error> {
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_running(
    tx: &mut Tx,
    owner: &str,
    report: &PendingReport,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO running_reports (report_key, owner, site, url, body, reason, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&report.key)
    .bind(owner)
    .bind(&report.site)
    .bind(&report.url)
    .bind(&report.body)
    .bind(report.reason)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn update_call_end(tx: &mut Tx, end: &CallEnd<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE calls SET reason = $1, overview = $2, ended_at = $3 WHERE call_token = $4")
        .bind(end.reason)
        .bind(end.overview.map(str::to_owned))
        .bind(end.at)
        .bind(end.call_token)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Runs a write again when SQLite answered "database is locked" (another
/// writer held it past the busy timeout, or a snapshot went stale): a billing
/// write is retried, never dropped. Other errors return at once.
async fn retry_busy<T, F, Fut>(mut write: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut pause = std::time::Duration::from_millis(20);
    for _ in 0..6 {
        match write().await {
            Err(sqlx::Error::Database(e)) if is_busy(e.code().as_deref()) => {
                tracing::warn!("database busy, retrying in {pause:?}: {e}");
                tokio::time::sleep(pause).await;
                pause *= 3;
            }
            other => return other,
        }
    }
    write().await
}

/// SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
fn is_busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn memory() -> Store {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        Store { pool }
    }

    /// A database as the counted steps left it after `done` of them.
    async fn counted_database(done: i64) -> Store {
        let store = memory().await;
        for step in MIGRATOR.iter().filter(|m| m.version <= done) {
            sqlx::raw_sql(&step.sql).execute(&store.pool).await.unwrap();
        }
        sqlx::query("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .execute(&store.pool)
            .await
            .unwrap();
        for version in 1..=done {
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind(i32::try_from(version).unwrap())
                .execute(&store.pool)
                .await
                .unwrap();
        }
        store
    }

    async fn add_device(store: &Store, session_token: &str) {
        sqlx::query(
            "INSERT INTO devices (site, device_token, user_id, name, session_token, enable_download_effect, activated_at)
             VALUES ('s', 'd', 'hanako', 'Hanako', $1, 1, 500)",
        )
        .bind(session_token)
        .execute(&store.pool)
        .await
        .unwrap();
    }

    async fn assert_every_step_applied(store: &Store) {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        let every: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert_eq!(applied, every);
    }

    async fn signs_in(store: &Store, hash: &str) -> bool {
        let found = store.device_by_session(hash, 0, 1_000).await.unwrap();
        found.is_some()
    }

    /// A database from before hashing, with a token in clear: after the
    /// upgrade the same token still signs the device in, and the counted
    /// steps are the migrator's.
    #[tokio::test]
    async fn tokens_kept_in_clear_are_hashed_by_the_upgrade() {
        let store = counted_database(HASHED_SESSIONS_STEP - 5).await;
        add_device(&store, "clear-token").await;
        store.migrate().await.unwrap();
        let hash = crate::secrets::secret_hash("clear-token");
        let (device, shown) = store
            .device_by_session(&hash, 0, 1_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(device.user_id, "hanako");
        assert_eq!(shown, Shown::Current { issued_at: 500 });
        assert_eq!(
            store
                .device_by_session("clear-token", 0, 1_000)
                .await
                .unwrap(),
            None
        );
        assert_every_step_applied(&store).await;
        // A second start changes nothing: the token is not hashed twice.
        store.migrate().await.unwrap();
        assert!(signs_in(&store, &hash).await);
    }

    /// A database past the hashing step keeps its hashes as they are, and
    /// gets the steps it lacked.
    #[tokio::test]
    async fn a_database_past_hashing_is_adopted_as_it_is() {
        let store = counted_database(HASHED_SESSIONS_STEP + 1).await;
        let hash = crate::secrets::secret_hash("token");
        add_device(&store, &hash).await;
        sqlx::query("UPDATE devices SET session_issued_at = 500")
            .execute(&store.pool)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        assert!(signs_in(&store, &hash).await);
        assert_every_step_applied(&store).await;
        let counted: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_version'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(counted, 0, "the old count is gone");
    }
}
