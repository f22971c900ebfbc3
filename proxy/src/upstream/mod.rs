//! Talking to upstreams: the shared HTTP client, one attempt's exchange, and the
//! classification of what went wrong (capacity → fail over, client error → return).

pub mod classify;
pub mod client;
#[cfg(test)]
pub mod scripted;
pub mod transport;

pub use classify::{AttemptFailure, FailureKind};
pub use client::UpstreamClient;
pub use transport::Transport;
