//! The durable outbox for requests marked 再送 (decision 11): stored before
//! the first try, retried on core's schedule until a 2xx, dropped after 6 h,
//! every try recorded. A restarted server carries on where it stopped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use nexmile_core::clock::UnixMillis;
use nexmile_core::retry::{RetryState, RetryVerdict};
use tokio::sync::{Notify, Semaphore};

use crate::clock::Clock;
use crate::config::Config;
use crate::partner::{PartnerClient, REPLY_TIMEOUT};
use crate::store::{Attempt, OutboxEntry, Store};

/// Entries claimed at once, and how long a claim lasts (server clock): the
/// worst batch, one dead site's 32 entries four at a time at 8 s each, takes
/// 64 s.
const BATCH: i64 = 32;
const LEASE_MS: i64 = 2 * 60 * 1000;
/// Deliveries in flight at once, and for one site.
const AT_ONCE: usize = 16;
const PER_SITE_AT_ONCE: usize = 4;
/// Delivered and dropped entries are kept a week for `/admin/outbox`.
const KEEP_MS: i64 = 7 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY_MS: i64 = 60 * 60 * 1000;

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    wake: Arc<Notify>,
    clock: Clock,
}

impl Outbox {
    /// The outbox and its worker, which starts with whatever a previous run left pending.
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
        };
        let worker = tokio::spawn(outbox.clone().run(config, client));
        (outbox, worker)
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

    /// Tells the worker that entries were stored.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn run(self, config: Arc<Config>, client: PartnerClient) {
        let mut pruned_at = i64::MIN;
        loop {
            let now = self.clock.now().0;
            match self.store.claim_due(now, now + LEASE_MS, BATCH).await {
                Ok(entries) => self.deliver_all(entries, &config, &client).await,
                Err(e) => tracing::error!("outbox: {e}"),
            }
            if now.saturating_sub(pruned_at) >= PRUNE_EVERY_MS {
                pruned_at = now;
                match self.store.prune_outbox(now - KEEP_MS).await {
                    Ok(0) => {}
                    Ok(gone) => {
                        tracing::info!("outbox: {gone} finished entries older than 7 days pruned")
                    }
                    Err(e) => tracing::error!("outbox: {e}"),
                }
            }
            let wait = match self.store.next_due().await {
                Ok(Some(next)) => {
                    Duration::from_millis(u64::try_from(next - self.clock.now().0).unwrap_or(0))
                }
                _ => Duration::from_secs(60),
            };
            let wait = self.clock.real(wait).min(Duration::from_secs(5));
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers a claimed batch: sites side by side, a few entries of one
    /// site at a time, so one dead partner (8 s a try) holds up only its own
    /// reports.
    async fn deliver_all(
        &self,
        entries: Vec<OutboxEntry>,
        config: &Config,
        client: &PartnerClient,
    ) {
        let mut per_site: HashMap<String, Arc<Semaphore>> = HashMap::new();
        for entry in &entries {
            per_site
                .entry(entry.site.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_SITE_AT_ONCE)));
        }
        futures_util::stream::iter(entries)
            .for_each_concurrent(AT_ONCE, |entry| {
                let slots = Arc::clone(&per_site[&entry.site]);
                async move {
                    let _slot = slots.acquire_owned().await;
                    self.deliver(entry, config, client).await;
                }
            })
            .await;
    }

    async fn deliver(&self, mut entry: OutboxEntry, config: &Config, client: &PartnerClient) {
        let at = self.clock.now();
        let outcome = match config.site(&entry.site) {
            Some(site) => client
                .post(
                    site,
                    &entry.url,
                    &entry.body,
                    &entry.request_id,
                    REPLY_TIMEOUT,
                )
                .await
                .map_err(|f| f.to_string()),
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
