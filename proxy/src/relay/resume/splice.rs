//! A resumed attempt's events, spliced onto what the client already has so it sees one
//! answer (docs/streams.md): no second start, the first text goes on in the open text block,
//! block indexes carry on from the client's, leading whitespace the client already has is not
//! repeated, and usage includes what the earlier attempts produced.

use super::delivered::Delivered;
use crate::metering::Usage;
use crate::model::{BlockKind, Delta, StreamEvent};

#[derive(Debug)]
pub struct Splice {
    /// The client's open text block, until the resumed attempt's first text block takes it.
    continue_in: Option<usize>,
    /// The resumed attempt's block indexes → the client's.
    indexes: Vec<(usize, usize)>,
    next_index: usize,
    /// The delivered text ended in whitespace, which prefill cannot carry: leading whitespace
    /// of the continuation is dropped until its first other character.
    trim_leading: bool,
    /// What the earlier attempts produced, added to every usage report.
    earlier: Usage,
}

impl Splice {
    pub fn new(delivered: &Delivered, earlier: Usage) -> Self {
        Self {
            continue_in: delivered.open_text(),
            indexes: Vec::new(),
            next_index: delivered.next_index(),
            trim_leading: delivered.text().ends_with(char::is_whitespace),
            earlier,
        }
    }

    /// The event the client gets for one of the resumed attempt's, if any.
    pub fn apply(&mut self, event: StreamEvent) -> Option<StreamEvent> {
        match event {
            StreamEvent::Start { .. } => None,
            StreamEvent::BlockStart { index, kind } => {
                if kind == BlockKind::Text {
                    if let Some(open) = self.continue_in.take() {
                        self.indexes.push((index, open));
                        return None;
                    }
                }
                let client = self.next_index;
                self.next_index += 1;
                self.indexes.push((index, client));
                Some(StreamEvent::BlockStart {
                    index: client,
                    kind,
                })
            }
            StreamEvent::Delta { index, delta } => {
                let delta = match delta {
                    Delta::Text(text) if self.trim_leading => {
                        let rest = text.trim_start();
                        if rest.is_empty() {
                            return None;
                        }
                        self.trim_leading = false;
                        Delta::Text(rest.to_owned())
                    }
                    Delta::Text(text) => Delta::Text(text),
                    other => {
                        self.trim_leading = false;
                        other
                    }
                };
                Some(StreamEvent::Delta {
                    index: self.client_index(index),
                    delta,
                })
            }
            StreamEvent::BlockStop { index } => Some(StreamEvent::BlockStop {
                index: self.client_index(index),
            }),
            StreamEvent::Stop { reason } => Some(StreamEvent::Stop { reason }),
            StreamEvent::Usage(usage) => Some(StreamEvent::Usage(usage.plus(&self.earlier))),
        }
    }

    /// The client's index of the resumed attempt's block `index`; a block never opened (a
    /// decoder that sends deltas first) is given the open text block or the next index.
    fn client_index(&mut self, index: usize) -> usize {
        if let Some((_, client)) = self.indexes.iter().find(|(own, _)| *own == index) {
            return *client;
        }
        let client = self.continue_in.take().unwrap_or_else(|| {
            self.next_index += 1;
            self.next_index - 1
        });
        self.indexes.push((index, client));
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StopReason;

    fn delivered(text: &str, closed: bool) -> Delivered {
        let mut delivered = Delivered::default();
        for event in [
            StreamEvent::Start {
                id: Some("first".to_owned()),
                created: None,
            },
            StreamEvent::BlockStart {
                index: 0,
                kind: BlockKind::Text,
            },
            StreamEvent::Delta {
                index: 0,
                delta: Delta::Text(text.to_owned()),
            },
        ] {
            delivered.observe(&event);
        }
        if closed {
            delivered.observe(&StreamEvent::BlockStop { index: 0 });
        }
        delivered
    }

    fn text(index: usize, text: &str) -> StreamEvent {
        StreamEvent::Delta {
            index,
            delta: Delta::Text(text.to_owned()),
        }
    }

    fn resumed_answer() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: Some("second".to_owned()),
                created: Some(9),
            },
            StreamEvent::BlockStart {
                index: 0,
                kind: BlockKind::Text,
            },
            text(0, " world"),
            text(0, "!"),
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::Stop {
                reason: StopReason::EndTurn,
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 20,
                completion_tokens: 2,
                ..Usage::default()
            }),
        ]
    }

    fn splice(splice: &mut Splice, events: Vec<StreamEvent>) -> Vec<StreamEvent> {
        events.into_iter().filter_map(|e| splice.apply(e)).collect()
    }

    #[test]
    fn the_continuation_goes_on_in_the_open_text_block_with_one_start_and_summed_usage() {
        let earlier = Usage {
            prompt_tokens: 15,
            completion_tokens: 3,
            ..Usage::default()
        };
        let mut s = Splice::new(&delivered("Hello", false), earlier);
        let out = splice(&mut s, resumed_answer());
        assert_eq!(
            out,
            vec![
                text(0, " world"),
                text(0, "!"),
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::Stop {
                    reason: StopReason::EndTurn
                },
                StreamEvent::Usage(Usage {
                    prompt_tokens: 35,
                    completion_tokens: 5,
                    ..Usage::default()
                }),
            ]
        );
    }

    #[test]
    fn whitespace_the_client_already_has_is_not_repeated() {
        let mut s = Splice::new(&delivered("Hello ", false), Usage::default());
        let out = splice(
            &mut s,
            vec![text(0, " "), text(0, "  world"), text(0, " again")],
        );
        assert_eq!(out, vec![text(0, "world"), text(0, " again")]);
    }

    #[test]
    fn after_a_closed_text_block_the_blocks_carry_on_from_the_clients_indexes() {
        let mut s = Splice::new(&delivered("Para one.", true), Usage::default());
        let out = splice(&mut s, resumed_answer());
        assert_eq!(
            out[..3],
            [
                StreamEvent::BlockStart {
                    index: 1,
                    kind: BlockKind::Text
                },
                text(1, " world"),
                text(1, "!"),
            ]
        );
        assert_eq!(out[3], StreamEvent::BlockStop { index: 1 });
    }

    #[test]
    fn a_tool_call_after_the_continued_text_gets_the_next_index() {
        let mut s = Splice::new(&delivered("Let me", false), Usage::default());
        let out = splice(
            &mut s,
            vec![
                StreamEvent::BlockStart {
                    index: 0,
                    kind: BlockKind::Text,
                },
                text(0, " check."),
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::BlockStart {
                    index: 1,
                    kind: BlockKind::ToolCall {
                        id: "c".to_owned(),
                        name: "f".to_owned(),
                    },
                },
                StreamEvent::Delta {
                    index: 1,
                    delta: Delta::ToolArguments("{}".to_owned()),
                },
            ],
        );
        assert_eq!(out[0], text(0, " check."));
        assert!(matches!(out[2], StreamEvent::BlockStart { index: 1, .. }));
        assert!(matches!(out[3], StreamEvent::Delta { index: 1, .. }));
    }

    #[test]
    fn deltas_of_a_block_never_opened_continue_the_open_text() {
        let mut s = Splice::new(&delivered("Hi", false), Usage::default());
        assert_eq!(s.apply(text(3, " there")), Some(text(0, " there")));
        assert_eq!(s.apply(text(3, ".")), Some(text(0, ".")));
    }
}
