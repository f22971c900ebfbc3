//! What a Chat client sees: a [`model::Answer`] as a `chat.completion` body, and
//! [`StreamEvent`]s as `chat.completion.chunk` SSE ending in `[DONE]`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Map;

use super::answer::{
    AnswerToolCall, AssistantMessage, ChatChunk, ChatCompletion, ChatUsage, Choice, ChunkChoice,
    ChunkDelta, FunctionDelta, ToolCallDelta,
};
use super::request::FunctionCall;
use crate::api::error_body::{ErrorBody, ErrorType};
use crate::api::sse;
use crate::metering::Usage;
use crate::model::{Answer, Block, BlockKind, Delta, StopReason, StreamEvent};

/// The `[DONE]` event that ends every Chat stream.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh completion id, for answers whose upstream gave none.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", crate::ids::random_uuid().simple())
}

/// `finish_reason` for a stop reason.
pub fn finish_reason(stop: &StopReason) -> String {
    match stop {
        StopReason::EndTurn | StopReason::StopSequence { .. } | StopReason::PauseTurn => "stop",
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter | StopReason::Refusal => "content_filter",
        StopReason::Other { reason } => reason.as_str(),
    }
    .to_owned()
}

/// The `chat.completion` body of `answer`, reporting `client_model`.
pub fn encode_answer(answer: &Answer, client_model: &str) -> Result<Vec<u8>, serde_json::Error> {
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls = Vec::new();
    for block in &answer.content {
        match block {
            Block::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(t),
            Block::Thinking { text: t, .. } => {
                reasoning.get_or_insert_with(String::new).push_str(t)
            }
            Block::ToolCall {
                id,
                name,
                arguments,
                ..
            } => calls.push(AnswerToolCall {
                id: id.clone(),
                kind: "function".to_owned(),
                function: FunctionCall {
                    name: name.clone(),
                    arguments: arguments.clone(),
                },
            }),
            _ => {}
        }
    }
    let body = ChatCompletion {
        id: answer.id.clone().unwrap_or_else(completion_id),
        object: "chat.completion".to_owned(),
        created: answer.created.unwrap_or_else(now_secs),
        model: client_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".to_owned(),
                content: text,
                reasoning_content: reasoning,
                tool_calls: (!calls.is_empty()).then_some(calls),
                extra: Map::new(),
            },
            finish_reason: Some(finish_reason(&answer.stop)),
            extra: Map::new(),
        }],
        usage: answer.usage.as_ref().map(ChatUsage::from_usage),
        extra: Map::new(),
    };
    serde_json::to_vec(&body)
}

/// Writes one answer's stream events as Chat chunks.
#[derive(Debug)]
pub struct ChunkEncoder {
    client_model: String,
    client_wants_usage: bool,
    id: String,
    created: u64,
    /// The role chunk goes out with the first content, so a failure before any content can
    /// still fail over (nothing was sent yet).
    role_sent: bool,
    /// Block index → tool-call index of the tool blocks opened so far.
    tools: Vec<(usize, usize)>,
    usage: Option<Usage>,
}

impl ChunkEncoder {
    pub fn new(client_model: &str, client_wants_usage: bool) -> Self {
        Self {
            client_model: client_model.to_owned(),
            client_wants_usage,
            id: completion_id(),
            created: now_secs(),
            role_sent: false,
            tools: Vec::new(),
            usage: None,
        }
    }

    /// Appends the SSE of `event` (possibly nothing) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { id, created } => {
                if let Some(id) = id.as_ref().filter(|id| !id.is_empty()) {
                    self.id.clone_from(id);
                }
                if let Some(created) = created.filter(|c| *c > 0) {
                    self.created = created;
                }
            }
            StreamEvent::BlockStart {
                index,
                kind: BlockKind::ToolCall { id, name },
            } => {
                let tool = self.tools.len();
                self.tools.push((*index, tool));
                self.delta(
                    ChunkDelta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index: tool,
                            id: Some(id.clone()),
                            kind: Some("function".to_owned()),
                            function: Some(FunctionDelta {
                                name: Some(name.clone()),
                                arguments: Some(String::new()),
                            }),
                        }]),
                        ..ChunkDelta::default()
                    },
                    None,
                    out,
                );
            }
            StreamEvent::BlockStart { .. } | StreamEvent::BlockStop { .. } => {}
            StreamEvent::Delta { index, delta } => {
                let delta = match delta {
                    Delta::Text(text) => ChunkDelta {
                        content: Some(text.clone()),
                        ..ChunkDelta::default()
                    },
                    Delta::Thinking(text) => ChunkDelta {
                        reasoning_content: Some(text.clone()),
                        ..ChunkDelta::default()
                    },
                    Delta::ToolArguments(arguments) => {
                        let Some(&(_, tool)) = self.tools.iter().find(|(i, _)| i == index) else {
                            return;
                        };
                        ChunkDelta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: tool,
                                function: Some(FunctionDelta {
                                    name: None,
                                    arguments: Some(arguments.clone()),
                                }),
                                ..ToolCallDelta::default()
                            }]),
                            ..ChunkDelta::default()
                        }
                    }
                    // Chat has nowhere to put a signature.
                    Delta::Signature(_) => return,
                };
                self.delta(delta, None, out);
            }
            StreamEvent::Stop { reason } => {
                self.delta(ChunkDelta::default(), Some(finish_reason(reason)), out);
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    /// The end of a complete stream: the usage chunk when the client asked, then `[DONE]`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let (true, Some(usage)) = (self.client_wants_usage, self.usage.take()) {
            let chunk = ChatChunk {
                usage: Some(ChatUsage::from_usage(&usage)),
                ..self.chunk(Vec::new())
            };
            write_chunk(&chunk, out);
        }
        out.extend_from_slice(DONE_EVENT);
    }

    /// The error event of a stream that failed after its first byte.
    pub fn error_event(code: &str, message: String) -> Bytes {
        Bytes::from(ErrorBody::new(ErrorType::ServerError, code, message).to_sse_event())
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.client_model.clone(),
            choices,
            ..ChatChunk::default()
        }
    }

    fn delta(&mut self, delta: ChunkDelta, finish: Option<String>, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            let role = ChunkDelta {
                role: Some("assistant".to_owned()),
                content: Some(String::new()),
                ..ChunkDelta::default()
            };
            write_chunk(&self.chunk(vec![choice(role, None)]), out);
        }
        write_chunk(&self.chunk(vec![choice(delta, finish)]), out);
    }
}

fn choice(delta: ChunkDelta, finish_reason: Option<String>) -> ChunkChoice {
    ChunkChoice {
        index: 0,
        delta,
        finish_reason,
        extra: Map::new(),
    }
}

fn write_chunk(chunk: &ChatChunk, out: &mut Vec<u8>) {
    // Serialising these plain structs cannot fail.
    if let Ok(json) = serde_json::to_vec(chunk) {
        out.extend_from_slice(&sse::frame(&json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn chunks(bytes: &[u8]) -> Vec<Value> {
        std::str::from_utf8(bytes)
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty() && *e != "data: [DONE]")
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn answer_with_text_tool_call_and_cached_usage() {
        let answer = Answer {
            id: Some("msg_1".to_owned()),
            content: vec![
                Block::Thinking {
                    text: "hmm".to_owned(),
                    signature: Some("sig".to_owned()),
                },
                Block::text("Let me check."),
                Block::ToolCall {
                    id: "toolu_01A".to_owned(),
                    name: "weather".to_owned(),
                    arguments: "{\"city\":\"Paris\"}".to_owned(),
                    cache: None,
                },
            ],
            stop: StopReason::ToolUse,
            usage: Some(Usage {
                prompt_tokens: 20,
                completion_tokens: 5,
                cached_tokens: 8,
                cache_write_tokens: 0,
                cache_write_1h_tokens: 0,
                estimated: false,
            }),
            created: Some(1_700_000_000),
        };
        let body: Value =
            serde_json::from_slice(&encode_answer(&answer, "alias").unwrap()).unwrap();
        assert_eq!(body["id"], "msg_1");
        assert_eq!(body["model"], "alias");
        assert_eq!(body["created"], 1_700_000_000);
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Let me check.");
        assert_eq!(choice["message"]["reasoning_content"], "hmm");
        assert_eq!(choice["message"]["tool_calls"][0]["id"], "toolu_01A");
        assert_eq!(
            choice["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(body["usage"]["total_tokens"], 25);
        assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 8);
    }

    #[test]
    fn tool_only_answer_has_null_content() {
        let answer = Answer {
            id: None,
            content: vec![],
            stop: StopReason::MaxTokens,
            usage: None,
            created: None,
        };
        let body: Value = serde_json::from_slice(&encode_answer(&answer, "m").unwrap()).unwrap();
        assert!(body["choices"][0]["message"]["content"].is_null());
        assert_eq!(body["choices"][0]["finish_reason"], "length");
        assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(body.get("usage").is_none());
    }

    fn run(events: &[StreamEvent], wants_usage: bool) -> Vec<u8> {
        let mut encoder = ChunkEncoder::new("alias", wants_usage);
        let mut out = Vec::new();
        for event in events {
            encoder.encode(event, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    fn tool_stream() -> Vec<StreamEvent> {
        let usage = Usage {
            prompt_tokens: 9,
            completion_tokens: 3,
            cached_tokens: 4,
            cache_write_tokens: 0,
            cache_write_1h_tokens: 0,
            estimated: false,
        };
        vec![
            StreamEvent::Start {
                id: Some("up-1".to_owned()),
                created: Some(42),
            },
            StreamEvent::BlockStart {
                index: 0,
                kind: BlockKind::Text,
            },
            StreamEvent::Delta {
                index: 0,
                delta: Delta::Text("Hi".to_owned()),
            },
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::BlockStart {
                index: 1,
                kind: BlockKind::ToolCall {
                    id: "call_9".to_owned(),
                    name: "f".to_owned(),
                },
            },
            StreamEvent::Delta {
                index: 1,
                delta: Delta::ToolArguments("{\"a\":".to_owned()),
            },
            StreamEvent::Delta {
                index: 1,
                delta: Delta::ToolArguments("1}".to_owned()),
            },
            StreamEvent::BlockStop { index: 1 },
            StreamEvent::Stop {
                reason: StopReason::ToolUse,
            },
            StreamEvent::Usage(usage),
        ]
    }

    #[test]
    fn stream_writes_role_text_tool_deltas_finish_and_done() {
        let out = run(&tool_stream(), false);
        assert!(out.ends_with(DONE_EVENT));
        let chunks = chunks(&out);
        assert_eq!(chunks.len(), 6, "{chunks:#?}");
        assert!(chunks
            .iter()
            .all(|c| c["id"] == "up-1" && c["model"] == "alias" && c["created"] == 42));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
        let call = &chunks[2]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(
            (call["index"].as_u64(), call["id"].as_str()),
            (Some(0), Some("call_9"))
        );
        assert_eq!(call["function"]["name"], "f");
        assert_eq!(
            chunks[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":"
        );
        assert_eq!(
            chunks[4]["choices"][0]["delta"]["tool_calls"][0]["index"],
            0
        );
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
        assert!(chunks[1]["choices"][0]["finish_reason"].is_null());
    }

    #[test]
    fn usage_chunk_only_when_the_client_asked() {
        let with = chunks(&run(&tool_stream(), true));
        let last = with.last().unwrap();
        assert_eq!(last["choices"].as_array().unwrap().len(), 0);
        assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
        assert_eq!(last["usage"]["total_tokens"], 12);
        let without = chunks(&run(&tool_stream(), false));
        assert!(without.iter().all(|c| c.get("usage").is_none()));
    }

    #[test]
    fn nothing_is_written_before_the_first_content() {
        let mut encoder = ChunkEncoder::new("alias", false);
        let mut out = Vec::new();
        encoder.encode(
            &StreamEvent::Start {
                id: None,
                created: None,
            },
            &mut out,
        );
        encoder.encode(
            &StreamEvent::BlockStart {
                index: 0,
                kind: BlockKind::Text,
            },
            &mut out,
        );
        assert!(out.is_empty());
    }
}
