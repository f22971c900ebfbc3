//! The bounded in-memory cache in front of `switchyard_responses`: recent turns by id, so that
//! expanding a conversation's `previous_response_id` chain stays off the database.
//!
//! The database stays the truth: every write goes there first, and an entry lives at most
//! [`TIME_TO_LIVE`], which bounds how long a turn deleted by another replica sharing the
//! PostgreSQL database can still be read from this replica's cache. Entries keep their expiry,
//! so an expired turn is invisible here even before the sweeper deletes its row.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use super::StoredResponse;

/// How long an entry may serve reads before the database is asked again.
pub(super) const TIME_TO_LIVE: Duration = Duration::from_secs(300);

/// A cached turn with its expiry (Unix seconds; `None`: kept until deleted).
pub(super) struct Cached {
    pub(super) turn: Arc<StoredResponse>,
    pub(super) expires_at: Option<i64>,
}

impl Cached {
    pub(super) fn live_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

#[derive(Clone)]
pub(super) struct ResponseCache {
    /// `None` when `responses.cache_entries` is 0.
    entries: Option<Cache<String, Arc<Cached>>>,
}

impl ResponseCache {
    pub(super) fn new(capacity: u64) -> Self {
        let entries = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(TIME_TO_LIVE)
                .build()
        });
        Self { entries }
    }

    pub(super) async fn get(&self, id: &str) -> Option<Arc<Cached>> {
        self.entries.as_ref()?.get(id).await
    }

    pub(super) async fn insert(&self, turn: Arc<StoredResponse>, expires_at: Option<i64>) {
        if let Some(entries) = &self.entries {
            let id = turn.id.clone();
            entries
                .insert(id, Arc::new(Cached { turn, expires_at }))
                .await;
        }
    }

    pub(super) async fn invalidate(&self, id: &str) {
        if let Some(entries) = &self.entries {
            entries.invalidate(id).await;
        }
    }

    /// Entries held (after pending evictions ran), for tests of the bound.
    #[cfg(test)]
    pub(super) async fn len(&self) -> u64 {
        match &self.entries {
            Some(entries) => {
                entries.run_pending_tasks().await;
                entries.entry_count()
            }
            None => 0,
        }
    }
}
