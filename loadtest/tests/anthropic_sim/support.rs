//! Test helpers: a loopback-only client, Messages request shortcuts, an SSE reader, and
//! SigV4-signed requests plus an event-stream frame decoder for the Bedrock simulator.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;
use loadtest::{AnthropicSim, AnthropicSimConfig, BedrockSim};
use serde_json::{json, Value};

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        .build()
        .context("building the test client")
}

pub async fn start() -> anyhow::Result<AnthropicSim> {
    AnthropicSim::start(AnthropicSimConfig::new("claude-sim")).await
}

/// A one-turn Messages body.
pub fn body(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 512,
           "messages": [{"role": "user", "content": text}]})
}

pub async fn send(
    sim: &AnthropicSim,
    path: &str,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    client()?
        .post(format!("{}{path}", sim.base_url()))
        .header("x-api-key", &sim.config().api_key)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))
}

/// POST /v1/messages → (status, JSON body).
pub async fn create(sim: &AnthropicSim, body: &Value) -> anyhow::Result<(u16, Value)> {
    let response = send(sim, "/v1/messages", body).await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.context("JSON body")?))
}

/// The error `(type, message)` of an Anthropic error body, after checking its shape.
pub fn error_of(body: &Value) -> (String, String) {
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["request_id"].is_string(), "{body}");
    (
        body["error"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// One SSE event: the `event:` name and the parsed `data:`.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

pub fn parse_sse(text: &str) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(d).with_context(|| format!("data {d}"))?);
            }
        }
        events.push(Event {
            name: name.context("event line")?,
            data: data.context("data line")?,
        });
    }
    Ok(events)
}

/// Reads a body until it ends or fails (or `limit` passes): the text, and whether it failed.
pub async fn read_until_end(
    response: reqwest::Response,
    limit: Duration,
) -> (String, Option<String>) {
    let mut stream = response.bytes_stream();
    let mut bytes = Vec::new();
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let error = loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
                Some(Err(error)) => break Some(error.to_string()),
                None => break None,
            },
            () = &mut deadline => break Some("deadline".to_owned()),
        }
    };
    (String::from_utf8_lossy(&bytes).into_owned(), error)
}

/// Text of every `text` block, concatenated.
pub fn message_text(message: &Value) -> String {
    message["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect()
}

/// Rebuilds a Message from stream events the way the SDK's accumulator does.
pub fn accumulate(events: &[Event]) -> anyhow::Result<Value> {
    let mut message = Value::Null;
    let mut json_parts: Vec<String> = Vec::new();
    for event in events {
        let data = &event.data;
        match event.name.as_str() {
            "message_start" => message = data["message"].clone(),
            "content_block_start" => {
                let index = data["index"].as_u64().context("index")? as usize;
                let blocks = message["content"].as_array_mut().context("content")?;
                anyhow::ensure!(blocks.len() == index, "blocks out of order");
                blocks.push(data["content_block"].clone());
                json_parts.push(String::new());
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().context("index")? as usize;
                let block = &mut message["content"][index];
                let delta = &data["delta"];
                let append = |block: &mut Value, field: &str, more: &str| {
                    let now = block[field].as_str().unwrap_or_default().to_owned();
                    block[field] = json!(now + more);
                };
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        append(block, "text", delta["text"].as_str().context("text")?)
                    }
                    Some("thinking_delta") => append(
                        block,
                        "thinking",
                        delta["thinking"].as_str().context("thinking")?,
                    ),
                    Some("signature_delta") => {
                        block["signature"] = delta["signature"].clone();
                    }
                    Some("input_json_delta") => json_parts[index]
                        .push_str(delta["partial_json"].as_str().context("partial_json")?),
                    other => anyhow::bail!("unknown delta {other:?}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().context("index")? as usize;
                if message["content"][index]["type"] == "tool_use" {
                    message["content"][index]["input"] = serde_json::from_str(&json_parts[index])?;
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                message["usage"]["output_tokens"] = data["usage"]["output_tokens"].clone();
            }
            "ping" | "message_stop" => {}
            other => anyhow::bail!("unexpected event {other}"),
        }
    }
    Ok(message)
}

/// The event names with `content_block_*` carrying their index, e.g. `start0`.
pub fn shape(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.name.as_str() {
            "content_block_start" => format!("start{}", e.data["index"]),
            "content_block_delta" => format!("delta{}", e.data["index"]),
            "content_block_stop" => format!("stop{}", e.data["index"]),
            other => other.to_owned(),
        })
        .collect()
}

/// A SigV4-signed POST to the Bedrock simulator.
pub async fn bedrock_post(
    sim: &BedrockSim,
    path: &str,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    let config = sim.config();
    let url = format!("{}{path}", sim.endpoint());
    let bytes = serde_json::to_vec(body)?;
    let identity: Identity = Credentials::new(
        config.access_key_id.clone(),
        config.secret_access_key.clone(),
        None,
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&config.region)
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let headers = [("content-type", "application/json")];
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(&bytes),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut request = client()?
        .post(&url)
        .header("content-type", "application/json")
        .body(bytes);
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    request.send().await.context("signed POST")
}

/// Decodes an event-stream body into (message type, event or exception type, payload JSON).
pub fn decode_frames(bytes: &[u8]) -> anyhow::Result<Vec<(String, String, Value)>> {
    let mut buffer = bytes;
    let mut out = Vec::new();
    while !buffer.is_empty() {
        let message = aws_smithy_eventstream::frame::read_message_from(&mut buffer)?;
        let header = |name: &str| {
            message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .and_then(|h| h.value().as_string().ok())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default()
        };
        let kind = header(":message-type");
        let name = if kind == "event" {
            header(":event-type")
        } else {
            header(":exception-type")
        };
        out.push((kind, name, serde_json::from_slice(message.payload())?));
    }
    Ok(out)
}

/// The Anthropic events carried by `chunk` frames.
pub fn chunk_events(frames: &[(String, String, Value)]) -> anyhow::Result<Vec<Event>> {
    frames
        .iter()
        .filter(|(kind, name, _)| kind == "event" && name == "chunk")
        .map(|(_, _, payload)| {
            let raw = STANDARD.decode(payload["bytes"].as_str().context("bytes")?)?;
            let data: Value = serde_json::from_slice(&raw)?;
            Ok(Event {
                name: data["type"].as_str().context("type")?.to_owned(),
                data,
            })
        })
        .collect()
}
