//! Routing scenarios through the real binary: outcomes, never timings. A capacity shortage
//! is ridden out with no client-visible error and traffic comes back after the cool-down;
//! `latency` avoids a slow target; `cost` prefers the cheap target until its capacity runs
//! out; an outage opens the circuit and one probe closes it again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use loadtest::{Fault, OpenAiSim, SimConfig};
use serde_json::{json, Value};
use switchyard_e2e::{get, policy, post_json, Proxy, ALPHA_KEY, UPSTREAM_KEY_A, UPSTREAM_KEY_B};

fn hello() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
}

async fn sim(name: &str, key: &str, ttft_ms: u64) -> OpenAiSim {
    OpenAiSim::start(SimConfig {
        name: name.to_owned(),
        api_key: Some(key.to_owned()),
        ttft: Duration::from_millis(ttft_ms),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// `chat` over sim-a and sim-b with the given model settings and per-target extras.
fn routes(a: &OpenAiSim, b: &OpenAiSim, model_extra: &str, a_extra: &str, b_extra: &str) -> String {
    policy(
        "",
        &format!(
            "  sim-a: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n  sim-b: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_B} }}\n",
            a.base_url(),
            b.base_url()
        ),
        &format!(
            "  chat:\n{model_extra}    targets:\n      - {{ provider: sim-a, model: up-a{a_extra} }}\n      - {{ provider: sim-b, model: up-b{b_extra} }}\n"
        ),
        "[chat]",
    )
}

/// Sends `n` requests one after another; returns the providers that answered, in order.
async fn send(proxy: &Proxy, n: usize) -> Vec<String> {
    let mut served = Vec::new();
    for _ in 0..n {
        let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
        assert_eq!(reply.status, 200, "a client saw an error: {}", reply.body);
        served.push(reply.header("x-switchyard-provider").unwrap().to_owned());
    }
    served
}

fn count(served: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for provider in served {
        *counts.entry(provider.as_str()).or_default() += 1;
    }
    counts
}

/// Polls `/admin/routes` until `check` holds for target `id` of `chat` (bounded).
async fn wait_for_target(
    proxy: &Proxy,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let routes = get(&proxy.admin("/admin/routes"), None).await.json();
        let target = routes["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "chat")
            .and_then(|m| {
                m["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["id"] == id)
            })
            .cloned()
            .unwrap();
        if check(&target) {
            return target;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never became {what}");
}

#[tokio::test]
async fn capacity_shortage_is_ridden_out_and_traffic_returns() {
    let (a, b) = (
        sim("sim-a", UPSTREAM_KEY_A, 0).await,
        sim("sim-b", UPSTREAM_KEY_B, 0).await,
    );
    let proxy = Proxy::start(&routes(&a, &b, "", ", price: free", ", price: free")).await;
    println!("steady load on sim-a; then its quota runs out (429, retry-after 1s)");
    assert!(send(&proxy, 5).await.iter().all(|p| p == "sim-a"));
    a.push_faults([Fault::RateLimit {
        retry_after_ms: 1000,
    }]);
    let during = send(&proxy, 5).await;
    println!("during the shortage: {during:?}");
    assert!(
        during.iter().all(|p| p == "sim-b"),
        "traffic moved to sim-b"
    );
    println!("after the cool-down sim-a takes traffic again");
    wait_for_target(&proxy, "sim-a/up-a", "usable", |t| t["skipped"].is_null()).await;
    assert_eq!(send(&proxy, 3).await, vec!["sim-a"; 3]);
}

#[tokio::test]
async fn latency_strategy_avoids_the_slow_target() {
    let (a, b) = (
        sim("sim-a", UPSTREAM_KEY_A, 250).await,
        sim("sim-b", UPSTREAM_KEY_B, 5).await,
    );
    let proxy = Proxy::start(&routes(
        &a,
        &b,
        "    strategy: latency\n",
        ", price: free",
        ", price: free",
    ))
    .await;
    let served = send(&proxy, 24).await;
    println!("served: {served:?}");
    let late = count(&served[12..]);
    assert!(
        late.get("sim-b").copied().unwrap_or(0) >= 11,
        "once measured, sim-b (fast) leads: {late:?}"
    );
}

#[tokio::test]
async fn cost_strategy_prefers_the_cheap_target_until_its_capacity_runs_out() {
    let (a, b) = (
        sim("sim-a", UPSTREAM_KEY_A, 0).await,
        sim("sim-b", UPSTREAM_KEY_B, 0).await,
    );
    let proxy = Proxy::start(&routes(
        &a,
        &b,
        "    strategy: cost\n",
        ", price: { input: 5, output: 20 }",
        ", price: { input: 0.5, output: 2 }, limits: { rpm: 4 }",
    ))
    .await;
    let served = send(&proxy, 7).await;
    println!("served: {served:?}");
    assert_eq!(&served[..4], &["sim-b"; 4], "the cheap target first");
    assert_eq!(
        &served[4..],
        &["sim-a"; 3],
        "then the other once its 4 rpm are used"
    );
    let cheap = wait_for_target(&proxy, "sim-b/up-b", "explained", |_| true).await;
    assert_eq!(cheap["skipped"], "no capacity left (rate limits)");
    assert_eq!(cheap["headroom"], 0.0);
}

#[tokio::test]
async fn an_outage_opens_the_circuit_and_a_probe_closes_it() {
    let (a, b) = (
        sim("sim-a", UPSTREAM_KEY_A, 0).await,
        sim("sim-b", UPSTREAM_KEY_B, 0).await,
    );
    let proxy = Proxy::start(&routes(
        &a,
        &b,
        "    health: { failures: 2, open_for: 1s }\n",
        ", price: free",
        ", price: free",
    ))
    .await;
    println!("sim-a fails every request (500): clients are served by sim-b");
    a.set_sticky_fault(Some(Fault::Status(500)));
    assert_eq!(send(&proxy, 4).await, vec!["sim-b"; 4]);
    let open = wait_for_target(&proxy, "sim-a/up-a", "open", |_| true).await;
    println!("sim-a: {open}");
    assert_eq!(open["circuit"], "open");
    assert_eq!(
        a.stats().requests,
        2,
        "no request reached sim-a once its circuit opened"
    );

    println!("sim-a recovers; after open_for one probe closes the circuit");
    a.set_sticky_fault(None);
    wait_for_target(&proxy, "sim-a/up-a", "half-open", |t| {
        t["circuit"] == "half_open"
    })
    .await;
    assert_eq!(send(&proxy, 1).await, vec!["sim-a"]);
    let closed = wait_for_target(&proxy, "sim-a/up-a", "closed", |_| true).await;
    assert_eq!(closed["circuit"], "closed");
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains("switchyard_target_circuit_open{model=\"chat\",provider=\"sim-a\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn debug_header_shows_the_attempt_chain() {
    let (a, b) = (
        sim("sim-a", UPSTREAM_KEY_A, 0).await,
        sim("sim-b", UPSTREAM_KEY_B, 0).await,
    );
    let proxy = Proxy::start(&routes(&a, &b, "", ", price: free", ", price: free")).await;
    a.push_faults([Fault::RateLimit {
        retry_after_ms: 5000,
    }]);
    let reply = switchyard_e2e::post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        hello().to_string(),
        &[("x-switchyard-debug", "1")],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-switchyard-route"),
        Some("sim-a/up-a=capacity, sim-b/up-b=ok")
    );
    let plain = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
    assert_eq!(plain.header("x-switchyard-route"), None, "only on request");
}

#[tokio::test]
async fn a_slow_stream_is_hedged_and_the_team_is_billed_once() {
    let (a, b) = (
        sim("sim-a", UPSTREAM_KEY_A, 3000).await,
        sim("sim-b", UPSTREAM_KEY_B, 5).await,
    );
    let proxy = Proxy::start(&routes(
        &a,
        &b,
        "    hedge_after: 200ms\n",
        ", price: { input: 1, output: 1 }",
        ", price: { input: 1, output: 1 }",
    ))
    .await;
    println!("sim-a takes 3s to its first token; after 200ms the stream is hedged to sim-b");
    let body =
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let reply =
        switchyard_e2e::post_stream(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-b"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));
    assert_eq!(reply.events().last().map(String::as_str), Some("[DONE]"));
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains("switchyard_hedges_total{model=\"chat\",winner=\"hedge\"} 1"),
        "{metrics}"
    );
    let output_tokens: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_tokens_total") && l.contains("kind=\"output\""))
        .collect();
    println!("{output_tokens:?}");
    assert_eq!(output_tokens.len(), 1, "only the winner is metered");
    assert!(output_tokens[0].contains("provider=\"sim-b\""));
    assert_eq!(b.stats().stream_requests, 1);
}
