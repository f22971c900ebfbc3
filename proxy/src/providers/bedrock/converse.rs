//! OpenAI chat request → Bedrock Converse body (wire-formats §2.4).
//!
//! Every field Converse can express is mapped; fields it cannot are dropped when OpenAI's
//! semantics allow (sampling hints such as `seed` or penalties), or refused with
//! [`TranslateError::Refused`] naming the field, so a client never gets a silently different
//! answer (e.g. `n > 1` would return one choice instead of several).

pub mod answer;
pub mod chat_extra;
pub mod events;
pub mod ids;
pub mod media;
pub mod messages;
pub mod request;
#[cfg(test)]
mod test_support;
pub mod wire;

use base64::Engine;
use serde_json::{json, Map, Value};

use super::legacy_chat::{ChatRequest, Content, ContentPart, Message, Role};
use crate::providers::TranslateError;

/// A Converse body and what the answer's translation needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConverseRequest {
    pub body: Value,
    /// The tool injected for `response_format: json_schema`; its input becomes the content.
    pub json_tool: Option<String>,
}

fn refused(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::Refused {
        param: param.into(),
        message: message.into(),
    }
}

/// Builds the Converse body for `chat`. `additional` is the target's
/// `additional_model_request_fields`, passed through as is.
pub fn build(
    chat: &ChatRequest,
    additional: Option<&Value>,
) -> Result<ConverseRequest, TranslateError> {
    refuse_inexpressible(chat)?;
    let (system, mut messages) = convert_messages(&chat.messages)?;
    let mut body = Map::new();
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    if let Some(config) = inference_config(chat)? {
        body.insert("inferenceConfig".into(), config);
    }
    let json_tool = response_format_tool(chat)?;
    let history_has_tools = messages.iter().any(has_tool_blocks);
    if let Some(config) = tool_config(chat, json_tool.as_ref(), history_has_tools, &messages)? {
        body.insert("toolConfig".into(), config);
    }
    if json_tool.is_none() && is_json_object(chat) {
        // Converse has no JSON mode; an instruction is the documented fallback.
        let system = body
            .entry("system")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(blocks) = system {
            blocks
                .push(json!({"text": "Respond with a single valid JSON object and nothing else."}));
        }
    }
    if let Some(additional) = additional {
        body.insert("additionalModelRequestFields".into(), additional.clone());
    }
    ensure_starts_with_user(&mut messages);
    body.insert("messages".into(), Value::Array(messages));
    Ok(ConverseRequest {
        body: Value::Object(body),
        json_tool: json_tool.map(|(name, _)| name),
    })
}

/// The tool injected for `response_format: json_schema`, if the request has one.
pub fn json_tool_name(chat: &ChatRequest) -> Option<String> {
    response_format_tool(chat)
        .ok()
        .flatten()
        .map(|(name, _)| name)
}

fn refuse_inexpressible(chat: &ChatRequest) -> Result<(), TranslateError> {
    if chat.n.is_some_and(|n| n > 1) {
        return Err(refused(
            "n",
            "`n` greater than 1 is not supported by Bedrock models",
        ));
    }
    let truthy = |key: &str| {
        chat.extra
            .get(key)
            .is_some_and(|v| v.as_bool() == Some(true))
    };
    if truthy("logprobs") || chat.extra.get("top_logprobs").is_some_and(|v| !v.is_null()) {
        return Err(refused(
            "logprobs",
            "`logprobs` is not supported by Bedrock models",
        ));
    }
    if let Some(modalities) = chat.extra.get("modalities").and_then(Value::as_array) {
        if modalities.iter().any(|m| m.as_str() != Some("text")) {
            return Err(refused(
                "modalities",
                "Bedrock models answer with text only",
            ));
        }
    }
    if chat.extra.get("audio").is_some_and(|v| !v.is_null()) {
        return Err(refused(
            "audio",
            "audio output is not supported by Bedrock models",
        ));
    }
    for key in [
        "functions",
        "function_call",
        "prediction",
        "web_search_options",
    ] {
        if chat.extra.get(key).is_some_and(|v| !v.is_null()) {
            return Err(refused(
                key,
                format!("`{key}` is not supported by Bedrock models"),
            ));
        }
    }
    Ok(())
}

fn inference_config(chat: &ChatRequest) -> Result<Option<Value>, TranslateError> {
    let mut config = Map::new();
    if let Some(max) = chat.max_output_tokens() {
        config.insert("maxTokens".into(), json!(max));
    }
    let number = |key: &str| -> Result<Option<f64>, TranslateError> {
        match chat.extra.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| refused(key, format!("`{key}` must be a number"))),
        }
    };
    if let Some(t) = number("temperature")? {
        // Bedrock accepts 0–1; OpenAI's 1–2 only means "more random", so clamp.
        config.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = number("top_p")? {
        config.insert("topP".into(), json!(p));
    }
    let stops: Vec<Value> = match chat.extra.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(refused(
                "stop",
                "`stop` must be a string or an array of strings",
            ))
        }
    };
    let stops: Vec<Value> = stops
        .into_iter()
        .filter(|s| s.as_str().is_some_and(|s| !s.is_empty()))
        .collect();
    if !stops.is_empty() {
        config.insert("stopSequences".into(), Value::Array(stops));
    }
    Ok((!config.is_empty()).then_some(Value::Object(config)))
}

fn is_json_object(chat: &ChatRequest) -> bool {
    chat.extra
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        == Some("json_object")
}

/// `response_format: json_schema` → one tool named after the schema, forced, whose input is
/// the answer (the documented fallback where Converse has no structured output).
fn response_format_tool(chat: &ChatRequest) -> Result<Option<(String, Value)>, TranslateError> {
    let Some(format) = chat.extra.get("response_format").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") | Some("json_object") => Ok(None),
        Some("json_schema") => {
            let schema = format.get("json_schema").ok_or_else(|| {
                refused(
                    "response_format",
                    "`json_schema` is required for type json_schema",
                )
            })?;
            let name = schema
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| refused("response_format", "`json_schema.name` is required"))?;
            let mut spec = json!({
                "name": name,
                "description": schema.get("description").and_then(Value::as_str)
                    .unwrap_or("Respond with the answer in this structure."),
                "inputSchema": {"json": schema.get("schema").cloned()
                    .unwrap_or_else(|| json!({"type": "object"}))},
            });
            if chat.tools.as_ref().is_some_and(|t| !t.is_empty()) {
                return Err(refused(
                    "response_format",
                    "`response_format: json_schema` together with `tools` is not supported for Bedrock targets",
                ));
            }
            if let Some(obj) = spec.as_object_mut() {
                obj.retain(|_, v| !v.is_null());
            }
            Ok(Some((name.to_owned(), spec)))
        }
        _ => Err(refused("response_format", "unknown `response_format.type`")),
    }
}

fn tool_config(
    chat: &ChatRequest,
    json_tool: Option<&(String, Value)>,
    history_has_tools: bool,
    messages: &[Value],
) -> Result<Option<Value>, TranslateError> {
    if let Some((name, spec)) = json_tool {
        return Ok(Some(json!({
            "tools": [{"toolSpec": spec}],
            "toolChoice": {"tool": {"name": name}},
        })));
    }
    let mut specs = Vec::new();
    for (i, tool) in chat.tools.iter().flatten().enumerate() {
        let function = match (tool.kind.as_str(), &tool.function) {
            ("function", Some(function)) => function,
            _ => {
                return Err(refused(
                    format!("tools[{i}]"),
                    "only `function` tools can be sent to Bedrock models",
                ))
            }
        };
        let mut spec = Map::new();
        spec.insert("name".into(), json!(function.name));
        if let Some(d) = function.extra.get("description").filter(|d| !d.is_null()) {
            spec.insert("description".into(), d.clone());
        }
        let schema = function
            .extra
            .get("parameters")
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        spec.insert("inputSchema".into(), json!({"json": schema}));
        if let Some(strict) = function.extra.get("strict").and_then(Value::as_bool) {
            spec.insert("strict".into(), json!(strict));
        }
        specs.push(json!({"toolSpec": spec}));
    }
    let choice = match &chat.tool_choice {
        None | Some(Value::Null) => Some(json!({"auto": {}})),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
            "none" => None,
            _ => {
                return Err(refused(
                    "tool_choice",
                    format!("unknown `tool_choice` {s:?}"),
                ))
            }
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    refused(
                        "tool_choice",
                        "only a named `function` tool_choice maps to Bedrock",
                    )
                })?;
            Some(json!({"tool": {"name": name}}))
        }
        Some(_) => return Err(refused("tool_choice", "invalid `tool_choice`")),
    };
    let none = choice.is_none();
    if specs.is_empty() || none {
        if !history_has_tools {
            return Ok(None);
        }
        // toolUse/toolResult blocks need a toolConfig; `none` keeps the tools without a choice.
        if specs.is_empty() {
            specs = history_tool_names(messages)
                .into_iter()
                .map(|name| json!({"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}))
                .collect();
        }
        return Ok(Some(json!({"tools": specs})));
    }
    let mut config = json!({"tools": specs});
    if let (Some(choice), Some(obj)) = (choice, config.as_object_mut()) {
        obj.insert("toolChoice".into(), choice);
    }
    Ok(Some(config))
}

fn has_tool_blocks(message: &Value) -> bool {
    message["content"].as_array().is_some_and(|blocks| {
        blocks
            .iter()
            .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some())
    })
}

fn history_tool_names(messages: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for block in messages
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
    {
        if let Some(name) = block["toolUse"]["name"].as_str() {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// System/developer messages → `system`; the rest → alternating user/assistant messages.
fn convert_messages(messages: &[Message]) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let mut system = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                for text in text_of(message.content.as_ref(), i)? {
                    system.push(json!({"text": text}));
                }
                continue;
            }
            Role::User => ("user", user_blocks(message, i)?),
            Role::Assistant => ("assistant", assistant_blocks(message, i)?),
            Role::Tool => ("user", vec![tool_result(message, i)?]),
            Role::Function => {
                return Err(refused(
                    format!("messages[{i}].role"),
                    "`function` messages are deprecated; use `tool` messages",
                ))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        push_merged(&mut out, role, blocks);
    }
    Ok((system, out))
}

/// Appends a message, merging it into the previous one when the role repeats (Bedrock needs
/// alternating roles). Tool results go before other blocks of the same user turn.
fn push_merged(out: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if let Some(last) = out.last_mut().filter(|m| m["role"] == role) {
        if let Some(content) = last["content"].as_array_mut() {
            content.extend(blocks);
            let (mut results, rest): (Vec<Value>, Vec<Value>) = content
                .drain(..)
                .partition(|b| b.get("toolResult").is_some());
            results.extend(rest);
            *content = results;
        }
        return;
    }
    out.push(json!({"role": role, "content": blocks}));
}

fn ensure_starts_with_user(messages: &mut Vec<Value>) {
    if messages.first().is_none_or(|m| m["role"] != "user") {
        // "A conversation must start with a user message": a non-blank placeholder.
        messages.insert(0, json!({"role": "user", "content": [{"text": "."}]}));
    }
}

/// Non-blank texts of system/tool content (strings or text parts).
fn text_of(content: Option<&Content>, i: usize) -> Result<Vec<String>, TranslateError> {
    let texts = match content {
        None => Vec::new(),
        Some(Content::Text(text)) => vec![text.clone()],
        Some(Content::Parts(parts)) => {
            let mut texts = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                match (part.kind.as_str(), &part.text) {
                    ("text", Some(text)) => texts.push(text.clone()),
                    _ => {
                        return Err(refused(
                            format!("messages[{i}].content[{j}]"),
                            "only text parts are allowed here",
                        ))
                    }
                }
            }
            texts
        }
    };
    Ok(texts.into_iter().filter(|t| !t.trim().is_empty()).collect())
}

fn user_blocks(message: &Message, i: usize) -> Result<Vec<Value>, TranslateError> {
    match &message.content {
        None => Ok(Vec::new()),
        Some(Content::Text(text)) => Ok(text_block(text).into_iter().collect()),
        Some(Content::Parts(parts)) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                blocks.extend(user_part(part, i, j)?);
            }
            Ok(blocks)
        }
    }
}

fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"text": text}))
}

fn user_part(part: &ContentPart, i: usize, j: usize) -> Result<Option<Value>, TranslateError> {
    let param = || format!("messages[{i}].content[{j}]");
    match part.kind.as_str() {
        "text" => Ok(part.text.as_deref().and_then(text_block)),
        "image_url" => {
            let url = part
                .image_url
                .as_ref()
                .map(|u| u.url.as_str())
                .ok_or_else(|| refused(param(), "`image_url.url` is required"))?;
            Ok(Some(
                image_block(url).map_err(|message| refused(param(), message))?,
            ))
        }
        other => Err(refused(
            param(),
            format!("content parts of type `{other}` are not supported for Bedrock targets"),
        )),
    }
}

/// A `data:` URL → an `image` block; Bedrock never fetches URLs.
pub fn image_block(url: &str) -> Result<Value, String> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err("Bedrock targets accept images only as base64 `data:` URLs".to_owned());
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| "the image data URL has no data".to_owned())?;
    let mime = meta
        .strip_suffix(";base64")
        .ok_or_else(|| "the image data URL must be base64-encoded".to_owned())?;
    let format = match mime.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(format!(
                "image type `{other}` is not supported (png, jpeg, gif, webp)"
            ))
        }
    };
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| "the image data URL is not valid base64".to_owned())?;
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

fn assistant_blocks(message: &Message, i: usize) -> Result<Vec<Value>, TranslateError> {
    let mut blocks: Vec<Value> = match &message.content {
        None => Vec::new(),
        Some(Content::Text(text)) => text_block(text).into_iter().collect(),
        Some(Content::Parts(parts)) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                match part.kind.as_str() {
                    "text" => blocks.extend(part.text.as_deref().and_then(text_block)),
                    "refusal" => {}
                    other => {
                        return Err(refused(
                            format!("messages[{i}].content[{j}]"),
                            format!("assistant parts of type `{other}` cannot be sent to Bedrock"),
                        ))
                    }
                }
            }
            blocks
        }
    };
    for call in message.tool_calls.iter().flatten() {
        blocks.push(json!({"toolUse": {
            "toolUseId": tool_use_id(&call.id),
            "name": call.function.name,
            "input": tool_input(&call.function.arguments),
        }}));
    }
    Ok(blocks)
}

/// Bedrock accepts tool-use ids of `[a-zA-Z0-9_.:-]{1,64}`. Other ids (from another
/// provider's history) are rewritten to a hash of themselves, the same for a `toolUse` and
/// its `toolResult`; answers carry Bedrock's own ids, so nothing needs mapping back.
fn tool_use_id(id: &str) -> String {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if valid {
        return id.to_owned();
    }
    use sha2::Digest;
    format!(
        "tu_{}",
        hex::encode(&sha2::Sha256::digest(id.as_bytes())[..16])
    )
}

/// `arguments` is a JSON string the model wrote; Converse needs an object.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(object)) => Value::Object(object),
        Ok(Value::Null) | Err(_) => json!({}),
        Ok(other) => json!({"value": other}),
    }
}

fn tool_result(message: &Message, i: usize) -> Result<Value, TranslateError> {
    let id = tool_use_id(message.tool_call_id.as_deref().unwrap_or_default());
    let text = text_of(message.content.as_ref(), i)?.join("\n");
    // An empty result is still a result; Bedrock rejects blank text, so say so.
    let text = if text.is_empty() {
        "(empty)".to_owned()
    } else {
        text
    };
    Ok(json!({"toolResult": {"toolUseId": id, "content": [{"text": text}], "status": "success"}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(value: Value) -> ChatRequest {
        serde_json::from_value(value).unwrap()
    }

    fn body(value: Value) -> Value {
        build(&chat(value), None).unwrap().body
    }

    fn refusal(value: Value) -> String {
        match build(&chat(value), None) {
            Err(TranslateError::Refused { param, .. }) => param,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn system_and_developer_become_system_blocks_and_roles_alternate() {
        let out = body(json!({"model": "m", "messages": [
            {"role": "system", "content": "be terse"},
            {"role": "user", "content": "a"},
            {"role": "developer", "content": [{"type": "text", "text": "really"}]},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": "  "},
        ]}));
        assert_eq!(
            out["system"],
            json!([{"text": "be terse"}, {"text": "really"}])
        );
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                {"role": "assistant", "content": [{"text": "c"}]},
            ])
        );
    }

    #[test]
    fn parameters_map_to_inference_config() {
        let out = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 10, "max_completion_tokens": 20, "temperature": 1.5, "top_p": 0.9,
            "stop": ["END", ""], "seed": 3, "presence_penalty": 1}),
        );
        assert_eq!(
            out["inferenceConfig"],
            json!({"maxTokens": 20, "temperature": 1.0, "topP": 0.9, "stopSequences": ["END"]})
        );
        let single = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "Z"}),
        );
        assert_eq!(single["inferenceConfig"]["stopSequences"], json!(["Z"]));
    }

    #[test]
    fn tool_round_trip_history_maps_to_tool_use_and_tool_result() {
        let out = body(json!({"model": "m", "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "not json"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\":18}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
            {"role": "user", "content": "thanks"},
        ], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "get_time"}}], "tool_choice": "required"}));
        let messages = out["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[1]["content"][0]["toolUse"],
            json!({"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
        );
        assert_eq!(messages[1]["content"][1]["toolUse"]["input"], json!({}));
        let user = messages[2]["content"].as_array().unwrap();
        assert_eq!(user[0]["toolResult"]["toolUseId"], "call_1");
        assert_eq!(user[1]["toolResult"]["toolUseId"], "call_2");
        assert_eq!(user[2], json!({"text": "thanks"}));
        assert_eq!(out["toolConfig"]["toolChoice"], json!({"any": {}}));
        assert_eq!(
            out["toolConfig"]["tools"][1]["toolSpec"]["inputSchema"]["json"],
            json!({"type": "object", "properties": {}})
        );
    }

    #[test]
    fn tool_choice_variants() {
        let base = |choice: Value| {
            body(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": choice}),
            )
        };
        assert_eq!(
            base(json!("auto"))["toolConfig"]["toolChoice"],
            json!({"auto": {}})
        );
        assert_eq!(
            base(json!({"type": "function", "function": {"name": "f"}}))["toolConfig"]
                ["toolChoice"],
            json!({"tool": {"name": "f"}})
        );
        assert!(base(json!("none")).get("toolConfig").is_none());
    }

    #[test]
    fn tool_history_without_tools_synthesizes_tool_config() {
        let out = body(json!({"model": "m", "messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "r"}]}));
        assert_eq!(
            out["messages"][0],
            json!({"role": "user", "content": [{"text": "."}]})
        );
        assert_eq!(out["toolConfig"]["tools"][0]["toolSpec"]["name"], "f");
    }

    #[test]
    fn images_from_data_urls() {
        let out = body(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is it"},
            {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,AAAA", "detail": "high"}}]}]}),
        );
        assert_eq!(
            out["messages"][0]["content"][1],
            json!({"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}})
        );
        let remote = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]});
        assert_eq!(refusal(remote), "messages[0].content[0]");
        let tiff = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}]});
        assert_eq!(refusal(tiff), "messages[0].content[0]");
    }

    #[test]
    fn inexpressible_fields_are_refused_by_name() {
        let user = json!([{"role": "user", "content": "x"}]);
        assert_eq!(
            refusal(json!({"model": "m", "messages": user, "n": 2})),
            "n"
        );
        assert_eq!(
            refusal(json!({"model": "m", "messages": user, "logprobs": true})),
            "logprobs"
        );
        assert_eq!(
            refusal(json!({"model": "m", "messages": user, "modalities": ["text", "audio"]})),
            "modalities"
        );
        assert_eq!(
            refusal(
                json!({"model": "m", "messages": user, "tools": [{"type": "custom", "custom": {"name": "x"}}]})
            ),
            "tools[0]"
        );
        assert!(build(&chat(json!({"model": "m", "messages": user, "n": 1})), None).is_ok());
    }

    #[test]
    fn json_schema_becomes_a_forced_tool_and_json_object_an_instruction() {
        let request = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer",
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}}),
        );
        let out = build(&request, None).unwrap();
        assert_eq!(out.json_tool.as_deref(), Some("answer"));
        assert_eq!(
            out.body["toolConfig"]["toolChoice"],
            json!({"tool": {"name": "answer"}})
        );
        let object = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object"}}),
        );
        assert!(object["system"][0]["text"]
            .as_str()
            .unwrap()
            .contains("JSON"));
    }

    #[test]
    fn additional_model_request_fields_pass_through() {
        let request = chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        let extra = json!({"top_k": 50});
        let out = build(&request, Some(&extra)).unwrap();
        assert_eq!(out.body["additionalModelRequestFields"], extra);
    }

    #[test]
    fn invalid_tool_ids_are_rewritten_consistently() {
        let out = body(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "call id/with spaces", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call id/with spaces", "content": "r"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}));
        let used = out["messages"][1]["content"][0]["toolUse"]["toolUseId"]
            .as_str()
            .unwrap();
        assert!(used.starts_with("tu_") && used.len() <= 64);
        assert_eq!(
            out["messages"][2]["content"][0]["toolResult"]["toolUseId"],
            used
        );
        assert_eq!(tool_use_id("call_abc-1.2:3"), "call_abc-1.2:3");
    }
}
