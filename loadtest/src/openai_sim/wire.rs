//! Serialization of chat answers: the `chat.completion` object and the
//! `chat.completion.chunk` SSE frames (docs/wire-formats.md §1.2, §1.3). Typed, borrowing
//! structs keep this cheap on the benchmark path.

use bytes::Bytes;
use serde::Serialize;

use super::answer::{Answer, AnswerBody};

/// The stream terminator (docs/wire-formats.md §1.3 rule 6).
pub(crate) const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Usage {
    /// Signed: a hostile upstream (`Fault::MisreportUsage`) reports negative figures.
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// Only when part of the prompt came from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct PromptTokensDetails {
    pub cached_tokens: u64,
}

impl Usage {
    /// The usage the answer reports: its real figures, or those a `MisreportUsage` fault
    /// put in their place.
    pub(crate) fn of(answer: &Answer) -> Self {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (prompt, completion) = answer.misreported.unwrap_or((None, None));
        let prompt_tokens = prompt.unwrap_or(signed(answer.prompt_tokens));
        let completion_tokens = completion.unwrap_or(signed(answer.completion_tokens()));
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            prompt_tokens_details: (answer.cached_tokens > 0).then_some(PromptTokensDetails {
                cached_tokens: answer.cached_tokens,
            }),
        }
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: Usage,
    system_fingerprint: &'a str,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: Message<'a>,
    /// Always null; `()` serializes as `null`.
    logprobs: (),
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Option<String>,
    refusal: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: String,
}

/// The non-streamed `chat.completion` body.
pub(crate) fn completion_body(answer: &Answer, fingerprint: &str) -> serde_json::Result<Vec<u8>> {
    let message = match &answer.body {
        AnswerBody::Text(tokens) => Message {
            role: "assistant",
            content: Some(tokens.concat()),
            refusal: (),
            tool_calls: None,
        },
        AnswerBody::ToolCall {
            id,
            name,
            fragments,
        } => Message {
            role: "assistant",
            content: None,
            refusal: (),
            tool_calls: Some([ToolCall {
                id,
                kind: "function",
                function: Function {
                    name,
                    arguments: fragments.concat(),
                },
            }]),
        },
    };
    serde_json::to_vec(&Completion {
        id: &answer.id,
        object: "chat.completion",
        created: answer.created,
        model: &answer.model,
        choices: [CompletionChoice {
            index: 0,
            message,
            logprobs: (),
            finish_reason: answer.finish_reason,
        }],
        usage: Usage::of(answer),
        system_fingerprint: fingerprint,
    })
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    /// Omitted without `include_usage`; with it, `null` except on the usage chunk
    /// (docs/wire-formats.md §1.3 rule 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
    system_fingerprint: &'a str,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'a str>,
}

#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    /// `Some(())` writes `"refusal": null`, as OpenAI does on the role chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Writes the SSE frames of one answer, in the order docs/wire-formats.md §1.3 prescribes.
pub(crate) struct ChunkWriter<'a> {
    pub answer: &'a Answer,
    pub fingerprint: &'a str,
    pub include_usage: bool,
}

impl ChunkWriter<'_> {
    fn frame(
        &self,
        choices: &[ChunkChoice<'_>],
        usage: Option<Usage>,
    ) -> serde_json::Result<Bytes> {
        let chunk = Chunk {
            id: &self.answer.id,
            object: "chat.completion.chunk",
            created: self.answer.created,
            model: &self.answer.model,
            choices,
            usage: self.include_usage.then_some(usage),
            system_fingerprint: self.fingerprint,
        };
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut out, &chunk)?;
        out.extend_from_slice(b"\n\n");
        Ok(Bytes::from(out))
    }

    fn delta_frame(
        &self,
        delta: Delta<'_>,
        finish_reason: Option<&str>,
    ) -> serde_json::Result<Bytes> {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: (),
            finish_reason,
        };
        self.frame(&[choice], None)
    }

    /// Rule 1: the role comes first, with empty content.
    pub(crate) fn role(&self) -> serde_json::Result<Bytes> {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(""),
            refusal: Some(()),
            ..Delta::default()
        };
        self.delta_frame(delta, None)
    }

    /// Content-bearing chunk `index` (0-based, `< answer.pieces()`): a content token,
    /// or for a tool call its header (id, type, name, empty arguments) then argument fragments.
    pub(crate) fn piece(&self, index: usize) -> serde_json::Result<Bytes> {
        let delta = match &self.answer.body {
            AnswerBody::Text(tokens) => Delta {
                content: tokens.get(index).map(String::as_str),
                ..Delta::default()
            },
            AnswerBody::ToolCall {
                id,
                name,
                fragments,
            } => {
                let (id, kind, name, arguments) = match index.checked_sub(1) {
                    None => (Some(id.as_str()), Some("function"), Some(name.as_str()), ""),
                    Some(fragment) => (
                        None,
                        None,
                        None,
                        fragments.get(fragment).map_or("", String::as_str),
                    ),
                };
                Delta {
                    tool_calls: Some([ToolCallDelta {
                        index: 0,
                        id,
                        kind,
                        function: FunctionDelta { name, arguments },
                    }]),
                    ..Delta::default()
                }
            }
        };
        self.delta_frame(delta, None)
    }

    /// Rule 4: empty delta with the finish reason.
    pub(crate) fn finish(&self) -> serde_json::Result<Bytes> {
        self.delta_frame(Delta::default(), Some(self.answer.finish_reason))
    }

    /// A content chunk past the answer's end, for an upstream that ignores the cap.
    pub(crate) fn extra_token(&self) -> serde_json::Result<Bytes> {
        let delta = Delta {
            content: Some(" more"),
            ..Delta::default()
        };
        self.delta_frame(delta, None)
    }

    /// Rule 5: `choices: []` and the usage; only when `include_usage` was asked for.
    pub(crate) fn usage(&self) -> serde_json::Result<Bytes> {
        self.frame(&[], Some(Usage::of(self.answer)))
    }
}
