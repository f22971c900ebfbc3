//! Routing scenarios through the real binary: outcomes, never timings. A capacity shortage
//! is ridden out with no client-visible error and traffic comes back after the cool-down;
//! `latency` avoids a slow target; `cost` prefers the cheap target until its capacity runs
//! out; an outage opens the circuit and one probe closes it again; non-streamed answers
//! teach `latency` which target is faster; provisioned capacity is filled first and its
//! 429s spill to pay-as-you-go without counting against it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use loadtest::{AzureDeployment, AzureSim, AzureSimConfig, Fault, OpenAiSim, SimConfig};
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

/// Issue 12, part 1, as first reported: equal prices, non-streamed answers, one target
/// 300 ms slower. After 20 warm-up requests at least 27 of 30 go to the fast one.
#[tokio::test]
async fn latency_learns_from_whole_answers_and_sends_nine_in_ten_to_the_fast_target() {
    let (slow, fast) = (
        sim("sim-a", UPSTREAM_KEY_A, 300).await,
        sim("sim-b", UPSTREAM_KEY_B, 1).await,
    );
    let proxy = Proxy::start(&routes(
        &slow,
        &fast,
        "    strategy: latency\n",
        ", price: { input: 1, output: 2 }",
        ", price: { input: 1, output: 2 }",
    ))
    .await;
    let warmup = send(&proxy, 20).await;
    println!("warm-up: {:?}", count(&warmup));
    let served = send(&proxy, 30).await;
    let counts = count(&served);
    println!("after warm-up: {counts:?}");
    assert!(
        counts.get("sim-b").copied().unwrap_or(0) >= 27,
        "the fast target gets at least 90 %: {counts:?}"
    );
    println!("/admin/routes says both figures are measured, from whole answers");
    for id in ["sim-a/up-a", "sim-b/up-b"] {
        let target =
            wait_for_target(&proxy, id, "measured", |t| t["measured"]["latency"] == true).await;
        println!("{target}");
        assert!(target["latency_basis"]
            .as_str()
            .unwrap()
            .contains("whole answers"));
        assert_eq!(target["prior_latency_ms"], 0.0);
        assert!(target["whole_answer_ms"].as_f64().is_some());
        assert!(target["ttft_ms"].is_null(), "no stream was measured");
    }
    let slow_view = wait_for_target(&proxy, "sim-a/up-a", "ranked", |_| true).await;
    let fast_view = wait_for_target(&proxy, "sim-b/up-b", "ranked", |_| true).await;
    assert!(
        slow_view["expected_latency_ms"].as_f64().unwrap()
            > fast_view["expected_latency_ms"].as_f64().unwrap() + 200.0
    );
}

/// Issue 12, part 2: under `strategy: cost`, with the pay-as-you-go deployment written first,
/// the provisioned one is filled first; its 429s (capacity reached) spill to pay-as-you-go
/// with no client-visible error, count neither into its error rate nor towards its circuit,
/// and it takes the traffic back once its cool-down ends.
#[tokio::test]
async fn provisioned_capacity_is_filled_first_and_its_429s_spill_to_pay_as_you_go() {
    const EAST_KEY: &str = "azure-east-key-routing";
    const WEST_KEY: &str = "azure-west-key-routing";
    let azure = |name: &str, key: &str, deployment: &str| {
        AzureSim::start(AzureSimConfig {
            name: name.into(),
            api_key: Some(key.into()),
            deployments: vec![AzureDeployment::new(deployment, "gpt-4o-2024-08-06")],
            ..AzureSimConfig::default()
        })
    };
    let east = azure("az-east", EAST_KEY, "ptu").await.unwrap();
    let west = azure("az-west", WEST_KEY, "paygo").await.unwrap();
    let other = sim("other-cloud", UPSTREAM_KEY_A, 0).await;
    let providers = format!(
        "  az-east: {{ kind: azure, endpoint: \"{}\", api_key: {EAST_KEY}, api_version: 2024-10-21 }}\n  az-west: {{ kind: azure, endpoint: \"{}\", api_key: {WEST_KEY}, api_version: 2024-10-21 }}\n  other: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n",
        east.endpoint(),
        west.endpoint(),
        other.base_url()
    );
    // The other cloud is cheapest and pay-as-you-go is cheaper than the PTU's nominal
    // price: `cost` alone would never pick the PTU first.
    let models = "  chat:\n    strategy: cost\n    targets:\n      - { provider: other, model: up-a, price: { input: 0.1, output: 0.2 } }\n      - { provider: az-west, deployment: paygo, tier: standard, price: { input: 1, output: 2 } }\n      - { provider: az-east, deployment: ptu, tier: provisioned, price: { input: 5, output: 10 } }\n";
    let proxy = Proxy::start(&policy("", &providers, models, "[chat]")).await;
    let served = send(&proxy, 5).await;
    assert_eq!(served, vec!["az-east"; 5], "the PTU first");
    let plan = get(&proxy.admin("/admin/routes"), None).await.json();
    let order: Vec<&str> = plan["models"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["provider"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        vec!["az-east", "az-west", "other"],
        "PTU, then PAYG of its cloud, then the other cloud"
    );

    println!("the PTU is full: six 429s in a row, each spilling to pay-as-you-go");
    for _ in 0..6 {
        east.push_faults(
            "ptu",
            [Fault::RateLimit {
                retry_after_ms: 100,
            }],
        );
        let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("x-switchyard-provider"), Some("az-west"));
        assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));
        wait_for_target(&proxy, "az-east/ptu", "cooled down", |t| {
            t["skipped"].is_null()
        })
        .await;
    }
    let ptu = wait_for_target(&proxy, "az-east/ptu", "usable", |t| t["skipped"].is_null()).await;
    println!("{ptu}");
    assert_eq!(
        ptu["circuit"], "closed",
        "six PTU 429s do not open its circuit"
    );
    assert_eq!(ptu["error_rate"], 0.0);
    assert_eq!(ptu["capacity_error_rate"], 0.0);
    assert_eq!(ptu["provisioned_full_last_minute"], 6);
    assert_eq!(ptu["rank"], 1);
    println!("capacity back: the PTU takes the traffic again");
    assert_eq!(send(&proxy, 3).await, vec!["az-east"; 3]);
    assert_eq!(west.requests()["paygo"], 6);
    assert_eq!(
        other.stats().chat_requests,
        0,
        "the other cloud was never needed"
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
