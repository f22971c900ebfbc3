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
  claude-mixed:
    targets:
      - {{ provider: rock, model: "{BEDROCK_SONNET}" }}
      - {{ provider: ant-a, model: {SONNET} }}
"#
    );
    let yaml = policy(
        "",
        &providers,
        &models,
        "[claude, claude-rock, claude-after-down, claude-down, gpt, claude-mixed]",
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
    assert_eq!(
        stats.betas_seen,
        vec![
            "interleaved-thinking-2025-05-14",
            "context-management-2025-06-27"
        ]
    );
    // Its own `api` label, no cost and no tokens.
    let metrics = switchyard_e2e::get(&s.proxy.admin("/metrics"), None)
        .await
        .body;
    let line = r#"switchyard_requests_total{api="count_tokens",model="claude",provider="ant-a",status="200",team="alpha"} 1"#;
    assert!(metrics.contains(line), "{metrics}");
    let spend = r#"switchyard_spend_usd_total{model="claude",provider="ant-a",team="alpha"} 0"#;
    assert!(metrics.contains(&format!("{spend}\n")), "{metrics}");
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

async fn messages_stream(s: &Setup, body: &Value) -> StreamReply {
    // post_stream has no header argument: the betas go through a plain request here.
    let response = switchyard_e2e::within(
        switchyard_e2e::http_client()
            .post(s.proxy.url("/messages"))
            .bearer_auth(ALPHA_KEY)
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", BETAS)
            .body(body.to_string())
            .send(),
    )
    .await
    .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = switchyard_e2e::within(response.text())
        .await
        .unwrap_or_default();
    StreamReply {
        status,
        headers,
        body,
        cut: None,
    }
}

/// The event names of an Anthropic stream, with the checks every stream must pass: the
/// client's model in `message_start`, a `message_stop` last and nothing after it.
fn checked_names(reply: &StreamReply) -> Vec<String> {
    let events = named_events(reply);
    let names: Vec<String> = events.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("message_start"),
        "{}",
        reply.body
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("message_stop"),
        "{}",
        reply.body
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "{}", reply.body);
    }
    assert!(!reply.body.contains("[DONE]"), "{}", reply.body);
    names
}

#[tokio::test]
async fn a_messages_client_passes_through_to_anthropic_with_its_betas() {
    let s = setup().await;
    let body = messages_body("claude", false);
    let reply = messages(&s, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["model"], "claude", "the client's name comes back");
    assert!(answer["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("ant-a says"));
    assert!(answer["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let stats = s.a.stats();
    let mut expected = body.clone();
    expected["model"] = json!(SONNET);
    assert_eq!(stats.last_body.unwrap(), expected, "only the model changed");
    assert_eq!(
        stats.betas_seen,
        vec![
            "interleaved-thinking-2025-05-14",
            "context-management-2025-06-27"
        ]
    );
    let header = |name: &str| {
        stats
            .last_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("anthropic-beta").as_deref(),
        Some("interleaved-thinking-2025-05-14,context-management-2025-06-27")
    );
    assert_eq!(header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert!(
        header("authorization").is_none(),
        "the client's key stays here"
    );
    let cost: f64 = reply
        .header("x-switchyard-cost-usd")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0, "claude-sonnet-4-5 has a built-in price");
}

#[tokio::test]
async fn a_messages_stream_is_relayed_event_by_event() {
    let s = setup().await;
    let reply = messages_stream(&s, &messages_body("claude", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let names = checked_names(&reply);
    assert!(
        names.contains(&"content_block_delta".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"message_delta".to_owned()), "{names:?}");
    let events = named_events(&reply);
    assert_eq!(events[0].1["message"]["model"], "claude");
    assert!(reply.body.contains("ant-a says"), "{}", reply.body);
    assert_eq!(s.a.stats().stream_requests, 1);
    assert_eq!(s.a.stats().served_ok, 1);
}

#[tokio::test]
async fn rate_limited_and_overloaded_anthropic_targets_fail_over() {
    let s = setup().await;
    s.a.push_faults([AnthropicFault::RateLimit {
        retry_after_secs: 30,
    }]);
    let reply = messages(&s, &messages_body("claude", false)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant-b"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));
    assert!(reply.json()["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("ant-b says"));
    assert_eq!((s.a.stats().served_ok, s.b.stats().served_ok), (0, 1));

    // A fresh proxy and simulators (no cool-down left): ant-a answers 529 overloaded.
    let s = setup().await;
    s.a.push_faults([AnthropicFault::Overloaded]);
    let reply = messages_stream(&s, &messages_body("claude", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant-b"));
    checked_names(&reply);

    // An overloaded_error event right after message_start: nothing reached the client yet.
    let s = setup().await;
    s.a.push_faults([AnthropicFault::StreamError { after_events: 1 }]);
    let reply = messages_stream(&s, &messages_body("claude", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant-b"));
    assert!(
        reply.body.contains("ant-b says") && !reply.body.contains("ant-a"),
        "{}",
        reply.body
    );
    checked_names(&reply);
}

#[tokio::test]
async fn a_messages_client_reaches_claude_on_bedrock_through_invoke_model() {
    let s = setup().await;
    let mut body = messages_body("claude-rock", false);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    body["max_tokens"] = json!(2048);
    let reply = messages(&s, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["model"], "claude-rock");
    assert_eq!(answer["content"][0]["type"], "thinking", "{answer}");
    assert!(answer["content"][0]["signature"].is_string(), "{answer}");
    let stats = s.rock.stats();
    assert_eq!(stats.signature_failures, 0);
    assert_eq!(stats.validation_failures, 0);
    assert_eq!(
        stats.last_path.as_deref(),
        Some("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke")
    );
    let sent = stats.last_body.unwrap();
    assert!(
        sent.get("model").is_none() && sent.get("stream").is_none(),
        "{sent}"
    );
    assert_eq!(sent["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(
        sent["anthropic_beta"],
        json!([
            "interleaved-thinking-2025-05-14",
            "context-management-2025-06-27"
        ])
    );
    assert_eq!(sent["system"], body["system"], "cache markers kept");
    assert_eq!(sent["metadata"], body["metadata"]);

    let reply = messages_stream(&s, &messages_body("claude-rock", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let names = checked_names(&reply);
    assert!(
        names.contains(&"content_block_delta".to_owned()),
        "{names:?}"
    );
    assert_eq!(named_events(&reply)[0].1["message"]["model"], "claude-rock");
    assert!(reply.body.contains("rock says"), "{}", reply.body);
    assert_eq!(
        s.rock.stats().last_path.as_deref(),
        Some("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream")
    );
}

#[tokio::test]
async fn bedrock_throttling_before_content_fails_over_and_after_it_ends_the_stream() {
    let s = setup().await;
    s.rock.push_faults([BedrockFault::ThrottleMidStream]);
    let reply = messages_stream(&s, &messages_body("claude-rock", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = named_events(&reply);
    assert_eq!(
        events.last().map(|(n, _)| n.as_str()),
        Some("error"),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("message_stop"), "{}", reply.body);

    // Throttled before any content: the next target (Anthropic itself) serves.
    s.rock.push_faults([BedrockFault::ThrottleBeforeContent]);
    let reply = messages_stream(&s, &messages_body("claude-mixed", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant-a"));
    assert!(reply.body.contains("ant-a says"), "{}", reply.body);
    checked_names(&reply);
}

#[tokio::test]
async fn a_stream_cut_after_content_ends_with_an_anthropic_error_event() {
    let s = setup().await;
    s.a.push_faults([AnthropicFault::StreamCut { after_events: 4 }]);
    let reply = messages_stream(&s, &messages_body("claude", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant-a"));
    let events = named_events(&reply);
    assert_eq!(events[0].0, "message_start", "{}", reply.body);
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "error", "{}", reply.body);
    assert_eq!(data["type"], "error");
    assert!(data["error"]["type"].is_string(), "{data}");
    assert!(!reply.body.contains("message_stop"), "{}", reply.body);
    assert_eq!(
        s.b.stats().message_requests,
        0,
        "no failover after the first byte"
    );
}

#[tokio::test]
async fn garbage_from_claude_on_bedrock_fails_over_to_anthropic() {
    let s = setup().await;
    s.rock.push_faults([BedrockFault::Garbage]);
    let reply = messages(&s, &messages_body("claude-mixed", false)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant-a"));
    assert_eq!(reply.json()["model"], "claude-mixed");

    s.rock.push_faults([BedrockFault::Garbage]);
    let reply = messages_stream(&s, &messages_body("claude-mixed", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant-a"));
    checked_names(&reply);
}
