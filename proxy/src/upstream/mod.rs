//! Talking to upstreams: the shared HTTP client, one attempt's exchange, and the
//! classification of what went wrong (capacity → fail over, client error → return).

pub mod classify;
pub mod client;
pub mod ratelimit;

pub use classify::{AttemptFailure, FailureKind};
pub use client::UpstreamClient;
pub use ratelimit::RateLimitSnapshot;
