//! The Anthropic Messages request on the wire (`POST /v1/messages`, its `count_tokens` twin,
//! and the body the proxy sends to Anthropic-format upstreams): typed where the model reads
//! it, every other member kept in `extra`, blocks and tools of unknown types kept as their
//! raw JSON, so nothing the client wrote is dropped.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::model::CacheTtl;

/// A Messages request. `max_tokens` is required by [`MessagesRequest::validate`] but absent
/// from count_tokens bodies, hence optional here.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MessagesRequest {
    /// Empty only in a Bedrock InvokeModel body, whose model is in the URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    pub messages: Vec<InputMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// `auto` or `standard_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Bedrock InvokeModel bodies only (`bedrock-2023-05-31`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<String>,
    /// Bedrock InvokeModel bodies only: the `anthropic-beta` flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_beta: Option<Vec<String>>,
    /// Everything else (`output_config`, top-level `cache_control`, `container`,
    /// `context_management`, `mcp_servers`, …), carried untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessagesRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

/// Who speaks a message. Anthropic has no system role: instructions go in `system`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InputMessage {
    pub role: Role,
    pub content: Content,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Message content: a plain string or a list of blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl Content {
    pub fn is_empty(&self) -> bool {
        match self {
            Content::Text(text) => text.is_empty(),
            Content::Blocks(blocks) => blocks.is_empty(),
        }
    }
}

/// `system`: a string, or text blocks (each may carry a cache marker).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<SystemBlock>),
}

/// The two shapes of `content` and `system`.
enum TextOrList<T> {
    Text(String),
    List(Vec<T>),
}

/// A string, or a list whose items parse as `T`; an item's error names its position (serde's
/// untagged enums would hide it behind "did not match any variant").
fn text_or_list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    deserializer: D,
) -> Result<TextOrList<T>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => Ok(TextOrList::Text(text)),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                serde_json::from_value(item).map_err(|e| D::Error::custom(format!("[{i}]: {e}")))
            })
            .collect::<Result<Vec<T>, _>>()
            .map(TextOrList::List),
        _ => Err(D::Error::custom("expected a string or an array of blocks")),
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match text_or_list(deserializer)? {
            TextOrList::Text(text) => Content::Text(text),
            TextOrList::List(blocks) => Content::Blocks(blocks),
        })
    }
}

impl<'de> Deserialize<'de> for System {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match text_or_list(deserializer)? {
            TextOrList::Text(text) => System::Text(text),
            TextOrList::List(blocks) => System::Blocks(blocks),
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SystemBlock {
    /// Always `text` (checked by validation).
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `cache_control: {"type": "ephemeral", "ttl"?: "5m" | "1h"}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CacheControl {
    #[serde(rename = "type")]
    pub kind: CacheKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<CacheTtl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    Ephemeral,
}

/// `metadata: {"user_id": string | null}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One content block, in a request message, a tool result or an answer. A block of a type
/// this proxy does not know (server-tool blocks, `search_result`, `container_upload`, …) is
/// kept as `Other` with its JSON; a known type with broken fields is a parse error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text(TextBlock),
    Image(ImageBlock),
    Document(DocumentBlock),
    ToolUse(ToolUseBlock),
    ToolResult(ToolResultBlock),
    Thinking(ThinkingBlock),
    RedactedThinking(RedactedThinkingBlock),
    #[serde(untagged)]
    Other(Value),
}

impl<'de> Deserialize<'de> for ContentBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fn typed<T: serde::de::DeserializeOwned, E: serde::de::Error>(
            fields: Map<String, Value>,
        ) -> Result<T, E> {
            serde_json::from_value(Value::Object(fields)).map_err(E::custom)
        }
        let Value::Object(mut fields) = Value::deserialize(deserializer)? else {
            return Err(D::Error::custom("a content block must be an object"));
        };
        let kind = match fields.get("type").and_then(Value::as_str) {
            Some(
                kind @ ("text" | "image" | "document" | "tool_use" | "tool_result" | "thinking"
                | "redacted_thinking"),
            ) => kind.to_owned(),
            _ => return Ok(ContentBlock::Other(Value::Object(fields))),
        };
        // Moved, not cloned (blocks may hold megabytes of base64); the order of the other
        // members is kept.
        fields.shift_remove("type");
        Ok(match kind.as_str() {
            "text" => ContentBlock::Text(typed(fields)?),
            "image" => ContentBlock::Image(typed(fields)?),
            "document" => ContentBlock::Document(typed(fields)?),
            "tool_use" => ContentBlock::ToolUse(typed(fields)?),
            "tool_result" => ContentBlock::ToolResult(typed(fields)?),
            "thinking" => ContentBlock::Thinking(typed(fields)?),
            _ => ContentBlock::RedactedThinking(typed(fields)?),
        })
    }
}

impl ContentBlock {
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text(TextBlock {
            text: text.into(),
            cache_control: None,
            extra: Map::new(),
        })
    }

    /// The block's `type` as written on the wire.
    pub fn type_name(&self) -> &str {
        match self {
            ContentBlock::Text(_) => "text",
            ContentBlock::Image(_) => "image",
            ContentBlock::Document(_) => "document",
            ContentBlock::ToolUse(_) => "tool_use",
            ContentBlock::ToolResult(_) => "tool_result",
            ContentBlock::Thinking(_) => "thinking",
            ContentBlock::RedactedThinking(_) => "redacted_thinking",
            ContentBlock::Other(value) => value.get("type").and_then(Value::as_str).unwrap_or("?"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TextBlock {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// `citations` and newer members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ImageBlock {
    pub source: MediaSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DocumentBlock {
    pub source: MediaSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// `context`, `citations` and newer members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where an image's or a document's bytes are. Sources of other types (`file`, a document's
/// `content`) are kept as their JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MediaSource {
    Base64 {
        media_type: String,
        data: String,
    },
    /// Plain-text documents.
    Text {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    #[serde(untagged)]
    Other(Value),
}

impl<'de> Deserialize<'de> for MediaSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Value::Object(mut source) = value else {
            return Err(D::Error::custom("a source must be an object"));
        };
        let (kind, members): (&str, &[&str]) = match source.get("type").and_then(Value::as_str) {
            Some("base64") => ("base64", &["type", "media_type", "data"]),
            Some("text") => ("text", &["type", "media_type", "data"]),
            Some("url") => ("url", &["type", "url"]),
            _ => return Ok(MediaSource::Other(Value::Object(source))),
        };
        // A known type with members beyond these is kept whole rather than losing them.
        if !source.keys().all(|k| members.contains(&k.as_str())) {
            return Ok(MediaSource::Other(Value::Object(source)));
        }
        // Moved out, not copied: `data` may be megabytes of base64.
        let mut take = |name: &str| match source.shift_remove(name) {
            Some(Value::String(text)) => Ok(text),
            Some(_) => Err(D::Error::custom(format!("`{name}` must be a string"))),
            None => Err(D::Error::custom(format!("missing field `{name}`"))),
        };
        Ok(match kind {
            "url" => MediaSource::Url { url: take("url")? },
            "text" => MediaSource::Text {
                media_type: take("media_type")?,
                data: take("data")?,
            },
            _ => MediaSource::Base64 {
                media_type: take("media_type")?,
                data: take("data")?,
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ToolUseBlock {
    pub id: String,
    pub name: String,
    /// The call's arguments, an object (key order kept).
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// `caller` and newer members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ToolResultBlock {
    pub tool_use_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ThinkingBlock {
    pub thinking: String,
    /// Required when a client replays the block; answers always carry one (maybe empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RedactedThinkingBlock {
    pub data: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool the model may call: a client (custom) tool, or a server / versioned tool
/// (`web_search_20250305`, `bash_20250124`, …) kept as the client wrote it. Parse requests
/// from text (`serde_json::from_slice`), not from a `Value`: the schema is a `RawValue`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Tool {
    Custom(CustomTool),
    Other(Value),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CustomTool {
    /// Absent or `custom`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The input's JSON Schema, kept as the client's text.
    pub input_schema: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// `defer_loading`, `input_examples`, `eager_input_streaming`, … .
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read as text first: the schema is a `RawValue`, which only parses from text.
        let raw = <Box<RawValue>>::deserialize(deserializer)?;
        #[derive(Deserialize)]
        struct Kind<'a> {
            #[serde(rename = "type", default, borrow)]
            kind: Option<std::borrow::Cow<'a, str>>,
        }
        let kind: Kind<'_> = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        match kind.kind.as_deref() {
            None | Some("custom") => serde_json::from_str(raw.get())
                .map(Tool::Custom)
                .map_err(D::Error::custom),
            Some(_) => serde_json::from_str(raw.get())
                .map(Tool::Other)
                .map_err(D::Error::custom),
        }
    }
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// Some tool must be called.
    Any {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    Tool {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    None {
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

/// `thinking`: extended thinking on with a budget, off, or adaptive (the model decides).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Thinking {
    Enabled {
        budget_tokens: u32,
        /// `display` (`summarized` / `omitted`) and newer members.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    Disabled {
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    Adaptive {
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: &Value) -> MessagesRequest {
        serde_json::from_str(&value.to_string()).unwrap()
    }

    #[test]
    fn every_block_type_and_unknown_members_survive_a_round_trip() {
        let body = json!({
            "model": "claude", "max_tokens": 1024,
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}},
                    {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
                        "title": "t", "citations": {"enabled": true}},
                    {"type": "search_result", "source": "s", "title": "r", "content": []}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "EqQB"},
                    {"type": "redacted_thinking", "data": "EmwK"},
                    {"type": "tool_use", "id": "toolu_01", "name": "f", "input": {"b": 1, "a": [2]}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "is_error": true,
                        "content": [{"type": "text", "text": "boom"}]}], "x_msg": 1}],
            "tools": [
                {"name": "f", "input_schema": {"type": "object", "properties": {}}, "cache_control": {"type": "ephemeral"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "metadata": {"user_id": "u-1"}, "stop_sequences": ["END"], "stream": true,
            "temperature": 1.0, "top_k": 5, "service_tier": "auto",
            "output_config": {"effort": "high"}, "context_management": {"edits": []}
        });
        let request = parse(&body);
        let blocks = match &request.messages[0].content {
            Content::Blocks(blocks) => blocks,
            Content::Text(_) => panic!("blocks expected"),
        };
        assert!(
            matches!(&blocks[3], ContentBlock::Image(ImageBlock { source: MediaSource::Other(v), .. }) if v["file_id"] == "file_1")
        );
        assert!(matches!(&blocks[5], ContentBlock::Other(v) if v["type"] == "search_result"));
        assert!(matches!(
            request.tools.as_deref(),
            Some([Tool::Custom(_), Tool::Other(_)])
        ));
        assert!(request.extra.contains_key("output_config"));
        assert_eq!(serde_json::to_value(&request).unwrap(), body);
    }

    #[test]
    fn a_known_block_with_broken_fields_is_an_error_naming_it() {
        let body = json!({"model": "m", "max_tokens": 1, "messages": [
            {"role": "user", "content": [{"type": "tool_result"}]}]});
        let err = serde_json::from_str::<MessagesRequest>(&body.to_string()).unwrap_err();
        assert!(err.to_string().contains("tool_use_id"), "{err}");
        let role = json!({"model": "m", "messages": [{"role": "system", "content": "x"}]});
        assert!(serde_json::from_str::<MessagesRequest>(&role.to_string()).is_err());
    }

    #[test]
    fn sources_are_typed_only_when_nothing_would_be_lost() {
        let source = |v: Value| serde_json::from_value::<MediaSource>(v);
        assert_eq!(
            source(json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})).unwrap(),
            MediaSource::Base64 {
                media_type: "image/png".to_owned(),
                data: "AAAA".to_owned()
            }
        );
        assert!(matches!(
            source(json!({"type": "url", "url": "https://x", "future": 1})).unwrap(),
            MediaSource::Other(_)
        ));
        let err = source(json!({"type": "base64", "media_type": "image/png"})).unwrap_err();
        assert!(err.to_string().contains("`data`"), "{err}");
        assert!(source(json!({"type": "url", "url": 5})).is_err());
        assert!(source(json!("https://x")).is_err());
    }

    #[test]
    fn errors_name_their_path_through_the_handlers_parser() {
        let body = json!({"model": "m", "max_tokens": 1, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "ok"}, {"type": "image", "source": {"type": "base64"}}]}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}]})
        .to_string();
        let mut deserializer = serde_json::Deserializer::from_str(&body);
        let err =
            serde_path_to_error::deserialize::<_, MessagesRequest>(&mut deserializer).unwrap_err();
        assert_eq!(err.path().to_string(), "messages[0].content");
        assert!(err.to_string().contains("[1]"), "{err}");
        // And a good body parses the same way, schema text and all.
        let good = body.replace(r#"{"type":"base64"}"#, r#"{"type":"url","url":"u"}"#);
        let mut deserializer = serde_json::Deserializer::from_str(&good);
        let request: MessagesRequest = serde_path_to_error::deserialize(&mut deserializer).unwrap();
        let Some([Tool::Custom(tool)]) = request.tools.as_deref() else {
            panic!("{:?}", request.tools)
        };
        assert_eq!(tool.input_schema.get(), r#"{"type":"object"}"#);
    }

    #[test]
    fn string_forms_and_count_tokens_bodies_parse() {
        let request = parse(&json!({"model": "m", "system": "sys",
            "messages": [{"role": "user", "content": "hi"}],
            "tool_choice": {"type": "tool", "name": "f"}, "thinking": {"type": "adaptive"}}));
        assert!(request.max_tokens.is_none());
        assert!(matches!(request.system, Some(System::Text(ref s)) if s == "sys"));
        assert!(matches!(request.messages[0].content, Content::Text(ref s) if s == "hi"));
        assert!(
            matches!(request.tool_choice, Some(ToolChoice::Tool { ref name, .. }) if name == "f")
        );
        assert!(matches!(request.thinking, Some(Thinking::Adaptive { .. })));
    }

    #[test]
    fn a_bedrock_body_has_no_model() {
        let mut request = parse(&json!({"model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]}));
        request.model.clear();
        request.anthropic_version = Some("bedrock-2023-05-31".to_owned());
        let body = serde_json::to_value(&request).unwrap();
        assert_eq!(
            body,
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
                "anthropic_version": "bedrock-2023-05-31"})
        );
    }
}
