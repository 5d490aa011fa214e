//! The Nexmile server: signalling, the SFU, the call service with per-second
//! billing, durable partner notifications, partner-facing endpoints and the
//! administrator API. `core` decides; this crate carries out.

// What another crate does not use is not `pub`: the public modules are
// the ones the tests and the test kit reach.
#![deny(unreachable_pub)]

mod actors;
mod app;
mod calls;
pub mod clock;
mod compat;
pub mod config;
mod error;
mod hls;
mod hub;
mod limits;
mod lives;
pub mod media;
pub mod partner;
pub mod secrets;
mod services;
mod signalling;
mod social_feeds;
pub mod store;
pub mod tls;
mod tokens;
mod video_test;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;

use crate::app::AppState;
use crate::clock::Clock;
use crate::config::Config;
use crate::hub::Hub;
use crate::partner::PartnerClient;
use crate::partner::outbox::Outbox;
use crate::services::Services;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Effects(#[from] web::effect_files::EffectsError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Media(#[from] nexmile_sfu::SfuError),
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
    state: AppState,
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
            self.state.lives.stop_all(limit),
            self.state.calls.stop_all(limit)
        );
        self.state.services.media.stop();
        let _ = self.shutdown.send(true);
        for task in &self.background {
            task.abort();
        }
        // Deliveries cut short keep their entries; the next start sends them.
        self.state.services.outbox.stop(self.outbox_workers).await;
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

/// Opens the database, starts the outbox worker and serves HTTP + WebSocket.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let config = Arc::new(config);
    let store = Store::open(&config.server.database).await?;
    let clock = Clock::new(config.server.clock_rate);
    let access_codes = compat::imageflux::AccessCodes::load(&store, &config.imageflux).await?;
    compat::imageflux::seed(
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
    let effects = web::effect_files::EffectFiles::load(&config)?;
    let media = nexmile_sfu::MediaNetwork::start(config.media.network()).await?;
    let services = Arc::new(Services {
        media,
        limits: limits::Limits::new(&config.limits),
        config: Arc::clone(&config),
        store,
        hub: Hub::default(),
        outbox,
        partner,
        clock,
    });
    let state = AppState::new(services, access_codes, effects);
    let (listener, addr) = bind(config.server.listen).await?;
    let (shutdown, stopped) = watch::channel(false);
    let app = with_hsts(app::router(state.clone()), &config);
    let mut background = Vec::new();
    let forgetting = Arc::clone(&state.services);
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
        let admin_app = with_hsts(app::admin_router(state.clone()), &config);
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
        state,
        shutdown,
        served,
        background,
        outbox_workers,
    })
}
