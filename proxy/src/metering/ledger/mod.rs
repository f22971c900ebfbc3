//! The spend ledger: one row per finished request, written in batches off the request path.
//!
//! [`Ledger::record`] never blocks and never drops: it appends to an in-memory buffer. A
//! writer task on the ledger's own runtime takes up to [`BATCH`] entries at a time and writes
//! them in one transaction, at least every `flush_interval`. A failed write puts the batch
//! back at the front and retries with backoff, so an outage only grows the buffer (its size
//! is a gauge; entries beyond the configured bound are counted, and still kept). Entries are
//! keyed by a fresh id, so a retried batch whose first commit did land cannot count twice.
//! After `kill -9`, only what was still in the buffer is lost.

pub mod audit;
mod migrate;
pub mod postgres;
pub mod retention;
pub mod sqlite;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge};
use thiserror::Error;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::money::NanoUsd;

/// The ledger table, the same on SQLite and PostgreSQL (both take this portable SQL).
pub(crate) const LEDGER_TABLE: &str = "CREATE TABLE IF NOT EXISTS switchyard_ledger (
    entry_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    team TEXT NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    target TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    latency_ms BIGINT NOT NULL,
    ttft_ms BIGINT,
    attempts BIGINT NOT NULL,
    status TEXT NOT NULL,
    usage_estimated BOOLEAN NOT NULL
)";
pub(crate) const LEDGER_INDEX_TEAM_AT: &str =
    "CREATE INDEX IF NOT EXISTS switchyard_ledger_team_at ON switchyard_ledger (team, at_ms)";
pub(crate) const LEDGER_INDEX_AT: &str =
    "CREATE INDEX IF NOT EXISTS switchyard_ledger_at ON switchyard_ledger (at_ms)";
/// Schema version 2: the client API of each entry (`chat`, `messages`, `embeddings`, ...);
/// rows written before it say `''`.
pub(crate) const LEDGER_ADD_API: &str =
    "ALTER TABLE switchyard_ledger ADD COLUMN api TEXT NOT NULL DEFAULT ''";
/// Schema version 3: prompt tokens written to a prompt cache, in a column of their own
/// (they are priced apart from plain input); rows written before it say 0. (Version 2 is
/// the `api` column of the Messages work.)
pub(crate) const LEDGER_ADD_CACHE_WRITE: &str =
    "ALTER TABLE switchyard_ledger ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0";
/// Schema version 5: the audit trail (docs/operations.md, "Audit trail"): each attempt's
/// target and outcome as `x-switchyard-route` shows them, the policy version that routed
/// the request, and the client's own `x-request-id`. Rows written before it say `''`, `''`
/// and NULL. (Added after versions 6 and 7; `migrate::apply` applies any missing version.)
pub(crate) const LEDGER_ADD_AUDIT: &[&str] = &[
    "ALTER TABLE switchyard_ledger ADD COLUMN attempt_chain TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE switchyard_ledger ADD COLUMN policy_version TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE switchyard_ledger ADD COLUMN client_request_id TEXT",
];
// Schema version 4 (money as integers: `cost_usd DOUBLE PRECISION` becomes
// `cost_nano_usd BIGINT`) differs per backend: see `sqlite.rs` and `postgres.rs`.
/// Schema version 7: whether the entry's stream was resumed on another target
/// (docs/streams.md); rows written before it say false.
pub(crate) const LEDGER_ADD_RESUMED: &str =
    "ALTER TABLE switchyard_ledger ADD COLUMN resumed BOOLEAN NOT NULL DEFAULT FALSE";

/// Entries written per transaction.
pub const BATCH: usize = 500;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why the ledger could not do something. Never carries the database URL (it may hold a password).
#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("ledger database error: {0}")]
    Database(String),
    #[error("the ledger did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the ledger task stopped")]
    Stopped,
    #[error("{0}")]
    Query(String),
}

impl From<sqlx::Error> for LedgerError {
    fn from(error: sqlx::Error) -> Self {
        // sqlx's messages name hosts and databases, never passwords; keep only the kind for
        // configuration errors, which may echo the URL.
        match error {
            sqlx::Error::Configuration(_) => {
                LedgerError::Database("invalid ledger URL or options".to_owned())
            }
            other => LedgerError::Database(other.to_string()),
        }
    }
}

/// One finished request, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    /// Unique per entry (the client may reuse request ids).
    pub entry_id: String,
    pub request_id: String,
    /// When the request started, Unix milliseconds (UTC).
    pub at_ms: i64,
    pub team: String,
    pub key_id: String,
    pub model: String,
    /// The client API called ([`crate::endpoint::Api::label`]).
    pub api: String,
    pub provider: String,
    pub target: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    /// Prompt tokens written to the upstream's prompt cache (beside `cached_tokens`, the reads).
    pub cache_write_tokens: i64,
    pub cost_usd: NanoUsd,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub attempts: i64,
    pub status: String,
    pub usage_estimated: bool,
    /// The stream broke and was continued on another target; the entry covers every attempt.
    pub resumed: bool,
    /// Every target tried and its outcome, `target=outcome, …` (as `x-switchyard-route`).
    pub attempt_chain: String,
    /// The version of the policy that routed the request (`/admin/routes` `version`).
    pub policy_version: String,
    /// The client's `x-request-id`, when it sent one the proxy kept as `request_id`.
    pub client_request_id: Option<String>,
    /// The fleet-wide budget reservation this entry settles (PostgreSQL only).
    pub reservation_id: Option<String>,
}

/// A spend aggregate: one team × model × provider over a time range.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendRow {
    pub team: String,
    pub model: String,
    pub provider: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: NanoUsd,
}

/// Where entries are stored.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Store {
    /// Connects and applies the migrations. `url` is `sqlite://…` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, LedgerError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(postgres::open(url).await?))
        } else {
            Ok(Store::Sqlite(sqlite::open(url).await?))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Writes `entries` in one transaction; an entry already written (a retried batch) is
    /// ignored.
    pub async fn insert(&self, entries: &[LedgerEntry]) -> Result<(), LedgerError> {
        match self {
            Store::Sqlite(pool) => sqlite::insert(pool, entries).await,
            Store::Postgres(pool) => postgres::insert(pool, entries).await,
        }
    }

    /// Spend per team, model and provider for entries with `from_ms <= at < to_ms`.
    pub async fn spend(
        &self,
        from_ms: i64,
        to_ms: i64,
        team: Option<&str>,
    ) -> Result<Vec<SpendRow>, LedgerError> {
        type Row = (String, String, String, i64, i64, i64, i64, i64, i64);
        let sql = spend_sql(self);
        let team = team.map(str::to_owned);
        let rows: Vec<Row> = match self {
            Store::Sqlite(pool) => {
                sqlx::query_as(sql)
                    .bind(from_ms)
                    .bind(to_ms)
                    .bind(team)
                    .fetch_all(pool)
                    .await?
            }
            Store::Postgres(pool) => {
                sqlx::query_as(sql)
                    .bind(from_ms)
                    .bind(to_ms)
                    .bind(team)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(
                |(team, model, provider, requests, input, output, cached, written, cost)| {
                    SpendRow {
                        team,
                        model,
                        provider,
                        requests,
                        input_tokens: input,
                        output_tokens: output,
                        cached_tokens: cached,
                        cache_write_tokens: written,
                        cost_usd: NanoUsd::from_nanos(cost),
                    }
                },
            )
            .collect())
    }

    /// Spend per team and UTC day number since `from_ms`, to seed the local budget book.
    pub async fn spend_by_day(
        &self,
        from_ms: i64,
    ) -> Result<Vec<(String, i64, NanoUsd)>, LedgerError> {
        // SQLite's SUM of integers is an integer (an error on overflow, never a wrap);
        // PostgreSQL's SUM(bigint) is numeric, cast back (also an error on overflow).
        let sql = match self {
            Store::Sqlite(_) => {
                "SELECT team, at_ms / 86400000 AS day, SUM(cost_nano_usd) FROM switchyard_ledger \
                 WHERE at_ms >= $1 GROUP BY team, at_ms / 86400000"
            }
            Store::Postgres(_) => {
                "SELECT team, at_ms / 86400000 AS day, SUM(cost_nano_usd)::BIGINT \
                 FROM switchyard_ledger WHERE at_ms >= $1 GROUP BY team, at_ms / 86400000"
            }
        };
        let rows: Vec<(String, i64, i64)> = match self {
            Store::Sqlite(pool) => sqlx::query_as(sql).bind(from_ms).fetch_all(pool).await?,
            Store::Postgres(pool) => sqlx::query_as(sql).bind(from_ms).fetch_all(pool).await?,
        };
        Ok(rows
            .into_iter()
            .map(|(team, day, nanos)| (team, day, NanoUsd::from_nanos(nanos)))
            .collect())
    }

    pub async fn ping(&self) -> Result<(), LedgerError> {
        match self {
            Store::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Store::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }
}

fn spend_sql(store: &Store) -> &'static str {
    // Integer sums: SQLite's SUM of integers is an integer; PostgreSQL's SUM(bigint) is
    // numeric, so cast it back.
    match store {
        Store::Sqlite(_) => {
            "SELECT team, model, provider, COUNT(*), SUM(input_tokens), SUM(output_tokens), \
             SUM(cached_tokens), SUM(cache_write_tokens), SUM(cost_nano_usd) FROM switchyard_ledger \
             WHERE at_ms >= $1 AND at_ms < $2 AND ($3 IS NULL OR team = $3) \
             GROUP BY team, model, provider ORDER BY team, model, provider"
        }
        Store::Postgres(_) => {
            "SELECT team, model, provider, COUNT(*)::BIGINT, SUM(input_tokens)::BIGINT, \
             SUM(output_tokens)::BIGINT, SUM(cached_tokens)::BIGINT, \
             SUM(cache_write_tokens)::BIGINT, SUM(cost_nano_usd)::BIGINT \
             FROM switchyard_ledger \
             WHERE at_ms >= $1 AND at_ms < $2 AND ($3::TEXT IS NULL OR team = $3) \
             GROUP BY team, model, provider ORDER BY team, model, provider"
        }
    }
}

/// The ledger's counters, cloned from the registered [`crate::metrics::Metrics`].
#[derive(Clone)]
pub struct LedgerMetrics {
    pub buffered: IntGauge,
    pub over_bound: IntCounter,
    pub writes: IntCounterVec,
    pub written: IntCounter,
}

/// Handle to the ledger: cheap to clone, usable from any runtime.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    runtime: Handle,
    pending: Mutex<VecDeque<LedgerEntry>>,
    /// Held while a batch is being written, so a final flush waits for the writer's batch.
    writing: tokio::sync::Mutex<()>,
    wake: Notify,
    bound: usize,
    flush_interval: Duration,
    reachable: AtomicBool,
    metrics: LedgerMetrics,
}

impl Ledger {
    /// Starts the writer task on `runtime` (the ledger's own runtime).
    pub fn start(
        store: Store,
        runtime: Handle,
        flush_interval: Duration,
        bound: usize,
        metrics: LedgerMetrics,
    ) -> Ledger {
        let ledger = Ledger {
            inner: Arc::new(Inner {
                store,
                runtime: runtime.clone(),
                pending: Mutex::new(VecDeque::new()),
                writing: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
                bound,
                flush_interval,
                reachable: AtomicBool::new(true),
                metrics,
            }),
        };
        let writer = ledger.clone();
        runtime.spawn(async move { writer.run().await });
        ledger
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    /// Whether the last write (or ping) succeeded.
    pub fn reachable(&self) -> bool {
        self.inner.reachable.load(Ordering::Relaxed)
    }

    pub fn buffered(&self) -> usize {
        self.pending().len()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<LedgerEntry>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts an entry. Never blocks, never drops.
    pub fn record(&self, entry: LedgerEntry) {
        let len = {
            let mut pending = self.pending();
            pending.push_back(entry);
            pending.len()
        };
        let metrics = &self.inner.metrics;
        metrics.buffered.set(len as i64);
        if len > self.inner.bound {
            metrics.over_bound.inc();
            if len == self.inner.bound + 1 {
                tracing::warn!(
                    buffered = len,
                    "the ledger buffer is over its bound; entries are kept in memory until the ledger accepts them"
                );
            }
        }
        if len >= BATCH {
            self.inner.wake.notify_one();
        }
    }

    async fn run(&self) {
        let mut failures = 0u32;
        loop {
            let wait = match failures {
                0 => self.inner.flush_interval,
                n => (Duration::from_millis(100) * 2u32.saturating_pow(n.min(6))).min(MAX_BACKOFF),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.wake.notified(), if failures == 0 => {}
            }
            loop {
                match self.write_batch().await {
                    Ok(0) => break,
                    Ok(_) => failures = 0,
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        if failures == 1 {
                            tracing::warn!(error = %error, buffered = self.buffered(), "ledger write failed; retrying, entries are kept");
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Writes one batch. Returns how many entries were written (0 when the buffer is empty).
    async fn write_batch(&self) -> Result<usize, LedgerError> {
        let _writing = self.inner.writing.lock().await;
        let batch: Vec<LedgerEntry> = {
            let mut pending = self.pending();
            let n = pending.len().min(BATCH);
            pending.drain(..n).collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let metrics = &self.inner.metrics;
        match self.inner.store.insert(&batch).await {
            Ok(()) => {
                self.inner.reachable.store(true, Ordering::Relaxed);
                metrics.writes.with_label_values(&["ok"]).inc();
                metrics.written.inc_by(batch.len() as u64);
                metrics.buffered.set(self.buffered() as i64);
                Ok(batch.len())
            }
            Err(error) => {
                self.inner.reachable.store(false, Ordering::Relaxed);
                metrics.writes.with_label_values(&["error"]).inc();
                let mut pending = self.pending();
                for entry in batch.into_iter().rev() {
                    pending.push_front(entry);
                }
                metrics.buffered.set(pending.len() as i64);
                Err(error)
            }
        }
    }

    /// Writes everything buffered, retrying until `deadline` passes. Returns what is left.
    pub async fn flush(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            match self.write_batch().await {
                Ok(0) => {
                    // The writer may hold a batch it took before we looked: its lock is
                    // released only after it has written or put it back.
                    let _settled = self.inner.writing.lock().await;
                    if self.buffered() == 0 {
                        return 0;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        self.buffered()
    }

    /// Checks the database answers, within `timeout`; updates [`Ledger::reachable`].
    pub async fn ping(&self, timeout: Duration) -> Result<(), LedgerError> {
        let store = self.inner.store.clone();
        let task = self.inner.runtime.spawn(async move { store.ping().await });
        let result = match tokio::time::timeout(timeout, task).await {
            Err(_) => Err(LedgerError::Timeout(timeout)),
            Ok(Err(_)) => Err(LedgerError::Stopped),
            Ok(Ok(result)) => result,
        };
        self.inner
            .reachable
            .store(result.is_ok(), Ordering::Relaxed);
        result
    }

    /// Runs `f` against the store on the ledger's runtime, bounded by `timeout`.
    pub async fn query<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(Store) -> Fut,
        Fut: std::future::Future<Output = Result<T, LedgerError>> + Send + 'static,
    {
        let task = self.inner.runtime.spawn(f(self.inner.store.clone()));
        match tokio::time::timeout(timeout, task).await {
            Err(_) => Err(LedgerError::Timeout(timeout)),
            Ok(Err(_)) => Err(LedgerError::Stopped),
            Ok(Ok(result)) => result,
        }
    }
}
