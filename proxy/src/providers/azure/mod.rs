//! Azure OpenAI: the OpenAI wire format behind Azure's URLs and auth (docs/wire-formats.md §6).
//! Requests reuse the OpenAI body; the URL is the deployments form
//! (`/openai/deployments/{deployment}/…?api-version=…`) or, with `api_version: v1`, the v1
//! form (`/openai/v1/…`, deployment as the body's model). Answers are read as OpenAI's
//! ([`openai::decode_answer`]) and keep Azure's content-filter annotations; streams lose the
//! filter-only first chunk and get consistent ids.

pub mod config;
pub mod entra;
pub mod errors;
mod stream;

pub use stream::StreamState;

use super::{openai, Operation, TranslateError, UpstreamRequest};
use crate::config::{Secret, Target};
use crate::providers::encode::secret_header;
use crate::upstream::base_url::BaseUrl;

/// How a request proves who it is: the resource key, or an Entra access token.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    ApiKey(&'a Secret),
    Bearer(&'a Secret),
}

/// The URL form an `api_version` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UrlForm<'a> {
    /// `/openai/deployments/{deployment}/{path}?api-version={version}`
    Deployments { api_version: &'a str },
    /// `/openai/v1/{path}`, the deployment travels as the body's `model`.
    V1,
}

impl<'a> UrlForm<'a> {
    fn of(api_version: &'a str) -> Self {
        match api_version {
            "v1" => UrlForm::V1,
            dated => UrlForm::Deployments { api_version: dated },
        }
    }
}

pub fn build_request(
    endpoint: &BaseUrl,
    api_version: &str,
    credential: Credential<'_>,
    target: &Target,
    operation: &Operation,
    request_id: &str,
) -> Result<UpstreamRequest, TranslateError> {
    // Azure's Responses API has only the v1 form (`/openai/v1/responses`).
    let form = if super::native_responses::serves(target, operation) {
        UrlForm::V1
    } else {
        UrlForm::of(api_version)
    };
    let base = match form {
        UrlForm::Deployments { .. } => endpoint.nested(&format!(
            "openai/deployments/{}",
            crate::providers::encode::unreserved(&target.upstream_model)
        )),
        UrlForm::V1 => endpoint.nested("openai/v1"),
    };
    // The OpenAI body is Azure's too (model = deployment, usage asked for in streams); only
    // the URL and the auth header differ. Older API versions refuse `stream_options` with a
    // 400: they get only what the client sent (the stream is then metered by estimate).
    let mut request = openai::build(
        &base,
        None,
        target,
        operation,
        request_id,
        supports_stream_usage(api_version),
    )?;
    if let UrlForm::Deployments { api_version } = form {
        // After any query the endpoint itself carries.
        request
            .url
            .query_pairs_mut()
            .append_pair("api-version", api_version);
    }
    let (name, value) = match credential {
        Credential::ApiKey(key) => ("api-key", key.expose().to_owned()),
        Credential::Bearer(token) => ("authorization", format!("Bearer {}", token.expose())),
    };
    let value = secret_header(&value, name)?;
    request
        .headers
        .insert(http::HeaderName::from_static(name), value);
    Ok(request)
}

/// `stream_options.include_usage` arrived with `2024-09-01-preview` (docs/wire-formats.md §6.1);
/// the v1 API has it.
fn supports_stream_usage(api_version: &str) -> bool {
    api_version == "v1"
        || api_version
            .get(..10)
            .is_some_and(|date| date >= "2024-09-01")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::embeddings::EmbeddingsRequest;
    use crate::config::compile_str;
    use crate::providers::testing::chat_operation;
    use crate::providers::Decoded;
    use serde_json::{json, Value};
    use std::path::Path;
    use std::sync::Arc;

    fn target(api_version: &str) -> Arc<Target> {
        let yaml = format!(
            "version: 1\nproviders:\n  az: {{kind: azure, endpoint: 'https://c.openai.azure.com', api_key: k, api_version: {api_version}}}\nmodels:\n  m:\n    targets: [{{provider: az, deployment: prod 4o, price: free}}]\n"
        );
        let policy = compile_str(&yaml, Path::new("routes.yaml"), &|_| None).unwrap();
        policy.models["m"].targets[0].clone()
    }

    fn chat(stream: bool) -> Operation {
        chat_operation(json!({"model": "m", "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}))
    }

    fn body(request: &UpstreamRequest) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    #[test]
    fn deployments_form_names_the_deployment_and_the_api_version() {
        let key = Secret::new("sekret");
        let target = target("2024-10-21");
        let request = build_request(
            &BaseUrl::parse("https://c.openai.azure.com").unwrap(),
            "2024-10-21",
            Credential::ApiKey(&key),
            &target,
            &chat(true),
            "req-1",
        )
        .unwrap();
        assert_eq!(
            request.url.as_str(),
            "https://c.openai.azure.com/openai/deployments/prod%204o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(request.headers["api-key"], "sekret");
        assert!(request.headers.get("authorization").is_none());
        assert_eq!(body(&request)["stream_options"]["include_usage"], true);
        assert!(
            !format!("{request:?}").contains("sekret"),
            "header is sensitive"
        );
    }

    #[test]
    fn v1_form_puts_the_deployment_in_the_body_and_entra_uses_bearer() {
        let token = Secret::new("tok");
        let target = target("v1");
        let embeddings: EmbeddingsRequest =
            serde_json::from_value(json!({"model": "m", "input": "x"})).unwrap();
        let request = build_request(
            &BaseUrl::parse("https://c.openai.azure.com").unwrap(),
            "v1",
            Credential::Bearer(&token),
            &target,
            &Operation::Embeddings(embeddings),
            "req-1",
        )
        .unwrap();
        assert_eq!(
            request.url.as_str(),
            "https://c.openai.azure.com/openai/v1/embeddings"
        );
        assert_eq!(request.headers["authorization"], "Bearer tok");
        assert_eq!(body(&request)["model"], "prod 4o");
    }

    #[test]
    fn older_api_versions_get_no_stream_options_they_would_refuse() {
        let key = Secret::new("k");
        let build = |version: &str| {
            let request = build_request(
                &BaseUrl::parse("https://c").unwrap(),
                version,
                Credential::ApiKey(&key),
                &target(version),
                &chat(true),
                "r",
            )
            .unwrap();
            body(&request)
        };
        assert!(build("2024-06-01").get("stream_options").is_none());
        assert_eq!(build("2024-06-01")["model"], "prod 4o");
        assert_eq!(
            build("2024-09-01-preview")["stream_options"]["include_usage"],
            true
        );
        assert_eq!(build("v1")["stream_options"]["include_usage"], true);
    }

    #[test]
    fn full_answer_keeps_filter_annotations_and_reports_client_model() {
        let upstream = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": false, "severity": "safe"}}}],
            "choices": [{"index": 0, "finish_reason": "content_filter", "message": {"role": "assistant", "content": "par"},
                "content_filter_results": {"violence": {"filtered": true, "severity": "high"}}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
        let operation = chat_operation(json!({"model": "alias",
            "messages": [{"role": "user", "content": "hi"}]}));
        let Decoded::Body { body: out, usage } = openai::decode_answer(
            &operation,
            upstream.to_string().as_bytes(),
            errors::classify,
        )
        .unwrap() else {
            panic!("a Chat client's answer passes through")
        };
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["model"], "alias");
        assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(out["prompt_filter_results"][0]["prompt_index"], 0);
        assert_eq!(
            out["choices"][0]["content_filter_results"]["violence"]["filtered"],
            true
        );
        assert_eq!(usage.unwrap().completion_tokens, 1);
    }

    #[test]
    fn an_error_object_in_a_200_is_a_failure_not_an_answer() {
        let operation = chat_operation(json!({"model": "alias",
            "messages": [{"role": "user", "content": "hi"}]}));
        let quota = json!({"error": {"code": "429", "message": "Requests exceed the quota"}});
        let failure =
            match openai::decode_answer(&operation, quota.to_string().as_bytes(), errors::classify)
            {
                Err(TranslateError::NotAnAnswer(failure)) => failure,
                other => panic!("{other:?}"),
            };
        assert!(matches!(
            failure.kind,
            crate::upstream::FailureKind::Capacity { .. }
        ));
        assert!(
            failure.detail.contains("exceed the quota"),
            "{}",
            failure.detail
        );
        let error = json!({"error": {"code": "InternalServerError", "message": "oops"}});
        assert!(matches!(
            openai::decode_answer(&operation, error.to_string().as_bytes(), errors::classify),
            Err(TranslateError::NotAnAnswer(f)) if f.kind == crate::upstream::FailureKind::ServerError
        ));
    }
}
