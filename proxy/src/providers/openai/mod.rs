//! OpenAI-compatible upstreams (OpenAI, vLLM, Together, …). A Chat client's body passes
//! through with only the model renamed ([`passthrough`]); streams always ask for usage, and
//! the usage chunk is stripped again when the client did not ask for it. Clients of other
//! dialects are translated through the model with the Chat dialect's upstream side.

pub(crate) mod chunk;
pub mod config;
pub mod errors;
pub mod passthrough;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::HeaderMap;
use serde_json::{Map, Value};

use chunk::RawChunk;

use super::{
    Decoded, Generation, Operation, StreamStep, TranslateError, UpstreamRequest,
    UpstreamStreamError,
};
use crate::api::sse;
use crate::config::{Secret, Target};
use crate::dialects::chat::{self, ChatChunk, ChunkDecoder};
use crate::metering::Usage;
use crate::model::Dialect;
use crate::providers::encode::secret_header;
use crate::upstream::base_url::BaseUrl;
use crate::upstream::Classifier;

pub fn build_request(
    base_url: &BaseUrl,
    api_key: Option<&Secret>,
    target: &Target,
    operation: &Operation,
    request_id: &str,
) -> Result<UpstreamRequest, TranslateError> {
    build(base_url, api_key, target, operation, request_id, true)
}

/// Like [`build_request`]; `stream_usage` says whether streams may ask for usage
/// (`stream_options`), which some OpenAI-format servers refuse.
pub fn build(
    base_url: &BaseUrl,
    api_key: Option<&Secret>,
    target: &Target,
    operation: &Operation,
    request_id: &str,
    stream_usage: bool,
) -> Result<UpstreamRequest, TranslateError> {
    let (path, body) = match operation {
        Operation::Generate(generation) if super::native_responses::serves(target, operation) => (
            "responses",
            super::native_responses::request_body(generation, target)?,
        ),
        Operation::Generate(generation) => (
            "chat/completions",
            chat_body(generation, &target.upstream_model, stream_usage)?,
        ),
        Operation::Embeddings(embeddings) => {
            let mut upstream = embeddings.clone();
            upstream.model = target.upstream_model.clone();
            let body = serde_json::to_vec(&upstream)
                .map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))?;
            ("embeddings", body)
        }
        // Counting has its own request (`providers/count.rs`).
        Operation::CountTokens(_) => return Err(TranslateError::Unsupported("openai")),
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(key) = api_key {
        let value = secret_header(&format!("Bearer {}", key.expose()), "authorization")?;
        headers.insert(AUTHORIZATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        // OpenAI echoes this in its logs, which ties its request to ours.
        headers.insert("x-client-request-id", value);
    }
    Ok(UpstreamRequest {
        url: base_url.join(path),
        headers,
        body: Bytes::from(body),
    })
}

/// The Chat Completions body of `generation` naming `model`: the client's own body when it
/// spoke Chat, else written from the model. Streams ask for usage when `stream_usage`.
pub fn chat_body(
    generation: &Generation,
    model: &str,
    stream_usage: bool,
) -> Result<Vec<u8>, TranslateError> {
    let request = &generation.request;
    let ask_usage = stream_usage && request.stream;
    // The Azure API versions that refuse `stream_options` (before 2024-09-01) refuse
    // `max_completion_tokens` too: they get the cap as `max_tokens`.
    let cap_field = if stream_usage {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    if request.dialect == Dialect::Chat {
        let cap = request.max_output_tokens.map(|cap| (cap_field, cap));
        return passthrough::request_body(&generation.body, model, ask_usage, cap);
    }
    let mut wire = chat::encode_request(request, model).map_err(|e| TranslateError::Refused {
        param: e.param,
        message: e.message,
    })?;
    if ask_usage {
        wire.stream_options
            .get_or_insert_with(Default::default)
            .include_usage = Some(true);
    }
    if !stream_usage {
        wire.max_tokens = wire.max_completion_tokens.take().or(wire.max_tokens);
    }
    serde_json::to_vec(&wire).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))
}

/// A complete answer: relayed with the client's model name for a Chat client (and for
/// embeddings), read into the model for any other. A 2xx body that is not an answer (an
/// `error` object, no `choices`) is a failure `classify` (the provider's) gives a kind.
pub fn decode_answer(
    operation: &Operation,
    body: &[u8],
    classify: Classifier,
) -> Result<Decoded, TranslateError> {
    let expected = match operation {
        Operation::Generate(_) | Operation::CountTokens(_) => passthrough::Expected::Completion,
        Operation::Embeddings(_) => passthrough::Expected::Embeddings,
    };
    match operation {
        Operation::Generate(generation) if generation.request.dialect != Dialect::Chat => {
            let raw = std::str::from_utf8(body).ok().and_then(RawChunk::parse);
            if let Some(missing) = raw.and_then(|raw| expected.missing(&raw)) {
                let failure = errors::error_in_answer(classify, body, missing);
                return Err(TranslateError::NotAnAnswer(Box::new(failure)));
            }
            chat::decode_answer(body)
                .map(Decoded::Answer)
                .map_err(|e| TranslateError::BadUpstreamBody(format!("not a chat completion: {e}")))
        }
        _ => {
            let (body, usage) =
                passthrough::answer(operation.client_model(), body, expected, classify)?;
            Ok(Decoded::Body {
                body: body.into(),
                usage,
            })
        }
    }
}

/// An OpenAI-format stream read into the model, for a client of another dialect.
#[derive(Debug, Default)]
pub struct TypedStream {
    decoder: ChunkDecoder,
}

impl TypedStream {
    pub fn on_event(&mut self, data: &str) -> StreamStep {
        if data.trim() == "[DONE]" {
            return StreamStep::Done;
        }
        let chunk: ChatChunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => return StreamStep::Failed(invalid_event(&e)),
        };
        if let Some(error) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            return StreamStep::Failed(stream_error(error));
        }
        let mut events = Vec::new();
        self.decoder.decode(chunk, &mut events);
        if events.is_empty() {
            StreamStep::Skip
        } else {
            StreamStep::Events(events)
        }
    }
}

/// Translation state of one OpenAI-format stream.
#[derive(Debug)]
pub struct StreamState {
    client_model: String,
    client_wants_usage: bool,
    pub usage: Option<Usage>,
    pub content_deltas: u64,
}

impl StreamState {
    pub fn new(client_model: &str, client_wants_usage: bool) -> Self {
        Self {
            client_model: client_model.to_owned(),
            client_wants_usage,
            usage: None,
            content_deltas: 0,
        }
    }

    pub fn on_event(&mut self, data: &str) -> StreamStep {
        if data.trim() == "[DONE]" {
            return StreamStep::Done;
        }
        if let Some(chunk) = RawChunk::parse(data) {
            return self.on_raw_chunk(&chunk);
        }
        match serde_json::from_str(data) {
            Ok(chunk) => self.on_chunk(chunk),
            Err(e) => StreamStep::Failed(invalid_event(&e)),
        }
    }

    /// The hot path: the same translation as [`Self::on_chunk`] on the raw members.
    fn on_raw_chunk(&mut self, chunk: &RawChunk<'_>) -> StreamStep {
        if let Some(error) = chunk.get("error") {
            let error: Value = serde_json::from_str(error).unwrap_or(Value::Null);
            return StreamStep::Failed(stream_error(&error));
        }
        let usage = chunk.get("usage");
        if let Some(usage) = usage.and_then(|raw| serde_json::from_str::<Value>(raw).ok()) {
            self.usage = Usage::from_openai(&usage).or(self.usage);
        }
        if !self.client_wants_usage && usage.is_some() && chunk.has_no_choices() {
            return StreamStep::Skip; // the usage chunk the client did not ask for
        }
        self.content_deltas += chunk.content_deltas();
        let json = chunk.write(&self.client_model, self.client_wants_usage);
        StreamStep::Emit(Bytes::from(sse::frame(&json)))
    }

    /// Translates one parsed chunk (providers with OpenAI-shaped streams reuse this after
    /// their own fix-ups).
    pub fn on_chunk(&mut self, mut chunk: Map<String, Value>) -> StreamStep {
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            return StreamStep::Failed(stream_error(error));
        }
        if let Some(usage) = chunk.get("usage").and_then(Usage::from_openai) {
            self.usage = Some(usage);
        }
        let no_choices = chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if !self.client_wants_usage {
            if no_choices && chunk.get("usage").is_some_and(|u| !u.is_null()) {
                return StreamStep::Skip; // the usage chunk the client did not ask for
            }
            chunk.remove("usage");
        }
        self.content_deltas += count_deltas(&chunk);
        if chunk.contains_key("model") {
            chunk.insert("model".to_owned(), Value::String(self.client_model.clone()));
        }
        match serde_json::to_vec(&chunk) {
            Ok(json) => StreamStep::Emit(Bytes::from(sse::frame(&json))),
            Err(e) => StreamStep::Failed(UpstreamStreamError {
                message: e.to_string(),
                code: None,
                capacity: false,
            }),
        }
    }
}

/// An event that is not JSON: the stream cannot be trusted any further.
pub fn invalid_event(error: &serde_json::Error) -> UpstreamStreamError {
    UpstreamStreamError {
        message: format!("the upstream sent an invalid stream event: {error}"),
        code: Some("upstream_error".to_owned()),
        capacity: false,
    }
}

fn count_deltas(chunk: &Map<String, Value>) -> u64 {
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return 0;
    };
    choices
        .iter()
        .filter(|choice| {
            let delta = &choice["delta"];
            delta["content"].as_str().is_some_and(|c| !c.is_empty())
                || delta["tool_calls"].is_array()
                || delta["refusal"].as_str().is_some_and(|c| !c.is_empty())
        })
        .count() as u64
}

fn stream_error(error: &Value) -> UpstreamStreamError {
    let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
    let code = text("code").or_else(|| text("type"));
    let capacity = code.as_deref().is_some_and(errors::is_capacity_code);
    UpstreamStreamError {
        message: text("message").unwrap_or_else(|| "the upstream reported an error".to_owned()),
        code,
        capacity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::{chat_operation, emitted};
    use serde_json::json;

    #[test]
    fn usage_chunk_is_stripped_when_client_did_not_ask() {
        let mut state = StreamState::new("alias", false);
        let chunk = json!({"id": "c", "model": "gpt-x", "choices": [{"index": 0,
            "delta": {"content": "hi"}, "finish_reason": null}], "usage": null});
        let out = emitted(state.on_event(&chunk.to_string()));
        assert_eq!(out["model"], "alias");
        assert!(out.get("usage").is_none());
        let usage = json!({"id": "c", "model": "gpt-x", "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}});
        assert_eq!(state.on_event(&usage.to_string()), StreamStep::Skip);
        assert_eq!(state.usage.unwrap().prompt_tokens, 5);
        assert_eq!(state.content_deltas, 1);
        assert_eq!(state.on_event("[DONE]"), StreamStep::Done);
    }

    #[test]
    fn usage_chunk_is_kept_when_client_asked() {
        let mut state = StreamState::new("alias", true);
        let usage = json!({"id": "c", "model": "gpt-x", "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}});
        let out = emitted(state.on_event(&usage.to_string()));
        assert_eq!(out["usage"]["total_tokens"], 6);
    }

    #[test]
    fn garbage_and_error_events_fail_the_stream() {
        let mut state = StreamState::new("alias", false);
        assert!(matches!(state.on_event("{not json"), StreamStep::Failed(_)));
        let error = json!({"error": {"message": "overloaded", "code": "rate_limit_exceeded"}});
        match state.on_event(&error.to_string()) {
            StreamStep::Failed(e) => assert!(e.capacity),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn full_answer_reports_client_model_and_usage() {
        let body = json!({"id": "x", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
            "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
        let completion = passthrough::Expected::Completion;
        let (out, usage) = passthrough::answer(
            "alias",
            body.to_string().as_bytes(),
            completion,
            errors::classify,
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["model"], "alias");
        assert_eq!(usage.unwrap().completion_tokens, 4);
        assert!(passthrough::answer("alias", b"<html>", completion, errors::classify).is_err());
    }

    #[test]
    fn other_dialects_get_a_typed_answer_and_typed_events() {
        let mut operation = chat_operation(json!({"model": "alias",
            "messages": [{"role": "user", "content": "hi"}]}));
        if let Operation::Generate(generation) = &mut operation {
            generation.request.dialect = Dialect::Messages;
        }
        let body = json!({"id": "x", "created": 1, "model": "gpt", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "yo"}, "finish_reason": "stop"}]});
        match decode_answer(&operation, body.to_string().as_bytes(), errors::classify).unwrap() {
            Decoded::Answer(answer) => {
                assert_eq!(answer.content, vec![crate::model::Block::text("yo")])
            }
            other => panic!("{other:?}"),
        }
        let error = json!({"error": {"message": "m", "code": "server_overloaded"}});
        match decode_answer(&operation, error.to_string().as_bytes(), errors::classify) {
            Err(TranslateError::NotAnAnswer(failure)) => assert!(matches!(
                failure.kind,
                crate::upstream::FailureKind::Capacity { .. }
            )),
            other => panic!("an error object is no typed answer: {other:?}"),
        }
        let mut stream = TypedStream::default();
        let chunk = json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}}]});
        assert!(
            matches!(stream.on_event(&chunk.to_string()), StreamStep::Events(e) if e.len() == 3)
        );
        assert!(matches!(stream.on_event("{oops"), StreamStep::Failed(_)));
        assert_eq!(stream.on_event("[DONE]"), StreamStep::Done);
    }
}
