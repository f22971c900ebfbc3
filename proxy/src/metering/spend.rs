//! Admission and settlement of spend: before a request is sent, the team's rate limits are
//! checked and its maximum cost is reserved against the budget; when it ends, however it
//! ends, the reservation is settled to the actual cost and the ledger entry is accepted.
//!
//! With a PostgreSQL ledger the reservation is made in the database (atomic across
//! replicas), bounded by [`RESERVE_TIMEOUT`]; if the database does not answer in time the
//! request is admitted against this replica's own book (fail open, counted in
//! `switchyard_budget_fallbacks_total`): an outage of the spend database should not take
//! inference down, and spend stays recorded because ledger entries are buffered.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use super::budget::{max_cost_usd, reservation_price, LocalBook, Period, Standing};
use super::ledger::{postgres, Ledger, LedgerEntry, LedgerError, Store};
use super::money::NanoUsd;
use super::ratelimit::{LocalWindows, RedisWindows, Refusal, REDIS_TIMEOUT};
use crate::config::{Model, Team};
use crate::metering::Metered;
use crate::metrics::Metrics;

/// Bound on the fleet-wide reservation round trip on the request path.
pub const RESERVE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long past the request deadline a fleet reservation outlives a replica that died.
const RESERVATION_GRACE: Duration = Duration::from_secs(60);

/// A request refused before it was sent.
#[derive(Debug, Error)]
pub enum SpendError {
    #[error(
        "team `{team}` has spent its {period} budget of {budget_usd} USD; it renews at {renews_at}"
    )]
    BudgetExhausted {
        team: String,
        budget_usd: NanoUsd,
        period: &'static str,
        renews_at: String,
    },
    #[error("team `{team}` is over its {limit} rate limit; retry in {}s", retry_after.as_secs().max(1))]
    RateLimited {
        team: String,
        limit: &'static str,
        retry_after: Duration,
    },
}

/// What a request holds between admission and its end.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    pub team: String,
    pub reserved_usd: NanoUsd,
    /// The fleet reservation's id when PostgreSQL made it.
    pub reservation_id: Option<String>,
    /// Tokens charged to the rate-limit window at admission.
    pub tokens_charged: u64,
}

/// Spend control shared by every request: the ledger, the local budget book, rate windows.
#[derive(Default)]
pub struct Spend {
    pub ledger: Option<Ledger>,
    pub book: LocalBook,
    windows: LocalWindows,
    redis: Option<RedisWindows>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Spend {
    pub fn new(ledger: Option<Ledger>, redis: Option<RedisWindows>) -> Spend {
        Spend {
            ledger,
            book: LocalBook::default(),
            windows: LocalWindows::default(),
            redis,
        }
    }

    fn postgres(&self) -> Option<&Ledger> {
        self.ledger
            .as_ref()
            .filter(|l| matches!(l.store(), Store::Postgres(_)))
    }

    /// Checks rate limits and reserves the request's maximum cost.
    pub async fn admit(
        &self,
        metrics: &Metrics,
        team: &Team,
        model: &Model,
        operation: &impl Metered,
        request_timeout: Duration,
    ) -> Result<Admission, SpendError> {
        let now = now_ms();
        let prompt_bytes = operation.prompt_bytes();
        let prompt_tokens = prompt_bytes.div_ceil(4) as u64;
        let mut admission = Admission {
            team: team.name.clone(),
            ..Admission::default()
        };
        if let Some(limits) = team.limits {
            self.check_rate(metrics, &team.name, limits, prompt_tokens, now)
                .await
                .map_err(|refusal| SpendError::RateLimited {
                    team: team.name.clone(),
                    limit: refusal.kind.label(),
                    retry_after: refusal.retry_after,
                })?;
            admission.tokens_charged = prompt_tokens;
        }
        let Some(budget) = team.budget else {
            return Ok(admission);
        };
        let max_output = operation.max_output_tokens(model.max_output_tokens);
        let price = reservation_price(model.targets.iter().map(|t| &t.price));
        let amount = max_cost_usd(&price, prompt_bytes, max_output);
        let period = Period::containing(budget.period, now);
        let (standing, admitted, id) = self
            .reserve(
                metrics,
                &team.name,
                period,
                budget.usd,
                amount,
                now,
                request_timeout,
            )
            .await;
        metrics
            .spend
            .budget_usd
            .with_label_values(&[&team.name])
            .set(budget.usd.as_usd_f64());
        metrics
            .spend
            .budget_spent_usd
            .with_label_values(&[&team.name])
            .set(standing.spent_usd.as_usd_f64());
        if !admitted {
            // The rate window was charged for a request that is not sent: give the tokens back.
            self.refund_tokens(&admission, now);
            return Err(SpendError::BudgetExhausted {
                team: team.name.clone(),
                budget_usd: budget.usd,
                period: period_label(budget.period),
                renews_at: period.end_rfc3339(),
            });
        }
        admission.reserved_usd = amount;
        admission.reservation_id = id;
        Ok(admission)
    }

    async fn check_rate(
        &self,
        metrics: &Metrics,
        team: &str,
        limits: crate::config::Limits,
        tokens: u64,
        now: i64,
    ) -> Result<(), Refusal> {
        if let Some(redis) = &self.redis {
            match tokio::time::timeout(REDIS_TIMEOUT, redis.admit(team, limits, tokens, now)).await
            {
                Ok(Ok(verdict)) => return verdict,
                Ok(Err(error)) => {
                    tracing::debug!(error = %error, "redis rate limit check failed; using local windows");
                    metrics
                        .spend
                        .rate_limit_fallbacks
                        .with_label_values(&["error"])
                        .inc();
                }
                Err(_) => {
                    metrics
                        .spend
                        .rate_limit_fallbacks
                        .with_label_values(&["timeout"])
                        .inc();
                }
            }
        }
        self.windows.admit(team, limits, tokens, now)
    }

    #[allow(clippy::too_many_arguments)]
    async fn reserve(
        &self,
        metrics: &Metrics,
        team: &str,
        period: Period,
        budget_usd: NanoUsd,
        amount: NanoUsd,
        now: i64,
        request_timeout: Duration,
    ) -> (Standing, bool, Option<String>) {
        if let Some(ledger) = self.postgres() {
            let request = postgres::ReserveRequest {
                id: uuid::Uuid::new_v4().to_string(),
                team: team.to_owned(),
                period,
                budget_usd,
                amount_usd: amount,
                now_ms: now,
                expires_ms: now + (request_timeout + RESERVATION_GRACE).as_millis() as i64,
            };
            let id = request.id.clone();
            let result = ledger
                .query(RESERVE_TIMEOUT, move |store| async move {
                    match store {
                        Store::Postgres(pool) => postgres::reserve(&pool, &request).await,
                        Store::Sqlite(_) => Err(LedgerError::Query("not postgres".to_owned())),
                    }
                })
                .await;
            match result {
                Ok((standing, admitted)) => {
                    if admitted {
                        self.book.track(team, amount);
                    }
                    return (standing, admitted, admitted.then_some(id));
                }
                Err(error) => {
                    let reason = match error {
                        LedgerError::Timeout(_) => "timeout",
                        _ => "error",
                    };
                    tracing::debug!(error = %error, "fleet budget reservation failed; using the local book");
                    metrics
                        .spend
                        .budget_fallbacks
                        .with_label_values(&[reason])
                        .inc();
                }
            }
        }
        let (standing, admitted) = self.book.try_reserve(team, period, budget_usd, amount);
        (standing, admitted, None)
    }

    fn refund_tokens(&self, admission: &Admission, now: i64) {
        if admission.tokens_charged > 0 {
            self.charge_tokens(&admission.team, -(admission.tokens_charged as i64), now);
        }
    }

    fn charge_tokens(&self, team: &str, tokens: i64, now: i64) {
        if tokens == 0 {
            return;
        }
        self.windows.charge(team, tokens, now);
        if let (Some(redis), Some(ledger)) = (&self.redis, &self.ledger) {
            let redis = redis.clone();
            let team = team.to_owned();
            ledger.runtime().spawn(async move {
                let _ = tokio::time::timeout(REDIS_TIMEOUT, redis.charge(&team, tokens, now)).await;
            });
        }
    }

    /// Ends a request's admission: settles the reservation to `cost`, charges the tokens it
    /// used beyond the estimate, and accepts its ledger entry (if an upstream was called).
    pub fn settle(
        &self,
        admission: Admission,
        cost: NanoUsd,
        tokens: u64,
        entry: Option<LedgerEntry>,
    ) {
        let now = now_ms();
        let at = entry.as_ref().map_or(now, |e| e.at_ms);
        self.book
            .settle(&admission.team, admission.reserved_usd, cost, at);
        if admission.tokens_charged > 0 || tokens > 0 {
            self.charge_tokens(
                &admission.team,
                tokens as i64 - admission.tokens_charged as i64,
                now,
            );
        }
        match (entry, &self.ledger) {
            (Some(mut entry), Some(ledger)) => {
                entry.reservation_id = admission.reservation_id;
                ledger.record(entry);
            }
            (None, Some(ledger)) => {
                if let Some(id) = admission.reservation_id {
                    let ledger = ledger.clone();
                    ledger.clone().runtime().spawn(async move {
                        if let Store::Postgres(pool) = ledger.store() {
                            let _ = postgres::release(pool, &id).await;
                        }
                    });
                }
            }
            (_, None) => {}
        }
    }

    /// The standing of `team` for `period`: the fleet's with PostgreSQL, else this replica's.
    pub async fn standing(&self, team: &str, period: Period) -> Result<Standing, LedgerError> {
        let Some(ledger) = self.postgres() else {
            return Ok(self.book.standing(team, period));
        };
        let team = team.to_owned();
        let now = now_ms();
        ledger
            .query(Duration::from_secs(2), move |store| async move {
                match store {
                    Store::Postgres(pool) => postgres::standing(&pool, &team, period, now).await,
                    Store::Sqlite(_) => Err(LedgerError::Query("not postgres".to_owned())),
                }
            })
            .await
    }
}

pub fn period_label(period: crate::config::BudgetPeriod) -> &'static str {
    match period {
        crate::config::BudgetPeriod::Daily => "daily",
        crate::config::BudgetPeriod::Weekly => "weekly",
        crate::config::BudgetPeriod::Monthly => "monthly",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::compile_yaml;

    const YAML: &str = "version: 1
providers:
  p: { kind: openai, base_url: \"http://127.0.0.1:9/v1\", api_key: k }
models:
  m:
    max_output_tokens: 100
    targets:
      - { provider: p, model: cheap, price: { input: 1000, output: 1000 } }
      - { provider: p, model: dear, price: { input: 2000, output: 4000 } }
teams:
  t:
    keys: [sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8]
    budget: { usd: 1.0, period: daily }
    limits: { rpm: 100 }
";

    /// A chat request of 8 prompt bytes (`providers/metered.rs` checks that a real chat
    /// request reports its figures the same way).
    struct Chat(Option<u32>);

    impl Metered for Chat {
        fn prompt_bytes(&self) -> usize {
            8
        }
        fn max_output_tokens(&self, model_default: Option<u32>) -> Option<u32> {
            self.0.or(model_default)
        }
    }

    fn usd(usd: f64) -> NanoUsd {
        NanoUsd::from_usd_f64(usd).unwrap()
    }

    fn chat(max_tokens: Option<u32>) -> Chat {
        Chat(max_tokens)
    }

    #[tokio::test]
    async fn admission_reserves_at_the_dearest_target_and_settles_to_the_cost() {
        let policy = compile_yaml(YAML, &[]).unwrap();
        let (team, model) = (&policy.teams["t"], &policy.models["m"]);
        let metrics = Metrics::new().unwrap();
        let spend = Spend::default();
        let timeout = Duration::from_secs(10);

        // 8 bytes → 2 tokens × 2000 + 10 × 4000 = 44000 per million.
        let admission = spend
            .admit(&metrics, team, model, &chat(Some(10)), timeout)
            .await
            .unwrap();
        assert_eq!(admission.reserved_usd, usd(0.044));
        assert_eq!(admission.tokens_charged, 2);
        // Without max_tokens the model's max_output_tokens (100) is the allowance.
        let second = spend
            .admit(&metrics, team, model, &chat(None), timeout)
            .await
            .unwrap();
        assert_eq!(second.reserved_usd, usd(0.404));

        let period = Period::containing(crate::config::BudgetPeriod::Daily, now_ms());
        let standing = spend.book.standing("t", period);
        assert_eq!(standing.reserved_usd, usd(0.448));
        spend.settle(admission, usd(0.01), 12, None);
        spend.settle(second, usd(0.95), 50, None);
        let standing = spend.book.standing("t", period);
        assert_eq!(standing.reserved_usd, NanoUsd::ZERO);
        assert_eq!(standing.spent_usd, usd(0.96));

        // 0.96 < 1.0 still admits one more; once it settles over budget, the team is refused.
        let last = spend
            .admit(&metrics, team, model, &chat(Some(10)), timeout)
            .await
            .unwrap();
        spend.settle(last, usd(0.05), 12, None);
        let refused = spend
            .admit(&metrics, team, model, &chat(Some(10)), timeout)
            .await;
        assert!(
            matches!(refused, Err(SpendError::BudgetExhausted { .. })),
            "{refused:?}"
        );
    }
}
