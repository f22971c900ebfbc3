//! What a Messages client sees: a [`model::Answer`](Answer) as the Message body, and
//! [`StreamEvent`]s as Anthropic SSE (`event: <type>` + `data: <json>`): `message_start`,
//! `ping`, `content_block_start` / `_delta` / `_stop`, `message_delta` (stop reason and the
//! final usage), `message_stop`; `event: error` when a stream fails after its first byte.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::answer::{MessagesAnswer, MessagesUsage};
use super::encode::tool_input;
use super::error::ErrorBody;
use super::wire::{ContentBlock, RedactedThinkingBlock, ThinkingBlock, ToolUseBlock};
use crate::metering::Usage;
use crate::model::{Answer, Block, BlockKind, Delta, Dialect, StopReason, StreamEvent};

/// A fresh message id, for answers whose upstream gave none.
pub fn message_id() -> String {
    format!("msg_{}", crate::ids::random_uuid().simple())
}

/// `stop_reason` (and `stop_sequence`) for a stop reason. A content filter has no Anthropic
/// name; `refusal` is the nearest.
pub fn stop_reason(stop: &StopReason) -> (String, Option<String>) {
    let reason = match stop {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence { sequence } => {
            return ("stop_sequence".to_owned(), sequence.clone())
        }
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter | StopReason::Refusal => "refusal",
        StopReason::ContextWindowExceeded => "model_context_window_exceeded",
        StopReason::PauseTurn => "pause_turn",
        StopReason::Other { reason } => reason.as_str(),
    };
    (reason.to_owned(), None)
}

/// One answer block as the client reads it; `None` for what an answer cannot hold (another
/// dialect's part, request-only blocks).
fn answer_block(block: &Block) -> Option<ContentBlock> {
    Some(match block {
        Block::Text { text, .. } => ContentBlock::text(text.clone()),
        Block::Thinking { text, signature } => ContentBlock::Thinking(ThinkingBlock {
            thinking: text.clone(),
            // The SDK's ThinkingBlock requires a signature; an unsigned one is empty.
            signature: Some(signature.clone().unwrap_or_default()),
            extra: Map::new(),
        }),
        Block::RedactedThinking { data } => ContentBlock::RedactedThinking(RedactedThinkingBlock {
            data: data.clone(),
            extra: Map::new(),
        }),
        Block::ToolCall {
            id,
            name,
            arguments,
            ..
        } => ContentBlock::ToolUse(ToolUseBlock {
            id: id.clone(),
            name: name.clone(),
            input: tool_input(arguments),
            cache_control: None,
            extra: Map::new(),
        }),
        Block::Opaque {
            dialect: Dialect::Messages,
            part,
        } => ContentBlock::Other(part.clone()),
        Block::Opaque { .. }
        | Block::Image { .. }
        | Block::Document { .. }
        | Block::ToolResult { .. } => return None,
    })
}

/// The Message body of `answer`, reporting `client_model`.
pub fn encode_answer(answer: &Answer, client_model: &str) -> Result<Vec<u8>, serde_json::Error> {
    let (reason, sequence) = stop_reason(&answer.stop);
    let body = MessagesAnswer {
        id: answer.id.clone().unwrap_or_else(message_id),
        kind: "message".to_owned(),
        role: "assistant".to_owned(),
        model: client_model.to_owned(),
        content: answer.content.iter().filter_map(answer_block).collect(),
        stop_reason: Some(reason),
        stop_sequence: sequence,
        usage: answer
            .usage
            .as_ref()
            .map_or_else(zero_usage, MessagesUsage::from_usage),
        extra: Map::new(),
    };
    serde_json::to_vec(&body)
}

/// The SDK reads `input_tokens` and `output_tokens` as integers: zero when unknown.
fn zero_usage() -> MessagesUsage {
    MessagesUsage {
        input_tokens: Some(0),
        output_tokens: Some(0),
        ..MessagesUsage::default()
    }
}

/// The events this encoder writes, each as `event: <type>` + `data: <json with that type>`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: &'a MessagesAnswer,
    },
    Ping,
    ContentBlockStart {
        index: usize,
        content_block: &'a ContentBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: DeltaBody<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: &'a MessagesUsage,
    },
    MessageStop,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaBody<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

/// `message_delta.delta`: both members written, null or not (the SDK copies them as given).
#[derive(Serialize)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::Ping => "ping",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }
}

/// Frames one event as Anthropic SSE.
fn write_event(name: &str, data: &impl Serialize, out: &mut Vec<u8>) {
    // Serialising these plain structs cannot fail.
    if let Ok(json) = serde_json::to_vec(data) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(&json);
        out.extend_from_slice(b"\n\n");
    }
}

fn write(event: &Event<'_>, out: &mut Vec<u8>) {
    write_event(event.name(), event, out);
}

/// A block the client has seen opened: the model's index, the client's, still open or not.
#[derive(Debug)]
struct Opened {
    model: usize,
    client: usize,
    open: bool,
}

/// Writes one answer's stream events as Anthropic SSE. The client's block indexes count from
/// 0 in order of opening whatever the model's were. `message_start` goes out with the first
/// content event, so a failure before any content can still fail over (nothing was sent);
/// `message_delta` waits for [`EventEncoder::finish`] so it carries the final usage, whether
/// the upstream reported it before or after the stop. Every `finish` of a typed stream ends
/// with `message_stop`, which the SDK needs for its final message.
#[derive(Debug)]
pub struct EventEncoder {
    client_model: String,
    id: String,
    /// Some typed event arrived (a pass-through stream brings none).
    typed: bool,
    started: bool,
    finished: bool,
    blocks: Vec<Opened>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

impl EventEncoder {
    pub fn new(client_model: &str) -> Self {
        Self {
            client_model: client_model.to_owned(),
            id: message_id(),
            typed: false,
            started: false,
            finished: false,
            blocks: Vec::new(),
            stop: None,
            usage: None,
        }
    }

    /// Appends the SSE of `event` (possibly nothing) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.typed = true;
        match event {
            StreamEvent::Start { id, .. } => {
                if let Some(id) = id.as_ref().filter(|id| !id.is_empty() && !self.started) {
                    self.id.clone_from(id);
                }
            }
            StreamEvent::BlockStart { index, kind } => {
                self.start(out);
                self.open(*index, kind, out);
            }
            StreamEvent::Delta { index, delta } => {
                self.start(out);
                self.delta(*index, delta, out);
            }
            StreamEvent::BlockStop { index } => {
                if let Some(block) = self.blocks.iter_mut().find(|b| b.model == *index && b.open) {
                    block.open = false;
                    write(
                        &Event::ContentBlockStop {
                            index: block.client,
                        },
                        out,
                    );
                }
            }
            StreamEvent::Stop { reason } => {
                self.start(out);
                self.stop = Some(reason.clone());
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    /// The end of a complete stream: `message_start` if no content came, open blocks
    /// closed, `message_delta` with the stop reason and the final usage, `message_stop`.
    /// Writes nothing when no typed event arrived (a pass-through stream relays the
    /// upstream's own `message_stop`).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.typed || self.finished {
            return;
        }
        self.start(out);
        self.finished = true;
        for block in self.blocks.iter_mut().filter(|b| b.open) {
            block.open = false;
            write(
                &Event::ContentBlockStop {
                    index: block.client,
                },
                out,
            );
        }
        let (reason, sequence) = stop_reason(self.stop.as_ref().unwrap_or(&StopReason::EndTurn));
        let usage = match &self.usage {
            // `message_delta.usage` has no TTL split.
            Some(usage) => MessagesUsage {
                cache_creation: None,
                ..MessagesUsage::from_usage(usage)
            },
            None => MessagesUsage {
                output_tokens: Some(0),
                ..MessagesUsage::default()
            },
        };
        let delta = MessageDeltaBody {
            stop_reason: Some(reason),
            stop_sequence: sequence,
        };
        write(
            &Event::MessageDelta {
                delta,
                usage: &usage,
            },
            out,
        );
        write(&Event::MessageStop, out);
    }

    /// The `event: error` that ends a stream which failed after its first byte.
    pub fn error_event(error_type: &str, message: String) -> Bytes {
        let mut out = Vec::new();
        write_event("error", &ErrorBody::new(error_type, message), &mut out);
        Bytes::from(out)
    }

    /// `message_start` (an empty message with what usage is known) and a `ping`, once.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let usage = match &self.usage {
            Some(usage) => MessagesUsage::from_usage(usage),
            None => zero_usage(),
        };
        let message = MessagesAnswer {
            id: self.id.clone(),
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            model: self.client_model.clone(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage,
            extra: Map::new(),
        };
        write(&Event::MessageStart { message: &message }, out);
        write(&Event::Ping, out);
    }

    /// Opens a block with its full start payload.
    fn open(&mut self, index: usize, kind: &BlockKind, out: &mut Vec<u8>) {
        let block = match kind {
            BlockKind::Text => ContentBlock::text(""),
            BlockKind::Thinking => ContentBlock::Thinking(ThinkingBlock {
                thinking: String::new(),
                signature: Some(String::new()),
                extra: Map::new(),
            }),
            BlockKind::ToolCall { id, name } => ContentBlock::ToolUse(ToolUseBlock {
                id: id.clone(),
                name: name.clone(),
                input: Value::Object(Map::new()),
                cache_control: None,
                extra: Map::new(),
            }),
            BlockKind::RedactedThinking { data } => {
                ContentBlock::RedactedThinking(RedactedThinkingBlock {
                    data: data.clone(),
                    extra: Map::new(),
                })
            }
        };
        let client = self.blocks.len();
        self.blocks.push(Opened {
            model: index,
            client,
            open: true,
        });
        write(
            &Event::ContentBlockStart {
                index: client,
                content_block: &block,
            },
            out,
        );
    }

    fn delta(&mut self, index: usize, delta: &Delta, out: &mut Vec<u8>) {
        let known = self.blocks.iter().find(|b| b.model == index && b.open);
        let client = match known {
            Some(block) => block.client,
            // A delta for a block never opened: open the block it implies. A tool call's
            // arguments or a signature cannot be placed without theirs.
            None => {
                let kind = match delta {
                    Delta::Text(_) => BlockKind::Text,
                    Delta::Thinking(_) => BlockKind::Thinking,
                    Delta::ToolArguments(_) | Delta::Signature(_) => return,
                };
                self.open(index, &kind, out);
                self.blocks.len() - 1
            }
        };
        let delta = match delta {
            Delta::Text(text) => DeltaBody::Text { text },
            Delta::ToolArguments(partial_json) => DeltaBody::InputJson { partial_json },
            Delta::Thinking(thinking) => DeltaBody::Thinking { thinking },
            Delta::Signature(signature) => DeltaBody::Signature { signature },
        };
        write(
            &Event::ContentBlockDelta {
                index: client,
                delta,
            },
            out,
        );
    }
}

#[cfg(test)]
#[path = "respond_tests.rs"]
pub(crate) mod tests;
