//! `ledger.retention`: rows that started longer ago than the retention are deleted by a
//! background task on the ledger's runtime, a batch per statement with a short pause between,
//! so that the writer and readers are never held behind one long delete
//! (docs/configuration.md, "ledger"). Off the request path; counted in
//! `switchyard_ledger_retention_deleted_total`.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;

use super::{LedgerError, Store};
use crate::metering::spend::now_ms;
use crate::state::AppState;

/// Rows deleted per statement.
pub const BATCH: i64 = 5_000;
/// The pause between two batches, so the ledger's writer gets the database in between.
pub const PAUSE: Duration = Duration::from_millis(50);
/// How often the sweeper looks for rows past the retention.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

impl Store {
    /// Deletes up to `limit` rows that started before `cutoff_ms`, oldest first; returns how
    /// many were deleted.
    pub async fn delete_before(&self, cutoff_ms: i64, limit: i64) -> Result<u64, LedgerError> {
        const SQL: &str = "DELETE FROM switchyard_ledger WHERE entry_id IN \
            (SELECT entry_id FROM switchyard_ledger WHERE at_ms < $1 ORDER BY at_ms LIMIT $2)";
        let deleted = match self {
            Store::Sqlite(pool) => sqlx::query(SQL)
                .bind(cutoff_ms)
                .bind(limit)
                .execute(pool)
                .await?
                .rows_affected(),
            Store::Postgres(pool) => sqlx::query(SQL)
                .bind(cutoff_ms)
                .bind(limit)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(deleted)
    }
}

/// Deletes every row that started before `cutoff_ms`, `batch` rows per statement with
/// `pause` between statements; counts them in `deleted`. Returns the total.
pub async fn sweep(
    store: &Store,
    cutoff_ms: i64,
    batch: i64,
    pause: Duration,
    deleted: &IntCounter,
) -> Result<u64, LedgerError> {
    let mut total = 0;
    loop {
        let removed = store.delete_before(cutoff_ms, batch).await?;
        deleted.inc_by(removed);
        total += removed;
        if removed < batch as u64 {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Sweeps every [`SWEEP_INTERVAL`] (the first right away) with the retention of the policy
/// active then, so a reload changes it; runs until the ledger's runtime stops.
pub async fn run(state: Arc<AppState>) {
    let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        let Some(retention) = state.policy().ledger.retention else {
            continue;
        };
        let Some(ledger) = &state.spend.ledger else {
            return;
        };
        let cutoff =
            now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        let counter = &state.metrics.spend.ledger_retention_deleted;
        match sweep(ledger.store(), cutoff, BATCH, PAUSE, counter).await {
            Ok(deleted) => {
                if deleted > 0 {
                    tracing::info!(deleted, "ledger rows past ledger.retention deleted");
                }
                failing = false;
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(error = %error, "cannot delete ledger rows past ledger.retention; retrying next interval");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::ledger::audit::AuditQuery;
    use crate::metering::ledger::sqlite::tests::entry;

    // Real time with no pause: a paused clock would also fire sqlx's pool timeouts while
    // SQLite's worker thread runs a statement.
    #[tokio::test]
    async fn rows_before_the_cutoff_go_in_batches_and_newer_rows_stay() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let entries: Vec<_> = (0..23)
            .map(|i| entry(&format!("e{i:02}"), "t", i * 1_000, 0.1))
            .collect();
        store.insert(&entries).await.unwrap();
        let deleted = IntCounter::new("deleted", "rows deleted").unwrap();

        // Rows at 0 s .. 16 s are older than the cutoff at 16.5 s: 17 of them, in four
        // statements of at most 5 (one statement alone would have deleted 5).
        let total = sweep(&store, 16_500, 5, Duration::ZERO, &deleted)
            .await
            .unwrap();
        assert_eq!(total, 17);
        assert_eq!(deleted.get(), 17);
        let left = store
            .audit(&AuditQuery::all(0, i64::MAX, 100))
            .await
            .unwrap();
        let ids: Vec<&str> = left.iter().map(|r| r.entry_id.as_str()).collect();
        assert_eq!(ids, ["e17", "e18", "e19", "e20", "e21", "e22"]);

        // Nothing more to delete.
        let again = sweep(&store, 16_500, 5, Duration::ZERO, &deleted).await;
        assert_eq!(again.unwrap(), 0);
        assert_eq!(deleted.get(), 17);
    }
}
