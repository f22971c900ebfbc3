//! Serving one client request upstream: the attempt loop, stream relay and the request's record.

pub mod attempts;
mod leg;
pub mod record;
pub mod resume;
pub mod stream;

use bytes::Bytes;

pub use record::{Ending, RequestRecord};
pub use stream::ChatStream;

/// What the gateway writes back: a complete body, or a stream relayed chunk by chunk.
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    },
    Stream {
        headers: Vec<(&'static str, String)>,
        stream: Box<ChatStream>,
    },
}

impl Reply {
    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.into(),
        }
    }
}
