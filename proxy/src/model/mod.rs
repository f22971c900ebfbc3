//! The proxy's own typed model of a generation request, its answer and its stream events:
//! every client dialect decodes into it and every provider translates from it, so N dialects
//! and M providers need N + M translations, not N × M (docs/decisions/0002-one-typed-request-model.md).
//!
//! What agent clients depend on is carried in the model itself, never in `extra`: thinking
//! blocks with their signatures, redacted thinking, cache markers, tool-call ids. `extra`
//! holds only fields the model does not know, and is forwarded untouched where the upstream
//! speaks the client's dialect (see [`Dialect`]).

pub mod answer;
pub mod content;
pub mod event;
pub mod request;

pub use answer::{Answer, StopReason};
pub use content::{
    Block, CacheMarker, CacheTtl, DocumentSource, ImageSource, Role, ToolResultContent,
};
pub use event::{BlockKind, Delta, StreamEvent};
pub use request::{
    Dialect, Message, Reasoning, ReasoningEffort, Request, ResponseFormat, Sampling, SystemBlock,
    ToolChoice, ToolDef,
};
