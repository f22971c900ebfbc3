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

use super::budget::{reservation_price, LocalBook, Period, Standing};
use super::ledger::{postgres, Ledger, LedgerEntry, LedgerError, Store};
use super::max_cost::{self, CapTooLarge};
use super::money::NanoUsd;
use super::ratelimit::{LocalWindows, RedisWindows, Refusal, REDIS_TIMEOUT};
use super::usage_check::UsageBounds;
use crate::config::{Model, Team};
use crate::metering::Metered;
use crate::metrics::Metrics;

/// Bound on the fleet-wide reservation round trip on the request path, unless
/// `ledger.reserve_timeout` says otherwise.
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
    #[error(
        "this request may cost up to {max_cost_usd} USD ({prompt_tokens} prompt tokens at most, {output_tokens} output tokens); team `{team}` has {remaining_usd} USD of its {period} budget left{in_flight}: {short_usd} USD short. Lower max_tokens or shorten the prompt"
    )]
    TooExpensive {
        team: String,
        max_cost_usd: NanoUsd,
        prompt_tokens: u64,
        output_tokens: u64,
        remaining_usd: NanoUsd,
        short_usd: NanoUsd,
        period: &'static str,
        /// `" (… USD more is reserved by requests in flight)"`, or empty.
        in_flight: String,
    },
    #[error(
        "max_tokens is too large: {cap}. Model `{model}` produces at most {max} output tokens"
    )]
    CapTooLarge { model: String, cap: u32, max: u32 },
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
    /// The output cap to send upstream, per choice (docs/spend.md, "Output caps").
    pub output_cap: Option<u32>,
    /// The client's own cap, if it set one: routing expects an answer of that length, not of
    /// the cap sent for the budget's sake.
    pub client_cap: Option<u32>,
    /// What the request can be billed for, to check the upstream's usage against.
    pub bounds: UsageBounds,
}

/// Spend control shared by every request: the ledger, the local budget book, rate windows.
#[derive(Default)]
pub struct Spend {
    pub ledger: Option<Ledger>,
    pub book: LocalBook,
    windows: LocalWindows,
    redis: Option<RedisWindows>,
    /// `ledger.reserve_timeout`; [`RESERVE_TIMEOUT`] when unset.
    pub reserve_timeout: Option<Duration>,
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
            reserve_timeout: None,
        }
    }

    fn postgres(&self) -> Option<&Ledger> {
        self.ledger
            .as_ref()
            .filter(|l| matches!(l.store(), Store::Postgres(_)))
    }

    /// Decides the output cap, checks rate limits and reserves the request's maximum cost
    /// (docs/spend.md, "The reservation bound"): the cheap bound first; when that does not
    /// fit what remains, the prompt tokenized and a default cap lowered to what remains.
    pub async fn admit(
        &self,
        metrics: &Metrics,
        team: &Team,
        model: &Model,
        operation: &impl Metered,
        request_timeout: Duration,
    ) -> Result<Admission, SpendError> {
        let now = now_ms();
        let client_cap = operation.client_output_cap();
        let cap = max_cost::output_cap(model, client_cap).map_err(|CapTooLarge { cap, max }| {
            SpendError::CapTooLarge {
                model: model.name.clone(),
                cap,
                max,
            }
        })?;
        let parts = operation.prompt_parts();
        let mut bound = max_cost::cheap_bound(&parts, operation, cap);
        let text_bytes: u64 = parts.texts.iter().map(|t| t.len() as u64).sum();
        let prompt_bytes = operation.prompt_bytes();
        let prompt_tokens = prompt_bytes.div_ceil(4) as u64;
        let mut admission = Admission {
            team: team.name.clone(),
            output_cap: Some(cap),
            client_cap,
            bounds: UsageBounds::new(bound.prompt, text_bytes, parts.messages, bound.output()),
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
        let price = reservation_price(model.targets.iter().map(|t| &t.price));
        let period = Period::containing(budget.period, now);
        let reserve = |amount| {
            self.reserve(
                metrics,
                &team.name,
                period,
                budget.usd,
                amount,
                now,
                request_timeout,
            )
        };
        let mut amount = max_cost::usd(&price, &bound);
        let (mut standing, mut admitted, mut id) = reserve(amount).await;
        if !admitted && remaining(budget.usd, &standing) > NanoUsd::ZERO {
            // The cheap bound does not fit: count the prompt with the targets' tokenizers,
            // and lower a cap the client did not set to what remains.
            bound.prompt = max_cost::tokenized_prompt(&parts, model, bound.prompt);
            let left = remaining(budget.usd, &standing);
            if client_cap.is_none() {
                if let Some(lowered) = max_cost::affordable_cap(&price, &bound, left) {
                    bound.cap = lowered;
                    bound.thinking = operation.thinking_allowance(lowered);
                }
            }
            amount = max_cost::usd(&price, &bound);
            if amount <= left {
                (standing, admitted, id) = reserve(amount).await;
            }
        }
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
            let left = remaining(budget.usd, &standing);
            if left <= NanoUsd::ZERO {
                return Err(SpendError::BudgetExhausted {
                    team: team.name.clone(),
                    budget_usd: budget.usd,
                    period: period_label(budget.period),
                    renews_at: period.end_rfc3339(),
                });
            }
            return Err(SpendError::TooExpensive {
                team: team.name.clone(),
                max_cost_usd: amount,
                prompt_tokens: bound.prompt,
                output_tokens: bound.output(),
                remaining_usd: left,
                short_usd: amount - left,
                period: period_label(budget.period),
                in_flight: if standing.reserved_usd > NanoUsd::ZERO {
                    format!(
                        " ({} USD more is reserved by requests in flight)",
                        standing.reserved_usd
                    )
                } else {
                    String::new()
                },
            });
        }
        admission.output_cap = Some(bound.cap);
        admission.bounds.output_max = bound.output();
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
                id: crate::ids::random_uuid().to_string(),
                team: team.to_owned(),
                period,
                budget_usd,
                amount_usd: amount,
                now_ms: now,
                expires_ms: now + (request_timeout + RESERVATION_GRACE).as_millis() as i64,
            };
            let id = request.id.clone();
            let result = ledger
                .query(
                    self.reserve_timeout.unwrap_or(RESERVE_TIMEOUT),
                    move |store| async move {
                        match store {
                            Store::Postgres(pool) => postgres::reserve(&pool, &request).await,
                            Store::Sqlite(_) => Err(LedgerError::Query("not postgres".to_owned())),
                        }
                    },
                )
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

/// What a standing leaves of `budget_usd` for a new reservation.
fn remaining(budget_usd: NanoUsd, standing: &Standing) -> NanoUsd {
    budget_usd.minus_floor_zero(standing.spent_usd + standing.reserved_usd)
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
    use crate::metering::bound::PromptParts;

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

    /// A chat request of one 8-byte message (`providers/metered.rs` checks that a real chat
    /// request reports its figures the same way).
    struct Chat(Option<u32>);

    impl Metered for Chat {
        fn prompt_bytes(&self) -> usize {
            8
        }
        fn prompt_parts(&self) -> PromptParts<'_> {
            PromptParts {
                texts: vec!["12345678"],
                messages: 1,
                chat: true,
                ..PromptParts::default()
            }
        }
        fn client_output_cap(&self) -> Option<u32> {
            self.0
        }
        fn choices(&self) -> u32 {
            1
        }
        fn thinking_allowance(&self, _cap: u32) -> u32 {
            0
        }
    }

    fn usd(usd: f64) -> NanoUsd {
        NanoUsd::from_usd_f64(usd).unwrap()
    }

    fn chat(max_tokens: Option<u32>) -> Chat {
        Chat(max_tokens)
    }

    #[tokio::test]
    async fn admission_reserves_the_bound_at_the_dearest_target_and_settles_to_the_cost() {
        let policy = compile_yaml(YAML, &[]).unwrap();
        let (team, model) = (&policy.teams["t"], &policy.models["m"]);
        let metrics = Metrics::new().unwrap();
        let spend = Spend::default();
        let timeout = Duration::from_secs(10);

        // 8 bytes + 8 per message + 8 priming = 24 tokens × 2000 + 10 × 4000 per million.
        let admission = spend
            .admit(&metrics, team, model, &chat(Some(10)), timeout)
            .await
            .unwrap();
        assert_eq!(admission.reserved_usd, usd(0.088), "{admission:?}");
        assert_eq!(admission.output_cap, Some(10));
        assert_eq!(admission.tokens_charged, 2);
        // Without max_tokens the model's max_output_tokens (100) is the cap.
        let second = spend
            .admit(&metrics, team, model, &chat(None), timeout)
            .await
            .unwrap();
        assert_eq!(second.reserved_usd, usd(0.448), "{second:?}");
        assert_eq!(second.output_cap, Some(100));

        let period = Period::containing(crate::config::BudgetPeriod::Daily, now_ms());
        let standing = spend.book.standing("t", period);
        assert_eq!(standing.reserved_usd, usd(0.536));
        spend.settle(admission, usd(0.01), 12, None);
        spend.settle(second, usd(0.85), 50, None);
        let standing = spend.book.standing("t", period);
        assert_eq!(standing.reserved_usd, NanoUsd::ZERO);
        assert_eq!(standing.spent_usd, usd(0.86));

        // 0.14 remains. The client's own cap of 100 cannot be paid: refused, saying by how much.
        let refused = spend
            .admit(&metrics, team, model, &chat(Some(100)), timeout)
            .await
            .unwrap_err();
        let SpendError::TooExpensive {
            remaining_usd,
            short_usd,
            ..
        } = &refused
        else {
            panic!("{refused:?}");
        };
        assert_eq!(*remaining_usd, usd(0.14), "{refused}");
        assert!(*short_usd > usd(0.25), "{refused}");
        assert!(refused.to_string().contains("USD short"), "{refused}");

        // Without a cap of its own, the model's cap is lowered to what remains.
        let lowered = spend
            .admit(&metrics, team, model, &chat(None), timeout)
            .await
            .unwrap();
        let cap = lowered.output_cap.unwrap();
        assert!((16..100).contains(&cap), "{cap}");
        assert!(lowered.reserved_usd <= usd(0.14), "{lowered:?}");
        spend.settle(lowered, usd(0.2), 12, None);
        let exhausted = spend
            .admit(&metrics, team, model, &chat(Some(10)), timeout)
            .await;
        assert!(
            matches!(exhausted, Err(SpendError::BudgetExhausted { .. })),
            "{exhausted:?}"
        );
    }

    #[tokio::test]
    async fn a_cap_beyond_the_models_maximum_is_refused_before_anything_is_charged() {
        let policy = compile_yaml(YAML, &[]).unwrap();
        let (team, model) = (&policy.teams["t"], &policy.models["m"]);
        let metrics = Metrics::new().unwrap();
        let spend = Spend::default();
        let refused = spend
            .admit(
                &metrics,
                team,
                model,
                &chat(Some(1_000_000_000)),
                Duration::from_secs(1),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(SpendError::CapTooLarge {
                    cap: 1_000_000_000,
                    max: 100,
                    ..
                })
            ),
            "{refused:?}"
        );
        let period = Period::containing(crate::config::BudgetPeriod::Daily, now_ms());
        assert_eq!(spend.book.standing("t", period).reserved_usd, NanoUsd::ZERO);
    }
}
