//! `responses: native` on `kind: openai` and `kind: azure` providers: a Responses client's
//! body goes to the upstream's own Responses API (`<base_url>/responses`; Azure's
//! `/openai/v1/responses`) as the client wrote it, with only the model renamed, `store:
//! false` set (the proxy keeps conversation state itself) and the conversation's earlier
//! turns expanded into `input`. Answers and streams come back as they are, with only the
//! model renamed ([`stream`]); usage is read from them (docs/responses-dialect.md).

pub mod stream;

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::{Decoded, Generation, Operation, TranslateError};
use crate::config::{ProviderKind, Target};
use crate::dialects::responses::wire::InputItem;
use crate::dialects::responses::{ResponseUsage, ResponsesRequest};
use crate::metering::Usage;
use crate::model::Dialect;
use crate::upstream::Classifier;

/// `responses:` on an OpenAI or Azure provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponsesMode {
    /// Responses clients are translated to Chat Completions (the default).
    Translate,
    /// Responses clients' bodies are forwarded to the upstream's Responses API.
    Native,
}

pub(crate) fn is_native(mode: Option<&Spanned<ResponsesMode>>) -> bool {
    mode.is_some_and(|m| m.value == ResponsesMode::Native)
}

/// Whether `target`'s provider says `responses: native`.
pub fn native_target(target: &Target) -> bool {
    match &target.provider.kind {
        ProviderKind::OpenAi(settings) => settings.responses_native,
        ProviderKind::Azure(settings) => settings.responses_native,
        ProviderKind::Bedrock(_) | ProviderKind::Anthropic(_) => false,
    }
}

/// Whether `operation` goes to `target` natively: a Responses client's generation on a
/// `responses: native` provider.
pub fn serves(target: &Target, operation: &Operation) -> bool {
    matches!(operation, Operation::Generate(generation)
        if generation.request.dialect == Dialect::Responses && native_target(target))
}

/// Whether the conversation's encrypted reasoning may go to `target`: only to the provider
/// that produced it. Reasoning the client replays without a stored turn behind it
/// (`store: false` clients sending `encrypted_content` back) has no known origin: it goes to
/// native targets, whose reasoning it most likely is, and nowhere else
/// (docs/responses-dialect.md).
pub fn keeps_reasoning(target: &Target, generation: &Generation) -> bool {
    match generation
        .responses
        .as_ref()
        .and_then(|turn| turn.reasoning_from.as_deref())
    {
        Some(provider) => provider == target.provider.name,
        None => native_target(target),
    }
}

/// The upstream body: the client's (already expanded by the handler) with the model renamed,
/// `store: false`, and reasoning items carrying another provider's `encrypted_content`
/// dropped.
pub fn request_body(generation: &Generation, target: &Target) -> Result<Vec<u8>, TranslateError> {
    let mut wire: ResponsesRequest = serde_json::from_slice(&generation.body)
        .map_err(|e| TranslateError::BadUpstreamBody(format!("not a Responses request: {e}")))?;
    wire.model.clone_from(&target.upstream_model);
    wire.store = Some(false);
    wire.previous_response_id = None;
    if !keeps_reasoning(target, generation) {
        if let Some(crate::dialects::responses::wire::Input::Items(items)) = &mut wire.input {
            items.retain(
                |item| !matches!(item, InputItem::Reasoning(r) if r.encrypted_content.is_some()),
            );
        }
    }
    serde_json::to_vec(&wire).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))
}

/// A complete answer: the upstream's Response object with the model renamed, and its usage.
/// A 2xx body that is not a response (an `error` object) is a failure `classify` names.
pub fn decode_answer(
    operation: &Operation,
    body: &[u8],
    classify: Classifier,
) -> Result<Decoded, TranslateError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::BadUpstreamBody(format!("not a Response: {e}")))?;
    let Some(object) = value.as_object_mut().filter(|o| o.contains_key("output")) else {
        let failure = super::openai::errors::error_in_answer(classify, body, "output");
        return Err(TranslateError::NotAnAnswer(Box::new(failure)));
    };
    object.insert(
        "model".to_owned(),
        Value::String(operation.client_model().to_owned()),
    );
    let usage = object.get("usage").and_then(usage_of);
    let body =
        serde_json::to_vec(&value).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))?;
    Ok(Decoded::Body {
        body: body.into(),
        usage,
    })
}

/// The proxy's usage of a Response's `usage`.
pub fn usage_of(usage: &Value) -> Option<Usage> {
    serde_json::from_value::<ResponseUsage>(usage.clone())
        .ok()
        .map(|u| u.to_usage())
}

#[cfg(test)]
mod tests;
