//! Token usage and its cost: what a request consumed, priced at the served target's rates;
//! budgets, rate limits and the ledger every request's spend is recorded in.

pub mod budget;
pub mod cost;
pub mod ledger;
pub mod money;
pub mod ratelimit;
pub mod reconcile;
pub mod service;
pub mod spend;
pub mod spend_report;
pub mod usage;

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
    /// Bytes of prompt text, for the token estimate.
    fn prompt_bytes(&self) -> usize;
    /// The output the request may produce: its own cap, else `model_default`
    /// (`Some(0)` when it produces no tokens, `None` when unbounded).
    fn max_output_tokens(&self, model_default: Option<u32>) -> Option<u32>;
}
