//! Anthropic-format upstreams end to end: `kind: anthropic` against the Anthropic simulator
//! and Claude on Bedrock's native InvokeModel against the Bedrock simulator (SigV4 verified,
//! Claude's native body validated), for Messages clients (pass-through), Chat clients (the
//! typed path) and `POST /v1/messages/count_tokens` (upstream counts, failover, estimate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loadtest::{
    AnthropicFault, AnthropicSim, AnthropicSimConfig, BedrockFault, BedrockSim, BedrockSimConfig,
};
use serde_json::{json, Value};
use switchyard_e2e::ports::closed_port;
use switchyard_e2e::{policy, post, post_stream, Proxy, Reply, StreamReply, ALPHA_KEY};

const SONNET: &str = "claude-sonnet-4-5-20250929";
const BEDROCK_SONNET: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

struct Setup {
    a: AnthropicSim,
    b: AnthropicSim,
    rock: BedrockSim,
    proxy: Proxy,
}

async fn setup() -> Setup {
    let a = AnthropicSim::start(AnthropicSimConfig::new("ant-a"))
        .await
        .unwrap();
    let b = AnthropicSim::start(AnthropicSimConfig::new("ant-b"))
        .await
        .unwrap();
    let rock = BedrockSim::start(BedrockSimConfig::new("rock"))
        .await
        .unwrap();
    let c = rock.config();
    let providers = format!(
        r#"  ant-a: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
  ant-b: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
  ant-down: {{ kind: anthropic, base_url: "http://127.0.0.1:{}", api_key: k }}
  rock: {{ kind: bedrock, region: {}, endpoint: "{}", access_key_id: {}, secret_access_key: "{}" }}
  oai: {{ kind: openai, base_url: "http://127.0.0.1:{}/v1" }}
"#,
        a.base_url(),
        a.config().api_key,
        b.base_url(),
        b.config().api_key,
        closed_port(),
        c.region,
        rock.endpoint(),
        c.access_key_id,
        c.secret_access_key,
        closed_port(),
    );
    let models = format!(
        r#"  claude:
    targets:
      - {{ provider: ant-a, model: {SONNET} }}
      - {{ provider: ant-b, model: {SONNET} }}
  claude-rock:
    targets:
      - {{ provider: rock, model: "{BEDROCK_SONNET}" }}
  claude-after-down:
    targets:
      - {{ provider: ant-down, model: {SONNET} }}
      - {{ provider: ant-a, model: {SONNET} }}
  claude-down:
    targets:
      - {{ provider: ant-down, model: {SONNET} }}
  gpt:
    targets:
      - {{ provider: oai, model: gpt-4o }}
"#
    );
    let yaml = policy(
        "",
        &providers,
        &models,
        "[claude, claude-rock, claude-after-down, claude-down, gpt]",
    );
    let proxy = Proxy::start(&yaml).await;
    Setup { a, b, rock, proxy }
}

const BETAS: &str = "interleaved-thinking-2025-05-14, context-management-2025-06-27";

fn messages_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 256, "stream": stream,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Say hello to the proxy"}],
        "metadata": {"user_id": "u-1"}})
}

async fn messages(s: &Setup, body: &Value) -> Reply {
    post(
        &s.proxy.url("/messages"),
        Some(ALPHA_KEY),
        body.to_string(),
        &[
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", BETAS),
        ],
    )
    .await
}

async fn count(s: &Setup, body: &Value) -> Reply {
    post(
        &s.proxy.url("/messages/count_tokens"),
        Some(ALPHA_KEY),
        body.to_string(),
        &[
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", BETAS),
        ],
    )
    .await
}

fn count_body(model: &str) -> Value {
    json!({"model": model, "system": "be brief",
        "messages": [{"role": "user", "content": "How many tokens is this sentence?"}]})
}

/// `(event name, data JSON)` of every event of an Anthropic SSE body.
fn named_events(reply: &StreamReply) -> Vec<(String, Value)> {
    reply
        .body
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("an event without a name: {block:?}"));
            let data = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect::<Vec<_>>()
                .join("\n");
            (name.to_owned(), serde_json::from_str(&data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn count_tokens_is_answered_by_anthropic_with_the_model_renamed() {
    let s = setup().await;
    let reply = count(&s, &count_body("claude")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.header("x-switchyard-estimated").is_none());
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant-a"));
    let tokens = reply.json()["input_tokens"].as_u64().unwrap();
    assert!(tokens > 0);
    let stats = s.a.stats();
    assert_eq!(stats.count_tokens_requests, 1);
    assert_eq!(
        stats.last_path.as_deref(),
        Some("/v1/messages/count_tokens")
    );
    assert_eq!(stats.last_body.as_ref().unwrap()["model"], SONNET);
    assert_eq!(stats.last_version.as_deref(), Some("2023-06-01"));
    assert_eq!(reply.header("x-switchyard-cost-usd"), Some("0"));
}

#[tokio::test]
async fn count_tokens_on_claude_on_bedrock_counts_the_native_body() {
    let s = setup().await;
    let reply = count(&s, &count_body("claude-rock")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.header("x-switchyard-estimated").is_none());
    assert!(reply.json()["input_tokens"].as_u64().unwrap() > 0);
    let stats = s.rock.stats();
    assert_eq!(stats.signature_failures, 0);
    assert_eq!(
        stats.last_path.as_deref(),
        Some("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens")
    );
    assert!(stats.last_body.unwrap()["input"]["invokeModel"]["body"].is_string());
}

#[tokio::test]
async fn count_tokens_fails_over_then_falls_back_on_the_estimate() {
    let s = setup().await;
    let after = count(&s, &count_body("claude-after-down")).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(after.header("x-switchyard-estimated").is_none());
    assert_eq!(after.header("x-switchyard-provider"), Some("ant-a"));
    assert_eq!(s.a.stats().count_tokens_requests, 1);

    let down = count(&s, &count_body("claude-down")).await;
    assert_eq!(down.status, 200, "{}", down.body);
    assert_eq!(down.header("x-switchyard-estimated"), Some("true"));
    assert!(down.json()["input_tokens"].as_u64().unwrap() > 0);

    // A kind that cannot count is never called: the estimate answers at once.
    let gpt = count(&s, &count_body("gpt")).await;
    assert_eq!(gpt.status, 200, "{}", gpt.body);
    assert_eq!(gpt.header("x-switchyard-estimated"), Some("true"));
    assert_eq!(
        gpt.json(),
        down.json(),
        "the same prompt, the same estimate"
    );
    assert_eq!(gpt.header("x-switchyard-attempts"), Some("0"));
}

#[tokio::test]
async fn count_tokens_refuses_a_bad_body_and_an_unknown_model() {
    let s = setup().await;
    let reply = count(&s, &json!({"model": "claude"})).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("messages"), "{}", reply.body);
    let reply = count(&s, &count_body("nope")).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(s.a.stats().count_tokens_requests, 0);
}

#[tokio::test]
async fn a_chat_client_is_served_by_anthropic_through_the_model() {
    let s = setup().await;
    let body = json!({"model": "claude", "max_tokens": 64,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]});
    let reply = post(
        &s.proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        body.to_string(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "claude");
    assert!(answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("ant-a"));
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let sent = s.a.stats().last_body.unwrap();
    assert_eq!(sent["model"], SONNET);
    assert_eq!(sent["system"], "be brief");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let reply = post_stream(
        &s.proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = reply.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("chat.completion.chunk"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("ant-a says"), "{}", reply.body);
    assert_eq!(s.a.stats().stream_requests, 1);
}
