//! Anthropic's Messages API (`kind: anthropic`). A Messages client's body passes through
//! with only the model renamed ([`passthrough`]) and its stream is relayed event by event
//! ([`relay`]); clients of other dialects are translated through the model with the
//! Messages dialect's upstream side.

pub mod config;
pub mod errors;
pub mod passthrough;
pub mod relay;
pub mod typed;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::HeaderMap;

use super::{Decoded, Generation, Operation, TranslateError, UpstreamRequest};
use crate::dialects::messages::{self, Flavour};
use crate::model::Dialect;
use crate::providers::encode::secret_header;
use crate::providers::openai::chunk::RawChunk;
use passthrough::BodyEdit;

/// The headers of every request to the Anthropic API: the key, the API version, the
/// client's betas (comma-joined, in order) and the body's type.
pub fn headers(settings: &config::Settings, betas: &[String]) -> Result<HeaderMap, TranslateError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "x-api-key",
        secret_header(settings.api_key.expose(), "x-api-key")?,
    );
    let version = HeaderValue::from_str(&settings.version)
        .map_err(|_| TranslateError::BadHeader("anthropic-version"))?;
    headers.insert("anthropic-version", version);
    if !betas.is_empty() {
        let joined = HeaderValue::from_str(&betas.join(","))
            .map_err(|_| TranslateError::BadHeader("anthropic-beta"))?;
        headers.insert("anthropic-beta", joined);
    }
    Ok(headers)
}

/// `POST {base_url}/v1/messages` for a generation.
pub fn build_request(
    settings: &config::Settings,
    upstream_model: &str,
    operation: &Operation,
) -> Result<UpstreamRequest, TranslateError> {
    let generation = match operation {
        Operation::Generate(generation) => generation,
        _ => return Err(TranslateError::Unsupported("anthropic")),
    };
    Ok(UpstreamRequest {
        url: settings.base_url.join("v1/messages"),
        headers: headers(settings, &generation.betas)?,
        body: Bytes::from(messages_body(generation, upstream_model)?),
    })
}

/// The Messages body of `generation` naming `model`: the client's own body when it spoke
/// Messages, else written from the model.
pub fn messages_body(generation: &Generation, model: &str) -> Result<Vec<u8>, TranslateError> {
    if generation.request.dialect == Dialect::Messages {
        return passthrough::request_body(&generation.body, BodyEdit::Rename { model });
    }
    let wire = messages::encode_request(
        &generation.request,
        model,
        Flavour::Anthropic,
        &generation.betas,
    )
    .map_err(|e| TranslateError::Refused {
        param: e.param,
        message: e.message,
    })?;
    serde_json::to_vec(&wire).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))
}

/// A complete answer: relayed with the client's model name for a Messages client, read into
/// the model for any other.
pub fn decode_answer(operation: &Operation, bodies: &[Bytes]) -> Result<Decoded, TranslateError> {
    let [body] = bodies else {
        return Err(TranslateError::BadUpstreamBody(
            "expected exactly one answer".to_owned(),
        ));
    };
    match operation {
        Operation::Generate(generation) if generation.request.dialect == Dialect::Messages => {
            let (body, usage) = passthrough::answer(&generation.request.model, body)?;
            Ok(Decoded::Body {
                body: body.into(),
                usage,
            })
        }
        Operation::Generate(_) => {
            let raw = std::str::from_utf8(body).ok().and_then(RawChunk::parse);
            let error = raw.is_some_and(|raw| raw.get("type") == Some("\"error\""));
            if error {
                let failure = errors::error_in_answer(body, "with an error");
                return Err(TranslateError::NotAnAnswer(Box::new(failure)));
            }
            messages::decode_answer(body)
                .map(Decoded::Answer)
                .map_err(|e| TranslateError::BadUpstreamBody(format!("not a Messages answer: {e}")))
        }
        _ => Err(TranslateError::Unsupported("anthropic")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::provider;
    use crate::config::ProviderKind;
    use crate::providers::testing::chat_operation;
    use serde_json::{json, Value};

    fn settings() -> std::sync::Arc<crate::config::Provider> {
        provider(
            "    kind: anthropic\n    base_url: http://127.0.0.1:9/\n    api_key: sk-ant\n",
            &[],
        )
        .unwrap()
    }

    #[test]
    fn a_chat_client_is_written_as_a_messages_body_and_read_back() {
        let provider = settings();
        let ProviderKind::Anthropic(settings) = &provider.kind else {
            unreachable!()
        };
        let mut operation = chat_operation(
            json!({"model": "alias", "max_tokens": 50, "stream": true,
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}),
        );
        if let Operation::Generate(generation) = &mut operation {
            generation.betas = vec!["b1".into(), "b2".into()];
        }
        let request = build_request(settings, "claude-haiku-4-5", &operation).unwrap();
        assert_eq!(request.url.as_str(), "http://127.0.0.1:9/v1/messages");
        assert_eq!(request.headers["anthropic-beta"], "b1,b2");
        assert_eq!(request.headers["x-api-key"], "sk-ant");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["model"], "claude-haiku-4-5");
        assert_eq!(body["system"], json!("be brief"));
        assert_eq!(body["max_tokens"], 50);
        assert_eq!(body["stream"], true);
        let n = chat_operation(json!({"model": "alias", "n": 2,
            "messages": [{"role": "user", "content": "hi"}]}));
        assert!(matches!(
            build_request(settings, "c", &n),
            Err(TranslateError::Refused { param, .. }) if param == "n"
        ));

        let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "c",
            "content": [{"type": "text", "text": "yo"}], "stop_reason": "end_turn",
            "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}});
        let bodies = [Bytes::from(answer.to_string())];
        match decode_answer(&operation, &bodies).unwrap() {
            Decoded::Answer(answer) => {
                assert_eq!(answer.content, vec![crate::model::Block::text("yo")]);
                assert_eq!(answer.usage.map(|u| u.prompt_tokens), Some(3));
            }
            other => panic!("{other:?}"),
        }
        let error =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert!(matches!(
            decode_answer(&operation, &[Bytes::from_static(error.as_bytes())]),
            Err(TranslateError::NotAnAnswer(_))
        ));
    }
}
