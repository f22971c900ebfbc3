//! Bedrock Converse wire types (docs/wire-formats.md §2.2–§3.4): the request body,
//! borrowed from the proxy's model where possible, and the answer and ConverseStream event
//! payloads, which carry the members this proxy does not read in `extra`.
//!
//! Converse unions (`ContentBlock`, `Tool`, `ToolChoice`, …) are JSON objects with exactly one
//! key; serde's externally tagged enums are exactly that shape.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

// ---------------------------------------------------------------- request (serialize only)

/// The Converse / ConverseStream request body (the model id goes into the path).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock<'a>>,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<AdditionalFields<'a>>,
}

/// One element of `system[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SystemBlock<'a> {
    Text(Cow<'a, str>),
    CachePoint(CachePoint),
}

/// A prompt-cache breakpoint: a separate element after the cached content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CachePoint {
    #[serde(rename = "type")]
    pub kind: CachePointType,
    /// `"1h"`; absent means Bedrock's default (5 minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CachePointType {
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConverseRole {
    User,
    Assistant,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message<'a> {
    pub role: ConverseRole,
    pub content: Vec<ContentBlock<'a>>,
}

/// One element of a message's `content[]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContentBlock<'a> {
    Text(Cow<'a, str>),
    Image(ImageBlock<'a>),
    Document(DocumentBlock<'a>),
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
    ReasoningContent(ReasoningContent<'a>),
    CachePoint(CachePoint),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageBlock<'a> {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub format: &'static str,
    pub source: BytesSource<'a>,
}

/// `{"bytes": "<base64>"}`: blobs travel base64-encoded in the JSON body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BytesSource<'a> {
    pub bytes: &'a str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentBlock<'a> {
    /// `pdf`, `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt` or `md`.
    pub format: &'static str,
    pub name: Cow<'a, str>,
    pub source: DocumentSource<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DocumentSource<'a> {
    Bytes(&'a str),
    Text(&'a str),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse<'a> {
    pub tool_use_id: Cow<'a, str>,
    pub name: &'a str,
    pub input: ToolInput<'a>,
}

/// A tool call's `input`, which Converse needs as a JSON object: the client's arguments
/// verbatim when they are one, `{}` when they are empty or not JSON, `{"value": …}` around
/// any other JSON value.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ToolInput<'a> {
    Object(&'a RawValue),
    Empty(EmptyObject),
    Wrapped { value: &'a RawValue },
}

/// `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EmptyObject {}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult<'a> {
    pub tool_use_id: Cow<'a, str>,
    pub content: Vec<ToolResultBlock<'a>>,
    pub status: ToolResultStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolResultStatus {
    Success,
    Error,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultBlock<'a> {
    Text(Cow<'a, str>),
    Image(ImageBlock<'a>),
    Document(DocumentBlock<'a>),
}

/// Extended thinking replayed from an earlier turn, unmodified.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReasoningContent<'a> {
    ReasoningText(ReasoningText<'a>),
    RedactedContent(&'a str),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasoningText<'a> {
    pub text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<&'a str>,
}

impl InferenceConfig<'_> {
    pub fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig<'a> {
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'a>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Tool<'a> {
    ToolSpec(ToolSpec<'a>),
    CachePoint(CachePoint),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub input_schema: InputSchema<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `{"json": <schema>}`.
#[derive(Debug, Clone, Serialize)]
pub struct InputSchema<'a> {
    pub json: Schema<'a>,
}

/// A tool's JSON Schema: the client's text verbatim (or its value, when the client's dialect
/// kept the tool in `extra`), or a fixed one the proxy supplies.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Schema<'a> {
    Raw(&'a RawValue),
    Value(&'a Value),
    Fixed(FixedSchema),
}

/// `{"type": "object"}`, with `"properties": {}` when `empty_properties` is set (the default
/// for a declared tool without parameters; history-only tools get the bare form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FixedSchema {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<EmptyObject>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoice<'a> {
    Auto(EmptyObject),
    Any(EmptyObject),
    Tool { name: &'a str },
}

/// `additionalModelRequestFields`: the target's configured fields, plus what the request
/// asks for that Converse only takes there (Anthropic `thinking`, `top_k`) unless the target
/// already sets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AdditionalFields<'a> {
    /// A configured value that is not a map, forwarded as is.
    Verbatim(&'a Value),
    Merged {
        #[serde(flatten)]
        configured: Cow<'a, Map<String, Value>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        thinking: Option<Thinking>,
        #[serde(skip_serializing_if = "Option::is_none")]
        top_k: Option<u32>,
    },
}

/// Anthropic's `thinking: {"type": "enabled", "budget_tokens": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub budget_tokens: u32,
}

// ---------------------------------------------------------------- answer (deserialize only)

/// A Converse answer. Required members are still optional here: a missing `stopReason`
/// means `end_turn`, missing usage means the proxy estimates.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    pub output: Output,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    #[serde(default)]
    pub additional_model_response_fields: Option<Value>,
    /// `metrics`, `trace`, `performanceConfig`, `serviceTier`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Output {
    #[serde(default)]
    pub message: Option<AnswerMessage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AnswerMessage {
    #[serde(default)]
    pub role: Option<String>,
    pub content: Vec<AnswerBlock>,
}

/// One block of an answer: a kind this proxy reads, or any other (citations, images, …)
/// kept as it came.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AnswerBlock {
    Known(KnownAnswerBlock),
    Other(Map<String, Value>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KnownAnswerBlock {
    Text(String),
    ToolUse(AnswerToolUse),
    ReasoningContent(AnswerReasoning),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerToolUse {
    pub tool_use_id: String,
    pub name: String,
    /// A JSON value (`RawValue` cannot sit inside the untagged [`AnswerBlock`]).
    #[serde(default)]
    pub input: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AnswerReasoning {
    ReasoningText(AnswerReasoningText),
    RedactedContent(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AnswerReasoningText {
    pub text: String,
    #[serde(default)]
    pub signature: Option<String>,
}

/// Token counts. `inputTokens` excludes cache reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_write_input_tokens: u64,
    /// `cacheDetails` and whatever Bedrock adds.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------- stream event payloads

/// `contentBlockStart`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStart {
    pub content_block_index: u64,
    pub start: StartBody,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartBody {
    #[serde(default)]
    pub tool_use: Option<ToolUseStart>,
    /// `toolResult`, `image`, … starts this proxy does not translate.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseStart {
    pub tool_use_id: String,
    pub name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `contentBlockDelta`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDelta {
    pub content_block_index: u64,
    pub delta: DeltaBody,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaBody {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_use: Option<ToolUseDelta>,
    #[serde(default)]
    pub reasoning_content: Option<ReasoningDelta>,
    /// `citation`, `toolResult`, `image`, … deltas this proxy does not translate.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ToolUseDelta {
    /// A fragment of the input's JSON text.
    pub input: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningDelta {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub redacted_content: Option<String>,
}

/// `contentBlockStop`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStop {
    pub content_block_index: u64,
}

/// `messageStop`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStop {
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub additional_model_response_fields: Option<Value>,
}

/// `metadata`: the last event, after `messageStop`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// `metrics`, `trace`, `performanceConfig`, `serviceTier`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The payload of an `exception` frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExceptionBody {
    #[serde(default)]
    pub message: Option<String>,
    /// `originalStatusCode`, `originalMessage`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
