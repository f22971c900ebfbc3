//! Chat request → the proxy's model. System and developer messages at the start become
//! [`Request::system`]; `tool` messages fold into [`Block::ToolResult`]s of a user message;
//! `data:` image URLs split into base64 sources; what the model has no place for stays in
//! `extra` (top-level members) or [`Block::Opaque`] (content parts), never dropped.

use serde_json::{Map, Value};

use super::request::{
    ChatRequest, Content, ContentPart, Message as ChatMessage, ResponseFormat as ChatFormat,
    Role as ChatRole, Stop, Tool, ToolChoice as ChatToolChoice,
};
use crate::api::InvalidField;
use crate::model::{
    Block, CacheMarker, CacheTtl, Dialect, DocumentSource, ImageSource, Message, Reasoning,
    ReasoningEffort, Request, ResponseFormat, Role, Sampling, SystemBlock, ToolChoice, ToolDef,
    ToolResultContent,
};

/// Decodes a validated Chat request (see [`ChatRequest::validate`]).
pub fn decode_request(chat: ChatRequest) -> Result<Request, InvalidField> {
    let stream = chat.is_stream();
    let stream_usage = chat.client_wants_stream_usage();
    let max_output_tokens = chat.max_output_tokens();
    let ChatRequest {
        model,
        messages,
        n,
        temperature,
        top_p,
        stop,
        seed,
        frequency_penalty,
        presence_penalty,
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format,
        reasoning_effort,
        user,
        mut extra,
        ..
    } = chat;
    let (system, messages) = decode_messages(messages)?;
    let tools = match tools {
        Some(tools) => decode_tools(tools, &mut extra),
        None => Vec::new(),
    };
    let tool_choice = tool_choice.and_then(|choice| decode_tool_choice(choice, &mut extra));
    let response_format = response_format.and_then(|f| decode_format(f, &mut extra));
    let reasoning = reasoning_effort.and_then(|effort| match parse_effort(&effort) {
        Some(effort) => Some(Reasoning {
            effort: Some(effort),
            ..Reasoning::default()
        }),
        None => {
            extra.insert("reasoning_effort".to_owned(), Value::String(effort));
            None
        }
    });
    let stop = match stop {
        None => Vec::new(),
        Some(Stop::One(one)) => vec![one],
        Some(Stop::Many(many)) => many,
    };
    Ok(Request {
        model,
        dialect: Dialect::Chat,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        sampling: Sampling {
            temperature,
            top_p,
            top_k: None,
            stop,
            seed,
            frequency_penalty,
            presence_penalty,
            n,
        },
        max_output_tokens,
        response_format,
        reasoning,
        stream,
        stream_usage,
        user,
        extra,
    })
}

fn parse_effort(effort: &str) -> Option<ReasoningEffort> {
    match effort {
        "minimal" => Some(ReasoningEffort::Minimal),
        "low" => Some(ReasoningEffort::Low),
        "medium" => Some(ReasoningEffort::Medium),
        "high" => Some(ReasoningEffort::High),
        _ => None,
    }
}

/// Leading system/developer messages → system blocks; the rest in order, `tool` messages
/// folded into one user message per run.
fn decode_messages(
    messages: Vec<ChatMessage>,
) -> Result<(Vec<SystemBlock>, Vec<Message>), InvalidField> {
    let mut system = Vec::new();
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    let mut leading = true;
    for (i, message) in messages.into_iter().enumerate() {
        let developer = message.role == ChatRole::Developer;
        match message.role {
            ChatRole::System | ChatRole::Developer if leading => {
                for block in content_blocks(message.content, i)? {
                    match block {
                        Block::Text { text, cache } => system.push(SystemBlock {
                            text,
                            developer,
                            cache,
                        }),
                        _ => {
                            return Err(InvalidField::new(
                                format!("messages[{i}].content"),
                                "only text parts are allowed in system messages",
                            ))
                        }
                    }
                }
            }
            ChatRole::Tool => {
                leading = false;
                let result = Block::ToolResult {
                    call_id: message.tool_call_id.unwrap_or_default(),
                    content: tool_result_content(message.content, i)?,
                    is_error: false,
                    cache: None,
                };
                match out.last_mut() {
                    Some(last) if last.role == Role::User && only_results(&last.content) => {
                        last.content.push(result);
                    }
                    _ => out.push(Message {
                        role: Role::User,
                        content: vec![result],
                        name: None,
                        extra: Map::new(),
                    }),
                }
            }
            ChatRole::Function => {
                return Err(InvalidField::new(
                    format!("messages[{i}].role"),
                    "`function` messages are deprecated; use `tool` messages",
                ))
            }
            role => {
                leading = false;
                let role = match role {
                    ChatRole::System => Role::System,
                    ChatRole::Developer => Role::Developer,
                    ChatRole::Assistant => Role::Assistant,
                    _ => Role::User,
                };
                let mut content = content_blocks(message.content, i)?;
                for call in message.tool_calls.into_iter().flatten() {
                    content.push(call.function.into_block(call.id));
                }
                out.push(Message {
                    role,
                    content,
                    name: message.name,
                    extra: message.extra,
                });
            }
        }
    }
    Ok((system, out))
}

fn only_results(blocks: &[Block]) -> bool {
    blocks.iter().all(|b| matches!(b, Block::ToolResult { .. }))
}

fn tool_result_content(
    content: Option<Content>,
    i: usize,
) -> Result<ToolResultContent, InvalidField> {
    Ok(match content {
        Some(Content::Text(text)) => ToolResultContent::Text(text),
        None => ToolResultContent::Text(String::new()),
        parts => ToolResultContent::Blocks(content_blocks(parts, i)?),
    })
}

fn content_blocks(content: Option<Content>, i: usize) -> Result<Vec<Block>, InvalidField> {
    match content {
        None => Ok(Vec::new()),
        Some(Content::Text(text)) => Ok(vec![Block::text(text)]),
        Some(Content::Parts(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| decode_part(part, i, j))
            .collect(),
    }
}

/// One content part. `cache_control` (sent by clients that target Anthropic through
/// OpenAI-format gateways) becomes the block's cache marker.
fn decode_part(part: ContentPart, i: usize, j: usize) -> Result<Block, InvalidField> {
    let param = || format!("messages[{i}].content[{j}]");
    let cache = cache_marker(part.extra.get("cache_control"));
    let opaque = |part: ContentPart| {
        serde_json::to_value(part)
            .map(|part| Block::Opaque {
                dialect: Dialect::Chat,
                part,
            })
            .map_err(|e| InvalidField::new(param(), e.to_string()))
    };
    match part.kind.as_str() {
        "text" => match part.text {
            Some(text) => Ok(Block::Text { text, cache }),
            None => Err(InvalidField::new(param(), "a `text` part needs `text`")),
        },
        "image_url" => match part.image_url {
            Some(image) => Ok(Block::Image {
                source: image_source(image.url),
                detail: image.detail,
                cache,
            }),
            None => Err(InvalidField::new(
                param(),
                "an `image_url` part needs `image_url.url`",
            )),
        },
        "file" if inline_file(&part) => {
            let file = part.file.unwrap_or_default();
            let (media_type, data) = file.file_data.and_then(split_data_url).ok_or_else(|| {
                InvalidField::new(param(), "`file_data` must be a base64 `data:` URL")
            })?;
            Ok(Block::Document {
                source: DocumentSource::Base64 { media_type, data },
                name: file.filename,
                cache,
            })
        }
        _ => opaque(part),
    }
}

/// A `file` part with inline data and nothing else the model would lose.
fn inline_file(part: &ContentPart) -> bool {
    part.file.as_ref().is_some_and(|file| {
        file.extra.is_empty()
            && file
                .file_data
                .as_deref()
                .is_some_and(|data| data.starts_with("data:"))
    })
}

fn cache_marker(control: Option<&Value>) -> Option<CacheMarker> {
    let control = control?;
    (control.get("type")?.as_str()? == "ephemeral").then(|| CacheMarker {
        ttl: match control.get("ttl").and_then(Value::as_str) {
            Some("1h") => Some(CacheTtl::OneHour),
            Some("5m") => Some(CacheTtl::FiveMinutes),
            _ => None,
        },
    })
}

/// `data:image/png;base64,AAAA` → base64 source; any other URL stays a URL.
fn image_source(url: String) -> ImageSource {
    if url.starts_with("data:") {
        if let Some((media_type, data)) = split_data_url(url.clone()) {
            return ImageSource::Base64 { media_type, data };
        }
    }
    ImageSource::Url { url }
}

/// `data:<media>;base64,<data>` → (media, data); `None` for other forms.
pub fn split_data_url(url: String) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type.to_owned(), data.to_owned()))
}

/// Function tools into the model; if any tool is of another kind (or carries members the
/// model has no place for), the whole list stays in `extra` as the client wrote it.
fn decode_tools(tools: Vec<Tool>, extra: &mut Map<String, Value>) -> Vec<ToolDef> {
    let typed = tools.iter().all(|tool| {
        tool.kind == "function"
            && tool.extra.is_empty()
            && tool.function.as_ref().is_some_and(|f| f.extra.is_empty())
    });
    if !typed {
        if let Ok(value) = serde_json::to_value(&tools) {
            extra.insert("tools".to_owned(), value);
        }
        return Vec::new();
    }
    tools
        .into_iter()
        .filter_map(|tool| tool.function)
        .map(|function| ToolDef {
            name: function.name,
            description: function.description,
            input_schema: function.parameters,
            strict: function.strict,
            cache: None,
        })
        .collect()
}

fn decode_tool_choice(
    choice: ChatToolChoice,
    extra: &mut Map<String, Value>,
) -> Option<ToolChoice> {
    let typed = match &choice {
        ChatToolChoice::Mode(mode) => match mode.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => None,
        },
        ChatToolChoice::Named(named) if named.kind == "function" && named.extra.is_empty() => {
            named.function.as_ref().map(|f| ToolChoice::Tool {
                name: f.name.clone(),
            })
        }
        ChatToolChoice::Named(_) => None,
    };
    if typed.is_none() {
        if let Ok(value) = serde_json::to_value(&choice) {
            extra.insert("tool_choice".to_owned(), value);
        }
    }
    typed
}

fn decode_format(format: ChatFormat, extra: &mut Map<String, Value>) -> Option<ResponseFormat> {
    let typed = match (format.kind.as_str(), &format.json_schema) {
        ("text", None) if format.extra.is_empty() => Some(ResponseFormat::Text),
        ("json_object", None) if format.extra.is_empty() => Some(ResponseFormat::JsonObject),
        ("json_schema", Some(schema))
            if format.extra.is_empty() && schema.extra.is_empty() && schema.name.is_some() =>
        {
            let raw = match &schema.schema {
                Some(raw) => Some(raw.clone()),
                None => {
                    serde_json::value::RawValue::from_string("{\"type\":\"object\"}".to_owned())
                        .ok()
                }
            };
            raw.map(|raw| ResponseFormat::JsonSchema {
                name: schema.name.clone().unwrap_or_default(),
                schema: raw,
                strict: schema.strict,
                description: schema.description.clone(),
            })
        }
        _ => None,
    };
    if typed.is_none() {
        if let Ok(value) = serde_json::to_value(&format) {
            extra.insert("response_format".to_owned(), value);
        }
    }
    typed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::chat::encode::encode_request;
    use serde_json::json;

    fn decode(body: Value) -> Request {
        let wire: ChatRequest = serde_json::from_str(&body.to_string()).unwrap();
        wire.validate().unwrap();
        decode_request(wire).unwrap()
    }

    #[test]
    fn system_tools_and_tool_results_take_their_places() {
        let request = decode(json!({"model": "alias", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "use tools"}]},
            {"role": "user", "content": "weather?", "name": "ann"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_A1", "type": "function", "function": {"name": "w", "arguments": "{\"c\":1}"}},
                {"id": "toolu_01XYZ", "type": "function", "function": {"name": "w", "arguments": "not json"}}]},
            {"role": "tool", "tool_call_id": "call_A1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "toolu_01XYZ", "content": [{"type": "text", "text": "rain"}]},
            {"role": "system", "content": "mid-way"}],
            "tools": [{"type": "function", "function": {"name": "w", "description": "weather",
                "parameters": {"type": "object", "properties": {}}}}],
            "tool_choice": {"type": "function", "function": {"name": "w"}},
            "parallel_tool_calls": false, "user": "u-1", "reasoning_effort": "low",
            "max_tokens": 50, "stream": true, "stream_options": {"include_usage": true},
            "temperature": 0.3, "stop": "END", "seed": 4, "logprobs": true}));
        assert_eq!(request.dialect, Dialect::Chat);
        assert_eq!(request.system.len(), 2);
        assert!(!request.system[0].developer && request.system[1].developer);
        assert_eq!(request.messages.len(), 4);
        assert_eq!(request.messages[0].name.as_deref(), Some("ann"));
        let calls: Vec<&str> = request.messages[1]
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolCall { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(calls, ["call_A1", "toolu_01XYZ"]);
        let results = &request.messages[2];
        assert_eq!(results.role, Role::User);
        assert_eq!(
            results.content.len(),
            2,
            "consecutive tool messages fold into one turn"
        );
        assert!(
            matches!(&results.content[1], Block::ToolResult { call_id, content: ToolResultContent::Blocks(_), .. } if call_id == "toolu_01XYZ")
        );
        assert_eq!(request.messages[3].role, Role::System);
        assert_eq!(
            request.tools[0].input_schema.as_ref().unwrap().get(),
            r#"{"type":"object","properties":{}}"#
        );
        assert_eq!(
            request.tool_choice,
            Some(ToolChoice::Tool {
                name: "w".to_owned()
            })
        );
        assert_eq!(request.parallel_tool_calls, Some(false));
        assert_eq!(
            request.reasoning.as_ref().and_then(|r| r.effort),
            Some(ReasoningEffort::Low)
        );
        assert_eq!(
            (
                request.max_output_tokens,
                request.stream,
                request.stream_usage
            ),
            (Some(50), true, true)
        );
        assert_eq!(request.sampling.stop, ["END"]);
        assert_eq!(
            (request.sampling.temperature, request.sampling.seed),
            (Some(0.3), Some(4))
        );
        assert_eq!(request.user.as_deref(), Some("u-1"));
        assert_eq!(request.extra["logprobs"], true);
    }

    #[test]
    fn data_urls_split_into_base64_and_other_parts_stay_opaque() {
        let request = decode(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "abcd", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
            {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]}]}),
        );
        let content = &request.messages[0].content;
        assert_eq!(
            content[0],
            Block::Text {
                text: "abcd".to_owned(),
                cache: Some(CacheMarker {
                    ttl: Some(CacheTtl::OneHour)
                })
            }
        );
        assert_eq!(
            content[1],
            Block::Image {
                source: ImageSource::Base64 {
                    media_type: "image/png".to_owned(),
                    data: "AAAA".to_owned()
                },
                detail: Some("low".to_owned()),
                cache: None,
            }
        );
        assert!(
            matches!(&content[2], Block::Image { source: ImageSource::Url { url }, .. } if url.ends_with("cat.png"))
        );
        assert!(
            matches!(&content[3], Block::Document { source: DocumentSource::Base64 { media_type, .. }, name: Some(n), .. } if media_type == "application/pdf" && n == "a.pdf")
        );
        assert!(
            matches!(&content[4], Block::Opaque { dialect: Dialect::Chat, part } if part["input_audio"]["format"] == "wav")
        );
        assert_eq!(
            request.prompt_bytes(),
            4 + 4 + "https://example.com/cat.png".len() + 4 + content[4].content_bytes()
        );
    }

    #[test]
    fn what_the_model_cannot_type_stays_in_extra() {
        let request = decode(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "custom", "custom": {"name": "grammar"}}],
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto"}},
            "response_format": {"type": "json_schema", "json_schema": {"schema": {}}},
            "reasoning_effort": "xhigh"}),
        );
        assert!(request.tools.is_empty() && request.tool_choice.is_none());
        assert!(request.response_format.is_none() && request.reasoning.is_none());
        for key in [
            "tools",
            "tool_choice",
            "response_format",
            "reasoning_effort",
        ] {
            assert!(request.extra.contains_key(key), "{key}");
        }
    }

    #[test]
    fn function_messages_are_refused_naming_the_role() {
        let wire: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "function", "name": "f", "content": "x"}]}))
        .unwrap();
        assert_eq!(decode_request(wire).unwrap_err().param, "messages[0].role");
    }

    #[test]
    fn chat_to_model_to_chat_is_faithful() {
        let body = json!({"model": "alias", "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/", "detail": "high"}},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]},
            {"role": "assistant", "content": "calling", "tool_calls": [
                {"id": "call_Z9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_Z9", "content": "done"},
            {"role": "user", "content": "thanks", "x_custom": 1}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": true}}],
            "tool_choice": "auto", "response_format": {"type": "json_schema",
                "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}},
            "max_completion_tokens": 9, "n": 1, "top_p": 0.9, "presence_penalty": 0.1,
            "frequency_penalty": 0.2, "stop": ["a", "b"], "metadata": {"k": "v"}});
        let request = decode(body.clone());
        let back = serde_json::to_value(encode_request(&request, "alias").unwrap()).unwrap();
        assert_eq!(back, body);
    }
}
