//! The Nexmile server: signalling, the SFU, the call service with per-second
//! billing, durable partner notifications, partner-facing endpoints and the
//! administrator API. `core` decides; this crate carries out.

pub mod activate;
pub mod admin;
pub mod app_pages;
pub mod calls;
pub mod channels;
pub mod clock;
pub mod config;
pub mod effects;
pub mod hls;
pub mod hls_packager;
pub mod hub;
pub mod imageflux;
pub mod limits;
pub mod lives;
pub mod openapi;
pub mod outbox;
pub mod partner;
mod recorder;
pub mod recording;
pub mod sessions;
pub mod site_owner;
pub mod skyway;
pub mod socialstream;
pub mod state;
pub mod store;
pub mod tls;
pub mod whip;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, patch, post};
use nexmile_core::wire::site_owner::paths;
use tokio::sync::watch;

use crate::calls::Calls;
use crate::clock::Clock;
use crate::config::Config;
use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::partner::PartnerClient;
use crate::state::Ctx;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Effects(#[from] effects::EffectsError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server that is running; dropping it does not stop it, [`RunningServer::stop`] does.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where the plain-HTTP redirect listens, when `[server.tls]` asks for one.
    pub redirect_addr: Option<SocketAddr>,
    /// Where `/admin/*` is served, when `admin_listen` gives it its own address.
    pub admin_addr: Option<SocketAddr>,
    tls: bool,
    ctx: Arc<Ctx>,
    shutdown: watch::Sender<bool>,
    served: tokio::task::JoinHandle<()>,
    /// The certificate watcher, the redirect and admin listeners, the
    /// limits' sweeper: aborted at stop.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The outbox's workers: stopped, not aborted (see `Outbox::stop`).
    outbox_workers: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// `https://addr` when the server serves TLS itself, else `http://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Ends every call and live with a reason (calls 4 once connected, −9
    /// before; lives "server stopping"), waits until each end report is
    /// stored in the outbox, then stops accepting and ends the outbox worker:
    /// what is pending stays stored for the next start.
    pub async fn stop(self) {
        let limit = std::time::Duration::from_secs(10);
        tokio::join!(
            self.ctx.lives.stop_all(limit),
            self.ctx.calls.stop_all(limit)
        );
        let _ = self.shutdown.send(true);
        for task in &self.background {
            task.abort();
        }
        // Deliveries cut short keep their entries; the next start sends them.
        self.ctx.outbox.stop(self.outbox_workers).await;
        let _ = self.served.await;
    }
}

/// `Strict-Transport-Security` on every answer of a server whose public
/// address is https: browsers then never try it over plain HTTP again.
fn with_hsts(router: Router, config: &Config) -> Router {
    let max_age = config.server.hsts_max_age;
    if max_age == 0 || !config.server.public_url.starts_with("https://") {
        return router;
    }
    let value = axum::http::HeaderValue::from_str(&format!("max-age={max_age}"))
        .expect("digits are a header value");
    router.layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        value,
    ))
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let listen_error = |source| StartError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    Ok((listener, bound))
}

/// Every route, with the hardening layers: the public ones, and the
/// administrator's too unless `[server] admin_listen` gives them their own
/// address (see [`admin_router`]).
/// Serves `app` on `listener`, over TLS when a certificate is given, until
/// `stopped` turns true (then ongoing requests get 10 s to finish).
fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    certificate: Option<axum_server::tls_rustls::RustlsConfig>,
    mut stopped: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let Some(certificate) = certificate else {
        return Ok(tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serving.await {
                tracing::error!("server: {e}");
            }
        }));
    };
    let addr = listener.local_addr().ok();
    let listen_error = |source| StartError::Listen {
        addr: addr.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
        source,
    };
    let listener = listener.into_std().map_err(listen_error)?;
    let serving = axum_server::from_tcp_rustls(listener, certificate).map_err(listen_error)?;
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        stopping.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    Ok(tokio::spawn(async move {
        if let Err(e) = serving.handle(handle).serve(app).await {
            tracing::error!("server: {e}");
        }
    }))
}

pub fn router(ctx: Arc<Ctx>) -> Router {
    let routes = public_routes(&ctx);
    let routes = if ctx.config.server.admin_listen.is_none() {
        routes.merge(admin_routes())
    } else {
        routes
    };
    let quick = bounded_in_time(routes.with_state(Arc::clone(&ctx)));
    protected(quick.merge(long_polls().with_state(ctx)))
}

/// `/admin/*` alone, for the administrator's own listener.
pub fn admin_router(ctx: Arc<Ctx>) -> Router {
    protected(bounded_in_time(admin_routes().with_state(ctx)))
}

fn admin_routes() -> Router<Arc<Ctx>> {
    Router::new()
        .route(
            "/admin/sites/{site}/users/{user_id}/revoke",
            post(admin::revoke_sessions),
        )
        .route("/admin/hls/{channel}", get(admin::hls))
        .route(
            "/admin/socialstream/{channel}/messages/{uid}/ignore",
            post(socialstream::ignore_message),
        )
        .route(
            "/admin/socialstream/{channel}/users/ignore",
            post(socialstream::ignore_user),
        )
        .route(
            "/admin/socialstream/{channel}/users/unignore",
            post(socialstream::unignore_user),
        )
        .route(
            "/admin/socialstream/{channel}/host",
            post(socialstream::move_host),
        )
        .route("/admin/outbox", get(admin::outbox))
        .route("/admin/calls", get(admin::calls))
        .route("/admin/lives", get(admin::lives))
        .route("/admin/recordings", get(admin::recordings))
        .route("/admin/recordings/{site}/{file}", get(admin::recording))
        .route(
            "/admin/lives/{live_token}/disconnect",
            post(admin::remove_broadcaster),
        )
        .route(
            "/admin/lives/{live_token}/viewers/{user_id}/disconnect",
            post(admin::remove_viewer),
        )
        .route(
            "/admin/lives/{live_token}/message",
            post(admin::message_broadcaster),
        )
        .route(
            "/admin/calls/{call_token}/disconnect",
            post(admin::disconnect),
        )
}

/// The socialstream reader's long poll holds a request up to 300 s by
/// design: it keeps out of the request timeout and the concurrency limit,
/// and has its own cap of held readers.
fn long_polls() -> Router<Arc<Ctx>> {
    Router::new().route(
        "/socialstream/get.json/{channel}/timeslice/{range}/{refresh_interval}",
        get(socialstream::timeslice),
    )
}

/// At most this many requests are handled at once; more wait for a slot
/// (WebSocket upgrades hold one only until the 101 answer).
const CONCURRENT_REQUESTS: usize = 512;
/// A handler that has not answered by then gets 408; the slowest legitimate
/// ones wait for a partner (8 s) or a WHIP set-up (20 s).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Every body the server takes is JSON, SDP or a form: 64 KiB is ample, and
/// bounds what an anonymous client makes the server hold.
const BODY_LIMIT: usize = 64 * 1024;
/// Pages may run only their own scripts, load their own styles (and the
/// install pages' inline sheet), show pictures from partner sites, and
/// never be framed by another site (clickjacking).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; media-src 'self' blob:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A timeout and a concurrency limit for requests that answer at once.
fn bounded_in_time(router: Router) -> Router {
    router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            CONCURRENT_REQUESTS,
        ))
}

/// An explicit body limit and the security headers, on every answer. HSTS
/// is added by the caller that knows the public address.
fn protected(router: Router) -> Router {
    use axum::http::{HeaderValue, Response, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    let html_only = |value: &'static str| {
        move |response: &Response<axum::body::Body>| {
            let is_html = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
            is_html.then(|| HeaderValue::from_static(value))
        }
    };
    router
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            html_only(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            html_only("DENY"),
        ))
}

fn public_routes(ctx: &Ctx) -> Router<Arc<Ctx>> {
    let mut router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route("/ws", get(ws::upgrade))
        .route("/api/activate", post(activate::activate))
        .route("/v1/json-rpc", post(skyway::json_rpc))
        .route("/api/login", post(imageflux::login))
        .route(
            "/api/schedule",
            get(imageflux::list_schedules)
                .post(imageflux::create_schedule)
                .patch(imageflux::update_schedule)
                .delete(imageflux::delete_schedule),
        )
        .route("/whip/channel/{channel_id}", post(channels::publish))
        .route(
            "/whip/channel-session/{id}",
            axum::routing::delete(channels::stop).patch(whip::patch),
        )
        .route("/hls/{channel}/{file}", get(hls::index))
        .route("/hls/{channel}/{rendition}/{file}", get(hls::file))
        .route("/api/delivery", get(imageflux::delivery))
        .route("/api/view", get(imageflux::view))
        .route(
            "/api/user",
            get(imageflux::list_users)
                .post(imageflux::create_user)
                .patch(imageflux::update_user)
                .delete(imageflux::delete_user),
        )
        .route("/api/password", patch(imageflux::change_password))
        .route("/api/access-code", patch(imageflux::change_access_code))
        .route("/api/chat", get(imageflux::chat).post(imageflux::send_chat))
        .route(
            "/socialstream/get.json/{channel}/default",
            get(socialstream::first),
        )
        .route(
            &format!("{}/{{function}}", ctx.config.apps.link_path()),
            get(app_pages::landing),
        )
        .route(
            &format!("{}/{{function}}/", ctx.config.apps.link_path()),
            get(app_pages::landing),
        )
        .route("/whip/live/{link_id}", post(whip::publish))
        .route("/whep/live/{live_token}/{link_id}", post(whip::watch))
        .route(
            "/whip/session/{id}",
            axum::routing::delete(whip::stop).patch(whip::patch),
        )
        .route(
            "/whep/session/{id}",
            axum::routing::delete(whip::stop).patch(whip::patch),
        )
        .route("/.well-known/assetlinks.json", get(app_pages::asset_links))
        .route(
            "/.well-known/apple-app-site-association",
            get(app_pages::apple_app_site_association),
        )
        .route("/api/effects/manifest", get(effects::manifest))
        .route("/api/effects/files/{*path}", get(effects::file))
        .route(paths::PUSH_MESSAGE, post(site_owner::push_message))
        .route(
            paths::UPDATE_USER_BALANCE,
            post(site_owner::update_user_balance),
        );
    // The web version: its assets, and its page for every /web/<function>/.
    let web = &ctx.config.server.web_dir;
    router = router.nest_service(
        "/web",
        tower_http::services::ServeDir::new(web)
            .fallback(tower_http::services::ServeFile::new(web.join("web.html"))),
    );
    for path in paths::DUMP_GIFT {
        router = router.route(path, post(site_owner::dump_gift).get(site_owner::dump_gift));
    }
    router
}

/// Opens the database, starts the outbox worker and serves HTTP + WebSocket.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let config = Arc::new(config);
    let store = Store::open(&config.server.database).await?;
    let clock = Clock::new(config.server.clock_rate);
    let access_codes = imageflux::AccessCodes::load(&store, &config.imageflux).await?;
    imageflux::seed(
        &store,
        &access_codes,
        &config.imageflux.system,
        clock.now().0,
    )
    .await?;
    // What a server that died left running: its last checkpoints become the
    // end reports, queued before the outbox worker starts.
    let recovered = store.recover(clock.now().0).await?;
    if recovered != store::Recovered::default() {
        tracing::warn!(
            "the previous run ended without closing its services: {} end reports queued from their last checkpoints, {} calls closed",
            recovered.reports,
            recovered.calls
        );
    }
    let partner = PartnerClient::new();
    let (outbox, outbox_workers) =
        Outbox::start(store.clone(), Arc::clone(&config), partner.clone(), clock);
    let mut site_effects = std::collections::HashMap::new();
    for site in &config.site {
        if let Some(dir) = &site.effects_dir {
            site_effects.insert(
                site.code.clone(),
                effects::SiteEffects::load(&site.code, dir)?,
            );
        }
    }
    let ctx = Arc::new(Ctx {
        config: Arc::clone(&config),
        store,
        hub: Hub::default(),
        calls: Calls::default(),
        lives: lives::Lives::default(),
        social: socialstream::SocialStreams::default(),
        hls: hls::HlsChannels::default(),
        channels: channels::Channels::default(),
        outbox,
        partner,
        clock,
        limits: limits::Limits::new(&config.limits),
        access_codes,
        balance_updates: tokio::sync::Mutex::default(),
        effects: site_effects,
        video_tests: std::sync::Mutex::default(),
        media_sessions: std::sync::Mutex::default(),
    });
    let (listener, addr) = bind(config.server.listen).await?;
    let (shutdown, stopped) = watch::channel(false);
    let app = with_hsts(router(Arc::clone(&ctx)), &config);
    let mut background = Vec::new();
    let forgetting = Arc::clone(&ctx);
    background.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            forgetting.limits.forget_idle();
        }
    }));
    let mut redirect_addr = None;
    let certificate = match &config.server.tls {
        None => None,
        Some(files) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let certificate = tls::load(files).await?;
            background.push(tls::watch(certificate.clone(), files.clone()));
            if let Some(plain) = files.redirect_listen {
                let (redirect_listener, bound) = bind(plain).await?;
                redirect_addr = Some(bound);
                let redirect =
                    with_hsts(tls::redirect_to_https(&config.server.public_url), &config);
                background.push(tokio::spawn(async move {
                    if let Err(e) = axum::serve(redirect_listener, redirect).await {
                        tracing::error!("http redirect: {e}");
                    }
                }));
            }
            Some(certificate)
        }
    };
    let mut admin_addr = None;
    if let Some(admin) = config.server.admin_listen {
        let (admin_listener, bound) = bind(admin).await?;
        admin_addr = Some(bound);
        let admin_app = with_hsts(admin_router(Arc::clone(&ctx)), &config);
        background.push(serve(
            admin_listener,
            admin_app,
            certificate.clone(),
            stopped.clone(),
        )?);
    }
    let served = serve(listener, app, certificate, stopped)?;
    Ok(RunningServer {
        addr,
        redirect_addr,
        admin_addr,
        tls: config.server.tls.is_some(),
        ctx,
        shutdown,
        served,
        background,
        outbox_workers,
    })
}
