//! Anthropic Messages clients (`POST /v1/messages`) on targets that do not speak Anthropic:
//! OpenAI-compatible, Azure and Bedrock non-Claude models (Converse). Each answer, stream and
//! error must come back in Anthropic's shape, with Anthropic's status/type pairs; a
//! conversation replaying signed thinking skips targets that cannot carry it (or is a 400
//! naming `thinking`); the models list speaks Anthropic to Anthropic clients; metering,
//! metrics, the ledger, budgets and rate limits see `api` = `messages`.
//!
//! `messages!` at the bottom runs the provider cases against each kind, as the conformance
//! list does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use loadtest::{
    answer_text, BedrockFault, BedrockSim, BedrockSimConfig, Fault, OpenAiSim, SimConfig,
};
use serde_json::{json, Value};
use sqlx::Connection;
use switchyard_e2e::conformance::{
    Azure, Bedrock, BedrockConverse, OpenAi, Stage, Trouble, Tuning, Upstream, BACKUP, PAIR,
    PRIMARY, SOLO,
};
use switchyard_e2e::messages::{
    accumulate, anthropic_error, anthropic_request, ask, events, names, read, send, send_raw,
    send_stream, streamed, text_of, Key,
};
use switchyard_e2e::{get, http_client, key_hash, Proxy, Sims, ALPHA_KEY, UPSTREAM_KEY_A};

const HELLO: &str = "hello there";
/// A key nobody was given.
const WRONG_KEY: &str = "sk-wrong-e2e-9a7c3e1b";

fn weather_tool() -> Value {
    json!([{"name": "get_weather", "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                             "required": ["city"]}}])
}

/// The first turn of a tool conversation.
fn tool_request(model: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "tools": weather_tool(),
           "messages": [{"role": "user", "content": "What is the weather in Paris?"}]})
}

/// The second turn: the first answer's tool call, and its result.
fn tool_result_request(model: &str, call: &Value, result: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "tools": weather_tool(),
           "messages": [
               {"role": "user", "content": "What is the weather in Paris?"},
               {"role": "assistant", "content": [call]},
               {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": call["id"], "content": result}]}]})
}

/// A second turn replaying the first turn's signed thinking (as Claude Code does).
fn thinking_request(model: &str) -> Value {
    json!({"model": model, "max_tokens": 2048,
           "thinking": {"type": "enabled", "budget_tokens": 1024},
           "messages": [
               {"role": "user", "content": "Is 7 prime?"},
               {"role": "assistant", "content": [
                   {"type": "thinking", "thinking": "7 has no divisors but 1 and 7.",
                    "signature": "EqQBCkgIARABGAIiQL2t"},
                   {"type": "text", "text": "Yes."}]},
               {"role": "user", "content": "And 9?"}]})
}

// ----- the cases every non-Anthropic provider kind runs -----

/// Case 1: a plain answer in Anthropic's shape, with the client's model name and usage.
async fn text<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let reply = send(&stage.proxy, &ask(SOLO, HELLO)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some(PRIMARY));
    let id = reply.header("x-request-id").expect("x-request-id");
    assert_eq!(
        reply.header("request-id"),
        Some(id),
        "Anthropic's SDKs read request-id"
    );
    let message = reply.json();
    println!("{message}");
    assert!(
        message["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{message}"
    );
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], SOLO);
    assert_eq!(text_of(&message), stage.upstream.expected_answer(HELLO));
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["stop_sequence"].is_null());
    let usage = &message["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");
}

/// Case 2: a stream in Anthropic's event order, whose text is the plain answer's.
async fn stream<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let (reply, events) = send_stream(&stage.proxy, &ask(SOLO, HELLO)).await;
    assert_eq!(reply.header("x-switchyard-provider"), Some(PRIMARY));
    println!("{:?}", names(&events));
    let message = accumulate(&events);
    assert_eq!(message["model"], SOLO, "{message}");
    assert_eq!(text_of(&message), stage.upstream.expected_answer(HELLO));
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(message["usage"]["input_tokens"].is_u64(), "{message}");
}

/// Case 3: a tool call (plain and streamed) and the round trip of its result, ids intact.
async fn tools<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let reply = send(&stage.proxy, &tool_request(SOLO)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let message = reply.json();
    println!("{message}");
    assert_eq!(message["stop_reason"], "tool_use");
    let call = message["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .expect("a tool_use block")
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert!(call["input"].is_object(), "{call}");
    assert!(call["input"]["city"].is_string(), "{call}");
    let id = call["id"].as_str().unwrap().to_owned();

    println!("the same call, streamed");
    let (_, events) = send_stream(&stage.proxy, &tool_request(SOLO)).await;
    let streamed = accumulate(&events);
    assert_eq!(streamed["stop_reason"], "tool_use");
    let start = events
        .iter()
        .find(|e| e.name == "content_block_start" && e.data["content_block"]["type"] == "tool_use")
        .expect("a tool_use block start");
    assert_eq!(start.data["content_block"]["input"], json!({}));
    assert_eq!(start.data["content_block"]["name"], "get_weather");
    let streamed_call = streamed["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert!(
        streamed_call["input"]["city"].is_string(),
        "{streamed_call}"
    );

    println!("the tool's result goes back with the call's id");
    let reply = send(
        &stage.proxy,
        &tool_result_request(SOLO, &call, "sunny, 21 C"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["stop_reason"], "end_turn", "{answer}");
    assert!(!text_of(&answer).is_empty(), "{answer}");
    let seen = stage
        .upstream
        .seen_tool_exchange()
        .expect("the tool exchange");
    assert_eq!(seen.result, "sunny, 21 C");
    assert_eq!(seen.call_id, seen.result_id);
    // Bedrock rewrites ids it would reject, reversibly; OpenAI-format upstreams get them as is.
    if U::KIND != "bedrock" {
        assert_eq!(seen.call_id, id);
    }
}

/// Case 4: a conversation replaying signed thinking cannot go to this kind: a 400 naming
/// `thinking`, in Anthropic's shape, and nothing sent upstream — on the model whose only
/// target it is, and on the model whose second target (OpenAI-compatible) cannot either.
async fn thinking_refused<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    for model in [SOLO, PAIR] {
        let reply = send(&stage.proxy, &thinking_request(model)).await;
        assert_eq!(anthropic_error(&reply, 400), "invalid_request_error");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains("thinking"), "{message}");
    }
    assert_eq!(stage.upstream.model_requests(), 0);
    assert_eq!(stage.backup.stats().requests, 0);
}

/// Case 5: the first target at capacity: the second answers, still in Anthropic's shape;
/// when the only target is at capacity the client reads 529 `overloaded_error`.
async fn capacity<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    stage.upstream.inject(Trouble::RateLimited);
    let reply = send(&stage.proxy, &ask(PAIR, HELLO)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some(BACKUP));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));
    assert_eq!(text_of(&reply.json()), answer_text(BACKUP, 8));

    stage.upstream.inject(Trouble::RateLimited);
    let reply = send(&stage.proxy, &ask(SOLO, HELLO)).await;
    // The primary may still be cooling down from the first 429 (no attempt: the plan
    // skips it) or answer this one with a 429: either way no target could serve.
    assert_eq!(anthropic_error(&reply, 529), "overloaded_error");
    assert!(reply.header("x-request-id").is_some());
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
}

/// Case 6: a stream cut after its first events ends with Anthropic's `event: error`, never
/// with `message_stop`.
async fn stream_dropped<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    stage.upstream.inject(Trouble::DropAfter(2));
    let reply = send(&stage.proxy, &streamed(ask(SOLO, HELLO))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = events(&reply.body);
    println!("{:?}", names(&events));
    assert_eq!(names(&events).first(), Some(&"message_start"));
    assert!(
        !names(&events).contains(&"message_stop"),
        "{:?}",
        names(&events)
    );
    let last = events.last().unwrap();
    assert_eq!(last.name, "error");
    assert_eq!(last.data["error"]["type"], "api_error", "{}", last.data);
    assert!(last.data["error"]["message"].is_string());
}

macro_rules! messages {
    ($($provider:ident: $upstream:ty),* $(,)?) => {
        $(mod $provider {
            use super::*;
            #[tokio::test]
            async fn text() { super::text::<$upstream>().await }
            #[tokio::test]
            async fn stream() { super::stream::<$upstream>().await }
            #[tokio::test]
            async fn tools() { super::tools::<$upstream>().await }
            #[tokio::test]
            async fn thinking_refused() { super::thinking_refused::<$upstream>().await }
            #[tokio::test]
            async fn capacity() { super::capacity::<$upstream>().await }
            #[tokio::test]
            async fn stream_dropped() { super::stream_dropped::<$upstream>().await }
        })*
    };
}

messages! {
    openai: OpenAi,
    azure: Azure,
    bedrock_converse: BedrockConverse,
}

/// A capacity error inside a stream after its first bytes: Anthropic's `overloaded_error`
/// event (Chat clients read `upstream_error`), never `message_stop`.
#[tokio::test]
async fn a_stream_throttled_midway_ends_with_overloaded_error() {
    let sim = BedrockSim::start(BedrockSimConfig::new("nova"))
        .await
        .unwrap();
    let c = sim.config();
    let yaml = switchyard_e2e::policy(
        "",
        &format!(
            "  nova: {{ kind: bedrock, region: {}, endpoint: \"{}\", access_key_id: {}, secret_access_key: \"{}\" }}\n",
            c.region,
            sim.endpoint(),
            c.access_key_id,
            c.secret_access_key
        ),
        "  lite: { targets: [ { provider: nova, model: \"amazon.nova-lite-v1:0\", price: free } ] }\n",
        "[lite]",
    );
    let proxy = Proxy::start(&yaml).await;
    sim.push_faults([BedrockFault::ThrottleMidStream]);
    let reply = send(&proxy, &streamed(ask("lite", HELLO))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = events(&reply.body);
    println!("{:?}", names(&events));
    assert!(
        names(&events).contains(&"content_block_delta"),
        "{:?}",
        names(&events)
    );
    assert!(!names(&events).contains(&"message_stop"));
    let last = events.last().unwrap();
    assert_eq!(last.name, "error");
    assert_eq!(
        last.data["error"]["type"], "overloaded_error",
        "{}",
        last.data
    );
}

// ----- the inbound side, on OpenAI-compatible simulators -----

/// The standard two-simulator policy (`chat` on sim-a then sim-b, `other` not allowed).
async fn standard() -> (Sims, Proxy) {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("max_request_bytes: 64KiB")).await;
    (sims, proxy)
}

#[tokio::test]
async fn keys_come_as_x_api_key_or_bearer() {
    let (sims, proxy) = standard().await;
    for key in [Key::XApi(ALPHA_KEY), Key::Bearer(ALPHA_KEY)] {
        let reply = send_raw(&proxy, key, ask("chat", HELLO).to_string()).await;
        assert_eq!(reply.status, 200, "{key:?}: {}", reply.body);
    }
    for key in [Key::XApi(WRONG_KEY), Key::Bearer(WRONG_KEY), Key::None] {
        let reply = send_raw(&proxy, key, ask("chat", HELLO).to_string()).await;
        assert_eq!(
            anthropic_error(&reply, 401),
            "authentication_error",
            "{key:?}"
        );
        assert!(!reply.body.contains(WRONG_KEY), "the key is never echoed");
    }
    println!("`?beta=true` (the SDKs' beta client, Claude Code) routes on the path");
    let request = anthropic_request(
        reqwest::Method::POST,
        &proxy.url("/messages?beta=true"),
        Key::XApi(ALPHA_KEY),
        &[(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )],
    )
    .header("content-type", "application/json")
    .body(ask("chat", HELLO).to_string());
    let reply = read(request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["type"], "message");
    let sent = sims.a.stats().last_body.unwrap();
    assert!(
        sent.get("anthropic_beta").is_none() && !sent.to_string().contains("claude-code-2025"),
        "betas are not sent to an OpenAI-format upstream: {sent}"
    );

    println!("x-api-key is an Anthropic header: the Chat path does not read it");
    let reply = read(
        http_client()
            .post(proxy.url("/chat/completions"))
            .header("x-api-key", ALPHA_KEY)
            .header("content-type", "application/json")
            .body(
                json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
                    .to_string(),
            ),
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.error()["type"], "authentication_error");
    assert!(
        reply.header("request-id").is_none(),
        "only on the Anthropic paths"
    );
    assert_eq!(sims.a.stats().requests, 3);
}

#[tokio::test]
async fn a_capped_answer_stops_at_max_tokens() {
    let (_sims, proxy) = standard().await;
    let mut capped = ask("chat", HELLO);
    capped["max_tokens"] = json!(3);
    let reply = send(&proxy, &capped).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let message = reply.json();
    assert_eq!(message["stop_reason"], "max_tokens", "{message}");
    assert_eq!(message["usage"]["output_tokens"], 3, "{message}");
    assert_eq!(text_of(&message), answer_text("sim-a", 3));

    let (_, events) = send_stream(&proxy, &capped).await;
    let streamed = accumulate(&events);
    assert_eq!(streamed["stop_reason"], "max_tokens", "{streamed}");
    assert_eq!(streamed["usage"]["output_tokens"], 3, "{streamed}");
    assert_eq!(text_of(&streamed), answer_text("sim-a", 3));
}

#[tokio::test]
async fn refusals_come_in_anthropic_shape() {
    let (sims, proxy) = standard().await;
    let mut no_max_tokens = ask("chat", HELLO);
    no_max_tokens.as_object_mut().unwrap().remove("max_tokens");
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        ("unknown model", ask("nope", HELLO).to_string(), 404, "not_found_error", Some("nope")),
        ("model outside the allow-list", ask("other", HELLO).to_string(), 403, "permission_error", None),
        ("malformed JSON", r#"{"model": "chat", "messages": ["#.to_owned(), 400, "invalid_request_error", None),
        ("no max_tokens", no_max_tokens.to_string(), 400, "invalid_request_error", Some("max_tokens")),
        (
            "a role Anthropic does not have",
            json!({"model": "chat", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}).to_string(),
            400,
            "invalid_request_error",
            Some("role"),
        ),
        ("too large", format!(r#"{{"model":"chat","pad":"{}"}}"#, "x".repeat(70_000)), 413, "request_too_large", None),
    ];
    for (what, body, status, kind, mentions) in cases {
        println!("{what}");
        let reply = send_raw(&proxy, Key::XApi(ALPHA_KEY), body).await;
        assert_eq!(anthropic_error(&reply, status), kind, "{what}");
        assert!(reply.header("x-request-id").is_some(), "{what}");
        if let Some(mentions) = mentions {
            assert!(reply.body.contains(mentions), "{what}: {}", reply.body);
        }
    }
    println!("an unknown path with anthropic-version: Anthropic's 404");
    let reply = read(anthropic_request(
        reqwest::Method::POST,
        &proxy.url("/complete"),
        Key::XApi(ALPHA_KEY),
        &[],
    ))
    .await;
    assert_eq!(anthropic_error(&reply, 404), "not_found_error");
    assert_eq!(sims.a.stats().requests + sims.b.stats().requests, 0);
}

#[tokio::test]
async fn upstream_failures_come_in_anthropic_shape() {
    let (sims, proxy) = standard().await;
    println!("an upstream's 400 is the client's, in Anthropic's shape, not retried");
    sims.a.push_faults([Fault::ClientError(400)]);
    let reply = send(&proxy, &ask("chat", HELLO)).await;
    assert_eq!(anthropic_error(&reply, 400), "invalid_request_error");
    assert_eq!(sims.b.stats().requests, 0);

    println!("every target failing: 529 overloaded_error with retry-after");
    sims.a.push_faults([Fault::RateLimit {
        retry_after_ms: 2000,
    }]);
    sims.b.push_faults([Fault::Status(503)]);
    let reply = send(&proxy, &ask("chat", HELLO)).await;
    assert_eq!(anthropic_error(&reply, 529), "overloaded_error");
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
}

#[tokio::test]
async fn replayed_thinking_skips_the_openai_target_for_claude() {
    let sims = Sims::start().await;
    let bedrock = <Bedrock as Upstream>::start(Tuning::default()).await;
    let claude = bedrock.target_yaml();
    let yaml = switchyard_e2e::policy(
        "",
        &format!(
            "  sim-a: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n{}",
            sims.a.base_url(),
            bedrock.provider_yaml("claude"),
        ),
        &format!(
            "  mixed:\n    targets:\n      - {{ provider: sim-a, model: up-a, price: free }}\n      - {{ provider: claude, {claude}, price: free }}\n  sonnet:\n    targets:\n      - {{ provider: claude, {claude}, price: free }}\n"
        ),
        "[mixed, sonnet]",
    );
    let proxy = Proxy::start(&yaml).await;
    println!("plain requests go to the first target");
    let reply = send(&proxy, &ask("mixed", HELLO)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-a"));

    println!("a first turn with extended thinking, on Claude");
    let first = json!({"model": "sonnet", "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Is 7 prime?"}]});
    let reply = send(&proxy, &first).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert!(
        answer["content"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "thinking"
                && b["signature"].as_str().is_some_and(|s| !s.is_empty())),
        "{answer}"
    );

    println!("the second turn replays it on `mixed`: the OpenAI target is skipped for Claude");
    let second = json!({"model": "mixed", "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {"role": "user", "content": "Is 7 prime?"},
            {"role": "assistant", "content": answer["content"]},
            {"role": "user", "content": "And 9?"}]});
    let request = anthropic_request(
        reqwest::Method::POST,
        &proxy.url("/messages"),
        Key::XApi(ALPHA_KEY),
        &[("x-switchyard-debug", "1")],
    )
    .header("content-type", "application/json")
    .body(second.to_string());
    let reply = read(request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("claude"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("1"));
    let route = reply.header("x-switchyard-route").unwrap_or_default();
    assert!(
        route.contains("sim-a/up-a=refused(thinking)") && route.contains("=ok"),
        "{route}"
    );
    assert_eq!(sims.a.stats().requests, 1, "the refused target saw nothing");

    println!("/admin/routes says which targets replay thinking");
    let routes = get(&proxy.admin("/admin/routes"), None).await.json();
    let mixed = routes["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mixed")
        .unwrap();
    let replays = |provider: &str| {
        mixed["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["provider"] == provider)
            .unwrap()["replays_thinking"]
            .clone()
    };
    assert_eq!(replays("sim-a"), json!(false));
    assert_eq!(replays("claude"), json!(true));
}

#[tokio::test]
async fn the_models_list_speaks_anthropic_to_anthropic_clients() {
    let (_sims, proxy) = standard().await;
    let list = |query: &'static str| {
        let url = proxy.url(&format!("/models{query}"));
        async move {
            read(anthropic_request(
                reqwest::Method::GET,
                &url,
                Key::XApi(ALPHA_KEY),
                &[],
            ))
            .await
        }
    };
    let reply = list("").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    println!("{body}");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chat", "embed"], "the team's models only");
    let first = &body["data"][0];
    assert_eq!(first["type"], "model");
    assert_eq!(first["display_name"], "chat");
    assert!(
        first["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );
    assert_eq!(body["has_more"], false);
    assert_eq!(body["first_id"], "chat");
    assert_eq!(body["last_id"], "embed");

    println!("pages: limit and after_id");
    let page = list("?limit=1").await.json();
    assert_eq!(
        (page["last_id"].clone(), page["has_more"].clone()),
        (json!("chat"), json!(true))
    );
    let next = list("?limit=1&after_id=chat").await.json();
    assert_eq!(
        (next["last_id"].clone(), next["has_more"].clone()),
        (json!("embed"), json!(false))
    );
    assert_eq!(
        anthropic_error(&list("?limit=0").await, 400),
        "invalid_request_error"
    );

    println!("one model, and one that does not exist");
    let one = list("/chat").await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["type"], "model");
    assert_eq!(one.json()["id"], "chat");
    assert_eq!(
        anthropic_error(&list("/nope").await, 404),
        "not_found_error"
    );

    println!("without anthropic-version: OpenAI's list");
    let openai = get(&proxy.url("/models"), Some(ALPHA_KEY)).await.json();
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][0]["object"], "model");
}

// ----- metering -----

fn temp_dir(name: &str) -> PathBuf {
    let dir = switchyard_e2e::scratch_dir(&format!("sy-messages-{name}"));
    dir
}

/// `chat` on one simulator, a SQLite ledger in `dir`, team `alpha` with `team_extra`.
fn metered_routes(sim: &OpenAiSim, dir: &std::path::Path, team_extra: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 10s
  first_byte_timeout: 5s
ledger:
  url: "sqlite://{dir}/ledger.db"
  flush_interval: 50ms
providers:
  sim-a: {{ kind: openai, base_url: "{url}", api_key: {UPSTREAM_KEY_A} }}
models:
  chat:
    targets:
      - {{ provider: sim-a, model: up-a, price: {{ input: 1.0, output: 2.0 }} }}
teams:
  alpha:
    keys: ["{key}"]
    {team_extra}
"#,
        dir = dir.display(),
        url = sim.base_url(),
        key = key_hash(ALPHA_KEY),
    )
}

async fn sim() -> OpenAiSim {
    OpenAiSim::start(SimConfig {
        name: "sim-a".to_owned(),
        api_key: Some(UPSTREAM_KEY_A.to_owned()),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// The ledger's rows (api, status), once it holds `count` of them (bounded wait).
async fn ledger_rows(dir: &std::path::Path, count: usize) -> Vec<(String, String)> {
    let url = format!("sqlite://{}/ledger.db", dir.display());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT api, status FROM switchyard_ledger ORDER BY at_ms")
                .fetch_all(&mut db)
                .await
                .unwrap();
        if rows.len() >= count || std::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn messages_are_metered_logged_and_budgeted_like_chat() {
    let sim = sim().await;
    let dir = temp_dir("budget");
    // Each request costs some 2.2e-5 USD (6 input, 8 output tokens) and reserves 5.39e-4
    // (27 prompt tokens at most, 256 output: docs/spend.md): two fit, the third's maximum
    // no longer does.
    let proxy = Proxy::start(&metered_routes(
        &sim,
        &dir,
        "budget: { usd: 0.00057, period: daily }",
    ))
    .await;
    let reply = send(&proxy, &ask("chat", HELLO)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cost: f64 = reply
        .header("x-switchyard-cost-usd")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0);
    let (_, stream) = send_stream(&proxy, &ask("chat", HELLO)).await;
    accumulate(&stream);

    println!("the budget is spent: Anthropic's 429, not to be retried");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = send(&proxy, &ask("chat", HELLO)).await;
    assert_eq!(anthropic_error(&reply, 429), "rate_limit_error");
    assert_eq!(reply.header("x-should-retry"), Some("false"));
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("budget"));

    println!("the ledger rows say api = messages");
    let rows = ledger_rows(&dir, 2).await;
    assert_eq!(
        rows,
        [
            ("messages".to_owned(), "200".to_owned()),
            ("messages".to_owned(), "200".to_owned())
        ]
    );

    println!("count_tokens is its own api (free, so the spent budget does not stop it)");
    let count = read(
        anthropic_request(
            reqwest::Method::POST,
            &proxy.url("/messages/count_tokens"),
            Key::XApi(ALPHA_KEY),
            &[],
        )
        .header("content-type", "application/json")
        .body(
            json!({"model": "chat", "messages": [{"role": "user", "content": HELLO}]}).to_string(),
        ),
    )
    .await;
    assert_eq!(count.status, 200, "{}", count.body);
    assert!(count.json()["input_tokens"].as_u64().unwrap() > 0);

    println!("so do the metrics and the access log");
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains(r#"switchyard_requests_total{api="count_tokens",model="chat""#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"switchyard_requests_total{api="messages",model="chat",provider="sim-a",status="200",team="alpha"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"switchyard_requests_total{api="messages",model="chat",provider="none",status="429",team="alpha"} 1"#
        ),
        "{metrics}"
    );
    let log = proxy.log();
    assert!(
        log.lines().any(|l| l.contains("switchyard::access")
            && l.contains("api=messages")
            && l.contains("status=200")),
        "{log}"
    );
}

#[tokio::test]
async fn team_rate_limits_answer_in_anthropic_shape() {
    let sim = sim().await;
    let dir = temp_dir("rpm");
    let proxy = Proxy::start(&metered_routes(&sim, &dir, "limits: { rpm: 2 }")).await;
    for _ in 0..2 {
        assert_eq!(send(&proxy, &ask("chat", HELLO)).await.status, 200);
    }
    let reply = send(&proxy, &ask("chat", HELLO)).await;
    assert_eq!(anthropic_error(&reply, 429), "rate_limit_error");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        sim.stats().requests,
        2,
        "a limited request never reaches the upstream"
    );
}
