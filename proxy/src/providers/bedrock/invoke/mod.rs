//! Claude on Bedrock natively: a Messages client's body to InvokeModel
//! (`/model/{id}/invoke`) or InvokeModelWithResponseStream (`/invoke-with-response-stream`)
//! as Claude's native body (the client's members byte for byte, less `model` and `stream`,
//! plus `anthropic_version` and the client's betas as `anthropic_beta`), so thinking
//! signatures, cache markers and server-side fields reach Claude without the Converse hop.
//! The answer is a Messages answer, relayed like `kind: anthropic`'s; the stream's `chunk`
//! frames each carry one Anthropic event ([`stream`]).
//!
//! Chat clients keep Converse for every Bedrock target, as do Messages clients on models
//! that are not Claude.

pub mod stream;

use super::config::INFERENCE_PROFILE_PREFIXES;
use crate::model::Dialect;
use crate::providers::anthropic::passthrough::{request_body, BodyEdit};
use crate::providers::{Generation, TranslateError};

/// The `anthropic_version` of Claude's native body on Bedrock.
pub const BEDROCK_VERSION: &str = "bedrock-2023-05-31";

/// Whether a Bedrock model id names an Anthropic model: `anthropic.…`, after an optional
/// cross-region profile prefix (`us.`, `global.`, …), also inside an ARN's last segment.
pub fn is_claude(model_id: &str) -> bool {
    let id = match model_id.strip_prefix("arn:") {
        Some(arn) => arn.rsplit('/').next().unwrap_or(arn),
        None => model_id,
    };
    let base = INFERENCE_PROFILE_PREFIXES
        .iter()
        .find_map(|prefix| id.strip_prefix(prefix))
        .unwrap_or(id);
    base.starts_with("anthropic.")
}

/// Whether `generation` goes to `model_id` through InvokeModel with the native body.
pub fn uses_invoke(model_id: &str, generation: &Generation) -> bool {
    generation.request.dialect == Dialect::Messages && is_claude(model_id)
}

/// The operation for the path (`/model/{id}/{operation}`).
pub fn operation(stream: bool) -> &'static str {
    if stream {
        "invoke-with-response-stream"
    } else {
        "invoke"
    }
}

/// Claude's native body made from the Messages client's own; `max_tokens` is added when
/// the body has none (count_tokens bodies).
pub fn native_body(
    generation: &Generation,
    max_tokens: Option<u32>,
) -> Result<Vec<u8>, TranslateError> {
    request_body(
        &generation.body,
        BodyEdit::Bedrock {
            version: BEDROCK_VERSION,
            betas: &generation.betas,
            max_tokens,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_is_recognised_in_base_ids_profiles_and_arns() {
        for id in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "apac.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        ] {
            assert!(is_claude(id), "{id}");
        }
        for id in [
            "amazon.nova-pro-v1:0",
            "us.meta.llama3-1-70b-instruct-v1:0",
            "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc123",
            "xx.anthropic.claude",
        ] {
            assert!(!is_claude(id), "{id}");
        }
    }
}
