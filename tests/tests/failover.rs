//! Failover before the first byte: capacity errors, 5xx, dead and hanging upstreams move
//! the request to the next target, cool the failed one down, and when every target is out
//! of capacity the client gets a 503 it can retry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use loadtest::{answer_text, Fault};
use serde_json::{json, Value};
use switchyard_e2e::ports::closed_port;
use switchyard_e2e::{
    get, post, post_json, post_stream, two_sim_routes, Proxy, Reply, Sims, ALPHA_KEY,
};

fn hello() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
}

/// A 200 from `provider` after `attempts` attempts, with that provider's answer.
fn assert_served_by(reply: &Reply, provider: &str, attempts: &str) {
    println!(
        "{} via {:?} after {:?} attempt(s)",
        reply.status,
        reply.header("x-switchyard-provider"),
        reply.header("x-switchyard-attempts")
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some(provider));
    assert_eq!(reply.header("x-switchyard-attempts"), Some(attempts));
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        answer_text(provider, 8)
    );
}

#[tokio::test]
async fn a_rate_limited_target_fails_over_and_cools_down() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let url = proxy.url("/chat/completions");

    println!(
        "sim-a answers 429 with retry-after 5s: the client still sees one success, from sim-b"
    );
    sims.a.push_faults([Fault::RateLimit {
        retry_after_ms: 5000,
    }]);
    assert_served_by(
        &post_json(&url, Some(ALPHA_KEY), &hello()).await,
        "sim-b",
        "2",
    );

    println!("right after, sim-a is cooling down: straight to sim-b");
    assert_served_by(
        &post_json(&url, Some(ALPHA_KEY), &hello()).await,
        "sim-b",
        "1",
    );
    assert_eq!(
        sims.a.stats().requests,
        1,
        "sim-a was not asked again while cooling down"
    );

    println!("/admin/routes shows why sim-a is skipped");
    let routes = get(&proxy.admin("/admin/routes"), None).await;
    assert_eq!(routes.status, 200, "{}", routes.body);
    let routes = routes.json();
    let chat = routes["models"]
        .as_array()
        .expect("models is an array")
        .iter()
        .find(|model| model["name"] == "chat")
        .expect("model chat in /admin/routes");
    let sim_a = chat["targets"]
        .as_array()
        .expect("targets is an array")
        .iter()
        .find(|target| target["provider"] == "sim-a")
        .expect("the sim-a target");
    println!("sim-a target: {sim_a}");
    assert!(
        sim_a["skipped"].is_string(),
        "a cooling-down target says why it is skipped: {sim_a}"
    );
}

#[tokio::test]
async fn a_server_error_fails_over() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    println!("sim-a answers 500");
    sims.a.push_faults([Fault::Status(500)]);
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
    assert_served_by(&reply, "sim-b", "2");
}

#[tokio::test]
async fn an_unreachable_provider_fails_over() {
    let sim_b = switchyard_e2e::start_sim("sim-b", switchyard_e2e::UPSTREAM_KEY_B).await;
    let dead = format!("http://127.0.0.1:{}/v1", closed_port());
    println!("sim-a points at {dead}, where nothing listens");
    let proxy = Proxy::start(&two_sim_routes(&dead, &sim_b.base_url(), "")).await;

    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
    assert_served_by(&reply, "sim-b", "2");
}

#[tokio::test]
async fn a_hanging_provider_times_out_to_the_next() {
    let sims = Sims::start().await;
    let routes = sims
        .routes("")
        .replace("first_byte_timeout: 2s", "first_byte_timeout: 1s");
    let proxy = Proxy::start(&routes).await;

    println!("sim-a accepts the request and never answers; first_byte_timeout is 1s");
    sims.a.push_faults([Fault::Hang]);
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
    assert_served_by(&reply, "sim-b", "2");
}

#[tokio::test]
async fn a_stream_fails_over_before_its_first_byte() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    println!("sim-a answers a stream request with 429");
    sims.a.push_faults([Fault::RateLimit {
        retry_after_ms: 5000,
    }]);
    let mut body = hello();
    body["stream"] = json!(true);
    let reply = post_stream(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-b"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));
    let events = reply.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let text: String = events
        .iter()
        .filter_map(|event| serde_json::from_str::<Value>(event).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, answer_text("sim-b", 8));
    assert_eq!(sims.b.stats().stream_requests, 1);
}

#[tokio::test]
async fn all_targets_rate_limited_is_a_503_with_retry_after() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    println!("both sims answer every request with 429");
    sims.a.set_sticky_fault(Some(Fault::RateLimit {
        retry_after_ms: 3000,
    }));
    sims.b.set_sticky_fault(Some(Fault::RateLimit {
        retry_after_ms: 3000,
    }));
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
    println!(
        "{} retry-after={:?} {}",
        reply.status,
        reply.header("retry-after"),
        reply.body
    );
    assert_eq!(reply.status, 503);
    let error = reply.error();
    assert_eq!(error["code"], "upstream_unavailable");
    assert_eq!(error["type"], "server_error");
    let retry_after = reply.header("retry-after").expect("a retry-after header");
    assert!(
        retry_after.trim().parse::<u64>().is_ok(),
        "retry-after in seconds, got {retry_after:?}"
    );
}

/// Issue 15, item 6: `request_timeout` is the upstreams' budget and starts when the client's
/// body is complete, so a slow upload is never answered with 504 `upstream_timeout`.
#[tokio::test]
async fn a_slow_upload_does_not_use_up_the_upstream_budget() {
    let sims = Sims::start().await;
    let routes = sims
        .routes("")
        .replace("request_timeout: 10s", "request_timeout: 1s");
    let proxy = Proxy::start(&routes).await;

    println!("the body arrives in three pieces 700 ms apart (1.4 s in all, request_timeout 1s)");
    let body = hello().to_string();
    let (first, rest) = body.split_at(body.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    let pieces: Vec<String> = [first, second, third].map(str::to_owned).into();
    let stream = futures_util::stream::iter(pieces).then(|piece| async move {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        Ok::<_, std::io::Error>(piece)
    });
    let reply = post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        reqwest::Body::wrap_stream(stream),
        &[],
    )
    .await;
    assert_served_by(&reply, "sim-a", "1");
}
