//! An Anthropic Messages client in plain reqwest, for the tests of `POST /v1/messages`:
//! requests with `anthropic-version` and either key header, Anthropic's error shape, and
//! the stream's events parsed and checked against the order Anthropic's SDKs require.

use serde_json::{json, Value};

use crate::anthropic_stream::sse_events;
use crate::fixtures::ALPHA_KEY;
use crate::http::{http_client, within, Reply};
use crate::proxy::Proxy;

/// The `anthropic-version` the SDKs send.
pub const VERSION: &str = "2023-06-01";

/// How a request presents its key.
#[derive(Clone, Copy, Debug)]
pub enum Key<'a> {
    /// `x-api-key: <key>` (the Anthropic SDKs' `api_key`).
    XApi(&'a str),
    /// `Authorization: Bearer <key>` (Claude Code's `ANTHROPIC_AUTH_TOKEN`).
    Bearer(&'a str),
    None,
}

/// An Anthropic client's request: `anthropic-version`, the key, and `extra` headers.
pub fn anthropic_request(
    method: reqwest::Method,
    url: &str,
    key: Key<'_>,
    extra: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut request = http_client()
        .request(method, url)
        .header("anthropic-version", VERSION);
    request = match key {
        Key::XApi(key) => request.header("x-api-key", key),
        Key::Bearer(key) => request.bearer_auth(key),
        Key::None => request,
    };
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request
}

pub async fn read(request: reqwest::RequestBuilder) -> Reply {
    let response = within(request.send()).await.expect("sending a request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = within(response.text()).await.expect("reading the body");
    Reply {
        status,
        headers,
        body,
    }
}

/// `POST /v1/messages` with a raw body.
pub async fn send_raw(proxy: &Proxy, key: Key<'_>, body: impl Into<reqwest::Body>) -> Reply {
    let request = anthropic_request(reqwest::Method::POST, &proxy.url("/messages"), key, &[])
        .header("content-type", "application/json")
        .body(body);
    read(request).await
}

/// `POST /v1/messages` with a JSON body and `x-api-key: ALPHA_KEY`.
pub async fn send(proxy: &Proxy, body: &Value) -> Reply {
    send_raw(proxy, Key::XApi(ALPHA_KEY), body.to_string()).await
}

pub fn ask(model: &str, prompt: &str) -> Value {
    json!({"model": model, "max_tokens": 256,
           "messages": [{"role": "user", "content": prompt}]})
}

pub fn streamed(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

/// Anthropic's error body: `{"type":"error","error":{"type","message"}}`; returns `error.type`.
pub fn anthropic_error(reply: &Reply, status: u16) -> String {
    assert_eq!(reply.status, status, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{body}"
    );
    body["error"]["type"]
        .as_str()
        .expect("error.type")
        .to_owned()
}

/// One SSE event: its `event:` name and its JSON `data:`.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// The events of an Anthropic stream; every event must name itself in `event:` and repeat
/// the name as its data's `type` (the SDK dispatches on the `event:` line).
pub fn events(body: &str) -> Vec<Event> {
    sse_events(body)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|(name, data)| {
            assert_eq!(data["type"], name.as_str(), "{data}");
            Event { name, data }
        })
        .collect()
}

/// The names of `events`, without `ping`s (which may come anywhere).
pub fn names(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| *n != "ping")
        .collect()
}

/// `POST /v1/messages` streamed, read to its end.
pub async fn send_stream(proxy: &Proxy, body: &Value) -> (Reply, Vec<Event>) {
    let reply = send(proxy, &streamed(body.clone())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let parsed = events(&reply.body);
    (reply, parsed)
}

/// Checks a complete stream's grammar (Anthropic's order, block indexes 0..n in order,
/// each block opened, grown and closed) and returns the final message it builds.
pub fn accumulate(events: &[Event]) -> Value {
    let named = names(events);
    assert_eq!(named.first(), Some(&"message_start"), "{named:?}");
    assert_eq!(named.last(), Some(&"message_stop"), "{named:?}");
    assert_eq!(
        named[named.len() - 2],
        "message_delta",
        "message_delta comes just before message_stop: {named:?}"
    );
    let mut message = events[0].data["message"].clone();
    assert_eq!(message["content"], json!([]), "{message}");
    assert!(message["usage"].is_object(), "{message}");
    assert!(message["stop_reason"].is_null(), "{message}");
    let mut open: Option<usize> = None;
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_input: Vec<String> = Vec::new();
    for event in events {
        let index = event.data["index"].as_u64().map(|i| i as usize);
        match event.name.as_str() {
            "content_block_start" => {
                assert_eq!(open, None, "a block opened inside another");
                assert_eq!(index, Some(blocks.len()), "blocks open in index order");
                open = index;
                blocks.push(event.data["content_block"].clone());
                json_input.push(String::new());
            }
            "content_block_delta" => {
                let i = index.expect("index");
                assert_eq!(open, Some(i), "a delta for a block that is not open");
                let delta = &event.data["delta"];
                match delta["type"].as_str().unwrap() {
                    "text_delta" => {
                        let text = blocks[i]["text"].as_str().unwrap().to_owned();
                        blocks[i]["text"] = json!(text + delta["text"].as_str().unwrap());
                    }
                    "input_json_delta" => {
                        json_input[i].push_str(delta["partial_json"].as_str().unwrap());
                    }
                    "thinking_delta" | "signature_delta" => {}
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                let i = index.expect("index");
                assert_eq!(open, Some(i), "closing a block that is not open");
                if blocks[i]["type"] == "tool_use" && !json_input[i].is_empty() {
                    blocks[i]["input"] = serde_json::from_str(&json_input[i]).unwrap();
                }
                open = None;
            }
            "message_delta" => {
                assert_eq!(open, None, "message_delta with a block still open");
                message["stop_reason"] = event.data["delta"]["stop_reason"].clone();
                assert!(
                    event.data["delta"]
                        .as_object()
                        .unwrap()
                        .contains_key("stop_sequence"),
                    "stop_sequence is sent (null) explicitly"
                );
                let output = &event.data["usage"]["output_tokens"];
                assert!(output.is_u64(), "{}", event.data);
                message["usage"]["output_tokens"] = output.clone();
            }
            _ => {}
        }
    }
    message["content"] = Value::Array(blocks);
    message
}

/// The text of an Anthropic message's text blocks.
pub fn text_of(message: &Value) -> String {
    message["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect()
}
