//! Anthropic events read into the model, for a client of another dialect (Chat today): the
//! Messages dialect's [`EventDecoder`] does the reading; this is its seat among the
//! providers' stream decoders.

use crate::dialects::messages::{EventDecoder, Progress};
use crate::providers::{StreamStep, UpstreamStreamError};

/// Translation state of one Anthropic stream read into the model.
#[derive(Debug, Default)]
pub struct TypedEvents {
    decoder: EventDecoder,
}

impl TypedEvents {
    /// One SSE event (`name` is its `event:` line, if it had one).
    pub fn on_event(&mut self, name: Option<&str>, data: &str) -> StreamStep {
        let mut events = Vec::new();
        match self.decoder.decode(name.unwrap_or(""), data, &mut events) {
            Ok(Progress::Done) => StreamStep::LastEvents(events),
            Ok(Progress::Continue) if events.is_empty() => StreamStep::Skip,
            Ok(Progress::Continue) => StreamStep::Events(events),
            Err(fault) => StreamStep::Failed(UpstreamStreamError {
                message: fault.to_string(),
                capacity: fault.capacity,
                code: Some(fault.error_type),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StreamEvent;

    #[test]
    fn events_become_the_models_and_message_stop_ends_them() {
        let mut stream = TypedEvents::default();
        let start = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}"#;
        assert!(matches!(
            stream.on_event(Some("message_start"), start),
            StreamStep::Events(events) if matches!(events[0], StreamEvent::Start { .. })
        ));
        assert_eq!(
            stream.on_event(Some("ping"), r#"{"type":"ping"}"#),
            StreamStep::Skip
        );
        let block =
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#;
        assert!(matches!(
            stream.on_event(None, block),
            StreamStep::Events(_)
        ));
        assert!(matches!(
            stream.on_event(Some("message_stop"), r#"{"type":"message_stop"}"#),
            StreamStep::LastEvents(_)
        ));
        let overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        match stream.on_event(Some("error"), overloaded) {
            StreamStep::Failed(error) => {
                assert!(error.capacity);
                assert_eq!(error.code.as_deref(), Some("overloaded_error"));
            }
            other => panic!("{other:?}"),
        }
    }
}
