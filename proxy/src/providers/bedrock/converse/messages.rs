//! The model's system blocks and messages → Converse `system[]` and `messages[]`
//! (docs/wire-formats.md §2.4's message algorithm): system and developer turns hoisted, blank text
//! dropped, consecutive same-role turns merged with tool results first, a leading user turn
//! ensured, and a `cachePoint` element after every block that carries a cache marker.

use std::borrow::Cow;

use crate::model::{Block, CacheMarker, CacheTtl, Message, Request, Role, SystemBlock};
use crate::providers::TranslateError;

use super::ids;
use super::media::{convert_document, convert_image};
use super::wire::{
    self, CachePoint, CachePointType, ContentBlock, ConverseRole, EmptyObject, ReasoningContent,
    ReasoningText, ToolInput, ToolResultBlock, ToolResultStatus,
};

/// The text of the user turn Bedrock needs where the conversation has none (it rejects blank
/// text, so a placeholder must be visible).
const PLACEHOLDER: &str = ".";
/// Sent for a tool result with no content: Bedrock rejects blank text.
const EMPTY_RESULT: &str = "(empty)";

pub fn refused(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::Refused {
        param: param.into(),
        message: message.into(),
    }
}

/// Converse's `system[]` and `messages[]` for a request.
#[derive(Debug, Default)]
pub struct Conversation<'a> {
    pub system: Vec<wire::SystemBlock<'a>>,
    pub messages: Vec<wire::Message<'a>>,
}

/// A marker → the `cachePoint` element placed after the marked content.
pub fn convert_cache_marker(marker: CacheMarker) -> CachePoint {
    CachePoint {
        kind: CachePointType::Default,
        // Five minutes is Bedrock's default; only the longer TTL needs saying.
        ttl: matches!(marker.ttl, Some(CacheTtl::OneHour)).then_some("1h"),
    }
}

/// One translated block and the cache point after it; tool results are kept apart because
/// they must lead their user turn.
#[derive(Debug)]
struct Unit<'a> {
    block: ContentBlock<'a>,
    cache: Option<CachePoint>,
}

impl Unit<'_> {
    fn is_tool_result(&self) -> bool {
        matches!(self.block, ContentBlock::ToolResult(_))
    }
}

pub fn convert_conversation(request: &Request) -> Result<Conversation<'_>, TranslateError> {
    let mut system = Vec::new();
    for block in &request.system {
        push_system(&mut system, block);
    }
    let mut turns: Vec<(ConverseRole, Vec<Unit<'_>>)> = Vec::new();
    for (i, message) in request.messages.iter().enumerate() {
        let role = match message.role {
            Role::System | Role::Developer => {
                hoist(&mut system, message, i)?;
                continue;
            }
            Role::User => ConverseRole::User,
            Role::Assistant => ConverseRole::Assistant,
        };
        let units = convert_blocks(message, role, i)?;
        if !units.is_empty() {
            push_merged(&mut turns, role, units);
        }
    }
    let mut messages: Vec<wire::Message<'_>> = turns.into_iter().map(flatten).collect();
    ensure_starts_with_user(&mut messages);
    Ok(Conversation { system, messages })
}

fn push_system<'a>(system: &mut Vec<wire::SystemBlock<'a>>, block: &'a SystemBlock) {
    if !block.text.trim().is_empty() {
        system.push(wire::SystemBlock::Text(Cow::Borrowed(&block.text)));
    }
    if let Some(marker) = block.cache {
        system.push(wire::SystemBlock::CachePoint(convert_cache_marker(marker)));
    }
}

/// A system or developer turn anywhere in the conversation joins `system[]`, in order.
fn hoist<'a>(
    system: &mut Vec<wire::SystemBlock<'a>>,
    message: &'a Message,
    i: usize,
) -> Result<(), TranslateError> {
    for (j, block) in message.content.iter().enumerate() {
        let Block::Text { text, cache } = block else {
            return Err(refused(
                format!("messages[{i}].content[{j}]"),
                "only text parts are allowed here",
            ));
        };
        if !text.trim().is_empty() {
            system.push(wire::SystemBlock::Text(Cow::Borrowed(text)));
        }
        if let Some(marker) = cache {
            system.push(wire::SystemBlock::CachePoint(convert_cache_marker(*marker)));
        }
    }
    Ok(())
}

fn convert_blocks(
    message: &Message,
    role: ConverseRole,
    i: usize,
) -> Result<Vec<Unit<'_>>, TranslateError> {
    let mut units: Vec<Unit<'_>> = Vec::new();
    for (j, block) in message.content.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        let cache = block.cache_marker().map(convert_cache_marker);
        match convert_block(block, role, &param)? {
            Some(block) => units.push(Unit { block, cache }),
            // A dropped (blank) block's marker still marks the content before it.
            None => {
                if let Some(last) = units.last_mut().filter(|u| u.cache.is_none()) {
                    last.cache = cache;
                }
            }
        }
    }
    Ok(units)
}

/// One model block → one Converse block; `None` for blank text, which Bedrock rejects.
fn convert_block<'a>(
    block: &'a Block,
    role: ConverseRole,
    param: &dyn Fn() -> String,
) -> Result<Option<ContentBlock<'a>>, TranslateError> {
    let user = role == ConverseRole::User;
    let converted = match block {
        Block::Text { text, .. } => {
            return Ok((!text.trim().is_empty()).then(|| ContentBlock::Text(Cow::Borrowed(text))))
        }
        Block::Image { source, .. } if user => ContentBlock::Image(convert_image(source, param)?),
        Block::Document { source, name, .. } if user => {
            ContentBlock::Document(convert_document(source, name.as_deref(), param)?)
        }
        Block::ToolResult {
            call_id,
            content,
            is_error,
            ..
        } if user => {
            ContentBlock::ToolResult(convert_tool_result(call_id, content, *is_error, param)?)
        }
        Block::ToolCall {
            id,
            name,
            arguments,
            ..
        } if !user => ContentBlock::ToolUse(wire::ToolUse {
            tool_use_id: ids::to_bedrock(id),
            name,
            input: convert_tool_input(arguments),
        }),
        Block::Thinking { text, signature } if !user => {
            ContentBlock::ReasoningContent(ReasoningContent::ReasoningText(ReasoningText {
                text,
                signature: signature.as_deref(),
            }))
        }
        Block::RedactedThinking { data } if !user => {
            ContentBlock::ReasoningContent(ReasoningContent::RedactedContent(data))
        }
        // An assistant's refusal text has no Converse block; the turn stands without it.
        Block::Opaque { part, .. } if !user && part_type(part) == "refusal" => return Ok(None),
        Block::Opaque { part, .. } => {
            return Err(refused(
                param(),
                format!(
                    "content parts of type `{}` are not supported for Bedrock targets",
                    part_type(part)
                ),
            ))
        }
        _ => {
            let (kind, turn) = (block_kind(block), if user { "user" } else { "assistant" });
            return Err(refused(
                param(),
                format!("{kind} blocks cannot be sent to Bedrock in {turn} turns"),
            ));
        }
    };
    Ok(Some(converted))
}

fn block_kind(block: &Block) -> &str {
    match block {
        Block::Text { .. } => "text",
        Block::Image { .. } => "image",
        Block::Document { .. } => "document",
        Block::ToolCall { .. } => "tool call",
        Block::ToolResult { .. } => "tool result",
        Block::Thinking { .. } => "thinking",
        Block::RedactedThinking { .. } => "redacted thinking",
        Block::Opaque { part, .. } => part_type(part),
    }
}

/// The `type` of a content part the client's dialect kept verbatim.
fn part_type(part: &serde_json::Value) -> &str {
    part.get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown")
}

/// `arguments` is the JSON text the model wrote; Converse needs an object: the text itself
/// when it is one, `{}` when it is empty, `null` or not JSON, else the value wrapped.
pub fn convert_tool_input(arguments: &str) -> ToolInput<'_> {
    match serde_json::from_str::<&serde_json::value::RawValue>(arguments) {
        Ok(raw) if raw.get().starts_with('{') => ToolInput::Object(raw),
        Ok(raw) if raw.get() != "null" => ToolInput::Wrapped { value: raw },
        _ => ToolInput::Empty(EmptyObject {}),
    }
}

fn convert_tool_result<'a>(
    call_id: &'a str,
    content: &'a crate::model::ToolResultContent,
    is_error: bool,
    param: &dyn Fn() -> String,
) -> Result<wire::ToolResult<'a>, TranslateError> {
    use crate::model::ToolResultContent;
    let mut blocks: Vec<ToolResultBlock<'a>> = Vec::new();
    match content {
        ToolResultContent::Text(text) => {
            if !text.trim().is_empty() {
                blocks.push(ToolResultBlock::Text(Cow::Borrowed(text)));
            }
        }
        ToolResultContent::Blocks(parts) => {
            for (k, part) in parts.iter().enumerate() {
                let param = || format!("{}.content[{k}]", param());
                push_result_part(&mut blocks, part, &param)?;
            }
        }
    }
    if blocks.is_empty() {
        // An empty result is still a result; Bedrock rejects blank text, so say so.
        blocks.push(ToolResultBlock::Text(Cow::Borrowed(EMPTY_RESULT)));
    }
    Ok(wire::ToolResult {
        tool_use_id: ids::to_bedrock(call_id),
        content: blocks,
        status: if is_error {
            ToolResultStatus::Error
        } else {
            ToolResultStatus::Success
        },
    })
}

/// One part of a tool result. Adjacent texts are joined by a newline, as one text block.
fn push_result_part<'a>(
    blocks: &mut Vec<ToolResultBlock<'a>>,
    part: &'a Block,
    param: &dyn Fn() -> String,
) -> Result<(), TranslateError> {
    match part {
        Block::Text { text, .. } if text.trim().is_empty() => {}
        Block::Text { text, .. } => match blocks.last_mut() {
            Some(ToolResultBlock::Text(previous)) => {
                let joined = previous.to_mut();
                joined.push('\n');
                joined.push_str(text);
            }
            _ => blocks.push(ToolResultBlock::Text(Cow::Borrowed(text))),
        },
        Block::Image { source, .. } => {
            blocks.push(ToolResultBlock::Image(convert_image(source, param)?))
        }
        Block::Document { source, name, .. } => blocks.push(ToolResultBlock::Document(
            convert_document(source, name.as_deref(), param)?,
        )),
        other => {
            return Err(refused(
                param(),
                format!(
                    "{} blocks cannot be part of a tool result for Bedrock",
                    block_kind(other)
                ),
            ))
        }
    }
    Ok(())
}

/// Appends a turn, merging it into the previous one when the role repeats (Bedrock needs
/// alternating roles). Tool results go before other blocks of the same user turn, since all
/// results answering one assistant turn must lead the next user message.
fn push_merged<'a>(
    turns: &mut Vec<(ConverseRole, Vec<Unit<'a>>)>,
    role: ConverseRole,
    units: Vec<Unit<'a>>,
) {
    match turns.last_mut().filter(|(r, _)| *r == role) {
        Some((_, previous)) => {
            previous.extend(units);
            if role == ConverseRole::User {
                let (mut results, rest): (Vec<_>, Vec<_>) =
                    previous.drain(..).partition(Unit::is_tool_result);
                results.extend(rest);
                *previous = results;
            }
        }
        None => turns.push((role, units)),
    }
}

fn flatten((role, units): (ConverseRole, Vec<Unit<'_>>)) -> wire::Message<'_> {
    let mut content = Vec::with_capacity(units.len());
    for unit in units {
        content.push(unit.block);
        if let Some(point) = unit.cache {
            content.push(ContentBlock::CachePoint(point));
        }
    }
    // "A document block requires a sibling text block."
    let has_document = content
        .iter()
        .any(|b| matches!(b, ContentBlock::Document(_)));
    if has_document && !content.iter().any(|b| matches!(b, ContentBlock::Text(_))) {
        content.push(ContentBlock::Text(Cow::Borrowed(PLACEHOLDER)));
    }
    wire::Message { role, content }
}

/// "A conversation must start with a user message": a non-blank placeholder when it does not.
fn ensure_starts_with_user(messages: &mut Vec<wire::Message<'_>>) {
    if messages
        .first()
        .is_none_or(|m| m.role != ConverseRole::User)
    {
        messages.insert(
            0,
            wire::Message {
                role: ConverseRole::User,
                content: vec![ContentBlock::Text(Cow::Borrowed(PLACEHOLDER))],
            },
        );
    }
}

/// Whether the conversation holds tool calls or results (Converse then needs a toolConfig).
pub fn has_tool_blocks(request: &Request) -> bool {
    request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .any(|b| matches!(b, Block::ToolCall { .. } | Block::ToolResult { .. }))
}

/// Names of the tools the conversation called, first use first, each once.
pub fn history_tool_names(request: &Request) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for block in request.messages.iter().flat_map(|m| &m.content) {
        if let Block::ToolCall { name, .. } = block {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{body, refusal, text};
    use super::*;

    fn call(id: &str, name: &str, arguments: &str) -> serde_json::Value {
        json!({"type": "tool_call", "id": id, "name": name, "arguments": arguments})
    }

    fn result(id: &str, content: &str) -> serde_json::Value {
        json!({"type": "tool_result", "call_id": id, "content": content})
    }

    #[test]
    fn system_and_developer_become_system_blocks_and_roles_alternate() {
        let out = body(json!({
            "system": [{"text": "be terse"}, {"text": "  "}],
            "messages": [
                text("user", "a"),
                text("developer", "really"),
                text("user", "b"),
                text("assistant", "c"),
                text("assistant", "  "),
            ]
        }));
        assert_eq!(
            out["system"],
            json!([{"text": "be terse"}, {"text": "really"}])
        );
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                {"role": "assistant", "content": [{"text": "c"}]},
            ])
        );
    }

    #[test]
    fn non_text_system_turns_are_refused() {
        let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}});
        assert_eq!(
            refusal(json!({"messages": [
                text("user", "a"),
                {"role": "system", "content": [image]}]})),
            "messages[1].content[0]"
        );
    }

    #[test]
    fn blank_turns_vanish_and_a_user_turn_leads() {
        let out = body(json!({"messages": [text("user", " \n"), text("assistant", "hi")]}));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"text": "."}]},
                {"role": "assistant", "content": [{"text": "hi"}]},
            ])
        );
        let empty = body(json!({"messages": []}));
        assert_eq!(
            empty["messages"],
            json!([{"role": "user", "content": [{"text": "."}]}])
        );
    }

    #[test]
    fn tool_round_trip_history_maps_to_tool_use_and_tool_result() {
        let out = body(json!({"messages": [
            text("user", "weather?"),
            {"role": "assistant", "content": [
                call("call_1", "get_weather", "{\"city\":\"Paris\"}"),
                call("call_2", "get_time", "not json"),
                call("call_3", "get_time", "[1]"),
                call("call_4", "get_time", ""),
                call("call_5", "get_time", " {\"a\": 1}\n"),
                call("call_6", "get_time", "null")]},
            {"role": "user", "content": [result("call_1", "{\"temp_c\":18}")]},
            {"role": "user", "content": [result("call_2", "noon")]},
            text("user", "thanks"),
        ], "tools": [{"name": "get_weather"}, {"name": "get_time"}]}));
        let messages = out["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[1]["content"][0]["toolUse"],
            json!({"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
        );
        assert_eq!(messages[1]["content"][1]["toolUse"]["input"], json!({}));
        assert_eq!(
            messages[1]["content"][2]["toolUse"]["input"],
            json!({"value": [1]})
        );
        assert_eq!(messages[1]["content"][3]["toolUse"]["input"], json!({}));
        assert_eq!(
            messages[1]["content"][4]["toolUse"]["input"],
            json!({"a": 1})
        );
        assert_eq!(messages[1]["content"][5]["toolUse"]["input"], json!({}));
        assert_eq!(
            messages[2]["content"],
            json!([
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "{\"temp_c\":18}"}], "status": "success"}},
                {"toolResult": {"toolUseId": "call_2", "content": [{"text": "noon"}], "status": "success"}},
                {"text": "thanks"},
            ])
        );
    }

    #[test]
    fn tool_results_lead_their_user_turn() {
        let out = body(json!({"messages": [
            text("user", "go"),
            {"role": "assistant", "content": [call("c", "f", "{}")]},
            text("user", "and also"),
            {"role": "user", "content": [result("c", "r")]},
        ]}));
        let user = &out["messages"][2]["content"];
        assert_eq!(user[0]["toolResult"]["toolUseId"], "c");
        assert_eq!(user[1], json!({"text": "and also"}));
    }

    #[test]
    fn tool_result_errors_blocks_and_empty_content() {
        let png = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}});
        let out = body(json!({"messages": [
            text("user", "go"),
            {"role": "assistant", "content": [call("a", "f", "{}"), call("b", "f", "{}")]},
            {"role": "user", "content": [
                {"type": "tool_result", "call_id": "a", "is_error": true, "content": "boom"},
                {"type": "tool_result", "call_id": "b", "content": [
                    {"type": "text", "text": "one"}, {"type": "text", "text": "two"}, png]},
                {"type": "tool_result", "call_id": "c", "content": "  "}]},
        ]}));
        let user = &out["messages"][2]["content"];
        assert_eq!(
            user[0]["toolResult"],
            json!({"toolUseId": "a", "content": [{"text": "boom"}], "status": "error"})
        );
        assert_eq!(
            user[1]["toolResult"]["content"],
            json!([{"text": "one\ntwo"}, {"image": {"format": "png", "source": {"bytes": "AAAA"}}}])
        );
        assert_eq!(
            user[2]["toolResult"]["content"],
            json!([{"text": "(empty)"}])
        );
    }

    #[test]
    fn invalid_tool_ids_are_rewritten_consistently() {
        let out = body(json!({"messages": [
            text("user", "x"),
            {"role": "assistant", "content": [call("call id/with spaces", "f", "{}")]},
            {"role": "user", "content": [result("call id/with spaces", "r")]}],
            "tools": [{"name": "f"}]}));
        let used = out["messages"][1]["content"][0]["toolUse"]["toolUseId"]
            .as_str()
            .unwrap();
        assert_ne!(used, "call id/with spaces");
        assert!(used.len() <= 64);
        assert_eq!(
            out["messages"][2]["content"][0]["toolResult"]["toolUseId"],
            used
        );
        assert_eq!(ids::original(used), "call id/with spaces");
    }

    #[test]
    fn images_from_data_urls_and_base64() {
        let out = body(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is it"},
            {"type": "image", "source": {"type": "url", "url": "data:image/jpg;base64,AAAA"}, "detail": "high"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "AAAA"}}]}]}));
        assert_eq!(
            out["messages"][0]["content"][1],
            json!({"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}})
        );
        assert_eq!(out["messages"][0]["content"][2]["image"]["format"], "gif");
        let remote = json!({"messages": [text("user", "a"), {"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]});
        assert_eq!(refusal(remote), "messages[1].content[0]");
        let tiff = json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "data:image/tiff;base64,AAAA"}}]}]});
        assert_eq!(refusal(tiff), "messages[0].content[0]");
    }

    #[test]
    fn blocks_in_the_wrong_turn_are_refused() {
        let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}});
        assert_eq!(
            refusal(
                json!({"messages": [text("user", "a"), {"role": "assistant", "content": [image]}]})
            ),
            "messages[1].content[0]"
        );
        assert_eq!(
            refusal(json!({"messages": [{"role": "user", "content": [
                text("user", "a")["content"][0].clone(),
                {"type": "thinking", "text": "t", "signature": "s"}]}]})),
            "messages[0].content[1]"
        );
        assert_eq!(
            refusal(json!({"messages": [{"role": "user", "content": [call("c", "f", "{}")]}]})),
            "messages[0].content[0]"
        );
    }

    #[test]
    fn opaque_parts_are_refused_except_assistant_refusals() {
        let audio = json!({"type": "opaque", "dialect": "chat",
            "part": {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}});
        assert_eq!(
            refusal(json!({"messages": [{"role": "user", "content": [audio]}]})),
            "messages[0].content[0]"
        );
        let out = body(
            json!({"messages": [text("user", "q"), {"role": "assistant", "content": [
            {"type": "opaque", "dialect": "chat", "part": {"type": "refusal", "refusal": "no"}},
            {"type": "text", "text": "but here is why"}]}]}),
        );
        assert_eq!(
            out["messages"][1]["content"],
            json!([{"text": "but here is why"}])
        );
    }

    #[test]
    fn documents_get_a_sibling_text_block() {
        let doc = json!({"type": "document", "name": "spec",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "AAAA"}});
        let out = body(json!({"messages": [{"role": "user", "content": [doc]}]}));
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"document": {"format": "pdf", "name": "spec", "source": {"bytes": "AAAA"}}},
                {"text": "."},
            ])
        );
        let with_text = body(json!({"messages": [{"role": "user", "content": [
            doc, {"type": "text", "text": "summarise"}]}]}));
        assert_eq!(
            with_text["messages"][0]["content"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn thinking_blocks_replay_unmodified() {
        let out = body(json!({"messages": [
            text("user", "q"),
            {"role": "assistant", "content": [
                {"type": "thinking", "text": "let me see", "signature": "EqQBCkYIBxgCKkA="},
                {"type": "redacted_thinking", "data": "b3BhcXVl"},
                {"type": "text", "text": "a"}]},
            text("user", "more"),
        ]}));
        assert_eq!(
            out["messages"][1]["content"],
            json!([
                {"reasoningContent": {"reasoningText": {"text": "let me see", "signature": "EqQBCkYIBxgCKkA="}}},
                {"reasoningContent": {"redactedContent": "b3BhcXVl"}},
                {"text": "a"},
            ])
        );
    }

    #[test]
    fn cache_markers_become_cache_points_after_their_block() {
        let out = body(json!({
            "system": [{"text": "long rules", "cache": {}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "doc", "cache": {"ttl": "1h"}},
                    {"type": "text", "text": "question"},
                    {"type": "text", "text": " ", "cache": {}}]},
            ]
        }));
        assert_eq!(
            out["system"],
            json!([{"text": "long rules"}, {"cachePoint": {"type": "default"}}])
        );
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"text": "doc"},
                {"cachePoint": {"type": "default", "ttl": "1h"}},
                {"text": "question"},
                {"cachePoint": {"type": "default"}},
            ])
        );
    }

    #[test]
    fn a_cache_point_stays_with_its_tool_result() {
        let out = body(json!({"messages": [
            text("user", "go"),
            {"role": "assistant", "content": [call("c", "f", "{}")]},
            text("user", "first"),
            {"role": "user", "content": [
                {"type": "tool_result", "call_id": "c", "content": "r", "cache": {}}]},
        ]}));
        let user = out["messages"][2]["content"].as_array().unwrap();
        assert!(user[0].get("toolResult").is_some());
        assert_eq!(user[1], json!({"cachePoint": {"type": "default"}}));
        assert_eq!(user[2], json!({"text": "first"}));
    }
}
