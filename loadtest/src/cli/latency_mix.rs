//! `loadtest scenario latency-mix`: `strategy: latency` against targets with realistic,
//! varying latency (time to first token 200 ms – 2 s, log-normal with a heavy tail; 30–120
//! tokens/s; answers of varied length), streamed and whole answers in runs of their own. For
//! 1, 2 (one 20 %+ slower, or equal) and 4 targets it prints, after a warm-up, each target's
//! share of streamed and whole requests, and checks: ≥ 90 % to the fastest when it is ≥ 20 %
//! faster, within 60/40 when equal. Bounded: `WARMUP + MEASURED` requests per case and kind,
//! two at a time, everything on 127.0.0.1.
//!
//! `LATENCY_MIX_CASE=<label>` runs one case (e.g. `two, equal`); `LATENCY_MIX_DUMP=1` also
//! prints each run's `/admin/routes` and the order in which the targets served.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use loadtest::openai_sim::LatencyJitter;
use loadtest::proxy_process::{key_hash, ProxyProcess};
use loadtest::{http_client, OpenAiSim, SimConfig};

const KEY: &str = "sk-latency-mix";
const MODEL: &str = "gpt-sim";
const WARMUP: usize = 192;
const MEASURED: usize = 48;
/// Client requests in flight at once (little queueing: the in-flight penalty stays small).
const WORKERS: usize = 2;
/// σ of the log-normal time to first token: p99 ≈ 3.2 × median.
const TTFT_SIGMA: f64 = 0.5;
/// Answers are 10..=40 tokens long (the request's `max_tokens`).
const TOKENS: (u64, u64) = (10, 40);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// One simulated target: median time to first token and generation speed.
#[derive(Clone, Copy)]
struct Target {
    name: &'static str,
    ttft_ms: u64,
    tokens_per_s: u64,
}

impl Target {
    /// Expected total time of an answer of average length, in ms.
    fn expected_ms(&self) -> f64 {
        // E[log-normal] = median × e^(σ²/2).
        let mean_tokens = (TOKENS.0 + TOKENS.1) as f64 / 2.0;
        self.ttft_ms as f64 * (TTFT_SIGMA * TTFT_SIGMA / 2.0).exp()
            + mean_tokens * 1000.0 / self.tokens_per_s as f64
    }
}

struct Case {
    label: &'static str,
    targets: Vec<Target>,
}

fn cases() -> Vec<Case> {
    let t = |name, ttft_ms, tokens_per_s| Target {
        name,
        ttft_ms,
        tokens_per_s,
    };
    vec![
        Case {
            label: "one target",
            targets: vec![t("a", 600, 60)],
        },
        Case {
            label: "two, one slower",
            targets: vec![t("a", 1500, 60), t("b", 300, 80)],
        },
        Case {
            label: "two, one 25 % slower",
            targets: vec![t("a", 780, 50), t("b", 600, 60)],
        },
        Case {
            label: "two, equal",
            targets: vec![t("a", 600, 60), t("b", 600, 60)],
        },
        Case {
            label: "four, one fastest",
            targets: vec![
                t("a", 2000, 30),
                t("b", 900, 60),
                t("c", 200, 120),
                t("d", 1200, 40),
            ],
        },
    ]
}

pub async fn run(binary: &std::path::Path) -> anyhow::Result<bool> {
    println!("\n══ latency-mix {}", "═".repeat(60));
    println!(
        "load:     per case {WARMUP} warm-up + {MEASURED} measured requests, {WORKERS} at a time, \
         streamed and whole answers in runs of their own (a fresh proxy each), max_tokens {}..={}; ttft log-normal σ {TTFT_SIGMA} around \
         the median",
        TOKENS.0, TOKENS.1
    );
    println!("expected: ≥ 90 % to the fastest target when it is ≥ 20 % faster in expected total time; within 60/40 when equal\n");
    println!(
        "| case | targets (median ttft, tok/s → expected total) | streamed: share per target | whole: share per target | check |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let mut all = true;
    for case in cases() {
        if let Ok(only) = std::env::var("LATENCY_MIX_CASE") {
            if case.label != only {
                continue;
            }
        }
        let passed = run_case(binary, &case).await?;
        all &= passed;
    }
    Ok(all)
}

async fn run_case(binary: &std::path::Path, case: &Case) -> anyhow::Result<bool> {
    let mut sims = Vec::new();
    for target in &case.targets {
        let sim = OpenAiSim::start(SimConfig {
            name: target.name.to_owned(),
            ttft: Duration::from_millis(target.ttft_ms),
            inter_token: Duration::from_secs(1) / target.tokens_per_s as u32,
            output_tokens: TOKENS.1 as usize,
            api_key: Some(format!("{}-upstream-key", target.name)),
            ..SimConfig::default()
        })
        .await
        .with_context(|| format!("starting simulator {}", target.name))?;
        sim.set_latency_jitter(Some(LatencyJitter {
            ttft_sigma: TTFT_SIGMA,
            pace_whole_answers: true,
        }));
        sims.push(sim);
    }
    // Streamed and whole answers each get a proxy of their own, so each kind's figures are
    // learned from that kind of traffic alone.
    let mut served = Vec::new();
    for stream in [true, false] {
        let proxy = ProxyProcess::start(binary, &policy_yaml(case, &sims)).await?;
        let got = drive(&proxy.base_url(), stream).await?;
        if std::env::var_os("LATENCY_MIX_DUMP").is_some() {
            let routes = http_client()?
                .get(format!("{}/admin/routes", proxy.admin_url()))
                .send()
                .await?
                .text()
                .await?;
            eprintln!("ROUTES {routes}");
            let seq: Vec<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
            eprintln!("SEQ {}", seq.join(" "));
        }
        served.extend(got);
    }

    let expected: Vec<f64> = case.targets.iter().map(Target::expected_ms).collect();
    let best = expected.iter().copied().fold(f64::INFINITY, f64::min);
    let fastest = expected.iter().position(|e| *e == best).unwrap_or(0);
    let runner_up = expected
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != fastest)
        .map(|(_, e)| *e)
        .fold(f64::INFINITY, f64::min);
    let mut shares = Vec::new();
    let mut passed = true;
    for stream in [true, false] {
        let mine: Vec<&String> = served
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, p)| p)
            .collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &mine {
            *counts.entry(p.as_str()).or_default() += 1;
        }
        let total = mine.len().max(1) as f64;
        let share = |name: &str| counts.get(name).copied().unwrap_or(0) as f64 / total;
        let text: Vec<String> = case
            .targets
            .iter()
            .map(|t| format!("{} {:.0} %", t.name, 100.0 * share(t.name)))
            .collect();
        shares.push(text.join(", "));
        passed &= if case.targets.len() == 1 {
            share(case.targets[0].name) == 1.0
        } else if runner_up >= best * 1.2 {
            share(case.targets[fastest].name) >= 0.9
        } else {
            case.targets
                .iter()
                .all(|t| (0.4..=0.6).contains(&share(t.name)))
        };
    }
    let described: Vec<String> = case
        .targets
        .iter()
        .zip(&expected)
        .map(|(t, e)| {
            format!(
                "{} {} ms, {} → {:.0} ms",
                t.name, t.ttft_ms, t.tokens_per_s, e
            )
        })
        .collect();
    println!(
        "| {} | {} | {} | {} | {} |",
        case.label,
        described.join("; "),
        shares[0],
        shares[1],
        if passed { "PASS" } else { "FAIL" }
    );
    Ok(passed)
}

fn policy_yaml(case: &Case, sims: &[OpenAiSim]) -> String {
    let mut yaml = String::from(
        "version: 1\nserver:\n  listen: 127.0.0.1:{LISTEN}\n  admin_listen: 127.0.0.1:{ADMIN}\n  \
         request_timeout: 30s\n  first_byte_timeout: 15s\nproviders:\n",
    );
    for (t, sim) in case.targets.iter().zip(sims) {
        yaml.push_str(&format!(
            "  {name}: {{ kind: openai, base_url: \"{url}\", api_key: {name}-upstream-key }}\n",
            name = t.name,
            url = sim.base_url()
        ));
    }
    yaml.push_str(&format!(
        "models:\n  {MODEL}:\n    strategy: latency\n    targets:\n"
    ));
    for t in &case.targets {
        yaml.push_str(&format!(
            "      - {{ provider: {}, model: sim-model, price: {{ input: 1, output: 4 }} }}\n",
            t.name
        ));
    }
    yaml.push_str(&format!(
        "teams:\n  scenario: {{ keys: [\"{}\"] }}\n",
        key_hash(KEY)
    ));
    yaml
}

/// Sends the requests, all streamed or all whole, `WORKERS` at a time; returns (streamed,
/// provider) of the measured ones.
async fn drive(base_url: &str, stream: bool) -> anyhow::Result<Vec<(bool, String)>> {
    let client = http_client()?;
    let url = format!("{base_url}/chat/completions");
    let workers = Arc::new(Semaphore::new(WORKERS));
    let mut tasks = JoinSet::new();
    for n in 0..WARMUP + MEASURED {
        let permit = workers.clone().acquire_owned().await?;
        let (client, url) = (client.clone(), url.clone());
        let max_tokens = TOKENS.0 + (n as u64 * 7) % (TOKENS.1 - TOKENS.0 + 1);
        tasks.spawn(async move {
            let body = json!({
                "model": MODEL,
                "stream": stream,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": format!("latency-mix request {n}")}],
            });
            let reply = client
                .post(&url)
                .bearer_auth(KEY)
                .json(&body)
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await;
            // The whole body is read, as a real client does: a stream dropped after its
            // headers would be abandoned, and the proxy would learn nothing from it.
            let provider = match reply {
                Ok(r) if r.status().is_success() => {
                    let provider = r
                        .headers()
                        .get("x-switchyard-provider")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    r.bytes().await.ok().and(provider)
                }
                _ => None,
            };
            drop(permit);
            (n, stream, provider.unwrap_or_else(|| "error".to_owned()))
        });
    }
    let mut served = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (n, stream, provider) = joined?;
        if n >= WARMUP {
            served.push((stream, provider));
        }
    }
    Ok(served)
}
