//! Minimal OpenAI-style validation of a chat request and the plan of what to answer.

use serde_json::{Map, Value};

use super::errors::ApiError;
use super::tokens::{content_text, prompt_tokens};
use super::tools::{plan_tool_call, PlannedCall};

/// What kind of answer a valid request gets.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reply {
    /// The configured greeting ("Hello from <name> tok4 …").
    Greeting,
    /// "The tool said: <content>", after a `tool` message, so round trips are testable.
    ToolResult(String),
    /// One call to a function from `tools`.
    ToolCall(PlannedCall),
    /// This exact text, e.g. the sample JSON a structured-output request asks for.
    Text(String),
}

/// A validated chat request, reduced to what shapes the answer.
#[derive(Clone, Debug)]
pub(crate) struct ChatPlan {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub prompt_tokens: u64,
    /// `max_completion_tokens`, else the deprecated `max_tokens`.
    pub max_tokens: Option<u64>,
    pub reply: Reply,
}

/// Parses a body as a JSON object, with OpenAI's wording when it is not one.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::unparseable(
            "The request body must be a JSON object.",
        )),
        Err(err) => Err(ApiError::unparseable(format!(
            "We could not parse the JSON body of your request. ({err})"
        ))),
    }
}

/// `model`, required and a string (chat and embeddings alike).
pub(crate) fn required_model(request: &Map<String, Value>) -> Result<String, ApiError> {
    match request.get("model") {
        Some(Value::String(model)) => Ok(model.clone()),
        None | Some(Value::Null) => Err(ApiError::invalid_request(
            "you must provide a model parameter",
            "model",
        )),
        Some(_) => Err(ApiError::invalid_request(
            "'model' must be a string",
            "model",
        )),
    }
}

pub(crate) fn parse_chat(body: &[u8]) -> Result<ChatPlan, ApiError> {
    let request = parse_object(body)?;
    let model = required_model(&request)?;
    let messages = match request.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid_request(
                "'messages' must contain at least one message",
                "messages",
            ))
        }
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_request(
                "Missing required parameter: 'messages'",
                "messages",
            ))
        }
        Some(_) => {
            return Err(ApiError::invalid_request(
                "'messages' must be an array",
                "messages",
            ))
        }
    };
    let mut last_role = "";
    for (index, message) in messages.iter().enumerate() {
        last_role = message.get("role").and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid_request(
                format!("messages[{index}] must be an object with a string 'role'"),
                "messages",
            )
        })?;
    }
    let stream = match request.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => {
            return Err(ApiError::invalid_request(
                "'stream' must be a boolean",
                "stream",
            ))
        }
    };
    let stream_options = request
        .get("stream_options")
        .filter(|value| !value.is_null());
    if stream_options.is_some() && !stream {
        return Err(ApiError::invalid_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        ));
    }
    let include_usage = stream_options
        .and_then(|options| options.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max_tokens = match positive_int(&request, "max_completion_tokens")? {
        Some(max) => Some(max),
        None => positive_int(&request, "max_tokens")?,
    };
    let reply = if last_role == "tool" {
        let content = messages
            .last()
            .and_then(|m| m.get("content"))
            .unwrap_or(&Value::Null);
        Reply::ToolResult(content_text(content))
    } else {
        match plan_tool_call(&request, last_role)? {
            Some(call) => Reply::ToolCall(call),
            None => Reply::Greeting,
        }
    };
    Ok(ChatPlan {
        model,
        stream,
        include_usage,
        prompt_tokens: prompt_tokens(messages),
        max_tokens,
        reply,
    })
}

fn positive_int(
    request: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<u64>, ApiError> {
    match request.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ApiError::invalid_request(
                format!("'{field}' must be an integer of at least 1"),
                field,
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param_of(body: Value) -> Option<&'static str> {
        parse_chat(body.to_string().as_bytes())
            .err()
            .and_then(|e| e.param)
    }

    #[test]
    fn rejects_what_openai_rejects() {
        assert_eq!(
            param_of(json!({"messages": [{"role": "user", "content": "x"}]})),
            Some("model")
        );
        assert_eq!(
            param_of(json!({"model": "m", "messages": []})),
            Some("messages")
        );
        assert_eq!(
            param_of(json!({"model": "m", "messages": [1]})),
            Some("messages")
        );
        let no_stream = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                               "stream_options": {"include_usage": true}});
        assert_eq!(param_of(no_stream), Some("stream_options"));
        assert!(parse_chat(b"[1]").is_err());
        assert!(parse_chat(b"{nope").is_err());
    }

    #[test]
    fn reads_stream_usage_and_caps() -> anyhow::Result<()> {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                          "stream": true, "stream_options": {"include_usage": true},
                          "max_tokens": 3});
        let plan = parse_chat(body.to_string().as_bytes()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert!(plan.stream && plan.include_usage);
        assert_eq!(plan.max_tokens, Some(3));
        assert_eq!(plan.reply, Reply::Greeting);
        Ok(())
    }
}
