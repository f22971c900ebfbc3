//! Anthropic Messages, the dialect of `POST /v1/messages` (and `count_tokens`) and of
//! Anthropic-format upstreams (`kind: anthropic`, Claude on Bedrock InvokeModel). Wire types:
//! [`wire`] (request), [`answer`] (answer and usage), [`error`] (error shape). Client side:
//! [`decode`] (request → model) and [`respond`] (answer and stream events → what the client
//! reads). Upstream side: [`encode`] (model → request) and [`upstream`] (answer and events →
//! model). Mapping and what each hop loses: docs/messages-dialect.md.

pub mod answer;
pub mod decode;
pub mod encode;
pub mod error;
pub mod respond;
pub mod upstream;
mod validate;
pub mod wire;

pub use answer::{usage_from_wire, CacheCreation, MessagesAnswer, MessagesUsage};
pub use decode::decode_request;
pub use encode::{encode_request, Flavour, Unencodable, BEDROCK_VERSION, DEFAULT_MAX_TOKENS};
pub use error::ErrorBody;
pub use respond::{encode_answer, EventEncoder};
pub use upstream::{decode_answer, EventDecoder, Progress, StreamFault};
pub use validate::MIN_THINKING_BUDGET;
pub use wire::MessagesRequest;
