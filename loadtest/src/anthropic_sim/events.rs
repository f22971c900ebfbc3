//! A Message as the Messages API's stream events, in the order its SDKs require:
//! `message_start`, per block `content_block_start` / `content_block_delta`… /
//! `content_block_stop` (a `ping` after the first start), `message_delta`, `message_stop`.
//! Both the SSE stream and Bedrock's event-stream chunks are built from this list.

use serde_json::{json, Value};

use super::wire::{Message, OutputBlock};

/// One stream event: its name (the SSE `event:` line) and its JSON (whose `type` is the name).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamEvent {
    pub name: &'static str,
    pub data: Value,
}

/// `type` goes first, as the real API writes it.
fn event(name: &'static str, data: Value) -> StreamEvent {
    let mut out = serde_json::Map::new();
    out.insert("type".to_owned(), json!(name));
    if let Value::Object(fields) = data {
        out.extend(fields);
    }
    StreamEvent {
        name,
        data: Value::Object(out),
    }
}

/// Splits text into pieces of about three words, so clients must concatenate deltas.
fn pieces(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let pieces: Vec<String> = words.chunks(3).map(|c| c.concat()).collect();
    if pieces.is_empty() {
        vec![String::new()]
    } else {
        pieces
    }
}

/// The events of `message`; `ping` is left out when `with_ping` is false (Bedrock).
pub fn stream_events(message: &Message, with_ping: bool) -> Vec<StreamEvent> {
    let usage = &message.usage;
    let mut start = serde_json::to_value(message).unwrap_or_default();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["stop_sequence"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    let mut events = vec![event("message_start", json!({"message": start}))];
    for (index, block) in message.content.iter().enumerate() {
        let (start_block, deltas): (Value, Vec<Value>) = match block {
            OutputBlock::Text { text } => (
                json!({"type": "text", "text": ""}),
                pieces(text)
                    .into_iter()
                    .map(|p| json!({"type": "text_delta", "text": p}))
                    .collect(),
            ),
            OutputBlock::Thinking {
                thinking,
                signature,
            } => {
                let mut deltas: Vec<Value> = pieces(thinking)
                    .into_iter()
                    .map(|p| json!({"type": "thinking_delta", "thinking": p}))
                    .collect();
                deltas.push(json!({"type": "signature_delta", "signature": signature}));
                (
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    deltas,
                )
            }
            OutputBlock::RedactedThinking { data } => {
                (json!({"type": "redacted_thinking", "data": data}), vec![])
            }
            OutputBlock::ToolUse { id, name, input } => {
                let text = input.to_string();
                let chars: Vec<char> = text.chars().collect();
                let third = chars.len().div_ceil(3).max(1);
                // The first fragment is empty, as the real API often sends it.
                let mut deltas = vec![json!({"type": "input_json_delta", "partial_json": ""})];
                deltas.extend(chars.chunks(third).map(|c| {
                    json!({"type": "input_json_delta", "partial_json": c.iter().collect::<String>()})
                }));
                (
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    deltas,
                )
            }
        };
        events.push(event(
            "content_block_start",
            json!({"index": index, "content_block": start_block}),
        ));
        if index == 0 && with_ping {
            events.push(event("ping", json!({})));
        }
        for delta in deltas {
            events.push(event(
                "content_block_delta",
                json!({"index": index, "delta": delta}),
            ));
        }
        events.push(event("content_block_stop", json!({"index": index})));
    }
    events.push(event(
        "message_delta",
        json!({
            "delta": {"stop_reason": message.stop_reason, "stop_sequence": message.stop_sequence},
            "usage": {
                "output_tokens": usage.output_tokens,
                "input_tokens": usage.input_tokens,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                "cache_read_input_tokens": usage.cache_read_input_tokens,
            },
        }),
    ));
    events.push(event("message_stop", json!({})));
    events
}

/// `event: <name>\ndata: <json>\n\n`.
pub fn sse(event: &StreamEvent) -> String {
    format!("event: {}\ndata: {}\n\n", event.name, event.data)
}
