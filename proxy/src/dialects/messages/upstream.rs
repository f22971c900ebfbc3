//! An Anthropic-format upstream's answer read into the proxy's model, for clients of another
//! dialect: the Message body into an [`Answer`], its SSE events into [`StreamEvent`]s
//! (blocks of types the model has no kind for are skipped and the indexes after them closed
//! up), usage converted to the proxy's convention with the cache TTL split.

use serde::Deserialize;
use serde_json::Value;

use super::answer::{usage_from_wire, MessagesAnswer, MessagesUsage};
use super::error::{is_capacity, ErrorBody};
use super::wire::ContentBlock;
use crate::metering::Usage;
use crate::model::{Answer, Block, BlockKind, Delta, Dialect, StopReason, StreamEvent};

/// A `stop_reason` (with the matched `stop_sequence`) as a stop reason.
pub fn stop_reason(reason: Option<&str>, sequence: Option<String>) -> StopReason {
    match reason {
        None | Some("end_turn") => StopReason::EndTurn,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence { sequence },
        Some("tool_use") => StopReason::ToolUse,
        Some("refusal") => StopReason::Refusal,
        Some("pause_turn") => StopReason::PauseTurn,
        Some("model_context_window_exceeded") => StopReason::ContextWindowExceeded,
        Some(other) => StopReason::Other {
            reason: other.to_owned(),
        },
    }
}

/// One answer block in the model. Text loses its citations (no dialect but Messages has a
/// place for them, and a Messages client is served by the pass-through); server-tool blocks
/// stay whole.
fn answer_block(block: ContentBlock) -> Block {
    match block {
        ContentBlock::Text(text) => Block::text(text.text),
        ContentBlock::Thinking(thinking) => Block::Thinking {
            text: thinking.thinking,
            signature: thinking.signature.filter(|s| !s.is_empty()),
        },
        ContentBlock::RedactedThinking(redacted) => Block::RedactedThinking {
            data: redacted.data,
        },
        ContentBlock::ToolUse(call) => Block::ToolCall {
            id: call.id,
            name: call.name,
            arguments: call.input.to_string(),
            cache: None,
        },
        ContentBlock::Other(part) => Block::Opaque {
            dialect: Dialect::Messages,
            part,
        },
        other => Block::Opaque {
            dialect: Dialect::Messages,
            part: serde_json::to_value(&other).unwrap_or(Value::Null),
        },
    }
}

/// Usage unless the upstream reported no count at all.
fn reported(usage: &MessagesUsage) -> Option<Usage> {
    let any = usage.input_tokens.is_some()
        || usage.output_tokens.is_some()
        || usage.cache_read_input_tokens.is_some()
        || usage.cache_creation_input_tokens.is_some();
    any.then(|| usage_from_wire(usage))
}

/// Reads a complete Message body.
pub fn decode_answer(body: &[u8]) -> Result<Answer, serde_json::Error> {
    let answer: MessagesAnswer = serde_json::from_slice(body)?;
    Ok(Answer {
        id: Some(answer.id).filter(|id| !id.is_empty()),
        content: answer.content.into_iter().map(answer_block).collect(),
        stop: stop_reason(answer.stop_reason.as_deref(), answer.stop_sequence),
        usage: reported(&answer.usage),
        created: None,
    })
}

/// How a stream goes on after one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Keep reading.
    Continue,
    /// `message_stop`: the stream ended properly.
    Done,
}

/// Why a stream cannot go on: the upstream's `event: error` (or an event that is not
/// Anthropic's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct StreamFault {
    /// Anthropic's error type (`overloaded_error`, …); `api_error` for a malformed event.
    pub error_type: String,
    pub message: String,
    /// `overloaded_error` or `rate_limit_error`: worth another target if nothing was sent.
    pub capacity: bool,
}

impl StreamFault {
    fn malformed(event_type: &str, error: &serde_json::Error) -> Self {
        StreamFault {
            error_type: "api_error".to_owned(),
            message: format!("the upstream sent a malformed `{event_type}` event: {error}"),
            capacity: false,
        }
    }
}

#[derive(Deserialize)]
struct MessageStart {
    message: MessagesAnswer,
}

#[derive(Deserialize)]
struct BlockStart {
    index: usize,
    content_block: ContentBlock,
}

#[derive(Deserialize)]
struct BlockDelta {
    index: usize,
    delta: Value,
}

#[derive(Deserialize)]
struct BlockStop {
    index: usize,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    delta: StopFields,
    #[serde(default)]
    usage: MessagesUsage,
}

#[derive(Deserialize, Default)]
struct StopFields {
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
}

/// Turns one Anthropic stream's events into the model's, keeping the merged usage and which
/// upstream block maps to which model block.
#[derive(Debug, Default)]
pub struct EventDecoder {
    usage: MessagesUsage,
    /// Upstream block index → model index (`None`: a block the model has no kind for).
    blocks: Vec<(usize, Option<usize>)>,
    next_index: usize,
}

impl EventDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The usage reported so far (input figures from `message_start`, the cumulative output
    /// from the last `message_delta`), if any.
    pub fn usage(&self) -> Option<Usage> {
        reported(&self.usage)
    }

    /// The model's events for one SSE event. `event_type` is the `event:` line; when the
    /// framing gave none, the data's own `type` is used.
    pub fn decode(
        &mut self,
        event_type: &str,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<Progress, StreamFault> {
        let named;
        let event_type = if event_type.is_empty() {
            named = data_type(data);
            named.as_str()
        } else {
            event_type
        };
        let malformed = |e: serde_json::Error| StreamFault::malformed(event_type, &e);
        match event_type {
            "message_start" => {
                let start: MessageStart = serde_json::from_str(data).map_err(malformed)?;
                out.push(StreamEvent::Start {
                    id: Some(start.message.id).filter(|id| !id.is_empty()),
                    created: None,
                });
                self.usage.update(&start.message.usage);
                out.extend(self.usage().map(StreamEvent::Usage));
            }
            "content_block_start" => {
                let start: BlockStart = serde_json::from_str(data).map_err(malformed)?;
                self.open(start.index, start.content_block, out);
            }
            "content_block_delta" => {
                let delta: BlockDelta = serde_json::from_str(data).map_err(malformed)?;
                if let (Some(index), Some(delta)) =
                    (self.model_index(delta.index), model_delta(&delta.delta))
                {
                    out.push(StreamEvent::Delta { index, delta });
                }
            }
            "content_block_stop" => {
                let stop: BlockStop = serde_json::from_str(data).map_err(malformed)?;
                if let Some(index) = self.model_index(stop.index) {
                    out.push(StreamEvent::BlockStop { index });
                }
            }
            "message_delta" => {
                let delta: MessageDelta = serde_json::from_str(data).map_err(malformed)?;
                if delta.delta.stop_reason.is_some() {
                    out.push(StreamEvent::Stop {
                        reason: stop_reason(
                            delta.delta.stop_reason.as_deref(),
                            delta.delta.stop_sequence,
                        ),
                    });
                }
                self.usage.update(&delta.usage);
                out.extend(self.usage().map(StreamEvent::Usage));
            }
            "message_stop" => return Ok(Progress::Done),
            "error" => {
                let body: ErrorBody = serde_json::from_str(data).map_err(malformed)?;
                return Err(StreamFault {
                    capacity: is_capacity(&body.error.kind),
                    error_type: body.error.kind,
                    message: body.error.message,
                });
            }
            // `ping`, and events newer than this proxy.
            _ => {}
        }
        Ok(Progress::Continue)
    }

    fn model_index(&self, upstream: usize) -> Option<usize> {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == upstream)
            .and_then(|(_, model)| *model)
    }

    /// Opens the model's block for an upstream block; what its start already holds (text,
    /// a tool's input) follows as a delta.
    fn open(&mut self, upstream: usize, block: ContentBlock, out: &mut Vec<StreamEvent>) {
        let (kind, first) = match block {
            ContentBlock::Text(text) => (BlockKind::Text, Some(Delta::Text(text.text))),
            ContentBlock::Thinking(thinking) => (
                BlockKind::Thinking,
                Some(Delta::Thinking(thinking.thinking)),
            ),
            ContentBlock::ToolUse(call) => {
                let input = match &call.input {
                    Value::Object(map) if map.is_empty() => String::new(),
                    input => input.to_string(),
                };
                (
                    BlockKind::ToolCall {
                        id: call.id,
                        name: call.name,
                    },
                    Some(Delta::ToolArguments(input)),
                )
            }
            ContentBlock::RedactedThinking(redacted) => (
                BlockKind::RedactedThinking {
                    data: redacted.data,
                },
                None,
            ),
            _ => {
                self.blocks.push((upstream, None));
                return;
            }
        };
        let index = self.next_index;
        self.next_index += 1;
        self.blocks.push((upstream, Some(index)));
        out.push(StreamEvent::BlockStart { index, kind });
        if let Some(delta) = first.filter(|d| !delta_is_empty(d)) {
            out.push(StreamEvent::Delta { index, delta });
        }
    }
}

fn delta_is_empty(delta: &Delta) -> bool {
    match delta {
        Delta::Text(s) | Delta::ToolArguments(s) | Delta::Thinking(s) | Delta::Signature(s) => {
            s.is_empty()
        }
    }
}

/// The model's delta for Anthropic's; `None` for an empty fragment or a delta the model has
/// no kind for (`citations_delta`).
fn model_delta(delta: &Value) -> Option<Delta> {
    let field = |name: &str| delta.get(name).and_then(Value::as_str).map(str::to_owned);
    let delta = match delta.get("type").and_then(Value::as_str)? {
        "text_delta" => Delta::Text(field("text")?),
        "input_json_delta" => Delta::ToolArguments(field("partial_json")?),
        "thinking_delta" => Delta::Thinking(field("thinking")?),
        "signature_delta" => Delta::Signature(field("signature")?),
        _ => return None,
    };
    (!delta_is_empty(&delta)).then_some(delta)
}

/// The `type` member of an event's data (for framings that drop the `event:` line).
fn data_type(data: &str) -> String {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "type", default)]
        kind: String,
    }
    serde_json::from_str::<Typed>(data)
        .map(|t| t.kind)
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
