//! The Messages API's request rules, with messages naming the field the way the real API
//! (or Bedrock, for its native body) words them. Shared by both simulators via the brain.

use std::collections::HashSet;

use super::brain::{thinking_on, Brain, Invalid};
use super::wire::{Block, Content, KnownBlock, MessagesRequest, System};

/// Which endpoint a body arrived on: the rules differ in a few fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`: no `max_tokens`, no `stream`.
    CountTokens,
    /// Bedrock InvokeModel (and the body inside Bedrock CountTokens): `anthropic_version`
    /// required, no `model`, no `stream`.
    Bedrock,
}

fn invalid<T>(message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(message.into()))
}

pub fn validate(brain: &Brain, r: &MessagesRequest, surface: Surface) -> Result<(), Invalid> {
    surface_rules(r, surface)?;
    if surface != Surface::CountTokens {
        match r.max_tokens {
            None => return invalid("max_tokens: Field required"),
            Some(0) => return invalid("max_tokens: Input should be greater than or equal to 1"),
            Some(_) => {}
        }
    }
    if let Some(t) = r.temperature {
        if !(0.0..=1.0).contains(&t) {
            return invalid("temperature: Input should be between 0 and 1");
        }
    }
    if let Some(System::Blocks(blocks)) = &r.system {
        for (k, block) in blocks.iter().enumerate() {
            if block.kind != "text" {
                return invalid(format!("system.{k}.type: Input should be 'text'"));
            }
        }
    }
    tools_rules(r)?;
    thinking_rules(r, surface)?;
    messages_rules(brain, r)
}

fn surface_rules(r: &MessagesRequest, surface: Surface) -> Result<(), Invalid> {
    match surface {
        Surface::Bedrock => {
            let mut extraneous = String::new();
            for (present, key) in [(r.model.is_some(), "model"), (r.stream.is_some(), "stream")] {
                if present {
                    extraneous.push_str(&format!("#: extraneous key [{key}] is not permitted"));
                }
            }
            if !extraneous.is_empty() {
                return invalid(format!("Malformed input request: {extraneous}"));
            }
            match r.anthropic_version.as_deref() {
                None => invalid(
                    "Malformed input request: #: required key [anthropic_version] not found",
                ),
                Some("bedrock-2023-05-31") => Ok(()),
                Some(other) => invalid(format!(
                    "Malformed input request: anthropic_version: unsupported value {other:?}, expected \"bedrock-2023-05-31\""
                )),
            }
        }
        Surface::Messages | Surface::CountTokens => {
            for (present, key) in [
                (r.anthropic_version.is_some(), "anthropic_version"),
                (r.anthropic_beta.is_some(), "anthropic_beta"),
            ] {
                if present {
                    return invalid(format!("{key}: Extra inputs are not permitted"));
                }
            }
            if surface == Surface::CountTokens {
                for (present, key) in [
                    (r.max_tokens.is_some(), "max_tokens"),
                    (r.stream.is_some(), "stream"),
                ] {
                    if present {
                        return invalid(format!("{key}: Extra inputs are not permitted"));
                    }
                }
            }
            match r.model.as_deref() {
                None => invalid("model: Field required"),
                Some("") => invalid("model: String should have at least 1 character"),
                Some(_) => Ok(()),
            }
        }
    }
}

fn tools_rules(r: &MessagesRequest) -> Result<(), Invalid> {
    let mut names = HashSet::new();
    for (k, tool) in r.tools.iter().flatten().enumerate() {
        let custom = tool.kind.as_deref().is_none_or(|kind| kind == "custom");
        let valid_name = !tool.name.is_empty()
            && tool.name.len() <= 128
            && tool
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if custom && !valid_name {
            return invalid(format!(
                "tools.{k}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            ));
        }
        if custom && tool.input_schema.is_none() {
            return invalid(format!("tools.{k}.custom.input_schema: Field required"));
        }
        if !names.insert(tool.name.as_str()) {
            return invalid("tools: Tool names must be unique.");
        }
    }
    let Some(choice) = &r.tool_choice else {
        return Ok(());
    };
    match choice.kind.as_str() {
        "auto" | "none" => Ok(()),
        "any" | "tool" if names.is_empty() => {
            invalid("tool_choice: tool_choice may only be specified while providing tools.")
        }
        "any" => Ok(()),
        "tool" => match choice.name.as_deref() {
            None => invalid("tool_choice.tool.name: Field required"),
            Some(name) if !names.contains(name) => invalid(format!(
                "tool_choice.tool.name: tool {name:?} is not one of the provided tools"
            )),
            Some(_) => Ok(()),
        },
        other => invalid(format!(
            "tool_choice.type: Input tag '{other}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        )),
    }
}

fn thinking_rules(r: &MessagesRequest, surface: Surface) -> Result<(), Invalid> {
    let Some(thinking) = &r.thinking else {
        return Ok(());
    };
    match thinking.kind.as_str() {
        "enabled" => {
            let Some(budget) = thinking.budget_tokens else {
                return invalid("thinking.enabled.budget_tokens: Field required");
            };
            if budget < 1024 {
                return invalid(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                );
            }
            if surface != Surface::CountTokens && r.max_tokens.is_some_and(|max| budget >= max) {
                return invalid(
                    "max_tokens: `max_tokens` must be greater than `thinking.budget_tokens`",
                );
            }
        }
        "adaptive" | "disabled" => {}
        other => {
            return invalid(format!(
                "thinking.type: Input tag '{other}' found using 'type' does not match any of the expected tags: 'enabled', 'adaptive', 'disabled'"
            ))
        }
    }
    if thinking_on(r) {
        if r.tool_choice
            .as_ref()
            .is_some_and(|c| matches!(c.kind.as_str(), "any" | "tool"))
        {
            return invalid("Thinking may not be enabled when tool_choice forces tool use.");
        }
        if r.temperature
            .is_some_and(|t| (t - 1.0).abs() > f64::EPSILON)
        {
            return invalid("`temperature` may only be set to 1 when thinking is enabled.");
        }
    }
    Ok(())
}

fn block_type(block: &Block) -> String {
    match block {
        Block::Known(known) => serde_json::to_value(known)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        Block::Other(value) => value["type"].as_str().unwrap_or("?").to_owned(),
    }
}

const KNOWN_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
];

fn messages_rules(brain: &Brain, r: &MessagesRequest) -> Result<(), Invalid> {
    let Some(messages) = &r.messages else {
        return invalid("messages: Field required");
    };
    if messages.is_empty() {
        return invalid("messages: at least one message is required");
    }
    if messages[0].role != "user" {
        return invalid("messages: first message must use the \"user\" role");
    }
    // Tool uses of the latest assistant turn, waiting for their results.
    let mut pending: Vec<String> = Vec::new();
    let mut pending_from = 0usize;
    let mut last_assistant_first_type = String::new();
    let mut last_user_has_results = false;
    let mut results: Vec<String> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message.role.as_str();
        if !matches!(role, "user" | "assistant") {
            return invalid(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        let same_as_previous = i > 0 && messages[i - 1].role == role;
        if same_as_previous && brain.strict_alternation {
            return invalid(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row"
            ));
        }
        let is_final = i + 1 == messages.len();
        let empty = match &message.content {
            Content::Text(text) => text.is_empty(),
            Content::Blocks(blocks) => blocks.is_empty(),
        };
        if empty && !(is_final && role == "assistant") {
            return invalid(format!(
                "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            ));
        }
        let blocks = message.content.blocks();
        if role == "assistant" && !same_as_previous {
            pending.clear();
            pending_from = i;
            last_assistant_first_type = blocks.first().map(block_type).unwrap_or_default();
        }
        if role == "user" && !same_as_previous {
            last_user_has_results = false;
            results.clear();
        }
        for (j, block) in blocks.iter().enumerate() {
            let kind = block_type(block);
            let known = match block {
                Block::Known(known) => known,
                Block::Other(_) if KNOWN_TYPES.contains(&kind.as_str()) => {
                    return invalid(format!(
                        "messages.{i}.content.{j}.{kind}: the block's fields are missing or malformed"
                    ))
                }
                Block::Other(_) => {
                    return invalid(format!(
                        "messages.{i}.content.{j}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
                    ))
                }
            };
            let allowed = match known {
                KnownBlock::Text { .. } => true,
                KnownBlock::Image { .. }
                | KnownBlock::Document { .. }
                | KnownBlock::ToolResult { .. } => role == "user",
                KnownBlock::ToolUse { .. }
                | KnownBlock::Thinking { .. }
                | KnownBlock::RedactedThinking { .. } => role == "assistant",
            };
            if !allowed {
                return invalid(format!(
                    "messages.{i}.content.{j}: `{kind}` blocks are not allowed in `{role}` messages"
                ));
            }
            match known {
                KnownBlock::ToolUse { id, .. } => pending.push(id.clone()),
                KnownBlock::ToolResult { tool_use_id, .. } => {
                    if !pending.contains(tool_use_id) {
                        return invalid(format!(
                            "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        ));
                    }
                    results.push(tool_use_id.clone());
                }
                KnownBlock::Thinking {
                    thinking,
                    signature,
                    ..
                } => {
                    let ok = signature
                        .as_deref()
                        .is_some_and(|s| brain.thinking_signature_valid(thinking, s));
                    if !ok {
                        return invalid(format!(
                            "messages.{i}.content.{j}.signature: thinking block signature invalid"
                        ));
                    }
                }
                KnownBlock::RedactedThinking { data, .. } if !brain.redacted_data_valid(data) => {
                    return invalid(format!(
                        "messages.{i}.content.{j}.data: redacted_thinking block data invalid"
                    ));
                }
                _ => {}
            }
        }
        if role == "user" {
            if !results.is_empty() {
                last_user_has_results = true;
            }
            let next_is_user = messages.get(i + 1).is_some_and(|m| m.role == "user");
            if !next_is_user {
                // The whole user turn is seen: every tool use must have been answered.
                let missing: Vec<&str> = pending
                    .iter()
                    .filter(|id| !results.contains(id))
                    .map(String::as_str)
                    .collect();
                if !pending.is_empty() && !missing.is_empty() {
                    return invalid(format!(
                        "messages.{pending_from}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                        missing.join(", ")
                    ));
                }
                if !pending.is_empty() {
                    pending.clear();
                }
            }
        }
    }
    // With thinking on, continuing a tool loop needs the assistant turn's thinking block.
    let ends_with_results =
        messages.last().is_some_and(|m| m.role == "user") && last_user_has_results;
    if thinking_on(r)
        && ends_with_results
        && !matches!(
            last_assistant_first_type.as_str(),
            "thinking" | "redacted_thinking"
        )
    {
        return invalid(format!(
            "messages.{pending_from}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{last_assistant_first_type}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block."
        ));
    }
    Ok(())
}
