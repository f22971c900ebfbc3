//! Bedrock Converse / ConverseStream on the proxy's typed model (docs/wire-formats.md §2–§3):
//!
//! - [`wire`]: the typed Converse request, answer and stream-event payloads;
//! - [`request`]: model → Converse body ([`messages`] and [`media`] for the conversation,
//!   [`chat_extra`] for what a Chat client's request kept in `extra`, [`ids`] for tool-use ids
//!   Bedrock would reject);
//! - [`answer`]: a Converse answer → [`crate::model::Answer`];
//! - [`events`]: ConverseStream frames → [`crate::model::StreamEvent`]s, with explicit state.

pub mod answer;
pub mod chat_extra;
pub mod events;
pub mod ids;
pub mod media;
pub mod messages;
pub mod request;
#[cfg(test)]
mod test_support;
pub mod wire;
