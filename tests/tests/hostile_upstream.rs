//! Issue 15 end to end: the real binary against a deliberately hostile upstream
//! (`loadtest::HostileSim`) — redirects that would carry the proxy's credentials elsewhere,
//! error-shaped 200s, answers far larger than memory should hold, error messages that echo
//! the proxy's key, absurd headers — and the outputs that must never show a secret or let a
//! value forge a log field (`--check`, the access log).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::process::Command;

use loadtest::{Behaviour, HostileSim};
use serde_json::{json, Value};
use switchyard_e2e::{
    get, policy, post, post_json, start_sim, within, Proxy, ALPHA_KEY, UPSTREAM_KEY_A,
};

const OPENAI_KEY: &str = "sk-upstream-hostile-e2e-0123456789";
const AZURE_KEY: &str = "azure-key-hostile-e2e-0123456789";
const AWS_SECRET: &str = "aws-secret-hostile-e2e-0123456789";
const AWS_SESSION: &str = "aws-session-hostile-e2e-0123456789";
const QUERY_KEY: &str = "sk-query-hostile-e2e-0123456789";

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// The three provider kinds of issue 15 item 1, each pointed at `sim`'s `behaviour`.
fn hostile_providers(sim: &HostileSim, behaviour: Behaviour) -> String {
    let url = sim.url(behaviour);
    format!(
        r#"  h-openai: {{ kind: openai, base_url: "{url}/v1?key={QUERY_KEY}", api_key: {OPENAI_KEY} }}
  h-azure: {{ kind: azure, endpoint: "{url}", api_key: {AZURE_KEY}, api_version: 2024-10-21 }}
  h-bedrock: {{ kind: bedrock, region: us-east-1, endpoint: "{url}", access_key_id: AKIDHOSTILE, secret_access_key: "{AWS_SECRET}", session_token: "{AWS_SESSION}" }}
"#
    )
}

const PRICE: &str = "price: { input: 1.0, output: 2.0 }";

fn hostile_models() -> String {
    format!(
        r#"  via-openai: {{ targets: [ {{ provider: h-openai, model: gpt-4o, {PRICE} }} ] }}
  via-azure: {{ targets: [ {{ provider: h-azure, deployment: gpt4o, {PRICE} }} ] }}
  via-bedrock: {{ targets: [ {{ provider: h-bedrock, model: amazon.nova-lite-v1:0, {PRICE} }} ] }}
"#
    )
}

/// Every secret of [`hostile_providers`] that must never reach a client or the log.
const SECRETS: [&str; 5] = [OPENAI_KEY, AZURE_KEY, AWS_SECRET, AWS_SESSION, QUERY_KEY];

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

/// Issue 15, item 1: an upstream's 307/302 is an upstream error (fail over, else 503); the
/// proxy never follows it, so the redirect target receives nothing from any provider kind.
#[tokio::test]
async fn redirects_are_never_followed_for_openai_azure_or_bedrock() {
    let sim = HostileSim::start().await.unwrap();
    let good = start_sim("good", UPSTREAM_KEY_A).await;
    let mut providers = hostile_providers(&sim, Behaviour::Redirect307);
    providers.push_str(&hostile_providers(&sim, Behaviour::Redirect302).replace("  h-", "  h302-"));
    providers.push_str(&format!(
        "  good: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n",
        good.base_url()
    ));
    let mut models = hostile_models();
    models.push_str(
        &hostile_models()
            .replace("provider: h-", "provider: h302-")
            .replace("  via-", "  via302-"),
    );
    models.push_str(&format!(
        "  fallback: {{ targets: [ {{ provider: h-openai, model: gpt-4o, {PRICE} }}, {{ provider: good, model: up, {PRICE} }} ] }}\n"
    ));
    let team_models = "[via-openai, via-azure, via-bedrock, via302-openai, via302-azure, via302-bedrock, fallback]";
    let proxy = Proxy::start(&policy("", &providers, &models, team_models)).await;

    println!("a redirect before a good target: the request fails over to it");
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &hello("fallback"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("good"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));

    for model in [
        "via-openai",
        "via-azure",
        "via-bedrock",
        "via302-openai",
        "via302-azure",
        "via302-bedrock",
    ] {
        println!("{model}: its only target redirects");
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &hello(model),
        )
        .await;
        assert_eq!(reply.status, 503, "{model}: {}", reply.body);
        let message = reply.error()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains("HTTP 30"), "{model}: {message}");
        assert_no_secret(model, &reply.body);
    }
    let redirected = sim.received().len();
    assert_eq!(redirected, 7, "each hostile target was asked once");
    assert!(
        sim.stolen().is_empty(),
        "the redirect target received {:?}",
        sim.stolen()
    );
    assert_no_secret("the proxy log", &proxy.log());
}

/// Issue 15, item 5: a non-streaming 200 whose body is `{"error": …}` is a failure: it fails
/// over, and with nothing to fail over to the client gets a 503, not a billed 200.
#[tokio::test]
async fn an_error_shaped_200_fails_over_and_is_never_an_answer() {
    let sim = HostileSim::start().await.unwrap();
    let good = start_sim("good", UPSTREAM_KEY_A).await;
    let providers = format!(
        "  h: {{ kind: openai, base_url: \"{}/v1\", api_key: {OPENAI_KEY} }}\n  good: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n",
        sim.url(Behaviour::ErrorIn200),
        good.base_url()
    );
    let models = format!(
        "  both: {{ targets: [ {{ provider: h, model: m, {PRICE} }}, {{ provider: good, model: up, {PRICE} }} ] }}\n  alone: {{ targets: [ {{ provider: h, model: m, {PRICE} }} ] }}\n"
    );
    let proxy = Proxy::start(&policy("", &providers, &models, "[both, alone]")).await;

    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &hello("both"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("good"));
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &hello("alone"),
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        reply.header("x-switchyard-cost-usd").is_none(),
        "not billed"
    );
}

/// Issue 15, item 3: an upstream that echoes the proxy's credentials (and its own URL with a
/// `?key=`) in an error message hands none of them to the client or the log: each becomes
/// `[redacted]`. A connection error names the upstream without its query's secret.
#[tokio::test]
async fn echoed_upstream_credentials_are_scrubbed() {
    let sim = HostileSim::start().await.unwrap();
    let closed = switchyard_e2e::ports::closed_port();
    let mut providers = hostile_providers(&sim, Behaviour::EchoCredentials);
    providers.push_str(&format!(
        "  down: {{ kind: openai, base_url: \"http://127.0.0.1:{closed}/v1?key={QUERY_KEY}\", api_key: {OPENAI_KEY} }}\n"
    ));
    let mut models = hostile_models();
    models.push_str(&format!(
        "  to-down: {{ targets: [ {{ provider: down, model: m, {PRICE} }} ] }}\n"
    ));
    let team_models = "[via-openai, via-azure, via-bedrock, to-down]";
    let proxy = Proxy::start(&policy("", &providers, &models, team_models)).await;

    for model in ["via-openai", "via-azure", "via-bedrock"] {
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &hello(model),
        )
        .await;
        println!("{model}: {} {}", reply.status, reply.body);
        assert_eq!(reply.status, 400, "{model}: {}", reply.body);
        assert_no_secret(model, &reply.body);
        if model != "via-bedrock" {
            assert!(reply.body.contains("[redacted]"), "{model}: {}", reply.body);
        }
    }
    let echoed = sim.received();
    assert!(
        echoed.iter().any(|r| r.uri.contains(QUERY_KEY)),
        "the query secret reached the upstream, so it was echoed: {echoed:?}"
    );
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &hello("to-down"),
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_no_secret("a connection error", &reply.body);
    assert_no_secret("the proxy log", &proxy.log());
}

/// Peak resident memory of process `pid` in MiB (`VmHWM` of /proc/PID/status).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// Issue 15, item 5: ten concurrent 50 MB answers with `max_response_bytes: 8MiB` are each
/// refused once they pass the bound (a 503 naming it); the proxy's peak memory stays far
/// below what holding them would take (500 MB) and it keeps serving.
#[tokio::test]
async fn huge_answers_are_bounded_by_max_response_bytes() {
    let sim = HostileSim::start().await.unwrap();
    let good = start_sim("good", UPSTREAM_KEY_A).await;
    let providers = format!(
        "  h: {{ kind: openai, base_url: \"{}/v1\", api_key: {OPENAI_KEY} }}\n  good: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n",
        sim.url(Behaviour::HugeBody),
        good.base_url()
    );
    let models = format!(
        "  huge: {{ targets: [ {{ provider: h, model: m, {PRICE} }} ] }}\n  fine: {{ targets: [ {{ provider: good, model: up, {PRICE} }} ] }}\n"
    );
    let proxy = Proxy::start(&policy(
        "max_response_bytes: 8MiB",
        &providers,
        &models,
        "[huge, fine]",
    ))
    .await;
    let before = peak_rss_mib(proxy.pid());

    println!("ten concurrent 50 MB answers");
    let url = proxy.url("/chat/completions");
    let body = hello("huge");
    let requests = (0..10).map(|_| post_json(&url, Some(ALPHA_KEY), &body));
    let replies = within(futures_util::future::join_all(requests)).await;
    for reply in &replies {
        assert_eq!(reply.status, 503, "{}", reply.body);
        let message = reply.error()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains("max_response_bytes"), "{message}");
    }
    let peak = peak_rss_mib(proxy.pid());
    println!("peak RSS: {before} MiB before, {peak} MiB after");
    assert!(
        peak < 300,
        "peak RSS {peak} MiB: the answers were held in memory"
    );

    let health = get(&format!("{}/healthz", proxy.admin_url()), None).await;
    assert_eq!(health.status, 200);
    let reply = post_json(&url, Some(ALPHA_KEY), &hello("fine")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Absurd headers on a good answer (ninety junk ones, 16 KiB, nonsense rate limits and
/// `retry-after`) neither crash the proxy nor leak into what the client sees.
#[tokio::test]
async fn absurd_upstream_headers_are_survived() {
    let sim = HostileSim::start().await.unwrap();
    let providers = format!(
        "  h: {{ kind: openai, base_url: \"{}/v1\", api_key: {OPENAI_KEY} }}\n",
        sim.url(Behaviour::AbsurdHeaders)
    );
    let models = format!("  absurd: {{ targets: [ {{ provider: h, model: m, {PRICE} }} ] }}\n");
    let proxy = Proxy::start(&policy("", &providers, &models, "[absurd]")).await;
    for _ in 0..3 {
        let reply = post_json(
            &proxy.url("/chat/completions"),
            Some(ALPHA_KEY),
            &hello("absurd"),
        )
        .await;
        println!("{} {}", reply.status, reply.body);
        assert!(matches!(reply.status, 200 | 503), "{}", reply.body);
        assert!(
            reply.header("x-junk-1").is_none(),
            "upstream headers are not relayed"
        );
        let _ = reply.json();
    }
    let admin = proxy.admin("/admin/routes");
    assert_eq!(
        get(&admin, None).await.status,
        200,
        "the proxy still answers"
    );
}

/// The fields of one text log line (`name=value` or `name="quoted \"value\""`), as a log
/// reader splits them; a name given twice is kept twice.
fn fields(line: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = line;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].rsplit(' ').next().unwrap_or_default().to_owned();
        let after = &rest[eq + 1..];
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end..])
            }
            None => {
                let end = after.find(' ').unwrap_or(after.len());
                (after[..end].to_owned(), &after[end..])
            }
        };
        fields.push((name, value));
        rest = next;
    }
    fields
}

/// Issue 15, item 4: a model name (from the config, and so in the request) with spaces and
/// `name=value` pairs is written quoted in the text access log: the line still has exactly
/// one `team` (the real one) and one `model`.
#[tokio::test]
async fn a_crafted_model_name_cannot_forge_access_log_fields() {
    let good = start_sim("good", UPSTREAM_KEY_A).await;
    let providers = format!(
        "  good: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n",
        good.base_url()
    );
    let crafted = "fine team=beta cost_usd=0.0 status=200";
    let models =
        format!("  \"{crafted}\": {{ targets: [ {{ provider: good, model: up, {PRICE} }} ] }}\n");
    let proxy = Proxy::start(&policy(
        "",
        &providers,
        &models,
        &format!("[\"{crafted}\"]"),
    ))
    .await;
    let reply = post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        hello(crafted).to_string(),
        &[("x-request-id", "forge-test-1")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let log = proxy.log();
    let line = log
        .lines()
        .find(|line| line.contains("forge-test-1") && line.contains("switchyard::access"))
        .unwrap_or_else(|| panic!("no access line for the request:\n{log}"));
    println!("{line}");
    let fields = fields(line);
    let named = |name: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(named("model"), [crafted], "{line}");
    assert_eq!(named("team"), ["alpha"], "{line}");
    assert_eq!(named("cost_usd").len(), 1, "{line}");
    let unique: HashMap<&str, usize> = fields.iter().fold(HashMap::new(), |mut seen, (n, _)| {
        *seen.entry(n.as_str()).or_default() += 1;
        seen
    });
    assert!(unique.values().all(|count| *count == 1), "{line}");
}

/// Issue 15, item 3: `--check` prints every upstream URL without user-info or query values.
#[test]
fn check_redacts_credentials_in_upstream_urls() {
    let dir = switchyard_e2e::scratch_dir("switchyard-check");
    let providers = format!(
        "  p: {{ kind: openai, base_url: \"https://user:pw-check-0123456789@gw.example.com/v1?key={QUERY_KEY}\", api_key: {OPENAI_KEY} }}\n  a: {{ kind: azure, endpoint: \"https://res.openai.azure.com?sig={QUERY_KEY}\", api_key: {AZURE_KEY}, api_version: 2024-10-21 }}\n"
    );
    let models = format!(
        "  m: {{ targets: [ {{ provider: p, model: x, {PRICE} }}, {{ provider: a, deployment: d, {PRICE} }} ] }}\n"
    );
    let path = dir.join("routes.yaml");
    let yaml = policy("", &providers, &models, "[m]")
        .replace("{LISTEN}", "18080")
        .replace("{ADMIN}", "19090");
    std::fs::write(&path, yaml).unwrap();
    let binary = loadtest::proxy_process::switchyard_binary().unwrap();
    let output = Command::new(binary)
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{printed}");
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("https://gw.example.com/v1?key=redacted"),
        "{printed}"
    );
    assert!(
        printed.contains("https://res.openai.azure.com/?sig=redacted"),
        "{printed}"
    );
    assert!(!printed.contains("pw-check-0123456789"), "{printed}");
    assert_no_secret("--check", &printed);
}
