//! ConverseStream frames in AWS event-stream encoding (`aws-smithy-eventstream`), including
//! the random-looking `p` padding member real Bedrock adds to event payloads.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::Bytes;
use serde_json::{json, Value};

use super::converse::Answer;

fn encode(headers: Vec<Header>, payload: &Value) -> Bytes {
    let message = Message::new_from_parts(headers, Bytes::from(payload.to_string()));
    let mut out = Vec::new();
    // Writing a well-formed message into a Vec cannot fail; an empty frame would be caught
    // by the client's CRC check anyway.
    let _ = write_message_to(&message, &mut out);
    Bytes::from(out)
}

fn string(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_owned().into()))
}

/// An `event` frame.
pub fn event(event_type: &str, payload: &Value) -> Bytes {
    let mut payload = payload.clone();
    payload["p"] = json!("abcdefghijkl");
    encode(
        vec![
            string(":event-type", event_type),
            string(":content-type", "application/json"),
            string(":message-type", "event"),
        ],
        &payload,
    )
}

/// An `exception` frame (e.g. `throttlingException`).
pub fn exception(exception_type: &str, message: &str) -> Bytes {
    encode(
        vec![
            string(":exception-type", exception_type),
            string(":content-type", "application/json"),
            string(":message-type", "exception"),
        ],
        &json!({"message": message}),
    )
}

/// The whole stream of an answer: messageStart, content, messageStop, metadata.
pub fn answer_frames(answer: &Answer, usage: Value) -> Vec<Bytes> {
    let mut frames = vec![event("messageStart", &json!({"role": "assistant"}))];
    match answer {
        Answer::Text(text) => {
            let words: Vec<&str> = text.split_inclusive(' ').collect();
            for word in words {
                frames.push(event(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0, "delta": {"text": word}}),
                ));
            }
            frames.push(event("contentBlockStop", &json!({"contentBlockIndex": 0})));
        }
        Answer::ToolUse { id, name, input } => {
            frames.push(event(
                "contentBlockStart",
                &json!({"contentBlockIndex": 0,
                "start": {"toolUse": {"toolUseId": id, "name": name}}}),
            ));
            let json_text = input.to_string();
            let (a, b) = json_text.split_at(json_text.len() / 2);
            for part in [a, b] {
                frames.push(event(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0,
                    "delta": {"toolUse": {"input": part}}}),
                ));
            }
            frames.push(event("contentBlockStop", &json!({"contentBlockIndex": 0})));
        }
    }
    frames.push(event(
        "messageStop",
        &json!({"stopReason": answer.stop_reason()}),
    ));
    frames.push(event(
        "metadata",
        &json!({"usage": usage, "metrics": {"latencyMs": 1}}),
    ));
    frames
}
