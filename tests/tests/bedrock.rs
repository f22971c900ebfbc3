//! Bedrock targets end to end: the real binary signs with SigV4 against the Bedrock simulator
//! (which verifies every signature and Bedrock's Converse rules), driven by async-openai.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_openai::types::chat::CreateChatCompletionRequest;
use async_openai::types::embeddings::CreateEmbeddingRequest;
use futures_util::StreamExt;
use loadtest::{BedrockFault, BedrockSim, BedrockSimConfig};
use serde_json::{json, Value};
use switchyard_e2e::{error_of, policy, post_json, post_stream, within, Proxy, ALPHA_KEY};

const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const PROFILE_ARN: &str =
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";

struct Setup {
    a: BedrockSim,
    b: BedrockSim,
    proxy: Proxy,
}

fn provider(name: &str, sim: &BedrockSim, secret: &str) -> String {
    let c = sim.config();
    format!(
        "  {name}: {{ kind: bedrock, region: {}, endpoint: \"{}\", access_key_id: {}, secret_access_key: \"{secret}\", session_token: \"session-token-e2e\" }}\n",
        c.region,
        sim.endpoint(),
        c.access_key_id
    )
}

async fn setup() -> Setup {
    let a = BedrockSim::start(BedrockSimConfig::new("bedrock-a"))
        .await
        .unwrap();
    let b = BedrockSim::start(BedrockSimConfig::new("bedrock-b"))
        .await
        .unwrap();
    let providers = format!(
        "{}{}{}",
        provider("aws-a", &a, &a.config().secret_access_key),
        provider("aws-b", &b, &b.config().secret_access_key),
        provider("aws-wrong", &a, "not-the-secret"),
    );
    let models = format!(
        r#"  claude:
    targets:
      - {{ provider: aws-a, model: "{HAIKU}", additional_model_request_fields: {{ top_k: 50 }} }}
      - {{ provider: aws-b, model: "{PROFILE_ARN}", price: {{ input: 1.0, output: 2.0 }} }}
  claude-a:
    targets:
      - {{ provider: aws-a, model: "{HAIKU}" }}
  titan:
    targets:
      - {{ provider: aws-a, model: "amazon.titan-embed-text-v2:0" }}
  cohere:
    targets:
      - {{ provider: aws-a, model: "cohere.embed-english-v3" }}
  wrong-key:
    targets:
      - {{ provider: aws-wrong, model: "{HAIKU}" }}
"#
    );
    let yaml = policy(
        "",
        &providers,
        &models,
        "[claude, claude-a, titan, cohere, wrong-key]",
    );
    let proxy = Proxy::start(&yaml).await;
    Setup { a, b, proxy }
}

fn chat(body: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(body).expect("a valid chat request")
}

#[tokio::test]
async fn chat_through_the_sdk_is_signed_mapped_and_answered_as_openai() {
    let s = setup().await;
    let client = s.proxy.openai(ALPHA_KEY);
    println!("a plain chat completion goes to Converse on the first target");
    let response = within(
        client
            .chat()
            .create(chat(json!({"model": "claude", "max_tokens": 64,
        "temperature": 0.5, "messages": [{"role": "system", "content": "be terse"},
        {"role": "user", "content": "hello there"}]}))),
    )
    .await
    .expect("the proxy answers");
    let response = serde_json::to_value(&response).unwrap();
    assert_eq!(response["model"], "claude");
    assert_eq!(
        response["choices"][0]["message"]["content"],
        "bedrock-a says: hello there"
    );
    assert_eq!(response["choices"][0]["finish_reason"], "stop");
    assert!(response["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    println!("the simulator saw a correctly encoded path, a mapped body and a valid signature");
    let stats = s.a.stats();
    assert_eq!(stats.signature_failures, 0);
    assert_eq!(
        stats.last_path.as_deref(),
        Some("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
    );
    let body = stats.last_body.unwrap();
    assert_eq!(body["system"], json!([{"text": "be terse"}]));
    assert_eq!(
        body["inferenceConfig"],
        json!({"maxTokens": 64, "temperature": 0.5})
    );
    assert_eq!(body["additionalModelRequestFields"], json!({"top_k": 50}));
}

#[tokio::test]
async fn stream_through_the_sdk_yields_role_text_finish_and_usage() {
    let s = setup().await;
    let client = s.proxy.openai(ALPHA_KEY);
    let mut stream = within(client.chat().create_stream(chat(json!({"model": "claude-a",
        "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "stream this please"}]}))))
    .await
    .expect("a stream");
    let mut chunks = Vec::new();
    while let Some(chunk) = within(stream.next()).await {
        chunks.push(serde_json::to_value(chunk.expect("no stream error")).unwrap());
    }
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "bedrock-a says: stream this please");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish: Vec<_> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, vec!["stop"]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        s.a.stats().last_path.as_deref(),
        Some("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
    );
}

#[tokio::test]
async fn multi_turn_tool_use_round_trips_ids_both_ways() {
    let s = setup().await;
    let client = s.proxy.openai(ALPHA_KEY);
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "description": "Current weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    println!("turn 1: the model calls the tool");
    let first = within(
        client
            .chat()
            .create(chat(json!({"model": "claude-a", "tools": tools,
        "messages": [{"role": "user", "content": "what's the weather in Paris?"}]}))),
    )
    .await
    .unwrap();
    let first = serde_json::to_value(&first).unwrap();
    let call = &first["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    let id = call["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tooluse_"));

    println!("turn 2: the tool's result goes back under the same id");
    let second = within(
        client
            .chat()
            .create(chat(json!({"model": "claude-a", "tools": tools,
        "messages": [{"role": "user", "content": "what's the weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": id, "content": "18C and sunny"}]}))),
    )
    .await
    .expect("Bedrock accepts the mapped history");
    let second = serde_json::to_value(&second).unwrap();
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "bedrock-a read the tool results: 18C and sunny"
    );
    let body = s.a.stats().last_body.unwrap();
    assert_eq!(
        body["messages"][1]["content"][0]["toolUse"]["toolUseId"],
        json!(id)
    );
    assert_eq!(
        body["messages"][2]["content"][0]["toolResult"]["toolUseId"],
        json!(id)
    );

    println!("streamed, the tool call arrives as id/name then argument fragments");
    let events = post_stream(
        &s.proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &json!({"model": "claude-a",
        "stream": true, "tools": tools, "tool_choice": "required",
        "messages": [{"role": "user", "content": "call it"}]}),
    )
    .await
    .events();
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls[0][0]["function"]["name"], "get_weather");
    let args: String = calls
        .iter()
        .filter_map(|c| c[0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn data_url_images_become_image_blocks() {
    let s = setup().await;
    let client = s.proxy.openai(ALPHA_KEY);
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let response = within(
        client
            .chat()
            .create(chat(json!({"model": "claude-a", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this"},
         {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}]}))),
    )
    .await
    .unwrap();
    let response = serde_json::to_value(&response).unwrap();
    assert_eq!(
        response["choices"][0]["message"]["content"],
        "bedrock-a says: what is this [image:png]"
    );
    let body = s.a.stats().last_body.unwrap();
    assert_eq!(
        body["messages"][0]["content"][1]["image"]["source"]["bytes"],
        png
    );
}

#[tokio::test]
async fn titan_embeddings_fan_out_and_sum_usage() {
    let s = setup().await;
    let client = s.proxy.openai(ALPHA_KEY);
    let request: CreateEmbeddingRequest = serde_json::from_value(json!({"model": "titan",
        "input": ["one two", "three"], "dimensions": 256}))
    .unwrap();
    let response = within(client.embeddings().create(request)).await.unwrap();
    let response = serde_json::to_value(&response).unwrap();
    assert_eq!(response["data"].as_array().unwrap().len(), 2);
    assert_eq!(response["data"][1]["index"], 1);
    assert_eq!(
        response["data"][0]["embedding"].as_array().unwrap().len(),
        256
    );
    assert_eq!(response["usage"]["prompt_tokens"], 3);
    assert_eq!(s.a.stats().requests, 2, "one InvokeModel call per text");

    let cohere: CreateEmbeddingRequest =
        serde_json::from_value(json!({"model": "cohere", "input": ["a", "b", "c"]})).unwrap();
    let response = within(client.embeddings().create(cohere)).await.unwrap();
    assert_eq!(response.data.len(), 3);
}

#[tokio::test]
async fn throttling_fails_over_to_the_next_target() {
    let s = setup().await;
    let url = s.proxy.url("/chat/completions");
    println!("bedrock-a answers 429 ThrottlingException; bedrock-b serves");
    s.a.push_faults([BedrockFault::Throttle]);
    let reply = post_json(
        &url,
        Some(ALPHA_KEY),
        &json!({"model": "claude",
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "bedrock-b says: hi"
    );
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));
    assert_eq!(reply.header("x-switchyard-provider"), Some("aws-b"));
    assert_eq!(
        s.b.stats().last_path.as_deref(),
        Some("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse")
    );
}

#[tokio::test]
async fn exception_frame_before_content_fails_over() {
    let s = setup().await;
    let url = s.proxy.url("/chat/completions");
    println!(
        "a throttling frame right after messageStart: nothing reached the client, so fail over"
    );
    s.a.push_faults([BedrockFault::ThrottleBeforeContent]);
    let reply = post_stream(
        &url,
        Some(ALPHA_KEY),
        &json!({"model": "claude", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), Some("aws-b"));
    let events = reply.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "bedrock-b says: hi");
}

#[tokio::test]
async fn exception_frame_after_content_ends_with_an_error_event() {
    let s = setup().await;
    let url = s.proxy.url("/chat/completions");
    println!("a throttling frame after content: the stream ends with an OpenAI error event");
    s.a.push_faults([BedrockFault::ThrottleMidStream]);
    let reply = post_stream(
        &url,
        Some(ALPHA_KEY),
        &json!({"model": "claude-a", "stream": true,
        "messages": [{"role": "user", "content": "a longer answer please"}]}),
    )
    .await;
    let events = reply.events();
    assert!(events.len() >= 2, "{events:?}");
    let last = events.last().unwrap();
    let error = error_of(last).expect("the last event is an error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("throttlingException"),
        "{error}"
    );
    assert!(!events.iter().any(|e| e == "[DONE]"));
}

#[tokio::test]
async fn inexpressible_requests_get_a_400_naming_the_field() {
    let s = setup().await;
    let url = s.proxy.url("/chat/completions");
    let reply = post_json(
        &url,
        Some(ALPHA_KEY),
        &json!({"model": "claude", "n": 2,
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.error()["param"], "n");
    assert_eq!(reply.error()["type"], "invalid_request_error");
    assert_eq!(
        s.a.stats().requests + s.b.stats().requests,
        0,
        "nothing was sent upstream"
    );
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_signature_check() {
    let s = setup().await;
    let reply = post_json(
        &s.proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &json!({"model": "wrong-key",
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert!(reply.status >= 400, "{}", reply.body);
    assert_eq!(s.a.stats().signature_failures, 1);
    assert!(!reply.body.contains("not-the-secret"));
}
