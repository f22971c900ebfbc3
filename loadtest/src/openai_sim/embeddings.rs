//! `POST /v1/embeddings`: validation, deterministic unit vectors derived from a
//! hash of each input, float or base64 encoding (docs/wire-formats.md §1.5).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::deliver::{decide, deliver_json, hang, Outcome};
use super::errors::ApiError;
use super::gate::{admit, check_auth, with_rate_headers};
use super::request::{parse_object, required_model};
use super::state::{bump, InFlight, SimState};
use super::tokens::embedding_input_tokens;

const DEFAULT_DIMENSIONS: usize = 8;
/// Bigger than any real model, small enough that a typo cannot exhaust memory.
const MAX_DIMENSIONS: usize = 4096;

#[derive(Debug, PartialEq)]
enum Input {
    Text(String),
    Tokens(Vec<Value>),
}

#[derive(Debug)]
struct EmbedRequest {
    model: String,
    inputs: Vec<Input>,
    dimensions: usize,
    base64: bool,
}

pub(crate) async fn embeddings(
    State(sim): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guard = sim.enter();
    bump(&sim.counters.requests, 1);
    bump(&sim.counters.embedding_requests, 1);
    sim.record_request(&headers, &body);
    if let Err(error) = check_auth(&sim, &headers) {
        return error.into_response();
    }
    let request = match parse_object(&body).and_then(|object| parse_request(&object)) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let prompt_tokens = request.inputs.iter().map(input_tokens).sum::<u64>().max(1);
    let (decision, admitted) = admit(&sim, prompt_tokens);
    let response = match admitted {
        Ok(()) => answer(&sim, &request, prompt_tokens, guard).await,
        Err(too_many) => too_many,
    };
    with_rate_headers(&sim, &decision, response)
}

async fn answer(
    sim: &Arc<SimState>,
    request: &EmbedRequest,
    prompt_tokens: u64,
    guard: InFlight,
) -> Response {
    let delivery = match decide(sim.faults.next()) {
        Outcome::Answer(delivery) => delivery,
        Outcome::Error(response) => return response,
        Outcome::Hang => return hang(sim).await,
    };
    if !sim.pause(sim.config.ttft).await {
        return ApiError::shutting_down().into_response();
    }
    let data: Vec<Value> = request
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = embed(input, request.dimensions);
            let embedding = if request.base64 {
                Value::String(to_base64(&vector))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let body = json!({
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    });
    deliver_json(sim, guard, body.to_string().into_bytes(), delivery, || {
        sim.record_served(prompt_tokens, 0);
    })
}

fn parse_request(request: &Map<String, Value>) -> Result<EmbedRequest, ApiError> {
    let model = required_model(request)?;
    let invalid_input = || {
        ApiError::invalid_request(
            "'input' must be a non-empty string, array of strings, array of tokens or array of token arrays",
            "input",
        )
    };
    let inputs = match request.get("input") {
        Some(Value::String(text)) if !text.is_empty() => vec![Input::Text(text.clone())],
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.iter().all(Value::is_u64) {
                vec![Input::Tokens(items.clone())]
            } else {
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(text) if !text.is_empty() => Ok(Input::Text(text.clone())),
                        Value::Array(tokens)
                            if !tokens.is_empty() && tokens.iter().all(Value::is_u64) =>
                        {
                            Ok(Input::Tokens(tokens.clone()))
                        }
                        _ => Err(invalid_input()),
                    })
                    .collect::<Result<_, _>>()?
            }
        }
        _ => return Err(invalid_input()),
    };
    let dimensions = match request.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(value) => match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if (1..=MAX_DIMENSIONS).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_request(
                    format!("'dimensions' must be an integer between 1 and {MAX_DIMENSIONS}"),
                    "dimensions",
                ))
            }
        },
    };
    let base64 = match request.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(format)) if format == "float" => false,
        Some(Value::String(format)) if format == "base64" => true,
        Some(_) => {
            return Err(ApiError::invalid_request(
                "'encoding_format' must be 'float' or 'base64'",
                "encoding_format",
            ))
        }
    };
    Ok(EmbedRequest {
        model,
        inputs,
        dimensions,
        base64,
    })
}

fn input_tokens(input: &Input) -> u64 {
    match input {
        Input::Text(text) => embedding_input_tokens(Some(text.chars().count()), 0),
        Input::Tokens(tokens) => embedding_input_tokens(None, tokens.len()),
    }
}

/// FNV-1a: stable across runs and platforms, unlike `std`'s hasher.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64: turns consecutive seeds into well-spread bits.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A unit vector (like OpenAI's) determined by the input alone.
fn embed(input: &Input, dimensions: usize) -> Vec<f32> {
    let seed = match input {
        Input::Text(text) => fnv1a(text.bytes()),
        Input::Tokens(tokens) => fnv1a(
            tokens
                .iter()
                .flat_map(|t| t.as_u64().unwrap_or(0).to_le_bytes()),
        ),
    };
    let raw: Vec<f32> = (0..dimensions as u64)
        .map(|i| {
            // 24 random bits → [-1, 1), exactly representable in f32.
            let bits = (splitmix64(seed.wrapping_add(i)) >> 40) as f32;
            bits / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        raw.iter().map(|x| x / norm).collect()
    } else {
        raw
    }
}

/// Little-endian f32s, base64-encoded, as `encoding_format: "base64"` returns them.
fn to_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = embed(&Input::Text("hello".to_owned()), 16);
        let b = embed(&Input::Text("hello".to_owned()), 16);
        let c = embed(&Input::Text("world".to_owned()), 16);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn accepts_the_four_input_forms() -> anyhow::Result<()> {
        for input in [
            json!("a"),
            json!(["a", "b"]),
            json!([1, 2, 3]),
            json!([[1, 2], [3]]),
        ] {
            let Value::Object(request) = json!({"model": "e", "input": input}) else {
                anyhow::bail!("json! object is an object");
            };
            assert!(
                parse_request(&request).is_ok(),
                "{input} should be accepted"
            );
        }
        for input in [json!(""), json!([]), json!([1, "a"]), json!({"a": 1})] {
            let Value::Object(request) = json!({"model": "e", "input": input}) else {
                anyhow::bail!("json! object is an object");
            };
            assert!(
                parse_request(&request).is_err(),
                "{input} should be refused"
            );
        }
        Ok(())
    }
}
