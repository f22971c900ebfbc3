//! What a Responses client reads for a complete answer: the Response object, its config
//! echoed from the request, `output` items minted from the model's blocks (`msg_…`, `fc_…`,
//! `rs_…` ids), the status (`incomplete` with its reason when the cap or a filter cut it).

use serde_json::{Map, Value};

use super::answer::{IncompleteDetails, ResponseObject, ResponseUsage};
use super::wire::{
    ContentPart, FunctionCallItem, InputItem, MessageContent, MessageItem, MessageRole,
    ReasoningConfig, ReasoningItem, TextConfig, TextFormat, TextPart, Tool, ToolChoice,
    ToolChoiceObject,
};
use crate::model::{
    Answer, Block, Dialect, ReasoningEffort, Request, ResponseFormat, StopReason,
    ToolChoice as ModelChoice,
};

/// Redacted thinking travels to a Responses client as a reasoning item whose
/// `encrypted_content` starts with this; the decoder turns it back into redacted thinking.
pub const REDACTED_PREFIX: &str = "switchyard-redacted:";

/// A fresh id with `prefix` (`resp`, `msg`, `fc`, `rs`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", crate::ids::random_uuid().simple())
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `status` and `incomplete_details` for a stop reason.
pub fn status_of(stop: &StopReason) -> (&'static str, Option<IncompleteDetails>) {
    let reason = match stop {
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => "max_output_tokens",
        StopReason::ContentFilter | StopReason::Refusal => "content_filter",
        _ => return ("completed", None),
    };
    (
        "incomplete",
        Some(IncompleteDetails {
            reason: reason.to_owned(),
        }),
    )
}

/// The Response object of `request` before any output: `in_progress`, the request's settings
/// echoed, no usage.
pub fn skeleton(request: &Request, id: String, created_at: u64) -> ResponseObject {
    let extra = &request.extra;
    let instructions = (!request.system.is_empty()).then(|| {
        request
            .system
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    });
    ResponseObject {
        id,
        object: "response".to_owned(),
        created_at,
        status: "in_progress".to_owned(),
        completed_at: None,
        error: None,
        incomplete_details: None,
        instructions,
        max_output_tokens: request.max_output_tokens,
        model: request.model.clone(),
        output: Vec::new(),
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        previous_response_id: extra
            .get("previous_response_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        reasoning: ReasoningConfig {
            effort: request
                .reasoning
                .as_ref()
                .and_then(|r| r.effort)
                .map(|e| effort_name(e).to_owned()),
            summary: request.reasoning.as_ref().and_then(|r| r.summary.clone()),
            extra: Map::new(),
        },
        store: extra.get("store").and_then(Value::as_bool).unwrap_or(true),
        temperature: request.sampling.temperature,
        text: TextConfig {
            format: Some(text_format(request.response_format.as_ref())),
            extra: Map::new(),
        },
        tool_choice: tool_choice(request.tool_choice.as_ref()),
        tools: request
            .tools
            .iter()
            .map(|tool| Tool {
                kind: "function".to_owned(),
                name: Some(tool.name.clone()),
                description: tool.description.clone(),
                parameters: tool.input_schema.clone(),
                strict: tool.strict,
                extra: Map::new(),
            })
            .collect(),
        top_p: request.sampling.top_p,
        truncation: extra
            .get("truncation")
            .and_then(Value::as_str)
            .unwrap_or("disabled")
            .to_owned(),
        user: request.user.clone(),
        metadata: extra
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        usage: None,
        extra: Map::new(),
    }
}

fn effort_name(effort: ReasoningEffort) -> &'static str {
    match effort {
        ReasoningEffort::Minimal => "minimal",
        ReasoningEffort::Low => "low",
        ReasoningEffort::Medium => "medium",
        ReasoningEffort::High => "high",
    }
}

fn text_format(format: Option<&ResponseFormat>) -> TextFormat {
    let plain = |kind: &str| TextFormat {
        kind: kind.to_owned(),
        name: None,
        schema: None,
        description: None,
        strict: None,
        extra: Map::new(),
    };
    match format {
        None | Some(ResponseFormat::Text) => plain("text"),
        Some(ResponseFormat::JsonObject) => plain("json_object"),
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        }) => TextFormat {
            kind: "json_schema".to_owned(),
            name: Some(name.clone()),
            schema: Some(schema.clone()),
            description: description.clone(),
            strict: *strict,
            extra: Map::new(),
        },
    }
}

fn tool_choice(choice: Option<&ModelChoice>) -> ToolChoice {
    match choice {
        None | Some(ModelChoice::Auto) => ToolChoice::Mode("auto".to_owned()),
        Some(ModelChoice::Required) => ToolChoice::Mode("required".to_owned()),
        Some(ModelChoice::None) => ToolChoice::Mode("none".to_owned()),
        Some(ModelChoice::Tool { name }) => ToolChoice::Object(ToolChoiceObject {
            kind: "function".to_owned(),
            name: Some(name.clone()),
            extra: Map::new(),
        }),
    }
}

/// A completed assistant message item holding `texts` as `output_text` parts.
pub fn message_item(id: String, texts: Vec<String>, status: &str) -> InputItem {
    InputItem::Message(MessageItem {
        kind: Some("message".to_owned()),
        id: Some(id),
        role: MessageRole::Assistant,
        content: MessageContent::Parts(texts.into_iter().map(ContentPart::output_text).collect()),
        status: Some(status.to_owned()),
        extra: Map::new(),
    })
}

pub fn function_call_item(
    id: String,
    call_id: &str,
    name: &str,
    arguments: String,
    status: &str,
) -> InputItem {
    InputItem::FunctionCall(FunctionCallItem {
        kind: "function_call".to_owned(),
        id: Some(id),
        call_id: call_id.to_owned(),
        name: name.to_owned(),
        arguments,
        status: Some(status.to_owned()),
        extra: Map::new(),
    })
}

/// A reasoning item: `summary` text (none when empty) and the opaque `encrypted_content`.
pub fn reasoning_item(id: String, summary: &str, encrypted: Option<String>) -> InputItem {
    InputItem::Reasoning(ReasoningItem {
        kind: "reasoning".to_owned(),
        id: Some(id),
        summary: if summary.is_empty() {
            Vec::new()
        } else {
            vec![TextPart {
                kind: "summary_text".to_owned(),
                text: summary.to_owned(),
            }]
        },
        content: None,
        encrypted_content: encrypted,
        status: None,
        extra: Map::new(),
    })
}

/// The `output` items of an answer's blocks: consecutive texts share one message item.
pub fn output_items(blocks: &[Block]) -> Vec<InputItem> {
    let mut items = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let flush = |texts: &mut Vec<String>, items: &mut Vec<InputItem>| {
        if !texts.is_empty() {
            items.push(message_item(
                new_id("msg"),
                std::mem::take(texts),
                "completed",
            ));
        }
    };
    for block in blocks {
        match block {
            Block::Text { text, .. } => {
                texts.push(text.clone());
                continue;
            }
            Block::ToolCall {
                id,
                name,
                arguments,
                ..
            } => {
                flush(&mut texts, &mut items);
                items.push(function_call_item(
                    new_id("fc"),
                    id,
                    name,
                    arguments.clone(),
                    "completed",
                ));
            }
            Block::Thinking { text, signature } => {
                flush(&mut texts, &mut items);
                items.push(reasoning_item(new_id("rs"), text, signature.clone()));
            }
            Block::RedactedThinking { data } => {
                flush(&mut texts, &mut items);
                items.push(reasoning_item(
                    new_id("rs"),
                    "",
                    Some(format!("{REDACTED_PREFIX}{data}")),
                ));
            }
            Block::Opaque {
                dialect: Dialect::Responses,
                part,
            } => {
                flush(&mut texts, &mut items);
                items.push(InputItem::Other(part.clone()));
            }
            Block::Opaque { .. }
            | Block::Image { .. }
            | Block::Document { .. }
            | Block::ToolResult { .. } => {}
        }
    }
    flush(&mut texts, &mut items);
    items
}

/// The finished Response object of `answer`.
pub fn response_object(request: &Request, answer: &Answer, id: String) -> ResponseObject {
    let created = answer.created.unwrap_or_else(now_unix);
    let mut response = skeleton(request, id, created);
    let (status, incomplete) = status_of(&answer.stop);
    response.status = status.to_owned();
    response.incomplete_details = incomplete;
    response.completed_at = Some(now_unix());
    response.output = output_items(&answer.content);
    response.usage = Some(
        answer
            .usage
            .as_ref()
            .map(ResponseUsage::from_usage)
            .unwrap_or_default(),
    );
    response
}

/// The body a Responses client reads for `answer`.
pub fn encode_answer(request: &Request, answer: &Answer) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&response_object(request, answer, new_id("resp")))
}

#[cfg(test)]
#[path = "respond_tests.rs"]
mod tests;
