//! Token usage and its cost: what a request consumed, priced at the served target's rates.

pub mod cost;
pub mod usage;

pub use cost::cost_usd;
pub use usage::Usage;
