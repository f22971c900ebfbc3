//! Switchyard: an OpenAI-compatible proxy that routes each request to the best provider
//! deployment, fails over when one runs out of capacity, and meters every token's cost.
//!
//! A request's lifecycle, and where each step lives:
//!
//! 1. [`gateway`] (the only pingora-facing code) reads the request and its body, bounded by
//!    `server.max_request_bytes`, and loads one policy snapshot ([`state`]) for the request.
//! 2. [`handler`] authenticates the key ([`auth`]), parses the body into [`api`] types,
//!    checks the model exists and the team may use it, then checks the team's rate limits
//!    and reserves the request's maximum cost against its budget ([`metering::spend`]).
//! 3. [`relay::attempts`] asks [`routing`] for an attempt plan (targets in order, skipping
//!    disabled and cooling-down ones), then for each step builds the upstream request
//!    ([`providers`]), sends it ([`upstream`]) and classifies failures: capacity, timeouts and
//!    server errors fail over before any byte reaches the client; client errors return.
//! 4. Answers are translated back; streams go through [`relay::stream`] event by event, and
//!    a failure after the first byte ends the stream with an OpenAI-style error event.
//! 5. [`relay::record`] finishes the request once: metrics ([`metrics`]), spend (the budget
//!    reservation settled, the entry handed to the batched [`metering::ledger`]) and one
//!    access-log line. Every error is mapped to HTTP in [`error`].
//!
//! Configuration ([`config`]) is compiled into an immutable policy and swapped atomically on
//! reload ([`reload`]); live target figures live beside it and survive reloads.

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod gateway;
pub mod handler;
pub mod metering;
pub mod metrics;
pub mod model;
pub mod providers;
pub mod relay;
pub mod reload;
pub mod routing;
pub mod server;
pub mod state;
pub mod upstream;
