//! ConverseStream events → OpenAI `chat.completion.chunk` SSE (wire-formats §3.6), one event
//! at a time with explicit state.
//!
//! The role chunk is held back until the first content event, so an exception that arrives
//! before any content (throttling right after `messageStart`) reaches the relay before a byte
//! went to the client and can still fail over.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::errors::{exception_code, exception_is_capacity};
use super::eventstream::Frame;
use super::response::{finish_reason, usage as translate_usage};
use crate::api::sse;
use crate::metering::Usage;
use crate::providers::{StreamStep, UpstreamStreamError};

#[derive(Debug)]
pub struct StreamState {
    id: String,
    created: u64,
    client_model: String,
    client_wants_usage: bool,
    json_tool: Option<String>,
    role_sent: bool,
    /// contentBlockIndex → the OpenAI tool-call index, or `None` for the json_schema tool.
    tool_blocks: HashMap<u64, Option<usize>>,
    next_tool: usize,
    finish: Option<&'static str>,
    pub usage: Option<Usage>,
    pub content_deltas: u64,
}

impl StreamState {
    pub fn new(
        client_model: &str,
        client_wants_usage: bool,
        json_tool: Option<String>,
        id: String,
        created: u64,
    ) -> Self {
        Self {
            id,
            created,
            client_model: client_model.to_owned(),
            client_wants_usage,
            json_tool,
            role_sent: false,
            tool_blocks: HashMap::new(),
            next_tool: 0,
            finish: None,
            usage: None,
            content_deltas: 0,
        }
    }

    pub fn on_frame(&mut self, frame: &Frame) -> StreamStep {
        match frame.message_type.as_str() {
            "exception" => return StreamStep::Failed(self.exception(frame)),
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
        let payload: Value = match serde_json::from_slice(&frame.payload) {
            Ok(value) => value,
            Err(e) => return invalid(format!("Bedrock sent an invalid stream event: {e}")),
        };
        let mut out = Vec::new();
        match frame.event_type.as_str() {
            "contentBlockStart" => self.block_start(&payload, &mut out),
            "contentBlockDelta" => self.block_delta(&payload, &mut out),
            "messageStop" => {
                let reason = payload["stopReason"].as_str().unwrap_or("end_turn");
                let finish = finish_reason(reason, self.json_tool.is_some());
                self.finish = Some(finish);
                self.role_chunk(&mut out);
                out.push(self.chunk(json!({}), Some(finish)));
            }
            "metadata" => return self.metadata(&payload),
            // messageStart is deferred to the first content; contentBlockStop is bookkeeping.
            _ => {}
        }
        self.emit(out)
    }

    fn exception(&self, frame: &Frame) -> UpstreamStreamError {
        let message = serde_json::from_slice::<Value>(&frame.payload)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| frame.event_type.clone());
        UpstreamStreamError {
            message: format!("Bedrock {}: {message}", frame.event_type),
            code: Some(exception_code(&frame.event_type).to_owned()),
            capacity: exception_is_capacity(&frame.event_type),
        }
    }

    fn block_start(&mut self, payload: &Value, out: &mut Vec<Value>) {
        let Some(tool) = payload["start"].get("toolUse") else {
            return;
        };
        let index = payload["contentBlockIndex"].as_u64().unwrap_or(0);
        let name = tool["name"].as_str().unwrap_or_default();
        if self.json_tool.as_deref() == Some(name) {
            self.tool_blocks.insert(index, None);
            return;
        }
        let k = self.next_tool;
        self.next_tool += 1;
        self.tool_blocks.insert(index, Some(k));
        self.role_chunk(out);
        self.content_deltas += 1;
        out.push(self.chunk(
            json!({"tool_calls": [{"index": k, "id": tool["toolUseId"], "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            None,
        ));
    }

    fn block_delta(&mut self, payload: &Value, out: &mut Vec<Value>) {
        let index = payload["contentBlockIndex"].as_u64().unwrap_or(0);
        let delta = &payload["delta"];
        if let Some(text) = delta.get("text").and_then(Value::as_str) {
            self.text(text, out);
        } else if let Some(fragment) = delta["toolUse"].get("input").and_then(Value::as_str) {
            match self.tool_blocks.get(&index).copied() {
                Some(None) => self.text(fragment, out),
                Some(Some(k)) => {
                    self.role_chunk(out);
                    self.content_deltas += 1;
                    out.push(self.chunk(
                        json!({"tool_calls": [{"index": k, "function": {"arguments": fragment}}]}),
                        None,
                    ));
                }
                None => {}
            }
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<Value>) {
        if text.is_empty() {
            return;
        }
        self.role_chunk(out);
        self.content_deltas += 1;
        out.push(self.chunk(json!({"content": text}), None));
    }

    fn metadata(&mut self, payload: &Value) -> StreamStep {
        let mut out = Vec::new();
        if self.finish.is_none() {
            // No messageStop: end the message properly anyway rather than hang.
            self.role_chunk(&mut out);
            out.push(self.chunk(json!({}), Some("stop")));
        }
        if let Some((openai, metered)) = payload.get("usage").and_then(translate_usage) {
            self.usage = Some(metered);
            if self.client_wants_usage {
                let mut chunk = self.chunk(json!({}), None);
                chunk["choices"] = json!([]);
                chunk["usage"] = openai;
                out.push(chunk);
            }
        }
        match self.emit(out) {
            StreamStep::Emit(bytes) => StreamStep::Last(bytes),
            StreamStep::Skip => StreamStep::Done,
            other => other,
        }
    }

    fn role_chunk(&mut self, out: &mut Vec<Value>) {
        if !self.role_sent {
            self.role_sent = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.client_model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.client_wants_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    fn emit(&self, chunks: Vec<Value>) -> StreamStep {
        if chunks.is_empty() {
            return StreamStep::Skip;
        }
        let mut bytes = Vec::new();
        for chunk in chunks {
            match serde_json::to_vec(&chunk) {
                Ok(json) => bytes.extend(sse::frame(&json)),
                Err(e) => return invalid(e.to_string()),
            }
        }
        StreamStep::Emit(Bytes::from(bytes))
    }
}

fn invalid(message: String) -> StreamStep {
    StreamStep::Failed(UpstreamStreamError {
        message,
        code: Some("upstream_error".to_owned()),
        capacity: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: &str, payload: Value) -> Frame {
        Frame {
            message_type: "event".into(),
            event_type: event.into(),
            error_message: None,
            payload: Bytes::from(payload.to_string()),
        }
    }

    fn chunks(step: StreamStep) -> Vec<Value> {
        let bytes = match step {
            StreamStep::Emit(b) | StreamStep::Last(b) => b,
            other => panic!("expected chunks, got {other:?}"),
        };
        std::str::from_utf8(&bytes)
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect()
    }

    fn state(usage: bool, json_tool: Option<&str>) -> StreamState {
        StreamState::new(
            "alias",
            usage,
            json_tool.map(str::to_owned),
            "chatcmpl-x".into(),
            5,
        )
    }

    #[test]
    fn text_stream_with_usage() {
        let mut s = state(true, None);
        assert_eq!(
            s.on_frame(&frame("messageStart", json!({"role": "assistant"}))),
            StreamStep::Skip
        );
        let first = chunks(s.on_frame(&frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}, "p": "abc"}),
        )));
        assert_eq!(
            first[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(first[1]["choices"][0]["delta"], json!({"content": "Hi"}));
        assert_eq!(first[1]["model"], "alias");
        assert!(first[1]["usage"].is_null() && first[1].get("usage").is_some());
        assert_eq!(
            s.on_frame(&frame("contentBlockStop", json!({"contentBlockIndex": 0}))),
            StreamStep::Skip
        );
        let stop = chunks(s.on_frame(&frame("messageStop", json!({"stopReason": "end_turn"}))));
        assert_eq!(stop[0]["choices"][0]["finish_reason"], "stop");
        let last = s.on_frame(&frame("metadata", json!({"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {"latencyMs": 1}})));
        assert!(matches!(last, StreamStep::Last(_)));
        let usage = chunks(last);
        assert_eq!(usage[0]["choices"], json!([]));
        assert_eq!(usage[0]["usage"]["total_tokens"], 5);
        assert_eq!(s.usage.unwrap().prompt_tokens, 3);
        assert_eq!(s.content_deltas, 1);
    }

    #[test]
    fn tool_calls_are_indexed_per_call_not_per_block() {
        let mut s = state(false, None);
        s.on_frame(&frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Let me check."}}),
        ));
        let start = chunks(s.on_frame(&frame(
            "contentBlockStart",
            json!({"contentBlockIndex": 1,
            "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}),
        )));
        assert_eq!(
            start[0]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
        );
        assert!(start[0].get("usage").is_none());
        let args = chunks(s.on_frame(&frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        )));
        assert_eq!(
            args[0]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "function": {"arguments": "{\"city\":"}})
        );
        let stop = chunks(s.on_frame(&frame("messageStop", json!({"stopReason": "tool_use"}))));
        assert_eq!(stop[0]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            s.on_frame(&frame(
                "metadata",
                json!({"usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}})
            )),
            StreamStep::Done
        );
    }

    #[test]
    fn json_schema_tool_streams_as_content() {
        let mut s = state(false, Some("answer"));
        assert_eq!(
            s.on_frame(&frame(
                "contentBlockStart",
                json!({"contentBlockIndex": 0,
            "start": {"toolUse": {"toolUseId": "t", "name": "answer"}}})
            )),
            StreamStep::Skip
        );
        let text = chunks(s.on_frame(&frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
        )));
        assert_eq!(text[1]["choices"][0]["delta"]["content"], "{\"a\":1}");
        let stop = chunks(s.on_frame(&frame("messageStop", json!({"stopReason": "tool_use"}))));
        assert_eq!(stop[0]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn exceptions_fail_with_their_class() {
        let mut s = state(false, None);
        let throttled = Frame {
            message_type: "exception".into(),
            event_type: "throttlingException".into(),
            error_message: None,
            payload: Bytes::from_static(br#"{"message":"Too many requests"}"#),
        };
        match s.on_frame(&throttled) {
            StreamStep::Failed(e) => {
                assert!(e.capacity);
                assert!(e.message.contains("Too many requests"));
                assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
            }
            other => panic!("{other:?}"),
        }
        let validation = Frame {
            event_type: "validationException".into(),
            ..throttled
        };
        assert!(matches!(
            s.on_frame(&validation),
            StreamStep::Failed(UpstreamStreamError {
                capacity: false,
                ..
            })
        ));
    }

    #[test]
    fn decoded_vector_a_translates_to_a_content_chunk() {
        let bytes = crate::providers::bedrock::eventstream::tests::bytes_of(
            crate::providers::bedrock::eventstream::tests::VECTOR_A,
        );
        let frames = super::super::eventstream::FrameDecoder::new()
            .push(&bytes)
            .unwrap();
        let out = chunks(state(false, None).on_frame(&frames[0]));
        assert_eq!(out[1]["choices"][0]["delta"]["content"], "Hi");
    }
}
