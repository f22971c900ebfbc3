//! Harness for Switchyard's end-to-end tests: the real `switchyard` binary started on
//! free local ports against `loadtest` simulators, driven by async-openai and reqwest.
//!
//! - [`proxy`]: start, stop and inspect one proxy process ([`Proxy`]).
//! - [`fixtures`]: simulators, keys and the `routes.yaml` the tests share.
//! - [`http`]: raw HTTP helpers (time bounds, SSE parsing, OpenAI error shape).
//! - [`messages`]: an Anthropic Messages client (key headers, error shape, stream grammar).
//! - [`ports`]: free and closed local ports.
//! - [`services`]: the PostgreSQL and Redis some tests need (skipped locally, required in CI).
//! - [`conformance`]: every provider kind behind one interface, for the conformance list.
//! - [`python`]: Python scenarios driving the proxy with the official Anthropic SDK.
//! - [`claude_fixtures`]: Anthropic and Bedrock simulators and the policy the Claude tests share.
//! - [`anthropic_stream`]: Anthropic SSE parsed and checked as a strict client reads it.
//! - [`slow_client`]: slow, idle and hostile raw-TCP clients, each bounded in time.
//! - [`tls`]: self-signed certificates and clients that trust only them.
//! - [`capture`]: the request bodies an upstream simulator received.
//! - [`otlp`]: in-process OTLP trace receivers (gRPC, HTTP) and a span-tree rendering.

pub mod anthropic_stream;
pub mod capture;
pub mod claude_fixtures;
pub mod conformance;
pub mod fixtures;
pub mod http;
pub mod messages;
pub mod otlp;
pub mod ports;
pub mod proxy;
pub mod python;
pub mod responses;
pub mod services;
pub mod slow_client;
pub mod tls;

/// A new, empty directory under the temp dir named `{prefix}-{pid}-{random}`, created
/// exclusively so no other process or test can own or remove it.
pub fn scratch_dir(prefix: &str) -> std::path::PathBuf {
    loadtest::proxy_process::fresh_dir(prefix).unwrap_or_else(|e| panic!("{e:#}"))
}

pub use capture::{body_mentions, fetch_captured, CapturesRequests};
pub use fixtures::{
    key_hash, one_sim_routes, policy, start_sim, two_sim_routes, Sims, ALPHA_KEY, UPSTREAM_KEY_A,
    UPSTREAM_KEY_B,
};
pub use http::{
    error_of, get, http_client, post, post_json, post_stream, post_stream_with, sse_data, within,
    Reply, StreamReply,
};
pub use proxy::Proxy;
pub use services::service_url;

/// Installs rustls' ring crypto provider once per process; reqwest (and so
/// async-openai) is built without a default provider.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
