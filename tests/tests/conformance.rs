//! The provider conformance list: the same cases, through the real binary, against every
//! provider kind's simulator. `conformance!` at the bottom instantiates each case for each
//! provider (`openai::text`, `bedrock::stream_dropped`, …); a new provider kind gets the
//! whole list by adding its `Upstream` (in `tests/src/conformance/`) to that list. A case
//! that fails on one provider because of a known proxy bug is marked there, with the bug,
//! as `provider: Upstream { case: "bug: …" }`, which `#[ignore]`s just that test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_openai::types::chat::{CreateChatCompletionRequest, FinishReason};
use futures_util::StreamExt;
use loadtest::answer_text;
use serde_json::{json, Value};
use switchyard_e2e::conformance::{
    cost_of, Anthropic, Azure, Bedrock, OpenAi, Stage, Trouble, Tuning, Upstream, BACKUP, PAIR,
    PRIMARY, SOLO,
};
use switchyard_e2e::{error_of, post_json, post_stream, within, StreamReply, ALPHA_KEY};

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const HELLO: &str = "hello there";

fn sdk_request(body: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(body).expect("a valid chat request")
}

fn ask(model: &str, prompt: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": prompt}]})
}

fn ask_streamed(model: &str, prompt: &str) -> Value {
    let mut body = ask(model, prompt);
    body["stream"] = json!(true);
    body
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}])
}

/// The JSON chunks of a stream (every event but `[DONE]` that parses).
fn chunks(reply: &StreamReply) -> Vec<Value> {
    reply
        .events()
        .iter()
        .filter_map(|event| serde_json::from_str(event).ok())
        .collect()
}

fn streamed_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// A stream that broke after its first byte: no `[DONE]`, the last event an OpenAI error.
fn assert_ends_with_error_event(reply: &StreamReply) {
    let events = reply.events();
    println!("{} events, cut: {:?}", events.len(), reply.cut);
    for event in &events {
        println!("  data: {event}");
    }
    assert!(
        !events.iter().any(|e| e == "[DONE]"),
        "a broken stream must not claim [DONE]"
    );
    let last = events.last().expect("at least one event");
    let error =
        error_of(last).unwrap_or_else(|why| panic!("the last event is not an error: {why}"));
    assert!(error["message"].is_string(), "{error}");
}

/// A 200 served by the backup after the provider under test failed once.
fn assert_failed_over(reply: &switchyard_e2e::Reply) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some(BACKUP));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        answer_text(BACKUP, 8)
    );
}

/// A client error before any byte of an answer: 5xx, OpenAI's error shape, `server_error`.
fn assert_upstream_error(reply: &switchyard_e2e::Reply) {
    println!("{} {}", reply.status, reply.body);
    assert!(
        (502..=504).contains(&reply.status),
        "an upstream fault is a 502/503/504, got {}: {}",
        reply.status,
        reply.body
    );
    let error = reply.error();
    assert_eq!(error["type"], "server_error", "{error}");
    assert!(
        error["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("upstream_")),
        "{error}"
    );
}

/// Case 1: A plain answer through the SDK; the raw reply's headers name the provider and cost.
async fn text<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let client = stage.proxy.openai(ALPHA_KEY);
    let response = within(client.chat().create(sdk_request(ask(SOLO, HELLO))))
        .await
        .expect("the SDK gets an answer");
    let choice = &response.choices[0];
    assert_eq!(
        choice.message.content.as_deref(),
        Some(stage.upstream.expected_answer(HELLO).as_str())
    );
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    let usage = response.usage.expect("usage on a non-streamed answer");
    assert!(
        usage.prompt_tokens > 0 && usage.completion_tokens > 0,
        "{usage:?}"
    );
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );

    println!("the raw reply carries the provider and the cost");
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(SOLO, HELLO)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some(PRIMARY));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("1"));
    let cost: f64 = reply
        .header("x-switchyard-cost-usd")
        .expect("x-switchyard-cost-usd")
        .parse()
        .expect("a decimal cost");
    let expected = cost_of(&reply.json()["usage"]);
    assert!(
        cost > 0.0 && (cost - expected).abs() < 1e-12,
        "cost {cost}, expected {expected}"
    );
}

/// Case 2: A stream assembles to the same text and ends with `[DONE]`; the usage chunk comes
/// only when the client asked for it.
async fn stream<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let expected = stage.upstream.expected_answer(HELLO);

    println!("raw, without stream_options");
    let reply = post_stream(
        &stage.chat_url(),
        Some(ALPHA_KEY),
        &ask_streamed(SOLO, HELLO),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.cut.is_none(), "the stream broke: {:?}", reply.cut);
    assert_eq!(reply.header("x-switchyard-provider"), Some(PRIMARY));
    let events = reply.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks(&reply);
    assert_eq!(
        chunks.len() + 1,
        events.len(),
        "every event but [DONE] is JSON"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(streamed_text(&chunks), expected);
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")]);
    assert!(
        chunks.iter().all(|c| c["usage"].is_null()),
        "usage reached a client that did not ask for it"
    );

    println!("through the SDK, with include_usage");
    let mut body = ask_streamed(SOLO, HELLO);
    body["stream_options"] = json!({"include_usage": true});
    let client = stage.proxy.openai(ALPHA_KEY);
    let mut stream = within(client.chat().create_stream(sdk_request(body)))
        .await
        .expect("the stream starts");
    let mut received = Vec::new();
    while let Some(chunk) = within(stream.next()).await {
        received.push(chunk.expect("no stream error"));
    }
    let text: String = received
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|choice| choice.delta.content.as_deref())
        .collect();
    assert_eq!(text, expected);
    let last = received.last().expect("chunks");
    assert!(last.choices.is_empty(), "the usage chunk has no choices");
    let usage = last.usage.clone().expect("usage on the last chunk");
    assert!(
        usage.prompt_tokens > 0 && usage.completion_tokens > 0,
        "{usage:?}"
    );
    assert_eq!(
        received.iter().filter(|c| c.usage.is_some()).count(),
        1,
        "exactly one usage chunk"
    );
}

/// Case 3: A tool call, then its result under the same id, answered: the upstream sees the
/// replayed call and the result with matching ids.
async fn tools<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let client = stage.proxy.openai(ALPHA_KEY);
    let question = json!({"role": "user", "content": "What is the weather in Paris?"});
    let first = within(client.chat().create(sdk_request(json!({"model": SOLO,
        "messages": [question], "tools": weather_tool(),
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}))))
    .await
    .expect("turn 1 is answered");
    let choice = &first.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls =
        serde_json::to_value(choice.message.tool_calls.as_ref().expect("tool calls")).unwrap();
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{calls}");
    let call = &calls[0];
    let id = call["id"].as_str().expect("a call id").to_owned();
    assert!(!id.is_empty());
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments"))
            .expect("arguments are JSON");
    assert!(arguments["city"].is_string(), "{arguments}");

    println!("turn 2: the call replayed, its result under id {id}");
    let second = within(client.chat().create(sdk_request(json!({"model": SOLO,
        "tools": weather_tool(), "messages": [question,
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": id, "content": "18C and sunny"}]}))))
    .await
    .expect("turn 2 is answered");
    let choice = &second.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    let text = choice.message.content.clone().unwrap_or_default();
    assert!(text.contains("18C and sunny"), "{text}");
    let seen = stage
        .upstream
        .seen_tool_exchange()
        .expect("the upstream got the tool exchange");
    assert_eq!(seen.call_id, id);
    assert_eq!(seen.result_id, id);
    assert_eq!(seen.result, "18C and sunny");
}

/// Case 4: A data-URL image reaches the upstream in its own format and is answered.
async fn image<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let client = stage.proxy.openai(ALPHA_KEY);
    let response = within(client.chat().create(sdk_request(json!({"model": SOLO,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}}]}]}))))
    .await
    .expect("the image request is answered");
    let text = response.choices[0]
        .message
        .content
        .clone()
        .unwrap_or_default();
    assert!(!text.is_empty());
    let seen = stage
        .upstream
        .seen_image()
        .expect("the upstream got the image");
    assert_eq!(seen.format, "png");
    assert_eq!(seen.base64, PNG);
}

/// Case 5: Cache reads (and writes) reported upstream show in the client's usage and are billed
/// at their own rates, in the cost header and the ledger.
async fn usage_with_cache<U: Upstream>() {
    let stage = Stage::<U>::start_with(
        Tuning {
            cache: true,
            ..Tuning::default()
        },
        "",
    )
    .await;
    // Long enough that the simulator's prompt is larger than what it reports as cached.
    let prompt = "a long shared prefix ".repeat(30);
    let reply = post_json(
        &stage.chat_url(),
        Some(ALPHA_KEY),
        &ask(SOLO, prompt.trim()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let usage = reply.json()["usage"].clone();
    println!("usage: {usage}");
    let details = &usage["prompt_tokens_details"];
    assert_eq!(details["cached_tokens"], json!(U::CACHE.read), "{usage}");
    if U::CACHE.write > 0 {
        assert_eq!(
            details["cache_write_tokens"],
            json!(U::CACHE.write),
            "{usage}"
        );
    }
    let cost: f64 = reply
        .header("x-switchyard-cost-usd")
        .expect("x-switchyard-cost-usd")
        .parse()
        .unwrap();
    let expected = cost_of(&usage);
    assert!(
        (cost - expected).abs() < 1e-12,
        "cost {cost}, expected {expected}"
    );
    let spend = stage.spend_after(1).await;
    println!("spend: {spend}");
    assert_eq!(spend["requests"], 1, "{spend}");
    let spent = spend["spent_usd"].as_f64().expect("spent_usd");
    assert!(
        (spent - expected).abs() < 1e-9,
        "ledger {spent}, expected {expected}"
    );
}

/// Case 6: A 429 (throttling) from the first target is served by the second, invisibly.
async fn rate_limited_fails_over<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    stage.upstream.inject(Trouble::RateLimited);
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(PAIR, HELLO)).await;
    assert_failed_over(&reply);
    assert_eq!(stage.upstream.model_requests(), 1);
}

/// Case 7: A 500 fails over to the second target; with no second target the client gets an
/// OpenAI-style 5xx.
async fn server_error<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    stage.upstream.inject(Trouble::ServerError);
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(PAIR, HELLO)).await;
    assert_failed_over(&reply);

    println!("alone, the provider's 500 is the client's OpenAI-style error");
    stage.upstream.inject(Trouble::ServerError);
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(SOLO, HELLO)).await;
    assert_upstream_error(&reply);
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.error()["code"], "upstream_unavailable");
}

/// Case 8: A 200 with a body that is not the format's JSON is never passed on as an answer:
/// it fails over, or alone is a 5xx; streamed, it never ends in `[DONE]`.
async fn garbage_body<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    stage.upstream.inject(Trouble::Garbage);
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(PAIR, HELLO)).await;
    assert_failed_over(&reply);

    println!("alone: a 5xx error, not a 200 with garbage");
    stage.upstream.inject(Trouble::Garbage);
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(SOLO, HELLO)).await;
    assert_upstream_error(&reply);

    println!("streamed, alone: an error, never [DONE]");
    stage.upstream.inject(Trouble::Garbage);
    let reply = post_stream(
        &stage.chat_url(),
        Some(ALPHA_KEY),
        &ask_streamed(SOLO, HELLO),
    )
    .await;
    if reply.status == 200 {
        assert_ends_with_error_event(&reply);
    } else {
        assert!(reply.status >= 500, "{} {}", reply.status, reply.body);
        error_of(&reply.body).unwrap_or_else(|why| panic!("{why}"));
    }

    // Garbage is a server error, not a capacity error: no cool-down, so the target alone
    // serves again at once (a Bedrock stream's garbage is noticed at its first prelude).
    println!("the target alone is still serving");
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(SOLO, HELLO)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some(PRIMARY));
}

/// Case 8b: A 200 whose JSON is not an answer (an error object) is not an answer either:
/// it fails over, or alone is a 5xx, and is not billed.
async fn wrong_shape_body<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    stage.upstream.inject(Trouble::WrongShape);
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(PAIR, HELLO)).await;
    assert_failed_over(&reply);

    println!("alone: a 5xx error, not a 200");
    stage.upstream.inject(Trouble::WrongShape);
    let reply = post_json(&stage.chat_url(), Some(ALPHA_KEY), &ask(SOLO, HELLO)).await;
    assert_upstream_error(&reply);
}

/// Case 9: A stream cut after a few events ends with an error event (not silently) and is metered.
async fn stream_dropped<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    stage.upstream.inject(Trouble::DropAfter(2));
    let reply = post_stream(
        &stage.chat_url(),
        Some(ALPHA_KEY),
        &ask_streamed(SOLO, HELLO),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_ends_with_error_event(&reply);
    let text = streamed_text(&chunks(&reply));
    assert!(
        !text.is_empty(),
        "the content before the cut reaches the client"
    );
    assert!(
        stage.upstream.expected_answer(HELLO).starts_with(&text),
        "{text}"
    );
    let spend = stage.spend_after(1).await;
    println!("spend: {spend}");
    assert_eq!(
        spend["requests"], 1,
        "the broken stream is metered: {spend}"
    );
    assert!(spend["output_tokens"].as_u64().unwrap_or(0) > 0, "{spend}");
}

/// Case 10: A stream that stalls after a few events ends with an error event by the deadline.
async fn stream_stalled<U: Upstream>() {
    let stage = Stage::<U>::start_with(Tuning::default(), "request_timeout: 2s").await;
    stage.upstream.inject(Trouble::StallAfter(2));
    let reply = post_stream(
        &stage.chat_url(),
        Some(ALPHA_KEY),
        &ask_streamed(SOLO, HELLO),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_ends_with_error_event(&reply);
    assert!(!streamed_text(&chunks(&reply)).is_empty());
    assert_eq!(
        stage.upstream_settled().await,
        0,
        "the stalled upstream is let go"
    );
}

/// Case 11: A client that hangs up mid-stream: the upstream request is cancelled and what was
/// produced is metered.
async fn client_hangs_up<U: Upstream>() {
    let stage = Stage::<U>::start_with(
        Tuning {
            slow: true,
            ..Tuning::default()
        },
        "",
    )
    .await;
    // Bedrock's simulator echoes the prompt, so a long prompt makes a long answer there.
    let prompt: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
    let response = switchyard_e2e::http_client()
        .post(stage.chat_url())
        .bearer_auth(ALPHA_KEY)
        .json(&ask_streamed(SOLO, &prompt.join(" ")))
        .send()
        .await
        .expect("the stream starts");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = 0;
    while received < 4 {
        let chunk = within(body.next()).await.expect("a chunk").expect("bytes");
        received += String::from_utf8_lossy(&chunk).matches("data: ").count();
    }
    println!("the client read {received} events, then hangs up");
    assert_eq!(
        stage.upstream.in_flight(),
        1,
        "the upstream is still streaming"
    );
    drop(body);
    assert_eq!(
        stage.upstream_settled().await,
        0,
        "the upstream request was cancelled"
    );
    let spend = stage.spend_after(1).await;
    println!("spend: {spend}");
    assert_eq!(
        spend["requests"], 1,
        "the abandoned stream is metered: {spend}"
    );
    assert!(spend["output_tokens"].as_u64().unwrap_or(0) > 0, "{spend}");
}

/// Every case of the list, as one `#[tokio::test]` per provider kind: `provider: Upstream`,
/// optionally followed by `{ case: "bug: why" }` for a case that fails on that provider
/// because of a known proxy bug (the test is then `#[ignore]`d with that reason).
macro_rules! conformance {
    ($($provider:ident: $upstream:ty $({ $($bug:ident: $why:literal),* $(,)? })?),* $(,)?) => {
        $(conformance!(@provider ($) $provider, $upstream, [$($($bug: $why),*)?]);)*
    };
    // `$d` is a `$`, so that the generated `case!` macro can have metavariables of its own.
    (@provider ($d:tt) $provider:ident, $upstream:ty, [$($bug:ident: $why:literal),*]) => {
        mod $provider {
            use super::*;

            macro_rules! case {
                $(($bug) => {
                    #[tokio::test]
                    #[ignore = $why]
                    async fn $bug() { super::$bug::<$upstream>().await }
                };)*
                ($d case:ident) => {
                    #[tokio::test]
                    async fn $d case() { super::$d case::<$upstream>().await }
                };
            }

            case!(text);
            case!(stream);
            case!(tools);
            case!(image);
            case!(usage_with_cache);
            case!(rate_limited_fails_over);
            case!(server_error);
            case!(garbage_body);
            case!(wrong_shape_body);
            case!(stream_dropped);
            case!(stream_stalled);
            case!(client_hangs_up);
        }
    };
}

conformance! {
    openai: OpenAi,
    azure: Azure,
    bedrock: Bedrock,
    anthropic: Anthropic,
}
