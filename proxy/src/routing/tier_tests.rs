//! Provisioned capacity first, in every strategy (issue 12, part 2): the order of tiers and
//! clouds, spilling below 10 % headroom, and a provisioned target's 429 that cools it down
//! without counting against its health.

use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;

use super::circuit::CircuitState;
use super::*;
use crate::config::{compile_str, HealthSettings, Policy};

const SHAPE: RequestShape = RequestShape {
    prompt_tokens: 1000,
    max_output_tokens: Some(100),
};

/// `other` (another cloud, cheapest), `paygo` (Azure pay-as-you-go), `ptu` (Azure
/// provisioned, dearest by list price, written last).
fn policy(strategy: &str, ptu_limits: &str) -> Policy {
    let text = format!(
        "version: 1\nproviders:\n  other: {{ kind: openai, base_url: \"http://127.0.0.1:1/v1\" }}\n  paygo: {{ kind: azure, endpoint: 'https://p.openai.azure.com', api_key: k, api_version: v1 }}\n  ptu: {{ kind: azure, endpoint: 'https://q.openai.azure.com', api_key: k, api_version: v1 }}\nmodels:\n  m:\n    strategy: {strategy}\n    targets:\n      - {{ provider: other, model: m, price: {{ input: 0.1, output: 0.2 }} }}\n      - {{ provider: paygo, deployment: d, tier: standard, price: {{ input: 1, output: 2 }} }}\n      - {{ provider: ptu, deployment: d, tier: provisioned, price: {{ input: 5, output: 10 }}{ptu_limits} }}\n"
    );
    compile_str(&text, Path::new("routes.yaml"), &|_| None).unwrap()
}

fn order(policy: &Policy, stats: &LiveStats, rng: &mut StdRng) -> Vec<String> {
    plan(
        policy,
        &policy.models["m"],
        None,
        stats,
        &SHAPE,
        Instant::now(),
        rng,
    )
    .attempts
    .iter()
    .map(|a| a.target.provider.name.clone())
    .collect()
}

fn target<'a>(policy: &'a Policy, provider: &str) -> &'a crate::config::Target {
    policy.models["m"]
        .targets
        .iter()
        .find(|t| t.provider.name == provider)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_strategy_fills_provisioned_then_pay_as_you_go_then_another_cloud() {
    let mut rng = StdRng::seed_from_u64(12);
    for strategy in ["priority", "latency", "cost", "balanced"] {
        let policy = policy(strategy, "");
        let stats = LiveStats::new();
        // The PTU is also the slowest: latency alone would put it last.
        for (provider, ms) in [("other", 50), ("paygo", 100), ("ptu", 900)] {
            for _ in 0..3 {
                stats
                    .try_start(
                        target(&policy, provider),
                        HealthSettings::default(),
                        0,
                        Instant::now(),
                    )
                    .unwrap()
                    .completed(Duration::from_millis(ms), 20);
            }
        }
        for _ in 0..20 {
            assert_eq!(
                order(&policy, &stats, &mut rng),
                vec!["ptu", "paygo", "other"],
                "{strategy}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn below_a_tenth_of_its_headroom_the_provisioned_target_spills_over() {
    let policy = policy("cost", ", limits: { rpm: 10 }");
    let stats = LiveStats::new();
    let mut rng = StdRng::seed_from_u64(13);
    let ptu = target(&policy, "ptu");
    let mut held = Vec::new();
    for _ in 0..9 {
        assert_eq!(order(&policy, &stats, &mut rng)[0], "ptu");
        held.push(
            stats
                .try_start(ptu, HealthSettings::default(), 0, Instant::now())
                .unwrap(),
        );
    }
    // 9 of 10 a minute used: below 10 % headroom, pay-as-you-go (then the other cloud) first.
    assert_eq!(
        order(&policy, &stats, &mut rng),
        vec!["paygo", "other", "ptu"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_provisioned_429_cools_down_without_counting_against_its_health() {
    let policy = policy("priority", "");
    let stats = LiveStats::new();
    let mut rng = StdRng::seed_from_u64(14);
    let (ptu, other) = (target(&policy, "ptu"), target(&policy, "other"));
    let health = HealthSettings::default();
    for _ in 0..health.failures * 2 {
        let wait = stats
            .try_start(ptu, health, 0, Instant::now())
            .unwrap()
            .capacity_error(Some(Duration::from_millis(500)), Instant::now());
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(
            order(&policy, &stats, &mut rng),
            vec!["paygo", "other"],
            "cooling down: spill"
        );
        tokio::time::advance(wait).await;
    }
    let snapshot = stats.snapshot(ptu, Instant::now());
    assert_eq!(snapshot.circuit, CircuitState::Closed);
    assert_eq!(snapshot.consecutive_failures, 0);
    assert_eq!(snapshot.window.error_rate(), 0.0);
    assert_eq!(snapshot.window.provisioned_full, health.failures as u64 * 2);
    assert_eq!(
        order(&policy, &stats, &mut rng)[0],
        "ptu",
        "back first after the cool-down"
    );
    println!("the same 429s from a pay-as-you-go target count and open its circuit");
    for _ in 0..health.failures {
        let wait = stats
            .try_start(other, health, 0, Instant::now())
            .unwrap()
            .capacity_error(Some(Duration::from_millis(500)), Instant::now());
        tokio::time::advance(wait).await;
    }
    let snapshot = stats.snapshot(other, Instant::now());
    assert!(matches!(snapshot.circuit, CircuitState::Open { .. }));
    assert!(snapshot.window.error_rate() > 0.99);
}

#[tokio::test(start_paused = true)]
async fn a_provisioned_429_gives_a_half_open_probe_back() {
    let policy = policy("priority", "");
    let stats = LiveStats::new();
    let ptu = target(&policy, "ptu");
    let health = HealthSettings::default();
    for _ in 0..health.failures {
        stats
            .try_start(ptu, health, 0, Instant::now())
            .unwrap()
            .failed(Instant::now());
    }
    tokio::time::advance(health.open_for).await;
    let probe = stats.try_start(ptu, health, 0, Instant::now()).unwrap();
    assert!(probe.is_probe());
    probe.capacity_error(Some(Duration::from_millis(100)), Instant::now());
    tokio::time::advance(Duration::from_millis(100)).await;
    // Still half-open (no verdict on its health), and the probe slot is free again.
    let again = stats.try_start(ptu, health, 0, Instant::now()).unwrap();
    assert!(again.is_probe());
}
