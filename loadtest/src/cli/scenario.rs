//! `loadtest scenario <name>`: the router at work. Each scenario starts simulated providers
//! and the real proxy on a scenario policy, drives a steady open-loop load (changing the
//! upstream conditions mid-run where the scenario calls for it), and prints requests served per target per second, client
//! errors, failovers, latency percentiles, the proxy's own counters, and PASS/FAIL checks
//! of what a correct router does (exit code 1 on any FAIL).
//!
//! Run: `cargo run -p loadtest -- scenario capacity-shortage` (or `slow-target`,
//! `cost-capacity`, `outage`, `all`, and `latency-mix`, see `cli::latency_mix`). Everything listens on 127.0.0.1; every scenario sends
//! `RATE × SECONDS` requests and takes about `SECONDS` seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use loadtest::proxy_process::{key_hash, ProxyProcess};
use loadtest::{http_client, Fault, OpenAiSim, SimConfig};

use super::demo::ensure_switchyard_built;
use crate::scenario::{checks, metrics, table, timeline, Check, Outcome, Row, Totals};

const KEY: &str = "sk-scenario";
const MODEL: &str = "gpt-sim";
/// Requests per second of the steady load.
const RATE: u64 = 20;
/// Length of the load in each scenario.
const SECONDS: u64 = 12;
/// Concurrent client workers; a request waits for a free one.
const WORKERS: usize = 16;
/// Every n-th request is a stream.
const STREAM_EVERY: u64 = 5;
/// Bound on one client request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// When upstream conditions change in the scenarios that change them.
const FAULT_AT: u64 = 3;
/// `retry-after` of the 429s in `capacity-shortage`, in seconds.
const COOLDOWN: u64 = 3;
/// When the primary's quota is back in `capacity-shortage` (before its last `retry-after`
/// ends, so a router that honours it never sees another 429).
const QUOTA_BACK_MS: u64 = 5_500;
const OUTAGE_UNTIL: u64 = 7;
/// The cheap target's quota in `cost-capacity` (requests per minute).
const CHEAP_RPM: u64 = 60;

#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Which scenario to run.
    #[arg(value_enum)]
    name: Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Name {
    /// Priority routing; the primary's quota runs out mid-run (429 + retry-after).
    CapacityShortage,
    /// Latency routing; one of three targets is 10× slower to its first token.
    SlowTarget,
    /// Cost routing; the cheap target has a known rpm limit that runs out.
    CostCapacity,
    /// Priority routing; the primary answers 500 for four seconds (circuit breaker).
    Outage,
    /// Latency routing against 1, 2 and 4 targets with varying, heavy-tailed latency,
    /// streamed and whole answers (not part of `all`).
    LatencyMix,
    /// Every scenario above, one after the other.
    All,
}

/// One scenario (`Name` without `all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    CapacityShortage,
    SlowTarget,
    CostCapacity,
    Outage,
}

impl Name {
    fn scenarios(self) -> Vec<Scenario> {
        match self {
            Name::CapacityShortage => vec![Scenario::CapacityShortage],
            Name::SlowTarget => vec![Scenario::SlowTarget],
            Name::CostCapacity => vec![Scenario::CostCapacity],
            Name::Outage => vec![Scenario::Outage],
            Name::LatencyMix => Vec::new(),
            Name::All => vec![
                Scenario::CapacityShortage,
                Scenario::SlowTarget,
                Scenario::CostCapacity,
                Scenario::Outage,
            ],
        }
    }
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::CapacityShortage => "capacity-shortage",
            Scenario::SlowTarget => "slow-target",
            Scenario::CostCapacity => "cost-capacity",
            Scenario::Outage => "outage",
        }
    }
}

/// One simulated provider of a scenario.
struct Upstream {
    name: &'static str,
    ttft_ms: u64,
    rpm_limit: Option<u64>,
    /// The target's YAML fields after `provider` and `model` (price, limits).
    target_extra: String,
}

/// A change of upstream conditions at a moment of the run: from then on, every request to
/// that upstream gets `fault` (`None`: none).
struct Event {
    at: Duration,
    upstream: usize,
    fault: Option<Fault>,
    note: String,
}

struct Spec {
    name: Scenario,
    policy: String,
    expected: String,
    /// `strategy:` and the other model-level fields, as YAML lines under the model.
    model_yaml: String,
    upstreams: Vec<Upstream>,
    events: Vec<Event>,
    check: CheckFn,
}

/// What a correct router does, judged from the timeline and the totals.
type CheckFn = Box<dyn Fn(&[Row], &Totals) -> Vec<Check>>;

fn price(input: f64, output: f64) -> String {
    format!("price: {{ input: {input}, output: {output} }}")
}

fn upstream(name: &'static str, ttft_ms: u64) -> Upstream {
    Upstream {
        name,
        ttft_ms,
        rpm_limit: None,
        target_extra: price(1.0, 4.0),
    }
}

fn spec(name: Scenario) -> Spec {
    let at = |s: u64| Duration::from_secs(s);
    match name {
        Scenario::CapacityShortage => Spec {
            name,
            policy: format!(
                "strategy priority: a → b → c, default health; a's quota runs out at \
                 t={FAULT_AT}s (429 with retry-after {COOLDOWN}s)"
            ),
            expected: format!(
                "a serves everything until t={FAULT_AT}s, then b takes over with zero \
                 client-visible errors (the 429s of requests already in flight are retried on b \
                 inside the proxy; c, third in line, stays idle); a gets no traffic for the \
                 {COOLDOWN}s its retry-after asks, then serves again"
            ),
            model_yaml: "    strategy: priority\n".into(),
            upstreams: vec![upstream("a", 40), upstream("b", 60), upstream("c", 60)],
            events: vec![
                Event {
                    at: at(FAULT_AT),
                    upstream: 0,
                    fault: Some(Fault::RateLimit {
                        retry_after_ms: COOLDOWN * 1000,
                    }),
                    note: format!(
                        "a: quota exhausted, every request gets 429 retry-after {COOLDOWN}s"
                    ),
                },
                Event {
                    at: Duration::from_millis(QUOTA_BACK_MS),
                    upstream: 0,
                    fault: None,
                    note: "a: quota back (the proxy still waits for the retry-after)".into(),
                },
            ],
            check: Box::new(|rows, totals| {
                checks::capacity_shortage(rows, totals, "a", &["b", "c"], FAULT_AT, COOLDOWN, 4)
            }),
        },
        Scenario::SlowTarget => Spec {
            name,
            policy: "strategy latency: a (ttft 400ms), b (ttft 40ms), c (ttft 40ms), same price"
                .into(),
            expected: "after measuring each target, the router sends most traffic (> 80%) to b \
                       and c and spreads it between them (near-equal targets take turns); a only gets the \
                       first few requests that measure it"
                .into(),
            model_yaml: "    strategy: latency\n".into(),
            upstreams: vec![upstream("a", 400), upstream("b", 40), upstream("c", 40)],
            events: Vec::new(),
            check: Box::new(|_, totals| checks::slow_target(totals, "a", &["b", "c"])),
        },
        Scenario::CostCapacity => Spec {
            name,
            policy: format!(
                "strategy cost: a ($0.15/$0.60 per 1M, limits {{ rpm: {CHEAP_RPM} }}, and its \
                 upstream really answers 429 past {CHEAP_RPM}/min), b ($2.50/$10 per 1M, no limit)"
            ),
            expected: format!(
                "a (cheapest) serves until its local rpm {CHEAP_RPM} is nearly used (it is \
                 demoted below 10% headroom), then b serves the rest, without a ever answering \
                 429 and without client errors; a would be back in the next minute, which is \
                 beyond this {SECONDS}s run"
            ),
            model_yaml: "    strategy: cost\n".into(),
            upstreams: vec![
                Upstream {
                    name: "a",
                    ttft_ms: 40,
                    rpm_limit: Some(CHEAP_RPM),
                    target_extra: format!("{}, limits: {{ rpm: {CHEAP_RPM} }}", price(0.15, 0.6)),
                },
                Upstream {
                    name: "b",
                    ttft_ms: 40,
                    rpm_limit: None,
                    target_extra: price(2.5, 10.0),
                },
            ],
            events: Vec::new(),
            check: Box::new(|rows, totals| {
                checks::cost_capacity(rows, totals, "a", "b", CHEAP_RPM as usize)
            }),
        },
        Scenario::Outage => Spec {
            name,
            policy: format!(
                "strategy priority: a → b, health {{ failures: 3, open_for: 2s }}; a answers 500 \
                 to everything from t={FAULT_AT}s to t={OUTAGE_UNTIL}s"
            ),
            expected:
                "a's 500s fail over to b inside the proxy (zero client-visible errors); after \
                       3 failures in a row a's circuit opens, so b serves the outage with only a \
                       handful of failovers (the 3 that open it, those already in flight, and one \
                       per failed probe every 2s); \
                       after the outage a probe succeeds, the circuit closes and a serves again"
                    .into(),
            model_yaml: "    strategy: priority\n    health: { failures: 3, open_for: 2s }\n"
                .into(),
            upstreams: vec![upstream("a", 40), upstream("b", 60)],
            events: vec![
                Event {
                    at: at(FAULT_AT),
                    upstream: 0,
                    fault: Some(Fault::Status(500)),
                    note: "a: outage starts, every request gets 500".into(),
                },
                Event {
                    at: at(OUTAGE_UNTIL),
                    upstream: 0,
                    fault: None,
                    note: "a: outage ends".into(),
                },
            ],
            check: Box::new(|rows, totals| {
                checks::outage(rows, totals, "a", "b", FAULT_AT, OUTAGE_UNTIL, 10)
            }),
        },
    }
}

fn policy_yaml(spec: &Spec, sims: &[OpenAiSim]) -> String {
    let key_hash = key_hash(KEY);
    let mut yaml = String::from(
        "version: 1\nserver:\n  listen: 127.0.0.1:{LISTEN}\n  admin_listen: 127.0.0.1:{ADMIN}\n  \
         request_timeout: 10s\n  first_byte_timeout: 2s\nproviders:\n",
    );
    for (up, sim) in spec.upstreams.iter().zip(sims) {
        yaml.push_str(&format!(
            "  {name}: {{ kind: openai, base_url: \"{url}\", api_key: {name}-upstream-key }}\n",
            name = up.name,
            url = sim.base_url()
        ));
    }
    yaml.push_str(&format!(
        "models:\n  {MODEL}:\n{}    targets:\n",
        spec.model_yaml
    ));
    for up in &spec.upstreams {
        yaml.push_str(&format!(
            "      - {{ provider: {}, model: sim-model, {} }}\n",
            up.name, up.target_extra
        ));
    }
    yaml.push_str(&format!(
        "teams:\n  scenario: {{ keys: [\"{key_hash}\"] }}\n"
    ));
    yaml
}

pub async fn run(args: ScenarioArgs) -> anyhow::Result<()> {
    let binary = ensure_switchyard_built()?;
    if args.name == Name::LatencyMix {
        if !super::latency_mix::run(&binary).await? {
            eprintln!("latency-mix failed its checks");
            std::process::exit(1);
        }
        return Ok(());
    }
    let mut verdicts = Vec::new();
    for name in args.name.scenarios() {
        let passed = run_one(&binary, spec(name)).await?;
        verdicts.push((name, passed));
    }
    if verdicts.len() > 1 {
        println!("\n══ summary ══");
        for (name, passed) in &verdicts {
            println!(
                "  {}  {}",
                if *passed { "PASS" } else { "FAIL" },
                name.label()
            );
        }
    }
    let failed = verdicts.iter().filter(|(_, passed)| !passed).count();
    if failed > 0 {
        // Every simulator and proxy is gone by now; a plain exit code, no error trace.
        eprintln!("{failed} scenario(s) failed their checks");
        std::process::exit(1);
    }
    Ok(())
}

async fn run_one(binary: &std::path::Path, spec: Spec) -> anyhow::Result<bool> {
    let mut sims = Vec::new();
    for up in &spec.upstreams {
        sims.push(
            OpenAiSim::start(SimConfig {
                name: up.name.to_owned(),
                ttft: Duration::from_millis(up.ttft_ms),
                inter_token: Duration::from_millis(5),
                output_tokens: 8,
                api_key: Some(format!("{}-upstream-key", up.name)),
                rpm_limit: up.rpm_limit,
                ..SimConfig::default()
            })
            .await
            .with_context(|| format!("starting simulator {}", up.name))?,
        );
    }
    let proxy = ProxyProcess::start(binary, &policy_yaml(&spec, &sims)).await?;
    let providers: Vec<String> = spec.upstreams.iter().map(|u| u.name.to_owned()).collect();

    println!("\n══ {} {}", spec.name.label(), "═".repeat(60));
    println!("policy:   {MODEL}, {}", spec.policy);
    println!(
        "load:     {} requests at {RATE}/s over {SECONDS}s (every {STREAM_EVERY}th streamed), \
         {WORKERS} client workers, proxy {}",
        RATE * SECONDS,
        proxy.base_url()
    );
    for event in &spec.events {
        println!("event:    t={:.1}s  {}", event.at.as_secs_f64(), event.note);
    }
    println!("expected: {}", spec.expected);

    let outcomes = drive(&proxy.base_url(), &spec.events, &sims).await?;
    let rows = timeline::bucket(&outcomes, &providers, SECONDS);
    let totals = timeline::totals(&outcomes, &providers);

    println!("\ntimeline (requests by the second they were sent; served per provider):");
    print!("{}", table::timeline(&rows));
    println!("\ntotals:");
    print!("{}", table::totals(&totals));
    let seen: Vec<String> = spec
        .upstreams
        .iter()
        .zip(&sims)
        .map(|(up, sim)| {
            let stats = sim.stats();
            format!(
                "{} {} (ok {}, refused/failed {})",
                up.name,
                stats.chat_requests,
                stats.served_ok,
                stats.chat_requests.saturating_sub(stats.served_ok)
            )
        })
        .collect();
    println!("  upstreams saw: {}", seen.join("; "));

    let text = http_client()?
        .get(format!("{}/metrics", proxy.admin_url()))
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await?
        .text()
        .await?;
    println!("\nproxy GET /metrics:");
    for line in metrics::shown_lines(&text) {
        println!("  {line}");
    }

    let results = (spec.check)(&rows, &totals);
    println!("\nchecks:");
    for check in &results {
        println!("  {check}");
    }
    let passed = results.iter().all(|c| c.passed);
    println!(
        "{}: {}",
        spec.name.label(),
        if passed { "PASS" } else { "FAIL" }
    );
    drop(proxy);
    Ok(passed)
}

/// Sends `RATE × SECONDS` requests at a steady rate (open loop, bounded by `WORKERS`),
/// applying `events` when their time comes.
async fn drive(
    base_url: &str,
    events: &[Event],
    sims: &[OpenAiSim],
) -> anyhow::Result<Vec<Outcome>> {
    let client = http_client()?;
    let url = format!("{base_url}/chat/completions");
    let workers = Arc::new(Semaphore::new(WORKERS));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let mut pending = events.iter().peekable();
    let period = Duration::from_secs(1) / RATE as u32;
    for n in 0..RATE * SECONDS {
        let due = start + period * n as u32;
        tokio::time::sleep_until(due.into()).await;
        while let Some(event) = pending.next_if(|e| e.at <= start.elapsed()) {
            if let Some(sim) = sims.get(event.upstream) {
                sim.set_sticky_fault(event.fault.clone());
            }
        }
        let permit = workers.clone().acquire_owned().await?;
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let outcome = one_request(&client, &url, n, start).await;
            drop(permit);
            outcome
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined?);
    }
    outcomes.sort_by_key(|o| o.sent_at);
    Ok(outcomes)
}

async fn one_request(client: &reqwest::Client, url: &str, n: u64, start: Instant) -> Outcome {
    let stream = n % STREAM_EVERY == STREAM_EVERY - 1;
    let body = json!({
        "model": MODEL,
        "stream": stream,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": format!("Scenario request {n}")}],
    });
    let sent = Instant::now();
    let answer = async {
        let response = client
            .post(url)
            .bearer_auth(KEY)
            .json(&body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let provider = header("x-switchyard-provider").unwrap_or_else(|| "?".to_owned());
        let attempts = header("x-switchyard-attempts")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let status = response.status();
        let text = response.text().await?;
        let complete = status.is_success() && (!stream || text.contains("data: [DONE]"));
        Ok::<_, reqwest::Error>((complete.then_some(provider), attempts))
    }
    .await;
    let (provider, attempts) = answer.unwrap_or((None, 1));
    Outcome {
        sent_at: sent.saturating_duration_since(start),
        latency: sent.elapsed(),
        provider,
        attempts,
    }
}
