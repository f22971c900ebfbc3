//! Token usage and its cost: what a request consumed, priced at the served target's rates;
//! budgets, rate limits and the ledger every request's spend is recorded in.

pub mod budget;
pub mod cost;
pub mod ledger;
pub mod ratelimit;
pub mod service;
pub mod spend;
pub mod spend_report;
pub mod usage;

#[cfg(test)]
pub(crate) mod test_services;

pub use cost::cost_usd;
pub use spend::{Admission, Spend, SpendError};
pub use usage::Usage;
