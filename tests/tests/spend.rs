//! Spend end to end (issue #6): budgets under concurrency, on one replica and on two sharing
//! a PostgreSQL ledger; streams metered; the ledger's totals equal what the simulator
//! served; `kill -9` and a ledger outage lose nothing that was accepted; team rate limits;
//! `/admin/spend` and `switchyard spend`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loadtest::{OpenAiSim, SimConfig};
use serde_json::{json, Value};
use sqlx::Connection;
use switchyard_e2e::services::{drop_postgres, fresh_postgres, uuid_like};
use switchyard_e2e::{
    get, key_hash, post_json, post_stream, service_url, Proxy, ALPHA_KEY, UPSTREAM_KEY_A,
};

/// USD per million tokens: 0.001 per input token, 0.002 per output token.
const INPUT_PRICE: f64 = 1000.0;
const OUTPUT_PRICE: f64 = 2000.0;
/// The request's output allowance; the simulator answers 8 tokens, below it.
const MAX_TOKENS: u64 = 16;
const CONTENT: &str = "hello there";

/// The reservation the proxy makes for one request (docs/spend.md): one token per prompt
/// byte plus 8 per message and 8 priming the reply, × input + 16 × output.
fn max_cost() -> f64 {
    ((CONTENT.len() as f64 + 16.0) * INPUT_PRICE + MAX_TOKENS as f64 * OUTPUT_PRICE) / 1e6
}

fn request(stream: bool) -> Value {
    json!({"model": "chat", "max_tokens": MAX_TOKENS, "stream": stream,
           "messages": [{"role": "user", "content": CONTENT}]})
}

async fn sim(name: &str, ttft: Duration) -> OpenAiSim {
    OpenAiSim::start(SimConfig {
        name: name.to_owned(),
        api_key: Some(UPSTREAM_KEY_A.to_owned()),
        ttft,
        ..SimConfig::default()
    })
    .await
    .expect("starting a simulator")
}

/// A policy with model `chat` on `sim_url` (and `slow` on `slow_url`), team `alpha` with
/// `team_extra` (YAML lines under the team) and `ledger_extra` (lines under `ledger:`).
fn routes(
    sim_url: &str,
    slow_url: &str,
    ledger_url: &str,
    ledger_extra: &str,
    team_extra: &str,
) -> String {
    let indent = |text: &str, n: usize| -> String {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect()
    };
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 10s
  first_byte_timeout: 5s
ledger:
  url: "{ledger_url}"
  flush_interval: 100ms
{ledger_extra}providers:
  sim-a: {{ kind: openai, base_url: "{sim_url}", api_key: {UPSTREAM_KEY_A} }}
  sim-slow: {{ kind: openai, base_url: "{slow_url}", api_key: {UPSTREAM_KEY_A} }}
models:
  chat:
    targets:
      - {{ provider: sim-a, model: up-a, price: {{ input: {INPUT_PRICE}, output: {OUTPUT_PRICE} }} }}
  slow:
    targets:
      - {{ provider: sim-slow, model: up-slow, price: {{ input: {INPUT_PRICE}, output: {OUTPUT_PRICE} }} }}
teams:
  alpha:
    keys: ["{key}"]
{team_extra}"#,
        ledger_extra = indent(ledger_extra, 2),
        team_extra = indent(team_extra, 4),
        key = key_hash(ALPHA_KEY),
    )
}

/// Fires `n` concurrent chat requests spread over `proxies`; returns (status, cost, body).
async fn burst(proxies: &[&Proxy], n: usize) -> Vec<(u16, f64, Value, Option<String>)> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = proxies[i % proxies.len()].url("/chat/completions");
        tasks.push(tokio::spawn(async move {
            let reply = post_json(&url, Some(ALPHA_KEY), &request(false)).await;
            let cost = reply
                .header("x-switchyard-cost-usd")
                .map_or(0.0, |c| c.parse().unwrap());
            let retry = reply.header("x-should-retry").map(str::to_owned);
            let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
            (reply.status, cost, body, retry)
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// `/admin/spend?team=alpha` once the ledger holds `requests` entries (bounded wait).
async fn spend_when(proxy: &Proxy, requests: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(&proxy.admin("/admin/spend?team=alpha"), None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let spend = reply.json();
        if spend["requests"].as_i64() == Some(requests) || Instant::now() > deadline {
            return spend;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = switchyard_e2e::scratch_dir(&format!("sy-spend-{name}"));
    dir
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/ledger.db", dir.display())
}

#[tokio::test]
async fn two_hundred_concurrent_requests_cannot_overshoot_a_budget_by_more_than_one_request() {
    let sim = sim("sim-a", Duration::from_millis(150)).await;
    let proxy = Proxy::start(&routes(
        &sim.base_url(),
        &sim.base_url(),
        "sqlite://ledger.db",
        "",
        "budget: { usd: 0.5, period: daily }\nalert_at: 0.8",
    ))
    .await;

    println!(
        "200 concurrent requests against a budget of 0.5 USD (max cost {:.3} each)",
        max_cost()
    );
    let results = burst(&[&proxy], 200).await;
    let served: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    let spent: f64 = served.iter().map(|r| r.1).sum();
    println!("{} served, {spent:.4} USD spent", served.len());
    assert!(!served.is_empty());
    assert!(
        spent <= 0.5 + max_cost() + 1e-9,
        "spent {spent} overshoots by more than one request"
    );
    for (status, _, body, retry) in results.iter().filter(|r| r.0 != 200) {
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
        assert_eq!(body["error"]["type"], "insufficient_quota", "{body}");
        assert_eq!(retry.as_deref(), Some("false"));
    }

    println!("the ledger holds every served request and equals the simulator's count");
    let spend = spend_when(&proxy, served.len() as i64).await;
    let stats = sim.stats();
    assert_eq!(spend["requests"], served.len() as i64, "{spend}");
    assert_eq!(spend["input_tokens"], stats.prompt_tokens, "{spend}");
    assert_eq!(spend["output_tokens"], stats.completion_tokens, "{spend}");
    assert!(
        close(spend["spent_usd"].as_f64().unwrap(), spent),
        "{spend}"
    );
    assert_eq!(spend["budget_usd"], 0.5);
    assert_eq!(spend["reserved_usd"], 0.0);
    assert!(spend["period"]["start"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00Z"));
    let by_model = &spend["by_model"][0];
    assert_eq!(
        (by_model["model"].as_str(), by_model["provider"].as_str()),
        (Some("chat"), Some("sim-a"))
    );

    println!("the budget gauges are exported");
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    for name in [
        "switchyard_budget_usd{team=\"alpha\"} 0.5",
        "switchyard_budget_spent_usd",
        "switchyard_spend_usd_total",
        "switchyard_tokens_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
}

#[tokio::test]
async fn streams_are_metered_and_the_ledger_equals_what_the_simulator_served() {
    let sim = sim("sim-a", Duration::ZERO).await;
    let dir = temp_dir("streams");
    let proxy = Proxy::start(&routes(
        &sim.base_url(),
        &sim.base_url(),
        &sqlite_url(&dir),
        "",
        "",
    ))
    .await;

    println!("five streams without include_usage and five plain completions");
    for _ in 0..5 {
        let reply = post_stream(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &request(true),
        )
        .await;
        assert_eq!(reply.status, 200);
        assert!(
            reply.events().iter().all(|e| !e.contains("\"usage\":{")),
            "usage chunk leaked"
        );
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &request(false),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let stats = sim.stats();
    assert_eq!(
        stats.include_usage_requested, 5,
        "the proxy asks streams for usage"
    );
    let spend = spend_when(&proxy, 10).await;
    assert_eq!(spend["requests"], 10, "{spend}");
    assert_eq!(spend["input_tokens"], stats.prompt_tokens, "{spend}");
    assert_eq!(spend["output_tokens"], stats.completion_tokens, "{spend}");
    assert_eq!(spend["budget_usd"], Value::Null);

    println!("the listing of all teams has the same object");
    let all = get(&proxy.admin("/admin/spend"), None).await.json();
    assert_eq!(all["teams"][0]["team"], "alpha");
    assert_eq!(all["teams"][0]["requests"], 10);

    println!("`switchyard spend` prints the same totals as CSV for finance");
    std::fs::write(
        dir.join("routes.yaml"),
        format!("version: 1\nledger:\n  url: \"{}\"\n", sqlite_url(&dir)),
    )
    .unwrap();
    let output = switchyard_e2e::proxy::switchyard_command()
        .args(["spend", "--config"])
        .arg(dir.join("routes.yaml"))
        .args([
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--format",
            "csv",
            "--team",
            "alpha",
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = csv.lines().nth(1).unwrap_or_default().to_owned();
    let expected = format!(
        "alpha,chat,sim-a,10,{},{},0,",
        stats.prompt_tokens, stats.completion_tokens
    );
    assert!(line.starts_with(&expected), "{csv}");
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn kill_9_under_load_then_restart_loses_only_requests_in_flight() {
    let sim = sim("sim-a", Duration::ZERO).await;
    let slow = sim_slow().await;
    let dir = temp_dir("kill9");
    let yaml = routes(&sim.base_url(), &slow.base_url(), &sqlite_url(&dir), "", "");
    let proxy = Proxy::start(&yaml).await;

    println!("30 requests finish, then 10 slow ones are in flight when the proxy gets SIGKILL");
    for _ in 0..30 {
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &request(false),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let url = proxy.url("/chat/completions");
    let in_flight: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let body = json!({"model": "slow", "messages": [{"role": "user", "content": "x"}]});
                let _ = switchyard_e2e::http_client()
                    .post(&url)
                    .bearer_auth(ALPHA_KEY)
                    .json(&body)
                    .send()
                    .await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(proxy); // SIGKILL
    for task in in_flight {
        let _ = task.await;
    }

    println!("a new proxy on the same ledger sees all 30 finished requests");
    let proxy = Proxy::start(&yaml).await;
    let spend = spend_when(&proxy, 30).await;
    assert_eq!(spend["requests"], 30, "{spend}");
    assert_eq!(
        spend["output_tokens"],
        sim.stats().completion_tokens,
        "{spend}"
    );
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sigterm_writes_the_buffer_before_the_process_exits() {
    let sim = sim("sim-a", Duration::ZERO).await;
    let dir = temp_dir("sigterm");
    let yaml = routes(&sim.base_url(), &sim.base_url(), &sqlite_url(&dir), "", "")
        .replace("flush_interval: 100ms", "flush_interval: 1h");
    let proxy = Proxy::start(&yaml).await;

    println!("5 requests wait in the buffer (the flush interval is an hour)");
    for _ in 0..5 {
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &request(false),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let spend = get(&proxy.admin("/admin/spend?team=alpha"), None)
        .await
        .json();
    assert_eq!(spend["requests"], 0, "nothing is flushed yet: {spend}");

    println!("SIGTERM: after the grace period the proxy writes its buffer, then exits");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut ledger = sqlx::SqliteConnection::connect(&sqlite_url(&dir))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM switchyard_ledger")
            .fetch_one(&mut ledger)
            .await
            .unwrap();
        if rows == 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {rows} of 5 entries were written on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(proxy.log().contains("ledger flushed"), "{}", proxy.log());
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn sim_slow() -> OpenAiSim {
    sim("sim-slow", Duration::from_secs(3)).await
}

#[tokio::test]
async fn a_ledger_outage_buffers_and_loses_nothing_accepted() {
    let sim = sim("sim-a", Duration::ZERO).await;
    let dir = temp_dir("outage");
    let proxy = Proxy::start(&routes(
        &sim.base_url(),
        &sim.base_url(),
        &sqlite_url(&dir),
        "",
        "",
    ))
    .await;

    println!("another process holds the ledger's write lock: the database refuses writes");
    let mut blocker = sqlx::SqliteConnection::connect(&format!("{}?mode=rw", sqlite_url(&dir)))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &request(false),
        )
        .await;
        assert_eq!(reply.status, 200, "responses never wait for the ledger");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "requests were slowed by the ledger"
    );
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let metrics = get(&proxy.admin("/metrics"), None).await.body;
        if metrics.contains("switchyard_ledger_writes_total{result=\"error\"}") {
            assert!(
                metrics.contains("switchyard_ledger_buffered_entries 20"),
                "{metrics}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed ledger write was counted"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    println!("the database comes back: every accepted entry is written");
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    drop(blocker);
    let spend = spend_when(&proxy, 20).await;
    assert_eq!(spend["requests"], 20, "{spend}");
    assert_eq!(
        spend["output_tokens"],
        sim.stats().completion_tokens,
        "{spend}"
    );
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn team_rate_limit_refuses_with_retry_after() {
    let sim = sim("sim-a", Duration::ZERO).await;
    let proxy = Proxy::start(&routes(
        &sim.base_url(),
        &sim.base_url(),
        "sqlite://ledger.db",
        "",
        "limits: { rpm: 3 }",
    ))
    .await;
    for _ in 0..3 {
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &request(false),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &request(false),
    )
    .await;
    assert_limited(&reply);
    assert_eq!(
        sim.stats().requests,
        3,
        "a limited request never reaches the upstream"
    );
}

fn assert_limited(reply: &switchyard_e2e::Reply) {
    assert_eq!(reply.status, 429, "{}", reply.body);
    let error = reply.error();
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["type"], "rate_limit_error");
    let retry: u64 = reply
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
}

#[tokio::test]
async fn rate_limits_are_fleet_wide_with_redis() {
    let Some(redis) = service_url(
        "SWITCHYARD_TEST_REDIS",
        "rate_limits_are_fleet_wide_with_redis",
    ) else {
        return;
    };
    let sim = sim("sim-a", Duration::ZERO).await;
    let prefix = format!("sy-e2e-{}", uuid_like());
    let ledger_extra = format!("redis: \"{redis}\"\nredis_prefix: {prefix}");
    let yaml = routes(
        &sim.base_url(),
        &sim.base_url(),
        "sqlite://ledger.db",
        &ledger_extra,
        "limits: { rpm: 3 }",
    );
    let (a, b) = (Proxy::start(&yaml).await, Proxy::start(&yaml).await);
    println!("two requests on replica A and one on B use the team's 3 rpm");
    for proxy in [&a, &a, &b] {
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &request(false),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let reply = post_json(
        &b.url("/chat/completions"),
        Some(ALPHA_KEY),
        &request(false),
    )
    .await;
    assert_limited(&reply);
}

#[tokio::test]
async fn two_replicas_on_one_postgres_ledger_enforce_one_budget() {
    let Some(url) = fresh_postgres("two_replicas").await else {
        return;
    };
    let sim = sim("sim-a", Duration::from_millis(150)).await;
    // A generous reservation bound: on a loaded machine the shared database may answer in
    // more than the default 500ms, and a replica that falls back to its own book enforces
    // the budget alone (docs/spend.md).
    let yaml = routes(
        &sim.base_url(),
        &sim.base_url(),
        &url,
        "reserve_timeout: 10s",
        "budget: { usd: 0.5, period: monthly }",
    );
    let (a, b) = (Proxy::start(&yaml).await, Proxy::start(&yaml).await);

    println!("200 concurrent requests spread over two replicas against one budget of 0.5 USD");
    let results = burst(&[&a, &b], 200).await;
    let served: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    let spent: f64 = served.iter().map(|r| r.1).sum();
    println!("{} served, {spent:.4} USD spent", served.len());
    assert!(!served.is_empty());
    assert!(
        spent <= 0.5 + max_cost() + 1e-9,
        "the fleet overshot: {spent}"
    );
    assert!(results.iter().all(|r| r.0 == 200 || r.0 == 429));
    for proxy in [&a, &b] {
        let metrics = get(&proxy.admin("/metrics"), None).await.body;
        assert!(
            !metrics.contains("switchyard_budget_fallbacks_total{"),
            "a replica fell back to its local book"
        );
    }
    let spend = spend_when(&a, served.len() as i64).await;
    assert_eq!(spend["requests"], served.len() as i64, "{spend}");
    assert_eq!(
        spend["output_tokens"],
        sim.stats().completion_tokens,
        "{spend}"
    );
    assert!(
        close(spend["spent_usd"].as_f64().unwrap(), spent),
        "{spend}"
    );
    let from_b = spend_when(&b, served.len() as i64).await;
    assert_eq!(
        from_b["spent_usd"], spend["spent_usd"],
        "both replicas read one ledger"
    );
    let ready = get(&a.admin("/readyz"), None).await.json();
    assert_eq!(ready["ledger"]["backend"], "postgres");
    assert_eq!(ready["ledger"]["reachable"], true);
    drop((a, b));
    drop_postgres(&url).await;
}

#[tokio::test]
async fn postgres_down_for_a_while_loses_nothing_and_requests_keep_flowing() {
    let Some(url) = fresh_postgres("postgres_down").await else {
        return;
    };
    let sim = sim("sim-a", Duration::ZERO).await;
    let link = Link::to(&url).await;
    let yaml = routes(
        &sim.base_url(),
        &sim.base_url(),
        &link.url,
        "",
        "budget: { usd: 100, period: monthly }",
    );
    let proxy = Proxy::start(&yaml).await;
    for _ in 0..10 {
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &request(false),
        )
        .await;
        assert_eq!(reply.status, 200);
    }

    println!(
        "the database becomes unreachable: requests are still served (fail open) and buffered"
    );
    link.cut();
    let results = burst(&[&proxy], 20).await;
    assert!(results.iter().all(|r| r.0 == 200), "{results:?}");
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains("switchyard_budget_fallbacks_total{"),
        "{metrics}"
    );
    let ready = get(&proxy.admin("/readyz"), None).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["ledger"]["reachable"], false);

    println!("the database is back: every accepted entry is written");
    link.restore();
    let spend = spend_when(&proxy, 30).await;
    assert_eq!(spend["requests"], 30, "{spend}");
    assert_eq!(
        spend["output_tokens"],
        sim.stats().completion_tokens,
        "{spend}"
    );
}

/// A TCP link to PostgreSQL that the test can cut (open connections reset, new ones
/// refused) and restore, to play a database outage without touching the shared server.
struct Link {
    url: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cuts: tokio::sync::broadcast::Sender<()>,
}

impl Link {
    async fn to(database_url: &str) -> Link {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = tokio::sync::broadcast::channel(4);
        let (accept_up, accept_cuts) = (up.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let mut cut = accept_cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.recv() => {}
                    }
                });
            }
        });
        let url = database_url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{port}"), 1);
        assert_ne!(
            url, database_url,
            "SWITCHYARD_TEST_POSTGRES must point at 127.0.0.1:5432"
        );
        Link { url, up, cuts }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        let _ = self.cuts.send(());
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
