//! Talking to upstreams: the shared HTTP client, one attempt's exchange, and the
//! classification of what went wrong (capacity → fail over, client error → return).

//!
//! Nothing here knows a provider: a provider's own error vocabulary (AWS error types, …)
//! is read by its unit (`providers/<kind>/errors.rs`), which hands the client a
//! [`Classifier`] with each send and falls back on [`classify::classify_status`].

pub mod base_url;
pub mod body;
pub mod classify;
pub mod client;
#[cfg(test)]
pub mod scripted;
pub mod scrub;
pub mod transport;

use bytes::Bytes;
use http::HeaderMap;

pub use body::UpstreamResponse;
pub use classify::{AttemptFailure, Classifier, FailureKind};
pub use client::UpstreamClient;

/// A request ready to send: the only thing the upstream client sees.
#[derive(Debug)]
pub struct UpstreamRequest {
    /// Built from the provider's [`base_url::BaseUrl`]; shown only through
    /// [`base_url::redact_url`].
    pub url: url::Url,
    pub headers: HeaderMap,
    pub body: Bytes,
}
pub use transport::Transport;
