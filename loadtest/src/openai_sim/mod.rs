//! An OpenAI-compatible upstream simulator: chat completions (plain, streamed,
//! tool calls), the Responses API (`responses`), embeddings and models, with scriptable
//! faults, rate limiting, counters and request capture. A request flows: `server` (routing)
//! → `chat` / `responses` / `embeddings` →
//! `gate` (key, rate limit) → `deliver` (fault drawn from `faults`) → `answer`
//! → `wire` / `chat_stream` (bytes out through `body`).
//!
//! ```no_run
//! use loadtest::{Fault, OpenAiSim, SimConfig};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = OpenAiSim::start(SimConfig { name: "east".into(), ..SimConfig::default() }).await?;
//! // Point a client or the proxy at sim.base_url() ("http://127.0.0.1:PORT/v1").
//! sim.push_faults([Fault::Status(503), Fault::DropMidStream { after_chunks: 2 }]);
//! // ... send requests ...
//! assert_eq!(sim.stats().chat_requests, 2);
//! # Ok(())
//! # }
//! ```

mod answer;
mod body;
pub(crate) mod chat;
mod chat_stream;
mod config;
mod control;
mod deliver;
pub(crate) mod embeddings;
mod errors;
pub(crate) mod faults;
mod gate;
mod latency;
mod models;
mod ratelimit;
mod request;
pub(crate) mod responses;
mod server;
pub(crate) mod state;
mod tokens;
mod tools;
mod wire;

pub use config::SimConfig;
pub use faults::Fault;
pub use latency::LatencyJitter;
pub use server::OpenAiSim;
pub use state::SimStats;
pub use tokens::answer_text;
