//! [`ConversationStore`]: the API the request path uses to keep and read Responses turns.
//! Writes go through to the database and return once committed (a turn the client saw must
//! survive a crash); reads try the cache first. Another team's turn, and an expired one,
//! behave exactly as an unknown id.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::runtime::Handle;

use super::cache::ResponseCache;
use super::database::Database;
use super::{ConversationSettings, ResponsesMetrics, Retention, StoreError, StoredResponse};
use crate::metering::ledger::Store;

/// Handle to the store: cheap to clone, usable from any runtime.
#[derive(Clone)]
pub struct ConversationStore {
    inner: Arc<Inner>,
}

struct Inner {
    database: Database,
    cache: ResponseCache,
    /// Applied to turns stored from now on; replaced on reload ([`ConversationStore::set_retention`]).
    retention: Mutex<Retention>,
    metrics: ResponsesMetrics,
}

/// Now, in Unix seconds (the unit of `created_at` and of the expiry column).
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

impl ConversationStore {
    /// A store over the ledger's `store` (already migrated by [`Store::open`]), whose queries
    /// run on `runtime` (the ledger's; `None`: the caller's).
    pub fn new(
        store: Store,
        runtime: Option<Handle>,
        settings: &ConversationSettings,
        metrics: ResponsesMetrics,
    ) -> Self {
        Self::with_database(Database::new(store, runtime), settings, metrics)
    }

    /// A store over a private in-memory SQLite database, opened on first use: for a state
    /// built without a ledger (unit tests). Nothing survives the process.
    pub fn in_memory(settings: &ConversationSettings, metrics: ResponsesMetrics) -> Self {
        Self::with_database(Database::in_memory(), settings, metrics)
    }

    fn with_database(
        database: Database,
        settings: &ConversationSettings,
        metrics: ResponsesMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                database,
                cache: ResponseCache::new(settings.cache_entries),
                retention: Mutex::new(settings.retention),
                metrics,
            }),
        }
    }

    pub fn retention(&self) -> Retention {
        *self
            .inner
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a reloaded `responses.retention` to turns stored from now on (rows already
    /// stored keep the expiry they were written with).
    pub fn set_retention(&self, retention: Retention) {
        *self
            .inner
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = retention;
    }

    /// Stores `turn` (replacing an earlier `put` of the same id by the same team), expiring
    /// `responses.retention` after its `created_at`. Returns once the row is committed.
    pub async fn put(&self, turn: StoredResponse) -> Result<(), StoreError> {
        turn.validate()?;
        let expires_at = self.retention().expires_at(turn.created_at);
        let turn = Arc::new(turn);
        self.inner.database.upsert(turn.clone(), expires_at).await?;
        self.inner.metrics.stored.inc();
        self.inner.cache.insert(turn, expires_at).await;
        Ok(())
    }

    /// `team`'s live turn `id`, from the cache when it holds it.
    pub async fn get(
        &self,
        team: &str,
        id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, StoreError> {
        let now = now_secs();
        if let Some(cached) = self.inner.cache.get(id).await {
            self.inner.metrics.cache_hits.inc();
            if !cached.live_at(now) {
                self.inner.cache.invalidate(id).await;
                return Ok(None);
            }
            return Ok(Some(cached.turn.clone()).filter(|turn| turn.team == team));
        }
        self.inner.metrics.cache_misses.inc();
        self.load(team, id, now).await
    }

    /// `team`'s live turn `id`, read from the database (refreshing the cache): what the
    /// `/v1/responses/{id}` endpoints serve, so that a turn deleted through another replica
    /// sharing the database is gone there at once.
    pub async fn get_current(
        &self,
        team: &str,
        id: &str,
    ) -> Result<Option<Arc<StoredResponse>>, StoreError> {
        self.load(team, id, now_secs()).await
    }

    async fn load(
        &self,
        team: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<Arc<StoredResponse>>, StoreError> {
        match self.inner.database.fetch(id, now).await? {
            Some((turn, expires_at)) => {
                let turn = Arc::new(turn);
                self.inner.cache.insert(turn.clone(), expires_at).await;
                Ok(Some(turn).filter(|turn| turn.team == team))
            }
            None => {
                self.inner.cache.invalidate(id).await;
                Ok(None)
            }
        }
    }

    /// Deletes `team`'s live turn `id`; whether there was one (another team's or an expired
    /// turn is not deleted and answers `false`).
    pub async fn delete(&self, team: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.database.delete(team, id, now_secs()).await?;
        if deleted {
            self.inner.cache.invalidate(id).await;
        }
        Ok(deleted)
    }

    /// The chain ending at `id`, oldest first; None when unknown, expired or another team's.
    ///
    /// Follows `previous_response_id` back from `id` and stops at the first turn that is
    /// missing (deleted, expired, or another team's: the older context is gone), at a cycle,
    /// or once it holds `max_turns` turns (the most recent ones).
    pub async fn chain(
        &self,
        team: &str,
        id: &str,
        max_turns: usize,
    ) -> Result<Option<Vec<Arc<StoredResponse>>>, StoreError> {
        let Some(last) = self.get(team, id).await? else {
            return Ok(None);
        };
        let mut seen = HashSet::from([last.id.clone()]);
        let mut turns = vec![last];
        while turns.len() < max_turns {
            let Some(previous) = turns.last().and_then(|t| t.previous_response_id.clone()) else {
                break;
            };
            if !seen.insert(previous.clone()) {
                tracing::warn!(response_id = %id, "stored conversation has a cycle; cut there");
                break;
            }
            match self.get(team, &previous).await? {
                Some(turn) => turns.push(turn),
                None => {
                    tracing::debug!(response_id = %id, missing = %previous, "stored conversation starts after a missing turn");
                    break;
                }
            }
        }
        turns.truncate(max_turns);
        turns.reverse();
        Ok(Some(turns))
    }

    /// Deletes up to `batch` rows expired at `now`: one step of the sweeper.
    pub(super) async fn sweep_batch(&self, now: i64, batch: i64) -> Result<u64, StoreError> {
        let deleted = self.inner.database.sweep(now, batch).await?;
        self.inner.metrics.expired.inc_by(deleted);
        Ok(deleted)
    }

    #[cfg(test)]
    pub(super) fn database(&self) -> &Database {
        &self.inner.database
    }

    #[cfg(test)]
    pub(super) fn cache(&self) -> &ResponseCache {
        &self.inner.cache
    }

    #[cfg(test)]
    pub(super) fn metrics(&self) -> &ResponsesMetrics {
        &self.inner.metrics
    }
}
