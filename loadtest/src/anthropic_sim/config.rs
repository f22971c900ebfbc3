//! The Anthropic simulator's knobs: configuration, scripted faults and the stats snapshot.

use std::time::Duration;

use serde_json::Value;

use super::brain::DEFAULT_THINKING_SECRET;

/// Per-minute limits reported in `anthropic-ratelimit-*` headers and enforced with 429s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateQuota {
    pub requests_per_minute: u64,
    pub input_tokens_per_minute: u64,
    pub output_tokens_per_minute: u64,
}

impl Default for RateQuota {
    fn default() -> Self {
        Self {
            requests_per_minute: 4000,
            input_tokens_per_minute: 400_000,
            output_tokens_per_minute: 80_000,
        }
    }
}

/// Static behaviour of one [`AnthropicSim`](super::AnthropicSim).
#[derive(Clone, Debug)]
pub struct AnthropicSimConfig {
    /// Names the answers (`"<name> says: …"`) and the `x-sim-name` header.
    pub name: String,
    /// Requests must carry `x-api-key: <api_key>` (else 401 `authentication_error`).
    pub api_key: String,
    /// HMAC key of thinking signatures; the default equals the Bedrock simulator's, so
    /// either accepts the other's blocks. Change it to simulate a foreign signature.
    pub thinking_secret: String,
    /// Delay before the response headers of every answer.
    pub latency: Duration,
    /// Delay before each stream event after the first.
    pub inter_event: Duration,
    pub quota: RateQuota,
    /// Refuse consecutive same-role messages (the API merges them; older API versions refused).
    pub strict_alternation: bool,
    /// Served by `GET /v1/models`; any model id is accepted by `/v1/messages`.
    pub models: Vec<String>,
    /// When either is non-zero, every answer reports these `cache_read_input_tokens` /
    /// `cache_creation_input_tokens` (5-minute writes) beside `input_tokens`, which excludes
    /// them, instead of the prompt-cache accounting: a fixed report a test can predict.
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

impl AnthropicSimConfig {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

impl Default for AnthropicSimConfig {
    fn default() -> Self {
        Self {
            name: "anthropic-sim".to_owned(),
            api_key: "sk-ant-sim".to_owned(),
            thinking_secret: DEFAULT_THINKING_SECRET.to_owned(),
            latency: Duration::ZERO,
            inter_event: Duration::ZERO,
            quota: RateQuota::default(),
            strict_alternation: false,
            models: vec![
                "claude-sonnet-4-5-20250929".to_owned(),
                "claude-haiku-4-5-20251001".to_owned(),
                "claude-opus-4-1-20250805".to_owned(),
            ],
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        }
    }
}

/// A scripted misbehaviour. Each valid `POST /v1/messages` consumes one queued fault
/// (requests refused by auth or validation, and count_tokens, do not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnthropicFault {
    /// 429 `rate_limit_error` with `retry-after: <secs>`.
    RateLimit { retry_after_secs: u64 },
    /// 529 `overloaded_error`.
    Overloaded,
    /// 500 `api_error`.
    ApiError,
    /// Stream: that many events, then `event: error` (`overloaded_error`) and the end.
    /// Non-stream: a 529.
    StreamError { after_events: usize },
    /// Stream: that many events, then the connection is closed mid-stream.
    /// Non-stream: the headers and half the body, then the connection is closed.
    StreamCut { after_events: usize },
    /// Stream: that many events, then nothing until the client leaves.
    /// Non-stream: the headers and half the body, then nothing.
    StreamStall { after_events: usize },
    /// 200 whose body is not JSON (non-stream) or not SSE (stream).
    Garbage,
    /// Non-stream: 200 whose body is JSON but not a Message (an error object).
    /// Stream: a 200 whose only event is that error object.
    WrongShape,
    /// Answer normally after this extra delay before the first byte.
    Latency(Duration),
}

/// What the simulator saw since start.
#[derive(Clone, Debug, Default)]
pub struct AnthropicSimStats {
    /// Authenticated, versioned `/v1/messages` and count_tokens requests, faulted and
    /// invalid ones included.
    pub requests: u64,
    pub message_requests: u64,
    pub stream_requests: u64,
    pub count_tokens_requests: u64,
    pub auth_failures: u64,
    pub validation_failures: u64,
    /// Answers delivered completely (a stream once `message_stop` is sent).
    pub served_ok: u64,
    /// Streams whose client went away before the end (cut and stalled ones included once
    /// the client leaves).
    pub cancelled_streams: u64,
    /// Usage totals of complete answers.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    /// The last `/v1/messages` or count_tokens request (body as JSON, or a JSON string if it
    /// was not JSON; header names lowercase).
    pub last_path: Option<String>,
    pub last_body: Option<Value>,
    pub last_headers: Vec<(String, String)>,
    /// Every distinct `anthropic-beta` value seen (comma lists split), first seen first.
    pub betas_seen: Vec<String>,
    /// `anthropic-version` of the last request.
    pub last_version: Option<String>,
}
