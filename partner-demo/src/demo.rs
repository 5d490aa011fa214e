//! A running demo site: start it, drive it, stop it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::DemoConfig;
use crate::error::DemoError;
use crate::faults::Fault;
use crate::routes::router;
use crate::site::{SharedSite, Site, now};
use crate::store::Store;
use crate::store::request_log::LoggedRequest;

/// A partner site serving HTTP on [`PartnerDemo::addr`] until [`PartnerDemo::shutdown`].
pub struct PartnerDemo {
    addr: SocketAddr,
    site: SharedSite,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl PartnerDemo {
    /// Opens the database (creating tables and seed users), binds, and serves.
    pub async fn start(config: DemoConfig) -> Result<PartnerDemo, DemoError> {
        let store = Store::open(&config.database).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| DemoError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| DemoError::Listen {
            addr: config.listen,
            source,
        })?;
        let (stop, stopping) = watch::channel(false);
        let site = Arc::new(Site::new(config, addr, store, stopping.clone())?);
        let app = router(site.clone());
        let server = tokio::spawn(async move {
            let mut stopping = stopping;
            let stopped = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(error = %e, "the partner demo stopped serving");
            }
        });
        Ok(PartnerDemo {
            addr,
            site,
            stop,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, without a trailing slash.
    pub fn url(&self) -> String {
        self.site.url.clone()
    }

    /// Switches a fault on; the newest fault matching a request wins.
    pub async fn set_fault(&self, fault: Fault) {
        self.site.faults.set(fault);
    }

    pub async fn clear_faults(&self) {
        self.site.faults.clear();
    }

    /// Every logged request, oldest first (empty if the database fails, which is logged).
    pub async fn requests(&self) -> Vec<LoggedRequest> {
        self.site
            .store
            .logged_requests()
            .await
            .inspect_err(|e| tracing::error!(error = %e, "cannot read the request log"))
            .unwrap_or_default()
    }

    /// The user's points, or `None` for an unknown user.
    pub async fn points(&self, user_id: &str) -> Option<i64> {
        self.site
            .store
            .user(user_id)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "cannot read a user"))
            .ok()
            .flatten()
            .map(|user| user.points)
    }

    /// The lives on air now, newest first: (liveToken, linkId, broadcaster).
    pub async fn lives_on_air(&self) -> Vec<(String, String, String)> {
        self.site
            .store
            .lives_on_air()
            .await
            .inspect_err(|e| tracing::error!(error = %e, "cannot read the lives"))
            .unwrap_or_default()
            .into_iter()
            .map(|live| (live.live_token, live.link_id, live.liver_id))
            .collect()
    }

    /// A fresh one-time ID for `user_id`, as the top page puts in its links.
    /// (On a database failure, which is logged, the ID returned will not work.)
    pub async fn issue_unique_id(&self, user_id: &str) -> String {
        self.site
            .store
            .issue_unique_id(user_id, now())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot store a one-time ID");
                String::new()
            })
    }

    /// `blocker` refuses calls from `blocked` from now on (架電開始 is refused).
    pub async fn block(&self, blocker: &str, blocked: &str) {
        if let Err(e) = self.site.store.block(blocker, blocked, now()).await {
            tracing::error!(error = %e, "cannot store a block");
        }
    }

    /// `user_id`'s media keeps to one IP family (§3.3.3 candidateMode), as
    /// the site tells Nexmile with the member's details from now on.
    pub async fn set_candidate_mode(
        &self,
        user_id: &str,
        mode: nexmile_core::wire::codes::CandidateMode,
    ) {
        if let Err(e) = self.site.store.set_candidate_mode(user_id, mode).await {
            tracing::error!(error = %e, "cannot store a candidate mode");
        }
    }

    /// Stops serving (held requests are let go) and closes the database.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.server.await {
            tracing::error!(error = %e, "the partner demo server task failed");
        }
        self.site.store.close().await;
    }
}
