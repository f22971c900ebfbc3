//! Content blocks: the pieces a message, a tool result or an answer is made of.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Who speaks a message. `System` and `Developer` appear in `messages` only where the client's
/// dialect allows instructions mid-conversation (Chat, Responses); the leading instructions
/// live in [`crate::model::Request::system`]. Providers that have no such role hoist or refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
}

/// How long a prompt-cache entry written at a marker should live (Anthropic `cache_control.ttl`,
/// Bedrock `cachePoint.ttl`). `None` in [`CacheMarker`] means the provider's default (5 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheTtl {
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
}

/// A prompt-cache breakpoint after the block (or tool, or system block) that carries it:
/// Anthropic's `cache_control: {"type": "ephemeral"}`, Bedrock's `cachePoint`. OpenAI caches
/// automatically, so an OpenAI-format upstream drops it (docs say so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CacheMarker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<CacheTtl>,
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline data, already base64 (a `data:` URL is split into this form when decoded).
    Base64 { media_type: String, data: String },
    /// A remote URL; providers that cannot fetch URLs refuse it.
    Url { url: String },
}

/// Where a document's content is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DocumentSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
    Text { media_type: String, data: String },
}

/// The content of a tool result: plain text, or blocks (text, images, documents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<Block>),
}

/// One block of content. Request messages, tool results and answers all use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheMarker>,
    },
    Image {
        source: ImageSource,
        /// OpenAI's `detail` (`low`, `high`, `auto`); other providers ignore it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheMarker>,
    },
    Document {
        source: DocumentSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheMarker>,
    },
    /// A call the assistant made. `id` is the client-visible id, kept exactly (a provider that
    /// cannot carry it rewrites it reversibly). `arguments` is JSON text as the model emitted
    /// it, which may be invalid JSON.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheMarker>,
    },
    /// The result of a call, sent back by the client.
    ToolResult {
        call_id: String,
        content: ToolResultContent,
        #[serde(default)]
        is_error: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheMarker>,
    },
    /// Extended thinking. The signature must come back byte for byte on the next turn or
    /// Anthropic and Bedrock reject the conversation.
    Thinking {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Thinking the provider encrypted; `data` is opaque and replayed as is.
    RedactedThinking { data: String },
    /// A content part of `dialect` the model has no block for (Chat `input_audio`, a `file`
    /// given by id, an assistant `refusal` part), kept verbatim: an upstream that speaks
    /// `dialect` gets it as the client sent it; any other refuses the request naming the part.
    Opaque {
        dialect: super::request::Dialect,
        part: serde_json::Value,
    },
}

impl Block {
    pub fn text(text: impl Into<String>) -> Self {
        Block::Text {
            text: text.into(),
            cache: None,
        }
    }

    /// Bytes of text and data in the block: the basis of the prompt-size estimate.
    pub fn content_bytes(&self) -> usize {
        match self {
            Block::Text { text, .. } => text.len(),
            Block::Image { source, .. } => match source {
                ImageSource::Base64 { data, .. } => data.len(),
                ImageSource::Url { url } => url.len(),
            },
            Block::Document { source, .. } => match source {
                DocumentSource::Base64 { data, .. } | DocumentSource::Text { data, .. } => {
                    data.len()
                }
                DocumentSource::Url { url } => url.len(),
            },
            Block::ToolCall {
                name, arguments, ..
            } => name.len() + arguments.len(),
            Block::ToolResult { content, .. } => match content {
                ToolResultContent::Text(text) => text.len(),
                ToolResultContent::Blocks(blocks) => blocks.iter().map(Block::content_bytes).sum(),
            },
            Block::Thinking { text, signature } => {
                text.len() + signature.as_ref().map_or(0, String::len)
            }
            Block::RedactedThinking { data } => data.len(),
            Block::Opaque { part, .. } => serde_json::to_string(part).map_or(0, |s| s.len()),
        }
    }

    /// The cache marker after this block, if any.
    pub fn cache_marker(&self) -> Option<CacheMarker> {
        match self {
            Block::Text { cache, .. }
            | Block::Image { cache, .. }
            | Block::Document { cache, .. }
            | Block::ToolCall { cache, .. }
            | Block::ToolResult { cache, .. } => *cache,
            Block::Thinking { .. } | Block::RedactedThinking { .. } | Block::Opaque { .. } => None,
        }
    }
}

/// A JSON value the proxy carries without looking inside (a tool's input schema, a response
/// format's schema): kept as the client's text, never rebuilt.
pub type RawJson = Box<RawValue>;
