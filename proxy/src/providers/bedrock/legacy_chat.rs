//! Transitional: the Chat request shape Bedrock's Converse builder ([`super::converse`]) reads,
//! made from the proxy's model by the Chat encoder ([`from_model`]). It goes away when
//! Bedrock translates from [`crate::model`] directly.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::providers::TranslateError;

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

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
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

/// The Chat request of `request` in this shape, naming the client's model (the Converse
/// translation reports it back).
pub fn from_model(request: &crate::model::Request) -> Result<ChatRequest, TranslateError> {
    let wire = crate::dialects::chat::encode_request(request, &request.model).map_err(|e| {
        TranslateError::Refused {
            param: e.param,
            message: e.message,
        }
    })?;
    let value =
        serde_json::to_value(wire).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::chat::{decode_request, ChatRequest as WireRequest};
    use serde_json::json;

    fn through_the_model(body: Value) -> Value {
        let wire: WireRequest = serde_json::from_str(&body.to_string()).unwrap();
        wire.validate().unwrap();
        let request = decode_request(wire).unwrap();
        serde_json::to_value(from_model(&request).unwrap()).unwrap()
    }

    #[test]
    fn what_converse_reads_survives_the_model() {
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"}],
            "n": 2, "logprobs": true, "temperature": 0.5, "stop": "END",
            "max_tokens": 30, "stream": true, "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                "parameters": {"type": "object"}}}], "tool_choice": "required",
            "response_format": {"type": "json_object"}});
        let back = through_the_model(body);
        assert_eq!(
            back["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(
            back["messages"][1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        assert_eq!(back["messages"][2]["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            back["messages"][3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "ok"})
        );
        assert_eq!(
            (back["n"].as_u64(), back["logprobs"].as_bool()),
            (Some(2), Some(true))
        );
        assert_eq!(back["temperature"], 0.5);
        assert_eq!(back["stop"], json!(["END"]));
        assert_eq!(back["max_completion_tokens"], 30);
        assert_eq!(back["stream_options"]["include_usage"], true);
        assert_eq!(back["tools"][0]["function"]["description"], "d");
        assert_eq!(
            back["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(back["tool_choice"], "required");
        assert_eq!(back["response_format"]["type"], "json_object");
    }

    #[test]
    fn what_the_model_cannot_type_reaches_converse_as_sent() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "custom", "custom": {"name": "c"}}],
            "response_format": {"type": "xml"}, "tool_choice": {"type": "allowed_tools"}});
        let back = through_the_model(body.clone());
        assert_eq!(back["tools"], body["tools"]);
        assert_eq!(back["response_format"], body["response_format"]);
        assert_eq!(back["tool_choice"], body["tool_choice"]);
    }
}
