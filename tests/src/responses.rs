//! A raw Responses API client for the end-to-end tests: requests, the SSE event stream
//! parsed and checked as a strict client reads it (the official SDK's `responses.stream()`
//! rules: `response.created` first, `sequence_number` from 0 without gaps, items added before
//! their deltas at consecutive `output_index`es, a terminal event with the whole response),
//! and the text of a response's output.

use serde_json::Value;

use crate::http::{post_json, post_stream, Reply, StreamReply};
use crate::proxy::Proxy;

/// `POST /v1/responses` as `key`.
pub async fn create(proxy: &Proxy, key: &str, body: &Value) -> Reply {
    post_json(&proxy.url("/responses"), Some(key), body).await
}

/// `POST /v1/responses` with `stream: true`; the reply and its events (checked that each
/// `event:` line names its data's `type`).
pub async fn create_stream(proxy: &Proxy, key: &str, body: &Value) -> (StreamReply, Vec<Value>) {
    let mut body = body.clone();
    body["stream"] = Value::Bool(true);
    let reply = post_stream(&proxy.url("/responses"), Some(key), &body).await;
    let events = events(&reply.body);
    (reply, events)
}

/// The events of a Responses SSE body.
pub fn events(body: &str) -> Vec<Value> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            let data: Value = serde_json::from_str(&data.join("\n"))
                .unwrap_or_else(|e| panic!("an event whose data is not JSON ({e}): {block}"));
            if let Some(name) = name {
                assert_eq!(
                    data["type"],
                    name.as_str(),
                    "event line and type differ: {block}"
                );
            }
            data
        })
        .collect()
}

/// The events' types, in order.
pub fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Checks `events` as the SDK's stream helper reads them and returns the terminal event's
/// response, after checking the output it assembled from the events equals it.
pub fn assembled(events: &[Value]) -> Value {
    let names = names(events);
    assert_eq!(
        names.first().map(String::as_str),
        Some("response.created"),
        "{names:?}"
    );
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"].as_u64(), Some(i as u64), "{event}");
    }
    let mut output: Vec<Value> = Vec::new();
    let mut terminal = None;
    for event in events {
        let kind = event["type"].as_str().unwrap_or_default();
        let index = event["output_index"].as_u64().map(|i| i as usize);
        match kind {
            "response.output_item.added" => {
                assert_eq!(index, Some(output.len()), "items added in order: {event}");
                output.push(event["item"].clone());
            }
            "response.content_part.added" => {
                let item = &mut output[index.unwrap()];
                let parts = item["content"]
                    .as_array_mut()
                    .expect("a message's content: []");
                assert_eq!(event["content_index"].as_u64(), Some(parts.len() as u64));
                parts.push(event["part"].clone());
            }
            "response.output_text.delta" => {
                let item = &mut output[index.unwrap()];
                assert_eq!(item["id"], event["item_id"], "{event}");
                let part = &mut item["content"][event["content_index"].as_u64().unwrap() as usize];
                let text = part["text"]
                    .as_str()
                    .expect("a part opened with text: \"\"")
                    .to_owned();
                part["text"] = Value::String(text + event["delta"].as_str().unwrap());
            }
            "response.function_call_arguments.delta" => {
                let item = &mut output[index.unwrap()];
                assert_eq!(item["type"], "function_call", "{event}");
                let args = item["arguments"]
                    .as_str()
                    .expect("arguments: \"\"")
                    .to_owned();
                item["arguments"] = Value::String(args + event["delta"].as_str().unwrap());
            }
            "response.output_item.done" => {
                let item = &mut output[index.unwrap()];
                if item["type"] == "message" {
                    assert_eq!(
                        item["content"][0]["text"],
                        event["item"]["content"][0]["text"]
                    );
                }
                if item["type"] == "function_call" {
                    assert_eq!(item["arguments"], event["item"]["arguments"]);
                }
                *item = event["item"].clone();
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                terminal = Some(event["response"].clone());
            }
            _ => {}
        }
    }
    let response = terminal.unwrap_or_else(|| panic!("no terminal event: {names:?}"));
    if response["status"] != "failed" {
        assert_eq!(
            response["output"],
            Value::Array(output),
            "assembled output = final output"
        );
    }
    response
}

/// The text of a response's message items, joined.
pub fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap_or_else(|| panic!("no output: {response}"))
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter(|part| part["type"] == "output_text")
        .map(|part| part["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The output items of one type.
pub fn items<'a>(response: &'a Value, kind: &str) -> Vec<&'a Value> {
    response["output"]
        .as_array()
        .map(|items| items.iter().filter(|item| item["type"] == kind).collect())
        .unwrap_or_default()
}
