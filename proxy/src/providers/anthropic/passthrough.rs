//! The pass-through of a Messages client to an upstream that speaks Messages (`kind:
//! anthropic`, Claude's native body on Bedrock): the client's body with only its top-level
//! members edited (rewritten on raw JSON members, the nested content never parsed again),
//! and the complete answer back with the client's model name and its usage read.

use serde_json::{Map, Value};

use super::errors;
use super::relay::parse_usage;
use crate::dialects::messages::{usage_from_wire, MessagesUsage};
use crate::metering::Usage;
use crate::providers::openai::chunk::{model_json, Edit, RawChunk};
use crate::providers::TranslateError;

fn bad(e: impl std::fmt::Display) -> TranslateError {
    TranslateError::BadUpstreamBody(e.to_string())
}

/// How the client's top-level members change on the way up.
#[derive(Debug, Clone, Copy)]
pub enum BodyEdit<'a> {
    /// `kind: anthropic`: only `model` renamed.
    Rename { model: &'a str },
    /// Claude's native InvokeModel body: `model` and `stream` dropped (the URL says both),
    /// `anthropic_version` added unless the client gave one, the client's betas as
    /// `anthropic_beta` unless the body already has one, and `max_tokens` when given and the
    /// body has none (a count_tokens body has none; InvokeModel's body requires it).
    Bedrock {
        version: &'a str,
        betas: &'a [String],
        max_tokens: Option<u32>,
    },
}

/// The client's Messages body edited for the upstream.
pub fn request_body(body: &[u8], edit: BodyEdit<'_>) -> Result<Vec<u8>, TranslateError> {
    let text = std::str::from_utf8(body).map_err(bad)?;
    let Some(object) = RawChunk::parse(text) else {
        return general_body(body, edit);
    };
    match edit {
        BodyEdit::Rename { model } => {
            let model = model_json(model);
            Ok(object.write_with(
                |key, _| match key {
                    "model" => Edit::Replace(&model),
                    _ => Edit::Keep,
                },
                &[],
            ))
        }
        BodyEdit::Bedrock {
            version,
            betas,
            max_tokens,
        } => {
            let version = serde_json::to_vec(version).map_err(bad)?;
            let betas_json = serde_json::to_vec(betas).map_err(bad)?;
            let max_json = serde_json::to_vec(&max_tokens).map_err(bad)?;
            let mut append: Vec<(&str, &[u8])> = Vec::new();
            if !object.has("anthropic_version") {
                append.push(("anthropic_version", &version));
            }
            if !betas.is_empty() && !object.has("anthropic_beta") {
                append.push(("anthropic_beta", &betas_json));
            }
            if max_tokens.is_some() && !object.has("max_tokens") {
                append.push(("max_tokens", &max_json));
            }
            Ok(object.write_with(
                |key, _| match key {
                    "model" | "stream" => Edit::Drop,
                    _ => Edit::Keep,
                },
                &append,
            ))
        }
    }
}

/// The rare body whose keys are escaped (`"mo\u0064el"`): the same edits on the parsed
/// object (member order is kept: serde_json preserves it).
fn general_body(body: &[u8], edit: BodyEdit<'_>) -> Result<Vec<u8>, TranslateError> {
    let mut object: Map<String, Value> = serde_json::from_slice(body).map_err(bad)?;
    match edit {
        BodyEdit::Rename { model } => {
            object.insert("model".to_owned(), Value::String(model.to_owned()));
        }
        BodyEdit::Bedrock {
            version,
            betas,
            max_tokens,
        } => {
            object.remove("model");
            object.remove("stream");
            object
                .entry("anthropic_version")
                .or_insert_with(|| Value::String(version.to_owned()));
            if !betas.is_empty() {
                object
                    .entry("anthropic_beta")
                    .or_insert_with(|| Value::from(betas.to_vec()));
            }
            if let Some(max) = max_tokens {
                object
                    .entry("max_tokens")
                    .or_insert_with(|| Value::from(max));
            }
        }
    }
    serde_json::to_vec(&object).map_err(bad)
}

/// A complete Messages answer reporting `client_model`, and its usage. A 2xx body that is
/// not a message (an error object, no `content`) is a failure that fails over.
pub fn answer(client_model: &str, body: &[u8]) -> Result<(Vec<u8>, Option<Usage>), TranslateError> {
    let not_an_answer =
        |what| TranslateError::NotAnAnswer(Box::new(errors::error_in_answer(body, what)));
    let text = std::str::from_utf8(body).map_err(bad)?;
    if let Some(object) = RawChunk::parse(text) {
        if object.get("type") == Some("\"error\"") || object.has("error") {
            return Err(not_an_answer("with an error"));
        }
        if !object.get("content").is_some_and(|c| c.starts_with('[')) {
            return Err(not_an_answer("without `content`"));
        }
        let usage = object
            .get("usage")
            .and_then(parse_usage)
            .map(|u| usage_from_wire(&u));
        let model = model_json(client_model);
        let out = object.write_with(
            |key, _| match key {
                "model" => Edit::Replace(&model),
                _ => Edit::Keep,
            },
            &[],
        );
        return Ok((out, usage));
    }
    let mut object: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| bad(format!("not a JSON object: {e}")))?;
    if object.contains_key("error") || object.get("type").and_then(Value::as_str) == Some("error") {
        return Err(not_an_answer("with an error"));
    }
    if !object.get("content").is_some_and(Value::is_array) {
        return Err(not_an_answer("without `content`"));
    }
    let usage = object
        .get("usage")
        .and_then(|u| serde_json::from_value::<MessagesUsage>(u.clone()).ok())
        .map(|u| usage_from_wire(&u));
    if let Some(model) = object.get_mut("model") {
        *model = Value::String(client_model.to_owned());
    }
    Ok((serde_json::to_vec(&object).map_err(bad)?, usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::FailureKind;

    const BODY: &str = r#"{"model":"alias","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi \"x\""}],"thinking":{"type":"enabled","budget_tokens":1024}}"#;

    #[test]
    fn anthropic_gets_the_body_with_only_the_model_renamed() {
        let out = request_body(BODY.as_bytes(), BodyEdit::Rename { model: "claude-x" }).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            BODY.replace(r#""model":"alias""#, r#""model":"claude-x""#)
        );
    }

    #[test]
    fn bedrock_gets_the_native_body() {
        let betas = vec!["a-1".to_owned(), "b-2".to_owned()];
        let edit = BodyEdit::Bedrock {
            version: "bedrock-2023-05-31",
            betas: &betas,
            max_tokens: None,
        };
        let out = String::from_utf8(request_body(BODY.as_bytes(), edit).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"max_tokens":64,"messages":[{"role":"user","content":"hi \"x\""}],"thinking":{"type":"enabled","budget_tokens":1024},"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["a-1","b-2"]}"#
        );
        // The client's own version and betas win; no betas, no member.
        let own = r#"{"model":"m","anthropic_version":"v","anthropic_beta":["x"],"messages":[]}"#;
        let out = request_body(own.as_bytes(), edit).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"anthropic_version":"v","anthropic_beta":["x"],"messages":[]}"#
        );
        let none = BodyEdit::Bedrock {
            version: "v",
            betas: &[],
            max_tokens: None,
        };
        let out = request_body(br#"{"model":"m"}"#, none).unwrap();
        assert_eq!(out, br#"{"anthropic_version":"v"}"#);
        let count = BodyEdit::Bedrock {
            version: "v",
            betas: &[],
            max_tokens: Some(1),
        };
        let out = request_body(br#"{"model":"m","messages":[]}"#, count).unwrap();
        assert_eq!(
            out,
            br#"{"messages":[],"anthropic_version":"v","max_tokens":1}"#
        );
        let out = request_body(br#"{"max_tokens":9}"#, count).unwrap();
        assert_eq!(out, br#"{"max_tokens":9,"anthropic_version":"v"}"#);
    }

    #[test]
    fn escaped_keys_take_the_general_path() {
        let body = r#"{"mo\u0064el":"alias","stream":false,"messages":[]}"#;
        let out: Value = serde_json::from_slice(
            &request_body(body.as_bytes(), BodyEdit::Rename { model: "c" }).unwrap(),
        )
        .unwrap();
        assert_eq!(out["model"], "c");
        let edit = BodyEdit::Bedrock {
            version: "v",
            betas: &[],
            max_tokens: None,
        };
        let out: Value =
            serde_json::from_slice(&request_body(body.as_bytes(), edit).unwrap()).unwrap();
        assert!(out.get("model").is_none() && out.get("stream").is_none());
        assert_eq!(out["anthropic_version"], "v");
    }

    #[test]
    fn answers_report_the_client_model_and_usage() {
        let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"yo"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":4,"cache_read_input_tokens":6,"output_tokens":2}}"#;
        let (out, usage) = answer("alias", body.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            body.replace("claude-sonnet-4-5", "alias")
        );
        let usage = usage.unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.completion_tokens
            ),
            (10, 6, 2)
        );
    }

    #[test]
    fn a_2xx_that_is_not_a_message_fails_over() {
        let failure = |body: &str| match answer("alias", body.as_bytes()) {
            Err(TranslateError::NotAnAnswer(failure)) => failure.kind,
            other => panic!("{body}: {other:?}"),
        };
        let overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert!(matches!(failure(overloaded), FailureKind::Capacity { .. }));
        assert_eq!(failure(r#"{"id":"x"}"#), FailureKind::ServerError);
        assert_eq!(
            failure(r#"{"\u0069d":"x","content":{}}"#),
            FailureKind::ServerError
        );
        assert!(answer("alias", b"<html>").is_err());
    }
}
