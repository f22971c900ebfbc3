//! The Responses stream a client reads, written from the model's [`StreamEvent`]s in the
//! order the official SDKs' stream helpers accept (docs/responses-dialect.md):
//! `response.created`, `response.in_progress`, then per output item `output_item.added`,
//! its parts and deltas (`content_part.added`, `output_text.delta`…`.done`,
//! `content_part.done`; `function_call_arguments.delta`…`.done`; reasoning summary events),
//! `output_item.done`, and last `response.completed` (or `response.incomplete`) carrying the
//! whole response and its usage; `response.failed` when the stream fails after its first
//! byte. Every event has a `sequence_number` counting from 0.

use bytes::Bytes;
use serde::Serialize;

use super::answer::{ResponseError, ResponseObject, ResponseUsage};
use super::respond::{
    function_call_item, message_item, new_id, now_unix, reasoning_item, skeleton, status_of,
    REDACTED_PREFIX,
};
use super::wire::{ContentPart, InputItem, TextPart};
use crate::metering::Usage;
use crate::model::{BlockKind, Delta, Request, StopReason, StreamEvent};

/// The events, each written as `event: <type>` + `data: <json with type and sequence_number>`.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Event<'a> {
    #[serde(rename = "response.created")]
    Created { response: &'a ResponseObject },
    #[serde(rename = "response.in_progress")]
    InProgress { response: &'a ResponseObject },
    #[serde(rename = "response.output_item.added")]
    ItemAdded {
        output_index: usize,
        item: &'a InputItem,
    },
    #[serde(rename = "response.output_item.done")]
    ItemDone {
        output_index: usize,
        item: &'a InputItem,
    },
    #[serde(rename = "response.content_part.added")]
    PartAdded {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: &'a ContentPart,
    },
    #[serde(rename = "response.content_part.done")]
    PartDone {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: &'a ContentPart,
    },
    #[serde(rename = "response.output_text.delta")]
    TextDelta {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        delta: &'a str,
        logprobs: [(); 0],
    },
    #[serde(rename = "response.output_text.done")]
    TextDone {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        text: &'a str,
        logprobs: [(); 0],
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    ArgumentsDelta {
        item_id: &'a str,
        output_index: usize,
        delta: &'a str,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    ArgumentsDone {
        item_id: &'a str,
        output_index: usize,
        name: &'a str,
        arguments: &'a str,
    },
    #[serde(rename = "response.reasoning_summary_part.added")]
    SummaryPartAdded {
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        part: &'a TextPart,
    },
    #[serde(rename = "response.reasoning_summary_part.done")]
    SummaryPartDone {
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        part: &'a TextPart,
    },
    #[serde(rename = "response.reasoning_summary_text.delta")]
    SummaryDelta {
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        delta: &'a str,
    },
    #[serde(rename = "response.reasoning_summary_text.done")]
    SummaryDone {
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        text: &'a str,
    },
    #[serde(rename = "response.completed")]
    Completed { response: &'a ResponseObject },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: &'a ResponseObject },
    #[serde(rename = "response.failed")]
    Failed { response: &'a ResponseObject },
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "response.created",
            Event::InProgress { .. } => "response.in_progress",
            Event::ItemAdded { .. } => "response.output_item.added",
            Event::ItemDone { .. } => "response.output_item.done",
            Event::PartAdded { .. } => "response.content_part.added",
            Event::PartDone { .. } => "response.content_part.done",
            Event::TextDelta { .. } => "response.output_text.delta",
            Event::TextDone { .. } => "response.output_text.done",
            Event::ArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Event::ArgumentsDone { .. } => "response.function_call_arguments.done",
            Event::SummaryPartAdded { .. } => "response.reasoning_summary_part.added",
            Event::SummaryPartDone { .. } => "response.reasoning_summary_part.done",
            Event::SummaryDelta { .. } => "response.reasoning_summary_text.delta",
            Event::SummaryDone { .. } => "response.reasoning_summary_text.done",
            Event::Completed { .. } => "response.completed",
            Event::Incomplete { .. } => "response.incomplete",
            Event::Failed { .. } => "response.failed",
        }
    }
}

/// An event's JSON with its `sequence_number`.
#[derive(Serialize)]
struct Numbered<'a> {
    #[serde(flatten)]
    event: &'a Event<'a>,
    sequence_number: u64,
}

/// Frames one event as SSE.
fn frame(event: &Event<'_>, sequence_number: u64, out: &mut Vec<u8>) {
    // Serialising these plain structs cannot fail.
    if let Ok(json) = serde_json::to_vec(&Numbered {
        event,
        sequence_number,
    }) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(&json);
        out.extend_from_slice(b"\n\n");
    }
}

/// One output item being streamed.
#[derive(Debug)]
enum Open {
    Message {
        text: String,
    },
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
    Reasoning {
        summary: String,
        part_open: bool,
        signature: Option<String>,
    },
}

#[derive(Debug)]
struct Item {
    /// The model's block index it came from.
    block: usize,
    id: String,
    open: Option<Open>,
}

/// Writes one answer's stream as Responses events. `response.created` goes out with the first
/// content, so a failure before any content can still fail over; the terminal event waits
/// for [`EventEncoder::finish`] so it carries the final usage.
#[derive(Debug)]
pub struct EventEncoder {
    response: ResponseObject,
    sequence: u64,
    started: bool,
    finished: bool,
    /// Some typed event arrived (a pass-through stream brings none).
    typed: bool,
    items: Vec<Item>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

impl EventEncoder {
    pub fn new(request: &Request) -> Self {
        Self {
            response: skeleton(request, new_id("resp"), now_unix()),
            sequence: 0,
            started: false,
            finished: false,
            typed: false,
            items: Vec::new(),
            stop: None,
            usage: None,
        }
    }

    /// The finished response once [`EventEncoder::finish`] wrote it (what the proxy stores).
    pub fn completed(&self) -> Option<&ResponseObject> {
        (self.finished && self.typed).then_some(&self.response)
    }

    fn write(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        frame(event, self.sequence, out);
        self.sequence += 1;
    }

    /// Appends the SSE of `event` (possibly nothing) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.typed = true;
        match event {
            StreamEvent::Start { created, .. } => {
                if let Some(created) = created.filter(|_| !self.started) {
                    self.response.created_at = created;
                }
            }
            StreamEvent::BlockStart { index, kind } => {
                self.start(out);
                self.open(*index, kind, out);
            }
            StreamEvent::Delta { index, delta } => {
                self.start(out);
                self.delta(*index, delta, out);
            }
            StreamEvent::BlockStop { index } => {
                if let Some(position) = self
                    .items
                    .iter()
                    .position(|item| item.block == *index && item.open.is_some())
                {
                    self.close(position, out);
                }
            }
            StreamEvent::Stop { reason } => {
                self.start(out);
                self.stop = Some(reason.clone());
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    /// The end of a complete stream: open items closed, then `response.completed` (or
    /// `response.incomplete`) with the whole response. Writes nothing when no typed event
    /// arrived (a pass-through stream relays the upstream's own terminal event).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.typed || self.finished {
            return;
        }
        self.start(out);
        for position in 0..self.items.len() {
            self.close(position, out);
        }
        let (status, incomplete) = status_of(self.stop.as_ref().unwrap_or(&StopReason::EndTurn));
        self.response.status = status.to_owned();
        self.response.incomplete_details = incomplete;
        self.response.completed_at = Some(now_unix());
        self.response.usage = Some(
            self.usage
                .as_ref()
                .map(ResponseUsage::from_usage)
                .unwrap_or_default(),
        );
        self.finished = true;
        let response = self.response.clone();
        let event = if status == "completed" {
            Event::Completed {
                response: &response,
            }
        } else {
            Event::Incomplete {
                response: &response,
            }
        };
        self.write(&event, out);
    }

    /// `response.failed` with the output so far and the error.
    pub fn error_event(&self, code: &str, message: String) -> Bytes {
        let mut response = self.response.clone();
        response.status = "failed".to_owned();
        response.error = Some(ResponseError {
            code: code.to_owned(),
            message,
        });
        let mut out = Vec::new();
        frame(
            &Event::Failed {
                response: &response,
            },
            self.sequence,
            &mut out,
        );
        Bytes::from(out)
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response.clone();
        self.write(
            &Event::Created {
                response: &response,
            },
            out,
        );
        self.write(
            &Event::InProgress {
                response: &response,
            },
            out,
        );
    }

    /// Opens an output item for block `block`.
    fn open(&mut self, block: usize, kind: &BlockKind, out: &mut Vec<u8>) {
        let output_index = self.response.output.len();
        let (id, item, open) = match kind {
            BlockKind::Text => {
                let id = new_id("msg");
                let item = message_item(id.clone(), Vec::new(), "in_progress");
                (
                    id,
                    item,
                    Open::Message {
                        text: String::new(),
                    },
                )
            }
            BlockKind::ToolCall { id: call_id, name } => {
                let id = new_id("fc");
                let item =
                    function_call_item(id.clone(), call_id, name, String::new(), "in_progress");
                let open = Open::Call {
                    call_id: call_id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                };
                (id, item, open)
            }
            BlockKind::Thinking => {
                let id = new_id("rs");
                let item = reasoning_item(id.clone(), "", None);
                let open = Open::Reasoning {
                    summary: String::new(),
                    part_open: false,
                    signature: None,
                };
                (id, item, open)
            }
            BlockKind::RedactedThinking { data } => {
                let id = new_id("rs");
                let item = reasoning_item(id.clone(), "", None);
                let open = Open::Reasoning {
                    summary: String::new(),
                    part_open: false,
                    signature: Some(format!("{REDACTED_PREFIX}{data}")),
                };
                (id, item, open)
            }
        };
        self.write(
            &Event::ItemAdded {
                output_index,
                item: &item,
            },
            out,
        );
        if matches!(open, Open::Message { .. }) {
            let part = ContentPart::output_text("");
            self.write(
                &Event::PartAdded {
                    item_id: &id,
                    output_index,
                    content_index: 0,
                    part: &part,
                },
                out,
            );
        }
        self.response.output.push(item);
        self.items.push(Item {
            block,
            id,
            open: Some(open),
        });
    }

    fn delta(&mut self, block: usize, delta: &Delta, out: &mut Vec<u8>) {
        let found = self
            .items
            .iter()
            .position(|item| item.block == block && item.open.is_some());
        let position = match found {
            Some(position) => position,
            // A delta for a block never opened: open the item it implies. A call's arguments
            // or a signature cannot be placed without theirs.
            None => {
                let kind = match delta {
                    Delta::Text(_) => BlockKind::Text,
                    Delta::Thinking(_) => BlockKind::Thinking,
                    Delta::ToolArguments(_) | Delta::Signature(_) => return,
                };
                self.open(block, &kind, out);
                self.items.len() - 1
            }
        };
        let output_index = position;
        let item_id = self.items[position].id.clone();
        let mut events: Vec<Event<'_>> = Vec::new();
        let summary_part = TextPart {
            kind: "summary_text".to_owned(),
            text: String::new(),
        };
        match (&mut self.items[position].open, delta) {
            (Some(Open::Message { text }), Delta::Text(piece)) => {
                text.push_str(piece);
                events.push(Event::TextDelta {
                    item_id: &item_id,
                    output_index,
                    content_index: 0,
                    delta: piece,
                    logprobs: [],
                });
            }
            (Some(Open::Call { arguments, .. }), Delta::ToolArguments(piece)) => {
                arguments.push_str(piece);
                events.push(Event::ArgumentsDelta {
                    item_id: &item_id,
                    output_index,
                    delta: piece,
                });
            }
            (
                Some(Open::Reasoning {
                    summary, part_open, ..
                }),
                Delta::Thinking(piece),
            ) => {
                if !*part_open {
                    *part_open = true;
                    events.push(Event::SummaryPartAdded {
                        item_id: &item_id,
                        output_index,
                        summary_index: 0,
                        part: &summary_part,
                    });
                }
                summary.push_str(piece);
                events.push(Event::SummaryDelta {
                    item_id: &item_id,
                    output_index,
                    summary_index: 0,
                    delta: piece,
                });
            }
            (Some(Open::Reasoning { signature, .. }), Delta::Signature(piece)) => {
                signature.get_or_insert_with(String::new).push_str(piece);
            }
            // A delta of another kind than its block: nothing the client could place.
            _ => {}
        }
        let mut bytes = Vec::new();
        let mut sequence = self.sequence;
        for event in &events {
            frame(event, sequence, &mut bytes);
            sequence += 1;
        }
        self.sequence = sequence;
        out.extend_from_slice(&bytes);
    }

    /// Closes the item at `position` (nothing when already closed): its `.done` events with
    /// the accumulated text or arguments, then `output_item.done` with the final item.
    fn close(&mut self, position: usize, out: &mut Vec<u8>) {
        let Some(open) = self.items[position].open.take() else {
            return;
        };
        let item_id = self.items[position].id.clone();
        let output_index = position;
        let item = match open {
            Open::Message { text } => {
                let part = ContentPart::output_text(text.clone());
                self.write(
                    &Event::TextDone {
                        item_id: &item_id,
                        output_index,
                        content_index: 0,
                        text: &text,
                        logprobs: [],
                    },
                    out,
                );
                self.write(
                    &Event::PartDone {
                        item_id: &item_id,
                        output_index,
                        content_index: 0,
                        part: &part,
                    },
                    out,
                );
                message_item(item_id.clone(), vec![text], "completed")
            }
            Open::Call {
                call_id,
                name,
                arguments,
            } => {
                self.write(
                    &Event::ArgumentsDone {
                        item_id: &item_id,
                        output_index,
                        name: &name,
                        arguments: &arguments,
                    },
                    out,
                );
                function_call_item(item_id.clone(), &call_id, &name, arguments, "completed")
            }
            Open::Reasoning {
                summary,
                part_open,
                signature,
            } => {
                if part_open {
                    let part = TextPart {
                        kind: "summary_text".to_owned(),
                        text: summary.clone(),
                    };
                    self.write(
                        &Event::SummaryDone {
                            item_id: &item_id,
                            output_index,
                            summary_index: 0,
                            text: &summary,
                        },
                        out,
                    );
                    self.write(
                        &Event::SummaryPartDone {
                            item_id: &item_id,
                            output_index,
                            summary_index: 0,
                            part: &part,
                        },
                        out,
                    );
                }
                reasoning_item(item_id.clone(), &summary, signature)
            }
        };
        self.write(
            &Event::ItemDone {
                output_index,
                item: &item,
            },
            out,
        );
        self.response.output[position] = item;
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
