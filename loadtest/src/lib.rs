//! Switchyard's load-test toolkit: provider simulators used as upstreams by the
//! end-to-end tests, the overhead benchmark and the demo.
//!
//! The OpenAI-compatible simulator ([`OpenAiSim`]) speaks the wire format of
//! `docs/wire-formats.md` §1 and §7 and can be scripted with [`Fault`]s
//! to misbehave the way real upstreams do (429s, 5xx, dropped or stalled streams).
//! The Azure simulator ([`AzureSim`]) puts it behind Azure OpenAI's URLs, auth and quirks
//! (§6). The Bedrock simulator ([`BedrockSim`]) speaks Converse, ConverseStream and
//! InvokeModel behind real SigV4 verification (§2–5), including Claude's native
//! InvokeModel body; it also accepts Bedrock API keys and the temporary credentials the fake
//! AWS identity endpoints ([`IdentitySim`]: STS, container credentials) issue. The Anthropic
//! simulator ([`AnthropicSim`]) speaks the Messages API
//! (requests, SSE events, errors, count_tokens, rate-limit headers).
//!
//! Every simulator keeps its last inference requests ([`CapturesRequests`], and
//! `GET /_sim/requests` over HTTP), so a test can check what an upstream was sent.

pub mod anthropic_sim;
pub mod azure_sim;
pub mod bedrock_sim;
pub mod bench;
pub mod capture;
pub mod duration;
mod form;
pub mod identity_sim;
pub mod openai_sim;

pub use anthropic_sim::{
    AnthropicFault, AnthropicSim, AnthropicSimConfig, AnthropicSimStats, RateQuota,
};
pub use azure_sim::{AzureDeployment, AzureSim, AzureSimConfig};
pub use bedrock_sim::{BedrockFault, BedrockSim, BedrockSimConfig, BedrockSimStats};
pub use capture::{CapturedRequest, CapturedRequests, CapturesRequests, CAPTURE_LIMIT};
pub use identity_sim::{IdentitySim, IdentitySimConfig, Keyring};
pub use openai_sim::{answer_text, Fault, OpenAiSim, SimConfig, SimStats};
pub mod proxy_process;
mod serve;

/// A plain HTTP client for talking to the proxy and simulators (rustls with the ring
/// provider, which must be installed once per process before any client is built).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder().build()?)
}
