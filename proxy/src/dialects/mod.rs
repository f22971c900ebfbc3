//! Client dialects: each decodes its requests into the proxy's [`crate::model`] and writes
//! answers and stream events back in its own format. Only the encoders are chosen here, by
//! [`Dialect`]; a provider never sees a dialect's wire types unless it speaks that dialect
//! (the pass-through).

pub mod chat;
pub mod messages;
pub mod responses;

use bytes::Bytes;

use crate::model::{Answer, Dialect, Request, StreamEvent};

/// A dialect this proxy cannot write yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {0} dialect is not served yet")]
pub struct NotServed(pub &'static str);

/// Why an answer could not be written for the client.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    NotServed(#[from] NotServed),
    #[error("could not write the answer: {0}")]
    Json(#[from] serde_json::Error),
}

/// The body a client of `request`'s dialect reads for `answer`.
pub fn encode_answer(request: &Request, answer: &Answer) -> Result<Vec<u8>, EncodeError> {
    match request.dialect {
        Dialect::Chat => Ok(chat::encode_answer(answer, &request.model)?),
        Dialect::Messages => Ok(messages::encode_answer(answer, &request.model)?),
        Dialect::Responses => Ok(responses::encode_answer(request, answer)?),
    }
}

/// Why a stream failed after its first byte: each dialect names it in its own error event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFault {
    /// The request's deadline passed while the upstream was streaming.
    Timeout,
    /// The upstream reported a capacity error in the stream (throttling, overload).
    Overloaded,
    /// Any other upstream failure: an error event, garbage, a truncated stream.
    Upstream,
    /// The upstream went on past the output cap it was sent; the proxy cut the stream
    /// (docs/spend.md, "Output caps").
    OutputCap,
}

impl StreamFault {
    /// The Chat error `code`, also the `code` label of `switchyard_stream_errors_total`.
    pub fn code(self) -> &'static str {
        match self {
            StreamFault::Timeout => "upstream_timeout",
            StreamFault::Overloaded | StreamFault::Upstream => "upstream_error",
            StreamFault::OutputCap => "output_cap_exceeded",
        }
    }

    /// Anthropic's `error.type` in a Messages stream's `event: error`.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            StreamFault::Timeout => "timeout_error",
            StreamFault::Overloaded => "overloaded_error",
            StreamFault::Upstream | StreamFault::OutputCap => "api_error",
        }
    }

    /// The `error.code` of a Responses stream's `response.failed`.
    pub fn responses_code(self) -> &'static str {
        match self {
            StreamFault::Overloaded => "rate_limit_exceeded",
            StreamFault::Timeout | StreamFault::Upstream => "server_error",
            StreamFault::OutputCap => "output_cap_exceeded",
        }
    }
}

/// Writes one stream's events in the client's dialect.
#[derive(Debug)]
pub enum StreamEncoder {
    Chat(chat::ChunkEncoder),
    Messages(messages::EventEncoder),
    /// Boxed: it holds the whole response being built.
    Responses(Box<responses::EventEncoder>),
}

impl StreamEncoder {
    pub fn new(request: &Request) -> Result<Self, NotServed> {
        match request.dialect {
            Dialect::Chat => Ok(StreamEncoder::Chat(chat::ChunkEncoder::new(
                &request.model,
                request.stream_usage,
            ))),
            Dialect::Messages => Ok(StreamEncoder::Messages(messages::EventEncoder::new(
                &request.model,
            ))),
            Dialect::Responses => Ok(StreamEncoder::Responses(Box::new(
                responses::EventEncoder::new(request),
            ))),
        }
    }

    /// Appends the bytes of `event` (possibly none) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::Chat(encoder) => encoder.encode(event, out),
            StreamEncoder::Messages(encoder) => encoder.encode(event, out),
            StreamEncoder::Responses(encoder) => encoder.encode(event, out),
        }
    }

    /// The end of a complete stream (for Chat: the usage chunk if asked, then `[DONE]`; for
    /// Messages: `message_delta` and `message_stop`). Also called after a pass-through
    /// stream: Chat's `[DONE]` was consumed and is written here, while a Messages relay
    /// forwards the upstream's own `message_stop` and the encoder, having seen no event,
    /// writes nothing.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::Chat(encoder) => encoder.finish(out),
            StreamEncoder::Messages(encoder) => encoder.finish(out),
            StreamEncoder::Responses(encoder) => encoder.finish(out),
        }
    }

    /// The event that ends a stream which failed after its first byte, naming `fault` in
    /// the dialect's own terms.
    pub fn error_event(&self, fault: StreamFault, message: String) -> Bytes {
        match self {
            StreamEncoder::Chat(_) => chat::ChunkEncoder::error_event(fault.code(), message),
            StreamEncoder::Messages(_) => {
                messages::EventEncoder::error_event(fault.anthropic_type(), message)
            }
            StreamEncoder::Responses(encoder) => {
                encoder.error_event(fault.responses_code(), message)
            }
        }
    }

    /// The finished Response object of a typed Responses stream (what the proxy stores),
    /// once the stream completed.
    pub fn completed_response(&self) -> Option<&responses::ResponseObject> {
        match self {
            StreamEncoder::Responses(encoder) => encoder.completed(),
            StreamEncoder::Chat(_) | StreamEncoder::Messages(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Block, StopReason};
    use crate::providers::testing::chat_operation;
    use crate::providers::Operation;

    #[test]
    fn stream_faults_are_named_in_each_dialect() {
        let table = [
            (StreamFault::Timeout, "upstream_timeout", "timeout_error"),
            (
                StreamFault::Overloaded,
                "upstream_error",
                "overloaded_error",
            ),
            (StreamFault::Upstream, "upstream_error", "api_error"),
            (StreamFault::OutputCap, "output_cap_exceeded", "api_error"),
        ];
        for (fault, code, anthropic) in table {
            assert_eq!((fault.code(), fault.anthropic_type()), (code, anthropic));
        }
        let Operation::Generate(generation) = chat_operation(serde_json::json!({"model": "m",
            "messages": [{"role": "user", "content": "hi"}]}))
        else {
            unreachable!()
        };
        let mut request = generation.request;
        request.dialect = Dialect::Messages;
        let encoder = StreamEncoder::new(&request).unwrap();
        let event = encoder.error_event(StreamFault::Overloaded, "busy".to_owned());
        let text = std::str::from_utf8(&event).unwrap();
        assert!(text.contains("\"type\":\"overloaded_error\""), "{text}");
    }

    #[test]
    fn each_dialect_writes_its_own_answer_or_says_it_cannot() {
        let Operation::Generate(generation) = chat_operation(serde_json::json!({"model": "alias",
            "messages": [{"role": "user", "content": "hi"}]}))
        else {
            unreachable!()
        };
        let answer = Answer {
            id: None,
            content: vec![Block::text("yo")],
            stop: StopReason::EndTurn,
            usage: None,
            created: None,
        };
        let body: serde_json::Value =
            serde_json::from_slice(&encode_answer(&generation.request, &answer).unwrap()).unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "yo");
        let mut messages = generation.request.clone();
        messages.dialect = Dialect::Messages;
        let body: serde_json::Value =
            serde_json::from_slice(&encode_answer(&messages, &answer).unwrap()).unwrap();
        assert_eq!(body["type"], "message");
        assert_eq!(body["content"][0]["text"], "yo");
        let mut stream = StreamEncoder::new(&messages).unwrap();
        let error = String::from_utf8(
            stream
                .error_event(StreamFault::Timeout, "slow".to_owned())
                .to_vec(),
        )
        .unwrap();
        assert!(error.starts_with("event: error\n"), "{error}");
        assert!(error.contains("\"timeout_error\""), "{error}");
        let mut out = Vec::new();
        stream.finish(&mut out);
        assert!(
            out.is_empty(),
            "a pass-through stream ends with the upstream's message_stop"
        );

        let mut responses = generation.request.clone();
        responses.dialect = Dialect::Responses;
        let body: serde_json::Value =
            serde_json::from_slice(&encode_answer(&responses, &answer).unwrap()).unwrap();
        assert_eq!(body["object"], "response");
        assert_eq!(body["output"][0]["content"][0]["text"], "yo");
        assert!(StreamEncoder::new(&responses).is_ok());
    }
}
