//! Upstream requests through an egress (forward) proxy named by `HTTP_PROXY`, and straight to
//! the upstream without one (docs/operations.md, "Egress proxies").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use switchyard_e2e::{one_sim_routes, post_json, start_sim, Proxy, ALPHA_KEY, UPSTREAM_KEY_A};

/// A host no resolver knows (`.invalid` is reserved for that): only a forward proxy that
/// routes by the request's absolute URI can reach "it".
const UNRESOLVABLE: &str = "http://openai.egress-test.invalid/v1";

fn hello() -> serde_json::Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
}

/// With `HTTP_PROXY` set, the upstream request goes to the forward proxy in absolute form
/// (the simulator stands in for it and answers by path), so an upstream whose host does not
/// resolve is still reached; the start line says the egress path is in use.
#[tokio::test]
async fn upstream_requests_go_through_the_egress_proxy_the_environment_names() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let forward = sim.base_url().trim_end_matches("/v1").to_owned();
    let proxy = Proxy::start_with_env(
        &one_sim_routes(UNRESOLVABLE, ""),
        &[("HTTP_PROXY", &forward), ("NO_PROXY", "")],
    )
    .await;
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["model"], "chat");
    assert_eq!(sim.stats().chat_requests, 1);
    assert!(proxy.log().contains("egress_proxy=true"), "{}", proxy.log());
}

/// Without one, requests go straight to the upstream's host: the same policy cannot reach
/// the unresolvable host, and the client gets the gateway's error, not an answer.
#[tokio::test]
async fn without_an_egress_proxy_requests_go_straight_to_the_upstream() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    // Any variable given makes the proxy's environment free of inherited proxy settings.
    let clean = [("NO_PROXY", "")];
    let proxy = Proxy::start_with_env(&one_sim_routes(UNRESOLVABLE, ""), &clean).await;
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
    assert!(reply.status >= 500, "{} {}", reply.status, reply.body);
    assert_eq!(sim.stats().chat_requests, 0);
    assert!(
        proxy.log().contains("egress_proxy=false"),
        "{}",
        proxy.log()
    );

    println!("and a resolvable upstream is answered on the direct path");
    let proxy = Proxy::start_with_env(&one_sim_routes(&sim.base_url(), ""), &clean).await;
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &hello()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(sim.stats().chat_requests, 1);
}
