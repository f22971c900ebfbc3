//! The attempt plan of one request: the model's targets ranked by its strategy from the
//! live figures, then each fallback model's, each target once; and why others are skipped.
//!
//! Every strategy fills provisioned capacity first: `tier: provisioned` targets with
//! headroom come before pay-as-you-go targets of their cloud, which come before other clouds.
//!
//! Near-equal targets are not always taken in the same order: they take turns at the first
//! place (the least loaded first, then the one tried longest ago), so stale figures cannot
//! send every request to one target. Under `strategy: latency`, "near-equal" is
//! judged on measured figures: within two standard errors of their difference, or within a
//! small fraction of the best target's measured time (priors shared by all targets do not
//! widen it).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::score::{figures, scores, Figures, LatencyBasis, Priors, RequestShape};
use super::stats::{Availability, LiveStats, TargetSnapshot};
use crate::config::{Model, Policy, Strategy, Target, TargetId, Team, Tier};

/// Below this headroom a target is tried only after every target with more.
pub const LOW_HEADROOM: f64 = 0.1;
/// Candidates whose sort key is within this factor of the best count as equals (scores
/// that are not times: cost, balanced).
const NEAR_EQUAL: f64 = 1.25;
/// Under `strategy: latency`, targets within this fraction of the best target's measured
/// expected time count as equals, whatever their standard errors.
const NEAR_EQUAL_MEASURED: f64 = 0.1;
/// Under `strategy: latency`, two targets whose expected times differ by less than the
/// two-sided 95 % quantile of Student's t (degrees of freedom: the fewer answers of the two,
/// less one) times the standard error of their difference count as equals: a real
/// difference wins, chance (≈ 5 % of equal pairs) does not, and a target judged on a few
/// answers, whose spread is itself unsure, is not written off on them.
fn band_standard_errors(samples: usize) -> f64 {
    const T_975: [f64; 10] = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23];
    match samples.saturating_sub(1) {
        0 => T_975[0],
        dof @ 1..=10 => T_975[dof - 1],
        11..=20 => 2.13,
        21..=40 => 2.05,
        _ => 2.0,
    }
}

/// One step of a plan: a target, reached through `model` (the requested one or a fallback).
#[derive(Debug, Clone)]
pub struct PlannedAttempt {
    pub model: Arc<Model>,
    pub target: Arc<Target>,
}

/// Why a target is not in the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    Disabled(String),
    CoolingDown(Duration),
    CircuitOpen(Duration),
    /// Half-open, with its one probe already in flight.
    Probing,
    /// Its known remaining capacity is zero.
    CapacityExhausted,
    /// Outside the model's or the team's `regions` / `clouds`.
    Placement(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Disabled(reason) => write!(f, "disabled: {reason}"),
            SkipReason::CoolingDown(left) => {
                write!(
                    f,
                    "cooling down for {:.1}s after a capacity error",
                    left.as_secs_f64()
                )
            }
            SkipReason::CircuitOpen(left) => write!(
                f,
                "circuit open after repeated failures; a probe in {:.1}s",
                left.as_secs_f64()
            ),
            SkipReason::Probing => f.write_str("circuit half-open; its probe request is in flight"),
            SkipReason::CapacityExhausted => f.write_str("no capacity left (rate limits)"),
            SkipReason::Placement(why) => write!(f, "not allowed here: {why}"),
        }
    }
}

impl SkipReason {
    /// How long until the target may be usable again, when that is known.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            SkipReason::CoolingDown(left) | SkipReason::CircuitOpen(left) => Some(*left),
            _ => None,
        }
    }
}

/// A target of a model with everything the ranking looked at.
#[derive(Debug, Clone)]
pub struct RankedTarget {
    pub target: Arc<Target>,
    pub snapshot: TargetSnapshot,
    pub figures: Figures,
    /// The strategy's score (lower is better); `None` for skipped targets.
    pub score: Option<f64>,
    pub skipped: Option<SkipReason>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub attempts: Vec<PlannedAttempt>,
    pub skipped: Vec<(TargetId, SkipReason)>,
}

impl Plan {
    /// The soonest moment a skipped target becomes usable again, for `retry-after`.
    pub fn soonest_retry(&self) -> Option<Duration> {
        self.skipped.iter().filter_map(|(_, r)| r.retry_in()).min()
    }
}

/// Why a target cannot be tried now, if it cannot.
pub fn skip_reason(target: &Target, snapshot: &TargetSnapshot) -> Option<SkipReason> {
    if let Some(reason) = target.disabled_reason() {
        return Some(SkipReason::Disabled(reason.to_owned()));
    }
    match snapshot.availability {
        Availability::Ready => {}
        Availability::CoolingDown { remaining } => return Some(SkipReason::CoolingDown(remaining)),
        Availability::CircuitOpen { remaining } => return Some(SkipReason::CircuitOpen(remaining)),
        Availability::Probing => return Some(SkipReason::Probing),
    }
    (snapshot.headroom == Some(0.0)).then_some(SkipReason::CapacityExhausted)
}

/// Ranks `model`'s targets for a request of `shape` from `team` (if known): usable targets
/// in attempt order, then the skipped ones. With `rng`, near-equal leaders are spread.
pub fn rank(
    model: &Model,
    team: Option<&Team>,
    stats: &LiveStats,
    shape: &RequestShape,
    now: Instant,
    rng: Option<&mut dyn rand::RngCore>,
) -> Vec<RankedTarget> {
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    let snapshots: Vec<TargetSnapshot> = model
        .targets
        .iter()
        .map(|target| stats.snapshot(target, now))
        .collect();
    let priors = Priors::optimistic(snapshots.iter(), shape);
    for ((index, target), snapshot) in model.targets.iter().enumerate().zip(snapshots) {
        let figures = figures(target, &snapshot, shape, &priors);
        let outside = model
            .placement
            .excludes(&target.provider)
            .or_else(|| team.and_then(|t| t.placement.excludes(&target.provider)));
        let skip = match outside {
            Some(why) => Some(SkipReason::Placement(why)),
            None => skip_reason(target, &snapshot),
        };
        let ranked = RankedTarget {
            target: target.clone(),
            snapshot,
            figures,
            score: None,
            skipped: skip,
        };
        if ranked.skipped.is_some() {
            skipped.push((index, ranked));
        } else {
            usable.push((index, ranked));
        }
    }
    // Out of headroom is a reason to prefer another target, not to refuse locally: when no
    // other target can serve, those targets are tried anyway and the upstream decides (its
    // rate-limit headers and the configured limits are estimates).
    if usable.is_empty() {
        let (exhausted, rest) = std::mem::take(&mut skipped)
            .into_iter()
            .partition(|(_, r)| r.skipped == Some(SkipReason::CapacityExhausted));
        skipped = rest;
        usable = exhausted;
        for (_, ranked) in &mut usable {
            ranked.skipped = None;
        }
    }
    let all_figures: Vec<Figures> = usable.iter().map(|(_, r)| r.figures).collect();
    let written: Vec<usize> = usable.iter().map(|(i, _)| *i).collect();
    let scores = scores(model, &all_figures, &written);
    let max_ttft_ms = model.routing.max_ttft.map(|d| d.as_secs_f64() * 1000.0);
    // From every target of the model, usable or not: while a provisioned target is full or
    // cooling down, its cloud's pay-as-you-go still comes before other clouds.
    let provisioned_clouds: HashSet<&str> = model
        .targets
        .iter()
        .filter(|t| t.tier == Some(Tier::Provisioned))
        .map(|t| t.provider.cloud.as_str())
        .collect();
    let mut keyed: Vec<(SortKey, RankedTarget)> = usable
        .into_iter()
        .zip(scores)
        .map(|((_, mut ranked), score)| {
            ranked.score = Some(score);
            let tier = capacity_tier(&ranked.target, &provisioned_clouds);
            (sort_key(&ranked, score, tier, max_ttft_ms), ranked)
        })
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    if let Some(rng) = rng {
        if model.strategy != Strategy::Priority {
            let measured = model.strategy == Strategy::Latency && max_ttft_ms.is_none();
            spread_leader(&mut keyed, measured, rng);
        }
    }
    keyed
        .into_iter()
        .map(|(_, r)| r)
        .chain(skipped.into_iter().map(|(_, r)| r))
        .collect()
}

/// Which capacity a target is, in the order every strategy fills it: provisioned (paid for
/// whether used or not), then pay-as-you-go in a cloud that has provisioned capacity here,
/// then other clouds. Without provisioned targets every target is 0.
fn capacity_tier(target: &Target, provisioned_clouds: &HashSet<&str>) -> u8 {
    if provisioned_clouds.is_empty() || target.tier == Some(Tier::Provisioned) {
        0
    } else if provisioned_clouds.contains(target.provider.cloud.as_str()) {
        1
    } else {
        2
    }
}

/// Attempt order: enough headroom first; then (under a `max_ttft` SLO) those expected to
/// meet it; then provisioned capacity before pay-as-you-go before other clouds; then by
/// score (cheapest first under an SLO).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SortKey {
    low_headroom: bool,
    misses_slo: bool,
    tier: u8,
    value: f64,
}

impl SortKey {
    /// Whether `other` ranks in the same class (headroom, SLO, capacity tier), so that only
    /// its value sets them apart.
    fn same_class(&self, other: &SortKey) -> bool {
        self.low_headroom == other.low_headroom
            && self.misses_slo == other.misses_slo
            && self.tier == other.tier
    }
}

impl Eq for SortKey {}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.low_headroom, self.misses_slo, self.tier)
            .cmp(&(other.low_headroom, other.misses_slo, other.tier))
            .then(self.value.total_cmp(&other.value))
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn sort_key(ranked: &RankedTarget, score: f64, tier: u8, max_ttft_ms: Option<f64>) -> SortKey {
    let low_headroom = ranked.figures.headroom < LOW_HEADROOM;
    let (misses_slo, value) = match max_ttft_ms {
        Some(slo) if ranked.figures.expected_ttft_ms <= slo => {
            (false, ranked.figures.expected_cost_usd)
        }
        Some(_) => (true, ranked.figures.expected_ttft_ms),
        None => (false, score),
    };
    SortKey {
        low_headroom,
        misses_slo,
        tier,
        value,
    }
}

/// Near-equal leaders take turns: the one with the fewest requests in flight goes first,
/// and among those the one whose last attempt started longest ago (never-tried first, in
/// random order). Taking turns instead of picking at random keeps equal targets within a
/// few requests of an even split, and a stale figure still cannot send every request to one
/// target. With `measured` (the keys are expected times), the band comes from the
/// measurements, not from a prior-inflated total.
fn spread_leader(
    keyed: &mut [(SortKey, RankedTarget)],
    measured: bool,
    rng: &mut dyn rand::RngCore,
) {
    let Some((best, leader)) = keyed.first() else {
        return;
    };
    let best = *best;
    let leader = leader.figures;
    let near = |key: &SortKey, figures: &Figures| {
        if !measured {
            return key.value <= best.value.abs() * NEAR_EQUAL + 1e-12;
        }
        let own = (best.value - leader.prior_latency_ms).max(0.0);
        // A measured figure from one answer has no spread yet: it cannot tell targets apart.
        let measured_once =
            |f: &Figures| f.latency_basis != LatencyBasis::Prior && f.standard_error_ms.is_none();
        if measured_once(&leader) || measured_once(figures) {
            return true;
        }
        let standard_error = leader
            .standard_error_ms
            .unwrap_or(0.0)
            .hypot(figures.standard_error_ms.unwrap_or(0.0));
        let samples = leader.samples.min(figures.samples);
        let band = (NEAR_EQUAL_MEASURED * own).max(band_standard_errors(samples) * standard_error);
        key.value - best.value <= band + 1e-9 * best.value.abs().max(1.0)
    };
    let equals = keyed
        .iter()
        .take_while(|(key, ranked)| key.same_class(&best) && near(key, &ranked.figures))
        .count();
    if measured && explore_runner_up(keyed, equals, rng) {
        return;
    }
    if equals < 2 {
        return;
    }
    // Random offset so never-tried targets (equal turn keys) are not always met in order.
    let offset = rng.random_range(0..equals);
    let turn = |i: usize| {
        let snapshot = &keyed[i].1.snapshot;
        (snapshot.inflight, snapshot.last_started)
    };
    let winner = (0..equals)
        .map(|k| (offset + k) % equals)
        .min_by_key(|&i| turn(i))
        .unwrap_or(0);
    keyed[..=winner].rotate_right(1);
}

/// Under `strategy: latency`, the first target outside the near-equal band goes first with
/// the probability that it is in fact the faster one, judged from the two expectations'
/// standard errors. A target whose figures came out worse than they are by chance would
/// otherwise get no traffic to correct them until they went stale; a target that is really
/// slower (by several standard errors) is almost never tried. Returns whether it was.
fn explore_runner_up(
    keyed: &mut [(SortKey, RankedTarget)],
    equals: usize,
    rng: &mut dyn rand::RngCore,
) -> bool {
    let (Some((best, leader)), Some((key, runner_up))) = (keyed.first(), keyed.get(equals)) else {
        return false;
    };
    if !key.same_class(best) {
        return false;
    }
    let (Some(a), Some(b)) = (
        leader.figures.standard_error_ms,
        runner_up.figures.standard_error_ms,
    ) else {
        return false;
    };
    let standard_error = a.hypot(b);
    if standard_error <= 0.0 {
        return false;
    }
    let chance = standard_normal_cdf(-(key.value - best.value) / standard_error);
    if rng.random::<f64>() >= chance {
        return false;
    }
    keyed[..=equals].rotate_right(1);
    true
}

/// Φ(z), the standard normal distribution function (Abramowitz & Stegun 7.1.26 for erf,
/// absolute error below 1.5e-7).
pub(crate) fn standard_normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Builds the plan for `model`: its targets ranked, then each fallback model's, at most
/// `max_attempts` steps, each target once.
pub fn plan(
    policy: &Policy,
    model: &Arc<Model>,
    team: Option<&Team>,
    stats: &LiveStats,
    shape: &RequestShape,
    now: Instant,
    rng: &mut dyn rand::RngCore,
) -> Plan {
    let mut result = Plan::default();
    let fallbacks = model
        .fallbacks
        .iter()
        .filter_map(|name| policy.models.get(name));
    for step_model in std::iter::once(model).chain(fallbacks) {
        for ranked in rank(step_model, team, stats, shape, now, Some(&mut *rng)) {
            let id = &ranked.target.id;
            let seen = result.attempts.iter().any(|a| a.target.id == *id)
                || result.skipped.iter().any(|(s, _)| s == id);
            if seen {
                continue;
            }
            match ranked.skipped {
                Some(reason) => result.skipped.push((id.clone(), reason)),
                None => result.attempts.push(PlannedAttempt {
                    model: step_model.clone(),
                    target: ranked.target,
                }),
            }
        }
    }
    result.attempts.truncate(policy.server.max_attempts);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile_str;
    use std::path::Path;

    const POLICY: &str = r#"
version: 1
providers:
  a: { kind: openai, base_url: "http://127.0.0.1:1/v1", api_key: ka }
  b: { kind: openai, base_url: "http://127.0.0.1:2/v1", api_key: kb }
  off: { kind: openai, base_url: "http://127.0.0.1:3/v1", api_key: "${UNSET_KEY:-}" }
  bed: { kind: bedrock, region: us-east-1 }
models:
  main:
    targets:
      - { provider: off, model: m, price: free }
      - { provider: a, model: m, price: free }
      - { provider: bed, model: anthropic.claude-3-haiku-20240307-v1:0 }
      - { provider: b, model: m, price: free }
    fallbacks: [spare]
  spare:
    targets:
      - { provider: b, model: m, price: free }
      - { provider: b, model: spare, price: free }
"#;

    fn policy() -> Policy {
        compile_str(POLICY, Path::new("routes.yaml"), &|_| None).unwrap()
    }

    use rand::SeedableRng;

    const SHAPE: RequestShape = RequestShape {
        prompt_tokens: 100,
        max_output_tokens: None,
    };

    fn plan_now(policy: &Policy, model: &str, stats: &LiveStats) -> Plan {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        plan(
            policy,
            &policy.models[model],
            None,
            stats,
            &SHAPE,
            Instant::now(),
            &mut rng,
        )
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.attempts
            .iter()
            .map(|a| a.target.id.0.as_str())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn written_order_then_fallbacks_each_target_once() {
        let policy = policy();
        let stats = LiveStats::new();
        let plan = plan_now(&policy, "main", &stats);
        assert_eq!(
            ids(&plan),
            vec![
                "a/m",
                "bed/anthropic.claude-3-haiku-20240307-v1:0",
                "b/m",
                "b/spare"
            ]
        );
        assert_eq!(plan.attempts[3].model.name, "spare");
        let skipped: Vec<_> = plan.skipped.iter().map(|(id, _)| id.0.as_str()).collect();
        assert_eq!(skipped, vec!["off/m"]);
        assert!(
            matches!(plan.skipped[0].1, SkipReason::Disabled(ref why) if why.contains("UNSET_KEY"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cooling_down_targets_are_skipped_until_the_cooldown_ends() {
        let policy = policy();
        let stats = LiveStats::new();
        let a = policy.models["main"].targets[1].clone();
        stats
            .try_start(&a, Default::default(), 1, Instant::now())
            .unwrap()
            .capacity_error(Some(Duration::from_secs(5)), Instant::now());
        let cooling = plan_now(&policy, "main", &stats);
        let bedrock = "bed/anthropic.claude-3-haiku-20240307-v1:0";
        assert_eq!(ids(&cooling), vec![bedrock, "b/m", "b/spare"]);
        assert_eq!(cooling.soonest_retry(), Some(Duration::from_secs(5)));
        tokio::time::advance(Duration::from_secs(5)).await;
        let recovered = plan_now(&policy, "main", &stats);
        assert_eq!(ids(&recovered), vec!["a/m", bedrock, "b/m", "b/spare"]);
    }

    #[tokio::test(start_paused = true)]
    async fn azure_targets_are_planned() {
        let yaml = "version: 1\nproviders:\n  az: {kind: azure, endpoint: 'https://c.openai.azure.com', api_key: k, api_version: v1}\nmodels:\n  m: {targets: [{provider: az, deployment: d, price: free}]}\n";
        let policy = compile_str(yaml, Path::new("routes.yaml"), &|_| None).unwrap();
        let plan = plan_now(&policy, "m", &LiveStats::new());
        assert_eq!(ids(&plan), vec!["az/d"]);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let mut policy = policy();
        policy.server.max_attempts = 1;
        let stats = LiveStats::new();
        let plan = plan_now(&policy, "main", &stats);
        assert_eq!(ids(&plan), vec!["a/m"]);
    }
}
