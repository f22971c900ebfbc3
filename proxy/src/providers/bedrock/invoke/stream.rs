//! InvokeModelWithResponseStream read for a Messages client: each `chunk` frame's payload
//! `{"bytes":"<base64>"}` is one Anthropic stream event, relayed as Anthropic SSE by the
//! same relay as `kind: anthropic` (`providers/anthropic/relay.rs`); exception frames end
//! the stream (capacity for throttling and unavailability, which may fail over before the
//! client's first byte). A resumable stream reads the same events into typed events instead
//! ([`InvokeStream::typed`]).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use crate::providers::anthropic::relay::MessagesRelay;
use crate::providers::anthropic::typed::TypedEvents;
use crate::providers::bedrock::errors::stream_exception;
use crate::providers::bedrock::eventstream::Frame;
use crate::providers::{StreamStep, UpstreamStreamError};

/// A `chunk` frame's payload.
#[derive(Deserialize)]
struct PayloadPart {
    bytes: String,
}

/// Relay state of one InvokeModelWithResponseStream.
#[derive(Debug)]
pub struct InvokeStream {
    pub relay: MessagesRelay,
    /// Set when the events are read into typed events rather than relayed.
    typed: Option<TypedEvents>,
}

impl InvokeStream {
    pub fn new(client_model: &str) -> Self {
        Self {
            relay: MessagesRelay::new(client_model),
            typed: None,
        }
    }

    /// The chunks' Anthropic events read into typed events (docs/streams.md).
    pub fn typed() -> Self {
        Self {
            relay: MessagesRelay::new(""),
            typed: Some(TypedEvents::default()),
        }
    }

    pub fn on_frame(&mut self, frame: &Frame) -> StreamStep {
        match frame.message_type.as_str() {
            "exception" => return StreamStep::Failed(stream_exception(frame)),
            "error" => {
                return StreamStep::Failed(UpstreamStreamError {
                    message: frame
                        .error_message
                        .clone()
                        .unwrap_or_else(|| format!("Bedrock stream error {}", frame.event_type)),
                    code: Some("upstream_error".to_owned()),
                    capacity: false,
                })
            }
            _ => {}
        }
        if frame.event_type != "chunk" {
            return StreamStep::Skip;
        }
        let event = serde_json::from_slice::<PayloadPart>(&frame.payload)
            .ok()
            .and_then(|part| STANDARD.decode(part.bytes).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match event {
            Some(event) => match &mut self.typed {
                Some(typed) => typed.on_event(None, &event),
                None => self.relay.on_event(None, &event),
            },
            None => StreamStep::Failed(UpstreamStreamError {
                message: "a Bedrock chunk frame is not base64 of an event".to_owned(),
                code: Some("upstream_error".to_owned()),
                capacity: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn chunk(event: &str) -> Frame {
        let payload = serde_json::json!({"bytes": STANDARD.encode(event)});
        Frame {
            message_type: "event".into(),
            event_type: "chunk".into(),
            error_message: None,
            payload: Bytes::from(payload.to_string()),
        }
    }

    #[test]
    fn chunks_become_anthropic_sse_events() {
        let mut stream = InvokeStream::new("alias");
        let start = r#"{"type":"message_start","message":{"id":"msg_bdrk_1","model":"claude","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}"#;
        assert_eq!(stream.on_frame(&chunk(start)), StreamStep::Skip);
        let block =
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#;
        match stream.on_frame(&chunk(block)) {
            StreamStep::Emit(bytes) => {
                let text = String::from_utf8(bytes.to_vec()).unwrap();
                assert!(text.starts_with("event: message_start\ndata: {"), "{text}");
                assert!(text.contains(r#""model":"alias""#), "{text}");
                assert!(
                    text.ends_with(&format!("event: content_block_start\ndata: {block}\n\n")),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        let stop = chunk(
            r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":3}}"#,
        );
        assert!(matches!(stream.on_frame(&stop), StreamStep::Last(_)));
        assert_eq!(stream.relay.usage().map(|u| u.prompt_tokens), Some(3));
    }

    #[test]
    fn exceptions_and_bad_chunks_fail_the_stream() {
        let mut stream = InvokeStream::new("alias");
        let throttled = Frame {
            message_type: "exception".into(),
            event_type: "throttlingException".into(),
            error_message: None,
            payload: Bytes::from_static(br#"{"message":"Too many requests"}"#),
        };
        match stream.on_frame(&throttled) {
            StreamStep::Failed(error) => {
                assert!(error.capacity);
                assert!(
                    error.message.contains("Too many requests"),
                    "{}",
                    error.message
                );
            }
            other => panic!("{other:?}"),
        }
        let broken = Frame {
            message_type: "exception".into(),
            event_type: "modelStreamErrorException".into(),
            error_message: None,
            payload: Bytes::from_static(b"{}"),
        };
        assert!(matches!(stream.on_frame(&broken), StreamStep::Failed(e) if !e.capacity));
        let garbage = Frame {
            payload: Bytes::from_static(br#"{"bytes":"!!"}"#),
            ..chunk("{}")
        };
        assert!(matches!(stream.on_frame(&garbage), StreamStep::Failed(_)));
    }
}
