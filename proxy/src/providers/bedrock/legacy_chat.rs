//! `POST /v1/chat/completions` request types: typed where the proxy needs to look, with
//! every other field kept verbatim so it passes through to OpenAI-compatible targets.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A chat completion request as the client sent it.
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
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Everything else (temperature, response_format, seed, …), passed through untouched.
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

    /// Bytes of text and data in the prompt: the basis of the prompt-size estimate (bytes / 4).
    pub fn prompt_bytes(&self) -> usize {
        self.messages.iter().map(Message::content_bytes).sum()
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

/// A request rule that was broken: which parameter, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    pub param: String,
    pub message: String,
}

impl InvalidField {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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
    fn content_bytes(&self) -> usize {
        let content = self.content.as_ref().map_or(0, Content::bytes);
        let calls = self.tool_calls.as_ref().map_or(0, |calls| {
            calls
                .iter()
                .map(|c| c.function.name.len() + c.function.arguments.len())
                .sum()
        });
        content + calls
    }

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

impl Content {
    fn bytes(&self) -> usize {
        match self {
            Content::Text(text) => text.len(),
            Content::Parts(parts) => parts.iter().map(ContentPart::bytes).sum(),
        }
    }
}

/// One part of multi-part content (`text`, `image_url`, `input_audio`, `file`, …).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContentPart {
    fn bytes(&self) -> usize {
        let text = self.text.as_ref().map_or(0, String::len);
        let image = self.image_url.as_ref().map_or(0, |i| i.url.len());
        text + image
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ImageUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_kind() -> String {
    "function".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionCall {
    pub name: String,
    /// A JSON-encoded string, not an object; the model may emit invalid JSON.
    pub arguments: String,
}

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
            "temperature": 0.2, "response_format": {"type": "json_object"}, "seed": 7
        });
        let back = serde_json::to_value(parse(body.clone())).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn tool_round_trip_keeps_ids_and_arguments() {
        let body = json!({"model": "m", "messages": [
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]});
        let request = parse(body.clone());
        request.validate().unwrap();
        let mut back = serde_json::to_value(request).unwrap();
        // `content: null` is dropped on the way out, which OpenAI treats the same.
        back["messages"][0]["content"] = Value::Null;
        assert_eq!(back, body);
    }

    #[test]
    fn multi_part_content_counts_image_bytes() {
        let request = parse(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "abcd"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]}]}),
        );
        assert_eq!(
            request.prompt_bytes(),
            4 + "data:image/png;base64,AAAA".len()
        );
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
