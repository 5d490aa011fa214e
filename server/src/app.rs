//! The composition root: every area's state, built once, and the router
//! that hands each handler only the part it takes (axum's `FromRef`).

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, patch, post};
use nexmile_core::wire::site_owner::paths;

use crate::calls::Calls;
use crate::compat::imageflux::ingest::{self as channels, Channels};
use crate::compat::imageflux::{self, AccessCodes, ImageFlux};
use crate::compat::skyway::{self, SkyWay};
use crate::compat::socialstream;
use crate::config::Config;
use crate::hls::{self, HlsChannels};
use crate::lives::Lives;
use crate::services::Services;
use crate::signalling::dispatch::Dispatcher;
use crate::signalling::{activate, ws};
use crate::social_feeds::SocialStreams;
use crate::store::Store;
use crate::video_test::VideoTests;
use crate::web::effect_files::EffectFiles;
use crate::web::site_owner::BalanceUpdates;
use crate::web::whip::WhipSessions;
use crate::web::{
    admin, admin_auth, app_pages, effect_files as effects, openapi, site_owner, whip,
};

#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub calls: Arc<Calls>,
    pub lives: Arc<Lives>,
    social: Arc<SocialStreams>,
    hls: Arc<HlsChannels>,
    channels: Arc<Channels>,
    imageflux: Arc<ImageFlux>,
    skyway: Arc<SkyWay>,
    dispatcher: Arc<Dispatcher>,
    whip: Arc<WhipSessions>,
    balance_updates: Arc<BalanceUpdates>,
    effects: Arc<EffectFiles>,
}

impl AppState {
    /// Wires the areas over the shared services.
    pub fn new(services: Arc<Services>, access_codes: AccessCodes, effects: EffectFiles) -> Self {
        let config = &services.config;
        let social = Arc::new(SocialStreams::new(
            services.clock,
            config.socialstream.clone(),
        ));
        let calls = Arc::new(Calls::new(Arc::clone(&services)));
        let lives = Arc::new(Lives::new(Arc::clone(&services), Arc::clone(&social)));
        let hls = Arc::new(HlsChannels::default());
        let imageflux = Arc::new(ImageFlux {
            services: Arc::clone(&services),
            social: Arc::clone(&social),
            access_codes,
        });
        let channels = Arc::new(Channels::new(Arc::clone(&imageflux), Arc::clone(&hls)));
        let skyway = Arc::new(SkyWay {
            services: Arc::clone(&services),
            calls: Arc::clone(&calls),
            lives: Arc::clone(&lives),
            channels: Arc::clone(&channels),
        });
        let dispatcher = Arc::new(Dispatcher {
            services: Arc::clone(&services),
            calls: Arc::clone(&calls),
            lives: Arc::clone(&lives),
            video_tests: VideoTests::new(Arc::clone(&services)),
        });
        Self {
            whip: Arc::new(WhipSessions::new(Arc::clone(&dispatcher))),
            balance_updates: Arc::new(BalanceUpdates::new(Arc::clone(&calls), Arc::clone(&lives))),
            effects: Arc::new(effects),
            services,
            calls,
            lives,
            social,
            hls,
            channels,
            imageflux,
            skyway,
            dispatcher,
        }
    }
}

/// `State<T>` for each part a handler may take.
macro_rules! parts {
    ($($field:ident: $part:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $part {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        })*
    };
}

parts! {
    services: Arc<Services>,
    calls: Arc<Calls>,
    lives: Arc<Lives>,
    social: Arc<SocialStreams>,
    hls: Arc<HlsChannels>,
    channels: Arc<Channels>,
    imageflux: Arc<ImageFlux>,
    skyway: Arc<SkyWay>,
    dispatcher: Arc<Dispatcher>,
    whip: Arc<WhipSessions>,
    balance_updates: Arc<BalanceUpdates>,
    effects: Arc<EffectFiles>,
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.services.config)
    }
}

impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Self {
        state.services.store.clone()
    }
}

/// Every route, with the hardening layers: the public ones, and the
/// administrator's too unless `[server] admin_listen` gives them their own
/// address (see [`admin_router`]).
pub(crate) fn router(state: AppState) -> Router {
    let config = &state.services.config;
    let routes = public_routes(config);
    let routes = if config.server.admin_listen.is_none() {
        routes.merge(admin_routes(&state))
    } else {
        routes
    };
    let quick = bounded_in_time(routes.with_state(state.clone()));
    protected(quick.merge(long_polls().with_state(state)))
}

/// `/admin/*` alone, for the administrator's own listener.
pub(crate) fn admin_router(state: AppState) -> Router {
    protected(bounded_in_time(admin_routes(&state).with_state(state)))
}

/// Every one behind the administrator's token.
fn admin_routes(state: &AppState) -> Router<AppState> {
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
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.services.config),
            admin_auth::require_admin,
        ))
}

/// The socialstream reader's long poll holds a request up to 300 s by
/// design: it keeps out of the request timeout and the concurrency limit,
/// and has its own cap of held readers.
fn long_polls() -> Router<AppState> {
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

fn public_routes(config: &Config) -> Router<AppState> {
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
            &format!("{}/{{function}}", config.apps.link_path()),
            get(app_pages::landing),
        )
        .route(
            &format!("{}/{{function}}/", config.apps.link_path()),
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
    let web = &config.server.web_dir;
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
