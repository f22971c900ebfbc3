//! Choosing where a request goes: live figures per target and the attempt plan built from them.

pub mod plan;
pub mod stats;

pub use plan::{plan, Plan, PlannedAttempt, SkipReason};
pub use stats::{Availability, LiveStats};
