//! The store's SQL, one portable statement per operation for SQLite and PostgreSQL, run on the
//! ledger's pool. Each operation runs on the ledger's runtime (where its connections live,
//! see `metering/service.rs`), bounded by [`OPERATION_TIMEOUT`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::OnceCell;

use super::{StoreError, StoredResponse};
use crate::metering::ledger::Store;

/// Bound on one database operation, queueing for a connection included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `$body` with `$pool` bound to whichever backend's pool `$store` holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// One row as read back: the turn and when it expires (`None`: kept until deleted).
pub(super) type Row = (StoredResponse, Option<i64>);

/// The columns in the order every statement below names them.
type Columns = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    String,
    String,
    String,
);

const UPSERT: &str = "INSERT INTO switchyard_responses (id, team, model, provider, \
    previous_response_id, created_at, expires_at, input_items, output_items, response) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
    ON CONFLICT (id) DO UPDATE SET model = excluded.model, provider = excluded.provider, \
    previous_response_id = excluded.previous_response_id, created_at = excluded.created_at, \
    expires_at = excluded.expires_at, input_items = excluded.input_items, \
    output_items = excluded.output_items, response = excluded.response \
    WHERE switchyard_responses.team = excluded.team";

/// A live row by id, whatever its team (the caller checks the team, and caches the row).
const FETCH: &str = "SELECT id, team, model, provider, previous_response_id, created_at, \
    expires_at, input_items, output_items, response FROM switchyard_responses \
    WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)";

const DELETE: &str = "DELETE FROM switchyard_responses \
    WHERE id = $1 AND team = $2 AND (expires_at IS NULL OR expires_at > $3)";

/// One batch of expired rows, oldest first (the expiry index serves the subquery).
const SWEEP: &str = "DELETE FROM switchyard_responses WHERE id IN (\
    SELECT id FROM switchyard_responses WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)";

/// The ledger's database as the conversation store uses it.
#[derive(Clone)]
pub(super) struct Database {
    /// Filled at construction, or on first use for the in-memory store.
    store: Arc<OnceCell<Store>>,
    /// The runtime the pool's connections live on; `None` runs on the caller's.
    runtime: Option<Handle>,
}

impl Database {
    pub(super) fn new(store: Store, runtime: Option<Handle>) -> Self {
        Self {
            store: Arc::new(OnceCell::new_with(Some(store))),
            runtime,
        }
    }

    /// A private `sqlite::memory:` database, opened on first use on the caller's runtime.
    pub(super) fn in_memory() -> Self {
        Self {
            store: Arc::new(OnceCell::new()),
            runtime: None,
        }
    }

    async fn run<T, F, Fut>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let store = self
            .store
            .get_or_try_init(|| async { Store::open("sqlite::memory:").await })
            .await?
            .clone();
        let work = operation(store);
        let outcome = match &self.runtime {
            Some(runtime) => {
                match tokio::time::timeout(OPERATION_TIMEOUT, runtime.spawn(work)).await {
                    Ok(Ok(result)) => Ok(result),
                    Ok(Err(_)) => Err(StoreError::Stopped),
                    Err(_) => Err(StoreError::Timeout(OPERATION_TIMEOUT)),
                }
            }
            None => tokio::time::timeout(OPERATION_TIMEOUT, work)
                .await
                .map_err(|_| StoreError::Timeout(OPERATION_TIMEOUT)),
        };
        outcome?
    }

    /// Inserts or replaces `turn`; returns only once committed. Another team's row of the
    /// same id is left alone and reported as a conflict.
    pub(super) async fn upsert(
        &self,
        turn: Arc<StoredResponse>,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.run(move |store| async move {
            let t = &*turn;
            let written = on_pool!(&store, pool => sqlx::query(UPSERT)
                .bind(&t.id)
                .bind(&t.team)
                .bind(&t.model)
                .bind(&t.provider)
                .bind(&t.previous_response_id)
                .bind(t.created_at)
                .bind(expires_at)
                .bind(&t.input_items)
                .bind(&t.output_items)
                .bind(&t.response)
                .execute(pool)
                .await?
                .rows_affected());
            if written == 0 {
                return Err(StoreError::Conflict { id: t.id.clone() });
            }
            Ok(())
        })
        .await
    }

    /// The row `id` unless absent or expired at `now` (Unix seconds).
    pub(super) async fn fetch(&self, id: &str, now: i64) -> Result<Option<Row>, StoreError> {
        let id = id.to_owned();
        self.run(move |store| async move {
            let columns: Option<Columns> = on_pool!(&store, pool => sqlx::query_as(FETCH)
                .bind(&id)
                .bind(now)
                .fetch_optional(pool)
                .await?);
            Ok(columns.map(row))
        })
        .await
    }

    /// Deletes `team`'s live row `id`; whether there was one.
    pub(super) async fn delete(&self, team: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        let (team, id) = (team.to_owned(), id.to_owned());
        self.run(move |store| async move {
            let deleted = on_pool!(&store, pool => sqlx::query(DELETE)
                .bind(&id)
                .bind(&team)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected());
            Ok(deleted > 0)
        })
        .await
    }

    /// Deletes up to `batch` rows expired at `now`; how many it deleted.
    pub(super) async fn sweep(&self, now: i64, batch: i64) -> Result<u64, StoreError> {
        self.run(move |store| async move {
            Ok(on_pool!(&store, pool => sqlx::query(SWEEP)
                .bind(now)
                .bind(batch)
                .execute(pool)
                .await?
                .rows_affected()))
        })
        .await
    }

    /// Counts every row, expired or not (tests and operators' checks).
    #[cfg(test)]
    pub(super) async fn count_rows(&self) -> Result<i64, StoreError> {
        self.run(move |store| async move {
            let (count,): (i64,) = on_pool!(&store, pool => sqlx::query_as(
                "SELECT COUNT(*) FROM switchyard_responses")
                .fetch_one(pool)
                .await?);
            Ok(count)
        })
        .await
    }
}

fn row(columns: Columns) -> Row {
    let (
        id,
        team,
        model,
        provider,
        previous_response_id,
        created_at,
        expires_at,
        input_items,
        output_items,
        response,
    ) = columns;
    (
        StoredResponse {
            id,
            team,
            model,
            provider,
            previous_response_id,
            created_at,
            input_items,
            output_items,
            response,
        },
        expires_at,
    )
}
