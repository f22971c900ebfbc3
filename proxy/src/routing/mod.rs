//! Choosing where a request goes: live figures per target, strategies that score them,
//! circuit breakers, and the attempt plan built from all of it.

pub mod circuit;
pub mod explain;
pub mod headroom;
pub mod latency;
pub mod plan;
pub mod score;
pub mod stats;
pub mod window;

pub use plan::{plan, rank, Plan, PlannedAttempt, RankedTarget, SkipReason};
pub use score::RequestShape;
pub use stats::{AttemptPermit, Availability, LiveStats};

#[cfg(test)]
mod latency_tests;
#[cfg(test)]
mod strategy_tests;
#[cfg(test)]
mod tier_tests;
