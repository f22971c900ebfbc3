//! The OpenAI Responses request on the wire (`POST /v1/responses`, and the body forwarded to
//! `responses: native` upstreams): typed where the proxy reads it, every other member kept in
//! `extra`, input items of types the proxy does not model kept as their JSON, so nothing the
//! client wrote is dropped.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A Responses request.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResponsesRequest {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Whether the proxy keeps the response for GET and `previous_response_id` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Everything else (`truncation`, `service_tier`, `prompt_cache_key`, `safety_identifier`,
    /// `stream_options`, `background`, …), carried untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponsesRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// `store` defaults to true.
    pub fn stores(&self) -> bool {
        self.store.unwrap_or(true)
    }

    /// This turn's input as items (a string is one user message).
    pub fn input_items(&self) -> Vec<InputItem> {
        match &self.input {
            None => Vec::new(),
            Some(Input::Text(text)) => vec![InputItem::Message(MessageItem::user_text(text))],
            Some(Input::Items(items)) => items.clone(),
        }
    }
}

/// `input`: one user message as a string, or items.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

/// One input (or stored output) item, discriminated by `type`; a `{role, content}` object
/// without `type` is a message ("easy" input message).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum InputItem {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
    Reasoning(ReasoningItem),
    ItemReference(ItemReference),
    /// An item of a type the proxy does not model (built-in tool calls and their outputs,
    /// `custom_tool_call`, `compaction`, …), kept as the client's JSON.
    Other(Value),
}

impl<'de> Deserialize<'de> for InputItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let kind = match value.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            None if value.get("role").is_some() => "message".to_owned(),
            Some(_) => return Err(D::Error::custom("`type` must be a string")),
            None => return Err(D::Error::custom("an input item needs `type` (or `role`)")),
        };
        let typed = |e: serde_json::Error| D::Error::custom(format!("a `{kind}` item: {e}"));
        Ok(match kind.as_str() {
            "message" => InputItem::Message(serde_json::from_value(value).map_err(typed)?),
            "function_call" => {
                InputItem::FunctionCall(serde_json::from_value(value).map_err(typed)?)
            }
            "function_call_output" => {
                InputItem::FunctionCallOutput(serde_json::from_value(value).map_err(typed)?)
            }
            "reasoning" => InputItem::Reasoning(serde_json::from_value(value).map_err(typed)?),
            "item_reference" => {
                InputItem::ItemReference(serde_json::from_value(value).map_err(typed)?)
            }
            _ => InputItem::Other(value),
        })
    }
}

impl InputItem {
    /// The item's `type` as the client reads it.
    pub fn kind(&self) -> &str {
        match self {
            InputItem::Message(_) => "message",
            InputItem::FunctionCall(_) => "function_call",
            InputItem::FunctionCallOutput(_) => "function_call_output",
            InputItem::Reasoning(_) => "reasoning",
            InputItem::ItemReference(_) => "item_reference",
            InputItem::Other(value) => value.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The item's id, if it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            InputItem::Message(item) => item.id.as_deref(),
            InputItem::FunctionCall(item) => item.id.as_deref(),
            InputItem::FunctionCallOutput(item) => item.id.as_deref(),
            InputItem::Reasoning(item) => item.id.as_deref(),
            InputItem::ItemReference(item) => Some(&item.id),
            InputItem::Other(value) => value.get("id").and_then(Value::as_str),
        }
    }

    /// Gives the item `id` (and its `type`) when it has none, as stored items need both, and
    /// a message's string content as one text part, as OpenAI lists stored input items.
    pub fn ensure_id(&mut self, id: impl FnOnce(&str) -> String) {
        match self {
            InputItem::Message(item) => {
                item.kind.get_or_insert_with(|| "message".to_owned());
                item.id.get_or_insert_with(|| id("msg"));
                item.content_as_parts();
            }
            InputItem::FunctionCall(item) => {
                item.id.get_or_insert_with(|| id("fc"));
            }
            InputItem::FunctionCallOutput(item) => {
                item.id.get_or_insert_with(|| id("fco"));
            }
            InputItem::Reasoning(item) => {
                item.id.get_or_insert_with(|| id("rs"));
            }
            InputItem::ItemReference(_) => {}
            InputItem::Other(value) => {
                if let Some(object) = value.as_object_mut() {
                    if !object.contains_key("id") {
                        object.insert("id".to_owned(), Value::String(id("item")));
                    }
                }
            }
        }
    }
}

/// A message item: input (`user`, `system`, `developer`) or an assistant's output replayed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct MessageItem {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub role: MessageRole,
    pub content: MessageContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessageItem {
    /// String content as one text part (`input_text`, or `output_text` for the assistant):
    /// the shape OpenAI keeps and lists input items in (`input_items` answers and the SDK
    /// read `content` as parts, docs/http-api.md#stored-responses).
    fn content_as_parts(&mut self) {
        if let MessageContent::Text(text) = &mut self.content {
            let text = std::mem::take(text);
            let part = match self.role {
                MessageRole::Assistant => ContentPart::output_text(text),
                MessageRole::User | MessageRole::System | MessageRole::Developer => ContentPart {
                    kind: "input_text".to_owned(),
                    text: Some(text),
                    image_url: None,
                    detail: None,
                    refusal: None,
                    extra: Map::new(),
                },
            };
            self.content = MessageContent::Parts(vec![part]);
        }
    }

    pub fn user_text(text: &str) -> Self {
        Self {
            kind: None,
            id: None,
            role: MessageRole::User,
            content: MessageContent::Text(text.to_owned()),
            status: None,
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
    System,
    Developer,
}

/// A message's content: a string or parts.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One content part: `input_text`, `input_image`, `input_file`, `output_text`, `refusal`, or
/// another type kept with its members in `extra`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContentPart {
    /// An assistant's `output_text` part, as answers carry it.
    pub fn output_text(text: impl Into<String>) -> Self {
        let mut extra = Map::new();
        extra.insert("annotations".to_owned(), Value::Array(Vec::new()));
        Self {
            kind: "output_text".to_owned(),
            text: Some(text.into()),
            image_url: None,
            detail: None,
            refusal: None,
            extra,
        }
    }
}

/// A call the model made (replayed by the client, or in an answer).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FunctionCallItem {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub name: String,
    pub arguments: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool's result, sent back by the client.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FunctionCallOutputItem {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    pub output: MessageContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A reasoning item: summary text, raw reasoning text, and the provider's opaque
/// `encrypted_content`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ReasoningItem {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub summary: Vec<TextPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<TextPart>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type": "summary_text" | "reasoning_text", "text"}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct TextPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

/// A pointer to a stored item.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ItemReference {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub id: String,
}

/// A tool: `function` (typed) or a built-in one (`web_search`, `file_search`, …), whose
/// members stay in `extra`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The arguments' JSON Schema, kept as the client's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tool_choice`: a mode (`auto`, `none`, `required`) or an object (`{"type": "function",
/// "name"}`, `allowed_tools`, built-in tool selectors).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ToolChoice {
    Mode(String),
    Object(ToolChoiceObject),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ToolChoiceObject {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text`: the answer's format and verbosity.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TextConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text.format`: `text`, `json_object`, or `json_schema` (flat: `name`, `schema`,
/// `description`, `strict` beside `type`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TextFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `reasoning`: effort and summary.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ReasoningConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_of_every_kind_survive_a_round_trip() {
        let body = json!({"model": "m", "input": [
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "see"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]},
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}],
             "encrypted_content": "gAAA"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
             "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"}],
            "store": false, "truncation": "auto", "text": {"format": {"type": "json_schema",
            "name": "x", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"}});
        let request: ResponsesRequest = serde_json::from_str(&body.to_string()).unwrap();
        let Some(Input::Items(items)) = &request.input else {
            panic!("items")
        };
        let kinds: Vec<&str> = items.iter().map(InputItem::kind).collect();
        assert_eq!(
            kinds,
            [
                "message",
                "message",
                "message",
                "reasoning",
                "function_call",
                "function_call_output",
                "web_search_call"
            ]
        );
        assert!(matches!(items[6], InputItem::Other(_)));
        assert_eq!(serde_json::to_value(&request).unwrap(), body);
    }

    #[test]
    fn a_bad_item_is_named() {
        let body = r#"{"model":"m","input":[{"type":"function_call","name":"f"}]}"#;
        let mut de = serde_json::Deserializer::from_str(body);
        let error = serde_path_to_error::deserialize::<_, ResponsesRequest>(&mut de).unwrap_err();
        assert_eq!(error.path().to_string(), "input");
        let body = r#"{"model":"m","input":[{"content":"x"}]}"#;
        assert!(serde_json::from_str::<ResponsesRequest>(body).is_err());
    }

    #[test]
    fn ids_are_given_to_items_without_one() {
        let mut item = InputItem::Message(MessageItem::user_text("hi"));
        item.ensure_id(|prefix| format!("{prefix}_new"));
        assert_eq!(item.id(), Some("msg_new"));
        let value = serde_json::to_value(&item).unwrap();
        assert_eq!(value["type"], "message");
        assert_eq!(
            value["content"],
            serde_json::json!([{"type": "input_text", "text": "hi"}])
        );
        item.ensure_id(|_| unreachable!());
        let mut said = InputItem::Message(MessageItem {
            role: MessageRole::Assistant,
            ..MessageItem::user_text("said")
        });
        said.ensure_id(|prefix| format!("{prefix}_new"));
        let value = serde_json::to_value(&said).unwrap();
        assert_eq!(value["content"][0]["type"], "output_text");
        assert_eq!(value["content"][0]["text"], "said");
    }
}
