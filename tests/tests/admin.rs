//! The admin listener: Prometheus metrics, health and readiness, the routing table,
//! the admin token, and policy reloads (by endpoint and by editing the file).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use loadtest::Fault;
use serde_json::{json, Value};
use switchyard_e2e::{
    get, policy, post, post_json, post_stream, Proxy, Reply, Sims, ALPHA_KEY, UPSTREAM_KEY_A,
    UPSTREAM_KEY_B,
};

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// The sample lines of metric `name` (`name{…} value` or `name value`).
fn samples<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

#[tokio::test]
async fn metrics_carry_the_contract_names_after_a_failover() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let url = proxy.url("/chat/completions");

    println!(
        "one request that fails over from sim-a (429) to sim-b, one stream for time-to-first-token"
    );
    sims.a.push_faults([Fault::RateLimit {
        retry_after_ms: 200,
    }]);
    assert_eq!(
        post_json(&url, Some(ALPHA_KEY), &hello("chat"))
            .await
            .status,
        200
    );
    let mut streamed = hello("chat");
    streamed["stream"] = json!(true);
    assert_eq!(
        post_stream(&url, Some(ALPHA_KEY), &streamed).await.status,
        200
    );

    let reply = get(&proxy.admin("/metrics"), None).await;
    assert_eq!(reply.status, 200);
    let metrics = reply.body;
    let mut missing = Vec::new();
    let mut expect = |what: &str, found: bool| {
        if !found {
            missing.push(what.to_owned());
        }
    };
    let requests = samples(&metrics, "switchyard_requests_total");
    expect(
        "switchyard_requests_total{model=\"chat\"}",
        requests.iter().any(|l| l.contains("model=\"chat\"")),
    );
    let attempts = samples(&metrics, "switchyard_upstream_attempts_total");
    expect(
        "switchyard_upstream_attempts_total{provider=\"sim-a\",outcome=\"capacity\"}",
        attempts
            .iter()
            .any(|l| l.contains("provider=\"sim-a\"") && l.contains("outcome=\"capacity\"")),
    );
    expect(
        "switchyard_upstream_attempts_total{provider=\"sim-b\",outcome=\"ok\"}",
        attempts
            .iter()
            .any(|l| l.contains("provider=\"sim-b\"") && l.contains("outcome=\"ok\"")),
    );
    let failovers = samples(&metrics, "switchyard_failovers_total");
    expect(
        "switchyard_failovers_total{from=\"sim-a\",to=\"sim-b\"}",
        failovers
            .iter()
            .any(|l| l.contains("from=\"sim-a\"") && l.contains("to=\"sim-b\"")),
    );
    let tokens = samples(&metrics, "switchyard_tokens_total");
    for kind in ["input", "output"] {
        expect(
            &format!("switchyard_tokens_total{{team=\"alpha\",kind=\"{kind}\"}}"),
            tokens
                .iter()
                .any(|l| l.contains("team=\"alpha\"") && l.contains(&format!("kind=\"{kind}\""))),
        );
    }
    for histogram in [
        "switchyard_request_duration_seconds",
        "switchyard_time_to_first_token_seconds",
    ] {
        let counts = samples(&metrics, &format!("{histogram}_count"));
        expect(
            &format!("{histogram}_count{{model=\"chat\"}}"),
            counts.iter().any(|l| l.contains("model=\"chat\"")),
        );
    }
    if !missing.is_empty() {
        println!("{metrics}");
    }
    assert!(missing.is_empty(), "missing from /metrics: {missing:?}");
}

#[tokio::test]
async fn health_and_readiness_are_ok_with_usable_targets() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    let health = get(&proxy.admin("/healthz"), None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    let ready = get(&proxy.admin("/readyz"), None).await;
    println!("readyz: {} {}", ready.status, ready.body);
    assert_eq!(ready.status, 200, "{}", ready.body);
}

#[tokio::test]
async fn readiness_is_503_when_the_only_provider_is_disabled() {
    let sim = switchyard_e2e::start_sim("sim-a", UPSTREAM_KEY_A).await;
    let variable = "SWITCHYARD_E2E_UNSET_VAR_XYZ";
    assert!(
        std::env::var_os(variable).is_none(),
        "{variable} must not be set for this test"
    );
    let routes = policy(
        "",
        &format!(
            "  sim-a: {{ kind: openai, base_url: \"{}\", api_key: \"${{{variable}:-}}\" }}\n",
            sim.base_url()
        ),
        "  chat: { targets: [ { provider: sim-a, model: up-a, price: free } ] }\n",
        "[chat]",
    );
    println!("the only provider's key comes from an unset variable with an empty default");
    let proxy = Proxy::start(&routes).await;

    let ready = get(&proxy.admin("/readyz"), None).await;
    println!("readyz: {} {}", ready.status, ready.body);
    assert_eq!(ready.status, 503);
    assert!(
        ready.body.contains(variable),
        "the body names the variable: {}",
        ready.body
    );
}

const CIRCUIT_STATES: [&str; 3] = ["closed", "open", "half_open"];

#[tokio::test]
async fn admin_routes_explains_the_policy_without_secrets() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    let reply = get(&proxy.admin("/admin/routes"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for secret in [UPSTREAM_KEY_A, UPSTREAM_KEY_B, ALPHA_KEY] {
        assert!(
            !reply.body.contains(secret),
            "/admin/routes shows {secret:?}"
        );
    }
    let routes = reply.json();
    println!("{}", serde_json::to_string_pretty(&routes).unwrap());
    assert!(
        routes["version"].as_str().is_some_and(|v| !v.is_empty()),
        "version"
    );
    let models = routes["models"].as_array().expect("models");
    let chat = models
        .iter()
        .find(|m| m["name"] == "chat")
        .expect("model chat");
    let targets = chat["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2);
    for target in targets {
        assert!(target["id"].is_string(), "id: {target}");
        assert!(
            target["provider"] == "sim-a" || target["provider"] == "sim-b",
            "provider: {target}"
        );
        assert!(target["rank"].is_u64(), "rank: {target}");
        assert!(
            target["skipped"].is_null() || target["skipped"].is_string(),
            "skipped: {target}"
        );
        let circuit = target["circuit"].as_str().unwrap_or_default();
        assert!(CIRCUIT_STATES.contains(&circuit), "circuit: {target}");
        assert_eq!(
            target["price"]["input"].as_f64(),
            Some(1.0),
            "price: {target}"
        );
        assert_eq!(
            target["price"]["output"].as_f64(),
            Some(2.0),
            "price: {target}"
        );
    }
}

#[tokio::test]
async fn the_admin_token_guards_admin_endpoints_but_not_metrics_or_health() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("admin_token: secret-admin")).await;
    let routes = proxy.admin("/admin/routes");

    println!("no token, wrong token, right token");
    assert_eq!(get(&routes, None).await.status, 401);
    assert_eq!(get(&routes, Some("not-the-token")).await.status, 401);
    let ok = get(&routes, Some("secret-admin")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(
        !ok.body.contains("secret-admin"),
        "the admin token is a secret too"
    );
    let reload = post(&proxy.admin("/admin/reload"), None, "", &[]).await;
    assert_eq!(reload.status, 401, "{}", reload.body);

    println!("metrics and health stay open");
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(get(&proxy.admin(path), None).await.status, 200, "{path}");
    }
}

/// The standard policy plus model `fresh` on sim-b, which team alpha may use.
fn with_fresh_model(routes: &str) -> String {
    let fresh = "  fresh: { targets: [ { provider: sim-b, model: up-fresh, price: { input: 1.0, output: 1.0 } } ] }\n";
    let routes = routes.replace("  other: ", &format!("{fresh}  other: "));
    routes.replace("models: [chat, embed]", "models: [chat, embed, fresh]")
}

async fn model_ids(proxy: &Proxy) -> Vec<String> {
    let reply = get(&proxy.url("/models"), Some(ALPHA_KEY)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let list = reply.json();
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|model| model["id"].as_str().map(str::to_owned))
        .collect()
}

fn reload_of(reply: &Reply) -> Value {
    println!("reload: {} {}", reply.status, reply.body);
    reply.json()
}

#[tokio::test]
async fn reload_endpoint_applies_a_new_policy_and_keeps_the_old_one_on_error() {
    let sims = Sims::start().await;
    let routes = sims.routes("");
    let proxy = Proxy::start(&routes).await;
    let reload = proxy.admin("/admin/reload");
    let old_version = get(&proxy.admin("/admin/routes"), None).await.json()["version"].clone();

    println!("add model `fresh` and reload");
    let fresh = with_fresh_model(&routes);
    proxy.write_config(&fresh);
    let reply = post(&reload, None, "", &[]).await;
    let body = reload_of(&reply);
    assert_eq!(reply.status, 200);
    assert_eq!(body["status"], "ok");
    assert!(
        body["version"].as_str().is_some_and(|v| !v.is_empty()),
        "a version"
    );
    assert_ne!(
        body["version"], old_version,
        "a new policy has a new version"
    );

    println!("the new model is listed and served");
    assert!(model_ids(&proxy).await.contains(&"fresh".to_owned()));
    let served = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &hello("fresh"),
    )
    .await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.header("x-switchyard-provider"), Some("sim-b"));
    assert_eq!(
        sims.b.stats().last_body.expect("a body")["model"],
        "up-fresh"
    );

    println!("an invalid file is refused with its position, and the old policy keeps serving");
    let broken = fresh.replace("request_timeout: 10s", "request_timeout: ten-seconds");
    let line = broken
        .lines()
        .position(|l| l.contains("ten-seconds"))
        .expect("the broken line")
        + 1;
    proxy.write_config(&broken);
    let reply = post(&reload, None, "", &[]).await;
    let body = reload_of(&reply);
    assert_eq!(reply.status, 422);
    assert_eq!(body["status"], "error");
    let message = body["error"].as_str().expect("an error message");
    assert!(
        message.contains(&format!(":{line}:")) || message.contains(&format!("line {line}")),
        "the message gives line {line}: {message}"
    );
    assert!(model_ids(&proxy).await.contains(&"fresh".to_owned()));
    let served = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &hello("fresh"),
    )
    .await;
    assert_eq!(served.status, 200, "{}", served.body);

    println!("/admin/routes and the metrics remember the failed reload");
    let routes = get(&proxy.admin("/admin/routes"), None).await.json();
    assert!(
        routes["last_error"]["message"].is_string(),
        "last_error: {}",
        routes["last_error"]
    );
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        samples(&metrics, "switchyard_config_reloads_total")
            .iter()
            .any(|l| l.contains("result=\"error\"")),
        "switchyard_config_reloads_total{{result=\"error\"}} missing"
    );
}

#[tokio::test]
async fn a_changed_config_file_is_picked_up_without_a_reload_call() {
    let sims = Sims::start().await;
    let routes = sims.routes("");
    let proxy = Proxy::start(&routes).await;
    assert!(!model_ids(&proxy).await.contains(&"fresh".to_owned()));

    println!("rewrite the file with model `fresh`, then watch /v1/models for up to 5 s");
    proxy.write_config(&with_fresh_model(&routes));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = false;
    while Instant::now() < deadline {
        if model_ids(&proxy).await.contains(&"fresh".to_owned()) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen,
        "the file change was not picked up within 5 s; log:\n{}",
        proxy.log()
    );
}
