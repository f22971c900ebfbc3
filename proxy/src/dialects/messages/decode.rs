//! Messages request → the proxy's model. Blocks the model can carry whole become typed
//! [`Block`]s (thinking keeps its signature, `tool_use` input becomes its JSON text,
//! `cache_control` a [`CacheMarker`]); a block with anything more (citations, a `file`
//! source, a server-tool block) stays verbatim as [`Block::Opaque`]. Top-level members the
//! model has no place for go to `extra`; a member the model reads only in part (`thinking:
//! adaptive`, `tool_choice` or `metadata` with newer members, server tools) is both read and
//! kept whole in `extra`, which wins when the request is written back as Messages
//! (docs/messages-dialect.md).

use serde_json::{Map, Value};

use super::wire::{
    CacheControl, Content, ContentBlock, DocumentBlock, ImageBlock, InputMessage, MediaSource,
    MessagesRequest, Metadata, Role as WireRole, System, Thinking, Tool, ToolChoice as WireChoice,
    ToolResultBlock,
};
use crate::api::InvalidField;
use crate::model::{
    Block, CacheMarker, Dialect, DocumentSource, ImageSource, Message, Reasoning, Request, Role,
    Sampling, SystemBlock, ToolChoice, ToolDef, ToolResultContent,
};

/// Decodes a validated Messages request (see [`MessagesRequest::validate`]).
pub fn decode_request(wire: MessagesRequest) -> Result<Request, InvalidField> {
    let stream = wire.is_stream();
    let MessagesRequest {
        model,
        messages,
        max_tokens,
        system,
        metadata,
        stop_sequences,
        stream: _,
        temperature,
        top_p,
        top_k,
        tools,
        tool_choice,
        thinking,
        service_tier,
        anthropic_version,
        anthropic_beta,
        mut extra,
    } = wire;
    let system = decode_system(system);
    let messages = messages
        .into_iter()
        .enumerate()
        .map(|(i, message)| decode_message(message, i))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = tools.map_or_else(Vec::new, |tools| decode_tools(tools, &mut extra));
    let (tool_choice, parallel_tool_calls) = match tool_choice {
        Some(choice) => decode_tool_choice(choice, &mut extra),
        None => (None, None),
    };
    let reasoning = thinking.and_then(|thinking| decode_thinking(thinking, &mut extra));
    let user = metadata.and_then(|metadata| decode_metadata(metadata, &mut extra));
    keep(&mut extra, "service_tier", service_tier);
    keep(&mut extra, "anthropic_version", anthropic_version);
    keep(&mut extra, "anthropic_beta", anthropic_beta);
    Ok(Request {
        model,
        dialect: Dialect::Messages,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        sampling: Sampling {
            temperature,
            top_p,
            top_k,
            stop: stop_sequences.unwrap_or_default(),
            ..Sampling::default()
        },
        max_output_tokens: max_tokens,
        response_format: None,
        reasoning,
        stream,
        // Anthropic streams always report usage.
        stream_usage: true,
        user,
        extra,
    })
}

/// Puts a typed member the model has no place for back into `extra`.
fn keep<T: serde::Serialize>(extra: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value.and_then(|v| serde_json::to_value(v).ok()) {
        extra.insert(key.to_owned(), value);
    }
}

pub(super) fn cache_marker(control: Option<CacheControl>) -> Option<CacheMarker> {
    control.map(|control| CacheMarker { ttl: control.ttl })
}

fn decode_system(system: Option<System>) -> Vec<SystemBlock> {
    match system {
        None => Vec::new(),
        Some(System::Text(text)) if text.is_empty() => Vec::new(),
        Some(System::Text(text)) => vec![SystemBlock {
            text,
            developer: false,
            cache: None,
        }],
        // Members beyond text and cache_control (citations) have no place in the model; the
        // pass-through keeps them, translated hops lose them (docs/messages-dialect.md).
        Some(System::Blocks(blocks)) => blocks
            .into_iter()
            .map(|block| SystemBlock {
                text: block.text,
                developer: false,
                cache: cache_marker(block.cache_control),
            })
            .collect(),
    }
}

fn decode_message(message: InputMessage, i: usize) -> Result<Message, InvalidField> {
    let role = match message.role {
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
    };
    Ok(Message {
        role,
        content: decode_content(message.content, &format!("messages[{i}].content"))?,
        name: None,
        extra: message.extra,
    })
}

fn decode_content(content: Content, param: &str) -> Result<Vec<Block>, InvalidField> {
    match content {
        Content::Text(text) => Ok(vec![Block::text(text)]),
        Content::Blocks(blocks) => blocks
            .into_iter()
            .enumerate()
            .map(|(j, block)| decode_block(block, &format!("{param}[{j}]")))
            .collect(),
    }
}

/// Whether a block has members the model would lose (nulls count as absent).
fn has_more(extra: &Map<String, Value>) -> bool {
    extra.values().any(|v| !v.is_null())
}

/// One block: typed when the model carries it whole, else kept verbatim.
fn decode_block(block: ContentBlock, param: &str) -> Result<Block, InvalidField> {
    let whole = match block {
        ContentBlock::Text(b) if !has_more(&b.extra) => {
            return Ok(Block::Text {
                text: b.text,
                cache: cache_marker(b.cache_control),
            })
        }
        ContentBlock::Image(b) if !has_more(&b.extra) => match image_source(b.source) {
            Ok(source) => {
                return Ok(Block::Image {
                    source,
                    detail: None,
                    cache: cache_marker(b.cache_control),
                })
            }
            Err(source) => ContentBlock::Image(ImageBlock { source, ..b }),
        },
        ContentBlock::Document(b) if !has_more(&b.extra) => match document_source(b.source) {
            Ok(source) => {
                return Ok(Block::Document {
                    source,
                    name: b.title,
                    cache: cache_marker(b.cache_control),
                })
            }
            Err(source) => ContentBlock::Document(DocumentBlock { source, ..b }),
        },
        ContentBlock::ToolUse(b) if !has_more(&b.extra) => {
            return Ok(Block::ToolCall {
                id: b.id,
                name: b.name,
                // Compact JSON in the client's key order (serde_json keeps it).
                arguments: b.input.to_string(),
                cache: cache_marker(b.cache_control),
            });
        }
        ContentBlock::ToolResult(b) if !has_more(&b.extra) => return decode_tool_result(b, param),
        ContentBlock::Thinking(b) if !has_more(&b.extra) => {
            return Ok(Block::Thinking {
                text: b.thinking,
                signature: b.signature,
            })
        }
        ContentBlock::RedactedThinking(b) if !has_more(&b.extra) => {
            return Ok(Block::RedactedThinking { data: b.data })
        }
        other => other,
    };
    serde_json::to_value(&whole)
        .map(|part| Block::Opaque {
            dialect: Dialect::Messages,
            part,
        })
        .map_err(|e| InvalidField::new(param, e.to_string()))
}

fn decode_tool_result(block: ToolResultBlock, param: &str) -> Result<Block, InvalidField> {
    let content = match block.content {
        None => ToolResultContent::Text(String::new()),
        Some(Content::Text(text)) => ToolResultContent::Text(text),
        Some(blocks) => {
            ToolResultContent::Blocks(decode_content(blocks, &format!("{param}.content"))?)
        }
    };
    Ok(Block::ToolResult {
        call_id: block.tool_use_id,
        content,
        is_error: block.is_error.unwrap_or(false),
        cache: cache_marker(block.cache_control),
    })
}

/// The model's image source, or the source back when the model has none like it.
fn image_source(source: MediaSource) -> Result<ImageSource, MediaSource> {
    match source {
        MediaSource::Base64 { media_type, data } => Ok(ImageSource::Base64 { media_type, data }),
        MediaSource::Url { url } => Ok(ImageSource::Url { url }),
        other => Err(other),
    }
}

fn document_source(source: MediaSource) -> Result<DocumentSource, MediaSource> {
    match source {
        MediaSource::Base64 { media_type, data } => Ok(DocumentSource::Base64 { media_type, data }),
        MediaSource::Text { media_type, data } => Ok(DocumentSource::Text { media_type, data }),
        MediaSource::Url { url } => Ok(DocumentSource::Url { url }),
        MediaSource::Other(other) => Err(MediaSource::Other(other)),
    }
}

/// Custom tools into the model. If any tool is a server tool or carries members the model
/// has no place for, the whole list is also kept in `extra` as the client wrote it.
fn decode_tools(tools: Vec<Tool>, extra: &mut Map<String, Value>) -> Vec<ToolDef> {
    let whole = tools
        .iter()
        .all(|tool| matches!(tool, Tool::Custom(custom) if !has_more(&custom.extra)));
    if !whole {
        keep(extra, "tools", Some(&tools));
    }
    tools
        .into_iter()
        .filter_map(|tool| match tool {
            Tool::Custom(custom) => Some(ToolDef {
                name: custom.name,
                description: custom.description,
                input_schema: Some(custom.input_schema),
                strict: custom.strict,
                cache: cache_marker(custom.cache_control),
            }),
            Tool::Other(_) => None,
        })
        .collect()
}

/// The choice and the parallel-calls switch (`disable_parallel_tool_use: true` is
/// `parallel_tool_calls: false`).
fn decode_tool_choice(
    choice: WireChoice,
    extra: &mut Map<String, Value>,
) -> (Option<ToolChoice>, Option<bool>) {
    let (typed, disable, more) = match &choice {
        WireChoice::Auto {
            disable_parallel_tool_use,
            extra,
        } => (
            ToolChoice::Auto,
            *disable_parallel_tool_use,
            has_more(extra),
        ),
        WireChoice::Any {
            disable_parallel_tool_use,
            extra,
        } => (
            ToolChoice::Required,
            *disable_parallel_tool_use,
            has_more(extra),
        ),
        WireChoice::Tool {
            name,
            disable_parallel_tool_use,
            extra,
        } => (
            ToolChoice::Tool { name: name.clone() },
            *disable_parallel_tool_use,
            has_more(extra),
        ),
        WireChoice::None { extra } => (ToolChoice::None, None, has_more(extra)),
    };
    if more {
        keep(extra, "tool_choice", Some(&choice));
    }
    (Some(typed), disable.map(|disable| !disable))
}

/// `enabled` with its budget is the model's reasoning; `adaptive` is reasoning on with no
/// budget; `disabled` is none. Anything not exactly that is also kept whole in `extra`.
fn decode_thinking(thinking: Thinking, extra: &mut Map<String, Value>) -> Option<Reasoning> {
    let (reasoning, exact) = match &thinking {
        Thinking::Enabled {
            budget_tokens,
            extra,
        } => (
            Some(Reasoning {
                enabled: true,
                budget_tokens: Some(*budget_tokens),
                ..Reasoning::default()
            }),
            !has_more(extra),
        ),
        Thinking::Adaptive { .. } => (
            Some(Reasoning {
                enabled: true,
                ..Reasoning::default()
            }),
            false,
        ),
        Thinking::Disabled { .. } => (None, false),
    };
    if !exact {
        keep(extra, "thinking", Some(&thinking));
    }
    reasoning
}

fn decode_metadata(metadata: Metadata, extra: &mut Map<String, Value>) -> Option<String> {
    if has_more(&metadata.extra) {
        keep(extra, "metadata", Some(&metadata));
    }
    metadata.user_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CacheTtl;
    use serde_json::json;

    pub(crate) fn decode(body: Value) -> Request {
        let wire: MessagesRequest = serde_json::from_str(&body.to_string()).unwrap();
        wire.validate().unwrap();
        decode_request(wire).unwrap()
    }

    #[test]
    fn every_block_type_takes_its_place() {
        let request = decode(json!({"model": "claude", "max_tokens": 4096, "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "title": "a.pdf"},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi"}, "citations": {"enabled": true}},
                {"type": "search_result", "source": "s", "title": "r", "content": []}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "EmwK"},
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "toolu_01A", "name": "f", "input": {"z": 1, "a": {"b": [1.5, null]}}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "is_error": true,
                    "content": [{"type": "text", "text": "boom"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}}]},
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "plain"},
                {"type": "tool_result", "tool_use_id": "toolu_01C", "cache_control": {"type": "ephemeral"}}]}]}));
        assert_eq!(request.dialect, Dialect::Messages);
        assert!(request.stream_usage && !request.stream);
        let user = &request.messages[0].content;
        assert_eq!(
            user[0],
            Block::Text {
                text: "look".to_owned(),
                cache: Some(CacheMarker {
                    ttl: Some(CacheTtl::OneHour)
                })
            }
        );
        assert!(
            matches!(&user[1], Block::Image { source: ImageSource::Base64 { media_type, data }, .. } if media_type == "image/png" && data == "AAAA")
        );
        assert!(
            matches!(&user[2], Block::Image { source: ImageSource::Url { url }, .. } if url.ends_with("cat.png"))
        );
        assert!(
            matches!(&user[3], Block::Document { source: DocumentSource::Base64 { .. }, name: Some(n), .. } if n == "a.pdf")
        );
        assert!(
            matches!(&user[4], Block::Opaque { dialect: Dialect::Messages, part } if part["citations"]["enabled"] == true),
            "citations have no place in the model: the block stays whole"
        );
        assert!(matches!(&user[5], Block::Opaque { part, .. } if part["type"] == "search_result"));
        let assistant = &request.messages[1].content;
        assert_eq!(
            assistant[0],
            Block::Thinking {
                text: "hmm".to_owned(),
                signature: Some("EqQB".to_owned())
            }
        );
        assert_eq!(
            assistant[1],
            Block::RedactedThinking {
                data: "EmwK".to_owned()
            }
        );
        assert!(
            matches!(&assistant[3], Block::ToolCall { id, arguments, .. } if id == "toolu_01A" && arguments == r#"{"z":1,"a":{"b":[1.5,null]}}"#),
            "{:?}",
            assistant[3]
        );
        let results = &request.messages[2].content;
        assert!(
            matches!(&results[0], Block::ToolResult { call_id, is_error: true, content: ToolResultContent::Blocks(b), .. } if call_id == "toolu_01A" && matches!(b[1], Block::Image { .. }))
        );
        assert!(
            matches!(&results[1], Block::ToolResult { content: ToolResultContent::Text(t), is_error: false, .. } if t == "plain")
        );
        assert!(
            matches!(&results[2], Block::ToolResult { cache: Some(_), content: ToolResultContent::Text(t), .. } if t.is_empty())
        );
        assert!(request.has_thinking());
    }

    #[test]
    fn settings_take_their_places() {
        let request = decode(
            json!({"model": "claude", "max_tokens": 9000, "stream": true,
            "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}},
                "cache_control": {"type": "ephemeral", "ttl": "5m"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 4000},
            "metadata": {"user_id": "{\"device_id\":\"d\"}"}, "stop_sequences": ["END"],
            "temperature": 1, "top_p": 0.9, "top_k": 40, "service_tier": "auto",
            "output_config": {"effort": "high"}}),
        );
        assert!(request.stream);
        assert_eq!(request.system.len(), 2);
        assert_eq!(
            request.system[1].cache,
            Some(CacheMarker::default()),
            "a marker without ttl means the provider's default"
        );
        assert_eq!(request.messages[0].content, vec![Block::text("hi")]);
        assert_eq!(
            request.tools[0].input_schema.as_ref().unwrap().get(),
            r#"{"type":"object","properties":{}}"#
        );
        assert_eq!(
            request.tools[0].cache,
            Some(CacheMarker {
                ttl: Some(CacheTtl::FiveMinutes)
            })
        );
        assert_eq!(request.tool_choice, Some(ToolChoice::Required));
        assert_eq!(request.parallel_tool_calls, Some(false));
        assert_eq!(
            request.reasoning,
            Some(Reasoning {
                enabled: true,
                budget_tokens: Some(4000),
                ..Reasoning::default()
            })
        );
        assert_eq!(request.user.as_deref(), Some("{\"device_id\":\"d\"}"));
        assert_eq!(request.sampling.stop, ["END"]);
        assert_eq!(
            (
                request.sampling.temperature,
                request.sampling.top_p,
                request.sampling.top_k
            ),
            (Some(1.0), Some(0.9), Some(40))
        );
        assert_eq!(request.max_output_tokens, Some(9000));
        assert_eq!(
            request.extra.keys().collect::<Vec<_>>(),
            ["output_config", "service_tier"]
        );
    }

    #[test]
    fn what_the_model_reads_in_part_is_also_kept_whole() {
        let request = decode(json!({"model": "claude", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
            "tool_choice": {"type": "auto", "future": 1},
            "thinking": {"type": "adaptive"},
            "metadata": {"user_id": "u", "tags": ["x"]}}));
        assert_eq!(request.tools.len(), 1, "the custom tool is typed");
        assert_eq!(request.extra["tools"][1]["type"], "web_search_20250305");
        assert_eq!(request.tool_choice, Some(ToolChoice::Auto));
        assert_eq!(request.extra["tool_choice"]["future"], 1);
        assert!(request.reasoning.as_ref().is_some_and(|r| r.enabled));
        assert_eq!(request.extra["thinking"], json!({"type": "adaptive"}));
        assert_eq!(request.user.as_deref(), Some("u"));
        assert_eq!(request.extra["metadata"]["tags"][0], "x");
    }

    #[test]
    fn claude_codes_thinking_display_is_read_and_kept() {
        let request = decode(json!({"model": "claude", "max_tokens": 32000,
            "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"budget_tokens": 4096, "type": "enabled", "display": "omitted"},
            "context_management": {"edits": []}}));
        assert_eq!(
            request.reasoning.as_ref().and_then(|r| r.budget_tokens),
            Some(4096)
        );
        assert_eq!(request.extra["thinking"]["display"], "omitted");
        assert!(request.extra.contains_key("context_management"));
    }

    #[test]
    fn disabled_thinking_is_no_reasoning() {
        let request = decode(json!({"model": "claude", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "disabled"},
            "tool_choice": {"type": "none"}}));
        assert!(request.reasoning.is_none());
        assert_eq!(request.tool_choice, Some(ToolChoice::None));
        assert_eq!(request.parallel_tool_calls, None);
    }
}
