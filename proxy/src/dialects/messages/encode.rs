//! The proxy's model → a Messages request body, for Anthropic-format upstreams serving a
//! client of another dialect (`kind: anthropic`, and Claude on Bedrock InvokeModel in the
//! [`Flavour::Bedrock`] shape). Instructions anywhere become `system`, consecutive turns of
//! one role merge (Anthropic requires alternation), reasoning effort becomes a thinking
//! budget through one table; what Anthropic cannot express is refused naming the parameter.
//! The choices are listed in docs/messages-dialect.md.

use std::borrow::Cow;

use serde_json::{Map, Value};
use sha2::Digest;

use super::validate::MIN_THINKING_BUDGET;
use super::wire::{
    CacheControl, CacheKind, Content, ContentBlock, CustomTool, DocumentBlock, ImageBlock,
    InputMessage, MediaSource, MessagesRequest, Metadata, RedactedThinkingBlock, Role as WireRole,
    System, SystemBlock as WireSystemBlock, TextBlock, Thinking, ThinkingBlock, Tool,
    ToolChoice as WireChoice, ToolResultBlock, ToolUseBlock,
};
use crate::model::{
    Block, CacheMarker, Dialect, DocumentSource, ImageSource, Message, Reasoning, ReasoningEffort,
    Request, ResponseFormat, Role, ToolChoice, ToolResultContent,
};

/// `max_tokens` when the client set no cap: Anthropic requires one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The `anthropic_version` of a Bedrock InvokeModel body.
pub const BEDROCK_VERSION: &str = "bedrock-2023-05-31";
/// Sent as the first turn when a conversation starts with the assistant: Anthropic requires
/// a user turn first.
const PLACEHOLDER: &str = ".";

/// Which body shape the upstream takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The Anthropic API: `model` and `stream` in the body, betas as a header.
    Anthropic,
    /// Claude on Bedrock InvokeModel: no `model` or `stream` (the URL says them),
    /// `anthropic_version: bedrock-2023-05-31`, betas in `anthropic_beta`.
    Bedrock,
}

/// Why a request cannot be written as Messages: the parameter and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct Unencodable {
    pub param: String,
    pub message: String,
}

fn refuse<T>(param: impl Into<String>, message: impl Into<String>) -> Result<T, Unencodable> {
    Err(Unencodable {
        param: param.into(),
        message: message.into(),
    })
}

/// Writes `request` as a Messages body for `upstream_model`. `betas` (the client's
/// `anthropic-beta` flags) go into the Bedrock body; the Anthropic API takes them as a header.
/// `extra` is written back only when the request came in as Messages, and then it wins over
/// the typed members it repeats (see `decode.rs`).
pub fn encode_request(
    request: &Request,
    upstream_model: &str,
    flavour: Flavour,
    betas: &[String],
) -> Result<MessagesRequest, Unencodable> {
    if request.sampling.n.is_some_and(|n| n > 1) {
        return refuse("n", "Anthropic-format targets answer with one choice only");
    }
    match &request.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(_) => {
            return refuse(
                "response_format",
                "JSON response formats cannot be sent to an Anthropic-format target",
            )
        }
    }
    let same_dialect = request.dialect == Dialect::Messages;
    let (system, messages) = encode_conversation(request)?;
    let thinking = encode_thinking(request);
    let max_tokens = max_tokens(request.max_output_tokens, thinking.as_ref());
    let mut extra = if same_dialect {
        request.extra.clone()
    } else {
        Map::new()
    };
    // A member kept whole in `extra` wins over its typed reading.
    let typed = |key: &str| !extra.contains_key(key);
    let tools = (typed("tools") && !request.tools.is_empty()).then(|| encode_tools(request));
    let tool_choice = typed("tool_choice")
        .then(|| encode_tool_choice(request))
        .flatten();
    let thinking = typed("thinking").then_some(thinking).flatten();
    let metadata = (typed("metadata") && request.user.is_some()).then(|| Metadata {
        user_id: request.user.clone(),
        extra: Map::new(),
    });
    let service_tier = extra
        .shift_remove("service_tier")
        .and_then(|v| v.as_str().map(str::to_owned));
    extra.shift_remove("anthropic_version");
    extra.shift_remove("anthropic_beta");
    let bedrock = flavour == Flavour::Bedrock;
    Ok(MessagesRequest {
        model: if bedrock {
            String::new()
        } else {
            upstream_model.to_owned()
        },
        messages,
        max_tokens: Some(max_tokens),
        system,
        metadata,
        stop_sequences: (!request.sampling.stop.is_empty()).then(|| request.sampling.stop.clone()),
        stream: (!bedrock && request.stream).then_some(true),
        temperature: request.sampling.temperature,
        top_p: request.sampling.top_p,
        top_k: request.sampling.top_k,
        tools,
        tool_choice,
        thinking,
        service_tier,
        anthropic_version: bedrock.then(|| BEDROCK_VERSION.to_owned()),
        anthropic_beta: (bedrock && !betas.is_empty()).then(|| betas.to_vec()),
        extra,
    })
}

/// The client's cap, else [`DEFAULT_MAX_TOKENS`]; raised by the thinking budget when the
/// budget would not fit below it (Anthropic requires `budget_tokens < max_tokens`), so the
/// answer keeps the room the client asked for.
fn max_tokens(cap: Option<u32>, thinking: Option<&Thinking>) -> u32 {
    let cap = cap.filter(|c| *c > 0).unwrap_or(DEFAULT_MAX_TOKENS);
    match thinking {
        Some(Thinking::Enabled { budget_tokens, .. }) if *budget_tokens >= cap => {
            budget_tokens.saturating_add(cap)
        }
        _ => cap,
    }
}

/// Thinking budget for a reasoning effort (the table Bedrock's Converse builder uses too).
pub fn effort_budget(effort: ReasoningEffort) -> u32 {
    match effort {
        ReasoningEffort::Minimal | ReasoningEffort::Low => MIN_THINKING_BUDGET,
        ReasoningEffort::Medium => 2048,
        ReasoningEffort::High => 4096,
    }
}

/// `thinking` for the request's reasoning: the client's budget as is, else one from the
/// effort. Effort-derived thinking is left off where Anthropic would refuse it (a forced
/// tool choice, `temperature` other than 1, `top_k`): the client asked for an effort, not
/// for a 400.
fn encode_thinking(request: &Request) -> Option<Thinking> {
    let Reasoning {
        enabled,
        budget_tokens,
        effort,
        ..
    } = request.reasoning.as_ref()?;
    let enabled_with = |budget_tokens| Thinking::Enabled {
        budget_tokens,
        extra: Map::new(),
    };
    if let (true, Some(budget)) = (*enabled, budget_tokens) {
        return Some(enabled_with(*budget));
    }
    let incompatible = matches!(
        request.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Tool { .. })
    ) || request
        .sampling
        .temperature
        .is_some_and(|t| (t - 1.0).abs() > f64::EPSILON)
        || request.sampling.top_k.is_some();
    match effort {
        _ if incompatible => None,
        Some(effort) => Some(enabled_with(effort_budget(*effort))),
        None if *enabled => Some(enabled_with(MIN_THINKING_BUDGET)),
        None => None,
    }
}

fn cache_control(marker: Option<CacheMarker>) -> Option<CacheControl> {
    marker.map(|marker| CacheControl {
        kind: CacheKind::Ephemeral,
        ttl: marker.ttl,
        extra: Map::new(),
    })
}

/// `system` and the alternating turns. System and developer messages anywhere in the
/// conversation join `system` in order.
fn encode_conversation(
    request: &Request,
) -> Result<(Option<System>, Vec<InputMessage>), Unencodable> {
    let mut system: Vec<WireSystemBlock> = request
        .system
        .iter()
        .map(|block| system_block(block.text.clone(), block.cache))
        .collect();
    let same_dialect = request.dialect == Dialect::Messages;
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in request.messages.iter().enumerate() {
        let role = match message.role {
            Role::System | Role::Developer => {
                hoist(&mut system, message, i)?;
                continue;
            }
            Role::User => WireRole::User,
            Role::Assistant => WireRole::Assistant,
        };
        let blocks = encode_blocks(&message.content, &format!("messages[{i}].content"))?;
        if !blocks.is_empty() {
            let extra = if same_dialect {
                message.extra.clone()
            } else {
                Map::new()
            };
            push_merged(&mut turns, role, blocks, extra);
        }
    }
    if turns.first().is_none_or(|turn| turn.role != WireRole::User) {
        turns.insert(
            0,
            Turn {
                role: WireRole::User,
                blocks: vec![ContentBlock::text(PLACEHOLDER)],
                extra: Map::new(),
            },
        );
    }
    let messages = turns
        .into_iter()
        .map(|turn| InputMessage {
            role: turn.role,
            content: Content::Blocks(turn.blocks),
            extra: turn.extra,
        })
        .collect();
    system.retain(|block| !block.text.is_empty() || block.cache_control.is_some());
    let system = match system.as_slice() {
        [] => None,
        [one] if one.cache_control.is_none() => Some(System::Text(one.text.clone())),
        _ => Some(System::Blocks(system)),
    };
    Ok((system, messages))
}

fn system_block(text: String, cache: Option<CacheMarker>) -> WireSystemBlock {
    WireSystemBlock {
        kind: "text".to_owned(),
        text,
        cache_control: cache_control(cache),
        extra: Map::new(),
    }
}

fn hoist(
    system: &mut Vec<WireSystemBlock>,
    message: &Message,
    i: usize,
) -> Result<(), Unencodable> {
    for (j, block) in message.content.iter().enumerate() {
        let Block::Text { text, cache } = block else {
            return refuse(
                format!("messages[{i}].content[{j}]"),
                "only text is allowed in system messages",
            );
        };
        system.push(system_block(text.clone(), *cache));
    }
    Ok(())
}

/// One message being built.
struct Turn {
    role: WireRole,
    blocks: Vec<ContentBlock>,
    /// The message's unknown members (a Messages client's only).
    extra: Map<String, Value>,
}

/// Appends a turn, merging it into the previous one of the same role. In a user turn the
/// tool results come first, as Anthropic requires.
fn push_merged(
    turns: &mut Vec<Turn>,
    role: WireRole,
    blocks: Vec<ContentBlock>,
    extra: Map<String, Value>,
) {
    match turns.last_mut().filter(|turn| turn.role == role) {
        Some(previous) => {
            previous.blocks.extend(blocks);
            previous.extra.extend(extra);
            if role == WireRole::User {
                let (mut results, rest): (Vec<_>, Vec<_>) = previous
                    .blocks
                    .drain(..)
                    .partition(|b| matches!(b, ContentBlock::ToolResult(_)));
                results.extend(rest);
                previous.blocks = results;
            }
        }
        None => turns.push(Turn {
            role,
            blocks,
            extra,
        }),
    }
}

fn encode_blocks(blocks: &[Block], param: &str) -> Result<Vec<ContentBlock>, Unencodable> {
    let mut out: Vec<ContentBlock> = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        let param = format!("{param}[{j}]");
        match encode_block(block, &param)? {
            Some(encoded) => out.push(encoded),
            // Anthropic rejects empty text; a marker on it still marks what precedes it.
            None => {
                if let (Some(marker), Some(last)) = (block.cache_marker(), out.last_mut()) {
                    set_cache(last, marker);
                }
            }
        }
    }
    Ok(out)
}

fn set_cache(block: &mut ContentBlock, marker: CacheMarker) {
    let slot = match block {
        ContentBlock::Text(b) => &mut b.cache_control,
        ContentBlock::Image(b) => &mut b.cache_control,
        ContentBlock::Document(b) => &mut b.cache_control,
        ContentBlock::ToolUse(b) => &mut b.cache_control,
        ContentBlock::ToolResult(b) => &mut b.cache_control,
        _ => return,
    };
    if slot.is_none() {
        *slot = cache_control(Some(marker));
    }
}

/// One block; `None` for what is dropped (empty text, thinking without a signature, which
/// Anthropic would refuse and no Anthropic model wrote).
fn encode_block(block: &Block, param: &str) -> Result<Option<ContentBlock>, Unencodable> {
    Ok(Some(match block {
        Block::Text { text, .. } if text.is_empty() => return Ok(None),
        Block::Text { text, cache } => ContentBlock::Text(TextBlock {
            text: text.clone(),
            cache_control: cache_control(*cache),
            extra: Map::new(),
        }),
        Block::Image { source, cache, .. } => ContentBlock::Image(ImageBlock {
            source: match source {
                ImageSource::Base64 { media_type, data } => MediaSource::Base64 {
                    media_type: media_type.clone(),
                    data: data.clone(),
                },
                ImageSource::Url { url } => MediaSource::Url { url: url.clone() },
            },
            cache_control: cache_control(*cache),
            extra: Map::new(),
        }),
        Block::Document {
            source,
            name,
            cache,
        } => ContentBlock::Document(DocumentBlock {
            source: match source {
                DocumentSource::Base64 { media_type, data } => MediaSource::Base64 {
                    media_type: media_type.clone(),
                    data: data.clone(),
                },
                DocumentSource::Text { media_type, data } => MediaSource::Text {
                    media_type: media_type.clone(),
                    data: data.clone(),
                },
                DocumentSource::Url { url } => MediaSource::Url { url: url.clone() },
            },
            title: name.clone(),
            cache_control: cache_control(*cache),
            extra: Map::new(),
        }),
        Block::ToolCall {
            id,
            name,
            arguments,
            cache,
        } => ContentBlock::ToolUse(ToolUseBlock {
            id: tool_id(id).into_owned(),
            name: name.clone(),
            input: tool_input(arguments),
            cache_control: cache_control(*cache),
            extra: Map::new(),
        }),
        Block::ToolResult {
            call_id,
            content,
            is_error,
            cache,
        } => ContentBlock::ToolResult(ToolResultBlock {
            tool_use_id: tool_id(call_id).into_owned(),
            content: match content {
                ToolResultContent::Text(text) if text.is_empty() => None,
                ToolResultContent::Text(text) => Some(Content::Text(text.clone())),
                ToolResultContent::Blocks(blocks) => Some(Content::Blocks(encode_blocks(
                    blocks,
                    &format!("{param}.content"),
                )?)),
            },
            is_error: is_error.then_some(true),
            cache_control: cache_control(*cache),
            extra: Map::new(),
        }),
        Block::Thinking {
            text,
            signature: Some(signature),
        } if !signature.is_empty() => ContentBlock::Thinking(ThinkingBlock {
            thinking: text.clone(),
            signature: Some(signature.clone()),
            extra: Map::new(),
        }),
        Block::Thinking { .. } => return Ok(None),
        Block::RedactedThinking { data } => ContentBlock::RedactedThinking(RedactedThinkingBlock {
            data: data.clone(),
            extra: Map::new(),
        }),
        Block::Opaque {
            dialect: Dialect::Messages,
            part,
        } => ContentBlock::Other(part.clone()),
        Block::Opaque { dialect, part } => {
            let kind = part.get("type").and_then(Value::as_str).unwrap_or("?");
            return refuse(
                param,
                format!(
                    "{} content parts of type `{kind}` cannot be sent to an Anthropic-format target",
                    dialect.label()
                ),
            );
        }
    }))
}

/// A tool call's arguments as Anthropic's `input` object: an object as is, other JSON
/// wrapped as `{"value": …}`, empty or invalid text as `{}` (as Bedrock's Converse builder
/// does).
pub fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        Ok(Value::Null) | Err(_) => Value::Object(Map::new()),
        Ok(other) => {
            let mut wrapped = Map::new();
            wrapped.insert("value".to_owned(), other);
            Value::Object(wrapped)
        }
    }
}

/// Anthropic accepts tool ids matching `[a-zA-Z0-9_-]+`. Another provider's id that does not
/// fit is replaced by a hash of it, the same for a call and its result; answers carry
/// Anthropic's own ids, so no way back is needed.
fn tool_id(id: &str) -> Cow<'_, str> {
    let fits = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if fits {
        return Cow::Borrowed(id);
    }
    let digest = sha2::Sha256::digest(id.as_bytes());
    Cow::Owned(format!("toolu_sy{}", hex::encode(&digest[..12])))
}

fn encode_tools(request: &Request) -> Vec<Tool> {
    request
        .tools
        .iter()
        .map(|tool| {
            Tool::Custom(CustomTool {
                kind: None,
                name: tool.name.clone(),
                description: tool.description.clone(),
                // Anthropic requires a schema; a function without parameters takes none.
                input_schema: tool.input_schema.clone().unwrap_or_else(empty_schema),
                strict: tool.strict,
                cache_control: cache_control(tool.cache),
                extra: Map::new(),
            })
        })
        .collect()
}

fn empty_schema() -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(r#"{"type":"object"}"#.to_owned()).unwrap_or_default()
}

/// `tool_choice`; `parallel_tool_calls: false` is `disable_parallel_tool_use: true` (on an
/// `auto` choice when the client named none).
fn encode_tool_choice(request: &Request) -> Option<WireChoice> {
    let disable = (request.parallel_tool_calls == Some(false)).then_some(true);
    let extra = Map::new;
    match &request.tool_choice {
        None if disable.is_some() && !request.tools.is_empty() => Some(WireChoice::Auto {
            disable_parallel_tool_use: disable,
            extra: extra(),
        }),
        None => None,
        Some(ToolChoice::Auto) => Some(WireChoice::Auto {
            disable_parallel_tool_use: disable,
            extra: extra(),
        }),
        Some(ToolChoice::Required) => Some(WireChoice::Any {
            disable_parallel_tool_use: disable,
            extra: extra(),
        }),
        Some(ToolChoice::Tool { name }) => Some(WireChoice::Tool {
            name: name.clone(),
            disable_parallel_tool_use: disable,
            extra: extra(),
        }),
        Some(ToolChoice::None) => Some(WireChoice::None { extra: extra() }),
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
