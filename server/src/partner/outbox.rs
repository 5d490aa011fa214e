//! The durable outbox for requests marked 再送 (decision 11): stored before
//! the first try, retried on core's schedule until a 2xx, dropped after 6 h,
//! every try recorded. A restarted server carries on where it stopped.

use std::sync::Arc;
use std::time::Duration;

use nexmile_core::clock::UnixMillis;
use nexmile_core::retry::{RetryState, RetryVerdict};
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::partner::{PartnerClient, REPLY_TIMEOUT};
use crate::store::{Attempt, OutboxEntry, Store};

/// How long a claim on an entry lasts (server clock): far beyond one try
/// (8 s), short enough that a dead server's entries are soon sent by another.
const LEASE_MS: i64 = 2 * 60 * 1000;
/// Deliveries in flight at once for one site.
const PER_SITE_AT_ONCE: i64 = 4;
/// Delivered and dropped entries are kept a week for `/admin/outbox`.
const KEEP_MS: i64 = 7 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    wake: Arc<Notify>,
    clock: Clock,
    /// This server's name on the leases it takes, so that it can give them
    /// back when it stops.
    instance: Arc<str>,
    /// Set when the server stops: the workers leave between two store
    /// operations, never inside one (see [`Self::stop`]).
    stopping: watch::Sender<bool>,
}

impl Outbox {
    /// The outbox and its workers, which start with whatever a previous run
    /// left pending: one per configured site, so that one dead partner (8 s
    /// a try) holds up only its own reports, and a pruner. Aborting the
    /// returned task ends once [`Self::stop`] has stopped them all.
    pub fn start(
        store: Store,
        config: Arc<Config>,
        client: PartnerClient,
        clock: Clock,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let outbox = Self {
            store,
            wake: Arc::new(Notify::new()),
            clock,
            instance: uuid::Uuid::new_v4().to_string().into(),
            stopping: watch::channel(false).0,
        };
        let workers = outbox.clone();
        let handle = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for site in &config.site {
                let worker = workers.clone();
                let (code, config, client) =
                    (site.code.clone(), Arc::clone(&config), client.clone());
                tasks.spawn(async move { worker.run_site(&code, &config, &client).await });
            }
            tasks.spawn(workers.clone().prune());
            workers.warn_of_unconfigured(&config).await;
            while tasks.join_next().await.is_some() {}
        });
        (outbox, handle)
    }

    /// A new request for `url` of `site`, due now, with its request ID; the
    /// caller stores it (with what else must be written in the same
    /// transaction) and then [`Self::wake`]s the worker.
    pub fn entry(&self, site: &str, url: &str, body: String) -> OutboxEntry {
        let now = self.clock.now().0;
        OutboxEntry {
            request_id: uuid::Uuid::new_v4().to_string(),
            site: site.to_owned(),
            url: url.to_owned(),
            body,
            first_try: now,
            failures: 0,
            next_try: now,
            state: "pending".into(),
        }
    }

    /// Stops the workers, then gives back their claims, so that the entries
    /// they were delivering go out at the next start instead of when the
    /// lease ends (2 min). A delivery in flight is cut short; a store
    /// operation is not: a claim cancelled by an abort could still be
    /// written after the release, leaving its entry leased to a server that
    /// is gone (found by the SIGTERM half of the crash test, under load).
    pub async fn stop(&self, workers: tokio::task::JoinHandle<()>) {
        self.stopping.send_replace(true);
        if tokio::time::timeout(Duration::from_secs(5), workers)
            .await
            .is_err()
        {
            tracing::warn!("outbox: the workers did not stop within 5 s");
        }
        if let Err(e) = self.store.release_claims(&self.instance).await {
            tracing::error!("outbox: {e}");
        }
    }

    /// Resolves once the server is stopping.
    async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stop| *stop).await;
    }

    /// Tells the workers that entries were stored.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Delivers `site`'s due entries, a few at a time, until the server stops.
    async fn run_site(&self, site: &str, config: &Config, client: &PartnerClient) {
        while !*self.stopping.borrow() {
            // Listening before looking, so a wake during the look is not lost.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = self.clock.now().0;
            match self
                .store
                .claim_due(site, &self.instance, now, now + LEASE_MS, PER_SITE_AT_ONCE)
                .await
            {
                Ok(entries) if !entries.is_empty() => {
                    futures_util::future::join_all(
                        entries
                            .into_iter()
                            .map(|entry| self.deliver(entry, config, client)),
                    )
                    .await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!("outbox of {site}: {e}"),
            }
            let wait = match self.store.next_due(site).await {
                Ok(Some(next)) => {
                    Duration::from_millis(u64::try_from(next - self.clock.now().0).unwrap_or(0))
                }
                _ => Duration::from_secs(60),
            };
            let wait = self.clock.real(wait).min(Duration::from_secs(5));
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(wait) => {}
                () = self.stopped() => {}
            }
        }
    }

    /// Forgets finished entries older than a week, every hour.
    async fn prune(self) {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = self.stopped() => return,
            }
            let before = self.clock.now().0 - KEEP_MS;
            match self.store.prune_outbox(before).await {
                Ok(0) => {}
                Ok(gone) => {
                    tracing::info!("outbox: {gone} finished entries older than 7 days pruned")
                }
                Err(e) => tracing::error!("outbox: {e}"),
            }
        }
    }

    /// Pending entries of a site no longer configured cannot be sent: said
    /// once at start, and kept for when the site comes back.
    async fn warn_of_unconfigured(&self, config: &Config) {
        match self.store.sites_pending().await {
            Ok(sites) => {
                for site in sites.iter().filter(|s| config.site(s).is_none()) {
                    tracing::warn!("outbox: reports pending for {site}, which is not configured");
                }
            }
            Err(e) => tracing::error!("outbox: {e}"),
        }
    }

    async fn deliver(&self, mut entry: OutboxEntry, config: &Config, client: &PartnerClient) {
        let at = self.clock.now();
        let outcome = match config.site(&entry.site) {
            Some(site) => {
                let post = client.post(
                    site,
                    &entry.url,
                    &entry.body,
                    &entry.request_id,
                    REPLY_TIMEOUT,
                );
                // Stopping cuts the try short; its claim is given back and
                // the next start sends it again (same request ID).
                tokio::select! {
                    outcome = post => outcome.map_err(|f| f.to_string()),
                    () = self.stopped() => return,
                }
            }
            None => Err(format!("site {} is no longer configured", entry.site)),
        };
        let attempt = match &outcome {
            Ok(delivery) => Attempt {
                at: at.0,
                status: delivery.status,
                latency_ms: i64::try_from(delivery.latency.as_millis()).unwrap_or(i64::MAX),
                error: None,
            },
            Err(error) => Attempt {
                at: at.0,
                status: 0,
                latency_ms: self.clock.now().0 - at.0,
                error: Some(error.clone()),
            },
        };
        if (200..300).contains(&attempt.status) {
            entry.state = "delivered".into();
        } else {
            let mut retry = RetryState {
                first_try: UnixMillis(entry.first_try),
                failures: entry.failures,
            };
            match retry.on_failure(self.clock.now()) {
                RetryVerdict::RetryAt(next) => entry.next_try = next.0,
                RetryVerdict::GiveUp => entry.state = "dropped".into(),
            }
            entry.failures = retry.failures;
        }
        if let Err(e) = self.store.record_attempt(&entry, &attempt).await {
            tracing::error!("outbox: {e}");
        }
    }
}
