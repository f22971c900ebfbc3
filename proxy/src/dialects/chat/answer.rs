//! The OpenAI Chat Completions answer on the wire: the complete `chat.completion` body, the
//! stream's `chat.completion.chunk`, and their `usage` object. Unknown members are carried.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::request::FunctionCall;
use crate::metering::Usage;

/// A complete answer (`object: chat.completion`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub id: String,
    #[serde(default = "completion_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatUsage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn completion_object() -> String {
    "chat.completion".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: AssistantMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The assistant's message of a complete answer.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AssistantMessage {
    #[serde(default = "assistant_role")]
    pub role: String,
    /// Always written (`null` when the answer is only tool calls), as OpenAI does.
    #[serde(default)]
    pub content: Option<String>,
    /// The reasoning text some OpenAI-compatible servers return (vLLM, DeepSeek).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<AnswerToolCall>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn assistant_role() -> String {
    "assistant".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AnswerToolCall {
    pub id: String,
    #[serde(rename = "type", default = "super::request::function_kind")]
    pub kind: String,
    pub function: FunctionCall,
}

/// One stream event (`object: chat.completion.chunk`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ChatChunk {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatUsage>,
    /// An error the upstream reported inside the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: ChunkDelta,
    /// Written as `null` until the last chunk, as OpenAI does.
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ChunkDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A fragment of a streamed tool call: the first names it, the rest add arguments.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ToolCallDelta {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct FunctionDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// OpenAI's `usage`: `prompt_tokens` includes cached reads (and, as this proxy reports
/// Bedrock's, cache writes) counted again in `prompt_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ChatUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ChatUsage {
    /// The wire form of the proxy's figures (cache details only when there are some).
    pub fn from_usage(usage: &Usage) -> Self {
        let details = (usage.cached_tokens > 0 || usage.cache_write_tokens > 0).then(|| {
            PromptTokensDetails {
                cached_tokens: usage.cached_tokens,
                cache_write_tokens: usage.cache_write_tokens,
                extra: Map::new(),
            }
        });
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.prompt_tokens + usage.completion_tokens,
            prompt_tokens_details: details,
            extra: Map::new(),
        }
    }

    /// The proxy's figures: cached and written tokens are subsets of the prompt's.
    pub fn to_usage(&self) -> Usage {
        let details = self.prompt_tokens_details.as_ref();
        let cached_tokens = details
            .map_or(0, |d| d.cached_tokens)
            .min(self.prompt_tokens);
        let cache_write_tokens = details
            .map_or(0, |d| d.cache_write_tokens)
            .min(self.prompt_tokens - cached_tokens);
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cached_tokens,
            cache_write_tokens,
            cache_write_1h_tokens: 0,
            estimated: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_with_cache_details_round_trips() {
        let usage = Usage {
            prompt_tokens: 100,
            completion_tokens: 7,
            cached_tokens: 64,
            cache_write_tokens: 10,
            cache_write_1h_tokens: 0,
            estimated: false,
        };
        let wire = ChatUsage::from_usage(&usage);
        let text = serde_json::to_string(&wire).unwrap();
        assert_eq!(
            text,
            r#"{"prompt_tokens":100,"completion_tokens":7,"total_tokens":107,"prompt_tokens_details":{"cached_tokens":64,"cache_write_tokens":10}}"#
        );
        let back: ChatUsage = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_usage(), usage);
        let plain = ChatUsage::from_usage(&Usage {
            cached_tokens: 0,
            cache_write_tokens: 0,
            ..usage
        });
        assert!(plain.prompt_tokens_details.is_none());
    }

    #[test]
    fn cached_tokens_are_capped_by_the_prompt() {
        let wire: ChatUsage = serde_json::from_str(
            r#"{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9,"audio_tokens":0}}"#,
        )
        .unwrap();
        assert_eq!(wire.to_usage().cached_tokens, 5);
        assert_eq!(wire.prompt_tokens_details.unwrap().extra["audio_tokens"], 0);
    }
}
