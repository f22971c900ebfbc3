//! Live figures per target, keyed by [`TargetId`] outside the policy snapshot so they survive
//! a reload: measured latency (streams, and whole answers with a fit against their length:
//! `latency.rs`), outcomes over a sliding window, cool-downs after capacity errors, the
//! circuit breaker, in-flight counts and observed rate limits.
//!
//! An attempt holds an [`AttemptPermit`] from start to verdict; the permit is how outcomes
//! are reported, so a half-open circuit's single probe slot is always given back.
//! Time is `tokio::time::Instant`, so tests drive it with a paused clock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::circuit::{Circuit, CircuitState};
use super::headroom::{local_headroom, min_known, ObservedLimits, RateLimitHeaders};
use super::latency::{StreamFigures, StreamWindow, WholeFigures, WholeWindow};
use super::window::{Counts, OutcomeWindow};
use crate::config::{HealthSettings, Target, TargetId, Tier};

/// Longest cool-down an upstream's `retry-after` may impose (a bogus header must not park a target).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Weight of the newest answer in the noise figure (how far answers stray from expectation).
const EWMA_ALPHA: f64 = 0.3;
/// Latency figures older than this no longer count as measured: a target that was slow
/// and stopped getting traffic is given another chance to show it recovered.
const FRESH_FOR: Duration = Duration::from_secs(20);
/// Each time a re-check finds a target as it was, its figures stay fresh twice as long (up
/// to this), so a target that is steadily slower is not re-tried every 20 s for ever.
const MAX_FRESH_FOR: Duration = Duration::from_secs(320);
/// A re-check answer within the range of the answers before, widened by this fraction
/// (or, without a range, within this fraction of the old expectation or twice the
/// target's noise), finds the target unchanged.
const UNCHANGED: f64 = 0.1;
/// Time-to-first-token samples kept per target for percentiles.
const TTFT_SAMPLES: usize = 64;

#[derive(Debug, Default)]
pub struct LiveStats {
    targets: RwLock<HashMap<TargetId, Arc<TargetLive>>>,
}

#[derive(Debug, Default)]
pub struct TargetLive {
    inflight: AtomicI64,
    state: Mutex<TargetState>,
}

#[derive(Debug, Default)]
struct TargetState {
    /// The last streamed answers.
    streams: StreamWindow,
    /// The last whole (non-streamed) answers.
    whole: WholeWindow,
    window: OutcomeWindow,
    cooldown_until: Option<Instant>,
    capacity_errors_in_row: u32,
    circuit: Circuit,
    observed: Option<ObservedLimits>,
    last_success: Option<Instant>,
    /// Recent times to first token, for the p95 that hedging waits for.
    recent_ttft_ms: VecDeque<f64>,
    /// Average absolute error of the expected total time against what was measured: how
    /// noisy this target is, so that ranking can tell a real difference from chance.
    noise_ms: Option<f64>,
    /// How long figures stay fresh after a success; `None` is [`FRESH_FOR`].
    fresh_for: Option<Duration>,
    /// The last re-check found this target out of its range (with a streamed answer, or a
    /// whole one): the next answer re-checks it again, judged without that one.
    missed_recheck: Option<bool>,
    /// When the last attempt on this target started: near-equal targets take turns.
    last_started: Option<Instant>,
}

/// Whether a target may be tried now, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Ready,
    CoolingDown {
        remaining: Duration,
    },
    CircuitOpen {
        remaining: Duration,
    },
    /// Half-open, and the one probe request is already in flight.
    Probing,
}

impl TargetState {
    fn availability(&self, now: Instant) -> Availability {
        match self.circuit.state(now) {
            CircuitState::Open { until } => {
                return Availability::CircuitOpen {
                    remaining: until - now,
                }
            }
            CircuitState::HalfOpen { probing: true } => return Availability::Probing,
            CircuitState::Closed | CircuitState::HalfOpen { probing: false } => {}
        }
        match self.cooldown_until {
            Some(until) if until > now => Availability::CoolingDown {
                remaining: until - now,
            },
            _ => Availability::Ready,
        }
    }
}

/// A read-only copy of one target's figures, for ranking and `/admin/routes`.
#[derive(Debug, Clone)]
pub struct TargetSnapshot {
    pub availability: Availability,
    pub circuit: CircuitState,
    pub inflight: i64,
    /// What streams measured (means over the last answers, and their standard errors).
    pub streams: Option<StreamFigures>,
    /// What whole answers measured (their mean total, and a fit against length).
    pub whole: Option<WholeFigures>,
    /// Outcomes over the last minute.
    pub window: Counts,
    /// 0..=1 remaining capacity; `None` when nothing is known.
    pub headroom: Option<f64>,
    pub rate_limits: Option<RateLimitHeaders>,
    pub consecutive_failures: u32,
    /// Whether the latency figures were refreshed recently.
    pub fresh: bool,
    /// 95th percentile of recent times to first token.
    pub ttft_p95_ms: Option<f64>,
    /// Average absolute error of this target's expected total time, in ms.
    pub noise_ms: Option<f64>,
    /// When the last attempt on this target started.
    pub last_started: Option<Instant>,
}

/// What a re-check of stale figures found.
enum Recheck {
    /// Nothing was measured before.
    Nothing,
    /// Within the range of the answers before.
    AsBefore,
    /// Slower than any answer before (beyond [`UNCHANGED`]).
    Slower,
    /// Faster than any answer before (beyond [`UNCHANGED`]).
    Faster,
}

impl TargetState {
    fn fresh_for(&self) -> Duration {
        self.fresh_for.unwrap_or(FRESH_FOR)
    }

    /// Fresh: refreshed within its time, and no re-check pending (a re-check that found the
    /// target out of range asks for another one at once).
    fn is_fresh(&self, now: Instant) -> bool {
        self.missed_recheck.is_none()
            && self
                .last_success
                .is_some_and(|at| now - at < self.fresh_for())
    }

    /// Called before recording a success of `total_ms` for `tokens`: stale figures of a
    /// target that changed are replaced, not averaged with; a re-check that finds the target
    /// as it was makes its figures last longer next time and keeps them, one that finds it
    /// changed starts over. As it was: within the range of the answers measured before
    /// (widened by [`UNCHANGED`]); without a range, within [`UNCHANGED`] or twice the noise
    /// of the expectation. Changed: two re-checks in a row faster than that (the second
    /// judged without the first's answer), so one lucky answer does not throw away a window
    /// of figures. A re-check slower than ever keeps the figures as they are.
    fn refresh(&mut self, now: Instant, tokens: f64, total_ms: f64, streamed: bool) {
        if !self.is_fresh(now) {
            // The answer of a re-check that missed is the newest in its window: the second
            // re-check is judged on the figures as they were before it.
            let skip_newest = self.missed_recheck == Some(streamed);
            let range = if streamed {
                self.streams.range_ms(tokens, skip_newest)
            } else {
                self.whole.range_ms(tokens, skip_newest)
            };
            let found = match (range, self.predicted_total(tokens, streamed)) {
                (Some((_, high)), _) if total_ms > high * (1.0 + UNCHANGED) => Recheck::Slower,
                (Some((low, _)), _) if total_ms < low * (1.0 - UNCHANGED) => Recheck::Faster,
                (Some(_), _) => Recheck::AsBefore,
                (None, Some(before)) => {
                    let tolerance = (UNCHANGED * before).max(2.0 * self.noise_ms.unwrap_or(0.0));
                    match total_ms - before {
                        d if d.abs() <= tolerance => Recheck::AsBefore,
                        d if d > 0.0 => Recheck::Slower,
                        _ => Recheck::Faster,
                    }
                }
                // Nothing measured before: nothing to re-check.
                (None, None) => Recheck::Nothing,
            };
            let missed_before = self.missed_recheck.take().is_some();
            match found {
                Recheck::Nothing => {}
                Recheck::AsBefore => {
                    self.fresh_for = Some((self.fresh_for() * 2).min(MAX_FRESH_FOR));
                }
                // Slower than ever: still not worth more traffic; the answer joins the figures
                // (the change detector sees a lasting change), which do not last longer.
                Recheck::Slower => {}
                // Faster than its range: it may have recovered, or this was the lucky tail of
                // its answers; the next request re-checks again at once.
                Recheck::Faster if !missed_before => self.missed_recheck = Some(streamed),
                Recheck::Faster => {
                    self.fresh_for = None;
                    self.forget();
                }
            }
        }
        self.last_success = Some(now);
    }

    fn forget(&mut self) {
        self.streams.clear();
        self.whole.clear();
        self.noise_ms = None;
    }

    /// What this target was expected to take for an answer of `tokens`, before this sample.
    fn predicted_total(&self, tokens: f64, streamed: bool) -> Option<f64> {
        let streams = self.streams.figures().and_then(|f| {
            f.ms_per_output_token
                .map(|per_token| f.ttft_ms + per_token * tokens)
        });
        let whole = self.whole.figures().map(|f| {
            f.fit
                .map_or(f.average_ms, |fit| fit.base_ms + fit.ms_per_token * tokens)
        });
        if streamed {
            streams.or(whole)
        } else {
            whole.or(streams)
        }
    }

    fn learn_noise(&mut self, tokens: f64, total_ms: f64, streamed: bool) {
        if let Some(predicted) = self.predicted_total(tokens, streamed) {
            self.noise_ms = Some(ewma(self.noise_ms, (total_ms - predicted).abs()));
        }
    }
}

impl TargetLive {
    fn with_state<R>(&self, f: impl FnOnce(&mut TargetState) -> R) -> R {
        // Plain data: a panic while holding the lock cannot leave it inconsistent.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }
}

/// Permission to send one attempt to a target; reports the attempt's outcome.
#[derive(Debug)]
pub struct AttemptPermit {
    live: Arc<TargetLive>,
    health: HealthSettings,
    probe: bool,
    resolved: bool,
    /// A provisioned (PTU) target: its 429 means its paid-for capacity is in use, as
    /// expected, not that it is unhealthy.
    provisioned: bool,
}

impl AttemptPermit {
    /// A stream ended well: latency figures, and a closed circuit.
    pub fn succeeded(self, ttft: Duration, generation: Duration, output_tokens: u64) {
        self.record_success(|s| {
            let ttft_ms = ttft.as_secs_f64() * 1000.0;
            let generation_ms = generation.as_secs_f64() * 1000.0;
            let tokens = output_tokens as f64;
            s.refresh(Instant::now(), tokens, ttft_ms + generation_ms, true);
            s.learn_noise(tokens, ttft_ms + generation_ms, true);
            if s.recent_ttft_ms.len() == TTFT_SAMPLES {
                s.recent_ttft_ms.pop_front();
            }
            s.recent_ttft_ms.push_back(ttft_ms);
            let per_token = (output_tokens > 0).then(|| generation_ms / tokens);
            if s.streams.push(ttft_ms, per_token) {
                s.noise_ms = None;
            }
        });
    }

    /// A whole (non-streamed) answer arrived after `total` with `output_tokens`: its total
    /// time, and with answers of different lengths a time per token (docs/routing.md).
    pub fn completed(self, total: Duration, output_tokens: u64) {
        self.record_success(|s| {
            let total_ms = total.as_secs_f64() * 1000.0;
            let tokens = output_tokens as f64;
            s.refresh(Instant::now(), tokens, total_ms, false);
            s.learn_noise(tokens, total_ms, false);
            if s.whole.push(tokens, total_ms) {
                s.noise_ms = None;
            }
        });
    }

    fn record_success(mut self, learn: impl FnOnce(&mut TargetState)) {
        self.resolved = true;
        self.live.with_state(|s| {
            let now = Instant::now();
            s.window.bucket(now).ok += 1;
            s.capacity_errors_in_row = 0;
            // A cool-down stays: this request may have started before the 429 that set it,
            // and the upstream asked for that pause.
            s.circuit.on_success();
            learn(s);
        });
    }

    /// The target answered, but refused the client's request (400, 404, …): healthy.
    pub fn answered(mut self) {
        self.resolved = true;
        self.live.with_state(|s| s.circuit.on_success());
    }

    /// A capacity error (429/503/529, throttling, refused connection, no first byte):
    /// cool down for the upstream's `retry-after`, else an exponential backoff with jitter.
    /// Returns the cool-down. A provisioned target's capacity error only cools it down
    /// (traffic spills elsewhere meanwhile): it counts neither into its error rate nor
    /// towards its circuit, and it gives a half-open circuit's probe slot back.
    pub fn capacity_error(mut self, retry_after: Option<Duration>, now: Instant) -> Duration {
        self.resolved = true;
        let (health, provisioned, probe) = (self.health, self.provisioned, self.probe);
        self.live.with_state(|s| {
            s.capacity_errors_in_row = s.capacity_errors_in_row.saturating_add(1);
            let cooldown = match retry_after {
                Some(wait) => wait.min(MAX_RETRY_AFTER),
                None => backoff(&health, s.capacity_errors_in_row),
            };
            s.cooldown_until = Some(now + cooldown);
            if provisioned {
                s.window.bucket(now).provisioned_full += 1;
                if probe {
                    s.circuit.release_probe();
                }
            } else {
                s.window.bucket(now).capacity += 1;
                s.circuit.on_failure(now, &health);
            }
            cooldown
        })
    }

    /// Any other failure (5xx, garbage, a stream that broke, rejected credentials).
    pub fn failed(mut self, now: Instant) {
        self.resolved = true;
        let health = self.health;
        self.live.with_state(|s| {
            s.window.bucket(now).errors += 1;
            s.circuit.on_failure(now, &health);
        });
    }

    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for AttemptPermit {
    fn drop(&mut self) {
        self.live.inflight.fetch_sub(1, Ordering::Relaxed);
        if self.probe && !self.resolved {
            // No verdict (the client left): let the next request probe instead.
            self.live.with_state(|s| s.circuit.release_probe());
        }
    }
}

/// `initial × 2^(n-1)` capped at `max`, with ±20 % jitter so targets that failed together
/// do not all come back at the same instant.
fn backoff(health: &HealthSettings, in_row: u32) -> Duration {
    let doublings = in_row.saturating_sub(1).min(20);
    let base = health
        .cooldown_initial
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(health.cooldown_max);
    let jitter = 0.8 + 0.4 * rand::random::<f64>();
    base.mul_f64(jitter).min(health.cooldown_max)
}

impl LiveStats {
    pub fn new() -> Self {
        Self::default()
    }

    fn target(&self, id: &TargetId) -> Arc<TargetLive> {
        if let Some(live) = self
            .targets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            return live.clone();
        }
        self.targets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.clone())
            .or_default()
            .clone()
    }

    pub fn availability(&self, id: &TargetId, now: Instant) -> Availability {
        self.target(id).with_state(|s| s.availability(now))
    }

    /// Takes permission to send to `target` now (the probe slot if its circuit is half-open),
    /// counting the request and its estimated tokens against locally known limits.
    pub fn try_start(
        &self,
        target: &Target,
        health: HealthSettings,
        estimated_tokens: u64,
        now: Instant,
    ) -> Result<AttemptPermit, Availability> {
        let live = self.target(&target.id);
        let probe = live.with_state(|s| {
            match s.availability(now) {
                Availability::Ready => {}
                other => return Err(other),
            }
            let probe = s.circuit.try_acquire(now).ok_or(Availability::Probing)?;
            let bucket = s.window.bucket(now);
            bucket.started += 1;
            bucket.tokens += estimated_tokens;
            s.last_started = Some(now);
            Ok(probe)
        })?;
        live.inflight.fetch_add(1, Ordering::Relaxed);
        Ok(AttemptPermit {
            live,
            health,
            probe,
            resolved: false,
            provisioned: target.tier == Some(Tier::Provisioned),
        })
    }

    /// Records an upstream's `x-ratelimit-*` headers.
    pub fn observe_rate_limits(&self, id: &TargetId, headers: RateLimitHeaders, now: Instant) {
        self.target(id)
            .with_state(|s| s.observed = Some(ObservedLimits { headers, at: now }));
    }

    pub fn snapshot(&self, target: &Target, now: Instant) -> TargetSnapshot {
        let live = self.target(&target.id);
        let inflight = live.inflight.load(Ordering::Relaxed);
        live.with_state(|s| {
            let window = s.window.totals(now);
            let availability = s.availability(now);
            let observed = s
                .observed
                .as_ref()
                .and_then(|o| o.headroom(now, target.limits.as_ref()));
            let mut headroom = min_known(observed, local_headroom(target.limits.as_ref(), &window));
            if matches!(availability, Availability::CoolingDown { .. }) {
                headroom = Some(0.0);
            }
            TargetSnapshot {
                availability,
                circuit: s.circuit.state(now),
                inflight,
                streams: s.streams.figures(),
                whole: s.whole.figures(),
                window,
                headroom,
                rate_limits: s.observed.map(|o| o.headers),
                consecutive_failures: s.circuit.consecutive_failures(),
                fresh: s.is_fresh(now),
                ttft_p95_ms: percentile(&s.recent_ttft_ms, 0.95),
                noise_ms: s.noise_ms,
                last_started: s.last_started,
            }
        })
    }
}

/// Nearest-rank percentile of `samples` (`q` in 0..=1).
fn percentile(samples: &VecDeque<f64>, q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = samples.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ewma(previous: Option<f64>, sample: f64) -> f64 {
    match previous {
        Some(avg) => avg + EWMA_ALPHA * (sample - avg),
        None => sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Price, Provider, ProviderKind};

    fn target() -> Target {
        Target {
            id: TargetId::new("p", "m"),
            provider: Arc::new(Provider {
                name: "p".into(),
                kind: ProviderKind::OpenAi(crate::config::openai::Settings {
                    base_url: crate::upstream::base_url::BaseUrl::parse("http://x/v1").unwrap(),
                    api_key: None,
                    responses_native: false,
                }),
                disabled: None,
                region: None,
                cloud: "openai".into(),
            }),
            upstream_model: "m".into(),
            price: Price::Free,
            tier: None,
            additional_model_request_fields: None,
            price_source: crate::config::PriceSource::Configured,
            limits: Some(crate::config::Limits {
                rpm: Some(4),
                tpm: None,
            }),
        }
    }

    /// A whole answer of 20 tokens after `ms`.
    fn complete_whole(stats: &LiveStats, t: &Target, ms: u64) {
        start(stats, t).completed(Duration::from_millis(ms), 20);
    }

    fn start(stats: &LiveStats, t: &Target) -> AttemptPermit {
        stats
            .try_start(t, HealthSettings::default(), 10, Instant::now())
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_sets_the_cooldown() {
        let (stats, t) = (LiveStats::new(), target());
        let now = Instant::now();
        start(&stats, &t).capacity_error(Some(Duration::from_secs(3)), now);
        assert_eq!(
            stats.availability(&t.id, now),
            Availability::CoolingDown {
                remaining: Duration::from_secs(3)
            }
        );
        assert_eq!(stats.snapshot(&t, now).headroom, Some(0.0));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(
            stats.availability(&t.id, Instant::now()),
            Availability::Ready
        );
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_with_jitter_and_resets_on_success() {
        let (stats, t) = (LiveStats::new(), target());
        let mut waits = Vec::new();
        for _ in 0..8 {
            let permit = stats
                .try_start(
                    &t,
                    HealthSettings {
                        failures: 100,
                        ..HealthSettings::default()
                    },
                    1,
                    Instant::now(),
                )
                .unwrap();
            let wait = permit.capacity_error(None, Instant::now());
            waits.push(wait.as_secs_f64());
            tokio::time::advance(wait).await;
        }
        for (n, wait) in waits.iter().enumerate() {
            let base = (2f64.powi(n as i32)).min(60.0);
            assert!(
                *wait >= base * 0.8 - 1e-9 && *wait <= (base * 1.2).min(60.0) + 1e-9,
                "{n}: {wait}"
            );
        }
        start(&stats, &t).succeeded(Duration::from_millis(10), Duration::ZERO, 0);
        let first = start(&stats, &t).capacity_error(None, Instant::now());
        assert!(first <= Duration::from_millis(1200));
    }

    #[test]
    fn p95_is_nearest_rank() {
        let samples: VecDeque<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.95), Some(95.0));
        assert_eq!(percentile(&VecDeque::new(), 0.95), None);
        assert_eq!(percentile(&VecDeque::from(vec![7.0]), 0.95), Some(7.0));
    }

    /// Regression (scenario report): a request that started before a 429 and succeeded after
    /// it must not cancel the cool-down the upstream asked for.
    #[tokio::test(start_paused = true)]
    async fn a_late_success_keeps_the_cooldown() {
        let (stats, t) = (LiveStats::new(), target());
        let in_flight = start(&stats, &t);
        start(&stats, &t).capacity_error(Some(Duration::from_secs(3)), Instant::now());
        in_flight.succeeded(Duration::from_millis(5), Duration::ZERO, 0);
        assert!(matches!(
            stats.availability(&t.id, Instant::now()),
            Availability::CoolingDown { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_retry_after_is_capped() {
        let (stats, t) = (LiveStats::new(), target());
        let wait =
            start(&stats, &t).capacity_error(Some(Duration::from_secs(86_400)), Instant::now());
        assert_eq!(wait, MAX_RETRY_AFTER);
    }

    #[tokio::test(start_paused = true)]
    async fn circuit_opens_then_one_probe_closes_it() {
        let (stats, t) = (LiveStats::new(), target());
        for _ in 0..5 {
            start(&stats, &t).failed(Instant::now());
        }
        assert!(matches!(
            stats.availability(&t.id, Instant::now()),
            Availability::CircuitOpen { .. }
        ));
        tokio::time::advance(Duration::from_secs(30)).await;
        let probe = start(&stats, &t);
        assert!(probe.is_probe());
        assert_eq!(
            stats
                .try_start(&t, HealthSettings::default(), 1, Instant::now())
                .unwrap_err(),
            Availability::Probing
        );
        probe.succeeded(Duration::from_millis(5), Duration::ZERO, 0);
        assert!(!start(&stats, &t).is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_the_slot() {
        let (stats, t) = (LiveStats::new(), target());
        for _ in 0..5 {
            start(&stats, &t).failed(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        drop(start(&stats, &t));
        assert!(start(&stats, &t).is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn local_rpm_limit_drains_headroom_and_inflight_is_counted() {
        let (stats, t) = (LiveStats::new(), target());
        let a = start(&stats, &t);
        let b = start(&stats, &t);
        let snapshot = stats.snapshot(&t, Instant::now());
        assert_eq!(snapshot.inflight, 2);
        assert_eq!(snapshot.headroom, Some(0.5));
        drop((a, b));
        assert_eq!(stats.snapshot(&t, Instant::now()).inflight, 0);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(stats.snapshot(&t, Instant::now()).headroom, Some(1.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_recheck_that_finds_a_target_unchanged_keeps_its_figures_fresh_longer() {
        let (stats, t) = (LiveStats::new(), target());
        let whole = |ms: u64| complete_whole(&stats, &t, ms);
        whole(300);
        tokio::time::advance(FRESH_FOR).await;
        assert!(!stats.snapshot(&t, Instant::now()).fresh);
        whole(310);
        let snapshot = stats.snapshot(&t, Instant::now());
        assert!(
            snapshot.whole.unwrap().average_ms > 300.0,
            "kept and averaged"
        );
        tokio::time::advance(FRESH_FOR).await;
        assert!(
            stats.snapshot(&t, Instant::now()).fresh,
            "fresh for 40 s now"
        );
        tokio::time::advance(FRESH_FOR).await;
        assert!(!stats.snapshot(&t, Instant::now()).fresh);
        println!("one answer out of range: re-checked again at once, figures kept");
        whole(30);
        let snapshot = stats.snapshot(&t, Instant::now());
        assert!(!snapshot.fresh, "a re-check is pending");
        assert!(snapshot.whole.unwrap().average_ms > 200.0);
        println!("a second one: changed, the figures start over, fresh for 20 s again");
        whole(30);
        assert_eq!(
            stats
                .snapshot(&t, Instant::now())
                .whole
                .map(|w| w.average_ms),
            Some(30.0)
        );
        tokio::time::advance(FRESH_FOR).await;
        assert!(!stats.snapshot(&t, Instant::now()).fresh);
    }

    /// A stale target whose re-check answer is slower than any before is not re-checked again
    /// at once (it is no candidate either way), and its figures do not last longer.
    #[tokio::test(start_paused = true)]
    async fn a_recheck_slower_than_ever_keeps_the_figures_without_extending_them() {
        let (stats, t) = (LiveStats::new(), target());
        let whole = |ms: u64| complete_whole(&stats, &t, ms);
        whole(300);
        whole(320);
        tokio::time::advance(FRESH_FOR).await;
        whole(900);
        let snapshot = stats.snapshot(&t, Instant::now());
        assert!(snapshot.fresh, "no second re-check asked for");
        assert_eq!(
            snapshot.whole.unwrap().samples(),
            3,
            "the answer joined the figures"
        );
        tokio::time::advance(FRESH_FOR).await;
        assert!(
            !stats.snapshot(&t, Instant::now()).fresh,
            "fresh for 20 s, not 40"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn whole_answers_do_not_count_as_times_to_first_token() {
        let (stats, t) = (LiveStats::new(), target());
        stats
            .try_start(&t, HealthSettings::default(), 0, Instant::now())
            .unwrap()
            .completed(Duration::from_millis(900), 50);
        let snapshot = stats.snapshot(&t, Instant::now());
        assert_eq!(snapshot.streams, None);
        assert_eq!(snapshot.ttft_p95_ms, None, "hedging waits on streams only");
        let whole = snapshot.whole.unwrap();
        assert_eq!(whole.average_ms, 900.0);
        assert_eq!(whole.fit, None, "one length: no per-token time yet");
    }
}
