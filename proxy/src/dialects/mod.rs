//! Client dialects: each decodes its requests into the proxy's [`crate::model`] and writes
//! answers and stream events back in its own format. Only the encoders are chosen here, by
//! [`Dialect`]; a provider never sees a dialect's wire types unless it speaks that dialect
//! (the pass-through).

pub mod chat;

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
        other => Err(NotServed(other.label()).into()),
    }
}

/// Writes one stream's events in the client's dialect.
#[derive(Debug)]
pub enum StreamEncoder {
    Chat(chat::ChunkEncoder),
}

impl StreamEncoder {
    pub fn new(request: &Request) -> Result<Self, NotServed> {
        match request.dialect {
            Dialect::Chat => Ok(StreamEncoder::Chat(chat::ChunkEncoder::new(
                &request.model,
                request.stream_usage,
            ))),
            other => Err(NotServed(other.label())),
        }
    }

    /// Appends the bytes of `event` (possibly none) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::Chat(encoder) => encoder.encode(event, out),
        }
    }

    /// The end of a complete stream (for Chat: the usage chunk if asked, then `[DONE]`).
    /// Also written after a pass-through stream, whose own end marker was consumed.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::Chat(encoder) => encoder.finish(out),
        }
    }

    /// The event that ends a stream which failed after its first byte.
    pub fn error_event(&self, code: &str, message: String) -> Bytes {
        match self {
            StreamEncoder::Chat(_) => chat::ChunkEncoder::error_event(code, message),
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
        assert!(matches!(
            encode_answer(&messages, &answer),
            Err(EncodeError::NotServed(_))
        ));
        assert!(StreamEncoder::new(&messages).is_err());
    }
}
