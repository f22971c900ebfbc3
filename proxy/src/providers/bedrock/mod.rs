//! AWS Bedrock Runtime: chat through Converse / ConverseStream, embeddings through
//! InvokeModel (Titan, Cohere), every request signed with SigV4 or carrying a Bedrock API key.
//!
//! - [`converse`]: the model → Converse body, Converse answers and ConverseStream events →
//!   the model (any client dialect; the dialect's encoder writes the client's answer).
//! - [`invoke`]: a Messages client on Claude: InvokeModel with Claude's native body, the
//!   answer and the stream relayed in Anthropic's shape.
//! - [`eventstream`] decodes ConverseStream frames for [`converse::events`].
//! - [`errors`]: Bedrock error types → failure classes; [`auth`]: API key or signature;
//!   [`sigv4`]: signing; [`credentials`]: the background-refreshed credential caches;
//!   [`embeddings`].

pub mod auth;
pub mod config;
pub mod converse;
pub mod credentials;
pub mod embeddings;
pub mod errors;
pub mod eventstream;
pub mod invoke;
pub mod sigv4;

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use http::HeaderMap;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{Decoded, Generation, Operation, ProviderRuntime, TranslateError, UpstreamRequest};
use crate::config::{Provider, ProviderKind, Target};
use crate::upstream::base_url::BaseUrl;
use converse::events::ConverseStream;
use converse::request::{convert_request, json_tool_name, TargetFields};

/// A model id is one path segment: everything but RFC 3986's unreserved bytes is encoded.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/model/{modelId}/{operation}` with the id percent-encoded once (`:` → `%3A`, `/` → `%2F`).
pub fn model_path(model_id: &str, operation: &str) -> String {
    format!(
        "/model/{}/{operation}",
        utf8_percent_encode(model_id, PATH_SEGMENT)
    )
}

/// The endpoint override, else the region's public Bedrock Runtime endpoint (made once, when
/// the policy is compiled). A provider disabled for an empty region gets a placeholder it is
/// never sent to.
pub fn base_url(region: &str, endpoint: Option<&BaseUrl>) -> Result<BaseUrl, String> {
    match endpoint {
        Some(url) => Ok(url.clone()),
        None if region.is_empty() => BaseUrl::parse("http://disabled.invalid"),
        None => BaseUrl::parse(&format!("https://bedrock-runtime.{region}.amazonaws.com")),
    }
}

/// Builds (and signs) the upstream requests of `operation`: one for chat, one per text for
/// Titan embeddings (sent concurrently by the attempt loop).
pub fn build_requests(
    target: &Target,
    operation: &Operation,
    runtime: &ProviderRuntime,
) -> Result<Vec<UpstreamRequest>, TranslateError> {
    let model = &target.upstream_model;
    let to_bytes = |body: Result<Vec<u8>, serde_json::Error>| {
        body.map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))
    };
    let (path, accept, bodies) = match operation {
        Operation::Generate(generation) if invoke::uses_invoke(model, generation) => {
            let stream = generation.request.stream;
            let accept = if stream {
                "application/vnd.amazon.eventstream"
            } else {
                "application/json"
            };
            let path = model_path(model, invoke::operation(stream));
            (path, accept, vec![invoke::native_body(generation, None)?])
        }
        Operation::Generate(generation) => {
            let request = &generation.request;
            let fields = TargetFields {
                upstream_model: model,
                additional: target.additional_model_request_fields.as_ref(),
            };
            let converse = convert_request(request, fields)?;
            let (op, accept) = if request.stream {
                ("converse-stream", "application/vnd.amazon.eventstream")
            } else {
                ("converse", "application/json")
            };
            let body = to_bytes(serde_json::to_vec(&converse.body))?;
            (model_path(model, op), accept, vec![body])
        }
        Operation::Embeddings(request) => (
            model_path(model, "invoke"),
            "application/json",
            embeddings::bodies(model, request)?
                .iter()
                .map(|body| to_bytes(serde_json::to_vec(body)))
                .collect::<Result<_, _>>()?,
        ),
        // Counting has its own request (`providers/count.rs`).
        Operation::CountTokens(_) => return Err(TranslateError::Unsupported("bedrock")),
    };
    let paths_bodies = bodies.into_iter().map(|body| (path.clone(), body));
    sign_all(target, accept, paths_bodies, runtime)
}

/// Signs one request to `path` (`/model/{id}/{operation}`) of `target`'s endpoint.
pub fn signed_request(
    target: &Target,
    path: String,
    accept: &'static str,
    body: Vec<u8>,
    runtime: &ProviderRuntime,
) -> Result<UpstreamRequest, TranslateError> {
    let mut requests = sign_all(target, accept, [(path, body)], runtime)?;
    requests
        .pop()
        .ok_or_else(|| TranslateError::Signing("no request to sign".to_owned()))
}

/// Each body to its path on `target`'s endpoint, authorized (`auth.rs`: API key, or SigV4 over the final body).
fn sign_all(
    target: &Target,
    accept: &'static str,
    requests: impl IntoIterator<Item = (String, Vec<u8>)>,
    runtime: &ProviderRuntime,
) -> Result<Vec<UpstreamRequest>, TranslateError> {
    let ProviderKind::Bedrock(settings) = &target.provider.kind else {
        return Err(TranslateError::Unsupported("bedrock"));
    };
    let region = &settings.region;
    let authorizer = auth::Authorizer::of(&target.provider, settings, runtime)?;
    let now = SystemTime::now();
    requests
        .into_iter()
        .map(|(path, body)| {
            let url = settings.base_url.join(&path);
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(ACCEPT, HeaderValue::from_static(accept));
            authorizer.authorize(url.as_str(), &mut headers, &body, region, now)?;
            Ok(UpstreamRequest {
                url,
                headers,
                body: Bytes::from(body),
            })
        })
        .collect()
}

/// Reads complete answers: a Converse answer into the model, or the embeddings calls'
/// answers (one per fanned-out call) into the OpenAI embeddings body.
pub fn decode_answer(
    target: &Target,
    operation: &Operation,
    bodies: &[Bytes],
) -> Result<Decoded, TranslateError> {
    match operation {
        Operation::Generate(generation) => {
            let body = bodies.first().ok_or_else(|| {
                TranslateError::BadUpstreamBody("no answer to translate".to_owned())
            })?;
            if invoke::uses_invoke(&target.upstream_model, generation) {
                let (body, usage) = crate::providers::anthropic::passthrough::answer(
                    &generation.request.model,
                    body,
                )?;
                return Ok(Decoded::Body {
                    body: body.into(),
                    usage,
                });
            }
            let json_tool = json_tool_name(&generation.request);
            converse::answer::convert_answer(body, json_tool).map(Decoded::Answer)
        }
        Operation::CountTokens(_) => Err(TranslateError::Unsupported("bedrock")),
        Operation::Embeddings(request) => {
            let (body, usage) =
                embeddings::translate(&request.model, &target.upstream_model, request, bodies)?;
            Ok(Decoded::Body {
                body: body.into(),
                usage,
            })
        }
    }
}

/// The translation state of one ConverseStream.
pub fn stream_state(generation: &Generation) -> ConverseStream {
    ConverseStream::new(json_tool_name(&generation.request).map(str::to_owned))
}

/// Whether this provider is a Bedrock provider (for readiness and planning).
pub fn is_bedrock(provider: &Provider) -> bool {
    matches!(provider.kind, ProviderKind::Bedrock(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::compile_yaml;
    use crate::dialects::messages::{decode_request, MessagesRequest};
    use crate::providers::testing::chat_operation;
    use crate::providers::StreamDecoder;
    use serde_json::{json, Value};

    fn targets() -> Vec<std::sync::Arc<Target>> {
        let yaml = r#"version: 1
providers:
  rock:
    kind: bedrock
    region: us-east-1
    access_key_id: AKIDEXAMPLE
    secret_access_key: example-secret
    endpoint: "http://127.0.0.1:9004"
models:
  m:
    targets:
      - { provider: rock, model: "global.anthropic.claude-sonnet-4-5-20250929-v1:0" }
      - { provider: rock, model: "amazon.nova-pro-v1:0" }
"#;
        compile_yaml(yaml, &[]).unwrap().models["m"].targets.clone()
    }

    fn messages(stream: bool) -> Operation {
        let text = json!({"model": "m", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
        .to_string();
        let wire: MessagesRequest = serde_json::from_str(&text).unwrap();
        Operation::Generate(Box::new(Generation {
            request: decode_request(wire).unwrap(),
            body: text.into(),
            betas: vec!["b-1".to_owned()],
            responses: None,
        }))
    }

    fn path(target: &Target, operation: &Operation) -> String {
        let requests = build_requests(target, operation, &ProviderRuntime::new()).unwrap();
        requests[0]
            .url
            .as_str()
            .trim_start_matches("http://127.0.0.1:9004")
            .to_owned()
    }

    #[test]
    fn messages_clients_reach_claude_natively_and_everyone_else_through_converse() {
        let targets = targets();
        let (claude, nova) = (&targets[0], &targets[1]);
        let id = "global.anthropic.claude-sonnet-4-5-20250929-v1%3A0";
        assert_eq!(
            path(claude, &messages(false)),
            format!("/model/{id}/invoke")
        );
        assert_eq!(
            path(claude, &messages(true)),
            format!("/model/{id}/invoke-with-response-stream")
        );
        let requests = build_requests(claude, &messages(true), &ProviderRuntime::new()).unwrap();
        let native: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(
            native,
            json!({"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
                "anthropic_version": "bedrock-2023-05-31", "anthropic_beta": ["b-1"]})
        );
        assert_eq!(
            requests[0].headers["accept"],
            "application/vnd.amazon.eventstream"
        );
        assert!(matches!(
            StreamDecoder::new(claude, &generation(messages(true))),
            Ok(StreamDecoder::BedrockInvoke(_))
        ));
        // Nova through Converse; a Chat client on Claude keeps Converse too.
        assert_eq!(
            path(nova, &messages(false)),
            "/model/amazon.nova-pro-v1%3A0/converse"
        );
        let chat = chat_operation(json!({"model": "m",
            "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(path(claude, &chat), format!("/model/{id}/converse"));
        assert!(matches!(
            StreamDecoder::new(nova, &generation(messages(true))),
            Ok(StreamDecoder::Bedrock(_))
        ));
    }

    #[test]
    fn a_native_answer_is_relayed_with_the_clients_model() {
        let targets = targets();
        let answer = json!({"id": "msg_bdrk_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "yo"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 2, "output_tokens": 1}});
        let bodies = [Bytes::from(answer.to_string())];
        match decode_answer(&targets[0], &messages(false), &bodies).unwrap() {
            Decoded::Body { body, usage } => {
                let body: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(body["model"], "m");
                assert_eq!(usage.map(|u| u.prompt_tokens), Some(2));
            }
            other => panic!("{other:?}"),
        }
    }

    fn generation(operation: Operation) -> Generation {
        match operation {
            Operation::Generate(generation) => *generation,
            _ => unreachable!(),
        }
    }

    #[test]
    fn model_ids_are_one_encoded_path_segment() {
        assert_eq!(
            model_path("anthropic.claude-3-haiku-20240307-v1:0", "converse"),
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        );
        assert_eq!(
            model_path(
                "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
                "converse-stream"
            ),
            "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream"
        );
    }

    #[test]
    fn endpoint_override_replaces_the_regional_host() {
        assert_eq!(
            base_url("eu-west-1", None).unwrap().to_string(),
            "https://bedrock-runtime.eu-west-1.amazonaws.com"
        );
        let vpce = BaseUrl::parse("https://vpce-1.example.com/").unwrap();
        assert_eq!(
            base_url("eu-west-1", Some(&vpce)).unwrap().to_string(),
            "https://vpce-1.example.com"
        );
    }
}
