//! Tests of the strategies and the plan as a whole, with live figures fed through the same
//! permits the attempt loop uses and a paused clock; randomized checks use seeded RNGs.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;

use super::*;
use crate::config::{compile_str, HealthSettings, Policy};

const SHAPE: RequestShape = RequestShape {
    prompt_tokens: 1000,
    max_output_tokens: Some(100),
};

fn policy(models: &str) -> Policy {
    let text = format!(
        "version: 1\nproviders:\n  fast: {{ kind: openai, base_url: \"http://127.0.0.1:1/v1\" }}\n  slow: {{ kind: openai, base_url: \"http://127.0.0.1:2/v1\" }}\n  cheap: {{ kind: openai, base_url: \"http://127.0.0.1:3/v1\" }}\nmodels:\n{models}"
    );
    compile_str(&text, Path::new("routes.yaml"), &|_| None).unwrap()
}

const THREE: &str = "    targets:\n      - { provider: slow, model: m, price: { input: 2, output: 8 } }\n      - { provider: fast, model: m, price: { input: 2, output: 8 } }\n      - { provider: cheap, model: m, price: { input: 0.5, output: 2 }, limits: { rpm: 3 } }\n";

/// Feeds `n` successful attempts with the given latency into a target's figures (each
/// counts against local limits: `cheap` allows 3 a minute).
fn warm(stats: &LiveStats, policy: &Policy, model: &str, provider: &str, ttft_ms: u64, n: usize) {
    let target = policy.models[model]
        .targets
        .iter()
        .find(|t| t.provider.name == provider)
        .unwrap();
    for _ in 0..n {
        let permit = stats
            .try_start(target, HealthSettings::default(), 0, Instant::now())
            .unwrap();
        permit.succeeded(
            Duration::from_millis(ttft_ms),
            Duration::from_millis(ttft_ms),
            10,
        );
    }
}

fn first(policy: &Policy, model: &str, stats: &LiveStats, rng: &mut StdRng) -> String {
    let plan = plan(
        policy,
        &policy.models[model],
        None,
        stats,
        &SHAPE,
        Instant::now(),
        rng,
    );
    plan.attempts[0].target.provider.name.clone()
}

#[tokio::test(start_paused = true)]
async fn latency_prefers_the_measured_faster_target() {
    let policy = policy(&format!("  m:\n    strategy: latency\n{THREE}"));
    let stats = LiveStats::new();
    warm(&stats, &policy, "m", "slow", 900, 3);
    warm(&stats, &policy, "m", "fast", 100, 3);
    warm(&stats, &policy, "m", "cheap", 600, 2);
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..20 {
        assert_eq!(first(&policy, "m", &stats, &mut rng), "fast");
    }
}

#[tokio::test(start_paused = true)]
async fn cost_prefers_the_cheap_target_until_its_capacity_runs_out() {
    let policy = policy(&format!("  m:\n    strategy: cost\n{THREE}"));
    let stats = LiveStats::new();
    let mut rng = StdRng::seed_from_u64(2);
    let cheap = policy.models["m"].targets[2].clone();
    for _ in 0..3 {
        assert_eq!(first(&policy, "m", &stats, &mut rng), "cheap");
        stats
            .try_start(&cheap, HealthSettings::default(), 0, Instant::now())
            .unwrap()
            .succeeded(Duration::from_millis(50), Duration::ZERO, 0);
    }
    // rpm: 3 used up in this minute: skipped as exhausted, the others take over.
    let plan = plan(
        &policy,
        &policy.models["m"],
        None,
        &stats,
        &SHAPE,
        Instant::now(),
        &mut rng,
    );
    assert!(plan
        .attempts
        .iter()
        .all(|a| a.target.provider.name != "cheap"));
    assert_eq!(plan.skipped[0].1, SkipReason::CapacityExhausted);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(
        first(&policy, "m", &stats, &mut rng),
        "cheap",
        "back after the window"
    );
}

#[tokio::test(start_paused = true)]
async fn max_ttft_picks_the_cheapest_target_meeting_the_slo() {
    let policy = policy(&format!(
        "  m:\n    strategy: latency\n    max_ttft: 500ms\n{THREE}"
    ));
    let stats = LiveStats::new();
    warm(&stats, &policy, "m", "slow", 900, 3);
    warm(&stats, &policy, "m", "fast", 100, 3);
    warm(&stats, &policy, "m", "cheap", 400, 2);
    let mut rng = StdRng::seed_from_u64(3);
    let plan = plan(
        &policy,
        &policy.models["m"],
        None,
        &stats,
        &SHAPE,
        Instant::now(),
        &mut rng,
    );
    let order: Vec<_> = plan
        .attempts
        .iter()
        .map(|a| a.target.provider.name.as_str())
        .collect();
    assert_eq!(order, vec!["cheap", "fast", "slow"]);
}

#[tokio::test(start_paused = true)]
async fn balanced_weighs_latency_against_cost() {
    let latency_heavy = policy(&format!("  m:\n    strategy: balanced\n    weights: {{ latency: 10, cost: 0.1, headroom: 0 }}\n{THREE}"));
    let cost_heavy = policy(&format!("  m:\n    strategy: balanced\n    weights: {{ latency: 0.1, cost: 10, headroom: 0 }}\n{THREE}"));
    for (policy, expected) in [(latency_heavy, "fast"), (cost_heavy, "cheap")] {
        let stats = LiveStats::new();
        warm(&stats, &policy, "m", "slow", 900, 3);
        warm(&stats, &policy, "m", "fast", 100, 3);
        warm(&stats, &policy, "m", "cheap", 800, 2);
        let mut rng = StdRng::seed_from_u64(4);
        assert_eq!(first(&policy, "m", &stats, &mut rng), expected);
    }
}

#[tokio::test(start_paused = true)]
async fn low_headroom_is_deprioritised_before_the_429() {
    let policy = policy("  m:\n    strategy: priority\n    targets:\n      - { provider: fast, model: m, price: free, limits: { rpm: 20 } }\n      - { provider: slow, model: m, price: free }\n");
    let stats = LiveStats::new();
    let fast = policy.models["m"].targets[0].clone();
    let mut rng = StdRng::seed_from_u64(5);
    let mut held = Vec::new();
    for _ in 0..18 {
        assert_eq!(first(&policy, "m", &stats, &mut rng), "fast");
        held.push(
            stats
                .try_start(&fast, HealthSettings::default(), 0, Instant::now())
                .unwrap(),
        );
    }
    // 19th request: 2 of 20 left (headroom 0.1 → not below) ; one more and it is low.
    held.push(
        stats
            .try_start(&fast, HealthSettings::default(), 0, Instant::now())
            .unwrap(),
    );
    assert_eq!(first(&policy, "m", &stats, &mut rng), "slow");
}

/// Property: whatever the figures, a target whose circuit is open is never planned while
/// a healthy one exists.
#[tokio::test(start_paused = true)]
async fn an_open_circuit_is_never_chosen() {
    let mut rng = StdRng::seed_from_u64(6);
    for strategy in ["priority", "latency", "cost", "balanced"] {
        let policy = policy(&format!("  m:\n    strategy: {strategy}\n{THREE}"));
        for round in 0..30 {
            let stats = LiveStats::new();
            for provider in ["slow", "fast", "cheap"] {
                warm(
                    &stats,
                    &policy,
                    "m",
                    provider,
                    rand::Rng::random_range(&mut rng, 10..2000),
                    2,
                );
            }
            let broken = &policy.models["m"].targets[round % 3];
            for _ in 0..5 {
                stats
                    .try_start(broken, HealthSettings::default(), 0, Instant::now())
                    .unwrap()
                    .failed(Instant::now());
            }
            let plan = plan(
                &policy,
                &policy.models["m"],
                None,
                &stats,
                &SHAPE,
                Instant::now(),
                &mut rng,
            );
            assert!(!plan.attempts.is_empty());
            assert!(
                plan.attempts.iter().all(|a| a.target.id != broken.id),
                "{strategy}: open circuit planned"
            );
        }
    }
}

/// Property: equal targets share the load instead of one taking every first attempt.
#[tokio::test(start_paused = true)]
async fn load_spreads_among_equal_targets() {
    let policy = policy("  m:\n    strategy: latency\n    targets:\n      - { provider: fast, model: m, price: free }\n      - { provider: slow, model: m, price: free }\n      - { provider: cheap, model: m, price: free }\n");
    let stats = LiveStats::new();
    let mut rng = StdRng::seed_from_u64(7);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..600 {
        *counts
            .entry(first(&policy, "m", &stats, &mut rng))
            .or_default() += 1;
    }
    for provider in ["fast", "slow", "cheap"] {
        let share = counts.get(provider).copied().unwrap_or(0);
        assert!(
            (120..=280).contains(&share),
            "{provider}: {share} of 600 ({counts:?})"
        );
    }
}

/// Equal targets that are used take turns: an even split within a request, not a random walk.
#[tokio::test(start_paused = true)]
async fn equal_targets_in_use_take_turns() {
    let policy = policy("  m:\n    strategy: latency\n    targets:\n      - { provider: fast, model: m, price: free }\n      - { provider: slow, model: m, price: free }\n      - { provider: cheap, model: m, price: free }\n");
    let stats = LiveStats::new();
    let mut rng = StdRng::seed_from_u64(7);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..300 {
        let name = first(&policy, "m", &stats, &mut rng);
        warm(&stats, &policy, "m", &name, 200, 1);
        *counts.entry(name).or_default() += 1;
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    for provider in ["fast", "slow", "cheap"] {
        let share = counts.get(provider).copied().unwrap_or(0);
        assert!(
            (99..=101).contains(&share),
            "{provider}: {share} of 300 ({counts:?})"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn in_flight_load_moves_the_leader() {
    let policy = policy("  m:\n    strategy: latency\n    targets:\n      - { provider: fast, model: m, price: free }\n      - { provider: slow, model: m, price: free }\n");
    let stats = LiveStats::new();
    let busy = policy.models["m"].targets[0].clone();
    let _held: Vec<_> = (0..10)
        .map(|_| {
            stats
                .try_start(&busy, HealthSettings::default(), 0, Instant::now())
                .unwrap()
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(8);
    for _ in 0..20 {
        assert_eq!(first(&policy, "m", &stats, &mut rng), "slow");
    }
}

#[tokio::test(start_paused = true)]
async fn an_unmeasured_target_is_explored_not_starved() {
    let policy = policy("  m:\n    strategy: latency\n    targets:\n      - { provider: slow, model: m, price: free }\n      - { provider: fast, model: m, price: free }\n");
    let stats = LiveStats::new();
    warm(&stats, &policy, "m", "slow", 250, 3);
    let mut rng = StdRng::seed_from_u64(9);
    let picks: Vec<String> = (0..20)
        .map(|_| first(&policy, "m", &stats, &mut rng))
        .collect();
    assert!(picks.iter().any(|p| p == "fast"), "{picks:?}");
}

#[tokio::test(start_paused = true)]
async fn stale_figures_give_a_slow_target_another_chance() {
    let policy = policy("  m:\n    strategy: latency\n    targets:\n      - { provider: slow, model: m, price: free }\n      - { provider: fast, model: m, price: free }\n");
    let stats = LiveStats::new();
    warm(&stats, &policy, "m", "slow", 2000, 3);
    warm(&stats, &policy, "m", "fast", 100, 3);
    let mut rng = StdRng::seed_from_u64(10);
    assert!((0..20).all(|_| first(&policy, "m", &stats, &mut rng) == "fast"));
    tokio::time::advance(Duration::from_secs(21)).await;
    warm(&stats, &policy, "m", "fast", 100, 1);
    let picks: Vec<String> = (0..40)
        .map(|_| first(&policy, "m", &stats, &mut rng))
        .collect();
    assert!(picks.iter().any(|p| p == "slow"), "{picks:?}");
}

#[tokio::test(start_paused = true)]
async fn regions_and_clouds_keep_traffic_where_it_may_go() {
    let text = "version: 1\nproviders:\n  eu: { kind: openai, base_url: \"http://127.0.0.1:1/v1\", region: eu-west-1 }\n  us: { kind: openai, base_url: \"http://127.0.0.1:2/v1\", region: us-east-1 }\n  lab: { kind: openai, base_url: \"http://127.0.0.1:3/v1\", cloud: on-prem }\nmodels:\n  m:\n    clouds: [openai]\n    targets:\n      - { provider: us, model: m, price: free }\n      - { provider: eu, model: m, price: free }\n      - { provider: lab, model: m, price: free }\nteams:\n  gdpr: { keys: [], regions: [eu-west-1] }\n";
    let policy = compile_str(text, Path::new("routes.yaml"), &|_| None).unwrap();
    let stats = LiveStats::new();
    let mut rng = StdRng::seed_from_u64(11);
    let model = &policy.models["m"];
    let anyone = plan(
        &policy,
        model,
        None,
        &stats,
        &SHAPE,
        Instant::now(),
        &mut rng,
    );
    let ids: Vec<_> = anyone
        .attempts
        .iter()
        .map(|a| a.target.provider.name.as_str())
        .collect();
    assert_eq!(
        ids,
        vec!["us", "eu"],
        "the on-prem cloud is outside the model's clouds"
    );
    let team = &policy.teams["gdpr"];
    let gdpr = plan(
        &policy,
        model,
        Some(team),
        &stats,
        &SHAPE,
        Instant::now(),
        &mut rng,
    );
    let ids: Vec<_> = gdpr
        .attempts
        .iter()
        .map(|a| a.target.provider.name.as_str())
        .collect();
    assert_eq!(ids, vec!["eu"]);
    assert!(matches!(&gdpr.skipped[0].1, SkipReason::Placement(why) if why.contains("us-east-1")));
}

/// Issue 12, part 2: a target out of headroom is passed over only while another target can
/// serve; alone, it is tried anyway (the upstream decides) instead of a local 503.
#[tokio::test(start_paused = true)]
async fn a_lone_target_out_of_headroom_is_tried_anyway() {
    let policy = policy(
        "  solo:\n    targets:\n      - { provider: cheap, model: m, price: { input: 0.5, output: 2 }, limits: { rpm: 1 } }\n  pair:\n    targets:\n      - { provider: cheap, model: m, price: { input: 0.5, output: 2 }, limits: { rpm: 1 } }\n      - { provider: fast, model: m, price: { input: 2, output: 8 } }\n",
    );
    let stats = LiveStats::new();
    let mut rng = StdRng::seed_from_u64(3);
    warm(&stats, &policy, "solo", "cheap", 50, 1);
    println!("cheap's 1 rpm is used up: with another target it is skipped");
    let pair = plan(
        &policy,
        &policy.models["pair"],
        None,
        &stats,
        &SHAPE,
        Instant::now(),
        &mut rng,
    );
    assert_eq!(pair.attempts.len(), 1);
    assert_eq!(pair.attempts[0].target.provider.name, "fast");
    assert_eq!(pair.skipped[0].1, SkipReason::CapacityExhausted);
    println!("alone, it is still tried");
    let solo = plan(
        &policy,
        &policy.models["solo"],
        None,
        &stats,
        &SHAPE,
        Instant::now(),
        &mut rng,
    );
    assert_eq!(solo.attempts.len(), 1);
    assert_eq!(solo.attempts[0].target.provider.name, "cheap");
    assert!(solo.skipped.is_empty());
}

#[test]
fn the_normal_distribution_function_matches_its_table() {
    for (z, phi) in [
        (0.0, 0.5),
        (1.0, 0.841_344_7),
        (-1.96, 0.024_997_9),
        (3.0, 0.998_650_1),
    ] {
        let got = super::plan::standard_normal_cdf(z);
        assert!((got - phi).abs() < 1e-6, "Φ({z}) = {got}, want {phi}");
    }
}
