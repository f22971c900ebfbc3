//! The Response object (the non-streaming body, the `response` inside lifecycle events, what
//! `GET /v1/responses/{id}` returns) and its `usage`, with every member the SDKs and strict
//! typed clients read written out, null or not.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::wire::{InputItem, ReasoningConfig, TextConfig, Tool, ToolChoice};
use crate::metering::Usage;

/// A Response object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseObject {
    pub id: String,
    pub object: String,
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete`, `failed`.
    pub status: String,
    pub completed_at: Option<u64>,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub model: String,
    pub output: Vec<InputItem>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: ReasoningConfig,
    pub store: bool,
    pub temperature: Option<f64>,
    pub text: TextConfig,
    pub tool_choice: ToolChoice,
    pub tools: Vec<Tool>,
    pub top_p: Option<f64>,
    pub truncation: String,
    pub user: Option<String>,
    pub metadata: Map<String, Value>,
    pub usage: Option<ResponseUsage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `error` of a failed response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

/// `incomplete_details`: why the answer stopped short (`max_output_tokens`, `content_filter`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IncompleteDetails {
    pub reason: String,
}

/// `usage`: `input_tokens` include cached and cache-written ones, `output_tokens` include
/// reasoning ones.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResponseUsage {
    pub input_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    #[serde(default)]
    pub output_tokens_details: OutputTokensDetails,
    #[serde(default)]
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl ResponseUsage {
    pub fn from_usage(usage: &Usage) -> Self {
        Self {
            input_tokens: usage.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: usage.cached_tokens,
                cache_write_tokens: usage.cache_write_tokens,
            },
            output_tokens: usage.completion_tokens,
            // The model's usage has no reasoning split; no upstream translated here reports one.
            output_tokens_details: OutputTokensDetails::default(),
            total_tokens: usage.prompt_tokens + usage.completion_tokens,
        }
    }

    /// The proxy's usage of a Responses-format upstream's figures.
    pub fn to_usage(&self) -> Usage {
        let cached = self
            .input_tokens_details
            .cached_tokens
            .min(self.input_tokens);
        Usage {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            cached_tokens: cached,
            cache_write_tokens: self
                .input_tokens_details
                .cache_write_tokens
                .min(self.input_tokens - cached),
            cache_write_1h_tokens: 0,
            estimated: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_converts_both_ways() {
        let usage = Usage {
            prompt_tokens: 100,
            completion_tokens: 20,
            cached_tokens: 60,
            cache_write_tokens: 10,
            cache_write_1h_tokens: 0,
            estimated: false,
        };
        let wire = ResponseUsage::from_usage(&usage);
        assert_eq!(wire.total_tokens, 120);
        assert_eq!(wire.input_tokens_details.cached_tokens, 60);
        assert_eq!(wire.to_usage(), usage);
        let json = serde_json::to_value(wire).unwrap();
        assert_eq!(json["output_tokens_details"]["reasoning_tokens"], 0);
    }
}
