//! Azure's stream quirks on top of the OpenAI stream translation: the first chunk may be
//! `choices: []` with an empty id, model and created that carries only
//! `prompt_filter_results`; ids may differ between chunks. The filter results move to the next
//! chunk the client gets, and every chunk carries the same id and created.

use serde_json::{Map, Value};

use super::super::openai::{self, invalid_event};
use super::super::StreamStep;
use crate::metering::Usage;

/// Translation state of one Azure stream.
#[derive(Debug)]
pub struct StreamState {
    inner: openai::StreamState,
    /// The first non-empty id and created seen, stamped on every later chunk.
    id: Option<Value>,
    created: Option<Value>,
    /// `prompt_filter_results` of a dropped filter-only chunk, for the next emitted one.
    pending_prompt_filter: Option<Value>,
}

impl StreamState {
    pub fn new(client_model: &str, client_wants_usage: bool) -> Self {
        Self {
            inner: openai::StreamState::new(client_model, client_wants_usage),
            id: None,
            created: None,
            pending_prompt_filter: None,
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.inner.usage
    }

    pub fn content_deltas(&self) -> u64 {
        self.inner.content_deltas
    }

    pub fn on_event(&mut self, data: &str) -> StreamStep {
        if data.trim() == "[DONE]" {
            return self.inner.on_event(data);
        }
        let mut chunk: Map<String, Value> = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => return StreamStep::Failed(invalid_event(&e)),
        };
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return self.inner.on_chunk(chunk);
        }
        let no_choices = chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        let has_usage = chunk.get("usage").is_some_and(|u| !u.is_null());
        if no_choices && !has_usage {
            // Some clients index choices[0]; keep the filter results for the next chunk.
            if let Some(results) = chunk.remove("prompt_filter_results") {
                self.pending_prompt_filter = Some(results);
            }
            return StreamStep::Skip;
        }
        self.restamp(&mut chunk, "id", |s| &mut s.id);
        self.restamp(&mut chunk, "created", |s| &mut s.created);
        if !no_choices {
            if let Some(results) = self.pending_prompt_filter.take() {
                chunk.insert("prompt_filter_results".to_owned(), results);
            }
        }
        self.inner.on_chunk(chunk)
    }

    /// The first meaningful value of `key` wins; empty ones (`""`, `0`) are replaced by it.
    fn restamp(
        &mut self,
        chunk: &mut Map<String, Value>,
        key: &str,
        slot: fn(&mut Self) -> &mut Option<Value>,
    ) {
        let meaningful = |v: &Value| match v {
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_u64() != Some(0),
            _ => false,
        };
        let seen = slot(self);
        match (seen.as_ref(), chunk.get(key)) {
            (Some(first), _) => {
                chunk.insert(key.to_owned(), first.clone());
            }
            (None, Some(value)) if meaningful(value) => *seen = Some(value.clone()),
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::emitted;
    use serde_json::json;

    #[test]
    fn filter_only_first_chunk_is_dropped_and_its_results_ride_on_the_next() {
        let mut state = StreamState::new("alias", false);
        let first = json!({"id": "", "object": "", "created": 0, "model": "", "choices": [],
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]});
        assert_eq!(state.on_event(&first.to_string()), StreamStep::Skip);
        let second = json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "gpt-4o", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]});
        let out = emitted(state.on_event(&second.to_string()));
        assert_eq!(out["model"], "alias");
        assert_eq!(out["prompt_filter_results"][0]["prompt_index"], 0);
        let third = json!({"id": "other", "created": 1700000001, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null,
                "content_filter_results": {"hate": {"filtered": false, "severity": "safe"}}}]});
        let out = emitted(state.on_event(&third.to_string()));
        assert_eq!(
            (out["id"].as_str(), out["created"].as_u64()),
            (Some("chatcmpl-9"), Some(1700000000))
        );
        assert!(out.get("prompt_filter_results").is_none());
        assert_eq!(
            out["choices"][0]["content_filter_results"]["hate"]["filtered"],
            false
        );
        assert_eq!(state.content_deltas(), 1);
    }

    #[test]
    fn content_filter_finish_and_usage_pass_through() {
        let mut state = StreamState::new("alias", true);
        let stop = json!({"id": "c", "created": 1, "model": "x",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]});
        assert_eq!(
            emitted(state.on_event(&stop.to_string()))["choices"][0]["finish_reason"],
            "content_filter"
        );
        let usage = json!({"id": "", "created": 0, "model": "x", "choices": [],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}});
        let out = emitted(state.on_event(&usage.to_string()));
        assert_eq!(
            (out["id"].as_str(), out["usage"]["total_tokens"].as_u64()),
            (Some("c"), Some(3))
        );
        assert_eq!(state.usage().unwrap().prompt_tokens, 2);
        assert_eq!(state.on_event("[DONE]"), StreamStep::Done);
    }

    #[test]
    fn usage_chunk_is_dropped_when_the_client_did_not_ask() {
        let mut state = StreamState::new("alias", false);
        let usage = json!({"id": "c", "choices": [],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}});
        assert_eq!(state.on_event(&usage.to_string()), StreamStep::Skip);
        assert!(matches!(state.on_event("{oops"), StreamStep::Failed(_)));
    }
}
