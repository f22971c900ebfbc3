//! What a stream has delivered to its client so far, and the rules that say whether it can
//! be continued on another target (docs/streams.md).

use crate::model::{BlockKind, Delta, StreamEvent};

/// The client's view of a stream, built from the typed events written to it.
#[derive(Debug, Default, Clone)]
pub struct Delivered {
    /// Every text delta, in order: what the next target is given as the answer's start.
    text: String,
    /// The client's block index of a text block still open (the next target's text goes on
    /// in it).
    open_text: Option<usize>,
    /// One past the highest block index the client has seen.
    next_index: usize,
    tool_call: bool,
    thinking: bool,
    stopped: bool,
}

/// Why a broken stream is not continued: the `outcome` label of
/// `switchyard_stream_resumes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotResumed {
    /// A tool call was in progress or delivered: a replay would corrupt its arguments.
    ToolCall,
    /// A thinking block was delivered: its signature covers text no other target wrote.
    Thinking,
    /// The upstream had already stopped: the answer is whole, only its ending was lost.
    Stopped,
    /// The request's deadline has passed.
    Deadline,
    /// No other target could take the rest.
    NoTarget,
}

impl NotResumed {
    pub fn label(self) -> &'static str {
        match self {
            NotResumed::ToolCall => "tool_call",
            NotResumed::Thinking => "thinking",
            NotResumed::Stopped => "stopped",
            NotResumed::Deadline => "deadline",
            NotResumed::NoTarget => "no_target",
        }
    }
}

impl Delivered {
    /// Notes one event as written to the client.
    pub fn observe(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::BlockStart { index, kind } => {
                self.next_index = self.next_index.max(index + 1);
                match kind {
                    BlockKind::Text => self.open_text = Some(*index),
                    BlockKind::ToolCall { .. } => self.tool_call = true,
                    BlockKind::Thinking | BlockKind::RedactedThinking { .. } => {
                        self.thinking = true
                    }
                }
            }
            StreamEvent::Delta { index, delta } => {
                self.next_index = self.next_index.max(index + 1);
                match delta {
                    Delta::Text(text) => self.text.push_str(text),
                    Delta::ToolArguments(_) => self.tool_call = true,
                    Delta::Thinking(_) | Delta::Signature(_) => self.thinking = true,
                }
            }
            StreamEvent::BlockStop { index } => {
                if self.open_text == Some(*index) {
                    self.open_text = None;
                }
            }
            StreamEvent::Stop { .. } => self.stopped = true,
            StreamEvent::Start { .. } | StreamEvent::Usage(_) => {}
        }
    }

    /// Whether what was delivered may be continued elsewhere; the checks that need no target.
    pub fn resumable(&self) -> Result<(), NotResumed> {
        if self.tool_call {
            Err(NotResumed::ToolCall)
        } else if self.thinking {
            Err(NotResumed::Thinking)
        } else if self.stopped {
            Err(NotResumed::Stopped)
        } else {
            Ok(())
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn open_text(&self) -> Option<usize> {
        self.open_text
    }

    pub fn next_index(&self) -> usize {
        self.next_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StopReason;

    fn text_stream(parts: &[&str]) -> Delivered {
        let mut delivered = Delivered::default();
        delivered.observe(&StreamEvent::Start {
            id: Some("a".to_owned()),
            created: None,
        });
        delivered.observe(&StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::Text,
        });
        for part in parts {
            delivered.observe(&StreamEvent::Delta {
                index: 0,
                delta: Delta::Text((*part).to_owned()),
            });
        }
        delivered
    }

    #[test]
    fn text_in_progress_is_resumable_and_kept_in_order() {
        let delivered = text_stream(&["Hel", "lo ", "wor"]);
        assert_eq!(delivered.resumable(), Ok(()));
        assert_eq!(delivered.text(), "Hello wor");
        assert_eq!(delivered.open_text(), Some(0));
        assert_eq!(delivered.next_index(), 1);
    }

    #[test]
    fn a_stream_with_only_its_start_is_resumable_with_no_text() {
        let mut delivered = Delivered::default();
        delivered.observe(&StreamEvent::Start {
            id: None,
            created: None,
        });
        assert_eq!(delivered.resumable(), Ok(()));
        assert_eq!((delivered.text(), delivered.open_text()), ("", None));
    }

    #[test]
    fn a_tool_call_in_progress_or_done_is_never_resumed() {
        let mut delivered = text_stream(&["Let me look."]);
        delivered.observe(&StreamEvent::BlockStop { index: 0 });
        delivered.observe(&StreamEvent::BlockStart {
            index: 1,
            kind: BlockKind::ToolCall {
                id: "call_1".to_owned(),
                name: "lookup".to_owned(),
            },
        });
        assert_eq!(delivered.resumable(), Err(NotResumed::ToolCall));
        delivered.observe(&StreamEvent::Delta {
            index: 1,
            delta: Delta::ToolArguments("{\"q\":".to_owned()),
        });
        delivered.observe(&StreamEvent::BlockStop { index: 1 });
        delivered.observe(&StreamEvent::BlockStart {
            index: 2,
            kind: BlockKind::Text,
        });
        assert_eq!(
            delivered.resumable(),
            Err(NotResumed::ToolCall),
            "a finished tool call of this turn still forbids it"
        );
        assert_eq!(delivered.next_index(), 3);
    }

    #[test]
    fn arguments_without_a_block_start_still_count_as_a_tool_call() {
        let mut delivered = Delivered::default();
        delivered.observe(&StreamEvent::Delta {
            index: 0,
            delta: Delta::ToolArguments("{".to_owned()),
        });
        assert_eq!(delivered.resumable(), Err(NotResumed::ToolCall));
    }

    #[test]
    fn thinking_blocks_are_never_resumed() {
        for kind in [
            BlockKind::Thinking,
            BlockKind::RedactedThinking {
                data: "x".to_owned(),
            },
        ] {
            let mut delivered = Delivered::default();
            delivered.observe(&StreamEvent::BlockStart { index: 0, kind });
            delivered.observe(&StreamEvent::BlockStop { index: 0 });
            assert_eq!(delivered.resumable(), Err(NotResumed::Thinking));
        }
        let mut delivered = text_stream(&["a"]);
        delivered.observe(&StreamEvent::Delta {
            index: 0,
            delta: Delta::Signature("sig".to_owned()),
        });
        assert_eq!(delivered.resumable(), Err(NotResumed::Thinking));
    }

    #[test]
    fn a_stopped_answer_is_not_resumed_and_a_closed_text_block_is_not_reopened() {
        let mut delivered = text_stream(&["Done."]);
        delivered.observe(&StreamEvent::BlockStop { index: 0 });
        assert_eq!(delivered.open_text(), None);
        assert_eq!(delivered.resumable(), Ok(()));
        delivered.observe(&StreamEvent::Stop {
            reason: StopReason::EndTurn,
        });
        assert_eq!(delivered.resumable(), Err(NotResumed::Stopped));
    }
}
