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
mod keyframe_pacer;
pub mod live_media;
pub mod lives;
pub mod openapi;
pub mod outbox;
pub mod partner;
pub mod recording;
pub mod sfu;
pub mod site_owner;
pub mod skyway;
pub mod socialstream;
pub mod state;
pub mod store;
pub mod whip;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, patch, post};
use nexmile_core::wire::site_owner::paths;
use tokio::sync::oneshot;

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
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server that is running; dropping it does not stop it, [`RunningServer::stop`] does.
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
    outbox_worker: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, ends the outbox worker; what is pending stays stored.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        self.outbox_worker.abort();
        let _ = self.served.await;
    }
}

pub fn router(ctx: Arc<Ctx>) -> Router {
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
        .route("/admin/hls/{channel}", get(admin::hls))
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
            "/socialstream/get.json/{channel}/timeslice/{range}/{refresh_interval}",
            get(socialstream::timeslice),
        )
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
    router.with_state(ctx)
}

/// Opens the database, starts the outbox worker and serves HTTP + WebSocket.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let config = Arc::new(config);
    let store = Store::open(&config.server.database).await?;
    let clock = Clock::new(config.server.clock_rate);
    imageflux::seed(&store, &config.imageflux.system, clock.now().0).await?;
    let partner = PartnerClient::new();
    let (outbox, outbox_worker) =
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
        effects: site_effects,
        video_tests: std::sync::Mutex::default(),
        media_sessions: std::sync::Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.server.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.server.listen,
        source,
    })?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let app = router(ctx);
    let served = tokio::spawn(async move {
        let serving = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serving.await {
            tracing::error!("server: {e}");
        }
    });
    Ok(RunningServer {
        addr,
        shutdown,
        served,
        outbox_worker,
    })
}
