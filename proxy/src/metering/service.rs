//! Starting and stopping spend control: the ledger's own runtime (so that database and
//! Redis connections live on one runtime, whatever pingora service uses them), the store
//! connection and migrations, the budget book seeded from the ledger, and the final flush.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;

use super::budget::Period;
use super::ledger::{Ledger, LedgerError, LedgerMetrics, Store};
use super::ratelimit::RedisWindows;
use super::spend::{now_ms, Spend};
use crate::config::Policy;
use crate::metrics::Metrics;
use crate::state::AppState;

/// How often the budget gauges are refreshed from the fleet's standing.
const GAUGE_REFRESH: Duration = Duration::from_secs(5);

/// How far back spend is loaded into the local book: longer than any budget period.
const BOOK_HISTORY: Duration = Duration::from_secs(40 * 86_400);
/// How long the final flush on shutdown keeps trying.
const FINAL_FLUSH: Duration = Duration::from_secs(10);

/// Owns the ledger's runtime; keep it until [`SpendRuntime::shutdown`].
pub struct SpendRuntime {
    runtime: Runtime,
}

/// Connects the ledger (applying migrations), seeds the budget book and connects Redis.
/// A ledger that cannot be opened is an error; Redis that cannot be reached is a warning
/// (rate limits are then counted per replica until it answers).
pub fn start(policy: &Policy, metrics: &Metrics) -> Result<(SpendRuntime, Spend), LedgerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("switchyard-ledger")
        .enable_all()
        .build()
        .map_err(|e| LedgerError::Database(format!("cannot start the ledger runtime: {e}")))?;
    // The reservation's tokenized bound needs them near a budget's end (docs/spend.md).
    super::tokenizer::warm_up();
    let settings = &policy.ledger;
    let store = runtime.block_on(Store::open(settings.url.expose()))?;
    let history =
        runtime.block_on(store.spend_by_day(now_ms() - BOOK_HISTORY.as_millis() as i64))?;
    let redis = match &settings.redis {
        Some(url) => {
            match runtime.block_on(RedisWindows::connect(url.expose(), &settings.redis_prefix)) {
                Ok(redis) => Some(redis),
                Err(error) => {
                    tracing::warn!(error = %error.kind_label(), "cannot connect to Redis; rate limits are counted per replica");
                    None
                }
            }
        }
        None => None,
    };
    tracing::info!(
        backend = store.backend(),
        fleet_rate_limits = redis.is_some(),
        "ledger ready"
    );
    let ledger = Ledger::start(
        store,
        runtime.handle().clone(),
        settings.flush_interval,
        settings.buffer_entries,
        LedgerMetrics {
            buffered: metrics.spend.ledger_buffered.clone(),
            over_bound: metrics.spend.ledger_over_bound.clone(),
            writes: metrics.spend.ledger_writes.clone(),
            written: metrics.spend.ledger_written.clone(),
        },
    );
    let mut spend = Spend::new(Some(ledger), redis);
    spend.reserve_timeout = Some(settings.reserve_timeout);
    spend.book.load(history);
    publish_budgets(policy, &spend, metrics);
    Ok((SpendRuntime { runtime }, spend))
}

/// Sets the budget gauges of every team from the local book.
pub fn publish_budgets(policy: &Policy, spend: &Spend, metrics: &Metrics) {
    for team in policy.teams.values() {
        if let Some(budget) = team.budget {
            let period = Period::containing(budget.period, now_ms());
            let standing = spend.book.standing(&team.name, period);
            let labels = [team.name.as_str()];
            metrics
                .spend
                .budget_usd
                .with_label_values(&labels)
                .set(budget.usd.as_usd_f64());
            metrics
                .spend
                .budget_spent_usd
                .with_label_values(&labels)
                .set(standing.spent_usd.as_usd_f64());
            if let Some(alert_at) = team.alert_at {
                metrics
                    .spend
                    .budget_alert_at
                    .with_label_values(&labels)
                    .set(alert_at);
            }
        }
    }
}

impl SpendRuntime {
    /// Keeps `switchyard_budget_usd` / `switchyard_budget_spent_usd` current for every team of
    /// the active policy (the fleet's figures with PostgreSQL), on the ledger's runtime.
    pub fn refresh_gauges(&self, state: Arc<AppState>) {
        self.runtime.spawn(async move {
            let mut ticker = tokio::time::interval(GAUGE_REFRESH);
            loop {
                ticker.tick().await;
                let policy = state.policy();
                for team in policy.teams.values() {
                    let Some(budget) = team.budget else { continue };
                    let period = Period::containing(budget.period, now_ms());
                    let Ok(standing) = state.spend.standing(&team.name, period).await else {
                        continue;
                    };
                    let labels = [team.name.as_str()];
                    let gauges = &state.metrics.spend;
                    gauges
                        .budget_usd
                        .with_label_values(&labels)
                        .set(budget.usd.as_usd_f64());
                    gauges
                        .budget_spent_usd
                        .with_label_values(&labels)
                        .set(standing.spent_usd.as_usd_f64());
                    if let Some(alert_at) = team.alert_at {
                        gauges
                            .budget_alert_at
                            .with_label_values(&labels)
                            .set(alert_at);
                    }
                }
            }
        });
    }

    /// Deletes ledger rows past `ledger.retention` in the background (`ledger/retention.rs`).
    pub fn sweep_retention(&self, state: Arc<AppState>) {
        self.runtime.spawn(super::ledger::retention::run(state));
    }

    /// Runs `work` to completion on the ledger's runtime (shutdown steps of its tasks).
    pub fn block_on<F: std::future::Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }

    /// Writes everything still buffered (after the server stopped), then stops the runtime.
    pub fn shutdown(self, spend: &Spend) {
        if let Some(ledger) = &spend.ledger {
            let left = self.runtime.block_on(ledger.flush(FINAL_FLUSH));
            if left == 0 {
                tracing::info!("ledger flushed");
            } else {
                tracing::error!(
                    entries = left,
                    "the ledger could not be reached; unwritten entries are lost"
                );
            }
        }
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// Redis errors can echo the URL; log only their kind.
trait KindLabel {
    fn kind_label(&self) -> String;
}

impl KindLabel for redis::RedisError {
    fn kind_label(&self) -> String {
        format!("{:?}", self.kind())
    }
}
