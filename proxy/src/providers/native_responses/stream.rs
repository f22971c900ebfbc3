//! The byte relay of a native Responses stream: each event is written out as it came
//! (`event:` + `data:` lines), with only the `response.model` of lifecycle events renamed to
//! the client's model name. `response.created` and `response.in_progress` are held until the
//! next event, so an upstream that fails right after them has sent the client nothing and
//! the request can still fail over. The terminal `response.completed` / `response.incomplete`
//! ends the stream and gives the usage and the finished response (what the proxy stores);
//! `response.failed` and `error` fail it.

use bytes::Bytes;
use serde_json::Value;

use super::usage_of;
use crate::metering::Usage;
use crate::providers::{StreamStep, UpstreamStreamError};

/// Relay state of one native Responses stream.
#[derive(Debug)]
pub struct ResponsesRelay {
    client_model: String,
    usage: Option<Usage>,
    content_deltas: u64,
    /// `response.created` / `response.in_progress`, not yet sent.
    held: Vec<u8>,
    completed: Option<Value>,
}

impl ResponsesRelay {
    pub fn new(client_model: &str) -> Self {
        Self {
            client_model: client_model.to_owned(),
            usage: None,
            content_deltas: 0,
            held: Vec::new(),
            completed: None,
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn content_deltas(&self) -> u64 {
        self.content_deltas
    }

    /// The finished response, once the terminal event arrived.
    pub fn completed(&self) -> Option<&Value> {
        self.completed.as_ref()
    }

    /// One event; `name` is its SSE `event:` name (the JSON's `type` when absent).
    pub fn on_event(&mut self, name: Option<&str>, data: &str) -> StreamStep {
        if data.trim() == "[DONE]" {
            return StreamStep::Done;
        }
        let Ok(mut event) = serde_json::from_str::<Value>(data) else {
            return StreamStep::Failed(invalid(data));
        };
        let kind = match name.or_else(|| event.get("type").and_then(Value::as_str)) {
            Some(kind) => kind.to_owned(),
            None => return StreamStep::Failed(invalid(data)),
        };
        match kind.as_str() {
            "error" => return StreamStep::Failed(stream_error(&event, "error")),
            "response.failed" => {
                return StreamStep::Failed(stream_error(
                    event.get("response").unwrap_or(&Value::Null),
                    "error",
                ))
            }
            _ => {}
        }
        let data = match event.get_mut("response").and_then(Value::as_object_mut) {
            Some(response) => {
                response.insert("model".to_owned(), Value::String(self.client_model.clone()));
                match serde_json::to_string(&event) {
                    Ok(text) => text,
                    Err(_) => return StreamStep::Failed(invalid(data)),
                }
            }
            None => data.to_owned(),
        };
        match kind.as_str() {
            "response.created" | "response.in_progress" | "response.queued" => {
                frame_into(&mut self.held, &kind, &data);
                StreamStep::Skip
            }
            "response.completed" | "response.incomplete" => {
                if let Some(response) = event.get("response") {
                    self.usage = response.get("usage").and_then(usage_of);
                    self.completed = Some(response.clone());
                }
                StreamStep::Last(self.relay(&kind, &data))
            }
            _ => {
                if kind.ends_with(".delta") {
                    self.content_deltas += 1;
                }
                StreamStep::Emit(self.relay(&kind, &data))
            }
        }
    }

    /// The held events, then this one.
    fn relay(&mut self, kind: &str, data: &str) -> Bytes {
        let mut out = std::mem::take(&mut self.held);
        frame_into(&mut out, kind, data);
        Bytes::from(out)
    }
}

fn frame_into(out: &mut Vec<u8>, kind: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

fn invalid(data: &str) -> UpstreamStreamError {
    UpstreamStreamError {
        message: format!(
            "the upstream sent an event that is not a Responses event: {}",
            data.chars().take(200).collect::<String>()
        ),
        code: Some("upstream_error".to_owned()),
        capacity: false,
    }
}

/// An upstream error event (`{"type": "error", "code", "message"}`, possibly nested under
/// `error`) or a failed response's `error`.
fn stream_error(holder: &Value, key: &str) -> UpstreamStreamError {
    let error = holder.get(key).filter(|e| e.is_object()).unwrap_or(holder);
    let code = error.get("code").and_then(Value::as_str).map(str::to_owned);
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the upstream failed the response")
        .to_owned();
    let capacity = code.as_deref().is_some_and(|c| {
        matches!(
            c,
            "rate_limit_exceeded" | "too_many_requests" | "server_is_overloaded"
        )
    });
    UpstreamStreamError {
        message,
        code,
        capacity,
    }
}
