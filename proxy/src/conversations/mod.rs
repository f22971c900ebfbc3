//! The proxy-owned Responses conversation store (docs/decisions/0003-proxy-owns-conversation-state.md):
//! each stored turn is a row of `switchyard_responses` in the ledger's database, with a
//! bounded cache in front, expired by `responses.retention`, read back by the
//! `/v1/responses/{id}` endpoints and by `previous_response_id` expansion.
//!
//! - [`record`]: what one stored turn holds ([`StoredResponse`]).
//! - [`store`]: [`ConversationStore`], the API the request path uses (put, get, delete, chain).
//! - [`database`]: the SQL, on the ledger's pool and runtime; [`schema`]: the table (version 6).
//! - [`cache`]: the bounded in-memory cache; [`sweep`]: the background expiry sweeper.
//! - [`service`]: started next to the ledger, on its database and runtime.
//! - [`settings`]: `responses:` as compiled from the policy; [`metrics`]: its counters.
//! - [`endpoints`]: `GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`,
//!   in the shapes of [`wire`].

mod cache;
mod database;
pub mod endpoints;
pub mod error;
pub mod metrics;
pub mod record;
pub(crate) mod schema;
pub mod service;
pub mod settings;
pub mod store;
pub mod sweep;
pub mod wire;

pub use error::StoreError;
pub use metrics::ResponsesMetrics;
pub use record::StoredResponse;
pub use settings::{ConversationSettings, Retention};
pub use store::ConversationStore;

#[cfg(test)]
mod tests;
