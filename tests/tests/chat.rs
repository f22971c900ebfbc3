//! Non-streaming chat, tools, embeddings and the model list through the proxy, checked from
//! the client's side (async-openai and raw HTTP) and from the upstream's side (sim stats).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, CreateChatCompletionRequest, FinishReason,
};
use async_openai::types::embeddings::CreateEmbeddingRequest;
use loadtest::answer_text;
use serde_json::{json, Value};
use switchyard_e2e::{post, post_json, within, Proxy, Sims, ALPHA_KEY, UPSTREAM_KEY_A};

fn chat_request(body: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(body).expect("a valid chat request")
}

fn hello() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn chat_completion_through_the_sdk_answers_under_the_client_model_name() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let client = proxy.openai(ALPHA_KEY);

    println!("a plain chat completion for model `chat`");
    let response = within(client.chat().create(chat_request(hello())))
        .await
        .expect("the proxy answers a chat completion");

    println!("the answer is sim-a's, labelled with the name the client asked for");
    assert_eq!(
        response.model, "chat",
        "response.model must be the client's model name"
    );
    let content = response.choices[0]
        .message
        .content
        .clone()
        .expect("content");
    assert_eq!(content, answer_text("sim-a", 8));
    let usage = response.usage.expect("usage on a non-streamed completion");
    assert_eq!(usage.completion_tokens, 8);
    assert_eq!(sims.b.stats().requests, 0, "sim-b is only a fallback");
}

#[tokio::test]
async fn chat_response_headers_carry_request_id_provider_attempts_and_cost() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let url = proxy.url("/chat/completions");

    println!("a request with its own x-request-id gets it echoed");
    let reply = post(
        &url,
        Some(ALPHA_KEY),
        hello().to_string(),
        &[("x-request-id", "e2e-request-42")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-request-id"), Some("e2e-request-42"));
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-a"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("1"));

    println!("the cost header is a plain decimal equal to usage × price");
    let cost_text = reply
        .header("x-switchyard-cost-usd")
        .expect("x-switchyard-cost-usd");
    assert!(
        !cost_text.is_empty() && cost_text.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "cost must be a plain decimal, got {cost_text:?}"
    );
    let cost: f64 = cost_text.parse().expect("cost parses as a number");
    let usage = &reply.json()["usage"];
    let prompt = usage["prompt_tokens"].as_f64().expect("prompt_tokens");
    let completion = usage["completion_tokens"]
        .as_f64()
        .expect("completion_tokens");
    let expected = (prompt * 1.0 + completion * 2.0) / 1e6;
    println!("usage {prompt} in / {completion} out → expected {expected}, header says {cost_text}");
    assert!(cost > 0.0);
    assert!(
        (cost - expected).abs() < 1e-12,
        "cost {cost} != expected {expected}"
    );

    println!("a request without x-request-id gets a fresh one");
    let reply = post_json(&url, Some(ALPHA_KEY), &hello()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let generated = reply
        .header("x-request-id")
        .expect("a generated x-request-id");
    assert!(!generated.trim().is_empty());
    assert_ne!(generated, "e2e-request-42");
}

#[tokio::test]
async fn upstream_sees_its_own_model_and_key_and_unknown_fields_untouched() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    println!("a request with fields the proxy does not know");
    let mut body = hello();
    body["seed"] = json!(7);
    body["x_vendor"] = json!({"a": 1});
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let stats = sims.a.stats();
    let upstream_body = stats.last_body.expect("sim-a saw a body");
    println!("sim-a saw: {upstream_body}");
    assert_eq!(
        upstream_body["model"], "up-a",
        "the upstream gets its own model id"
    );
    assert_eq!(
        upstream_body["seed"],
        json!(7),
        "unknown fields pass through"
    );
    assert_eq!(
        upstream_body["x_vendor"],
        json!({"a": 1}),
        "unknown fields pass through"
    );

    let authorization: Vec<&str> = stats
        .last_headers
        .iter()
        .filter(|(name, _)| name == "authorization")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(
        authorization,
        vec![format!("Bearer {UPSTREAM_KEY_A}").as_str()]
    );
    for (name, value) in &stats.last_headers {
        assert!(
            !value.contains(ALPHA_KEY),
            "the client key leaked upstream in header {name}"
        );
    }
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}])
}

#[tokio::test]
async fn tool_call_round_trip_non_streaming() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let client = proxy.openai(ALPHA_KEY);
    let question = json!({"role": "user", "content": "What is the weather in Paris?"});

    println!("first turn: the model calls get_weather");
    let first =
        chat_request(json!({"model": "chat", "messages": [question], "tools": weather_tool()}));
    let response = within(client.chat().create(first))
        .await
        .expect("first turn");
    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls.clone().expect("tool_calls");
    let ChatCompletionMessageToolCalls::Function(call) = &calls[0] else {
        panic!("expected a function tool call, got {calls:?}");
    };
    assert!(!call.id.is_empty(), "a tool call has an id");
    assert_eq!(call.function.name, "get_weather");
    let arguments: Value = serde_json::from_str(&call.function.arguments).expect("JSON arguments");
    assert!(
        arguments.get("city").is_some(),
        "arguments name the city: {arguments}"
    );

    println!("second turn: the tool's answer goes back with the call id");
    let second = chat_request(
        json!({"model": "chat", "tools": weather_tool(), "messages": [
            question,
            {"role": "assistant", "tool_calls": [{"id": call.id, "type": "function",
                "function": {"name": "get_weather", "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
        ]}),
    );
    let response = within(client.chat().create(second))
        .await
        .expect("second turn");
    let content = response.choices[0]
        .message
        .content
        .clone()
        .expect("final content");
    println!("final answer: {content}");
    assert!(content.contains("The tool said:"), "{content}");
    assert!(content.contains("18 degrees and sunny"), "{content}");
}

#[tokio::test]
async fn embeddings_through_the_sdk_return_float_vectors() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let client = proxy.openai(ALPHA_KEY);

    println!("two inputs to model `embed`, float encoding");
    let request: CreateEmbeddingRequest = serde_json::from_value(json!({
        "model": "embed", "input": ["hello", "world"], "encoding_format": "float"}))
    .expect("a valid embeddings request");
    let response = within(client.embeddings().create(request))
        .await
        .expect("embeddings");
    println!(
        "model {:?}, {} vectors",
        response.model,
        response.data.len()
    );
    assert_eq!(response.data.len(), 2);
    for (index, item) in response.data.iter().enumerate() {
        assert_eq!(item.index as usize, index);
        assert!(!item.embedding.is_empty());
    }
    assert!(response.usage.prompt_tokens > 0);

    let stats = sims.a.stats();
    assert_eq!(stats.embedding_requests, 1);
    assert_eq!(stats.last_body.expect("a body")["model"], "emb-a");
}

#[tokio::test]
async fn model_list_shows_only_the_team_models() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let client = proxy.openai(ALPHA_KEY);

    let list = within(client.models().list())
        .await
        .expect("GET /v1/models");
    let mut ids: Vec<String> = list.data.into_iter().map(|model| model.id).collect();
    ids.sort();
    println!("team alpha sees {ids:?}");
    assert_eq!(
        ids,
        vec!["chat".to_owned(), "embed".to_owned()],
        "`other` is not in alpha's allow-list"
    );
    assert_eq!(list.object, "list");

    println!("one model by name; a model outside the allow-list is 403, an unknown one 404");
    let one = within(client.models().retrieve("chat"))
        .await
        .expect("GET /v1/models/chat");
    assert_eq!(one.id, "chat");
    assert!(within(client.models().retrieve("other")).await.is_err());
    let missing = switchyard_e2e::get(&proxy.url("/models/nope"), Some(ALPHA_KEY)).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error()["code"], "model_not_found");
    let denied = switchyard_e2e::get(&proxy.url("/models/other"), Some(ALPHA_KEY)).await;
    assert_eq!(denied.status, 403);
}

/// Issue 15, item 4: an `x-request-id` that could forge fields of a text log line is not
/// echoed or logged; the request gets a fresh id and a header saying it was replaced.
#[tokio::test]
async fn a_forged_request_id_is_replaced_and_never_logged() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let forged = "FORGED team=beta cost_usd=0.0";

    println!("a request whose x-request-id holds spaces and `=` gets a fresh id");
    let reply = post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        hello().to_string(),
        &[("x-request-id", forged)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.header("x-request-id").expect("an x-request-id");
    assert_ne!(id, forged);
    assert!(
        id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
        "a fresh uuid, got {id:?}"
    );
    assert_eq!(
        reply.header("x-switchyard-request-id-replaced"),
        Some("true")
    );

    println!("the access log names the fresh id, never the forged text");
    let log = proxy.log_when(|log| log.contains(id)).await;
    assert!(log.contains(id), "the access log line never came:\n{log}");
    assert!(
        !log.contains("FORGED"),
        "the forged id reached the log:\n{log}"
    );

    println!("a plain id is still echoed, and not flagged");
    let reply = post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        hello().to_string(),
        &[("x-request-id", "trace-7f3a:span/2")],
    )
    .await;
    assert_eq!(reply.header("x-request-id"), Some("trace-7f3a:span/2"));
    assert_eq!(reply.header("x-switchyard-request-id-replaced"), None);
}

/// Lines of requests served together are gathered and written per scheduler round
/// (docs/operations.md, "Logs"): every request still gets its whole line, none torn or
/// merged with another's, and they come without waiting for more traffic.
#[tokio::test]
async fn concurrent_requests_each_get_one_whole_access_line() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    const REQUESTS: usize = 64;
    let url = proxy.url("/chat/completions");
    futures_util::future::join_all((0..REQUESTS).map(|i| {
        let url = url.clone();
        async move {
            let id = format!("gathered-{i:03}");
            let reply = post(
                &url,
                Some(ALPHA_KEY),
                hello().to_string(),
                &[("x-request-id", id.as_str())],
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    }))
    .await;

    let access_lines = |log: &str| {
        log.lines()
            .filter(|line| line.contains("switchyard::access") && line.contains("gathered-"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let log = proxy
        .log_when(|log| access_lines(log).len() >= REQUESTS)
        .await;
    let lines = access_lines(&log);
    assert_eq!(lines.len(), REQUESTS, "{lines:#?}");
    for i in 0..REQUESTS {
        let id = format!("request_id=gathered-{i:03} ");
        let mine: Vec<_> = lines.iter().filter(|line| line.contains(&id)).collect();
        assert_eq!(mine.len(), 1, "one line for {id}: {mine:#?}");
        assert_eq!(
            mine[0].matches("request_id=").count(),
            1,
            "one request per line: {}",
            mine[0]
        );
        assert!(mine[0].contains("status=200"), "{}", mine[0]);
    }
}
