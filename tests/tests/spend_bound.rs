//! The budget as a true upper bound (issue 16, parts 1 and 2), end to end through the real
//! binary: 200 concurrent requests (streaming and not, capped by the client and not) cannot
//! spend more than the budget plus one request's maximum cost, on SQLite, on PostgreSQL and
//! with two replicas on one PostgreSQL; the output cap is always sent; a cap beyond the
//! model's maximum is refused; a stream past its cap is cut and billed for what it
//! delivered; absurd and negative usage is replaced by the proxy's estimate, flagged and
//! counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use loadtest::{Fault, OpenAiSim, SimConfig};
use serde_json::{json, Value};
use sqlx::Connection;
use switchyard_e2e::services::{drop_postgres, fresh_postgres};
use switchyard_e2e::{
    get, key_hash, post, post_json, post_stream, Proxy, ALPHA_KEY, UPSTREAM_KEY_A,
};

/// USD per million tokens: 0.001 per input token, 0.002 per output token.
const INPUT_PRICE: f64 = 1000.0;
const OUTPUT_PRICE: f64 = 2000.0;
/// The model's `max_output_tokens`; the simulator would answer 40 tokens without a cap.
const MODEL_MAX: u64 = 16;
const SIM_ANSWER_TOKENS: usize = 40;
const CONTENT: &str = "hello there";
/// docs/spend.md: one token per prompt byte, 8 per message, 8 priming the reply.
const PROMPT_BOUND: u64 = CONTENT.len() as u64 + 8 + 8;

/// One request's maximum cost, as the proxy reserves it.
fn max_cost() -> f64 {
    (PROMPT_BOUND as f64 * INPUT_PRICE + MODEL_MAX as f64 * OUTPUT_PRICE) / 1e6
}

/// What one request really costs at the simulator (ceil(11/4) + 3 prompt tokens, 16 out).
fn real_cost() -> f64 {
    ((CONTENT.len().div_ceil(4) as f64 + 3.0) * INPUT_PRICE + MODEL_MAX as f64 * OUTPUT_PRICE) / 1e6
}

/// A budget worth about ten requests.
fn budget() -> f64 {
    (10.0 * real_cost() * 1e6).round() / 1e6
}

async fn sim(ttft: Duration) -> OpenAiSim {
    OpenAiSim::start(SimConfig {
        name: "sim-a".to_owned(),
        api_key: Some(UPSTREAM_KEY_A.to_owned()),
        ttft,
        output_tokens: SIM_ANSWER_TOKENS,
        ..SimConfig::default()
    })
    .await
    .expect("starting a simulator")
}

/// Model `chat` (max_output_tokens 16) on `sim_url`, team `alpha` with `budget_usd`.
fn routes(sim_url: &str, ledger_url: &str, budget_usd: f64) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 20s
  first_byte_timeout: 15s
ledger:
  url: "{ledger_url}"
  flush_interval: 100ms
  reserve_timeout: 10s
providers:
  sim-a: {{ kind: openai, base_url: "{sim_url}", api_key: {UPSTREAM_KEY_A} }}
models:
  chat:
    max_output_tokens: {MODEL_MAX}
    targets:
      - {{ provider: sim-a, model: up-a, price: {{ input: {INPUT_PRICE}, output: {OUTPUT_PRICE} }} }}
teams:
  alpha:
    keys: ["{key}"]
    budget: {{ usd: {budget_usd}, period: monthly }}
"#,
        key = key_hash(ALPHA_KEY),
    )
}

/// The `i`-th request of a burst: every other one streams, and half of each kind set no
/// cap of their own (the proxy must send the model's).
fn request(i: usize) -> Value {
    let mut body = json!({"model": "chat", "stream": i.is_multiple_of(2),
        "messages": [{"role": "user", "content": CONTENT}]});
    if i % 4 < 2 {
        body["max_tokens"] = json!(MODEL_MAX);
    }
    body
}

/// How long one request of a burst may take: 200 at once on a loaded machine queue for the
/// proxy's workers far longer than one request does.
const BURST_CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// Sends one request of a burst; returns (status, body, whether a stream ended cleanly).
async fn send(client: &reqwest::Client, url: &str, body: &Value) -> (u16, String, bool) {
    let response = client
        .post(url)
        .bearer_auth(ALPHA_KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("sending a request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("reading the answer");
    let clean = body["stream"] != true || status != 200 || text.ends_with("data: [DONE]\n\n");
    (status, text, clean)
}

/// Fires `n` concurrent requests spread over `proxies`; returns how many were served, after
/// checking that every other one was refused as over budget.
async fn burst(proxies: &[&Proxy], n: usize) -> usize {
    switchyard_e2e::install_crypto();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(BURST_CALL_TIMEOUT)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = proxies[i % proxies.len()].url("/chat/completions");
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            send(&client, &url, &request(i)).await
        }));
    }
    let mut served = 0;
    for task in tasks {
        let (status, body, clean) = task.await.unwrap();
        match status {
            200 => {
                assert!(clean, "a served stream ended badly: {body}");
                served += 1;
            }
            429 => {
                let error: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(error["error"]["code"], "insufficient_quota", "{body}");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    served
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

/// The bound itself, read from the ledger: spent ≤ budget + one request's maximum cost, and
/// no served answer longer than the cap.
async fn assert_bounded(proxies: &[&Proxy], sim: &OpenAiSim) {
    let budget = budget();
    println!(
        "200 concurrent requests against {budget:.3} USD (max cost {:.3}, real cost {:.3} each)",
        max_cost(),
        real_cost()
    );
    let served = burst(proxies, 200).await;
    let spend = spend_when(proxies[0], served as i64).await;
    let spent = spend["spent_usd"].as_f64().unwrap();
    println!("{served} served, {spent:.4} USD spent: {spend}");
    assert!(served > 0, "{spend}");
    assert_eq!(spend["requests"], served as i64, "{spend}");
    assert!(
        spent <= budget + max_cost() + 1e-9,
        "spent {spent} overshoots {budget} by more than one request's maximum {}",
        max_cost()
    );
    assert!(
        spend["output_tokens"].as_u64().unwrap() <= served as u64 * MODEL_MAX,
        "the cap was not sent: {spend}"
    );
    assert_eq!(spend["reserved_usd"], 0.0, "{spend}");
    assert!(sim.stats().completion_tokens <= served as u64 * MODEL_MAX);
    for proxy in proxies {
        let metrics = get(&proxy.admin("/metrics"), None).await.body;
        assert!(
            !metrics.contains("switchyard_budget_fallbacks_total{"),
            "a replica fell back to its local book"
        );
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = switchyard_e2e::scratch_dir(&format!("sy-bound-{name}"));
    dir
}

fn sqlite_url(name: &str) -> String {
    format!("sqlite://{}/ledger.db", temp_dir(name).display())
}

#[tokio::test]
async fn two_hundred_concurrent_requests_stay_within_the_bound_on_sqlite() {
    let sim = sim(Duration::from_millis(300)).await;
    let proxy = Proxy::start(&routes(&sim.base_url(), &sqlite_url("sqlite"), budget())).await;
    assert_bounded(&[&proxy], &sim).await;
}

#[tokio::test]
async fn two_hundred_concurrent_requests_stay_within_the_bound_on_postgres() {
    let Some(url) = fresh_postgres("bound_on_postgres").await else {
        return;
    };
    let sim = sim(Duration::from_millis(300)).await;
    let proxy = Proxy::start(&routes(&sim.base_url(), &url, budget())).await;
    assert_bounded(&[&proxy], &sim).await;
    drop(proxy);
    drop_postgres(&url).await;
}

#[tokio::test]
async fn two_replicas_on_one_postgres_stay_within_one_bound() {
    let Some(url) = fresh_postgres("bound_two_replicas").await else {
        return;
    };
    let sim = sim(Duration::from_millis(300)).await;
    let yaml = routes(&sim.base_url(), &url, budget());
    let (a, b) = (Proxy::start(&yaml).await, Proxy::start(&yaml).await);
    assert_bounded(&[&a, &b], &sim).await;
    let from_a = get(&a.admin("/admin/spend?team=alpha"), None).await.json();
    let from_b = get(&b.admin("/admin/spend?team=alpha"), None).await.json();
    assert_eq!(
        from_a["spent_usd"], from_b["spent_usd"],
        "both replicas read one ledger"
    );
    drop((a, b));
    drop_postgres(&url).await;
}

#[tokio::test]
async fn the_cap_is_always_sent_and_an_absurd_one_is_refused_before_any_upstream_call() {
    let sim = sim(Duration::ZERO).await;
    let proxy = Proxy::start(&routes(&sim.base_url(), &sqlite_url("cap"), 100.0)).await;

    println!("no max_tokens: the model's max_output_tokens goes upstream");
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &request(3),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = sim.stats().last_body.unwrap();
    assert_eq!(sent["max_completion_tokens"], MODEL_MAX, "{sent}");
    assert_eq!(reply.json()["usage"]["completion_tokens"], MODEL_MAX);

    println!("max_tokens: 1e9 is refused with a 400 naming the field, in each dialect");
    let before = sim.stats().chat_requests;
    let absurd = json!({"model": "chat", "max_tokens": 1_000_000_000u64,
        "messages": [{"role": "user", "content": CONTENT}]});
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &absurd).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let error = reply.json();
    assert_eq!(error["error"]["param"], "max_tokens", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 16"),
        "{error}"
    );
    let reply = post(
        &proxy.url("/messages"),
        None,
        absurd.to_string(),
        &[
            ("x-api-key", ALPHA_KEY),
            ("anthropic-version", "2023-06-01"),
        ],
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    assert_eq!(sim.stats().chat_requests, before, "no upstream was called");

    println!("a prompt whose own maximum exceeds the budget is refused, saying by how much");
    let huge = "lorem ipsum dolor sit amet ".repeat(2_000);
    let dear = json!({"model": "chat", "max_tokens": 1,
        "messages": [{"role": "user", "content": huge}]});
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &dear).await;
    assert_eq!(reply.status, 200, "{}: 100 USD pays for it", reply.body);
    let small = routes(&sim.base_url(), &sqlite_url("cap-small"), 0.05);
    let tight = Proxy::start(&small).await;
    let reply = post_json(&tight.url("/chat/completions"), Some(ALPHA_KEY), &dear).await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    let error = reply.json();
    assert_eq!(error["error"]["code"], "insufficient_quota", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("USD short"), "{message}");
    assert_eq!(reply.header("x-should-retry"), Some("false"));
}

/// The ledger rows of a SQLite ledger: (input, output, usage_estimated) in insert order.
async fn ledger_rows(url: &str, expected: usize) -> Vec<(i64, i64, bool)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        let rows: Vec<(i64, i64, bool)> = sqlx::query_as(
            "SELECT input_tokens, output_tokens, usage_estimated FROM switchyard_ledger \
             ORDER BY at_ms, rowid",
        )
        .fetch_all(&mut db)
        .await
        .unwrap_or_default();
        if rows.len() >= expected || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn absurd_and_negative_usage_is_replaced_by_the_estimate_flagged_and_counted() {
    let sim = sim(Duration::ZERO).await;
    let url = sqlite_url("usage");
    let proxy = Proxy::start(&routes(&sim.base_url(), &url, 100.0)).await;

    println!("prompt_tokens: 1e15 on a complete answer");
    sim.push_faults([Fault::MisreportUsage {
        prompt_tokens: Some(1_000_000_000_000_000),
        completion_tokens: None,
    }]);
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &request(1),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cost: f64 = reply
        .header("x-switchyard-cost-usd")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost < max_cost(), "billed {cost}");

    println!("completion_tokens: -5 at the end of a stream");
    sim.push_faults([Fault::MisreportUsage {
        prompt_tokens: None,
        completion_tokens: Some(-5),
    }]);
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &request(0),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.ends_with("data: [DONE]\n\n"), "{}", reply.body);

    println!("an honest answer is billed as reported");
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &request(1),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let rows = ledger_rows(&url, 3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    // The estimate of "hello there": ceil(11/4) + 3 per message.
    assert_eq!(rows[0], (6, MODEL_MAX as i64, true), "{rows:?}");
    assert_eq!(rows[1], (6, MODEL_MAX as i64, true), "{rows:?}");
    assert_eq!(rows[2], (6, MODEL_MAX as i64, false), "{rows:?}");

    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    for line in [
        "switchyard_usage_rejected_total{provider=\"sim-a\",reason=\"input_above_bound\"} 1",
        "switchyard_usage_rejected_total{provider=\"sim-a\",reason=\"invalid\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
    let log = proxy.log();
    assert!(log.contains("upstream usage out of range"), "{log}");
    assert!(
        !log.contains(UPSTREAM_KEY_A),
        "the upstream key leaked into the log"
    );
}

#[tokio::test]
async fn an_endless_stream_is_cut_at_the_cap_and_billed_for_what_it_delivered() {
    let sim = sim(Duration::ZERO).await;
    let url = sqlite_url("endless");
    let proxy = Proxy::start(&routes(&sim.base_url(), &url, 100.0)).await;
    sim.push_faults([Fault::IgnoreCap]);
    let mut body = request(0);
    body["max_tokens"] = json!(5);
    let started = Instant::now();
    let reply = post_stream(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &body).await;
    println!("cut after {:?}", started.elapsed());
    assert_eq!(reply.status, 200);
    let events = reply.events();
    let contents: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .collect();
    assert_eq!(contents.len(), 5, "{}", reply.body);
    let last = events.last().unwrap();
    assert!(last.contains("output_cap_exceeded"), "{}", reply.body);
    assert!(!reply.body.contains("[DONE]"), "{}", reply.body);

    let rows = ledger_rows(&url, 1).await;
    assert_eq!(rows, vec![(3, 5, true)], "billed the 5 tokens delivered");
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains(
            "switchyard_stream_errors_total{provider=\"sim-a\",reason=\"output_cap_exceeded\"} 1"
        ),
        "{metrics}"
    );
    // The upstream stream was dropped with the client's.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sim.in_flight(),
        0,
        "the endless upstream stream is still open"
    );
}
