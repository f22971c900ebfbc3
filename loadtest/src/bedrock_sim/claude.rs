//! Claude on Bedrock through InvokeModel with the native Anthropic body
//! (AWS InvokeModel / InvokeModelWithResponseStream / CountTokens): `invoke` answers the Messages JSON,
//! `invoke-with-response-stream` answers `chunk` frames whose `bytes` are the base64 of one
//! Anthropic stream event each, `count-tokens` answers `{"inputTokens"}`. Validation, answers,
//! thinking signatures and cache accounting come from the Anthropic simulator's brain.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::deliver::{self, body_response, Ending, InFlight};
use super::{aws_error, frames, lock, BedrockFault, SimState};
use crate::anthropic_sim::brain::{Brain, DEFAULT_THINKING_SECRET};
use crate::anthropic_sim::events::stream_events;
use crate::anthropic_sim::validate::Surface;
use crate::anthropic_sim::wire::Message;

/// The Bedrock simulator's Claude: one brain per simulator (its own prompt cache).
pub struct Claude {
    brain: Brain,
}

impl Claude {
    pub fn new(name: &str) -> Self {
        Self {
            brain: Brain::new(name, DEFAULT_THINKING_SECRET),
        }
    }
}

/// Whether this request is Claude's: an Anthropic model id (base, inference profile such as
/// `us.` / `global.`, or an ARN naming one) on one of the native operations.
pub fn handles(model_id: &str, op: &str) -> bool {
    model_id.contains("anthropic.claude")
        && matches!(
            op,
            "invoke" | "invoke-with-response-stream" | "count-tokens"
        )
}

fn validation(sim: &SimState, message: &str) -> Response {
    lock(&sim.stats).validation_failures += 1;
    aws_error(StatusCode::BAD_REQUEST, "ValidationException", message)
}

/// Faults other than the ones `handle` already answered shape the 200: garbage, a wrong
/// shape, a cut or a stall (after `messageStart`-equivalent `message_start` and that many
/// more chunks), or a throttling exception frame.
pub(super) async fn respond(
    sim: &SimState,
    model_id: &str,
    op: &str,
    body: Value,
    fault: Option<BedrockFault>,
    delay: Duration,
    guard: InFlight,
) -> Response {
    let brain = &sim.claude.brain;
    if op == "count-tokens" {
        return count_tokens(sim, body);
    }
    let request = match brain.parse_value(body, Surface::Bedrock) {
        Ok(request) => request,
        Err(invalid) => return validation(sim, &invalid.0),
    };
    let message = brain.answer(&request, model_id, "msg_bdrk_sim_");
    let stop = sim.stop.subscribe();
    if op == "invoke" {
        tokio::time::sleep(delay).await;
        let full = Bytes::from(serde_json::to_vec(&message).unwrap_or_default());
        let (bytes, ending) = match fault {
            Some(BedrockFault::Garbage) => {
                (deliver::garbage_json(&sim.config.name), Ending::Complete)
            }
            Some(BedrockFault::WrongShape) => (deliver::wrong_shape_json(), Ending::Complete),
            Some(BedrockFault::DropMidStream { .. }) => (deliver::first_half(&full), Ending::Abort),
            Some(BedrockFault::StallMidStream { .. }) => {
                (deliver::first_half(&full), Ending::Stall)
            }
            _ => (full, Ending::Complete),
        };
        let mut response = body_response(
            "application/json",
            vec![(Duration::ZERO, bytes)],
            ending,
            guard,
            stop,
        );
        let usage = &message.usage;
        let headers = response.headers_mut();
        headers.insert(
            "x-amzn-bedrock-input-token-count",
            HeaderValue::from(usage.input_tokens),
        );
        headers.insert(
            "x-amzn-bedrock-output-token-count",
            HeaderValue::from(usage.output_tokens),
        );
        return response;
    }
    let all = chunk_frames(&message);
    let cut = |after: usize| all[..(1 + after).min(all.len())].to_vec();
    let throttle = |text: &str| frames::exception("throttlingException", text);
    let (frames, ending) = match fault {
        Some(BedrockFault::ThrottleBeforeContent) => {
            let mut some = cut(0);
            some.push(throttle(
                "Too many requests, please wait before trying again.",
            ));
            (some, Ending::Complete)
        }
        Some(BedrockFault::ThrottleMidStream) => {
            let mut some = cut(3);
            some.push(throttle(
                "Too many tokens, please wait before trying again.",
            ));
            (some, Ending::Complete)
        }
        Some(BedrockFault::DropMidStream { after_chunks }) => (cut(after_chunks), Ending::Abort),
        Some(BedrockFault::StallMidStream { after_chunks }) => (cut(after_chunks), Ending::Stall),
        Some(BedrockFault::Garbage) => {
            (deliver::garbage_frames(&sim.config.name), Ending::Complete)
        }
        _ => (all.clone(), Ending::Complete),
    };
    let chunks = frames.into_iter().map(|frame| (delay, frame)).collect();
    let mut response = body_response(
        "application/vnd.amazon.eventstream",
        chunks,
        ending,
        guard,
        stop,
    );
    response.headers_mut().insert(
        "x-amzn-bedrock-content-type",
        HeaderValue::from_static("application/json"),
    );
    response
}

/// One `chunk` frame per Anthropic event; `message_stop` carries the invocation metrics.
pub fn chunk_frames(message: &Message) -> Vec<Bytes> {
    let usage = &message.usage;
    stream_events(message, false)
        .into_iter()
        .map(|event| {
            let mut data = event.data;
            if event.name == "message_stop" {
                data["amazon-bedrock-invocationMetrics"] = json!({
                    "inputTokenCount": usage.input_tokens,
                    "outputTokenCount": usage.output_tokens,
                    "invocationLatency": 1,
                    "firstByteLatency": 1,
                    "cacheReadInputTokenCount": usage.cache_read_input_tokens,
                    "cacheWriteInputTokenCount": usage.cache_creation_input_tokens,
                });
            }
            let bytes = STANDARD.encode(data.to_string());
            frames::event("chunk", &json!({ "bytes": bytes }))
        })
        .collect()
}

/// Bedrock CountTokens: `{"input":{"invokeModel":{"body":"<base64>"}}}` counted like
/// the Messages API would; the Converse form counts body characters / 4 like Converse usage.
fn count_tokens(sim: &SimState, body: Value) -> Response {
    let input = &body["input"];
    let count = if let Some(encoded) = input["invokeModel"]["body"].as_str() {
        let Some(native) = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        else {
            return validation(sim, "input.invokeModel.body must be base64 of a JSON body");
        };
        match sim.claude.brain.parse_value(native, Surface::Bedrock) {
            Ok(request) => Brain::count_tokens(&request),
            Err(invalid) => return validation(sim, &invalid.0),
        }
    } else if input["converse"].is_object() {
        (input["converse"].to_string().len() / 4).max(1) as u64
    } else {
        return validation(
            sim,
            "input must contain exactly one of invokeModel or converse",
        );
    };
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(json!({ "inputTokens": count }).to_string()))
        .unwrap_or_default()
}
