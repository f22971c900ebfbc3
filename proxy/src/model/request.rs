//! A generation request in the proxy's own terms, whatever dialect the client spoke.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::content::{Block, CacheMarker, RawJson, Role};

/// The client API a request arrived in; it decides the answer's encoding, the error shape,
/// and which upstreams can take the body as is (pass-through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    Chat,
    /// OpenAI Responses (`POST /v1/responses`).
    Responses,
    /// Anthropic Messages (`POST /v1/messages`).
    Messages,
}

impl Dialect {
    /// The `api` label of metrics, ledger rows and access-log lines.
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Chat => "chat",
            Dialect::Responses => "responses",
            Dialect::Messages => "messages",
        }
    }
}

/// One leading instruction block (Anthropic `system` blocks, Bedrock `system[]`, the leading
/// `system`/`developer` messages of Chat, Responses `instructions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemBlock {
    pub text: String,
    /// Chat distinguishes `developer` from `system`; kept so Chat → Chat is lossless.
    #[serde(default)]
    pub developer: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheMarker>,
}

/// One turn of the conversation. Tool results travel as [`Block::ToolResult`] in a `User`
/// message (Chat's `tool` role messages are folded into that form and unfolded again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
    /// Chat's participant `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unknown per-message fields of the client's dialect.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A function the model may call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments, as the client wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<RawJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheMarker>,
}

/// Which tool the model must (not) call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    /// Some tool (Chat `required`, Anthropic `any`).
    Required,
    None,
    Tool {
        name: String,
    },
}

/// What shape the answer's text must have.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: RawJson,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

/// Raw JSON compares by its text (`RawValue` has no `PartialEq`).
fn same_raw(a: &RawJson, b: &RawJson) -> bool {
    a.get() == b.get()
}

impl PartialEq for ToolDef {
    fn eq(&self, other: &Self) -> bool {
        let schemas = match (&self.input_schema, &other.input_schema) {
            (Some(a), Some(b)) => same_raw(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        self.name == other.name
            && self.description == other.description
            && schemas
            && self.strict == other.strict
            && self.cache == other.cache
    }
}

impl PartialEq for ResponseFormat {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ResponseFormat::Text, ResponseFormat::Text)
            | (ResponseFormat::JsonObject, ResponseFormat::JsonObject) => true,
            (
                ResponseFormat::JsonSchema {
                    name,
                    schema,
                    strict,
                    description,
                },
                ResponseFormat::JsonSchema {
                    name: other_name,
                    schema: other_schema,
                    strict: other_strict,
                    description: other_description,
                },
            ) => {
                name == other_name
                    && same_raw(schema, other_schema)
                    && strict == other_strict
                    && description == other_description
            }
            _ => false,
        }
    }
}

/// OpenAI's reasoning effort levels; Anthropic budgets map onto them through a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
}

/// Extended thinking / reasoning settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reasoning {
    /// Anthropic `thinking: {type: enabled}`; Chat/Responses ask through `effort`.
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<ReasoningEffort>,
    /// Responses' `reasoning.summary` (`auto`, `concise`, `detailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// Sampling settings; absent means the upstream's default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Number of choices (Chat `n`); most non-OpenAI providers refuse more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
}

/// A generation request: the conversation, its tools and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The model name the client sent (a `models:` key in routes.yaml).
    pub model: String,
    pub dialect: Dialect,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock>,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub sampling: Sampling,
    /// The client's cap on generated tokens (`max_completion_tokens`, `max_tokens`,
    /// `max_output_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    #[serde(default)]
    pub stream: bool,
    /// The client asked for usage in its stream (Chat `stream_options.include_usage`; always
    /// true for dialects whose streams always report usage).
    #[serde(default)]
    pub stream_usage: bool,
    /// The end user the client named (Chat `user`, Anthropic `metadata.user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Top-level fields the model does not know, in the client's dialect: forwarded untouched
    /// to upstreams that speak [`Request::dialect`], dropped (and named in the docs) elsewhere.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Request {
    /// Bytes of text and data in the prompt: the basis of the prompt-size estimate.
    pub fn prompt_bytes(&self) -> usize {
        let system: usize = self.system.iter().map(|s| s.text.len()).sum();
        let messages: usize = self
            .messages
            .iter()
            .flat_map(|m| m.content.iter())
            .map(Block::content_bytes)
            .sum();
        let tools: usize = self
            .tools
            .iter()
            .map(|t| {
                t.name.len()
                    + t.description.as_ref().map_or(0, String::len)
                    + t.input_schema.as_ref().map_or(0, |s| s.get().len())
            })
            .sum();
        system + messages + tools
    }

    /// Where the first thinking block that must be replayed byte for byte sits (`(message,
    /// block)`): one with a signature, or redacted thinking. Only Claude verifies those, so
    /// only Claude targets can take the conversation. Unsigned thinking (an OpenAI-format
    /// upstream's reasoning, read back) binds no one and is not counted.
    pub fn thinking_to_replay(&self) -> Option<(usize, usize)> {
        self.messages.iter().enumerate().find_map(|(i, message)| {
            message
                .content
                .iter()
                .position(|block| match block {
                    Block::Thinking { signature, .. } => {
                        signature.as_ref().is_some_and(|s| !s.is_empty())
                    }
                    Block::RedactedThinking { .. } => true,
                    _ => false,
                })
                .map(|j| (i, j))
        })
    }

    /// Whether any message carries a thinking block (signed or redacted): such a conversation
    /// can only be replayed to a provider that honours signatures.
    pub fn has_thinking(&self) -> bool {
        self.messages
            .iter()
            .flat_map(|m| m.content.iter())
            .any(|b| matches!(b, Block::Thinking { .. } | Block::RedactedThinking { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(messages: Vec<Message>) -> Request {
        Request {
            model: "m".to_owned(),
            dialect: Dialect::Chat,
            system: vec![SystemBlock {
                text: "be brief".to_owned(),
                developer: false,
                cache: None,
            }],
            messages,
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
            sampling: Sampling::default(),
            max_output_tokens: None,
            response_format: None,
            reasoning: None,
            stream: false,
            stream_usage: false,
            user: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn prompt_bytes_count_system_messages_and_calls() {
        let r = request(vec![Message {
            role: Role::Assistant,
            content: vec![
                Block::text("abc"),
                Block::ToolCall {
                    id: "call_1".to_owned(),
                    name: "f".to_owned(),
                    arguments: "{}".to_owned(),
                    cache: None,
                },
            ],
            name: None,
            extra: Map::new(),
        }]);
        assert_eq!(r.prompt_bytes(), "be brief".len() + 3 + 1 + 2);
        assert!(!r.has_thinking());
    }

    #[test]
    fn thinking_is_noticed() {
        let r = request(vec![Message {
            role: Role::Assistant,
            content: vec![Block::Thinking {
                text: "hmm".to_owned(),
                signature: Some("sig".to_owned()),
            }],
            name: None,
            extra: Map::new(),
        }]);
        assert!(r.has_thinking());
        assert_eq!(r.thinking_to_replay(), Some((0, 0)));
    }

    #[test]
    fn only_signed_or_redacted_thinking_must_be_replayed() {
        let assistant = |content| Message {
            role: Role::Assistant,
            content,
            name: None,
            extra: Map::new(),
        };
        let unsigned = |signature: Option<&str>| Block::Thinking {
            text: "hmm".to_owned(),
            signature: signature.map(str::to_owned),
        };
        let r = request(vec![
            assistant(vec![unsigned(None), Block::text("a")]),
            assistant(vec![unsigned(Some("")), Block::text("b")]),
        ]);
        assert!(r.has_thinking());
        assert_eq!(r.thinking_to_replay(), None);
        let r = request(vec![
            assistant(vec![Block::text("a")]),
            assistant(vec![
                Block::text("b"),
                Block::RedactedThinking {
                    data: "opaque".to_owned(),
                },
            ]),
        ]);
        assert_eq!(r.thinking_to_replay(), Some((1, 1)));
    }
}
