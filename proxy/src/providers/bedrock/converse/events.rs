//! ConverseStream frames → the model's [`StreamEvent`]s (docs/wire-formats.md §3.4–§3.6),
//! one frame at a time with explicit state.
//!
//! Converse sends no `contentBlockStart` for text and reasoning blocks, so a block opens at
//! its first delta; blocks are keyed by `contentBlockIndex`, never by arrival order. The
//! `Start` event is held back until the first content, so an exception arriving before any
//! content (throttling right after `messageStart`) reaches the relay before a byte went to
//! the client and can still fail over.

use crate::model::{BlockKind, Delta, StopReason, StreamEvent};
use crate::providers::{StreamStep, UpstreamStreamError};

use super::super::errors::stream_exception;
use super::super::eventstream::Frame;
use super::answer::{convert_stop_reason, convert_usage, stop_sequence};
use super::ids;
use super::wire::{BlockDelta, BlockStart, BlockStop, MessageStop, Metadata};

/// What an open block is, on the Converse side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    ToolCall,
    /// The tool injected for `response_format: json_schema`: its input streams as text.
    JsonTool,
    Thinking,
    RedactedThinking,
}

#[derive(Debug, Clone, Copy)]
struct OpenBlock {
    /// Converse's `contentBlockIndex`.
    upstream: u64,
    /// The model's block index.
    index: usize,
    kind: Open,
}

/// The translation state of one ConverseStream.
#[derive(Debug, Default)]
pub struct ConverseStream {
    json_tool: Option<String>,
    /// The `contentBlockIndex` of the injected tool's block: it opens (as text) at its first
    /// input, like any text block.
    json_block: Option<u64>,
    started: bool,
    open: Vec<OpenBlock>,
    next_index: usize,
    stopped: bool,
    finished: bool,
}

impl ConverseStream {
    /// `json_tool` is the tool injected for `response_format: json_schema`.
    pub fn new(json_tool: Option<String>) -> Self {
        Self {
            json_tool,
            ..Self::default()
        }
    }

    /// One frame → typed events ([`StreamStep::Skip`] when none), the last events at the
    /// closing `metadata`, or the failure an exception frame reports.
    pub fn on_frame(&mut self, frame: &Frame) -> StreamStep {
        match frame.message_type.as_str() {
            "exception" => return StreamStep::Failed(stream_exception(frame)),
            "error" => {
                return StreamStep::Failed(UpstreamStreamError {
                    message: frame
                        .error_message
                        .clone()
                        .unwrap_or_else(|| format!("Bedrock stream error {}", frame.event_type)),
                    code: Some("upstream_error".to_owned()),
                    capacity: false,
                })
            }
            _ => {}
        }
        if self.finished {
            return StreamStep::Skip;
        }
        let mut out = Vec::new();
        let result = match frame.event_type.as_str() {
            "contentBlockStart" => parse(frame).map(|p| self.block_start(p, &mut out)),
            "contentBlockDelta" => parse(frame).map(|p| self.block_delta(p, &mut out)),
            "contentBlockStop" => parse(frame).map(|p: BlockStop| {
                self.close(p.content_block_index, &mut out);
            }),
            "messageStop" => parse(frame).map(|p| self.message_stop(p, &mut out)),
            "metadata" => parse(frame).map(|p| self.metadata(p, &mut out)),
            // messageStart is deferred to the first content; unknown events carry nothing.
            _ => Ok(()),
        };
        match result {
            Err(failure) => StreamStep::Failed(failure),
            Ok(()) if self.finished => StreamStep::LastEvents(out),
            Ok(()) if out.is_empty() => StreamStep::Skip,
            Ok(()) => StreamStep::Events(out),
        }
    }

    fn block_start(&mut self, payload: BlockStart, out: &mut Vec<StreamEvent>) {
        let Some(tool) = payload.start.tool_use else {
            return;
        };
        let upstream = payload.content_block_index;
        if self.json_tool.as_deref() == Some(tool.name.as_str()) {
            self.json_block = Some(upstream);
            return;
        }
        let kind = BlockKind::ToolCall {
            id: ids::original(&tool.tool_use_id).into_owned(),
            name: tool.name,
        };
        self.open_block(upstream, Open::ToolCall, kind, out);
    }

    fn block_delta(&mut self, payload: BlockDelta, out: &mut Vec<StreamEvent>) {
        let upstream = payload.content_block_index;
        let delta = payload.delta;
        if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
            let index = self.ensure_open(upstream, Open::Text, || BlockKind::Text, out);
            out.push(StreamEvent::Delta {
                index,
                delta: Delta::Text(text),
            });
        } else if let Some(tool) = delta.tool_use.filter(|t| !t.input.is_empty()) {
            if self.json_block == Some(upstream) {
                let index = self.ensure_open(upstream, Open::JsonTool, || BlockKind::Text, out);
                out.push(StreamEvent::Delta {
                    index,
                    delta: Delta::Text(tool.input),
                });
                return;
            }
            // Arguments only extend a call opened by its contentBlockStart (id and name).
            if let Some(block) = self.find(upstream).filter(|b| b.kind == Open::ToolCall) {
                out.push(StreamEvent::Delta {
                    index: block.index,
                    delta: Delta::ToolArguments(tool.input),
                });
            }
        } else if let Some(reasoning) = delta.reasoning_content {
            if let Some(data) = reasoning.redacted_content {
                // Redacted thinking arrives whole, as the block's start.
                if self.find(upstream).is_none() {
                    let kind = BlockKind::RedactedThinking { data };
                    self.open_block(upstream, Open::RedactedThinking, kind, out);
                }
                return;
            }
            let pieces = [
                reasoning
                    .text
                    .filter(|t| !t.is_empty())
                    .map(Delta::Thinking),
                reasoning.signature.map(Delta::Signature),
            ];
            for delta in pieces.into_iter().flatten() {
                let index = self.ensure_open(upstream, Open::Thinking, || BlockKind::Thinking, out);
                out.push(StreamEvent::Delta { index, delta });
            }
        }
    }

    fn message_stop(&mut self, payload: MessageStop, out: &mut Vec<StreamEvent>) {
        let reason = payload.stop_reason.as_deref().unwrap_or("end_turn");
        let sequence = stop_sequence(payload.additional_model_response_fields.as_ref());
        let reason = convert_stop_reason(reason, self.json_tool.is_some(), sequence);
        self.stop(reason, out);
    }

    /// The last event: usage, after `messageStop`.
    fn metadata(&mut self, payload: Metadata, out: &mut Vec<StreamEvent>) {
        if !self.stopped {
            // No messageStop: end the message properly anyway rather than hang.
            self.stop(StopReason::EndTurn, out);
        }
        if let Some(usage) = &payload.usage {
            out.push(StreamEvent::Usage(convert_usage(usage)));
        }
        self.finished = true;
    }

    fn stop(&mut self, reason: StopReason, out: &mut Vec<StreamEvent>) {
        self.start(out);
        for block in std::mem::take(&mut self.open) {
            out.push(StreamEvent::BlockStop { index: block.index });
        }
        out.push(StreamEvent::Stop { reason });
        self.stopped = true;
    }

    /// Emits the held-back `Start` before the first content.
    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: None,
                created: None,
            });
        }
    }

    fn find(&self, upstream: u64) -> Option<OpenBlock> {
        self.open.iter().copied().find(|b| b.upstream == upstream)
    }

    /// The model index of the open block `upstream` of `kind`, opening it first when needed
    /// (a block of another kind under the same index is closed first: Converse never does
    /// that, but the client must still see well-formed blocks).
    fn ensure_open(
        &mut self,
        upstream: u64,
        kind: Open,
        start: impl FnOnce() -> BlockKind,
        out: &mut Vec<StreamEvent>,
    ) -> usize {
        match self.find(upstream) {
            Some(block) if block.kind == kind => block.index,
            _ => self.open_block(upstream, kind, start(), out),
        }
    }

    fn open_block(
        &mut self,
        upstream: u64,
        kind: Open,
        start: BlockKind,
        out: &mut Vec<StreamEvent>,
    ) -> usize {
        self.start(out);
        // A block of another kind under the same index ends first.
        self.close(upstream, out);
        let index = self.next_index;
        self.next_index += 1;
        self.open.push(OpenBlock {
            upstream,
            index,
            kind,
        });
        out.push(StreamEvent::BlockStart { index, kind: start });
        index
    }

    fn close(&mut self, upstream: u64, out: &mut Vec<StreamEvent>) {
        if let Some(position) = self.open.iter().position(|b| b.upstream == upstream) {
            let block = self.open.remove(position);
            out.push(StreamEvent::BlockStop { index: block.index });
        }
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(frame: &'a Frame) -> Result<T, UpstreamStreamError> {
    serde_json::from_slice(&frame.payload).map_err(|e| UpstreamStreamError {
        message: format!(
            "Bedrock sent an invalid {} stream event: {e}",
            frame.event_type
        ),
        code: Some("upstream_error".to_owned()),
        capacity: false,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::{json, Value};

    use super::*;
    use crate::metering::Usage;

    fn frame(event: &str, payload: Value) -> Frame {
        Frame {
            message_type: "event".into(),
            event_type: event.into(),
            error_message: None,
            payload: Bytes::from(payload.to_string()),
        }
    }

    fn exception(kind: &str, payload: &'static [u8]) -> Frame {
        Frame {
            message_type: "exception".into(),
            event_type: kind.into(),
            error_message: None,
            payload: Bytes::from_static(payload),
        }
    }

    fn events(step: StreamStep) -> Vec<StreamEvent> {
        match step {
            StreamStep::Events(events) => events,
            StreamStep::Skip => Vec::new(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    fn text_delta(index: u64, text: &str) -> Frame {
        frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": index, "delta": {"text": text}, "p": "abcdef"}),
        )
    }

    fn start() -> StreamEvent {
        StreamEvent::Start {
            id: None,
            created: None,
        }
    }

    fn delta(index: usize, delta: Delta) -> StreamEvent {
        StreamEvent::Delta { index, delta }
    }

    #[test]
    fn text_stream_with_usage() {
        let mut s = ConverseStream::new(None);
        assert_eq!(
            s.on_frame(&frame("messageStart", json!({"role": "assistant"}))),
            StreamStep::Skip
        );
        assert_eq!(
            events(s.on_frame(&text_delta(0, "Hi"))),
            vec![
                start(),
                StreamEvent::BlockStart {
                    index: 0,
                    kind: BlockKind::Text
                },
                delta(0, Delta::Text("Hi".into())),
            ]
        );
        assert_eq!(events(s.on_frame(&text_delta(0, ""))), vec![]);
        assert_eq!(
            events(s.on_frame(&frame("contentBlockStop", json!({"contentBlockIndex": 0})))),
            vec![StreamEvent::BlockStop { index: 0 }]
        );
        assert_eq!(
            events(s.on_frame(&frame("messageStop", json!({"stopReason": "end_turn"})))),
            vec![StreamEvent::Stop {
                reason: StopReason::EndTurn
            }]
        );
        let last = s.on_frame(&frame(
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 15,
                "cacheReadInputTokens": 4, "cacheWriteInputTokens": 6}, "metrics": {"latencyMs": 1}}),
        ));
        assert_eq!(
            last,
            StreamStep::LastEvents(vec![StreamEvent::Usage(Usage {
                prompt_tokens: 13,
                completion_tokens: 2,
                cached_tokens: 4,
                cache_write_tokens: 6,
                cache_write_1h_tokens: 0,
                estimated: false,
            })])
        );
    }

    #[test]
    fn tool_calls_open_at_their_start_and_blocks_close_at_message_stop() {
        let mut s = ConverseStream::new(None);
        s.on_frame(&text_delta(0, "Let me check."));
        assert_eq!(
            events(s.on_frame(&frame(
                "contentBlockStart",
                json!({"contentBlockIndex": 1,
                "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}),
            ))),
            vec![StreamEvent::BlockStart {
                index: 1,
                kind: BlockKind::ToolCall {
                    id: "tooluse_1".into(),
                    name: "get_weather".into()
                }
            }]
        );
        assert_eq!(
            events(s.on_frame(&frame(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
            ))),
            vec![delta(1, Delta::ToolArguments("{\"city\":".into()))]
        );
        // Arguments for a block that never started carry no id: nothing to extend.
        assert_eq!(
            events(s.on_frame(&frame(
                "contentBlockDelta",
                json!({"contentBlockIndex": 7, "delta": {"toolUse": {"input": "{}"}}}),
            ))),
            vec![]
        );
        assert_eq!(
            events(s.on_frame(&frame("messageStop", json!({"stopReason": "tool_use"})))),
            vec![
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::BlockStop { index: 1 },
                StreamEvent::Stop {
                    reason: StopReason::ToolUse
                },
            ]
        );
        assert_eq!(
            s.on_frame(&frame("metadata", json!({"metrics": {"latencyMs": 1}}))),
            StreamStep::LastEvents(vec![])
        );
    }

    #[test]
    fn json_schema_tool_streams_as_text() {
        let mut s = ConverseStream::new(Some("answer".into()));
        assert_eq!(
            events(s.on_frame(&frame(
                "contentBlockStart",
                json!({"contentBlockIndex": 0,
                "start": {"toolUse": {"toolUseId": "t", "name": "answer"}}})
            ))),
            vec![]
        );
        assert_eq!(
            events(s.on_frame(&frame(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
            ))),
            vec![
                start(),
                StreamEvent::BlockStart {
                    index: 0,
                    kind: BlockKind::Text
                },
                delta(0, Delta::Text("{\"a\":1}".into())),
            ]
        );
        let stop = events(s.on_frame(&frame("messageStop", json!({"stopReason": "tool_use"}))));
        assert_eq!(
            stop.last(),
            Some(&StreamEvent::Stop {
                reason: StopReason::EndTurn
            })
        );
    }

    #[test]
    fn reasoning_deltas_become_thinking_with_its_signature() {
        let mut s = ConverseStream::new(None);
        let reasoning = |index: u64, body: Value| {
            frame(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"reasoningContent": body}}),
            )
        };
        let mut out = events(s.on_frame(&reasoning(0, json!({"text": "let me "}))));
        out.extend(events(s.on_frame(&reasoning(0, json!({"text": "see"})))));
        out.extend(events(
            s.on_frame(&reasoning(0, json!({"signature": "EqQB"}))),
        ));
        out.extend(events(s.on_frame(&frame(
            "contentBlockStop",
            json!({"contentBlockIndex": 0}),
        ))));
        out.extend(events(
            s.on_frame(&reasoning(1, json!({"redactedContent": "b3BhcXVl"}))),
        ));
        out.extend(events(s.on_frame(&text_delta(2, "answer"))));
        assert_eq!(
            out,
            vec![
                start(),
                StreamEvent::BlockStart {
                    index: 0,
                    kind: BlockKind::Thinking
                },
                delta(0, Delta::Thinking("let me ".into())),
                delta(0, Delta::Thinking("see".into())),
                delta(0, Delta::Signature("EqQB".into())),
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::BlockStart {
                    index: 1,
                    kind: BlockKind::RedactedThinking {
                        data: "b3BhcXVl".into()
                    }
                },
                StreamEvent::BlockStart {
                    index: 2,
                    kind: BlockKind::Text
                },
                delta(2, Delta::Text("answer".into())),
            ]
        );
    }

    #[test]
    fn metadata_without_message_stop_still_ends_the_message() {
        let mut s = ConverseStream::new(None);
        s.on_frame(&text_delta(0, "x"));
        assert_eq!(
            s.on_frame(&frame("metadata", json!({}))),
            StreamStep::LastEvents(vec![
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::Stop {
                    reason: StopReason::EndTurn
                },
            ])
        );
    }

    #[test]
    fn stop_sequences_and_unknown_reasons() {
        let mut s = ConverseStream::new(None);
        let out = events(s.on_frame(&frame(
            "messageStop",
            json!({"stopReason": "stop_sequence",
                "additionalModelResponseFields": {"stop_sequence": "END"}}),
        )));
        assert_eq!(
            out,
            vec![
                start(),
                StreamEvent::Stop {
                    reason: StopReason::StopSequence {
                        sequence: Some("END".into())
                    }
                },
            ]
        );
        let mut s = ConverseStream::new(None);
        let out = events(s.on_frame(&frame(
            "messageStop",
            json!({"stopReason": "malformed_tool_use"}),
        )));
        assert_eq!(
            out[1],
            StreamEvent::Stop {
                reason: StopReason::EndTurn
            }
        );
    }

    #[test]
    fn exceptions_fail_with_their_class() {
        let mut s = ConverseStream::new(None);
        s.on_frame(&frame("messageStart", json!({"role": "assistant"})));
        match s.on_frame(&exception(
            "throttlingException",
            br#"{"message":"Too many requests"}"#,
        )) {
            StreamStep::Failed(e) => {
                assert!(e.capacity);
                assert!(e.message.contains("Too many requests"));
                assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.on_frame(&exception("validationException", b"{}")),
            StreamStep::Failed(UpstreamStreamError {
                capacity: false,
                ..
            })
        ));
        let error = Frame {
            message_type: "error".into(),
            event_type: "InternalFailure".into(),
            error_message: Some("it broke".into()),
            payload: Bytes::new(),
        };
        match s.on_frame(&error) {
            StreamStep::Failed(e) => {
                assert_eq!(e.message, "it broke");
                assert!(!e.capacity);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unreadable_events_fail_the_stream() {
        let mut s = ConverseStream::new(None);
        let garbage = Frame {
            payload: Bytes::from_static(b"<html>"),
            ..text_delta(0, "x")
        };
        assert!(matches!(s.on_frame(&garbage), StreamStep::Failed(_)));
        // Unknown events are not errors.
        assert_eq!(
            s.on_frame(&frame("somethingNew", json!({}))),
            StreamStep::Skip
        );
    }

    #[test]
    fn decoded_vector_a_translates_to_a_text_delta() {
        let bytes = crate::providers::bedrock::eventstream::tests::bytes_of(
            crate::providers::bedrock::eventstream::tests::VECTOR_A,
        );
        let frames = super::super::super::eventstream::FrameDecoder::new()
            .push(&bytes)
            .unwrap();
        let out = events(ConverseStream::new(None).on_frame(&frames[0]));
        assert_eq!(out[2], delta(0, Delta::Text("Hi".into())));
    }
}
