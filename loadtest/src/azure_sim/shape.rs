//! Azure's differences applied to the OpenAI simulator's answers: the deployment's model
//! name, `prompt_filter_results` / `content_filter_results`, the `choices: []` first stream
//! chunk, content-filter refusals, Azure-style error bodies and rate-limit headers.

use std::io;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use super::server::Operation;

/// A prompt containing this is refused with Azure's content-filter 400.
pub const FILTER_PROMPT: &str = "[[azure-filter-prompt]]";
/// A prompt containing this gets an answer that ends with `finish_reason: "content_filter"`.
pub const FILTER_COMPLETION: &str = "[[azure-filter-completion]]";

/// Largest answer rewritten in memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// `{"error": {"code", "message"}}`, Azure's looser error shape (no `type`).
pub(super) fn azure_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The prompt-filter refusal, as the live service sends it (docs/wire-formats.md §6.3).
pub(super) fn content_filter_400() -> Response {
    let body = json!({"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
        "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            "hate": {"filtered": false, "severity": "safe"},
            "jailbreak": {"filtered": true, "detected": true},
            "self_harm": {"filtered": false, "severity": "safe"},
            "sexual": {"filtered": false, "severity": "safe"},
            "violence": {"filtered": false, "severity": "safe"}}}}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// The body with `model` set to the deployment (the deployments form ignores the client's).
pub(super) fn with_model(body: &Bytes, deployment: &str) -> Bytes {
    match serde_json::from_slice::<Map<String, Value>>(body) {
        Ok(mut object) => {
            object.insert("model".to_owned(), Value::String(deployment.to_owned()));
            serde_json::to_vec(&object).map_or_else(|_| body.clone(), Bytes::from)
        }
        Err(_) => body.clone(),
    }
}

pub(super) fn body_model(body: &Bytes) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("model")?.as_str().map(str::to_owned)
}

fn category_results(filtered: bool) -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe,
        "violence": if filtered { json!({"filtered": true, "severity": "high"}) } else { safe.clone() }})
}

fn prompt_filter_results() -> Value {
    let mut results = category_results(false);
    results["jailbreak"] = json!({"filtered": false, "detected": false});
    json!([{"prompt_index": 0, "content_filter_results": results}])
}

/// How one answer is to be reshaped.
pub(super) struct Shape {
    model: String,
    api_version: String,
    pub filter_prompt: bool,
    filter_completion: bool,
}

impl Shape {
    pub fn of(body: &Bytes, model: &str, api_version: &str) -> Self {
        let text = String::from_utf8_lossy(body);
        Self {
            model: model.to_owned(),
            api_version: api_version.to_owned(),
            filter_prompt: text.contains(FILTER_PROMPT),
            filter_completion: text.contains(FILTER_COMPLETION),
        }
    }

    pub async fn apply(self, response: Response, operation: Operation) -> Response {
        let chat = operation == Operation::Chat;
        let (mut parts, body) = response.into_parts();
        azure_rate_headers(&mut parts.headers);
        if parts.status == StatusCode::TOO_MANY_REQUESTS {
            let wait = parts
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("1")
                .to_owned();
            let message = format!("Requests to the {} Operation under Azure OpenAI API version {} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {wait} seconds.", operation_name(operation), self.api_version);
            let mut limited = azure_error(StatusCode::TOO_MANY_REQUESTS, "429", &message);
            for (name, value) in &parts.headers {
                if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
                    limited.headers_mut().insert(name.clone(), value.clone());
                }
            }
            return limited;
        }
        if !parts.status.is_success() {
            return Response::from_parts(parts, body);
        }
        let streaming = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        parts.headers.remove(header::CONTENT_LENGTH);
        if streaming && operation == Operation::Responses {
            // Responses events carry no filter annotations: they pass as they are.
            return Response::from_parts(parts, body);
        }
        if streaming {
            return Response::from_parts(parts, self.stream(body));
        }
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) => Response::from_parts(parts, Body::from(self.full(bytes, chat))),
            // The simulated upstream dropped the connection: so does Azure's.
            Err(_) => Response::from_parts(parts, aborted()),
        }
    }

    fn full(&self, bytes: Bytes, chat: bool) -> Bytes {
        let Ok(mut answer) = serde_json::from_slice::<Map<String, Value>>(&bytes) else {
            return bytes; // garbage stays garbage
        };
        answer.insert("model".to_owned(), Value::String(self.model.clone()));
        if chat {
            answer.insert("prompt_filter_results".to_owned(), prompt_filter_results());
            if let Some(choices) = answer.get_mut("choices").and_then(Value::as_array_mut) {
                for choice in choices {
                    self.choice(choice, true);
                }
            }
        }
        serde_json::to_vec(&answer).map_or(bytes, Bytes::from)
    }

    /// Adds the choice's filter results; a filtered completion ends with `content_filter`.
    fn choice(&self, choice: &mut Value, annotate: bool) {
        let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
        if finished && self.filter_completion {
            choice["finish_reason"] = json!("content_filter");
        }
        if annotate {
            choice["content_filter_results"] = category_results(finished && self.filter_completion);
        }
    }

    fn stream(self, body: Body) -> Body {
        let first = json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": prompt_filter_results()});
        let first = Bytes::from(format!("data: {first}\n\n"));
        let mut pending: Vec<u8> = Vec::new();
        let rest = body.into_data_stream().map(move |chunk| {
            let chunk = chunk.map_err(io::Error::other)?;
            pending.extend_from_slice(&chunk);
            let mut out = Vec::new();
            while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = pending.drain(..end + 2).collect();
                out.extend_from_slice(&self.event(&event));
            }
            Ok::<Bytes, io::Error>(Bytes::from(out))
        });
        let once = futures_util::stream::once(async move { Ok::<Bytes, io::Error>(first) });
        Body::from_stream(once.chain(rest))
    }

    fn event(&self, event: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(event);
        let Some(data) = text.trim_end().strip_prefix("data: ") else {
            return event.to_vec();
        };
        let Ok(mut chunk) = serde_json::from_str::<Map<String, Value>>(data) else {
            return event.to_vec();
        };
        if chunk.contains_key("model") {
            chunk.insert("model".to_owned(), Value::String(self.model.clone()));
        }
        if let Some(choices) = chunk.get_mut("choices").and_then(Value::as_array_mut) {
            for choice in choices {
                let has_content = choice
                    .pointer("/delta/content")
                    .and_then(Value::as_str)
                    .is_some_and(|c| !c.is_empty());
                let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
                self.choice(choice, has_content || finished);
            }
        }
        match serde_json::to_string(&Value::Object(chunk)) {
            Ok(json) => format!("data: {json}\n\n").into_bytes(),
            Err(_) => event.to_vec(),
        }
    }
}

/// The operation name Azure's 429 message names.
fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Chat => "ChatCompletions_Create",
        Operation::Embeddings => "Embeddings_Create",
        Operation::Responses => "Responses_Create",
    }
}

/// Azure sends only the remaining counts (limit and reset headers are absent or placeholders).
fn azure_rate_headers(headers: &mut HeaderMap) {
    for name in [
        "x-ratelimit-limit-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-reset-requests",
        "x-ratelimit-reset-tokens",
    ] {
        headers.remove(name);
    }
}

fn aborted() -> Body {
    Body::from_stream(futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::other(
            "the simulated upstream dropped the connection",
        ))
    }))
}
