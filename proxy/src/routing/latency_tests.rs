//! `strategy: latency` against simulated targets (issue 12, part 1): sequential requests
//! drawn from seeded latency distributions, fed through the same permits the attempt loop
//! uses, on a paused clock that advances by each answer's time.

use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::*;
use crate::config::{compile_str, HealthSettings, Policy};

/// How one simulated target answers: time to first token (log-normal around `ttft_ms`,
/// `spread` its σ: heavy-tailed), then `per_token_ms` per output token.
#[derive(Clone, Copy)]
struct Sim {
    ttft_ms: f64,
    spread: f64,
    per_token_ms: f64,
}

impl Sim {
    const fn fixed(ttft_ms: f64, per_token_ms: f64) -> Self {
        Sim {
            ttft_ms,
            spread: 0.0,
            per_token_ms,
        }
    }

    /// `(time to first token, generation time)` of one answer of `tokens`.
    fn draw(&self, tokens: u64, rng: &mut StdRng) -> (Duration, Duration) {
        let ttft = self.ttft_ms * (self.spread * normal(rng)).exp();
        // The per-token rate varies a little from answer to answer too.
        let per_token = self.per_token_ms * (0.1 * self.spread * normal(rng)).exp();
        (
            Duration::from_secs_f64(ttft / 1000.0),
            Duration::from_secs_f64(per_token * tokens as f64 / 1000.0),
        )
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn policy(targets: usize) -> Policy {
    let mut text = String::from("version: 1\nproviders:\n");
    for i in 0..targets {
        text += &format!(
            "  t{i}: {{ kind: openai, base_url: \"http://127.0.0.1:{}/v1\" }}\n",
            i + 1
        );
    }
    text += "models:\n  m:\n    strategy: latency\n    targets:\n";
    for i in 0..targets {
        text += &format!("      - {{ provider: t{i}, model: m, price: free }}\n");
    }
    compile_str(&text, Path::new("routes.yaml"), &|_| None).unwrap()
}

/// How requests look: streamed or not, and their output length range.
#[derive(Clone, Copy)]
struct Traffic {
    stream: bool,
    tokens: (u64, u64),
}

/// Sends `warmup + n` sequential requests; returns how many of the last `n` each target
/// (by index) got first.
async fn run(sims: &[Sim], traffic: Traffic, warmup: usize, n: usize, seed: u64) -> Vec<usize> {
    let policy = policy(sims.len());
    let model = &policy.models["m"];
    let stats = LiveStats::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = vec![0; sims.len()];
    for round in 0..warmup + n {
        let tokens = rng.random_range(traffic.tokens.0..=traffic.tokens.1);
        // The request says how long its answer may be; the answer is that long.
        let shape = RequestShape {
            prompt_tokens: 500,
            max_output_tokens: Some(tokens as u32),
        };
        let plan = plan(
            &policy,
            model,
            None,
            &stats,
            &shape,
            Instant::now(),
            &mut rng,
        );
        let target = &plan.attempts[0].target;
        let index = model
            .targets
            .iter()
            .position(|t| t.id == target.id)
            .unwrap();
        if round >= warmup {
            counts[index] += 1;
        }
        let permit = stats
            .try_start(target, HealthSettings::default(), 0, Instant::now())
            .unwrap();
        let (ttft, generation) = sims[index].draw(tokens, &mut rng);
        tokio::time::advance(ttft + generation).await;
        if traffic.stream {
            permit.succeeded(ttft, generation, tokens);
        } else {
            permit.completed(ttft + generation, tokens);
        }
    }
    counts
}

const WHOLE: Traffic = Traffic {
    stream: false,
    tokens: (20, 20),
};

fn share(counts: &[usize], index: usize) -> f64 {
    counts[index] as f64 / counts.iter().sum::<usize>() as f64
}

/// The reproduction: 1 ms against 300 ms, non-streamed, equal prices.
#[tokio::test(start_paused = true)]
async fn whole_answers_teach_a_1ms_target_from_a_300ms_one() {
    for seed in 0..5 {
        let counts = run(
            &[Sim::fixed(300.0, 0.0), Sim::fixed(1.0, 0.0)],
            WHOLE,
            20,
            30,
            seed,
        )
        .await;
        assert!(share(&counts, 1) >= 0.9, "seed {seed}: {counts:?}");
    }
}

/// Streams whose figures differ only in time to first token (300 ms against 1.5 s): the
/// shared per-token time must not drown the difference.
#[tokio::test(start_paused = true)]
async fn streams_follow_time_to_first_token_under_a_shared_per_token_time() {
    let traffic = Traffic {
        stream: true,
        tokens: (256, 256),
    };
    let counts = run(
        &[Sim::fixed(1500.0, 20.0), Sim::fixed(300.0, 20.0)],
        traffic,
        20,
        200,
        1,
    )
    .await;
    assert!(share(&counts, 1) >= 0.9, "{counts:?}");
}

/// Heavy tails (σ 0.5 around the median time to first token), 30–120 tokens/s, varied
/// lengths: a target 25 % slower in expected total still gets under 10 % after warm-up,
/// for streamed and whole answers alike.
#[tokio::test(start_paused = true)]
async fn a_quarter_slower_target_gets_under_a_tenth_with_heavy_tails() {
    let fast = Sim {
        ttft_ms: 400.0,
        spread: 0.5,
        per_token_ms: 12.0,
    };
    // Expected total ≈ 1.25 × fast's for 50–300 tokens.
    let slow = Sim {
        ttft_ms: 500.0,
        spread: 0.5,
        per_token_ms: 15.0,
    };
    for stream in [true, false] {
        let traffic = Traffic {
            stream,
            tokens: (50, 300),
        };
        for seed in 0..3 {
            let counts = run(&[slow, fast], traffic, 30, 300, seed).await;
            assert!(
                share(&counts, 1) >= 0.9,
                "stream {stream}, seed {seed}: {counts:?}"
            );
        }
    }
}

/// Equal targets with the same noise share the load within 60/40, streamed or not.
#[tokio::test(start_paused = true)]
async fn equal_noisy_targets_share_within_60_40() {
    let sim = Sim {
        ttft_ms: 600.0,
        spread: 0.5,
        per_token_ms: 15.0,
    };
    for stream in [true, false] {
        let traffic = Traffic {
            stream,
            tokens: (50, 300),
        };
        // Ten seeds: a router that strands one target on an unlucky run of samples fails some.
        for seed in 0..10 {
            let counts = run(&[sim, sim], traffic, 30, 400, seed).await;
            let first = share(&counts, 0);
            assert!(
                (0.4..=0.6).contains(&first),
                "stream {stream}, seed {seed}: {counts:?}"
            );
        }
    }
}

/// `loadtest scenario latency-mix`'s hardest cases, as seeded simulations: median times to
/// first token 780 ms and 600 ms with σ 0.5 (p99 ≈ 3.2 × median), 50 and 60 tokens/s,
/// answers of 10–40 tokens, so the slower target is ≈ 26 % slower in expected total and
/// nearly all of that hides in the heavy-tailed first-token time; and the same with two
/// equal targets. After the scenario's warm-up (192 requests) the next 48 are counted.
///
/// This is at the edge of what the samples can tell: one answer's total spreads by ≈ 40 % of
/// the mean, so the two expectations need ≈ 100 answers each to be 3 standard errors apart.
/// The figures over 20 seeds (docs/benchmarks.md: 17 and 18 of 20 for streams, 20 and 20
/// for whole answers) give the floor asserted here: each check met in at least 17 of 20
/// runs, and ≥ 95 % to the faster target on average for whole answers. One 48-request
/// window is a small sample: a target whose answers came out slow by chance can lose a
/// share until its figures are re-checked.
#[tokio::test(start_paused = true)]
async fn the_scenario_cases_hold_over_many_seeds() {
    let slower = Sim {
        ttft_ms: 780.0,
        spread: 0.5,
        per_token_ms: 20.0,
    };
    let faster = Sim {
        ttft_ms: 600.0,
        spread: 0.5,
        per_token_ms: 1000.0 / 60.0,
    };
    for stream in [true, false] {
        let traffic = Traffic {
            stream,
            tokens: (10, 40),
        };
        let (mut faster_passed, mut equal_passed, mut faster_sum) = (0, 0, 0.0);
        for seed in 0..SCENARIO_SEEDS {
            let counts = run(
                &[slower, faster],
                traffic,
                SCENARIO_WARMUP,
                SCENARIO_MEASURED,
                seed,
            )
            .await;
            let equal = run(
                &[faster, faster],
                traffic,
                SCENARIO_WARMUP,
                SCENARIO_MEASURED,
                seed,
            )
            .await;
            let (to_faster, first_of_equal) = (share(&counts, 1), share(&equal, 0));
            println!("stream {stream} seed {seed}: to the faster {to_faster:.2}, equal {first_of_equal:.2}");
            faster_sum += to_faster;
            faster_passed += usize::from(to_faster >= 0.9);
            equal_passed += usize::from((0.4..=0.6).contains(&first_of_equal));
        }
        let mean = faster_sum / SCENARIO_SEEDS as f64;
        println!("stream {stream}: ≥ 90 % in {faster_passed} of {SCENARIO_SEEDS}, mean {mean:.3}; equal within 60/40 in {equal_passed}");
        if stream {
            assert!(
                faster_passed >= 17 && equal_passed >= 17,
                "streams: {faster_passed}, {equal_passed}"
            );
        } else {
            assert!(
                faster_passed >= 17 && mean >= 0.95 && equal_passed >= 17,
                "whole: {faster_passed}, {mean}, {equal_passed}"
            );
        }
    }
}

const SCENARIO_SEEDS: u64 = 20;
const SCENARIO_WARMUP: usize = 192;
const SCENARIO_MEASURED: usize = 48;

/// Four targets, one clearly fastest: it gets ≥ 90 %.
#[tokio::test(start_paused = true)]
async fn the_fastest_of_four_takes_the_traffic() {
    let sims = [
        Sim::fixed(900.0, 20.0),
        Sim::fixed(700.0, 25.0),
        Sim::fixed(400.0, 10.0),
        Sim::fixed(1200.0, 8.0),
    ];
    let traffic = Traffic {
        stream: true,
        tokens: (100, 100),
    };
    let counts = run(&sims, traffic, 30, 200, 4).await;
    assert!(share(&counts, 2) >= 0.9, "{counts:?}");
}

/// Whole answers of different lengths give a time per token: a target with a short wait
/// but slow generation wins short answers and loses long ones.
#[tokio::test(start_paused = true)]
async fn whole_answers_of_different_lengths_give_a_time_per_token() {
    let policy = policy(2);
    let model = &policy.models["m"];
    let stats = LiveStats::new();
    // t0: 100 ms + 10 ms/token; t1: 600 ms + 2 ms/token.
    for (target, base, per_token) in [(0, 100u64, 10u64), (1, 600, 2)] {
        for tokens in [10u64, 100, 200] {
            let permit = stats
                .try_start(
                    &model.targets[target],
                    HealthSettings::default(),
                    0,
                    Instant::now(),
                )
                .unwrap();
            permit.completed(Duration::from_millis(base + per_token * tokens), tokens);
        }
    }
    let order = |max: u32| {
        let shape = RequestShape {
            prompt_tokens: 100,
            max_output_tokens: Some(max),
        };
        let ranked = rank(model, None, &stats, &shape, Instant::now(), None);
        let fit = ranked[0].snapshot.whole.and_then(|w| w.fit).unwrap();
        assert_eq!(
            ranked[0].figures.latency_basis,
            score::LatencyBasis::WholeByLength
        );
        assert!(ranked[0].figures.per_token_measured);
        (ranked[0].target.provider.name.clone(), fit)
    };
    let (short, fit) = order(20);
    assert_eq!(short, "t0");
    assert!((fit.ms_per_token - 10.0).abs() < 0.01, "{fit:?}");
    assert!((fit.base_ms - 100.0).abs() < 0.5, "{fit:?}");
    let (long, fit) = order(1000);
    assert_eq!(long, "t1");
    assert!((fit.ms_per_token - 2.0).abs() < 0.01, "{fit:?}");
}

/// A target measured only by whole answers of one length is judged on their total time,
/// not on a prior per-token rate × expected output.
#[tokio::test(start_paused = true)]
async fn one_length_gives_a_measured_total_with_no_prior_in_it() {
    let policy = policy(2);
    let model = &policy.models["m"];
    let stats = LiveStats::new();
    for (target, ms) in [(0, 300u64), (1, 1)] {
        stats
            .try_start(
                &model.targets[target],
                HealthSettings::default(),
                0,
                Instant::now(),
            )
            .unwrap()
            .completed(Duration::from_millis(ms), 20);
    }
    let shape = RequestShape {
        prompt_tokens: 100,
        max_output_tokens: None,
    };
    let ranked = rank(model, None, &stats, &shape, Instant::now(), None);
    assert_eq!(ranked[0].target.provider.name, "t1");
    for r in &ranked {
        assert_eq!(r.figures.latency_basis, score::LatencyBasis::WholeAverage);
        assert_eq!(r.figures.prior_latency_ms, 0.0);
    }
    assert!((ranked[0].figures.expected_latency_ms - 1.0).abs() < 1e-6);
    assert!((ranked[1].figures.expected_latency_ms - 300.0).abs() < 1e-6);
}
