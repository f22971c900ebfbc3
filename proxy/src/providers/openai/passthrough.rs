//! The pass-through: a Chat client's body to an OpenAI-format upstream, and its complete
//! answer back, rewritten on raw JSON members (the nested content is never parsed again):
//! only `model` changes, plus `stream_options.include_usage` when streams must report usage.

use serde_json::{Map, Value};

use super::chunk::{model_json, Edit, RawChunk};
use super::errors;
use crate::dialects::chat::request::StreamOptions;
use crate::dialects::chat::{ChatRequest, ChatUsage};
use crate::metering::Usage;
use crate::providers::TranslateError;
use crate::upstream::Classifier;

fn bad(e: impl std::fmt::Display) -> TranslateError {
    TranslateError::BadUpstreamBody(e.to_string())
}

/// The client's Chat body naming `model`, asking for stream usage when `ask_usage`, with
/// `cap` (field, tokens: `max_completion_tokens`, or `max_tokens` for the older Azure API
/// versions) added when the client set no cap of its own (the proxy always sends one:
/// docs/spend.md, "Output caps").
pub fn request_body(
    body: &[u8],
    model: &str,
    ask_usage: bool,
    cap: Option<(&str, u32)>,
) -> Result<Vec<u8>, TranslateError> {
    let text = std::str::from_utf8(body).map_err(bad)?;
    let Some(object) = RawChunk::parse(text) else {
        return typed_body(body, model, ask_usage, cap);
    };
    let options = match ask_usage {
        true => Some(stream_options_with_usage(object.get("stream_options"))?),
        false => None,
    };
    let model = model_json(model);
    let uncapped = !object.has("max_tokens") && !object.has("max_completion_tokens");
    let cap = match cap {
        Some((field, cap)) if uncapped => Some((field, serde_json::to_vec(&cap).map_err(bad)?)),
        _ => None,
    };
    let mut append: Vec<(&str, &[u8])> = match &options {
        Some(options) if !object.has("stream_options") => {
            vec![("stream_options", options.as_slice())]
        }
        _ => Vec::new(),
    };
    if let Some((field, cap)) = &cap {
        append.push((field, cap.as_slice()));
    }
    Ok(object.write_with(
        |key, _| match (key, &options) {
            ("model", _) => Edit::Replace(&model),
            ("stream_options", Some(options)) => Edit::Replace(options),
            _ => Edit::Keep,
        },
        &append,
    ))
}

/// The client's `stream_options` (if any) with `include_usage: true`, its other members kept.
fn stream_options_with_usage(raw: Option<&str>) -> Result<Vec<u8>, TranslateError> {
    let mut options: StreamOptions = match raw {
        Some(raw) => serde_json::from_str(raw).map_err(bad)?,
        None => StreamOptions::default(),
    };
    options.include_usage = Some(true);
    serde_json::to_vec(&options).map_err(bad)
}

/// The rare body whose keys are escaped (`"mo\u0064el"`): through the typed request.
fn typed_body(
    body: &[u8],
    model: &str,
    ask_usage: bool,
    cap: Option<(&str, u32)>,
) -> Result<Vec<u8>, TranslateError> {
    let mut request: ChatRequest = serde_json::from_slice(body).map_err(bad)?;
    model.clone_into(&mut request.model);
    match cap {
        Some(_) if request.max_output_tokens().is_some() => {}
        Some(("max_tokens", cap)) => request.max_tokens = Some(cap),
        Some((_, cap)) => request.max_completion_tokens = Some(cap),
        None => {}
    }
    if ask_usage {
        request
            .stream_options
            .get_or_insert_with(StreamOptions::default)
            .include_usage = Some(true);
    }
    serde_json::to_vec(&request).map_err(bad)
}

/// What a complete 2xx answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A chat completion: a `choices` array.
    Completion,
    /// Embeddings: a `data` array.
    Embeddings,
}

impl Expected {
    fn member(self) -> &'static str {
        match self {
            Expected::Completion => "choices",
            Expected::Embeddings => "data",
        }
    }

    /// What makes `object` not such an answer (for the failure's detail), on its top-level
    /// members only: an `error` object, or no array where the answer has one.
    pub(super) fn missing(self, object: &RawChunk<'_>) -> Option<&'static str> {
        match (object.get("error"), object.get(self.member())) {
            (Some(_), _) => Some("with an error"),
            (None, Some(raw)) if raw.starts_with('[') => None,
            (None, _) => Some(self.without()),
        }
    }

    /// The same check on a parsed object (the rare body with escaped keys).
    fn missing_in(self, object: &Map<String, Value>) -> Option<&'static str> {
        match (object.get("error"), object.get(self.member())) {
            (Some(error), _) if !error.is_null() => Some("with an error"),
            (_, Some(Value::Array(_))) => None,
            _ => Some(self.without()),
        }
    }

    fn without(self) -> &'static str {
        match self {
            Expected::Completion => "without `choices`",
            Expected::Embeddings => "without `data`",
        }
    }
}

/// A complete answer (chat completion or embeddings) reporting `client_model`, and its usage
/// (`None` when the upstream reported none; some OpenAI-compatible servers don't). A body
/// that is not the `expected` answer is a failure of the kind `classify` (the provider's
/// error classification) gives its error object, never relayed as a success.
pub fn answer(
    client_model: &str,
    body: &[u8],
    expected: Expected,
    classify: Classifier,
) -> Result<(Vec<u8>, Option<Usage>), TranslateError> {
    let not_an_answer = |missing| {
        TranslateError::NotAnAnswer(Box::new(errors::error_in_answer(classify, body, missing)))
    };
    if let Some(object) = std::str::from_utf8(body).ok().and_then(RawChunk::parse) {
        if let Some(missing) = expected.missing(&object) {
            return Err(not_an_answer(missing));
        }
        // Figures the typed reader refuses (negative, fractional) are still read, marked
        // invalid for the usage check (`metering/usage_check.rs`).
        let usage =
            object
                .get("usage")
                .and_then(|raw| match serde_json::from_str::<ChatUsage>(raw) {
                    Ok(usage) => Some(usage.to_usage()),
                    Err(_) => serde_json::from_str::<Value>(raw)
                        .ok()
                        .as_ref()
                        .and_then(Usage::from_openai),
                });
        return Ok((object.write(client_model, true), usage));
    }
    let mut value: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| TranslateError::BadUpstreamBody(format!("not a JSON object: {e}")))?;
    if let Some(missing) = expected.missing_in(&value) {
        return Err(not_an_answer(missing));
    }
    let usage = value.get("usage").and_then(Usage::from_openai);
    if let Some(model) = value.get_mut("model") {
        *model = Value::String(client_model.to_owned());
    }
    let out = serde_json::to_vec(&value).map_err(bad)?;
    Ok((out, usage))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cap_is_added_only_where_the_client_set_none() {
        let body = br#"{"model":"m","messages":[]}"#;
        let cap = Some(("max_completion_tokens", 64));
        let out = super::request_body(body, "up", false, cap).unwrap();
        assert_eq!(
            out,
            br#"{"model":"up","messages":[],"max_completion_tokens":64}"#
        );
        let old_azure = super::request_body(body, "up", false, Some(("max_tokens", 64))).unwrap();
        assert_eq!(
            old_azure,
            br#"{"model":"up","messages":[],"max_tokens":64}"#
        );
        let own = br#"{"model":"m","max_tokens":8,"messages":[]}"#;
        let out = super::request_body(own, "up", false, cap).unwrap();
        assert_eq!(out, br#"{"model":"up","max_tokens":8,"messages":[]}"#);
        let escaped = br#"{"mo\u0064el":"m","messages":[{"role":"user","content":"x"}]}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&super::request_body(escaped, "up", false, cap).unwrap())
                .unwrap();
        assert_eq!(out["max_completion_tokens"], 64);
    }

    use super::*;
    use crate::providers::openai::errors::classify;
    use crate::upstream::{AttemptFailure, FailureKind};

    const COMPLETION: Expected = Expected::Completion;

    const BODY: &str = r#"{"model":"alias","messages":[{"role":"user","content":"hi \"x\""}],"stream":true,"temperature":0.2}"#;

    #[test]
    fn only_the_model_changes_and_order_is_kept() {
        let out = request_body(BODY.as_bytes(), "gpt-4o", false, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            BODY.replace(r#""model":"alias""#, r#""model":"gpt-4o""#)
        );
    }

    #[test]
    fn streams_ask_for_usage_keeping_other_stream_options() {
        let out = request_body(BODY.as_bytes(), "gpt-4o", true, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with(r#","stream_options":{"include_usage":true}}"#),
            "{text}"
        );
        let with = r#"{"model":"a","messages":[],"stream":true,"stream_options":{"include_usage":false,"x":1},"n":1}"#;
        let text =
            String::from_utf8(request_body(with.as_bytes(), "b", true, None).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"model":"b","messages":[],"stream":true,"stream_options":{"include_usage":true,"x":1},"n":1}"#
        );
    }

    #[test]
    fn escaped_keys_take_the_typed_path() {
        let body =
            r#"{"mo\u0064el":"alias","messages":[{"role":"user","content":"x"}],"stream":true}"#;
        let out: Value =
            serde_json::from_slice(&request_body(body.as_bytes(), "gpt", true, None).unwrap())
                .unwrap();
        assert_eq!(out["model"], "gpt");
        assert_eq!(out["stream_options"]["include_usage"], true);
    }

    #[test]
    fn answers_report_the_client_model_and_cached_usage() {
        let body = r#"{"id":"x","model":"gpt-4o-2024","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let (out, usage) = answer("alias", body.as_bytes(), COMPLETION, classify).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            body.replace("gpt-4o-2024", "alias")
        );
        assert_eq!(usage.unwrap().cached_tokens, 4);
        let (_, none) =
            answer("alias", br#"{"id":"x","choices":[]}"#, COMPLETION, classify).unwrap();
        assert!(none.is_none());
    }

    fn failure(body: &str, expected: Expected) -> AttemptFailure {
        match answer("alias", body.as_bytes(), expected, classify) {
            Err(TranslateError::NotAnAnswer(failure)) => *failure,
            other => panic!("{body} is not an answer, got {other:?}"),
        }
    }

    #[test]
    fn a_2xx_that_is_not_an_answer_fails_over_and_is_never_relayed() {
        let error = r#"{"error":{"message":"Simulated error inside a 200.","type":"server_error","param":null,"code":null}}"#;
        let server = failure(error, COMPLETION);
        assert_eq!(server.kind, FailureKind::ServerError);
        assert!(
            server.detail.contains("Simulated error"),
            "{}",
            server.detail
        );
        let busy = r#"{"error":{"message":"m","code":"rate_limit_exceeded"}}"#;
        assert!(matches!(
            failure(busy, COMPLETION).kind,
            FailureKind::Capacity { .. }
        ));
        // An error next to choices is still an error; no choices at all is no answer.
        let both = r#"{"choices":[],"error":{"message":"m"}}"#;
        assert_eq!(failure(both, COMPLETION).kind, FailureKind::ServerError);
        assert_eq!(
            failure(r#"{"id":"x"}"#, COMPLETION).kind,
            FailureKind::ServerError
        );
        assert_eq!(
            failure(r#"{"choices":{}}"#, COMPLETION).kind,
            FailureKind::ServerError
        );
        // The general path (escaped keys) checks the same.
        assert_eq!(
            failure(r#"{"\u0065rror":{"message":"m"}}"#, COMPLETION).kind,
            FailureKind::ServerError
        );
        // Embeddings answer with `data`, not `choices`; `"error": null` is no error.
        assert!(answer(
            "e",
            br#"{"data":[],"error":null}"#,
            Expected::Embeddings,
            classify
        )
        .is_ok());
        assert_eq!(
            failure(error, Expected::Embeddings).kind,
            FailureKind::ServerError
        );
    }
}
