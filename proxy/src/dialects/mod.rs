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

/// The body a client of `request`'s dialect reads for `answer`.
pub fn encode_answer(request: &Request, answer: &Answer) -> Result<Vec<u8>, NotServed> {
    match request.dialect {
        Dialect::Chat => chat::encode_answer(answer, &request.model).map_err(|_| NotServed("chat")),
        other => Err(NotServed(other.label())),
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
