//! The OpenAI Responses API (`POST /v1/responses`) through the real binary with raw HTTP, on
//! every provider kind: answers and streams in the Responses shape (the stream checked as the
//! official SDK's helper reads it), function calls and their outputs, `text.format`, a
//! stream failing after its first byte (`response.failed`), built-in tools refused naming the
//! tool; and the conversation state the proxy keeps: `previous_response_id` chains across
//! provider kinds, `store: false`, other teams, retention, restarts and a shared PostgreSQL,
//! usage metered once per turn.
//!
//! `responses!` runs the per-kind cases against each kind, as the conformance list does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use switchyard_e2e::conformance::{
    Anthropic, Azure, BedrockConverse, OpenAi, Stage, Trouble, Upstream, BACKUP, PAIR, PRIMARY,
    SOLO,
};
use switchyard_e2e::responses::{assembled, create, create_stream, items, names, output_text};
use switchyard_e2e::{get, Proxy, Sims, ALPHA_KEY};

const HELLO: &str = "hello there";

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}])
}

// ----- the cases every provider kind runs -----

/// A plain answer: the Response object with minted ids, the client's model, usage.
async fn text<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let reply = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": HELLO,
        "instructions": "Be brief.", "metadata": {"case": "text"}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some(PRIMARY));
    let response = reply.json();
    println!("{response}");
    assert!(
        response["id"].as_str().unwrap().starts_with("resp_"),
        "{response}"
    );
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], SOLO);
    assert_eq!(response["instructions"], "Be brief.");
    assert_eq!(response["metadata"], json!({"case": "text"}));
    assert!(response["created_at"].as_u64().unwrap() > 0);
    assert_eq!(
        output_text(&response),
        stage.upstream.expected_answer(HELLO)
    );
    let message = items(&response, "message")[0];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["role"], "assistant");
    let usage = &response["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(
        usage["input_tokens_details"]["cached_tokens"].is_u64(),
        "{usage}"
    );
    assert!(
        usage["output_tokens_details"]["reasoning_tokens"].is_u64(),
        "{usage}"
    );
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap())
    );
}

/// A stream in the SDK's event order whose assembled text is the plain answer's.
async fn stream<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let (reply, events) = create_stream(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": HELLO}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.cut.is_none(), "{:?}", reply.cut);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let names = names(&events);
    println!("{names:?}");
    assert_eq!(names[1], "response.in_progress");
    assert_eq!(names.last().map(String::as_str), Some("response.completed"));
    for expected in [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    let response = assembled(&events);
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], SOLO);
    assert_eq!(
        output_text(&response),
        stage.upstream.expected_answer(HELLO)
    );
    assert!(
        response["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{response}"
    );
    assert_eq!(events[0]["response"]["id"], response["id"]);
}

/// A function call, plain and streamed, then its output sent back: the upstream gets the
/// call and the result with the same call id.
async fn function_call_round_trip<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let first = json!({"model": SOLO, "input": "What is the weather in Paris?",
        "tools": weather_tool()});
    let reply = create(&stage.proxy, ALPHA_KEY, &first).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let response = reply.json();
    println!("{response}");
    let calls = items(&response, "function_call");
    assert_eq!(calls.len(), 1, "{response}");
    let call = calls[0].clone();
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(arguments.is_object(), "{arguments}");

    let (_, events) = create_stream(&stage.proxy, ALPHA_KEY, &first).await;
    let streamed = assembled(&events);
    let names = names(&events);
    assert!(
        names
            .iter()
            .any(|n| n == "response.function_call_arguments.done"),
        "{names:?}"
    );
    assert_eq!(items(&streamed, "function_call")[0]["name"], "get_weather");

    let second = json!({"model": SOLO, "tools": weather_tool(), "input": [
        {"role": "user", "content": "What is the weather in Paris?"},
        call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "18C and sunny"}]});
    let reply = create(&stage.proxy, ALPHA_KEY, &second).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = stage
        .upstream
        .seen_tool_exchange()
        .expect("the upstream got the exchange");
    assert_eq!(seen.result, "18C and sunny");
    assert_eq!(
        seen.call_id, seen.result_id,
        "the call and its result keep one id"
    );
}

/// A stream cut after its first events ends with `response.failed`, never `completed`.
async fn stream_failure<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    stage.upstream.inject(Trouble::DropAfter(2));
    let (reply, events) = create_stream(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": HELLO}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let names = names(&events);
    println!("{names:?}");
    assert_eq!(names.first().map(String::as_str), Some("response.created"));
    assert_eq!(
        names.last().map(String::as_str),
        Some("response.failed"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "response.completed"));
    let failed = assembled(&events);
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"]["code"].is_string(), "{failed}");
    assert!(failed["error"]["message"].is_string(), "{failed}");
}

macro_rules! responses {
    ($($name:ident: $upstream:ty),* $(,)?) => {
        $(mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test]
            async fn text() { super::text::<$upstream>().await }
            #[tokio::test]
            async fn stream() { super::stream::<$upstream>().await }
            #[tokio::test]
            async fn function_call_round_trip() {
                super::function_call_round_trip::<$upstream>().await
            }
            #[tokio::test]
            async fn stream_failure() { super::stream_failure::<$upstream>().await }
        })*
    };
}

responses! {
    openai: OpenAi,
    azure: Azure,
    bedrock_converse: BedrockConverse,
    anthropic: Anthropic,
}

/// `text.format` json_schema reaches an OpenAI-format upstream as Chat's `response_format`
/// and is echoed in the response.
#[tokio::test]
async fn json_schema_format_reaches_the_upstream() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
        "required": ["city"], "additionalProperties": false});
    let reply = create(
        &proxy,
        ALPHA_KEY,
        &json!({"model": "chat", "input": HELLO,
        "text": {"format": {"type": "json_schema", "name": "place", "schema": schema,
            "strict": true}}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let response = reply.json();
    assert_eq!(response["text"]["format"]["type"], "json_schema");
    assert_eq!(response["text"]["format"]["name"], "place");
    let body = sims.a.stats().last_body.expect("sim-a got the request");
    println!("sim-a got {body}");
    assert_eq!(body["model"], "up-a");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["name"], "place");
    assert_eq!(body["response_format"]["json_schema"]["schema"], schema);
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert!(
        body.get("store").is_none(),
        "Chat upstreams get no Responses members"
    );
}

/// Built-in tools are a 400 naming the tool where the model does not allow them.
#[tokio::test]
async fn a_builtin_tool_is_refused_naming_it() {
    let stage = Stage::<OpenAi>::start().await;
    let before = stage.upstream.model_requests();
    let reply = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": HELLO,
        "tools": [{"type": "function", "name": "f"}, {"type": "web_search_preview"}]}),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let error = reply.error();
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], "tools[1]");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("web_search_preview"),
        "{error}"
    );
    assert_eq!(
        stage.upstream.model_requests(),
        before,
        "nothing was sent upstream"
    );
}

/// Bad requests are OpenAI-style 400s naming the parameter.
#[tokio::test]
async fn invalid_requests_name_the_parameter() {
    let stage = Stage::<OpenAi>::start().await;
    for (body, param) in [
        (json!({"model": SOLO}), "input"),
        (
            json!({"model": SOLO, "input": HELLO, "max_output_tokens": 2}),
            "max_output_tokens",
        ),
        (
            json!({"model": SOLO, "input": [{"type": "function_call", "name": "f"}]}),
            "input",
        ),
        (
            json!({"model": SOLO, "input": HELLO, "tool_choice": {"type": "function", "name": "x"}}),
            "tool_choice.name",
        ),
    ] {
        let reply = create(&stage.proxy, ALPHA_KEY, &body).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.error()["param"], param, "{}", reply.body);
    }
    let reply = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": HELLO,
        "previous_response_id": "resp_unknown"}),
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    let error = reply.error();
    assert_eq!(error["code"], "previous_response_not_found");
    assert_eq!(error["param"], "previous_response_id");
}

// ----- conversation state -----

/// The text of every message of a Chat or Converse request body, in order.
fn texts_of(body: &Value) -> String {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A three-turn `previous_response_id` chain whose second turn fails over from Bedrock
/// (Converse) to an OpenAI-compatible upstream, which receives the whole earlier
/// conversation; the third turn is back on Bedrock with all of it. Each turn is metered once.
#[tokio::test]
async fn a_chain_continues_on_another_provider_kind() {
    let stage = Stage::<BedrockConverse>::start().await;
    let first = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": PAIR,
        "input": "first question"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-switchyard-provider"), Some(PRIMARY));
    let first = first.json();
    let first_answer = output_text(&first);

    stage.upstream.inject(Trouble::RateLimited);
    let second = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": PAIR,
        "input": "second question", "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.header("x-switchyard-provider"), Some(BACKUP));
    let second = second.json();
    assert_eq!(second["previous_response_id"], first["id"]);
    let seen = stage
        .backup
        .stats()
        .last_body
        .expect("the backup got turn 2");
    let seen_text = texts_of(&seen);
    println!("the OpenAI-compatible backup got: {seen_text}");
    assert!(seen_text.contains("first question"), "{seen_text}");
    assert!(seen_text.contains(&first_answer), "{seen_text}");
    assert!(seen_text.contains("second question"), "{seen_text}");
    assert!(seen.get("previous_response_id").is_none() && seen.get("store").is_none());

    let third = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": PAIR,
        "input": "third question", "previous_response_id": second["id"]}),
    )
    .await;
    assert_eq!(third.status, 200, "{}", third.body);
    // The primary may still be cooling down from its throttle: whoever serves gets it all.
    if third.header("x-switchyard-provider") == Some(BACKUP) {
        let body = stage
            .backup
            .stats()
            .last_body
            .expect("the backup got turn 3");
        let seen_text = texts_of(&body);
        for said in ["first question", "second question", "third question"] {
            assert!(seen_text.contains(said), "{said} missing: {seen_text}");
        }
    }
    let third = third.json();
    let spend = stage.spend_after(3).await;
    assert_eq!(
        spend["requests"], 3,
        "one metered request per turn: {spend}"
    );

    let got = get(
        &stage
            .proxy
            .url(&format!("/responses/{}", third["id"].as_str().unwrap())),
        Some(ALPHA_KEY),
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["id"], third["id"]);
    assert_eq!(output_text(&got.json()), output_text(&third));
}

/// `store: false` keeps nothing: GET is a 404 and the id cannot be continued; a streamed
/// turn is stored by the time its `response.completed` arrives.
#[tokio::test]
async fn store_false_keeps_nothing_and_streams_are_stored_before_they_complete() {
    let stage = Stage::<OpenAi>::start().await;
    let reply = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": HELLO,
        "store": false}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let response = reply.json();
    assert_eq!(response["store"], false);
    let id = response["id"].as_str().unwrap();
    let got = get(
        &stage.proxy.url(&format!("/responses/{id}")),
        Some(ALPHA_KEY),
    )
    .await;
    assert_eq!(got.status, 404, "{}", got.body);
    let next = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": "more",
        "previous_response_id": id}),
    )
    .await;
    assert_eq!(next.status, 404, "{}", next.body);
    assert_eq!(next.error()["code"], "previous_response_not_found");

    let (_, events) = create_stream(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": HELLO}),
    )
    .await;
    let streamed = assembled(&events);
    let id = streamed["id"].as_str().unwrap();
    let got = get(
        &stage.proxy.url(&format!("/responses/{id}")),
        Some(ALPHA_KEY),
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(output_text(&got.json()), output_text(&streamed));
    let items = get(
        &stage.proxy.url(&format!("/responses/{id}/input_items")),
        Some(ALPHA_KEY),
    )
    .await;
    assert_eq!(items.status, 200, "{}", items.body);
    let data = items.json()["data"].clone();
    assert_eq!(data.as_array().map(Vec::len), Some(1), "{data}");
    assert!(
        data[0]["id"].as_str().unwrap().starts_with("msg_"),
        "{data}"
    );
}
