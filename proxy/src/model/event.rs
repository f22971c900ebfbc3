//! One typed vocabulary for stream events: each provider's stream decoder produces it, each
//! dialect's stream encoder writes it out as its own SSE.
//!
//! The shape follows Anthropic's (the richest of the three): content blocks are opened,
//! grow by deltas, and are closed, so thinking signatures and tool-call ids survive any hop.
//! Usage may arrive more than once; the last figure wins (never summed).

use super::answer::StopReason;
use crate::metering::Usage;

/// What kind of block a [`StreamEvent::BlockStart`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockKind {
    Text,
    /// A tool call; `id` is the client-visible id.
    ToolCall {
        id: String,
        name: String,
    },
    Thinking,
    /// Redacted thinking arrives whole.
    RedactedThinking {
        data: String,
    },
}

/// A piece of an open block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Text(String),
    /// A fragment of a tool call's JSON arguments.
    ToolArguments(String),
    Thinking(String),
    /// The thinking block's signature (Anthropic sends it as its own delta before the stop).
    Signature(String),
}

/// One event of an answer being streamed.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The answer begins. `id` is the upstream's answer id when it gave one.
    Start {
        id: Option<String>,
        created: Option<u64>,
    },
    /// A content block opens at `index` (indexes count from 0 in order of opening).
    BlockStart {
        index: usize,
        kind: BlockKind,
    },
    Delta {
        index: usize,
        delta: Delta,
    },
    BlockStop {
        index: usize,
    },
    /// Generation stopped (usage may still follow).
    Stop {
        reason: StopReason,
    },
    /// Token counts so far; the last one reported is the answer's usage.
    Usage(Usage),
}
