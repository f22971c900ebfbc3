//! The byte relay of an Anthropic Messages stream to a Messages client (from `kind:
//! anthropic`'s SSE, or Claude's InvokeModelWithResponseStream chunks decoded by
//! `bedrock/invoke/`): each event is written out as it came (`event:` + `data:` lines), with
//! only `message_start.message.model` renamed to the client's model name; usage is read on
//! the way (`message_start`, `message_delta`), `event: error` fails the stream (capacity
//! for `overloaded_error` / `rate_limit_error`) and `message_stop` ends it.
//!
//! `message_start` (and any `ping` after it) is held until the next event: an upstream that
//! errs right after it has then sent the client nothing, so the request can still fail over.

use bytes::Bytes;

use super::errors::{is_capacity_type, ErrorEnvelope};
use crate::dialects::messages::{usage_from_wire, MessagesUsage};
use crate::metering::Usage;
use crate::providers::openai::chunk::{model_json, Edit, RawChunk};
use crate::providers::{StreamStep, UpstreamStreamError};

/// Relay state of one Anthropic stream.
#[derive(Debug)]
pub struct MessagesRelay {
    client_model: String,
    /// The usage so far: `message_start`'s, updated by each `message_delta`.
    usage: Option<MessagesUsage>,
    content_deltas: u64,
    /// `message_start` and pings after it, not yet sent.
    held: Vec<u8>,
}

impl MessagesRelay {
    pub fn new(client_model: &str) -> Self {
        Self {
            client_model: client_model.to_owned(),
            usage: None,
            content_deltas: 0,
            held: Vec::new(),
        }
    }

    /// The usage the stream reported so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(usage_from_wire)
    }

    /// Content deltas relayed so far.
    pub fn content_deltas(&self) -> u64 {
        self.content_deltas
    }

    /// One event: `name` is its SSE `event:` name, `None` when the framing has none (Bedrock
    /// chunks), in which case the JSON's `type` names it.
    pub fn on_event(&mut self, name: Option<&str>, data: &str) -> StreamStep {
        let Some(object) = RawChunk::parse(data) else {
            return StreamStep::Failed(invalid(data));
        };
        let kind = match name {
            Some(name) => name.to_owned(),
            None => match object.get("type").map(serde_json::from_str::<String>) {
                Some(Ok(kind)) => kind,
                _ => return StreamStep::Failed(invalid(data)),
            },
        };
        match kind.as_str() {
            "message_start" => self.message_start(&object),
            "ping" if !self.held.is_empty() => {
                frame_into(&mut self.held, &kind, data.as_bytes());
                StreamStep::Skip
            }
            "error" => StreamStep::Failed(stream_error(data)),
            "message_delta" => {
                if let Some(delta) = object.get("usage").and_then(parse_usage) {
                    match &mut self.usage {
                        Some(usage) => usage.update(&delta),
                        None => self.usage = Some(delta),
                    }
                }
                self.relay(&kind, data.as_bytes())
            }
            "message_stop" => match self.relay(&kind, data.as_bytes()) {
                StreamStep::Emit(bytes) => StreamStep::Last(bytes),
                other => other,
            },
            _ => {
                if kind == "content_block_delta" {
                    self.content_deltas += 1;
                }
                self.relay(&kind, data.as_bytes())
            }
        }
    }

    fn message_start(&mut self, object: &RawChunk<'_>) -> StreamStep {
        let Some(message) = object.get("message").and_then(RawChunk::parse) else {
            return StreamStep::Failed(UpstreamStreamError {
                message: "the upstream's message_start has no message".to_owned(),
                code: Some("upstream_error".to_owned()),
                capacity: false,
            });
        };
        self.usage = message.get("usage").and_then(parse_usage);
        let model = model_json(&self.client_model);
        let message = message.write_with(
            |key, _| match key {
                "model" => Edit::Replace(&model),
                _ => Edit::Keep,
            },
            &[],
        );
        let data = object.write_with(
            |key, _| match key {
                "message" => Edit::Replace(&message),
                _ => Edit::Keep,
            },
            &[],
        );
        frame_into(&mut self.held, "message_start", &data);
        StreamStep::Skip
    }

    /// The event as the client gets it, after anything held.
    fn relay(&mut self, kind: &str, data: &[u8]) -> StreamStep {
        let mut out = std::mem::take(&mut self.held);
        frame_into(&mut out, kind, data);
        StreamStep::Emit(Bytes::from(out))
    }
}

/// A raw `usage` member, if it is one.
pub fn parse_usage(raw: &str) -> Option<MessagesUsage> {
    serde_json::from_str(raw).ok()
}

/// Appends `event: <kind>` and the data (one `data:` line per line) and the blank line.
fn frame_into(out: &mut Vec<u8>, kind: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

fn invalid(data: &str) -> UpstreamStreamError {
    let start: String = data.chars().take(80).collect();
    UpstreamStreamError {
        message: format!("the upstream sent an invalid stream event: {start}"),
        code: Some("upstream_error".to_owned()),
        capacity: false,
    }
}

/// `event: error`: capacity for overloaded and rate-limited, which may fail over before the
/// client's first byte.
pub fn stream_error(data: &str) -> UpstreamStreamError {
    match ErrorEnvelope::parse(data.as_bytes()) {
        Some(envelope) => UpstreamStreamError {
            capacity: is_capacity_type(&envelope.error.kind),
            message: format!(
                "{}: {}",
                envelope.error.kind,
                envelope.error.message.unwrap_or_default()
            ),
            code: Some(envelope.error.kind),
        },
        None => UpstreamStreamError {
            message: "the upstream reported an error in the stream".to_owned(),
            code: Some("upstream_error".to_owned()),
            capacity: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":20,"cache_creation":{"ephemeral_5m_input_tokens":40,"ephemeral_1h_input_tokens":60},"output_tokens":1}}}"#;

    fn text(step: StreamStep) -> String {
        match step {
            StreamStep::Emit(bytes) | StreamStep::Last(bytes) => {
                String::from_utf8(bytes.to_vec()).unwrap()
            }
            other => panic!("expected bytes, got {other:?}"),
        }
    }

    #[test]
    fn events_are_relayed_as_they_came_with_the_model_renamed() {
        let mut relay = MessagesRelay::new("my-claude");
        assert_eq!(
            relay.on_event(Some("message_start"), START),
            StreamStep::Skip
        );
        assert_eq!(
            relay.on_event(Some("ping"), r#"{"type": "ping"}"#),
            StreamStep::Skip
        );
        let block =
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#;
        let out = text(relay.on_event(Some("content_block_start"), block));
        let expected_start = START.replace("claude-sonnet-4-5-20250929", "my-claude");
        assert_eq!(
            out,
            format!("event: message_start\ndata: {expected_start}\n\nevent: ping\ndata: {{\"type\": \"ping\"}}\n\nevent: content_block_start\ndata: {block}\n\n")
        );
        let delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \"there\""}}"#;
        assert_eq!(
            text(relay.on_event(Some("content_block_delta"), delta)),
            format!("event: content_block_delta\ndata: {delta}\n\n")
        );
        let ping = text(relay.on_event(Some("ping"), r#"{"type":"ping"}"#));
        assert_eq!(ping, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
        let usage = relay.usage().unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.cache_write_tokens,
                usage.cache_write_1h_tokens
            ),
            (130, 20, 100, 60)
        );
        let md = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":42}}"#;
        text(relay.on_event(Some("message_delta"), md));
        match relay.on_event(Some("message_stop"), r#"{"type":"message_stop"}"#) {
            StreamStep::Last(bytes) => {
                assert_eq!(
                    &bytes[..],
                    b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
                )
            }
            other => panic!("{other:?}"),
        }
        let usage = relay.usage().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (130, 42));
        assert_eq!(relay.content_deltas(), 1);
    }

    #[test]
    fn unnamed_events_are_named_by_their_type() {
        let mut relay = MessagesRelay::new("alias");
        assert_eq!(relay.on_event(None, START), StreamStep::Skip);
        let stop =
            r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":3}}"#;
        let out = text(relay.on_event(None, stop));
        assert!(out.starts_with("event: message_start\ndata: "), "{out}");
        assert!(
            out.ends_with(&format!("event: message_stop\ndata: {stop}\n\n")),
            "{out}"
        );
        assert!(matches!(
            relay.on_event(None, r#"{"no":"type"}"#),
            StreamStep::Failed(_)
        ));
    }

    #[test]
    fn errors_fail_the_stream_and_capacity_ones_may_fail_over() {
        let mut relay = MessagesRelay::new("alias");
        relay.on_event(Some("message_start"), START);
        let overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        match relay.on_event(Some("error"), overloaded) {
            StreamStep::Failed(error) => {
                assert!(error.capacity);
                assert_eq!(error.code.as_deref(), Some("overloaded_error"));
            }
            other => panic!("{other:?}"),
        }
        let api = r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#;
        assert!(matches!(relay.on_event(Some("error"), api), StreamStep::Failed(e) if !e.capacity));
        assert!(matches!(
            relay.on_event(Some("content_block_delta"), "{not json"),
            StreamStep::Failed(_)
        ));
    }

    #[test]
    fn multi_line_data_keeps_its_lines() {
        let mut out = Vec::new();
        frame_into(&mut out, "x", b"{\n\"a\":1}");
        assert_eq!(out, b"event: x\ndata: {\ndata: \"a\":1}\n\n");
    }
}
