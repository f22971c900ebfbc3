//! The OpenAI wire types Switchyard speaks to clients besides the chat dialect
//! ([`crate::dialects`]): embeddings, models, errors, SSE framing.

pub mod embeddings;
pub mod error_body;
pub mod models;
pub mod responses;
pub mod sse;

/// A request rule that was broken: which parameter, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    pub param: String,
    pub message: String,
}

impl InvalidField {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}
