//! What a Responses turn asks of a target beyond the model, decided per target before its
//! request is built (docs/responses-dialect.md):
//!
//! - built-in tools and built-in tool items need a `responses: native` target (the model's
//!   `builtin_tools: allow` is checked by the handler); any other target is skipped, and
//!   when none is left the client gets a 400 naming the tool;
//! - reasoning items carrying `encrypted_content` reach only the provider that produced
//!   them; for any other target they are dropped (and the drop logged with the request id);
//! - with the model's `sticky_reasoning: true`, the targets of that provider are tried first.

use crate::config::Target;
use crate::model::{Block, Message};
use crate::providers::native_responses::{keeps_reasoning, native_target};
use crate::providers::{Operation, TranslateError};
use crate::routing::Plan;

/// The operation to build for `target`: `None` when `operation` goes as it is, `Some` when
/// reasoning had to be dropped from the model; an error when the target cannot serve it.
pub fn adapt(
    target: &Target,
    operation: &Operation,
    request_id: &str,
) -> Result<Option<Operation>, TranslateError> {
    let Operation::Generate(generation) = operation else {
        return Ok(None);
    };
    let Some(turn) = &generation.responses else {
        return Ok(None);
    };
    let native = native_target(target);
    let kind = target.provider.kind.label();
    if !native {
        if let Some((i, tool)) = turn.builtin_tools.first() {
            return Err(TranslateError::Refused {
                param: format!("tools[{i}]"),
                message: format!(
                    "the built-in tool `{tool}` runs only on a target that serves the Responses \
                     API natively (`responses: native`); a {kind} target cannot run it"
                ),
            });
        }
        if let Some((i, item)) = turn.native_items.first() {
            return Err(TranslateError::Refused {
                param: format!("input[{i}]"),
                message: format!(
                    "a `{item}` item belongs to a built-in tool, which only a target serving \
                     the Responses API natively (`responses: native`) takes; a {kind} target \
                     cannot"
                ),
            });
        }
    }
    if !turn.has_encrypted_reasoning || keeps_reasoning(target, generation) {
        return Ok(None);
    }
    tracing::info!(
        request_id,
        from = turn.reasoning_from.as_deref().unwrap_or("unknown"),
        to = %target.provider.name,
        "encrypted reasoning dropped: another provider produced it"
    );
    if native {
        // The native body drops them itself (`native_responses::request_body`).
        return Ok(None);
    }
    let mut adapted = generation.clone();
    adapted.request.messages = without_reasoning(&generation.request.messages);
    Ok(Some(Operation::Generate(adapted)))
}

/// The messages with thinking blocks removed, and messages left empty by that removed.
fn without_reasoning(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .filter_map(|message| {
            let content: Vec<Block> = message
                .content
                .iter()
                .filter(|b| !matches!(b, Block::Thinking { .. } | Block::RedactedThinking { .. }))
                .cloned()
                .collect();
            (!content.is_empty()).then(|| Message {
                content,
                ..message.clone()
            })
        })
        .collect()
}

/// With `sticky_reasoning: true` on the model, the plan's targets of the provider that
/// produced the conversation's reasoning go first (in their ranked order), the others after.
pub fn sticky(mut plan: Plan, operation: &Operation) -> Plan {
    let Operation::Generate(generation) = operation else {
        return plan;
    };
    let Some(from) = generation
        .responses
        .as_ref()
        .and_then(|turn| turn.reasoning_from.clone())
    else {
        return plan;
    };
    if plan
        .attempts
        .first()
        .is_some_and(|step| step.model.responses.sticky_reasoning)
    {
        // A stable sort keeps the ranking within each group.
        plan.attempts
            .sort_by_key(|step| step.target.provider.name != from);
    }
    plan
}

#[cfg(test)]
#[path = "responses_turn_tests.rs"]
mod tests;
