//! The Messages answer on the wire (the non-streaming body, and the `message` inside
//! `message_start`) and its `usage`, with the conversions between Anthropic's usage and the
//! proxy's [`Usage`]: Anthropic's `input_tokens` EXCLUDES cache reads and writes, the proxy's
//! `prompt_tokens` INCLUDES them (OpenAI's convention, `metering/usage.rs`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::wire::ContentBlock;
use crate::metering::Usage;

/// A complete answer: `{"id", "type": "message", "role": "assistant", "model", "content",
/// "stop_reason", "stop_sequence", "usage"}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MessagesAnswer {
    #[serde(default)]
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    #[serde(default = "assistant_role")]
    pub role: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// Null in `message_start`; written explicitly (the SDK copies it as given).
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: MessagesUsage,
    /// `stop_details`, `container`, … .
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn message_type() -> String {
    "message".to_owned()
}

fn assistant_role() -> String {
    "assistant".to_owned()
}

/// Anthropic's `usage` (answer, `message_start`, `message_delta`). Every count is optional:
/// `message_delta` usually carries only `output_tokens`, and a later figure overrides an
/// earlier one field by field ([`MessagesUsage::update`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct MessagesUsage {
    /// Uncached input tokens (cache reads and writes not included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// The cache writes split by TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
    /// Output tokens, thinking included; cumulative in a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// `service_tier`, `server_tool_use`, `inference_geo`, … .
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CacheCreation {
    #[serde(default)]
    pub ephemeral_5m_input_tokens: u64,
    #[serde(default)]
    pub ephemeral_1h_input_tokens: u64,
}

impl MessagesUsage {
    /// Takes every count `later` reports (Anthropic's stream sends the input figures in
    /// `message_start` and the cumulative output in `message_delta`; the last one wins, counts
    /// are never summed).
    pub fn update(&mut self, later: &MessagesUsage) {
        let take = |mine: &mut Option<u64>, theirs: Option<u64>| {
            if theirs.is_some() {
                *mine = theirs;
            }
        };
        take(&mut self.input_tokens, later.input_tokens);
        take(
            &mut self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        take(
            &mut self.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
        take(&mut self.output_tokens, later.output_tokens);
        if later.cache_creation.is_some() {
            self.cache_creation = later.cache_creation;
        }
        for (key, value) in &later.extra {
            self.extra.insert(key.clone(), value.clone());
        }
    }

    /// Anthropic's figures for the proxy's usage: cache reads and writes taken out of the
    /// input, the writes split by TTL.
    pub fn from_usage(usage: &Usage) -> Self {
        let write_1h = usage.cache_write_1h_tokens.min(usage.cache_write_tokens);
        MessagesUsage {
            input_tokens: Some(
                usage
                    .prompt_tokens
                    .saturating_sub(usage.cached_tokens)
                    .saturating_sub(usage.cache_write_tokens),
            ),
            cache_creation_input_tokens: Some(usage.cache_write_tokens),
            cache_read_input_tokens: Some(usage.cached_tokens),
            cache_creation: Some(CacheCreation {
                ephemeral_5m_input_tokens: usage.cache_write_tokens - write_1h,
                ephemeral_1h_input_tokens: write_1h,
            }),
            output_tokens: Some(usage.completion_tokens),
            extra: Map::new(),
        }
    }
}

/// The proxy's usage for Anthropic's figures: `prompt_tokens` = input + cache reads + cache
/// writes. The writes are `cache_creation_input_tokens`, else the sum of the TTL split.
/// Callable on its own by a byte relay reading `message_start.message.usage` and
/// `message_delta.usage` (merge them with [`MessagesUsage::update`] first).
pub fn usage_from_wire(wire: &MessagesUsage) -> Usage {
    let split = wire.cache_creation.unwrap_or_default();
    let written = wire
        .cache_creation_input_tokens
        .unwrap_or(split.ephemeral_5m_input_tokens + split.ephemeral_1h_input_tokens);
    let read = wire.cache_read_input_tokens.unwrap_or(0);
    Usage {
        prompt_tokens: wire.input_tokens.unwrap_or(0) + read + written,
        completion_tokens: wire.output_tokens.unwrap_or(0),
        cached_tokens: read,
        cache_write_tokens: written,
        cache_write_1h_tokens: split.ephemeral_1h_input_tokens.min(written),
        estimated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_answer_parses_and_round_trips() {
        let body = json!({"id": "msg_01XF", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4",
            "content": [{"type": "thinking", "thinking": "…", "signature": "EqQB"},
                {"type": "text", "text": "I'll check."},
                {"type": "tool_use", "id": "toolu_01NR", "name": "get_weather", "input": {"location": "Paris"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 377, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "output_tokens": 65, "service_tier": "standard"}});
        let answer: MessagesAnswer = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(answer.content.len(), 3);
        assert_eq!(serde_json::to_value(&answer).unwrap(), body);
    }

    #[test]
    fn usage_converts_both_ways_with_the_ttl_split() {
        let wire: MessagesUsage = serde_json::from_value(json!({"input_tokens": 10,
            "cache_creation_input_tokens": 300, "cache_read_input_tokens": 1000,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "output_tokens": 7}))
        .unwrap();
        let usage = usage_from_wire(&wire);
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 1310,
                completion_tokens: 7,
                cached_tokens: 1000,
                cache_write_tokens: 300,
                cache_write_1h_tokens: 200,
                estimated: false,
            }
        );
        let back = MessagesUsage::from_usage(&usage);
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&wire).unwrap()
        );
    }

    #[test]
    fn a_split_without_the_total_still_counts_the_writes() {
        let wire: MessagesUsage = serde_json::from_value(json!({"input_tokens": 5,
            "cache_creation": {"ephemeral_1h_input_tokens": 40}, "output_tokens": 1}))
        .unwrap();
        let usage = usage_from_wire(&wire);
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.cache_write_tokens,
                usage.cache_write_1h_tokens
            ),
            (45, 40, 40)
        );
    }

    #[test]
    fn stream_usage_merges_field_by_field_and_never_sums() {
        let mut usage: MessagesUsage = serde_json::from_value(json!({"input_tokens": 377,
            "cache_read_input_tokens": 20, "output_tokens": 1, "service_tier": "standard"}))
        .unwrap();
        usage.update(&serde_json::from_value(json!({"output_tokens": 30})).unwrap());
        usage.update(&serde_json::from_value(json!({"output_tokens": 65})).unwrap());
        let merged = usage_from_wire(&usage);
        assert_eq!(
            (
                merged.prompt_tokens,
                merged.cached_tokens,
                merged.completion_tokens
            ),
            (397, 20, 65)
        );
        assert_eq!(usage.extra["service_tier"], "standard");
    }
}
