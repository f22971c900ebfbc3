//! An Anthropic Messages API simulator: `/v1/messages`
//! plain and streamed, count_tokens and models, with the API's validation, tool use,
//! signed thinking blocks, prompt-cache accounting, rate-limit headers and scriptable faults.
//! The request rules and answers live in [`brain`], which the Bedrock simulator shares for
//! Claude's native InvokeModel body.
//!
//! ```no_run
//! use loadtest::{AnthropicFault, AnthropicSim, AnthropicSimConfig};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = AnthropicSim::start(AnthropicSimConfig::new("east")).await?;
//! // POST sim.base_url() + "/v1/messages" with x-api-key: sim.config().api_key.
//! sim.push_faults([AnthropicFault::Overloaded]);
//! assert_eq!(sim.stats().served_ok, 0);
//! # Ok(())
//! # }
//! ```

pub mod brain;
pub mod cache;
mod config;
pub mod events;
mod respond;
mod server;
pub mod validate;
pub mod wire;

pub use brain::{text_tokens, Brain, Invalid, DEFAULT_THINKING_SECRET};
pub use config::{AnthropicFault, AnthropicSimConfig, AnthropicSimStats, RateQuota};
pub use server::AnthropicSim;
pub use validate::Surface;
