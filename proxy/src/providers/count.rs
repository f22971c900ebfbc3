//! `POST /v1/messages/count_tokens` on the provider side: who can count a prompt and how.
//!
//! - `kind: anthropic`: `POST {base_url}/v1/messages/count_tokens`, the client's body with
//!   only the model renamed, answering `{"input_tokens": N}`;
//! - Claude on Bedrock: `POST /model/{id}/count-tokens` with
//!   `{"input":{"invokeModel":{"body":"<base64 of the native body>"}}}`, answering
//!   `{"inputTokens": N}` (SigV4-signed like every Bedrock call);
//! - any other target cannot count: it refuses (skipped without an attempt), and when no
//!   target could count, the handler answers the proxy's own [`estimate`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bedrock::invoke;
use super::{anthropic, bedrock, Decoded, Generation, ProviderRuntime, TranslateError};
use crate::config::{ProviderKind, Target};
use crate::metering::Usage;
use crate::upstream::{AttemptFailure, FailureKind, UpstreamRequest};

/// What a Messages client reads: `{"input_tokens": N}` (and whatever else Anthropic adds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenCount {
    pub input_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Bedrock CountTokens' request body, in its `invokeModel` form.
#[derive(Debug, Serialize)]
struct BedrockCountRequest {
    input: BedrockCountInput,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BedrockCountInput {
    invoke_model: InvokeModelInput,
}

#[derive(Debug, Serialize)]
struct InvokeModelInput {
    /// Base64 of Claude's native InvokeModel body.
    body: String,
}

/// Bedrock CountTokens' answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BedrockCountAnswer {
    input_tokens: u64,
}

/// Whether `target` can count a prompt upstream.
pub fn can_count(target: &Target) -> bool {
    match &target.provider.kind {
        ProviderKind::Anthropic(_) => true,
        ProviderKind::Bedrock(_) => invoke::is_claude(&target.upstream_model),
        ProviderKind::OpenAi(_) | ProviderKind::Azure(_) => false,
    }
}

/// The counting request of `generation` for `target`; a target that cannot count refuses.
pub fn build_request(
    target: &Target,
    generation: &Generation,
    runtime: &ProviderRuntime,
) -> Result<UpstreamRequest, TranslateError> {
    let model = &target.upstream_model;
    match &target.provider.kind {
        ProviderKind::Anthropic(settings) => Ok(UpstreamRequest {
            url: settings.base_url.join("v1/messages/count_tokens"),
            headers: anthropic::headers(settings, &generation.betas)?,
            body: Bytes::from(anthropic::messages_body(generation, model)?),
        }),
        ProviderKind::Bedrock(_) if invoke::is_claude(model) => {
            // InvokeModel's body requires `max_tokens` (above any thinking budget); a count
            // body has none, and the figure does not change the count.
            let budget = generation
                .request
                .reasoning
                .as_ref()
                .and_then(|r| r.budget_tokens);
            let max_tokens = budget.map_or(1, |b| b.saturating_add(1));
            let native = invoke::native_body(generation, Some(max_tokens))?;
            let body = BedrockCountRequest {
                input: BedrockCountInput {
                    invoke_model: InvokeModelInput {
                        body: STANDARD.encode(native),
                    },
                },
            };
            let body = serde_json::to_vec(&body)
                .map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))?;
            let path = bedrock::model_path(model, "count-tokens");
            bedrock::signed_request(target, path, "application/json", body, runtime)
        }
        kind => Err(TranslateError::Refused {
            param: "model".to_owned(),
            message: format!(
                "provider kind `{}` cannot count tokens",
                kind.unit().label()
            ),
        }),
    }
}

/// The count answer in the client's shape. Counting is free: the usage is zero.
pub fn decode_answer(target: &Target, bodies: &[Bytes]) -> Result<Decoded, TranslateError> {
    let [body] = bodies else {
        return Err(TranslateError::BadUpstreamBody(
            "expected exactly one answer".to_owned(),
        ));
    };
    let not_a_count = |e: serde_json::Error| {
        TranslateError::NotAnAnswer(Box::new(AttemptFailure::new(
            FailureKind::ServerError,
            format!("the upstream answered 2xx without a token count: {e}"),
        )))
    };
    let count = match &target.provider.kind {
        ProviderKind::Bedrock(_) => {
            let answer: BedrockCountAnswer = serde_json::from_slice(body).map_err(not_a_count)?;
            TokenCount {
                input_tokens: answer.input_tokens,
                extra: Map::new(),
            }
        }
        _ => serde_json::from_slice::<TokenCount>(body).map_err(not_a_count)?,
    };
    let body =
        serde_json::to_vec(&count).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))?;
    Ok(Decoded::Body {
        body: body.into(),
        usage: Some(Usage::default()),
    })
}

/// The proxy's own count when no upstream could give one: the prompt-size estimate the
/// budget reservation uses (prompt bytes / 4).
pub fn estimate(generation: &Generation) -> TokenCount {
    TokenCount {
        input_tokens: Usage::estimate(generation.request.prompt_bytes(), 0).prompt_tokens,
        extra: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::compile_yaml;
    use crate::providers::testing::chat_operation;
    use crate::providers::Operation;
    use serde_json::json;
    use std::sync::Arc;

    const YAML: &str = r#"version: 1
providers:
  ant: { kind: anthropic, base_url: "http://127.0.0.1:9100", api_key: sk-ant-k }
  rock:
    kind: bedrock
    region: us-east-1
    access_key_id: AKIDEXAMPLE
    secret_access_key: example-secret
    endpoint: "http://127.0.0.1:9101"
  oai: { kind: openai, base_url: "http://127.0.0.1:9102/v1" }
models:
  m:
    targets:
      - { provider: ant, model: claude-sonnet-4-5 }
      - { provider: rock, model: us.anthropic.claude-sonnet-4-5-20250929-v1:0 }
      - { provider: rock, model: amazon.nova-pro-v1:0 }
      - { provider: oai, model: gpt-4o }
"#;

    fn targets() -> Vec<Arc<Target>> {
        compile_yaml(YAML, &[]).unwrap().models["m"].targets.clone()
    }

    /// A Messages client's count body, as the handler makes the generation.
    fn generation() -> Generation {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}],
            "thinking": {"type": "enabled", "budget_tokens": 2048}});
        let Operation::Generate(mut generation) = chat_operation(json!({"model": "m",
            "messages": [{"role": "user", "content": "hello there"}]}))
        else {
            unreachable!()
        };
        generation.request.dialect = crate::model::Dialect::Messages;
        generation.request.reasoning = Some(crate::model::Reasoning {
            enabled: true,
            budget_tokens: Some(2048),
            effort: None,
            summary: None,
        });
        generation.body = body.to_string().into();
        generation.betas = vec!["token-counting-2024-11-01".to_owned()];
        *generation
    }

    #[test]
    fn anthropic_counts_the_clients_body_with_the_model_renamed() {
        let targets = targets();
        let request = build_request(&targets[0], &generation(), &ProviderRuntime::new()).unwrap();
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9100/v1/messages/count_tokens"
        );
        assert_eq!(request.headers["x-api-key"], "sk-ant-k");
        assert_eq!(request.headers["anthropic-version"], "2023-06-01");
        assert_eq!(
            request.headers["anthropic-beta"],
            "token-counting-2024-11-01"
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["model"], "claude-sonnet-4-5");
        assert_eq!(body["thinking"]["budget_tokens"], 2048);
        let answer = Bytes::from_static(br#"{"input_tokens":12,"context_management":{"x":1}}"#);
        match decode_answer(&targets[0], &[answer]).unwrap() {
            Decoded::Body { body, usage } => {
                assert_eq!(
                    &body[..],
                    br#"{"input_tokens":12,"context_management":{"x":1}}"#
                );
                assert_eq!(usage, Some(Usage::default()), "counting is free");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn claude_on_bedrock_counts_the_native_body() {
        let targets = targets();
        let request = build_request(&targets[1], &generation(), &ProviderRuntime::new()).unwrap();
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9101/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens"
        );
        assert!(request.headers.contains_key("authorization"), "signed");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let native = STANDARD
            .decode(body["input"]["invokeModel"]["body"].as_str().unwrap())
            .unwrap();
        let native: Value = serde_json::from_slice(&native).unwrap();
        assert!(native.get("model").is_none());
        assert_eq!(native["anthropic_version"], "bedrock-2023-05-31");
        assert_eq!(
            native["anthropic_beta"],
            json!(["token-counting-2024-11-01"])
        );
        assert_eq!(native["max_tokens"], 2049, "above the thinking budget");
        let answer = Bytes::from_static(br#"{"inputTokens":33}"#);
        match decode_answer(&targets[1], &[answer]).unwrap() {
            Decoded::Body { body, .. } => assert_eq!(&body[..], br#"{"input_tokens":33}"#),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_targets_refuse_and_bad_answers_fail_over() {
        let targets = targets();
        assert_eq!(
            targets.iter().map(|t| can_count(t)).collect::<Vec<_>>(),
            vec![true, true, false, false]
        );
        for target in &targets[2..] {
            let refused = build_request(target, &generation(), &ProviderRuntime::new());
            assert!(
                matches!(&refused, Err(TranslateError::Refused { param, .. }) if param == "model"),
                "{refused:?}"
            );
        }
        let garbage = Bytes::from_static(b"<html>");
        match decode_answer(&targets[0], &[garbage]) {
            Err(TranslateError::NotAnAnswer(failure)) => {
                assert_eq!(failure.kind, FailureKind::ServerError)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_estimate_is_the_prompt_size_estimate() {
        let generation = generation();
        let expected = generation.request.prompt_bytes().div_ceil(4) as u64;
        assert_eq!(estimate(&generation).input_tokens, expected);
        assert!(expected > 0);
    }
}
