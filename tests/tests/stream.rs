//! Streaming chat through the proxy: SDK and raw SSE views, usage handling, streamed tool
//! calls, and streams that break after their first byte reached the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionResponseStream, CreateChatCompletionRequest, CreateChatCompletionStreamResponse,
};
use futures_util::StreamExt;
use loadtest::{answer_text, Fault};
use serde_json::{json, Value};
use switchyard_e2e::{
    error_of, one_sim_routes, post_stream, within, Proxy, Sims, StreamReply, ALPHA_KEY,
};

fn chat_request(body: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(body).expect("a valid chat request")
}

fn streamed_hello() -> Value {
    json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

/// Drains an SDK stream: the chunks it yielded, and the first error (after which it stops).
async fn drain(
    mut stream: ChatCompletionResponseStream,
) -> (Vec<CreateChatCompletionStreamResponse>, Option<OpenAIError>) {
    let mut chunks = Vec::new();
    while let Some(item) = within(stream.next()).await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(error) => return (chunks, Some(error)),
        }
    }
    (chunks, None)
}

fn text_of(chunks: &[CreateChatCompletionStreamResponse]) -> String {
    chunks
        .iter()
        .flat_map(|chunk| &chunk.choices)
        .filter_map(|choice| choice.delta.content.as_deref())
        .collect()
}

#[tokio::test]
async fn stream_through_the_sdk_concatenates_and_hides_the_usage_it_asked_for() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let client = proxy.openai(ALPHA_KEY);

    println!("a stream without stream_options");
    let stream = within(client.chat().create_stream(chat_request(streamed_hello())))
        .await
        .expect("the stream starts");
    let (chunks, error) = drain(stream).await;
    assert!(error.is_none(), "stream failed: {error:?}");
    println!("{} chunks", chunks.len());
    assert_eq!(text_of(&chunks), answer_text("sim-a", 8));
    for chunk in &chunks {
        assert!(
            !chunk.choices.is_empty(),
            "a usage-only chunk reached a client that did not ask: {chunk:?}"
        );
        assert_eq!(chunk.model, "chat", "chunks carry the client's model name");
    }

    println!("…but the proxy asked the upstream for usage, to meter it");
    let stats = sims.a.stats();
    assert!(
        stats.include_usage_requested >= 1,
        "upstream was not asked for usage"
    );
    let upstream_body = stats.last_body.expect("a body");
    assert_eq!(
        upstream_body["stream_options"]["include_usage"],
        json!(true)
    );
    assert_eq!(upstream_body["model"], "up-a");
}

#[tokio::test]
async fn stream_with_include_usage_delivers_the_usage_chunk() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let client = proxy.openai(ALPHA_KEY);

    println!("a stream that asks for usage");
    let mut body = streamed_hello();
    body["stream_options"] = json!({"include_usage": true});
    let stream = within(client.chat().create_stream(chat_request(body)))
        .await
        .expect("stream");
    let (chunks, error) = drain(stream).await;
    assert!(error.is_none(), "stream failed: {error:?}");
    assert_eq!(text_of(&chunks), answer_text("sim-a", 8));
    let last = chunks.last().expect("at least one chunk");
    assert!(
        last.choices.is_empty(),
        "the usage chunk has no choices: {last:?}"
    );
    let usage = last.usage.clone().expect("usage on the last chunk");
    println!("usage: {usage:?}");
    assert_eq!(usage.completion_tokens, 8);
    assert!(usage.prompt_tokens > 0);
}

#[tokio::test]
async fn raw_sse_starts_with_the_assistant_role_and_ends_with_done() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed_hello(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.cut.is_none(), "the stream broke: {:?}", reply.cut);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/event-stream"),
        "content-type {content_type:?}"
    );
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-a"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("1"));
    assert!(reply
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));

    let events = reply.events();
    println!("{} events; first: {}", events.len(), events[0]);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "the stream ends with [DONE]"
    );
    let first: Value = serde_json::from_str(&events[0]).expect("first event is JSON");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let text: String = events[..events.len() - 1]
        .iter()
        .map(|event| {
            serde_json::from_str::<Value>(event).expect("every event before [DONE] is JSON")
        })
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, answer_text("sim-a", 8));
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}])
}

/// One tool call assembled from stream deltas.
#[derive(Debug, Default)]
struct AssembledCall {
    id: String,
    name: String,
    arguments: String,
}

#[tokio::test]
async fn tool_call_round_trip_streaming() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let client = proxy.openai(ALPHA_KEY);
    let question = json!({"role": "user", "content": "Weather in Oslo?"});

    println!("first turn, streamed: assemble the tool call from its deltas");
    let first = chat_request(
        json!({"model": "chat", "stream": true, "messages": [question], "tools": weather_tool()}),
    );
    let (chunks, error) = drain(
        within(client.chat().create_stream(first))
            .await
            .expect("stream"),
    )
    .await;
    assert!(error.is_none(), "stream failed: {error:?}");
    let mut calls: BTreeMap<u32, AssembledCall> = BTreeMap::new();
    for choice in chunks.iter().flat_map(|chunk| &chunk.choices) {
        for delta in choice.delta.tool_calls.iter().flatten() {
            let call = calls.entry(delta.index).or_default();
            if let Some(id) = &delta.id {
                call.id.push_str(id);
            }
            if let Some(function) = &delta.function {
                call.name
                    .push_str(function.name.as_deref().unwrap_or_default());
                call.arguments
                    .push_str(function.arguments.as_deref().unwrap_or_default());
            }
        }
    }
    println!("assembled: {calls:?}");
    assert_eq!(calls.len(), 1);
    let call = &calls[&0];
    assert!(!call.id.is_empty());
    assert_eq!(call.name, "get_weather");
    let arguments: Value =
        serde_json::from_str(&call.arguments).expect("arguments are JSON once assembled");
    assert!(arguments.get("city").is_some(), "{arguments}");

    println!("second turn, streamed: the tool result comes back");
    let second = chat_request(
        json!({"model": "chat", "stream": true, "tools": weather_tool(), "messages": [
            question,
            {"role": "assistant", "tool_calls": [{"id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": call.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "minus 3 and snowing"},
        ]}),
    );
    let (chunks, error) = drain(
        within(client.chat().create_stream(second))
            .await
            .expect("stream"),
    )
    .await;
    assert!(error.is_none(), "stream failed: {error:?}");
    let text = text_of(&chunks);
    println!("final answer: {text}");
    assert!(text.contains("The tool said:"), "{text}");
    assert!(text.contains("minus 3 and snowing"), "{text}");
}

/// A broken stream must end in an OpenAI-style error event, never in `[DONE]`.
fn assert_ends_with_error_event(reply: &StreamReply) {
    let events = reply.events();
    println!(
        "status {}, {} events, cut: {:?}",
        reply.status,
        events.len(),
        reply.cut
    );
    for event in &events {
        println!("  data: {event}");
    }
    assert!(
        !events.iter().any(|event| event == "[DONE]"),
        "a broken stream must not claim [DONE]"
    );
    let last = events.last().expect("at least one event");
    let error =
        error_of(last).unwrap_or_else(|why| panic!("the last event is not an error event: {why}"));
    assert!(
        error.get("message").is_some_and(Value::is_string),
        "error event without a message: {error}"
    );
}

#[tokio::test]
async fn stream_dropped_mid_way_ends_with_an_error_event_and_no_failover() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    println!("sim-a sends two content chunks, then drops the connection");
    sims.a
        .push_faults([Fault::DropMidStream { after_chunks: 2 }]);
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed_hello(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_ends_with_error_event(&reply);

    let events = reply.events();
    let content: String = events
        .iter()
        .filter_map(|event| serde_json::from_str::<Value>(event).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    println!("content before the break: {content:?}");
    assert_eq!(
        content,
        answer_text("sim-a", 2),
        "the chunks sent before the break reach the client"
    );
    assert_eq!(
        sims.b.stats().requests,
        0,
        "no failover once bytes reached the client"
    );
}

#[tokio::test]
async fn stream_dropped_mid_way_is_an_error_for_the_sdk() {
    let sim = switchyard_e2e::start_sim("sim-a", switchyard_e2e::UPSTREAM_KEY_A).await;
    let proxy = Proxy::start(&one_sim_routes(&sim.base_url(), "")).await;
    let client = proxy.openai(ALPHA_KEY);

    println!("only sim-a, which drops the stream after two chunks");
    sim.push_faults([Fault::DropMidStream { after_chunks: 2 }]);
    let stream = within(client.chat().create_stream(chat_request(streamed_hello())))
        .await
        .expect("the stream starts");
    let (chunks, error) = drain(stream).await;
    println!("{} chunks, then {error:?}", chunks.len());
    assert!(
        error.is_some(),
        "the SDK must see an error, not a silently truncated answer"
    );
    assert_eq!(text_of(&chunks), answer_text("sim-a", 2));
}

#[tokio::test]
async fn garbage_stream_is_never_passed_off_as_complete() {
    let sim = switchyard_e2e::start_sim("sim-a", switchyard_e2e::UPSTREAM_KEY_A).await;
    let proxy = Proxy::start(&one_sim_routes(&sim.base_url(), "")).await;

    println!("sim-a answers 200 with SSE lines that are not JSON");
    sim.push_faults([Fault::Garbage]);
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed_hello(),
    )
    .await;
    if reply.status == 200 {
        assert_ends_with_error_event(&reply);
    } else {
        println!("refused before streaming: {} {}", reply.status, reply.body);
        assert!(
            reply.status >= 500,
            "an upstream fault is a 5xx, got {}",
            reply.status
        );
        error_of(&reply.body).unwrap_or_else(|why| panic!("{why}"));
    }

    println!("the proxy still serves the next stream");
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed_hello(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.events().last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn stream_stalled_mid_way_ends_with_an_error_event_by_the_deadline() {
    let sim = switchyard_e2e::start_sim("sim-a", switchyard_e2e::UPSTREAM_KEY_A).await;
    let proxy = Proxy::start(
        &one_sim_routes(&sim.base_url(), "").replace("request_timeout: 10s", "request_timeout: 3s"),
    )
    .await;

    println!("sim-a sends two chunks, then stalls forever; request_timeout is 3s");
    sim.push_faults([Fault::HangMidStream { after_chunks: 2 }]);
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed_hello(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_ends_with_error_event(&reply);
}

/// docs/architecture.md#quality-bars: a client that disconnects mid-stream must not leak
/// the upstream request or lose the spend of what was produced.
#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_cancels_the_upstream_and_is_still_metered() {
    let sim = loadtest::OpenAiSim::start(loadtest::SimConfig {
        name: "sim-a".to_owned(),
        api_key: Some(switchyard_e2e::UPSTREAM_KEY_A.to_owned()),
        output_tokens: 200,
        inter_token: std::time::Duration::from_millis(20),
        ..loadtest::SimConfig::default()
    })
    .await
    .unwrap();
    let proxy = Proxy::start(&one_sim_routes(&sim.base_url(), "")).await;
    let response = switchyard_e2e::http_client()
        .post(proxy.url("/chat/completions"))
        .bearer_auth(ALPHA_KEY)
        .json(&streamed_hello())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = 0;
    while received < 3 {
        let chunk = within(body.next()).await.expect("a chunk").unwrap();
        received += String::from_utf8_lossy(&chunk).matches("data: ").count();
    }
    println!("client read {received} events of a 200-token stream, then hangs up");
    drop(body);

    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = switchyard_e2e::get(&proxy.admin("/metrics"), None)
            .await
            .body;
        if metrics.contains("status=\"client_closed\"") && sim.in_flight() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sim.in_flight(), 0, "the upstream stream was cancelled");
    assert!(
        metrics.contains("switchyard_requests_total{api=\"chat\",model=\"chat\",provider=\"sim-a\",status=\"client_closed\",team=\"alpha\"} 1"),
        "{metrics}"
    );
    let output: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_tokens_total") && l.contains("kind=\"output\""))
        .collect();
    println!("{output:?}");
    assert_eq!(output.len(), 1, "what was produced is metered");
    let tokens: f64 = output[0].rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (2.0..200.0).contains(&tokens),
        "metered {tokens} of the 200 tokens"
    );
}
