//! Anthropic's Messages API (`kind: anthropic`). A Messages client's body passes through
//! with only the model renamed ([`passthrough`]) and its stream is relayed event by event
//! ([`relay`]); clients of other dialects are translated through the model with the
//! Messages dialect's upstream side.

pub mod config;
pub mod errors;
pub mod passthrough;
pub mod relay;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::HeaderMap;

use super::{Decoded, Generation, Operation, TranslateError, UpstreamRequest};
use crate::model::Dialect;
use passthrough::BodyEdit;

/// The headers of every request to the Anthropic API: the key, the API version, the
/// client's betas (comma-joined, in order) and the body's type.
pub fn headers(settings: &config::Settings, betas: &[String]) -> Result<HeaderMap, TranslateError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let key = HeaderValue::from_str(settings.api_key.expose())
        .map_err(|_| TranslateError::BadHeader("x-api-key"))?;
    headers.insert("x-api-key", key);
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
        url: format!("{}/v1/messages", settings.base_url),
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
    Err(TranslateError::Unsupported("anthropic"))
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
        _ => Err(TranslateError::Unsupported("anthropic")),
    }
}
