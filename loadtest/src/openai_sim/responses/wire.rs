//! Serialization of Responses answers: the `response` object (non-streamed body and the
//! `response` of lifecycle events), its output items, usage, and the stream events with
//! their `event:` names. Typed structs; every field OpenAI sends is present (nulls allowed),
//! since strict clients fail on a missing one.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::answer::ResponsesAnswer;
use super::request::{
    ReasoningConfig, ResponsesRequest, TextConfig, TextFormat, ToolChoice, ToolDef,
};
use crate::openai_sim::answer::AnswerBody;
use crate::openai_sim::state::unix_now;

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct ResponseUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct InputTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

impl ResponseUsage {
    pub(crate) fn of(answer: &ResponsesAnswer) -> Self {
        let output_tokens = answer.output_tokens();
        Self {
            input_tokens: answer.input_tokens(),
            input_tokens_details: InputTokensDetails {
                cached_tokens: answer.base.cached_tokens,
            },
            output_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: answer.reasoning_tokens(),
            },
            total_tokens: answer.input_tokens() + output_tokens,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct SummaryText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct OutputText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    pub annotations: Vec<Value>,
    pub logprobs: Vec<Value>,
}

impl OutputText {
    fn new(text: String) -> Self {
        Self {
            kind: "output_text",
            text,
            annotations: Vec::new(),
            logprobs: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum OutputItem<'a> {
    Reasoning {
        id: &'a str,
        summary: Vec<SummaryText>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<&'a str>,
    },
    Message {
        id: &'a str,
        status: &'static str,
        role: &'static str,
        content: Vec<OutputText>,
    },
    FunctionCall {
        id: &'a str,
        call_id: &'a str,
        name: &'a str,
        arguments: String,
        status: &'static str,
    },
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct IncompleteDetails {
    pub reason: &'static str,
}

/// The response object. `error` is always null: failures are HTTP errors or faults.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ResponseObject<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created_at: u64,
    pub status: &'static str,
    pub completed_at: Option<u64>,
    pub error: (),
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<&'a str>,
    pub max_output_tokens: Option<u64>,
    pub model: &'a str,
    pub output: Vec<OutputItem<'a>>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: (),
    pub reasoning: ReasoningConfig,
    pub store: bool,
    pub temperature: f64,
    pub text: TextConfig,
    pub tool_choice: ToolChoice,
    pub tools: &'a [ToolDef],
    pub top_p: f64,
    pub truncation: &'static str,
    pub user: Option<&'a str>,
    pub metadata: Map<String, Value>,
    pub background: bool,
    pub service_tier: &'static str,
    pub usage: Option<ResponseUsage>,
}

/// Which state of the response an object shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// `response.created` / `response.in_progress`: no output, no usage yet.
    InProgress,
    /// The non-streamed body and the terminal event.
    Final,
}

/// The text of the answer's message, or `None` for a function call.
fn text_of(answer: &ResponsesAnswer) -> Option<String> {
    match &answer.base.body {
        AnswerBody::Text(tokens) => Some(tokens.concat()),
        AnswerBody::ToolCall { .. } => None,
    }
}

/// The reasoning item in its final form.
pub(crate) fn reasoning_item(answer: &ResponsesAnswer) -> Option<OutputItem<'_>> {
    let reasoning = answer.reasoning.as_ref()?;
    let summary = if reasoning.summary.is_empty() {
        Vec::new()
    } else {
        vec![SummaryText {
            kind: "summary_text",
            text: reasoning.summary.concat(),
        }]
    };
    Some(OutputItem::Reasoning {
        id: &reasoning.id,
        summary,
        encrypted_content: reasoning.encrypted_content.as_deref(),
    })
}

/// The message or function call, as first announced (`started`: empty, in progress) or final.
pub(crate) fn answer_item(answer: &ResponsesAnswer, started: bool) -> OutputItem<'_> {
    let status = if !started { "completed" } else { "in_progress" };
    match &answer.base.body {
        AnswerBody::Text(tokens) => OutputItem::Message {
            id: &answer.item_id,
            status: if !started && answer.incomplete() {
                "incomplete"
            } else {
                status
            },
            role: "assistant",
            content: if started {
                Vec::new()
            } else {
                vec![OutputText::new(tokens.concat())]
            },
        },
        AnswerBody::ToolCall {
            id,
            name,
            fragments,
        } => OutputItem::FunctionCall {
            id: &answer.item_id,
            call_id: id,
            name,
            arguments: if started {
                String::new()
            } else {
                fragments.concat()
            },
            status,
        },
    }
}

/// The response object at `stage`, echoing the request's settings as OpenAI does.
pub(crate) fn response_object<'a>(
    answer: &'a ResponsesAnswer,
    request: &'a ResponsesRequest,
    stage: Stage,
) -> ResponseObject<'a> {
    let done = stage == Stage::Final;
    let (status, incomplete_details) = match (done, answer.incomplete()) {
        (false, _) => ("in_progress", None),
        (true, false) => ("completed", None),
        (true, true) => (
            "incomplete",
            Some(IncompleteDetails {
                reason: "max_output_tokens",
            }),
        ),
    };
    let output = if done {
        reasoning_item(answer)
            .into_iter()
            .chain([answer_item(answer, false)])
            .collect()
    } else {
        Vec::new()
    };
    let text = request.text.clone().unwrap_or_default();
    let text = TextConfig {
        format: text.format.or_else(|| {
            Some(TextFormat {
                kind: "text".to_owned(),
                name: None,
                schema: None,
                extra: Map::new(),
            })
        }),
        ..text
    };
    ResponseObject {
        id: &answer.id,
        object: "response",
        created_at: answer.created_at,
        status,
        completed_at: done.then(unix_now),
        error: (),
        incomplete_details,
        instructions: request.instructions.as_deref(),
        max_output_tokens: request.max_output_tokens,
        model: &answer.base.model,
        output,
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        previous_response_id: (),
        reasoning: request.reasoning.clone().unwrap_or_default(),
        store: request.store.unwrap_or(true),
        temperature: request.temperature.unwrap_or(1.0),
        text,
        tool_choice: request
            .tool_choice
            .clone()
            .unwrap_or_else(|| ToolChoice::Mode("auto".to_owned())),
        tools: request.tools.as_deref().unwrap_or_default(),
        top_p: request.top_p.unwrap_or(1.0),
        truncation: "disabled",
        user: request.extra.get("user").and_then(Value::as_str),
        metadata: request.metadata.clone().unwrap_or_default(),
        background: false,
        service_tier: "default",
        usage: done.then(|| ResponseUsage::of(answer)),
    }
}

/// The non-streamed body.
pub(crate) fn response_body(
    answer: &ResponsesAnswer,
    request: &ResponsesRequest,
) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&response_object(answer, request, Stage::Final))
}

/// One stream event's payload; `type` is the event name.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub(crate) enum EventBody<'a> {
    #[serde(rename = "response.created")]
    Created { response: ResponseObject<'a> },
    #[serde(rename = "response.in_progress")]
    InProgress { response: ResponseObject<'a> },
    #[serde(rename = "response.output_item.added")]
    ItemAdded {
        output_index: usize,
        item: OutputItem<'a>,
    },
    #[serde(rename = "response.reasoning_summary_part.added")]
    SummaryPartAdded {
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        part: SummaryText,
    },
    #[serde(rename = "response.reasoning_summary_text.delta")]
    SummaryTextDelta {
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        delta: &'a str,
    },
    #[serde(rename = "response.reasoning_summary_text.done")]
    SummaryTextDone {
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        text: String,
    },
    #[serde(rename = "response.reasoning_summary_part.done")]
    SummaryPartDone {
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        part: SummaryText,
    },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: OutputText,
    },
    #[serde(rename = "response.output_text.delta")]
    TextDelta {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        delta: &'a str,
        logprobs: Vec<Value>,
    },
    #[serde(rename = "response.output_text.done")]
    TextDone {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        text: String,
        logprobs: Vec<Value>,
    },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: OutputText,
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
        arguments: String,
    },
    #[serde(rename = "response.output_item.done")]
    ItemDone {
        output_index: usize,
        item: OutputItem<'a>,
    },
    #[serde(rename = "response.completed")]
    Completed { response: ResponseObject<'a> },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: ResponseObject<'a> },
}

impl EventBody<'_> {
    /// The SSE `event:` name, equal to the payload's `type`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "response.created",
            Self::InProgress { .. } => "response.in_progress",
            Self::ItemAdded { .. } => "response.output_item.added",
            Self::SummaryPartAdded { .. } => "response.reasoning_summary_part.added",
            Self::SummaryTextDelta { .. } => "response.reasoning_summary_text.delta",
            Self::SummaryTextDone { .. } => "response.reasoning_summary_text.done",
            Self::SummaryPartDone { .. } => "response.reasoning_summary_part.done",
            Self::ContentPartAdded { .. } => "response.content_part.added",
            Self::TextDelta { .. } => "response.output_text.delta",
            Self::TextDone { .. } => "response.output_text.done",
            Self::ContentPartDone { .. } => "response.content_part.done",
            Self::ArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Self::ArgumentsDone { .. } => "response.function_call_arguments.done",
            Self::ItemDone { .. } => "response.output_item.done",
            Self::Completed { .. } => "response.completed",
            Self::Incomplete { .. } => "response.incomplete",
        }
    }

    /// Deltas carry generated tokens: they are paced by `inter_token` and counted by the
    /// mid-stream faults.
    pub(crate) fn is_delta(&self) -> bool {
        matches!(
            self,
            Self::SummaryTextDelta { .. } | Self::TextDelta { .. } | Self::ArgumentsDelta { .. }
        )
    }
}

#[derive(Serialize)]
struct Event<'a, 'b> {
    #[serde(flatten)]
    body: &'b EventBody<'a>,
    sequence_number: u64,
}

/// `event: <name>\ndata: <json>\n\n`.
pub(crate) fn event_frame(body: &EventBody<'_>, sequence_number: u64) -> serde_json::Result<Bytes> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(body.name().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(
        &mut out,
        &Event {
            body,
            sequence_number,
        },
    )?;
    out.extend_from_slice(b"\n\n");
    Ok(Bytes::from(out))
}

/// Every event of `answer`, in the order OpenAI sends them: `created`, `in_progress`, the
/// reasoning item (with its summary), the message (part, text deltas) or the function call
/// (argument deltas), then `completed` (or `incomplete` when cut by `max_output_tokens`).
pub(crate) fn stream_events<'a>(
    answer: &'a ResponsesAnswer,
    request: &'a ResponsesRequest,
) -> Vec<EventBody<'a>> {
    let mut events = vec![
        EventBody::Created {
            response: response_object(answer, request, Stage::InProgress),
        },
        EventBody::InProgress {
            response: response_object(answer, request, Stage::InProgress),
        },
    ];
    if let (Some(reasoning), Some(done)) = (&answer.reasoning, reasoning_item(answer)) {
        let item_id = reasoning.id.as_str();
        let output_index = 0;
        events.push(EventBody::ItemAdded {
            output_index,
            item: OutputItem::Reasoning {
                id: item_id,
                summary: Vec::new(),
                encrypted_content: None,
            },
        });
        if !reasoning.summary.is_empty() {
            let part = |text: String| SummaryText {
                kind: "summary_text",
                text,
            };
            events.push(EventBody::SummaryPartAdded {
                item_id,
                output_index,
                summary_index: 0,
                part: part(String::new()),
            });
            events.extend(
                reasoning
                    .summary
                    .iter()
                    .map(|delta| EventBody::SummaryTextDelta {
                        item_id,
                        output_index,
                        summary_index: 0,
                        delta,
                    }),
            );
            let text = reasoning.summary.concat();
            events.push(EventBody::SummaryTextDone {
                item_id,
                output_index,
                summary_index: 0,
                text: text.clone(),
            });
            events.push(EventBody::SummaryPartDone {
                item_id,
                output_index,
                summary_index: 0,
                part: part(text),
            });
        }
        events.push(EventBody::ItemDone {
            output_index,
            item: done,
        });
    }
    let item_id = answer.item_id.as_str();
    let output_index = answer.item_index();
    events.push(EventBody::ItemAdded {
        output_index,
        item: answer_item(answer, true),
    });
    match &answer.base.body {
        AnswerBody::Text(tokens) => {
            let content_index = 0;
            events.push(EventBody::ContentPartAdded {
                item_id,
                output_index,
                content_index,
                part: OutputText::new(String::new()),
            });
            events.extend(tokens.iter().map(|delta| EventBody::TextDelta {
                item_id,
                output_index,
                content_index,
                delta,
                logprobs: Vec::new(),
            }));
            let text = text_of(answer).unwrap_or_default();
            events.push(EventBody::TextDone {
                item_id,
                output_index,
                content_index,
                text: text.clone(),
                logprobs: Vec::new(),
            });
            events.push(EventBody::ContentPartDone {
                item_id,
                output_index,
                content_index,
                part: OutputText::new(text),
            });
        }
        AnswerBody::ToolCall {
            name, fragments, ..
        } => {
            events.extend(fragments.iter().map(|delta| EventBody::ArgumentsDelta {
                item_id,
                output_index,
                delta,
            }));
            events.push(EventBody::ArgumentsDone {
                item_id,
                output_index,
                name,
                arguments: fragments.concat(),
            });
        }
    }
    events.push(EventBody::ItemDone {
        output_index,
        item: answer_item(answer, false),
    });
    let response = response_object(answer, request, Stage::Final);
    events.push(if answer.incomplete() {
        EventBody::Incomplete { response }
    } else {
        EventBody::Completed { response }
    });
    events
}
