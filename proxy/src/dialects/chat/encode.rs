//! The proxy's model → Chat request, for OpenAI-format upstreams serving a client of another
//! dialect (Bedrock's Converse builder reads the model directly).
//! The inverse of [`super::decode`]: tool results unfold into `tool` messages, base64 images
//! become `data:` URLs, `extra` members are written back as they came.

use serde_json::{Map, Value};

use super::request::{
    ChatRequest, Content, ContentPart, FilePart, FunctionCall, FunctionDef, ImageUrl, JsonSchema,
    Message as ChatMessage, NamedFunction, NamedToolChoice, ResponseFormat as ChatFormat,
    Role as ChatRole, Stop, StreamOptions, Tool, ToolCall, ToolChoice as ChatToolChoice,
};
use crate::model::{
    Block, Dialect, DocumentSource, ImageSource, Message, ReasoningEffort, Request, ResponseFormat,
    Role, ToolChoice, ToolResultContent,
};

/// Why a request cannot be written as Chat: a part of another dialect it cannot carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unencodable {
    pub param: String,
    pub message: String,
}

/// Writes `request` as a Chat request naming `model`. `extra` is written back only when the
/// request came in as Chat (another dialect's unknown members mean nothing here).
pub fn encode_request(request: &Request, model: &str) -> Result<ChatRequest, Unencodable> {
    let same_dialect = request.dialect == Dialect::Chat;
    let mut messages = Vec::with_capacity(request.messages.len() + request.system.len());
    for block in &request.system {
        messages.push(text_message(
            if block.developer {
                ChatRole::Developer
            } else {
                ChatRole::System
            },
            block.text.clone(),
        ));
    }
    for (i, message) in request.messages.iter().enumerate() {
        encode_message(message, i, same_dialect, &mut messages)?;
    }
    let stop = match request.sampling.stop.as_slice() {
        [] => None,
        stops => Some(Stop::Many(stops.to_vec())),
    };
    let tools = (!request.tools.is_empty()).then(|| {
        request
            .tools
            .iter()
            .map(|tool| Tool {
                kind: "function".to_owned(),
                function: Some(FunctionDef {
                    name: tool.name.clone(),
                    description: tool.description.clone(),
                    parameters: tool.input_schema.clone(),
                    strict: tool.strict,
                    extra: Map::new(),
                }),
                extra: Map::new(),
            })
            .collect()
    });
    let stream_options = (request.stream && request.stream_usage).then(|| StreamOptions {
        include_usage: Some(true),
        extra: Map::new(),
    });
    Ok(ChatRequest {
        model: model.to_owned(),
        messages,
        stream: request.stream.then_some(true),
        stream_options,
        max_tokens: None,
        max_completion_tokens: request.max_output_tokens,
        n: request.sampling.n,
        temperature: request.sampling.temperature,
        top_p: request.sampling.top_p,
        stop,
        seed: request.sampling.seed,
        frequency_penalty: request.sampling.frequency_penalty,
        presence_penalty: request.sampling.presence_penalty,
        tools,
        tool_choice: request.tool_choice.as_ref().map(encode_tool_choice),
        parallel_tool_calls: request.parallel_tool_calls,
        response_format: request.response_format.as_ref().map(encode_format),
        reasoning_effort: request
            .reasoning
            .as_ref()
            .and_then(|r| r.effort)
            .map(|effort| effort_name(effort).to_owned()),
        user: request.user.clone(),
        extra: if same_dialect {
            request.extra.clone()
        } else {
            Map::new()
        },
    })
}

fn effort_name(effort: ReasoningEffort) -> &'static str {
    match effort {
        ReasoningEffort::Minimal => "minimal",
        ReasoningEffort::Low => "low",
        ReasoningEffort::Medium => "medium",
        ReasoningEffort::High => "high",
    }
}

fn text_message(role: ChatRole, text: String) -> ChatMessage {
    ChatMessage {
        role,
        content: Some(Content::Text(text)),
        tool_calls: None,
        tool_call_id: None,
        name: None,
        extra: Map::new(),
    }
}

/// One model message → one Chat message, or several: each tool result is its own `tool`
/// message, written before the rest of the same user turn.
fn encode_message(
    message: &Message,
    i: usize,
    same_dialect: bool,
    out: &mut Vec<ChatMessage>,
) -> Result<(), Unencodable> {
    let role = match message.role {
        Role::System => ChatRole::System,
        Role::Developer => ChatRole::Developer,
        Role::User => ChatRole::User,
        Role::Assistant => ChatRole::Assistant,
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in message.content.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match block {
            Block::ToolResult {
                call_id, content, ..
            } => out.push(ChatMessage {
                role: ChatRole::Tool,
                content: Some(tool_result(content, i, j)?),
                tool_calls: None,
                tool_call_id: Some(call_id.clone()),
                name: None,
                extra: Map::new(),
            }),
            Block::ToolCall {
                id,
                name,
                arguments,
                ..
            } => calls.push(ToolCall {
                id: id.clone(),
                kind: "function".to_owned(),
                function: FunctionCall {
                    name: name.clone(),
                    arguments: arguments.clone(),
                },
            }),
            // Chat has no way to replay thinking; OpenAI-format upstreams never signed it.
            Block::Thinking { .. } | Block::RedactedThinking { .. } => {}
            Block::Opaque { dialect, part } if *dialect == Dialect::Chat => {
                let part: ContentPart =
                    serde_json::from_value(part.clone()).map_err(|e| Unencodable {
                        param: param(),
                        message: e.to_string(),
                    })?;
                parts.push(part);
            }
            Block::Opaque { dialect, .. } => {
                return Err(Unencodable {
                    param: param(),
                    message: format!(
                        "this {} content part cannot be sent to an OpenAI-format target",
                        dialect.label()
                    ),
                })
            }
            other => parts.push(part_of(other)),
        }
    }
    if parts.is_empty() && calls.is_empty() {
        return Ok(());
    }
    let content = match parts.as_slice() {
        [] => None,
        [ContentPart {
            kind,
            text: Some(_),
            extra,
            ..
        }] if kind == "text" && extra.is_empty() => {
            parts.pop().and_then(|p| p.text).map(Content::Text)
        }
        _ => Some(Content::Parts(parts)),
    };
    out.push(ChatMessage {
        role,
        content,
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
        name: message.name.clone(),
        extra: if same_dialect {
            message.extra.clone()
        } else {
            Map::new()
        },
    });
    Ok(())
}

fn tool_result(content: &ToolResultContent, i: usize, j: usize) -> Result<Content, Unencodable> {
    match content {
        ToolResultContent::Text(text) => Ok(Content::Text(text.clone())),
        ToolResultContent::Blocks(blocks) => blocks
            .iter()
            .map(|block| match block {
                Block::Text { .. } | Block::Image { .. } | Block::Document { .. } => {
                    Ok(part_of(block))
                }
                Block::Opaque {
                    dialect: Dialect::Chat,
                    part,
                } => serde_json::from_value(part.clone()).map_err(|e| Unencodable {
                    param: format!("messages[{i}].content[{j}]"),
                    message: e.to_string(),
                }),
                _ => Err(Unencodable {
                    param: format!("messages[{i}].content[{j}]"),
                    message: "a tool result can hold only text, images and files here".to_owned(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Content::Parts),
    }
}

/// A text, image or document block as a content part.
fn part_of(block: &Block) -> ContentPart {
    match block {
        Block::Text { text, .. } => ContentPart {
            kind: "text".to_owned(),
            text: Some(text.clone()),
            ..ContentPart::default()
        },
        Block::Image { source, detail, .. } => ContentPart {
            kind: "image_url".to_owned(),
            image_url: Some(ImageUrl {
                url: match source {
                    ImageSource::Base64 { media_type, data } => {
                        format!("data:{media_type};base64,{data}")
                    }
                    ImageSource::Url { url } => url.clone(),
                },
                detail: detail.clone(),
            }),
            ..ContentPart::default()
        },
        Block::Document { source, name, .. } => {
            let file_data = match source {
                DocumentSource::Base64 { media_type, data } => {
                    format!("data:{media_type};base64,{data}")
                }
                DocumentSource::Text { data, .. } => {
                    // Plain text travels best as text.
                    return ContentPart {
                        kind: "text".to_owned(),
                        text: Some(data.clone()),
                        ..ContentPart::default()
                    };
                }
                DocumentSource::Url { url } => url.clone(),
            };
            ContentPart {
                kind: "file".to_owned(),
                file: Some(FilePart {
                    file_data: Some(file_data),
                    filename: name.clone(),
                    extra: Map::new(),
                }),
                ..ContentPart::default()
            }
        }
        _ => ContentPart::default(),
    }
}

fn encode_tool_choice(choice: &ToolChoice) -> ChatToolChoice {
    match choice {
        ToolChoice::Auto => ChatToolChoice::Mode("auto".to_owned()),
        ToolChoice::None => ChatToolChoice::Mode("none".to_owned()),
        ToolChoice::Required => ChatToolChoice::Mode("required".to_owned()),
        ToolChoice::Tool { name } => ChatToolChoice::Named(NamedToolChoice {
            kind: "function".to_owned(),
            function: Some(NamedFunction { name: name.clone() }),
            extra: Map::new(),
        }),
    }
}

fn encode_format(format: &ResponseFormat) -> ChatFormat {
    let (kind, json_schema) = match format {
        ResponseFormat::Text => ("text", None),
        ResponseFormat::JsonObject => ("json_object", None),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        } => (
            "json_schema",
            Some(JsonSchema {
                name: Some(name.clone()),
                description: description.clone(),
                schema: Some(schema.clone()),
                strict: *strict,
                extra: Map::new(),
            }),
        ),
    };
    ChatFormat {
        kind: kind.to_owned(),
        json_schema,
        extra: Map::<String, Value>::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Reasoning, Sampling, SystemBlock, ToolDef};
    use serde_json::json;

    fn messages_request(messages: Vec<Message>) -> Request {
        let mut extra = Map::new();
        extra.insert("anthropic_only".to_owned(), json!(true));
        Request {
            model: "claude".to_owned(),
            dialect: Dialect::Messages,
            system: vec![SystemBlock {
                text: "sys".to_owned(),
                developer: false,
                cache: None,
            }],
            messages,
            tools: vec![ToolDef {
                name: "f".to_owned(),
                description: Some("d".to_owned()),
                input_schema: serde_json::value::RawValue::from_string(
                    "{\"type\":\"object\"}".to_owned(),
                )
                .ok(),
                strict: None,
                cache: None,
            }],
            tool_choice: Some(ToolChoice::Required),
            parallel_tool_calls: None,
            sampling: Sampling {
                top_k: Some(5),
                ..Sampling::default()
            },
            max_output_tokens: Some(100),
            response_format: None,
            reasoning: Some(Reasoning {
                enabled: true,
                budget_tokens: Some(1024),
                effort: Some(ReasoningEffort::High),
                summary: None,
            }),
            stream: true,
            stream_usage: true,
            user: None,
            extra,
        }
    }

    fn message(role: Role, content: Vec<Block>) -> Message {
        Message {
            role,
            content,
            name: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn another_dialect_becomes_chat_with_ids_and_images_kept() {
        let request = messages_request(vec![
            message(
                Role::User,
                vec![
                    Block::text("look"),
                    Block::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".to_owned(),
                            data: "AAAA".to_owned(),
                        },
                        detail: None,
                        cache: None,
                    },
                ],
            ),
            message(
                Role::Assistant,
                vec![
                    Block::Thinking {
                        text: "hmm".to_owned(),
                        signature: Some("sig".to_owned()),
                    },
                    Block::ToolCall {
                        id: "toolu_01A".to_owned(),
                        name: "f".to_owned(),
                        arguments: "{}".to_owned(),
                        cache: None,
                    },
                ],
            ),
            message(
                Role::User,
                vec![
                    Block::ToolResult {
                        call_id: "toolu_01A".to_owned(),
                        content: ToolResultContent::Text("ok".to_owned()),
                        is_error: false,
                        cache: None,
                    },
                    Block::text("and now?"),
                ],
            ),
        ]);
        let chat = serde_json::to_value(encode_request(&request, "gpt-4o").unwrap()).unwrap();
        assert_eq!(chat["model"], "gpt-4o");
        assert_eq!(
            chat["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
        assert_eq!(
            chat["messages"][1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        assert_eq!(
            chat["messages"][2],
            json!({"role": "assistant", "tool_calls": [
            {"id": "toolu_01A", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
            "thinking cannot be replayed in Chat"
        );
        assert_eq!(
            chat["messages"][3],
            json!({"role": "tool", "tool_call_id": "toolu_01A", "content": "ok"})
        );
        assert_eq!(
            chat["messages"][4],
            json!({"role": "user", "content": "and now?"})
        );
        assert_eq!(chat["tool_choice"], "required");
        assert_eq!(chat["reasoning_effort"], "high");
        assert_eq!(chat["max_completion_tokens"], 100);
        assert_eq!(chat["stream_options"]["include_usage"], true);
        assert!(chat.get("anthropic_only").is_none() && chat.get("top_k").is_none());
    }

    #[test]
    fn another_dialects_opaque_part_is_refused_naming_it() {
        let request = messages_request(vec![message(
            Role::User,
            vec![
                Block::text("x"),
                Block::Opaque {
                    dialect: Dialect::Messages,
                    part: json!({"type": "search_result"}),
                },
            ],
        )]);
        let refused = encode_request(&request, "m").unwrap_err();
        assert_eq!(refused.param, "messages[0].content[1]");
    }
}
