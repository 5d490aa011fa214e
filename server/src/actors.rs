//! The calls or lives now running: each a task reached by its token over a
//! channel. One registry shape for both, so asking, adjusting and stopping
//! behave the same.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// How long a request waits for a call's or live's task.
pub(crate) const ACTOR_WAIT: Duration = Duration::from_secs(1);

struct Entry<C> {
    site: String,
    tx: mpsc::UnboundedSender<C>,
}

type Running<K, C> = Arc<Mutex<HashMap<K, Entry<C>>>>;

/// The tasks running, by their token `K`, each reached with commands `C`.
pub(crate) struct Registry<K, C> {
    running: Running<K, C>,
}

impl<K, C> Default for Registry<K, C> {
    fn default() -> Self {
        Self {
            running: Arc::default(),
        }
    }
}

/// A task's place in its registry, held by the task: dropped, the task
/// leaves it, however it ends.
pub(crate) struct Registration<K: Eq + Hash, C> {
    token: K,
    running: Running<K, C>,
}

impl<K: Eq + Hash, C> Drop for Registration<K, C> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.token);
        }
    }
}

impl<K: Clone + Eq + Hash, C> Registry<K, C> {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<C>>> {
        self.running.lock().expect("registry lock")
    }

    /// Enters the task of `token`, of `site`, reached through `tx`.
    pub(crate) fn register(
        &self,
        token: &K,
        site: &str,
        tx: mpsc::UnboundedSender<C>,
    ) -> Registration<K, C> {
        let entry = Entry {
            site: site.to_owned(),
            tx,
        };
        self.running().insert(token.clone(), entry);
        Registration {
            token: token.clone(),
            running: Arc::clone(&self.running),
        }
    }

    /// False when no task runs under `token` (or it is ending).
    pub(crate) fn send(&self, token: &K, command: C) -> bool {
        self.running()
            .get(token)
            .is_some_and(|entry| entry.tx.send(command).is_ok())
    }

    /// A question answered on a oneshot, within [`ACTOR_WAIT`]: `None` when
    /// the task is not running or busy for longer.
    pub(crate) async fn ask<T>(
        &self,
        token: &K,
        command: impl FnOnce(oneshot::Sender<T>) -> C,
    ) -> Option<T> {
        let (tx, answer) = oneshot::channel();
        if !self.send(token, command(tx)) {
            return None;
        }
        tokio::time::timeout(ACTOR_WAIT, answer).await.ok()?.ok()
    }

    pub(crate) fn tokens(&self) -> Vec<K> {
        self.running().keys().cloned().collect()
    }

    pub(crate) fn tokens_of_site(&self, site: &str) -> Vec<K> {
        self.running()
            .iter()
            .filter(|(_, entry)| entry.site == site)
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// Waits until every task has left, up to `limit`.
    pub(crate) async fn wait_until_empty(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.running().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_leaves_when_its_registration_drops() {
        let registry = Registry::<String, oneshot::Sender<u8>>::default();
        let t1 = "t1".to_owned();
        let (tx, mut inbox) = mpsc::unbounded_channel();
        let registration = registry.register(&t1, "site", tx);
        tokio::spawn(async move {
            while let Some(reply) = inbox.recv().await {
                let _ = reply.send(7);
            }
        });
        assert_eq!(registry.ask(&t1, |reply| reply).await, Some(7));
        assert_eq!(registry.tokens_of_site("site"), ["t1"]);
        assert!(registry.tokens_of_site("other").is_empty());
        drop(registration);
        assert!(registry.tokens().is_empty());
        assert_eq!(registry.ask(&t1, |reply| reply).await, None);
    }
}
