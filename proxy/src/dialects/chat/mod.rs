//! OpenAI Chat Completions, the dialect of `POST /v1/chat/completions` and of OpenAI-format
//! upstreams. Wire types: [`request`] and [`answer`]. Client side: [`decode`] (request →
//! model) and [`respond`] (answer and stream events → what the client reads). Upstream side:
//! [`encode`] (model → request) and [`upstream`] (answer and chunks → model).

pub mod answer;
pub mod decode;
pub mod encode;
pub mod request;
pub mod respond;
pub mod upstream;

pub use answer::{ChatChunk, ChatCompletion, ChatUsage};
pub use decode::decode_request;
pub use encode::{encode_request, Unencodable};
pub use request::ChatRequest;
pub use respond::{encode_answer, ChunkEncoder};
pub use upstream::{decode_answer, ChunkDecoder};
