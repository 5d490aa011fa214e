//! The ImageFlux Live Streaming API surface (`/api/login`, `/api/schedule`,
//! `/api/delivery`, `/api/view`, `/api/user`, `/api/password`,
//! `/api/access-code`, `/api/chat`). Rules and bodies are in
//! `nexmile_compat::imageflux`; this is storage and HTTP. Fields are read
//! from the query string and the JSON body alike (GET and DELETE callers put
//! them in either). Each schedule has a channel: WHIP ingest (`sora_url`),
//! HLS output (`playlist_url`) and its chat, which is also that channel's
//! social stream.

pub(crate) mod ingest;

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nexmile_compat::imageflux::{
    self as rules, ApiError, Caller, Fields, HlsRung, Need, Permissions,
};
use nexmile_core::clock::UnixMillis;
use nexmile_core::datetime::{JST, WireDateTime};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::config::ImageFluxSystem;
use crate::services::Services;
use crate::social_feeds::Comment;
use crate::social_feeds::SocialStreams;
use crate::store::{Store, StoreError};

pub(crate) struct Reply(ApiError);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(self.0.body())).into_response()
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<sqlx::Error> for Reply {
    fn from(e: sqlx::Error) -> Self {
        Self(ApiError::Internal(format!("database: {e}")))
    }
}

impl From<StoreError> for Reply {
    fn from(e: StoreError) -> Self {
        Self(ApiError::Internal(e.to_string()))
    }
}

type Answer = Result<Json<Value>, Reply>;

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn hash_password_now(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing: {e}")))
}

/// Argon2 costs tens of milliseconds of CPU: it runs on the blocking pool,
/// so the async workers go on carrying calls meanwhile.
async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password_now(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing: {e}")))?
}

/// What a login that matches no user verifies against, so that a miss costs
/// the same time as a hit and the timing tells nothing.
fn stand_in_hash() -> &'static str {
    static STAND_IN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STAND_IN.get_or_init(|| {
        hash_password_now(&uuid::Uuid::new_v4().to_string()).expect("argon2 hashes a password")
    })
}

/// Whether `password` is the one `stored` hashes; with no stored hash the
/// same work is done and the answer is no.
async fn password_matches(password: &str, stored: Option<String>) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let found = stored.is_some();
        let stored = stored.unwrap_or_else(|| stand_in_hash().to_owned());
        let matches = PasswordHash::new(&stored).is_ok_and(|hash| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        });
        found && matches
    })
    .await
    .unwrap_or(false)
}

/// What the ImageFlux surface works with.
pub struct ImageFlux {
    pub services: Arc<Services>,
    /// Chat of scheduled channels, as social stream feeds.
    pub social: Arc<SocialStreams>,
    pub access_codes: AccessCodes,
}

/// Access codes are kept as HMAC-SHA256 under a server key (M16): a copy of
/// the database without the key cannot be searched for short codes. The
/// key is `[imageflux] access_code_key`, or one made at first start and
/// kept in the database.
pub struct AccessCodes {
    key: Vec<u8>,
}

impl AccessCodes {
    pub async fn load(
        store: &Store,
        section: &crate::config::ImageFluxSection,
    ) -> Result<Self, StoreError> {
        let key = match &section.access_code_key {
            Some(key) => key.clone(),
            None => {
                store
                    .server_key("imageflux-access-codes", &crate::secrets::new_secret())
                    .await?
            }
        };
        Ok(Self {
            key: key.into_bytes(),
        })
    }

    pub fn hash(&self, code: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The unkeyed SHA-256 earlier versions stored; replaced at the next login.
    fn legacy_hash(code: &str) -> String {
        sha256(code)
    }
}

/// A stored time (ms) as the deployment's local (JST) date-time.
pub(crate) fn jst(at: i64) -> WireDateTime {
    WireDateTime::from_unix_millis(UnixMillis(at), JST)
}

/// Makes the configured systems that do not exist yet, with their master user.
pub(crate) async fn seed(
    store: &Store,
    codes: &AccessCodes,
    systems: &[ImageFluxSystem],
    now: i64,
) -> Result<(), StoreError> {
    for system in systems {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT system_id FROM if_systems WHERE name = $1")
                .bind(&system.name)
                .fetch_optional(&store.pool)
                .await?;
        if exists.is_some() {
            continue;
        }
        let system_id = uuid::Uuid::new_v4().to_string();
        let password = match hash_password(&system.master_password).await {
            Ok(hash) => hash,
            Err(e) => {
                tracing::error!("imageflux system {}: {e}", system.name);
                continue;
            }
        };
        sqlx::query(
            "INSERT INTO if_systems (system_id, name, access_code_hash) VALUES ($1, $2, $3)",
        )
        .bind(&system_id)
        .bind(&system.name)
        .bind(codes.hash(&system.access_code))
        .execute(&store.pool)
        .await?;
        insert_user(
            store,
            &system_id,
            &system.master_name,
            &system.master_email,
            &password,
            true,
            Permissions {
                delivery: true,
                view: true,
                schedule: true,
                user: true,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

#[expect(clippy::too_many_arguments, reason = "one row's columns")]
async fn insert_user(
    store: &Store,
    system_id: &str,
    name: &str,
    email: &str,
    password_hash: &str,
    is_master: bool,
    p: Permissions,
    now: i64,
) -> Result<i64, StoreError> {
    let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(user_id), 0) + 1 FROM if_users")
        .fetch_one(&store.pool)
        .await?;
    sqlx::query(
        "INSERT INTO if_users (user_id, system_id, name, email, password_hash, is_master,
            perm_delivery, perm_view, perm_schedule, perm_user, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(next)
    .bind(system_id)
    .bind(name)
    .bind(email)
    .bind(password_hash)
    .bind(i32::from(is_master))
    .bind(i32::from(p.delivery))
    .bind(i32::from(p.view))
    .bind(i32::from(p.schedule))
    .bind(i32::from(p.user))
    .bind(now)
    .execute(&store.pool)
    .await?;
    Ok(next)
}

/// The caller of a request: its token's user, in its system.
pub(crate) struct Session {
    pub caller: Caller,
    pub system_id: String,
    pub name: String,
    token_hash: String,
}

pub(crate) async fn session(imageflux: &ImageFlux, headers: &HeaderMap) -> Result<Session, Reply> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated(
            "Authorization: Bearer <token> がありません。/api/login で得たトークンを付けてください。",
        ))?;
    let token_hash = sha256(token);
    let row = sqlx::query(
        "SELECT t.expires_at, u.user_id, u.system_id, u.name, u.is_master,
                u.perm_delivery, u.perm_view, u.perm_schedule, u.perm_user
         FROM if_tokens t JOIN if_users u ON u.user_id = t.user_id
         WHERE t.token_hash = $1",
    )
    .bind(&token_hash)
    .fetch_optional(&imageflux.services.store.pool)
    .await?
    .ok_or(ApiError::Unauthenticated("トークンが正しくありません。"))?;
    let expires_at: i64 = row.try_get("expires_at")?;
    if expires_at <= imageflux.services.clock.now().0 {
        return Err(ApiError::Unauthenticated(
            "トークンの有効期限が切れています。ログインし直してください。",
        )
        .into());
    }
    let flag = |column: &str| row.try_get::<i32, _>(column).map(|v| v != 0);
    Ok(Session {
        caller: Caller {
            user_id: row.try_get("user_id")?,
            is_master: flag("is_master")?,
            permissions: Permissions {
                delivery: flag("perm_delivery")?,
                view: flag("perm_view")?,
                schedule: flag("perm_schedule")?,
                user: flag("perm_user")?,
            },
        },
        system_id: row.try_get("system_id")?,
        name: row.try_get("name")?,
        token_hash,
    })
}

/// A call's caller, allowed `need`, and its fields.
async fn request(
    imageflux: &ImageFlux,
    headers: &HeaderMap,
    need: Need,
    query: Option<String>,
    body: &Bytes,
) -> Result<(Session, Fields), Reply> {
    let session = session(imageflux, headers).await?;
    session.caller.may(need)?;
    Ok((session, Fields::read(query.as_deref(), body)?))
}

/// The user an email names in the system an access code (hashed) names.
async fn login_row(
    imageflux: &ImageFlux,
    code_hash: &str,
    email: &str,
) -> Result<Option<sqlx::any::AnyRow>, StoreError> {
    Ok(sqlx::query(
        "SELECT u.user_id, u.system_id, u.password_hash FROM if_users u
         JOIN if_systems s ON s.system_id = u.system_id
         WHERE s.access_code_hash = $1 AND u.email = $2",
    )
    .bind(code_hash)
    .bind(email)
    .fetch_optional(&imageflux.services.store.pool)
    .await?)
}

/// `POST /api/login`: throttled per address and per account; a wrong
/// email, code or password all cost one argon2 verification.
pub(crate) async fn login(
    State(imageflux): State<Arc<ImageFlux>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let fields = Fields::read(query.as_deref(), &body)?;
    let email = fields.required_text("email")?;
    let password = fields.required_text("password")?;
    let access_code = fields.required_text("access_code")?;
    let email = email.trim();
    let ip = crate::limits::client_ip(
        peer.ip(),
        &headers,
        &imageflux.services.config.server.trusted_proxies,
    );
    let account = email.to_lowercase();
    if imageflux
        .services
        .limits
        .check(crate::limits::Costly::Login, ip, &account)
        .is_err()
    {
        return Err(ApiError::TooManyAttempts.into());
    }
    let keyed = imageflux.access_codes.hash(&access_code);
    let (row, legacy) = match login_row(&imageflux, &keyed, email).await? {
        Some(row) => (Some(row), false),
        None => {
            let old = login_row(&imageflux, &AccessCodes::legacy_hash(&access_code), email).await?;
            let legacy = old.is_some();
            (old, legacy)
        }
    };
    let stored = row
        .as_ref()
        .map(|row| row.try_get::<String, _>("password_hash"))
        .transpose()?;
    let matched = password_matches(&password, stored).await;
    let Some(row) = row.filter(|_| matched) else {
        return Err(ApiError::LoginFailed.into());
    };
    if legacy {
        sqlx::query("UPDATE if_systems SET access_code_hash = $1 WHERE system_id = $2")
            .bind(&keyed)
            .bind(row.try_get::<String, _>("system_id")?)
            .execute(&imageflux.services.store.pool)
            .await?;
    }
    let user_id: i64 = row.try_get("user_id")?;
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = imageflux.services.clock.now().0;
    let ttl = i64::try_from(imageflux.services.config.imageflux.token_ttl_seconds)
        .unwrap_or(i64::MAX / 2000);
    let expires_at = now + ttl * 1000;
    sqlx::query("DELETE FROM if_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(&imageflux.services.store.pool)
        .await?;
    sqlx::query("INSERT INTO if_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(sha256(&token))
        .bind(user_id)
        .bind(expires_at)
        .execute(&imageflux.services.store.pool)
        .await?;
    Ok(Json(
        json!({ "token": token, "expires_at": jst(expires_at).nexmile() }),
    ))
}

/// One stored schedule.
pub(crate) struct Schedule {
    pub schedule_id: String,
    pub system_id: String,
    pub name: String,
    pub start_at: i64,
    pub end_at: i64,
    pub ladder: Vec<HlsRung>,
    pub channel_id: String,
}

fn schedule_of(row: &sqlx::any::AnyRow) -> Result<Schedule, sqlx::Error> {
    let params: String = row.try_get("params")?;
    Ok(Schedule {
        schedule_id: row.try_get("schedule_id")?,
        system_id: row.try_get("system_id")?,
        name: row.try_get("name")?,
        start_at: row.try_get("start_at")?,
        end_at: row.try_get("end_at")?,
        ladder: serde_json::from_str(&params).unwrap_or_else(|_| rules::default_ladder()),
        channel_id: row.try_get("channel_id")?,
    })
}

const SCHEDULE_COLUMNS: &str =
    "schedule_id, system_id, name, start_at, end_at, params, channel_id, created_at, created_by";

/// The schedule `schedule_id` of the caller's system.
async fn schedule(
    imageflux: &ImageFlux,
    session: &Session,
    fields: &Fields,
) -> Result<Schedule, Reply> {
    let id = fields.required_text("schedule_id")?;
    let row = sqlx::query(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM if_schedules WHERE schedule_id = $1 AND system_id = $2"
    ))
    .bind(id.trim())
    .bind(&session.system_id)
    .fetch_optional(&imageflux.services.store.pool)
    .await?
    .ok_or(ApiError::NotFound("そのスケジュールはありません。"))?;
    Ok(schedule_of(&row)?)
}

/// The schedule on `channel_id`, whatever the system (WHIP, HLS, social stream).
pub(crate) async fn schedule_on_channel(
    store: &Store,
    channel_id: &str,
) -> Result<Option<Schedule>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM if_schedules WHERE channel_id = $1"
    ))
    .bind(channel_id)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(schedule_of).transpose()?)
}

/// `GET /api/schedule`
pub(crate) async fn list_schedules(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
) -> Answer {
    let session = session(&imageflux, &headers).await?;
    session.caller.may(Need::SeeSchedules)?;
    let rows = sqlx::query(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM if_schedules WHERE system_id = $1 ORDER BY start_at DESC"
    ))
    .bind(&session.system_id)
    .fetch_all(&imageflux.services.store.pool)
    .await?;
    let mut listed = Vec::new();
    for row in rows {
        let created_at: i64 = row.try_get("created_at")?;
        let created_by: String = row.try_get("created_by")?;
        let s = schedule_of(&row)?;
        listed.push(json!({
            "schedule_id": s.schedule_id,
            "name": s.name,
            "start_datetime": jst(s.start_at).imageflux_listing(),
            "end_datetime": jst(s.end_at).imageflux_listing(),
            "created_datetime": jst(created_at).imageflux_listing(),
            "created_user_name": created_by,
        }));
    }
    Ok(Json(Value::Array(listed)))
}

/// Refuses a range overlapping another schedule of the system.
async fn refuse_overlap(
    imageflux: &ImageFlux,
    system_id: &str,
    (start, end): (i64, i64),
    except: Option<&str>,
) -> Result<(), Reply> {
    let rows =
        sqlx::query("SELECT schedule_id, start_at, end_at FROM if_schedules WHERE system_id = $1")
            .bind(system_id)
            .fetch_all(&imageflux.services.store.pool)
            .await?;
    let mut others = Vec::new();
    for row in rows {
        let id: String = row.try_get("schedule_id")?;
        if Some(id.as_str()) != except {
            others.push((row.try_get("start_at")?, row.try_get("end_at")?));
        }
    }
    if rules::overlaps(start, end, &others) {
        return Err(
            ApiError::Conflict("ほかのスケジュールと時間帯が重なっています。".into()).into(),
        );
    }
    Ok(())
}

/// `POST /api/schedule`
pub(crate) async fn create_schedule(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::Schedule, query, &body).await?;
    let start = rules::required("start_datetime", fields.datetime("start_datetime")?)?;
    let end = rules::required("end_datetime", fields.datetime("end_datetime")?)?;
    let range = rules::time_range(start, end)?;
    let name = rules::name("name", &fields.required_text("name")?)?;
    let ladder = match fields.get("imageflux_params") {
        None | Some(Value::Null) => rules::default_ladder(),
        Some(value) => rules::ladder(value)?,
    };
    refuse_overlap(&imageflux, &session.system_id, range, None).await?;
    let schedule_id = uuid::Uuid::new_v4().to_string();
    sqlx::query(&format!(
        "INSERT INTO if_schedules ({SCHEDULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&schedule_id)
    .bind(&session.system_id)
    .bind(&name)
    .bind(range.0)
    .bind(range.1)
    .bind(serde_json::to_string(&ladder).unwrap_or_default())
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(imageflux.services.clock.now().0)
    .bind(&session.name)
    .execute(&imageflux.services.store.pool)
    .await?;
    Ok(Json(json!({ "schedule_id": schedule_id })))
}

/// `PATCH /api/schedule`: the fields given change; the result is checked as a whole.
pub(crate) async fn update_schedule(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::Schedule, query, &body).await?;
    let current = schedule(&imageflux, &session, &fields).await?;
    let start = fields
        .datetime("start_datetime")?
        .unwrap_or(current.start_at);
    let end = fields.datetime("end_datetime")?.unwrap_or(current.end_at);
    let range = rules::time_range(start, end)?;
    let name = match fields.text("name")? {
        Some(name) => rules::name("name", &name)?,
        None => current.name,
    };
    let ladder = match fields.get("imageflux_params") {
        None | Some(Value::Null) => current.ladder,
        Some(value) => rules::ladder(value)?,
    };
    refuse_overlap(
        &imageflux,
        &session.system_id,
        range,
        Some(&current.schedule_id),
    )
    .await?;
    sqlx::query(
        "UPDATE if_schedules SET name = $1, start_at = $2, end_at = $3, params = $4 WHERE schedule_id = $5",
    )
    .bind(&name)
    .bind(range.0)
    .bind(range.1)
    .bind(serde_json::to_string(&ladder).unwrap_or_default())
    .bind(&current.schedule_id)
    .execute(&imageflux.services.store.pool)
    .await?;
    Ok(Json(json!({ "ok": true })))
}

/// `DELETE /api/schedule`: only before its start time.
pub(crate) async fn delete_schedule(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::Schedule, query, &body).await?;
    let current = schedule(&imageflux, &session, &fields).await?;
    if current.start_at <= imageflux.services.clock.now().0 {
        return Err(ApiError::Conflict(
            "配信開始時間を過ぎたスケジュールは削除できません。".into(),
        )
        .into());
    }
    sqlx::query("DELETE FROM if_schedules WHERE schedule_id = $1")
        .bind(&current.schedule_id)
        .execute(&imageflux.services.store.pool)
        .await?;
    Ok(Json(json!({ "ok": true })))
}

/// `GET /api/delivery`: the channel and its WHIP ingest URL.
pub(crate) async fn delivery(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::Delivery, query, &body).await?;
    let s = schedule(&imageflux, &session, &fields).await?;
    let base = imageflux
        .services
        .config
        .server
        .public_url
        .trim_end_matches('/');
    Ok(Json(json!({
        "channel_id": s.channel_id,
        "sora_url": format!("{base}/whip/channel/{}", s.channel_id),
    })))
}

/// `GET /api/view`: the channel's HLS playlist.
pub(crate) async fn view(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::View, query, &body).await?;
    let s = schedule(&imageflux, &session, &fields).await?;
    let base = imageflux
        .services
        .config
        .server
        .public_url
        .trim_end_matches('/');
    Ok(Json(json!({
        "playlist_url": format!("{base}/hls/{}/index.m3u8", s.channel_id),
    })))
}

/// `GET /api/user`
pub(crate) async fn list_users(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
) -> Answer {
    let session = session(&imageflux, &headers).await?;
    session.caller.may(Need::User)?;
    let rows = sqlx::query(
        "SELECT user_id, name, email, is_master, perm_delivery, perm_view, perm_schedule,
                perm_user, created_at
         FROM if_users WHERE system_id = $1 ORDER BY user_id",
    )
    .bind(&session.system_id)
    .fetch_all(&imageflux.services.store.pool)
    .await?;
    let mut users = Vec::new();
    for row in rows {
        let flag = |column: &str| row.try_get::<i32, _>(column).map(|v| v != 0);
        let permissions = Permissions {
            delivery: flag("perm_delivery")?,
            view: flag("perm_view")?,
            schedule: flag("perm_schedule")?,
            user: flag("perm_user")?,
        };
        users.push(json!({
            "user_id": row.try_get::<i64, _>("user_id")?,
            "name": row.try_get::<String, _>("name")?,
            "email": row.try_get::<String, _>("email")?,
            "is_master": flag("is_master")?,
            "created_datetime": jst(row.try_get("created_at")?).imageflux_plain(),
            "permissions": permissions,
        }));
    }
    Ok(Json(Value::Array(users)))
}

async fn email_taken(
    imageflux: &ImageFlux,
    system_id: &str,
    email: &str,
    except: Option<i64>,
) -> Result<bool, Reply> {
    let owner: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM if_users WHERE system_id = $1 AND email = $2")
            .bind(system_id)
            .bind(email)
            .fetch_optional(&imageflux.services.store.pool)
            .await?;
    Ok(owner.is_some_and(|id| Some(id) != except))
}

/// `POST /api/user`
pub(crate) async fn create_user(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::User, query, &body).await?;
    let name = rules::name("name", &fields.required_text("name")?)?;
    let email = rules::email(&fields.required_text("email")?)?;
    let password = fields.required_text("password")?;
    let hash = hash_password(rules::password(&password)?).await?;
    let permissions = Permissions {
        delivery: fields.flag("delivery")?.unwrap_or(false),
        view: fields.flag("view")?.unwrap_or(false),
        schedule: fields.flag("schedule")?.unwrap_or(false),
        user: fields.flag("user")?.unwrap_or(false),
    };
    if email_taken(&imageflux, &session.system_id, &email, None).await? {
        return Err(ApiError::Conflict(format!("{email} はすでに登録されています。")).into());
    }
    let now = imageflux.services.clock.now().0;
    let user_id = insert_user(
        &imageflux.services.store,
        &session.system_id,
        &name,
        &email,
        &hash,
        false,
        permissions,
        now,
    )
    .await?;
    Ok(Json(json!({ "ok": true, "user_id": user_id })))
}

/// The user `user_id` of the caller's system, and whether it is a master.
async fn user_in_system(
    imageflux: &ImageFlux,
    session: &Session,
    user_id: i64,
) -> Result<bool, Reply> {
    let is_master: Option<i32> =
        sqlx::query_scalar("SELECT is_master FROM if_users WHERE user_id = $1 AND system_id = $2")
            .bind(user_id)
            .bind(&session.system_id)
            .fetch_optional(&imageflux.services.store.pool)
            .await?;
    let is_master = is_master.ok_or(ApiError::NotFound("そのユーザーはいません。"))?;
    Ok(is_master != 0)
}

/// `PATCH /api/user`
pub(crate) async fn update_user(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::User, query, &body).await?;
    let user_id = fields.user_id()?;
    if user_in_system(&imageflux, &session, user_id).await? {
        session.caller.may(Need::Master)?;
    }
    let pool = &imageflux.services.store.pool;
    if let Some(name) = fields.text("name")? {
        let name = rules::name("name", &name)?;
        sqlx::query("UPDATE if_users SET name = $1 WHERE user_id = $2")
            .bind(name)
            .bind(user_id)
            .execute(pool)
            .await?;
    }
    if let Some(email) = fields.text("email")? {
        let email = rules::email(&email)?;
        if email_taken(&imageflux, &session.system_id, &email, Some(user_id)).await? {
            return Err(ApiError::Conflict(format!("{email} はすでに登録されています。")).into());
        }
        sqlx::query("UPDATE if_users SET email = $1 WHERE user_id = $2")
            .bind(email)
            .bind(user_id)
            .execute(pool)
            .await?;
    }
    if let Some(password) = fields.text("password")? {
        let hash = hash_password(rules::password(&password)?).await?;
        sqlx::query("UPDATE if_users SET password_hash = $1 WHERE user_id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(pool)
            .await?;
    }
    for (field, column) in [
        ("delivery", "perm_delivery"),
        ("view", "perm_view"),
        ("schedule", "perm_schedule"),
        ("user", "perm_user"),
    ] {
        if let Some(allowed) = fields.flag(field)? {
            sqlx::query(&format!(
                "UPDATE if_users SET {column} = $1 WHERE user_id = $2"
            ))
            .bind(i32::from(allowed))
            .bind(user_id)
            .execute(pool)
            .await?;
        }
    }
    Ok(Json(json!({ "ok": true })))
}

/// `DELETE /api/user`: never the master, never oneself; its tokens go too.
pub(crate) async fn delete_user(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::User, query, &body).await?;
    let user_id = fields.user_id()?;
    if user_in_system(&imageflux, &session, user_id).await? {
        return Err(ApiError::Conflict("マスターユーザーは削除できません。".into()).into());
    }
    if user_id == session.caller.user_id {
        return Err(ApiError::Conflict("自分自身は削除できません。".into()).into());
    }
    for table in ["if_tokens", "if_users"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user_id)
            .execute(&imageflux.services.store.pool)
            .await?;
    }
    Ok(Json(json!({ "ok": true })))
}

/// `PATCH /api/password`: the caller's own; its other tokens end.
pub(crate) async fn change_password(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let session = session(&imageflux, &headers).await?;
    let fields = Fields::read(query.as_deref(), &body)?;
    let password = fields.required_text("password")?;
    let hash = hash_password(rules::password(&password)?).await?;
    sqlx::query("UPDATE if_users SET password_hash = $1 WHERE user_id = $2")
        .bind(hash)
        .bind(session.caller.user_id)
        .execute(&imageflux.services.store.pool)
        .await?;
    sqlx::query("DELETE FROM if_tokens WHERE user_id = $1 AND token_hash <> $2")
        .bind(session.caller.user_id)
        .bind(&session.token_hash)
        .execute(&imageflux.services.store.pool)
        .await?;
    Ok(Json(json!({ "ok": true })))
}

/// `PATCH /api/access-code`: the system's, by its master.
pub(crate) async fn change_access_code(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::Master, query, &body).await?;
    let code = fields.required_text("access_code")?;
    let code = rules::access_code(&code)?;
    // One try a few seconds per account, as logins: a master cannot sweep
    // other systems' codes through the uniqueness check.
    if imageflux
        .services
        .limits
        .check(
            crate::limits::Costly::Login,
            std::net::IpAddr::from([0, 0, 0, 0]),
            &format!("access-code/{}", session.system_id),
        )
        .is_err()
    {
        return Err(ApiError::TooManyAttempts.into());
    }
    let hash = imageflux.access_codes.hash(code);
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT system_id FROM if_systems WHERE access_code_hash = $1 OR access_code_hash = $2",
    )
    .bind(&hash)
    .bind(AccessCodes::legacy_hash(code))
    .fetch_optional(&imageflux.services.store.pool)
    .await?;
    if owner.is_some_and(|id| id != session.system_id) {
        return Err(ApiError::Conflict(
            "そのアクセスコードは使えません。別の値にしてください。".into(),
        )
        .into());
    }
    sqlx::query("UPDATE if_systems SET access_code_hash = $1 WHERE system_id = $2")
        .bind(hash)
        .bind(&session.system_id)
        .execute(&imageflux.services.store.pool)
        .await?;
    Ok(Json(json!({ "ok": true })))
}

/// `GET /api/chat`: the schedule's chat, oldest first.
pub(crate) async fn chat(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::Chat, query, &body).await?;
    let s = schedule(&imageflux, &session, &fields).await?;
    let rows = sqlx::query(
        "SELECT seq, user_name, body, at FROM if_chat WHERE schedule_id = $1 ORDER BY seq",
    )
    .bind(&s.schedule_id)
    .fetch_all(&imageflux.services.store.pool)
    .await?;
    let mut chats = Vec::new();
    for row in rows {
        chats.push(json!({
            "chat_id": row.try_get::<i64, _>("seq")?,
            "user_name": row.try_get::<String, _>("user_name")?,
            "body": row.try_get::<String, _>("body")?,
            "created_datetime": jst(row.try_get("at")?).imageflux_plain(),
        }));
    }
    Ok(Json(json!({ "ok": true, "chats": chats })))
}

/// `POST /api/chat`: stored, and on the channel's social stream.
pub(crate) async fn send_chat(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let (session, fields) = request(&imageflux, &headers, Need::Chat, query, &body).await?;
    let s = schedule(&imageflux, &session, &fields).await?;
    let text = rules::chat_body(&fields.required_text("body")?)?;
    let now = imageflux.services.clock.now().0;
    let next: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM if_chat WHERE schedule_id = $1")
            .bind(&s.schedule_id)
            .fetch_one(&imageflux.services.store.pool)
            .await?;
    sqlx::query(
        "INSERT INTO if_chat (schedule_id, seq, user_name, body, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&s.schedule_id)
    .bind(next)
    .bind(&session.name)
    .bind(&text)
    .bind(now)
    .execute(&imageflux.services.store.pool)
    .await?;
    imageflux.social.open_if_missing(&s.channel_id);
    let comment = Comment {
        name: &session.name,
        text: &text,
        from_broadcaster: session.caller.permissions.delivery || session.caller.is_master,
        image: None,
    };
    imageflux.social.comment(&s.channel_id, now, &comment);
    Ok(Json(json!({ "ok": true })))
}
