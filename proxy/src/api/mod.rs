//! The OpenAI wire types Switchyard speaks to clients: requests, errors, SSE framing.

pub mod chat;
pub mod embeddings;
pub mod error_body;
pub mod models;
pub mod sse;
