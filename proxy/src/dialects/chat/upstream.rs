//! An OpenAI-format upstream's answer read into the proxy's model, for clients of another
//! dialect: the `chat.completion` body into an [`Answer`], each `chat.completion.chunk` into
//! [`StreamEvent`]s (blocks opened, grown and closed, tool-call ids kept exactly).

use super::answer::{ChatChunk, ChatCompletion};
use crate::model::{Answer, Block, BlockKind, Delta, StopReason, StreamEvent};

/// A `finish_reason` as a stop reason.
pub fn stop_reason(finish_reason: &str) -> StopReason {
    match finish_reason {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        other => StopReason::Other {
            reason: other.to_owned(),
        },
    }
}

/// Reads a complete answer (the first choice).
pub fn decode_answer(body: &[u8]) -> Result<Answer, serde_json::Error> {
    let completion: ChatCompletion = serde_json::from_slice(body)?;
    let mut content = Vec::new();
    let mut finish = None;
    if let Some(choice) = completion.choices.into_iter().next() {
        let message = choice.message;
        if let Some(text) = message.reasoning_content.filter(|t| !t.is_empty()) {
            content.push(Block::Thinking {
                text,
                signature: None,
            });
        }
        if let Some(text) = message.content.filter(|t| !t.is_empty()) {
            content.push(Block::text(text));
        }
        for call in message.tool_calls.into_iter().flatten() {
            content.push(call.function.into_block(call.id));
        }
        finish = choice.finish_reason;
    }
    Ok(Answer {
        id: Some(completion.id).filter(|id| !id.is_empty()),
        content,
        stop: finish.as_deref().map_or(StopReason::EndTurn, stop_reason),
        usage: completion.usage.map(|u| u.to_usage()),
        created: Some(completion.created).filter(|c| *c > 0),
    })
}

/// What kind of block is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its Chat tool index.
    Tool(usize),
}

/// Turns one stream's chunks into events, keeping which block is open.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    started: bool,
    open: Option<(usize, Open)>,
    next_index: usize,
    stopped: bool,
}

impl ChunkDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events of one chunk (the first choice only).
    pub fn decode(&mut self, chunk: ChatChunk, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: Some(chunk.id).filter(|id| !id.is_empty()),
                created: Some(chunk.created).filter(|c| *c > 0),
            });
        }
        if let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) {
            let delta = choice.delta;
            if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
                let index = self.ensure(Open::Thinking, None, out);
                out.push(StreamEvent::Delta {
                    index,
                    delta: Delta::Thinking(text),
                });
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                let index = self.ensure(Open::Text, None, out);
                out.push(StreamEvent::Delta {
                    index,
                    delta: Delta::Text(text),
                });
            }
            for call in delta.tool_calls.into_iter().flatten() {
                let function = call.function.unwrap_or_default();
                let start = call.id.map(|id| (id, function.name.unwrap_or_default()));
                let index = self.ensure(Open::Tool(call.index), start, out);
                if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
                    out.push(StreamEvent::Delta {
                        index,
                        delta: Delta::ToolArguments(arguments),
                    });
                }
            }
            if let Some(finish) = choice.finish_reason {
                self.close(out);
                if !self.stopped {
                    self.stopped = true;
                    out.push(StreamEvent::Stop {
                        reason: stop_reason(&finish),
                    });
                }
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(usage.to_usage()));
        }
    }

    /// The index of the open block of `kind`, opening it (and closing another) if needed.
    /// A tool call (by its Chat index) opens with the id and name of its first fragment.
    fn ensure(
        &mut self,
        kind: Open,
        tool_start: Option<(String, String)>,
        out: &mut Vec<StreamEvent>,
    ) -> usize {
        if let Some((index, open)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let block = match (kind, tool_start) {
            (Open::Text, _) => BlockKind::Text,
            (Open::Thinking, _) => BlockKind::Thinking,
            (Open::Tool(_), start) => {
                let (id, name) = start.unwrap_or_default();
                BlockKind::ToolCall { id, name }
            }
        };
        out.push(StreamEvent::BlockStart { index, kind: block });
        self.open = Some((index, kind));
        index
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::chat::respond::{encode_answer, ChunkEncoder};

    #[test]
    fn complete_answer_reads_text_calls_stop_and_cached_usage() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":7,"model":"gpt-x",
            "choices":[{"index":0,"message":{"role":"assistant","content":"ok","tool_calls":[
              {"id":"call_Ab1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},
              "finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,
              "prompt_tokens_details":{"cached_tokens":6}}}"#;
        let answer = decode_answer(body).unwrap();
        assert_eq!(answer.id.as_deref(), Some("chatcmpl-1"));
        assert_eq!(answer.stop, StopReason::ToolUse);
        assert_eq!(answer.content[0], Block::text("ok"));
        assert!(matches!(&answer.content[1], Block::ToolCall { id, .. } if id == "call_Ab1"));
        let usage = answer.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.cached_tokens), (10, 6));
        // And back: the client's body carries the same call id, text and usage.
        let again = decode_answer(&encode_answer(&answer, "alias").unwrap()).unwrap();
        assert_eq!(again, answer);
        assert!(decode_answer(b"<html>").is_err());
    }

    fn chunk(json: &str) -> ChatChunk {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn chunks_become_blocks_and_round_trip_through_the_encoder() {
        let input = [
            r#"{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            r#"{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"g","arguments":"[]"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"c1","created":5,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}}"#,
        ];
        let mut decoder = ChunkDecoder::new();
        let mut events = Vec::new();
        for text in input {
            decoder.decode(chunk(text), &mut events);
        }
        let kinds: Vec<String> = events.iter().map(|e| format!("{e:?}")).collect();
        assert!(
            matches!(&events[0], StreamEvent::Start { id: Some(id), created: Some(5) } if id == "c1"),
            "{kinds:#?}"
        );
        assert!(matches!(
            &events[1],
            StreamEvent::BlockStart {
                index: 0,
                kind: BlockKind::Text
            }
        ));
        assert!(
            matches!(&events[4], StreamEvent::BlockStart { index: 1, kind: BlockKind::ToolCall { id, name } } if id == "call_1" && name == "f"),
            "{kinds:#?}"
        );
        assert!(
            matches!(&events[7], StreamEvent::BlockStart { index: 2, kind: BlockKind::ToolCall { id, .. } } if id == "call_2"),
            "{kinds:#?}"
        );
        assert!(matches!(
            events[events.len() - 2],
            StreamEvent::Stop {
                reason: StopReason::ToolUse
            }
        ));
        assert!(matches!(events.last(), Some(StreamEvent::Usage(u)) if u.cached_tokens == 2));

        // Re-encoded for a Chat client, then decoded again: the same events.
        let mut encoder = ChunkEncoder::new("alias", true);
        let mut out = Vec::new();
        for event in &events {
            encoder.encode(event, &mut out);
        }
        encoder.finish(&mut out);
        let mut again = ChunkDecoder::new();
        let mut replayed = Vec::new();
        for event in std::str::from_utf8(&out).unwrap().split("\n\n") {
            let Some(data) = event.strip_prefix("data: ") else {
                continue;
            };
            if data != "[DONE]" {
                again.decode(chunk(data), &mut replayed);
            }
        }
        assert_eq!(replayed, events);
    }
}
