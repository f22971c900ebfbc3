//! A complete (non-streaming) answer in the proxy's own terms.

use serde::{Deserialize, Serialize};

use super::content::Block;
use crate::metering::Usage;

/// Why generation stopped. Each dialect's encoder maps it to its own vocabulary
/// (Chat `finish_reason`, Anthropic `stop_reason`, Responses `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    /// A stop sequence matched; which one, when the upstream says.
    StopSequence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sequence: Option<String>,
    },
    ToolUse,
    /// A safety system cut the answer (content filter, guardrail).
    ContentFilter,
    /// The model declined (Anthropic `refusal`).
    Refusal,
    /// The conversation no longer fits the model's context window.
    ContextWindowExceeded,
    /// Anthropic's `pause_turn` (a server tool paused a long turn).
    PauseTurn,
    /// A reason this proxy does not know, kept verbatim.
    Other {
        reason: String,
    },
}

/// A complete answer: what the model produced, why it stopped, what it cost in tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The upstream's id for the answer, if it gave one; encoders mint their own otherwise.
    pub id: Option<String>,
    pub content: Vec<Block>,
    pub stop: StopReason,
    /// `None` when the upstream reported no usage (the proxy then estimates).
    pub usage: Option<Usage>,
    /// Unix seconds the upstream stamped the answer with, if any.
    pub created: Option<u64>,
}
