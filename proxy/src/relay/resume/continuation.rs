//! What the next target is sent to continue a broken stream (docs/streams.md): the original
//! request plus the text already delivered as the start of the assistant's turn. Anthropic
//! and Claude on Bedrock continue an assistant turn the request ends with (prefill); other
//! upstreams (OpenAI-format, other Bedrock models) answer a new turn, so they get the text as
//! an assistant message followed by a user message asking to continue it.
//!
//! Both forms of the request are edited: the typed model (for targets it is translated for)
//! and the client's own body (for targets it passes through to).

use bytes::Bytes;
use serde_json::Map;

use crate::config::{ProviderKind, Target};
use crate::dialects::{chat, messages};
use crate::model::{Block, Dialect, Message, Role};
use crate::providers::bedrock::invoke::is_claude;
use crate::providers::{Generation, Operation, TranslateError};

/// The user message that follows the delivered text for targets without prefill.
pub const CONTINUE_INSTRUCTION: &str = "Your previous message was cut off. Continue it from \
exactly where it stopped: do not repeat any of it, do not add an introduction, and do not \
mention the interruption.";

/// How a target is handed the delivered text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// The request ends with the assistant's turn so far, which the target continues.
    Prefill,
    /// The assistant's turn so far, then [`CONTINUE_INSTRUCTION`] as a user message.
    Instruction,
}

impl Handover {
    pub fn of(target: &Target) -> Self {
        match &target.provider.kind {
            ProviderKind::Anthropic(_) => Handover::Prefill,
            ProviderKind::Bedrock(_) if is_claude(&target.upstream_model) => Handover::Prefill,
            ProviderKind::Bedrock(_) | ProviderKind::OpenAi(_) | ProviderKind::Azure(_) => {
                Handover::Instruction
            }
        }
    }
}

/// The operation that continues `generation` on `target` after `delivered`.
pub fn continuation(
    target: &Target,
    generation: &Generation,
    delivered: &str,
) -> Result<Operation, TranslateError> {
    // Anthropic refuses a prefill that ends in whitespace; the splice drops whitespace the
    // continuation repeats (splice.rs).
    let text = delivered.trim_end();
    let mut next = generation.clone();
    if text.is_empty() {
        return Ok(Operation::Generate(Box::new(next)));
    }
    let handover = Handover::of(target);
    append_typed(&mut next.request.messages, text, handover);
    next.body = edit_body(&generation.body, generation.request.dialect, text, handover)?;
    Ok(Operation::Generate(Box::new(next)))
}

fn append_typed(messages: &mut Vec<Message>, text: &str, handover: Handover) {
    let message = |role, text: &str| Message {
        role,
        content: vec![Block::text(text)],
        name: None,
        extra: Map::new(),
    };
    match messages.last_mut() {
        // The client prefilled the turn itself: the delivered text goes on from it.
        Some(last) if last.role == Role::Assistant => last.content.push(Block::text(text)),
        _ => messages.push(message(Role::Assistant, text)),
    }
    if handover == Handover::Instruction {
        messages.push(message(Role::User, CONTINUE_INSTRUCTION));
    }
}

/// The client's body with the same messages appended, in its dialect's wire types.
fn edit_body(
    body: &Bytes,
    dialect: Dialect,
    text: &str,
    handover: Handover,
) -> Result<Bytes, TranslateError> {
    let bad = |e: serde_json::Error| TranslateError::BadUpstreamBody(e.to_string());
    match dialect {
        Dialect::Chat => {
            let mut wire: chat::ChatRequest = serde_json::from_slice(body).map_err(bad)?;
            let message = |role, text: &str| chat::request::Message {
                role,
                content: Some(chat::request::Content::Text(text.to_owned())),
                tool_calls: None,
                tool_call_id: None,
                name: None,
                extra: Map::new(),
            };
            wire.messages
                .push(message(chat::request::Role::Assistant, text));
            if handover == Handover::Instruction {
                wire.messages
                    .push(message(chat::request::Role::User, CONTINUE_INSTRUCTION));
            }
            Ok(serde_json::to_vec(&wire).map_err(bad)?.into())
        }
        Dialect::Messages => {
            let mut wire: messages::MessagesRequest = serde_json::from_slice(body).map_err(bad)?;
            let message = |role, text: &str| messages::wire::InputMessage {
                role,
                content: messages::wire::Content::Text(text.to_owned()),
                extra: Map::new(),
            };
            // Anthropic joins consecutive assistant turns into one, so a client's own prefill
            // is continued too.
            wire.messages
                .push(message(messages::wire::Role::Assistant, text));
            if handover == Handover::Instruction {
                wire.messages
                    .push(message(messages::wire::Role::User, CONTINUE_INSTRUCTION));
            }
            Ok(serde_json::to_vec(&wire).map_err(bad)?.into())
        }
        // Other dialects reach their targets through the typed model only.
        _ => Ok(body.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::compile_yaml;
    use crate::providers::testing::chat_operation;
    use serde_json::{json, Value};

    /// The targets of a policy with one provider of each handover.
    fn targets() -> (std::sync::Arc<Target>, std::sync::Arc<Target>) {
        let yaml = concat!(
            "version: 1\n",
            "providers:\n",
            "  oa: {kind: openai, base_url: 'http://127.0.0.1:1/v1', api_key: k}\n",
            "  an: {kind: anthropic, base_url: 'http://127.0.0.1:2', api_key: k}\n",
            "models:\n",
            "  m:\n",
            "    targets:\n",
            "      - {provider: oa, model: gpt-4o, price: {input: 1, output: 1}}\n",
            "      - {provider: an, model: claude-sonnet-4-5, price: {input: 1, output: 1}}\n",
        );
        let policy = compile_yaml(yaml, &[]).unwrap();
        let model = &policy.models["m"];
        (model.targets[0].clone(), model.targets[1].clone())
    }

    fn generation() -> Generation {
        let Operation::Generate(generation) = chat_operation(json!({"model": "m", "stream": true,
            "logprobs": true, "messages": [{"role": "user", "content": "Count to five."}]}))
        else {
            unreachable!()
        };
        *generation
    }

    fn body_of(operation: &Operation) -> (Value, &Generation) {
        let Operation::Generate(generation) = operation else {
            unreachable!()
        };
        (
            serde_json::from_slice(&generation.body).unwrap(),
            generation,
        )
    }

    #[test]
    fn openai_targets_get_the_text_and_an_instruction_in_both_forms() {
        let (openai, _) = targets();
        assert_eq!(Handover::of(&openai), Handover::Instruction);
        let next = continuation(&openai, &generation(), "One, two, ").unwrap();
        let (body, generation) = body_of(&next);
        assert_eq!(body["logprobs"], true, "unknown fields are carried");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Count to five."},
                {"role": "assistant", "content": "One, two,"},
                {"role": "user", "content": CONTINUE_INSTRUCTION},
            ])
        );
        let roles: Vec<_> = generation.request.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
        assert_eq!(
            generation.request.messages[1].content,
            vec![Block::text("One, two,")]
        );
    }

    #[test]
    fn anthropic_targets_get_a_prefill_without_trailing_whitespace() {
        let (_, anthropic) = targets();
        assert_eq!(Handover::of(&anthropic), Handover::Prefill);
        let mut original = generation();
        original.request.dialect = Dialect::Messages;
        original.body = Bytes::from(
            json!({"model": "m", "max_tokens": 100, "stream": true, "container": "c1",
                "messages": [{"role": "user", "content": "Count to five."}]})
            .to_string(),
        );
        let next = continuation(&anthropic, &original, "One, two,\n").unwrap();
        let (body, generation) = body_of(&next);
        assert_eq!(body["container"], "c1");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Count to five."},
                {"role": "assistant", "content": "One, two,"},
            ])
        );
        let last = generation.request.messages.last().unwrap();
        assert_eq!(
            (last.role, &last.content),
            (Role::Assistant, &vec![Block::text("One, two,")])
        );
    }

    #[test]
    fn a_clients_own_prefill_is_continued_in_the_typed_request() {
        let (_, anthropic) = targets();
        let mut original = generation();
        original.request.messages.push(Message {
            role: Role::Assistant,
            content: vec![Block::text("Sure:")],
            name: None,
            extra: Map::new(),
        });
        let next = continuation(&anthropic, &original, " one").unwrap();
        let (_, generation) = body_of(&next);
        assert_eq!(generation.request.messages.len(), 2);
        assert_eq!(
            generation.request.messages[1].content,
            vec![Block::text("Sure:"), Block::text(" one")]
        );
    }

    #[test]
    fn nothing_delivered_means_the_original_request() {
        let (openai, _) = targets();
        let original = generation();
        let next = continuation(&openai, &original, " \n").unwrap();
        let (_, generation) = body_of(&next);
        assert_eq!(generation.body, original.body);
        assert_eq!(generation.request.messages.len(), 1);
    }
}
