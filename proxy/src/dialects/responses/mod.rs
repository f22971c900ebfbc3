//! OpenAI Responses, the dialect of `POST /v1/responses` (and of `responses: native`
//! upstreams). Wire types: [`wire`] (request and items), [`answer`] (the Response object and
//! usage). Client side: [`decode`] (request → model), [`respond`] (answer → Response object)
//! and [`events`] (stream events → Responses SSE). Mapping and what each hop loses:
//! docs/responses-dialect.md.

pub mod answer;
pub mod decode;
pub mod events;
pub mod respond;
pub mod turn;
mod validate;
pub mod wire;

pub use answer::{ResponseObject, ResponseUsage};
pub use decode::decode_request;
pub use events::EventEncoder;
pub use respond::encode_answer;
pub use turn::TurnContext;
pub use wire::{InputItem, ResponsesRequest};
