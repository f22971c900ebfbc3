//! How a simulator behaves when no fault is scripted: name, latency, answer length,
//! authentication and rate limiting.

use std::time::Duration;

/// Static behaviour of one [`OpenAiSim`](super::OpenAiSim).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Shown in answers ("Hello from <name>"), `system_fingerprint` and the `x-sim-name` header,
    /// so a test can tell which upstream served a request.
    pub name: String,
    /// Delay before the response headers (and, for streams, the first chunk).
    pub ttft: Duration,
    /// Delay before each streamed content chunk.
    pub inter_token: Duration,
    /// Content chunks (= completion tokens) per answer; `max_completion_tokens` /
    /// `max_tokens` of a request caps it, and then `finish_reason` is `"length"`.
    pub output_tokens: usize,
    /// When set, requests must carry `Authorization: Bearer <key>`, else 401.
    pub api_key: Option<String>,
    /// Requests allowed per fixed 60 s window; over it the sim answers 429.
    pub rpm_limit: Option<u64>,
    /// Send `x-ratelimit-*` headers (docs/wire-formats.md §7) on inference responses.
    pub send_rate_limit_headers: bool,
    /// Prompt tokens each chat answer reports as read from the prompt cache
    /// (`usage.prompt_tokens_details.cached_tokens`, at most the prompt), as OpenAI does
    /// for a repeated prompt prefix; 0 leaves the details out.
    pub cached_prompt_tokens: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            name: "openai-sim".to_owned(),
            ttft: Duration::ZERO,
            inter_token: Duration::ZERO,
            output_tokens: 8,
            api_key: None,
            rpm_limit: None,
            send_rate_limit_headers: true,
            cached_prompt_tokens: 0,
        }
    }
}
