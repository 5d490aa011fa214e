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
use nexmile_compat::imageflux::{self as rules, ApiError, Caller, Fields, Need, Permissions};
use nexmile_core::clock::UnixMillis;
use nexmile_core::datetime::{JST, WireDateTime};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::ImageFluxSystem;
use crate::services::Services;
use crate::social_feeds::Comment;
use crate::social_feeds::SocialStreams;
use crate::store::imageflux::{NewUser, Schedule, UserChanges};
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
    let tables = store.imageflux();
    for system in systems {
        if tables.system_named(&system.name).await?.is_some() {
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
        tables
            .add_system(&system_id, &system.name, &codes.hash(&system.access_code))
            .await?;
        let master = NewUser {
            system_id: &system_id,
            name: &system.master_name,
            email: &system.master_email,
            password_hash: &password,
            is_master: true,
            permissions: Permissions {
                delivery: true,
                view: true,
                schedule: true,
                user: true,
            },
            created_at: now,
        };
        tables.add_user(&master).await?;
    }
    Ok(())
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
    let user = imageflux
        .services
        .store
        .imageflux()
        .token_user(&token_hash)
        .await?
        .ok_or(ApiError::Unauthenticated("トークンが正しくありません。"))?;
    if user.expires_at <= imageflux.services.clock.now().0 {
        return Err(ApiError::Unauthenticated(
            "トークンの有効期限が切れています。ログインし直してください。",
        )
        .into());
    }
    Ok(Session {
        caller: user.caller,
        system_id: user.system_id,
        name: user.name,
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
    let tables = imageflux.services.store.imageflux();
    let (user, legacy) = match tables.login_user(&keyed, email).await? {
        Some(user) => (Some(user), false),
        None => {
            let legacy_hash = AccessCodes::legacy_hash(&access_code);
            let old = tables.login_user(&legacy_hash, email).await?;
            let legacy = old.is_some();
            (old, legacy)
        }
    };
    let stored = user.as_ref().map(|user| user.password_hash.clone());
    let matched = password_matches(&password, stored).await;
    let Some(user) = user.filter(|_| matched) else {
        return Err(ApiError::LoginFailed.into());
    };
    if legacy {
        tables.set_access_code(&user.system_id, &keyed).await?;
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = imageflux.services.clock.now().0;
    let ttl = i64::try_from(imageflux.services.config.imageflux.token_ttl_seconds)
        .unwrap_or(i64::MAX / 2000);
    let expires_at = now + ttl * 1000;
    tables
        .add_token(&sha256(&token), user.user_id, expires_at, now)
        .await?;
    Ok(Json(
        json!({ "token": token, "expires_at": jst(expires_at).nexmile() }),
    ))
}

/// The schedule `schedule_id` of the caller's system.
async fn schedule(
    imageflux: &ImageFlux,
    session: &Session,
    fields: &Fields,
) -> Result<Schedule, Reply> {
    let id = fields.required_text("schedule_id")?;
    let found = imageflux
        .services
        .store
        .imageflux()
        .schedule(id.trim(), &session.system_id)
        .await?;
    Ok(found.ok_or(ApiError::NotFound("そのスケジュールはありません。"))?)
}

/// `GET /api/schedule`
pub(crate) async fn list_schedules(
    State(imageflux): State<Arc<ImageFlux>>,
    headers: HeaderMap,
) -> Answer {
    let session = session(&imageflux, &headers).await?;
    session.caller.may(Need::SeeSchedules)?;
    let schedules = imageflux
        .services
        .store
        .imageflux()
        .schedules(&session.system_id)
        .await?;
    let listed = schedules
        .iter()
        .map(|s| {
            json!({
                "schedule_id": s.schedule_id,
                "name": s.name,
                "start_datetime": jst(s.start_at).imageflux_listing(),
                "end_datetime": jst(s.end_at).imageflux_listing(),
                "created_datetime": jst(s.created_at).imageflux_listing(),
                "created_user_name": s.created_by,
            })
        })
        .collect();
    Ok(Json(Value::Array(listed)))
}

/// Refuses a range overlapping another schedule of the system.
async fn refuse_overlap(
    imageflux: &ImageFlux,
    system_id: &str,
    (start, end): (i64, i64),
    except: Option<&str>,
) -> Result<(), Reply> {
    let schedules = imageflux
        .services
        .store
        .imageflux()
        .schedules(system_id)
        .await?;
    let others: Vec<(i64, i64)> = schedules
        .iter()
        .filter(|s| Some(s.schedule_id.as_str()) != except)
        .map(|s| (s.start_at, s.end_at))
        .collect();
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
    let schedule = Schedule {
        schedule_id: uuid::Uuid::new_v4().to_string(),
        system_id: session.system_id.clone(),
        name,
        start_at: range.0,
        end_at: range.1,
        ladder,
        channel_id: uuid::Uuid::new_v4().simple().to_string(),
        created_at: imageflux.services.clock.now().0,
        created_by: session.name.clone(),
    };
    imageflux
        .services
        .store
        .imageflux()
        .add_schedule(&schedule)
        .await?;
    let schedule_id = schedule.schedule_id;
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
    let updated = Schedule {
        name,
        start_at: range.0,
        end_at: range.1,
        ladder,
        ..current
    };
    imageflux
        .services
        .store
        .imageflux()
        .update_schedule(&updated)
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
    imageflux
        .services
        .store
        .imageflux()
        .delete_schedule(&current.schedule_id)
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
    let users = imageflux
        .services
        .store
        .imageflux()
        .users(&session.system_id)
        .await?;
    let users = users
        .iter()
        .map(|u| {
            json!({
                "user_id": u.caller.user_id,
                "name": u.name,
                "email": u.email,
                "is_master": u.caller.is_master,
                "created_datetime": jst(u.created_at).imageflux_plain(),
                "permissions": u.caller.permissions,
            })
        })
        .collect();
    Ok(Json(Value::Array(users)))
}

async fn email_taken(
    imageflux: &ImageFlux,
    system_id: &str,
    email: &str,
    except: Option<i64>,
) -> Result<bool, Reply> {
    let owner = imageflux
        .services
        .store
        .imageflux()
        .user_with_email(system_id, email)
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
    let user = NewUser {
        system_id: &session.system_id,
        name: &name,
        email: &email,
        password_hash: &hash,
        is_master: false,
        permissions,
        created_at: now,
    };
    let user_id = imageflux.services.store.imageflux().add_user(&user).await?;
    Ok(Json(json!({ "ok": true, "user_id": user_id })))
}

/// The user `user_id` of the caller's system, and whether it is a master.
async fn user_in_system(
    imageflux: &ImageFlux,
    session: &Session,
    user_id: i64,
) -> Result<bool, Reply> {
    let is_master = imageflux
        .services
        .store
        .imageflux()
        .user_is_master(user_id, &session.system_id)
        .await?;
    Ok(is_master.ok_or(ApiError::NotFound("そのユーザーはいません。"))?)
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
    // Every field is checked before anything is written.
    let mut changes = UserChanges::default();
    if let Some(name) = fields.text("name")? {
        changes.name = Some(rules::name("name", &name)?);
    }
    if let Some(email) = fields.text("email")? {
        let email = rules::email(&email)?;
        if email_taken(&imageflux, &session.system_id, &email, Some(user_id)).await? {
            return Err(ApiError::Conflict(format!("{email} はすでに登録されています。")).into());
        }
        changes.email = Some(email);
    }
    if let Some(password) = fields.text("password")? {
        changes.password_hash = Some(hash_password(rules::password(&password)?).await?);
    }
    changes.delivery = fields.flag("delivery")?;
    changes.view = fields.flag("view")?;
    changes.schedule = fields.flag("schedule")?;
    changes.user = fields.flag("user")?;
    imageflux
        .services
        .store
        .imageflux()
        .update_user(user_id, &changes)
        .await?;
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
    imageflux
        .services
        .store
        .imageflux()
        .delete_user(user_id)
        .await?;
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
    imageflux
        .services
        .store
        .imageflux()
        .set_password(session.caller.user_id, &hash, &session.token_hash)
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
    let tables = imageflux.services.store.imageflux();
    let owner = tables
        .access_code_owner(&hash, &AccessCodes::legacy_hash(code))
        .await?;
    if owner.is_some_and(|id| id != session.system_id) {
        return Err(ApiError::Conflict(
            "そのアクセスコードは使えません。別の値にしてください。".into(),
        )
        .into());
    }
    tables.set_access_code(&session.system_id, &hash).await?;
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
    let lines = imageflux
        .services
        .store
        .imageflux()
        .chat(&s.schedule_id)
        .await?;
    let chats: Vec<Value> = lines
        .iter()
        .map(|line| {
            json!({
                "chat_id": line.seq,
                "user_name": line.user_name,
                "body": line.body,
                "created_datetime": jst(line.at).imageflux_plain(),
            })
        })
        .collect();
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
    imageflux
        .services
        .store
        .imageflux()
        .add_chat(&s.schedule_id, &session.name, &text, now)
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
