//! The OpenAI Chat Completions request on the wire (`POST /v1/chat/completions`), as clients
//! send it and as the proxy sends it to OpenAI-format upstreams: typed where the model reads
//! it, every other member kept in `extra` so nothing is dropped.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::api::InvalidField;

/// A chat completion request.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// `minimal`, `low`, `medium`, `high` (newer values are kept as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Everything else (logprobs, logit_bias, metadata, service_tier, …), carried untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the client itself asked for the usage chunk of a stream.
    pub fn client_wants_stream_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// The completion budget the client set (`max_completion_tokens`, else `max_tokens`).
    pub fn max_output_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Checks OpenAI's own request rules that serde cannot express, so a bad request fails
    /// here with a clear message instead of at the upstream.
    pub fn validate(&self) -> Result<(), InvalidField> {
        if self.model.is_empty() {
            return Err(InvalidField::new("model", "`model` must not be empty"));
        }
        if self.messages.is_empty() {
            return Err(InvalidField::new(
                "messages",
                "`messages` must contain at least one message",
            ));
        }
        if self.stream_options.is_some() && !self.is_stream() {
            return Err(InvalidField::new(
                "stream_options",
                "`stream_options` is only allowed when `stream` is true",
            ));
        }
        if self.n == Some(0) {
            return Err(InvalidField::new("n", "`n` must be at least 1"));
        }
        for (i, message) in self.messages.iter().enumerate() {
            message.validate(i)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `stop`: one sequence or several.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    pub role: Role,
    /// `null` is allowed for assistant messages that carry tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    fn validate(&self, index: usize) -> Result<(), InvalidField> {
        let param = || format!("messages[{index}]");
        match self.role {
            Role::Tool if self.tool_call_id.is_none() => Err(InvalidField::new(
                format!("messages[{index}].tool_call_id"),
                format!("messages[{index}]: a `tool` message must have `tool_call_id`"),
            )),
            Role::Assistant if self.content.is_none() && self.tool_calls.is_none() => {
                Err(InvalidField::new(
                    param(),
                    format!(
                        "messages[{index}]: an assistant message needs `content` or `tool_calls`"
                    ),
                ))
            }
            Role::System | Role::Developer | Role::User | Role::Tool if self.content.is_none() => {
                Err(InvalidField::new(
                    format!("messages[{index}].content"),
                    format!("messages[{index}]: `content` is required"),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of multi-part content (`text`, `image_url`, `file`, `input_audio`, `refusal`, …).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FilePart>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ImageUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A `file` part: inline data (a `data:` URL) or an uploaded file's id.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct FilePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: FunctionCall,
}

pub(crate) fn function_kind() -> String {
    "function".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionCall {
    pub name: String,
    /// A JSON-encoded string, not an object; the model may emit invalid JSON.
    pub arguments: String,
}

impl FunctionCall {
    /// The model's block for a call of this function under the client-visible `id`.
    pub fn into_block(self, id: String) -> crate::model::Block {
        crate::model::Block::ToolCall {
            id,
            name: self.name,
            arguments: self.arguments,
            cache: None,
        }
    }
}

/// A tool the model may call. Only `function` tools have a place in the model; others
/// (`custom`, …) travel in `extra` (see the decoder).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDef>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionDef {
    pub name: String,
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

/// `tool_choice`: a mode, or a named function.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `auto`, `none`, `required`.
    Mode(String),
    Named(NamedToolChoice),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<NamedFunction>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct NamedFunction {
    pub name: String,
}

/// `response_format`: `text`, `json_object`, or `json_schema` with its schema.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchema>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JsonSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> ChatRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let body = json!({
            "model": "gpt", "messages": [{"role": "user", "content": "hi", "x_custom": 1}],
            "temperature": 0.2, "response_format": {"type": "json_object"}, "seed": 7,
            "logit_bias": {"50256": -100}
        });
        let back = serde_json::to_value(parse(body.clone())).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn tool_round_trip_keeps_ids_and_arguments() {
        let body = json!({"model": "m", "messages": [
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"}],
            "tools": [{"type": "function", "function": {"name": "f",
                "parameters": {"type": "object"}, "strict": true}}]});
        let request: ChatRequest = serde_json::from_str(&body.to_string()).unwrap();
        request.validate().unwrap();
        let mut back = serde_json::to_value(request).unwrap();
        // `content: null` is dropped on the way out, which OpenAI treats the same.
        back["messages"][0]["content"] = Value::Null;
        assert_eq!(back, body);
    }

    #[test]
    fn validation_names_the_parameter() {
        let empty = parse(json!({"model": "m", "messages": []}));
        assert_eq!(empty.validate().unwrap_err().param, "messages");
        let options = parse(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "stream_options": {"include_usage": true}}),
        );
        assert_eq!(options.validate().unwrap_err().param, "stream_options");
        let tool = parse(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
        assert_eq!(
            tool.validate().unwrap_err().param,
            "messages[0].tool_call_id"
        );
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let request = parse(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 10, "max_completion_tokens": 20}),
        );
        assert_eq!(request.max_output_tokens(), Some(20));
    }
}
