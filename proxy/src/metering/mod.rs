//! Token usage and its cost: what a request consumed, priced at the served target's rates;
//! budgets, rate limits and the ledger every request's spend is recorded in.

pub mod audit;
pub mod bound;
pub mod budget;
pub mod cost;
pub mod ledger;
pub mod max_cost;
pub mod money;
pub mod ratelimit;
pub mod reconcile;
pub mod service;
pub mod spend;
pub mod spend_report;
pub mod tokenizer;
pub mod usage;
pub mod usage_check;

#[cfg(test)]
pub(crate) mod test_services;

pub use cost::cost_usd;
pub use money::NanoUsd;
pub use spend::{Admission, Spend, SpendError};
pub use usage::Usage;

/// What admission needs to know of a request: its size and how much output it may ask
/// for. Implemented by the request types (`providers/metered.rs`), so that metering
/// depends on no provider.
pub trait Metered {
    /// Bytes of prompt text, for the rate-limit estimate.
    fn prompt_bytes(&self) -> usize;
    /// The billed parts of the prompt, for the reservation's bound.
    fn prompt_parts(&self) -> bound::PromptParts<'_>;
    /// The client's own output cap (`Some(0)` when it produces no tokens, `None` when the
    /// client set none).
    fn client_output_cap(&self) -> Option<u32>;
    /// Choices asked for (`n`), at least 1.
    fn choices(&self) -> u32;
    /// Output tokens an encoder may send beside `cap` (a thinking budget added to it).
    fn thinking_allowance(&self, cap: u32) -> u32;
}
