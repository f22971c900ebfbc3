//! The provider conformance harness: what every provider kind must offer so that the one
//! case list in `tests/conformance.rs` runs against its simulator through the real binary.
//!
//! A provider kind is one [`Upstream`] implementation (a file in this folder) that starts
//! its simulator, writes its `providers:` entry and target fields, injects each [`Trouble`]
//! and reports what the simulator saw. [`Stage`] puts it in front of the proxy as model
//! `solo` (its only target) and model `pair` (first target, with a healthy OpenAI-compatible
//! `backup` second). Adding a provider = one new file here + one entry in the
//! `conformance!` list.

mod anthropic;
mod azure;
mod bedrock;
mod openai;

use std::future::Future;
use std::time::{Duration, Instant};

use loadtest::OpenAiSim;
use serde_json::Value;

use crate::fixtures::{policy, start_sim, UPSTREAM_KEY_B};
use crate::http::get;
use crate::proxy::Proxy;

pub use anthropic::Anthropic;
pub use azure::Azure;
pub use bedrock::{Bedrock, BedrockConverse};
pub use openai::OpenAi;

/// The provider name of the target under test (what `x-switchyard-provider` shows).
pub const PRIMARY: &str = "primary";
/// The healthy second target of model `pair`, an OpenAI-compatible simulator.
pub const BACKUP: &str = "backup";
/// Served by the provider under test alone.
pub const SOLO: &str = "solo";
/// Served by the provider under test, then by [`BACKUP`].
pub const PAIR: &str = "pair";

/// USD per million tokens of the target under test, cache rates included.
pub const PRICE_INPUT: f64 = 1.0;
pub const PRICE_OUTPUT: f64 = 2.0;
pub const PRICE_CACHED_INPUT: f64 = 0.5;
pub const PRICE_CACHE_WRITE: f64 = 1.25;

/// Delay between streamed events of a [`Tuning::slow`] simulator.
pub const SLOW_PACE: Duration = Duration::from_millis(20);
/// Events in a [`Tuning::slow`] answer: far more than a test waits for.
pub const SLOW_EVENTS: usize = 200;

/// What an upstream does wrong on its next model request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// 429 (OpenAI, Azure, Anthropic) or `ThrottlingException` (Bedrock).
    RateLimited,
    /// HTTP 500.
    ServerError,
    /// A 200 whose body is not JSON (or not the format's events, for a stream).
    Garbage,
    /// A non-streamed 200 whose body is JSON but not an answer (an error object).
    WrongShape,
    /// A stream cut after that many content events (the connection aborted).
    DropAfter(usize),
    /// A stream that sends that many content events, then nothing.
    StallAfter(usize),
}

/// How a simulator is started, for the cases that need more than the defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    /// Usage reports cached-read (and, where the format has them, cache-write) tokens.
    pub cache: bool,
    /// Streams of about [`SLOW_EVENTS`] events, [`SLOW_PACE`] apart, so a client can hang
    /// up mid-way (Bedrock echoes the prompt, so its answer is as long as the prompt).
    pub slow: bool,
}

/// Prompt-cache tokens a [`Tuning::cache`] simulator reports in each answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheReport {
    pub read: u64,
    /// 0 where the format has no cache writes (OpenAI, Azure).
    pub write: u64,
}

/// The tool exchange of a second tool-round-trip request, as the simulator received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenToolExchange {
    /// The id of the assistant's replayed tool call.
    pub call_id: String,
    /// The id the tool result answers.
    pub result_id: String,
    /// The tool result's text.
    pub result: String,
}

/// An image as the simulator received it: its media subtype (`png`) and base64 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenImage {
    pub format: String,
    pub base64: String,
}

/// One provider kind under test: its simulator and how to drive it.
pub trait Upstream: Sized {
    /// The `kind:` this entry tests (for messages).
    const KIND: &'static str;
    /// What [`Tuning::cache`] makes the simulator report.
    const CACHE: CacheReport;

    /// Starts the simulator(s), on free local ports.
    fn start(tuning: Tuning) -> impl Future<Output = Self> + Send;
    /// The `providers:` entry named `name`: one line, indented by two spaces.
    fn provider_yaml(&self, name: &str) -> String;
    /// A target's fields other than `provider` and `price`, e.g. `model: "x"`.
    fn target_yaml(&self) -> String;
    /// Makes the next model request go wrong.
    fn inject(&self, trouble: Trouble);
    /// Model requests the simulator received.
    fn model_requests(&self) -> u64;
    /// Model requests whose answer is still being produced (stalls included).
    fn in_flight(&self) -> u64;
    /// The answer text to a plain user message `prompt`.
    fn expected_answer(&self, prompt: &str) -> String;
    /// The tool call id, tool result id and result text of the last request.
    fn seen_tool_exchange(&self) -> Option<SeenToolExchange>;
    /// The first image of the last request's first message.
    fn seen_image(&self) -> Option<SeenImage>;
}

/// A provider under test, the backup and a proxy in front of both.
pub struct Stage<U> {
    pub upstream: U,
    pub backup: OpenAiSim,
    pub proxy: Proxy,
}

impl<U: Upstream> Stage<U> {
    /// Default simulators and the standard policy.
    pub async fn start() -> Self {
        Self::start_with(Tuning::default(), "").await
    }

    /// `server_extra` holds more `server:` lines; `request_timeout: …` there replaces the
    /// policy's own.
    pub async fn start_with(tuning: Tuning, server_extra: &str) -> Self {
        let upstream = U::start(tuning).await;
        let backup = start_sim(BACKUP, UPSTREAM_KEY_B).await;
        let proxy = Proxy::start(&routes(&upstream, &backup, server_extra)).await;
        println!("conformance stage for kind {} is up", U::KIND);
        Stage {
            upstream,
            backup,
            proxy,
        }
    }

    /// `…/v1/chat/completions` of the proxy.
    pub fn chat_url(&self) -> String {
        self.proxy.url("/chat/completions")
    }

    /// `/admin/spend?team=alpha` once it counts `requests` requests, or after 5 s.
    pub async fn spend_after(&self, requests: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let spend = get(&self.proxy.admin("/admin/spend?team=alpha"), None)
                .await
                .json();
            if spend["requests"].as_u64() == Some(requests) || Instant::now() > deadline {
                return spend;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls (for up to 5 s) until the upstream has no request in flight; returns the count.
    pub async fn upstream_settled(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.upstream.in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.upstream.in_flight()
    }
}

/// The policy of a [`Stage`].
fn routes<U: Upstream>(upstream: &U, backup: &OpenAiSim, server_extra: &str) -> String {
    let providers = format!(
        "{}  {BACKUP}: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_B} }}\n",
        upstream.provider_yaml(PRIMARY),
        backup.base_url()
    );
    let target = upstream.target_yaml();
    let price = format!(
        "price: {{ input: {PRICE_INPUT}, output: {PRICE_OUTPUT}, cached_input: {PRICE_CACHED_INPUT}, cache_write: {PRICE_CACHE_WRITE} }}"
    );
    let models = format!(
        r#"  {SOLO}:
    targets:
      - {{ provider: {PRIMARY}, {target}, {price} }}
  {PAIR}:
    targets:
      - {{ provider: {PRIMARY}, {target}, {price} }}
      - {{ provider: {BACKUP}, model: up-backup, price: {{ input: 1.0, output: 2.0 }} }}
"#
    );
    let yaml = policy("", &providers, &models, &format!("[{SOLO}, {PAIR}]"));
    with_server_lines(&yaml, server_extra)
}

/// Adds `server:` lines to a policy, replacing a setting the policy already has.
fn with_server_lines(yaml: &str, server_extra: &str) -> String {
    let mut yaml = yaml.to_owned();
    for line in server_extra.lines().filter(|l| !l.trim().is_empty()) {
        let key = line.split(':').next().unwrap_or_default().trim();
        let kept: Vec<&str> = yaml
            .lines()
            .filter(|l| !l.starts_with(&format!("  {key}:")))
            .collect();
        yaml = kept.join("\n") + "\n";
        yaml = yaml.replacen("server:\n", &format!("server:\n  {}\n", line.trim()), 1);
    }
    yaml
}

/// What a request with OpenAI `usage` costs at the target under test's prices, counting
/// `prompt_tokens_details.cached_tokens` and `cache_write_tokens` at their own rates.
pub fn cost_of(usage: &Value) -> f64 {
    let count = |value: &Value| value.as_f64().unwrap_or(0.0);
    let prompt = count(&usage["prompt_tokens"]);
    let output = count(&usage["completion_tokens"]);
    let read = count(&usage["prompt_tokens_details"]["cached_tokens"]);
    let write = count(&usage["prompt_tokens_details"]["cache_write_tokens"]);
    ((prompt - read - write) * PRICE_INPUT
        + read * PRICE_CACHED_INPUT
        + write * PRICE_CACHE_WRITE
        + output * PRICE_OUTPUT)
        / 1e6
}

/// The text of an OpenAI message `content`: a string, or its text parts joined.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect(),
        _ => String::new(),
    }
}

/// The tool exchange of an OpenAI-shaped request body (OpenAI-compatible and Azure).
fn openai_tool_exchange(body: &Value) -> Option<SeenToolExchange> {
    let messages = body["messages"].as_array()?;
    let call = messages
        .iter()
        .find_map(|m| m["tool_calls"].as_array()?.first())?;
    let result = messages.iter().find(|m| m["role"] == "tool")?;
    Some(SeenToolExchange {
        call_id: call["id"].as_str()?.to_owned(),
        result_id: result["tool_call_id"].as_str()?.to_owned(),
        result: content_text(&result["content"]),
    })
}

/// The first image of an OpenAI-shaped request's first message, from its data URL.
fn openai_image(body: &Value) -> Option<SeenImage> {
    let parts = body["messages"][0]["content"].as_array()?;
    let url = parts
        .iter()
        .find_map(|part| part["image_url"]["url"].as_str())?;
    let (head, base64) = url.strip_prefix("data:image/")?.split_once(";base64,")?;
    Some(SeenImage {
        format: head.to_owned(),
        base64: base64.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_lines_replace_the_policys_own() {
        let yaml = "version: 1\nserver:\n  request_timeout: 10s\n  first_byte_timeout: 2s\n";
        let out = with_server_lines(yaml, "request_timeout: 2s\n");
        assert_eq!(
            out,
            "version: 1\nserver:\n  request_timeout: 2s\n  first_byte_timeout: 2s\n"
        );
    }

    #[test]
    fn cached_and_written_tokens_have_their_own_rates() {
        let usage = json!({"prompt_tokens": 100, "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 20}});
        let expected = (40.0 * 1.0 + 40.0 * 0.5 + 20.0 * 1.25 + 10.0 * 2.0) / 1e6;
        assert!((cost_of(&usage) - expected).abs() < 1e-15);
    }
}
