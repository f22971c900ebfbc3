//! The OpenAI Responses API through the real binary with the official OpenAI Python SDK
//! (`tests/python/responses_*.py`, installed by `.ci/run`): `responses.create`, the
//! `responses.stream()` helper assembling the final response from the proxy's events, a
//! function-call round trip with a strict tool, `text.format` json_schema, and stored
//! responses (retrieve, input items, delete, `previous_response_id`) on OpenAI-format and
//! Anthropic-format targets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use switchyard_e2e::conformance::{Anthropic, BedrockConverse, OpenAi, Stage, Upstream, SOLO};
use switchyard_e2e::python::{Auth, Scenario};
use switchyard_e2e::responses::{create, output_text};
use switchyard_e2e::{get, Proxy, ALPHA_KEY};

/// A scenario as team `alpha` on `model` (the OpenAI SDK takes the key as a bearer token).
fn scenario(proxy: &Proxy, script: &str, model: &str) -> Scenario {
    Scenario::new(script, &proxy.base_url(), ALPHA_KEY, Auth::AuthToken, model)
}

fn no_error(out: &Value) {
    assert!(out["error"].is_null(), "the SDK raised: {out}");
}

async fn create_and_stream<U: Upstream>() {
    let stage = Stage::<U>::start().await;
    let expected = stage.upstream.expected_answer("Hello there");
    let out = scenario(&stage.proxy, "responses_create.py", SOLO)
        .env("SCENARIO_PROMPT", "Hello there")
        .run()
        .await;
    no_error(&out);
    let response = &out["response"];
    assert_eq!(response["sdk_output_text"], expected.as_str(), "{response}");
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], SOLO);
    assert!(response["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let out = scenario(&stage.proxy, "responses_stream.py", SOLO)
        .env("SCENARIO_PROMPT", "Hello there")
        .run()
        .await;
    no_error(&out);
    let response = &out["response"];
    assert_eq!(
        response["sdk_output_text"],
        expected.as_str(),
        "get_final_response() assembled the simulator's answer: {out}"
    );
    assert_eq!(out["deltas"], expected.as_str());
    let types: Vec<&str> = out["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"response.created"), "{types:?}");
    assert_eq!(types.last(), Some(&"response.completed"), "{types:?}");
    assert!(types.contains(&"response.output_text.done"), "{types:?}");
}

#[tokio::test]
async fn create_and_stream_on_an_openai_target() {
    create_and_stream::<OpenAi>().await;
}

#[tokio::test]
async fn create_and_stream_on_an_anthropic_target() {
    create_and_stream::<Anthropic>().await;
}

#[tokio::test]
async fn create_and_stream_on_bedrock_converse() {
    create_and_stream::<BedrockConverse>().await;
}

#[tokio::test]
async fn a_function_call_round_trip_with_a_strict_tool() {
    let stage = Stage::<OpenAi>::start().await;
    let out = scenario(&stage.proxy, "responses_tools.py", SOLO)
        .run()
        .await;
    no_error(&out);
    let call = &out["first"]["output"][0];
    assert_eq!(call["type"], "function_call", "{out}");
    assert_eq!(call["name"], "get_weather");
    assert!(out["arguments"]["city"].is_string(), "{out}");
    assert_eq!(
        out["second"]["sdk_output_text"], "The tool said: 18C and sunny",
        "the OpenAI simulator answers a tool result with its content: {out}"
    );
    let seen = stage.upstream.seen_tool_exchange().unwrap();
    assert_eq!(seen.call_id, call["call_id"].as_str().unwrap());
    assert_eq!(seen.result_id, seen.call_id);
}

#[tokio::test]
async fn a_json_schema_format_is_accepted_and_echoed() {
    let stage = Stage::<OpenAi>::start().await;
    let out = scenario(&stage.proxy, "responses_json.py", SOLO)
        .run()
        .await;
    no_error(&out);
    let format = &out["response"]["text"]["format"];
    assert_eq!(format["type"], "json_schema", "{out}");
    assert_eq!(format["name"], "place");
    assert_eq!(format["strict"], true);
}

/// The SDK's `responses.retrieve`, `input_items.list` and `delete` of a stored turn
/// (tests/python/responses_state.py); once deleted, retrieve is the SDK's `NotFoundError`.
#[tokio::test]
async fn a_stored_response_is_retrieved_listed_and_deleted() {
    let stage = Stage::<OpenAi>::start().await;
    let first = create(
        &stage.proxy,
        ALPHA_KEY,
        &json!({"model": SOLO, "input": "first question"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    let id = first["id"].as_str().unwrap();
    let sdk = |action: &str| {
        scenario(&stage.proxy, "responses_state.py", SOLO)
            .env("SCENARIO_ID", id)
            .env("SCENARIO_ACTION", action)
    };
    let out = sdk("retrieve").run().await;
    no_error(&out);
    assert_eq!(out["response"]["id"], id);
    assert_eq!(
        out["response"]["sdk_output_text"],
        output_text(&first).as_str()
    );

    let out = sdk("input_items").run().await;
    no_error(&out);
    let items = out["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{out}");
    assert_eq!(items[0]["type"], "message");
    assert_eq!(items[0]["role"], "user");
    assert_eq!(items[0]["content"][0]["text"], "first question", "{out}");

    let out = sdk("delete").run().await;
    assert_eq!(out["deleted"], true, "{out}");
    let out = sdk("retrieve").run().await;
    assert_eq!(out["error"]["exception"], "NotFoundError", "{out}");
    assert_eq!(out["error"]["status"], 404);
    let got = get(
        &stage.proxy.url(&format!("/responses/{id}")),
        Some(ALPHA_KEY),
    )
    .await;
    assert_eq!(got.status, 404, "{}", got.body);
}
