//! Test helpers: an HTTP client that only talks to loopback, request shortcuts
//! and an SSE reader that keeps what arrived before an error.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use loadtest::{OpenAiSim, SimConfig};
use serde_json::{json, Value};

/// Upper bound for any single test request that is expected to succeed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn client() -> anyhow::Result<reqwest::Client> {
    client_with_timeout(CLIENT_TIMEOUT)
}

pub fn client_with_timeout(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        // Never route loopback traffic through an HTTP proxy from the environment.
        .no_proxy()
        .build()
        .context("building the test client")
}

pub async fn start(config: SimConfig) -> anyhow::Result<OpenAiSim> {
    OpenAiSim::start(config).await
}

pub async fn start_default() -> anyhow::Result<OpenAiSim> {
    start(SimConfig::default()).await
}

/// A one-message chat body.
pub fn chat_body(text: &str) -> Value {
    json!({"model": "gpt-test", "messages": [{"role": "user", "content": text}]})
}

pub fn stream_body(text: &str, include_usage: bool) -> Value {
    let mut body = chat_body(text);
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

pub async fn post(
    client: &reqwest::Client,
    sim: &OpenAiSim,
    path: &str,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    client
        .post(format!("{}{path}", sim.base_url()))
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))
}

pub async fn post_json(sim: &OpenAiSim, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let response = post(&client()?, sim, path, body).await?;
    let status = response.status().as_u16();
    let value = response.json().await.context("response body is JSON")?;
    Ok((status, value))
}

/// What a streamed body delivered: the raw bytes that arrived, and the error
/// that ended it, if it did not end cleanly.
pub struct Received {
    pub bytes: Vec<u8>,
    pub error: Option<String>,
}

impl Received {
    /// The payload of every complete `data:` line, in order.
    pub fn data(&self) -> Vec<String> {
        sse_data(&String::from_utf8_lossy(&self.bytes))
    }
}

/// Reads a body to its end or first error, each read bounded by `read_timeout`
/// (a stall shows up as an error "read timed out").
pub async fn read_body(response: reqwest::Response, read_timeout: Duration) -> Received {
    let mut stream = response.bytes_stream();
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(read_timeout, stream.next()).await {
            Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk),
            Ok(Some(Err(error))) => {
                return Received {
                    bytes,
                    error: Some(format!("{error:?}")),
                }
            }
            Ok(None) => return Received { bytes, error: None },
            Err(_) => {
                return Received {
                    bytes,
                    error: Some("read timed out".to_owned()),
                }
            }
        }
    }
}

/// Splits an SSE body into its `data:` payloads (events end with a blank line).
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .filter_map(|event| {
            event
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .next()
                .map(str::to_owned)
        })
        .collect()
}

/// Parses every payload but a final `[DONE]`.
pub fn chunks(data: &[String]) -> anyhow::Result<Vec<Value>> {
    data.iter()
        .filter(|payload| payload.as_str() != "[DONE]")
        .map(|payload| serde_json::from_str(payload).with_context(|| format!("chunk {payload}")))
        .collect()
}

/// Polls `condition` every 10 ms for up to `limit`.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// OpenAI's error shape: all four keys present.
pub fn assert_error_shape(body: &Value) -> anyhow::Result<&Value> {
    let error = body.get("error").context("error object")?;
    for key in ["message", "type", "param", "code"] {
        anyhow::ensure!(error.get(key).is_some(), "error lacks {key}: {body}");
    }
    Ok(error)
}
