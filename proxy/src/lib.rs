//! Switchyard: an OpenAI-compatible proxy that routes each request to the best provider
//! deployment, fails over when one runs out of capacity, and meters every token's cost.
//!
//! A request's lifecycle, and where each step lives:
//!
//! 0. [`listener`] accepts the connection (bounded in number, TLS when configured) and
//!    bounds the client's time to send its header and body; a shutdown drains it.
//! 1. [`gateway`] (the only pingora-facing code) reads the request and its body, bounded by
//!    `server.max_request_bytes`, and loads one policy snapshot ([`state`]) for the request.
//! 2. [`handler`] authenticates the key ([`auth`]) and decodes the body with the client's
//!    dialect ([`dialects`]) into the proxy's own typed [`model`] (embeddings keep their
//!    [`api`] type), checks the model exists and the team may use it, then checks the team's
//!    rate limits and reserves the request's maximum cost against its budget
//!    ([`metering::spend`]), reading prompt size and output cap from the model.
//! 3. [`relay::attempts`] asks [`routing`] for an attempt plan (targets in order, skipping
//!    disabled and cooling-down ones), then for each step has the target's provider
//!    ([`providers`]) build the upstream request from the model — or, when the upstream
//!    speaks the client's dialect, forward the client's body with only the model renamed
//!    (the pass-through) — sends it ([`upstream`]) and classifies failures: capacity,
//!    timeouts and server errors fail over before any byte reaches the client; client errors
//!    return.
//! 4. The provider reads the answer back into a [`model::Answer`] (or, on the pass-through,
//!    relays the body with the client's model name); streams go through [`relay::stream`]
//!    event by event, as [`model::StreamEvent`]s or pass-through bytes, and the client's
//!    dialect writes what the client sees. A failure after the first byte ends the stream
//!    with the dialect's error event.
//! 5. [`relay::record`] finishes the request once: metrics ([`metrics`]), spend (the budget
//!    reservation settled, the entry — with the attempt chain and policy version of the
//!    audit trail, [`metering::audit`] — handed to the batched [`metering::ledger`]) and one
//!    access-log line. Every error is mapped to HTTP in [`error`].
//!
//! Each request is one SERVER span and each upstream attempt one CLIENT span under it
//! ([`telemetry`]), exported over OTLP when configured.
//!
//! Configuration ([`config`]) is compiled into an immutable policy and swapped atomically on
//! reload ([`reload`]); live target figures live beside it and survive reloads.

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod conversations;
pub mod dialects;
pub mod endpoint;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod gateway;
pub mod handler;
pub mod ids;
pub mod listener;
pub mod log_writer;
pub mod logging;
pub mod metering;
pub mod metrics;
pub mod model;
pub mod providers;
pub mod relay;
pub mod reload;
pub mod routing;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod upstream;
