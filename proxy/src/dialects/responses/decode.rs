//! Responses request → the proxy's model. `instructions` and leading `system`/`developer`
//! items become [`Request::system`]; `function_call` items join the assistant message before
//! them, `function_call_output` items fold into one user message per run; a `reasoning` item
//! with `encrypted_content` becomes a signed [`Block::Thinking`] (its summary as the text);
//! what the model has no place for is a [`Block::Opaque`] (content parts, unknown items) or
//! stays in `extra` (top-level members), never dropped silently (docs/responses-dialect.md).

use serde_json::{Map, Value};

use super::respond::REDACTED_PREFIX;
use super::wire::{
    ContentPart, InputItem, MessageContent, MessageRole, ReasoningItem, ResponsesRequest,
    TextFormat, Tool, ToolChoice as WireChoice,
};
use crate::api::InvalidField;
use crate::dialects::chat::decode::split_data_url;
use crate::model::{
    Block, Dialect, DocumentSource, ImageSource, Message, Reasoning, ReasoningEffort, Request,
    ResponseFormat, Role, Sampling, SystemBlock, ToolChoice, ToolDef, ToolResultContent,
};

/// The top-level members kept in the model's `extra` so the answer can echo them.
pub const ECHOED: [&str; 4] = ["metadata", "store", "previous_response_id", "include"];

/// Decodes a validated request whose `input` is `items` (this turn's, after any earlier turns
/// of a `previous_response_id` chain).
pub fn decode_request(
    wire: &ResponsesRequest,
    items: &[InputItem],
) -> Result<Request, InvalidField> {
    let mut system = Vec::new();
    if let Some(instructions) = wire.instructions.as_ref().filter(|i| !i.is_empty()) {
        system.push(SystemBlock {
            text: instructions.clone(),
            developer: false,
            cache: None,
        });
    }
    let messages = decode_items(items, &mut system)?;
    let tools = wire
        .tools
        .iter()
        .flatten()
        .filter(|tool| tool.kind == "function")
        .map(decode_tool)
        .collect();
    let mut extra = wire.extra.clone();
    for key in ECHOED {
        let value = match key {
            "metadata" => wire.metadata.clone().map(Value::Object),
            "store" => wire.store.map(Value::Bool),
            "previous_response_id" => wire.previous_response_id.clone().map(Value::String),
            _ => wire
                .include
                .as_ref()
                .map(|i| Value::Array(i.iter().cloned().map(Value::String).collect())),
        };
        if let Some(value) = value {
            extra.insert(key.to_owned(), value);
        }
    }
    let reasoning = wire.reasoning.as_ref().and_then(|r| {
        let effort = r.effort.as_deref().and_then(parse_effort);
        (effort.is_some() || r.summary.is_some()).then(|| Reasoning {
            effort,
            summary: r.summary.clone(),
            ..Reasoning::default()
        })
    });
    Ok(Request {
        model: wire.model.clone(),
        dialect: Dialect::Responses,
        system,
        messages,
        tools,
        tool_choice: wire.tool_choice.as_ref().and_then(decode_tool_choice),
        parallel_tool_calls: wire.parallel_tool_calls,
        sampling: Sampling {
            temperature: wire.temperature,
            top_p: wire.top_p,
            ..Sampling::default()
        },
        max_output_tokens: wire.max_output_tokens,
        response_format: wire
            .text
            .as_ref()
            .and_then(|t| t.format.as_ref())
            .and_then(decode_format),
        reasoning,
        stream: wire.is_stream(),
        // Responses streams always end with the usage in `response.completed`.
        stream_usage: true,
        user: wire.user.clone(),
        extra,
    })
}

fn parse_effort(effort: &str) -> Option<ReasoningEffort> {
    match effort {
        "minimal" | "none" => Some(ReasoningEffort::Minimal),
        "low" => Some(ReasoningEffort::Low),
        "medium" => Some(ReasoningEffort::Medium),
        "high" | "xhigh" | "max" => Some(ReasoningEffort::High),
        _ => None,
    }
}

fn decode_tool(tool: &Tool) -> ToolDef {
    ToolDef {
        name: tool.name.clone().unwrap_or_default(),
        description: tool.description.clone(),
        input_schema: tool.parameters.clone(),
        strict: tool.strict,
        cache: None,
    }
}

fn decode_tool_choice(choice: &WireChoice) -> Option<ToolChoice> {
    match choice {
        WireChoice::Mode(mode) => match mode.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "required" => Some(ToolChoice::Required),
            "none" => Some(ToolChoice::None),
            _ => None,
        },
        WireChoice::Object(object) => match (object.kind.as_str(), &object.name) {
            ("function", Some(name)) => Some(ToolChoice::Tool { name: name.clone() }),
            ("allowed_tools", _) => match object.extra.get("mode").and_then(Value::as_str) {
                Some("required") => Some(ToolChoice::Required),
                _ => Some(ToolChoice::Auto),
            },
            _ => None,
        },
    }
}

fn decode_format(format: &TextFormat) -> Option<ResponseFormat> {
    match format.kind.as_str() {
        "text" => Some(ResponseFormat::Text),
        "json_object" => Some(ResponseFormat::JsonObject),
        "json_schema" => Some(ResponseFormat::JsonSchema {
            name: format.name.clone().unwrap_or_default(),
            schema: format.schema.clone()?,
            strict: format.strict,
            description: format.description.clone(),
        }),
        _ => None,
    }
}

/// The items in order. Leading system/developer messages join the instructions.
fn decode_items(
    items: &[InputItem],
    system: &mut Vec<SystemBlock>,
) -> Result<Vec<Message>, InvalidField> {
    let mut out: Vec<Message> = Vec::with_capacity(items.len());
    let mut leading = true;
    for (i, item) in items.iter().enumerate() {
        let param = || format!("input[{i}]");
        match item {
            InputItem::Message(message) => {
                let role = match message.role {
                    MessageRole::User => Role::User,
                    MessageRole::Assistant => Role::Assistant,
                    MessageRole::System => Role::System,
                    MessageRole::Developer => Role::Developer,
                };
                let content = content_blocks(&message.content, &param)?;
                if leading && matches!(role, Role::System | Role::Developer) {
                    for block in content {
                        let Block::Text { text, .. } = block else {
                            return Err(InvalidField::new(
                                format!("{}.content", param()),
                                "only text parts are allowed in system and developer messages",
                            ));
                        };
                        system.push(SystemBlock {
                            text,
                            developer: role == Role::Developer,
                            cache: None,
                        });
                    }
                    continue;
                }
                leading = false;
                if role == Role::Assistant {
                    assistant(&mut out).content.extend(content);
                } else {
                    out.push(message_of(role, content));
                }
            }
            InputItem::FunctionCall(call) => {
                leading = false;
                assistant(&mut out).content.push(Block::ToolCall {
                    id: call.call_id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    cache: None,
                });
            }
            InputItem::FunctionCallOutput(output) => {
                leading = false;
                let content = match &output.output {
                    MessageContent::Text(text) => ToolResultContent::Text(text.clone()),
                    parts => ToolResultContent::Blocks(content_blocks(parts, &param)?),
                };
                let result = Block::ToolResult {
                    call_id: output.call_id.clone(),
                    content,
                    is_error: false,
                    cache: None,
                };
                match out.last_mut() {
                    Some(last) if last.role == Role::User && only_results(&last.content) => {
                        last.content.push(result);
                    }
                    _ => out.push(message_of(Role::User, vec![result])),
                }
            }
            InputItem::Reasoning(reasoning) => {
                leading = false;
                if let Some(block) = reasoning_block(reasoning) {
                    // Reasoning opens an assistant turn: it precedes what the model said,
                    // beside the turn's other reasoning.
                    match out.last_mut() {
                        Some(last)
                            if last.role == Role::Assistant && only_thinking(&last.content) =>
                        {
                            last.content.push(block);
                        }
                        _ => out.push(message_of(Role::Assistant, vec![block])),
                    }
                }
            }
            InputItem::ItemReference(reference) => {
                return Err(InvalidField::new(
                    param(),
                    format!(
                        "item `{}` is not in this conversation; `item_reference` can only \
                         point at items of the `previous_response_id` chain",
                        reference.id
                    ),
                ))
            }
            InputItem::Other(value) => {
                leading = false;
                // A built-in tool's item: only an upstream that speaks Responses can take it.
                out.push(message_of(
                    Role::User,
                    vec![Block::Opaque {
                        dialect: Dialect::Responses,
                        part: value.clone(),
                    }],
                ));
            }
        }
    }
    Ok(out)
}

/// The assistant message the next call or text joins: the last message when it is the
/// assistant's, else a new one.
fn assistant(out: &mut Vec<Message>) -> &mut Message {
    if out.last().is_none_or(|last| last.role != Role::Assistant) {
        out.push(message_of(Role::Assistant, Vec::new()));
    }
    let last = out.len() - 1;
    &mut out[last]
}

fn message_of(role: Role, content: Vec<Block>) -> Message {
    Message {
        role,
        content,
        name: None,
        extra: Map::new(),
    }
}

fn only_thinking(blocks: &[Block]) -> bool {
    blocks
        .iter()
        .all(|b| matches!(b, Block::Thinking { .. } | Block::RedactedThinking { .. }))
}

fn only_results(blocks: &[Block]) -> bool {
    blocks.iter().all(|b| matches!(b, Block::ToolResult { .. }))
}

/// A reasoning item worth replaying: one with `encrypted_content`, which is what a provider
/// verifies. A summary alone cannot be replayed as reasoning, so it is dropped.
fn reasoning_block(reasoning: &ReasoningItem) -> Option<Block> {
    let signature = reasoning.encrypted_content.clone()?;
    if let Some(data) = signature.strip_prefix(REDACTED_PREFIX) {
        return Some(Block::RedactedThinking {
            data: data.to_owned(),
        });
    }
    let text = reasoning
        .content
        .iter()
        .flatten()
        .chain(reasoning.summary.iter())
        .map(|part| part.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    Some(Block::Thinking {
        text,
        signature: Some(signature),
    })
}

fn content_blocks(
    content: &MessageContent,
    param: &dyn Fn() -> String,
) -> Result<Vec<Block>, InvalidField> {
    match content {
        MessageContent::Text(text) => Ok(vec![Block::text(text.clone())]),
        MessageContent::Parts(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| decode_part(part, || format!("{}.content[{j}]", param())))
            .collect(),
    }
}

fn decode_part(part: &ContentPart, param: impl Fn() -> String) -> Result<Block, InvalidField> {
    let known_only = part
        .extra
        .keys()
        .all(|k| k == "annotations" || k == "logprobs");
    match part.kind.as_str() {
        "input_text" | "output_text" | "text" if known_only => match &part.text {
            Some(text) => Ok(Block::text(text.clone())),
            None => Err(InvalidField::new(
                param(),
                format!("an `{}` part needs `text`", part.kind),
            )),
        },
        "input_image" if part.extra.is_empty() && part.image_url.is_some() => {
            let url = part.image_url.clone().unwrap_or_default();
            let source = if url.starts_with("data:") {
                match split_data_url(url.clone()) {
                    Some((media_type, data)) => ImageSource::Base64 { media_type, data },
                    None => ImageSource::Url { url },
                }
            } else {
                ImageSource::Url { url }
            };
            Ok(Block::Image {
                source,
                detail: part.detail.clone(),
                cache: None,
            })
        }
        "input_file" if inline_file(part) => {
            let data_url = part
                .extra
                .get("file_data")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (media_type, data) = split_data_url(data_url.to_owned()).ok_or_else(|| {
                InvalidField::new(param(), "`file_data` must be a base64 `data:` URL")
            })?;
            Ok(Block::Document {
                source: DocumentSource::Base64 { media_type, data },
                name: part
                    .extra
                    .get("filename")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                cache: None,
            })
        }
        _ => serde_json::to_value(part)
            .map(|part| Block::Opaque {
                dialect: Dialect::Responses,
                part,
            })
            .map_err(|e| InvalidField::new(param(), e.to_string())),
    }
}

/// An `input_file` with inline data and nothing the model would lose.
fn inline_file(part: &ContentPart) -> bool {
    part.extra
        .keys()
        .all(|k| k == "file_data" || k == "filename")
        && part
            .extra
            .get("file_data")
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with("data:"))
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
