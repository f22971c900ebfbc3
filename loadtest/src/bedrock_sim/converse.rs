//! Bedrock's Converse rules (the ValidationException messages real Bedrock gives) and the
//! simulator's deterministic answers: text that describes what it was sent, or a tool call.

use serde_json::{json, Value};

/// A broken Converse rule, as Bedrock words it.
pub type Invalid = String;

/// Checks the body the way Bedrock does before running a model.
pub fn validate(body: &Value) -> Result<(), Invalid> {
    let messages = body["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or("The model returned the following errors: messages must not be empty")?;
    if messages[0]["role"] != "user" {
        return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
    }
    let mut pending_tool_uses: Vec<String> = Vec::new();
    let mut uses_tools = false;
    for (i, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or_default();
        if !matches!(role, "user" | "assistant") {
            return Err(format!("messages.{i}.role: must be user or assistant"));
        }
        if i > 0 && messages[i - 1]["role"] == role {
            return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
        }
        let blocks = message["content"]
            .as_array()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| format!("messages.{i}.content must not be empty"))?;
        let mut results = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            validate_block(block, role, i, j)?;
            if let Some(id) = block["toolUse"]["toolUseId"].as_str() {
                uses_tools = true;
                pending_tool_uses.push(id.to_owned());
            }
            if let Some(id) = block["toolResult"]["toolUseId"].as_str() {
                uses_tools = true;
                results.push(id.to_owned());
            }
        }
        if role == "user" {
            for id in &results {
                if !pending_tool_uses.contains(id) {
                    return Err(format!("messages.{i}.content: toolResult {id} does not match a toolUse of the previous turn"));
                }
            }
            if !pending_tool_uses.is_empty() && results.len() != pending_tool_uses.len() {
                return Err(format!(
                    "Expected toolResult blocks at messages.{i}.content for the following Ids: {}",
                    pending_tool_uses.join(", ")
                ));
            }
            pending_tool_uses.clear();
        }
    }
    if uses_tools && body.get("toolConfig").is_none() {
        return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
    }
    if let Some(t) = body["inferenceConfig"]["temperature"].as_f64() {
        if !(0.0..=1.0).contains(&t) {
            return Err("inferenceConfig.temperature must be between 0 and 1".into());
        }
    }
    if let Some(system) = body.get("system") {
        // Non-blank text, or a cache point after cached content (as real Bedrock accepts).
        let ok = system.as_array().is_some_and(|blocks| {
            blocks.iter().all(|b| {
                b["text"].as_str().is_some_and(|t| !t.trim().is_empty())
                    || b.get("cachePoint").is_some()
            })
        });
        if !ok {
            return Err("system blocks must be non-blank text".into());
        }
    }
    Ok(())
}

fn validate_block(block: &Value, role: &str, i: usize, j: usize) -> Result<(), Invalid> {
    let keys: Vec<&String> = block
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    if keys.len() != 1 {
        return Err(format!(
            "messages.{i}.content.{j}: exactly one member must be set"
        ));
    }
    if let Some(text) = block.get("text") {
        if text.as_str().is_none_or(|t| t.trim().is_empty()) {
            return Err(format!("The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."));
        }
    }
    if let Some(image) = block.get("image") {
        if role != "user" {
            return Err(format!(
                "messages.{i}.content.{j}: images are only allowed in user messages"
            ));
        }
        if !matches!(
            image["format"].as_str(),
            Some("png" | "jpeg" | "gif" | "webp")
        ) {
            return Err(format!("messages.{i}.content.{j}.image.format is invalid"));
        }
        use base64::Engine;
        let bytes = image["source"]["bytes"].as_str().unwrap_or_default();
        if base64::engine::general_purpose::STANDARD
            .decode(bytes)
            .is_err()
        {
            return Err(format!(
                "messages.{i}.content.{j}.image.source.bytes is not base64"
            ));
        }
    }
    if let Some(tool_use) = block.get("toolUse") {
        if role != "assistant" || !tool_use["input"].is_object() {
            return Err(format!("messages.{i}.content.{j}.toolUse is invalid"));
        }
    }
    if block.get("toolResult").is_some() && role != "user" {
        return Err(format!(
            "messages.{i}.content.{j}: toolResult is only allowed in user messages"
        ));
    }
    Ok(())
}

/// What the simulated model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

impl Answer {
    pub fn stop_reason(&self) -> &'static str {
        match self {
            Answer::Text(_) => "end_turn",
            Answer::ToolUse { .. } => "tool_use",
        }
    }
}

/// Tool results → a text about them; a forced tool choice (or "weather" in the prompt with
/// tools offered) → a tool call; otherwise a text describing what the user sent.
pub fn answer(sim_name: &str, body: &Value, counter: u64) -> Answer {
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or(Value::Null);
    let blocks = last["content"].as_array().cloned().unwrap_or_default();
    let results: Vec<String> = blocks
        .iter()
        .filter_map(|b| {
            b["toolResult"]["content"][0]["text"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    if !results.is_empty() {
        return Answer::Text(format!(
            "{sim_name} read the tool results: {}",
            results.join("; ")
        ));
    }
    let text: Vec<&str> = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
    let text = text.join(" ");
    let tools = &body["toolConfig"];
    let choice = &tools["toolChoice"];
    let first_tool = tools["tools"][0]["toolSpec"]["name"].as_str();
    let forced = choice["tool"]["name"]
        .as_str()
        .or(choice.get("any").and(first_tool));
    let wanted = choice
        .get("auto")
        .and(first_tool)
        .filter(|_| text.contains("weather"));
    if let Some(name) = forced.or(wanted) {
        let input = if choice.get("tool").is_some() && name != "get_weather" {
            json!({"answer": "42"})
        } else {
            json!({"city": "Paris"})
        };
        return Answer::ToolUse {
            id: format!("tooluse_{counter}"),
            name: name.to_owned(),
            input,
        };
    }
    let images: Vec<String> = blocks
        .iter()
        .filter_map(|b| {
            b["image"]["format"]
                .as_str()
                .map(|f| format!("[image:{f}]"))
        })
        .collect();
    let mut reply = format!("{sim_name} says: {text}");
    for image in images {
        reply.push(' ');
        reply.push_str(&image);
    }
    Answer::Text(reply)
}

/// Usage as Converse reports it: prompt bytes / 4, one token per answer word.
pub fn usage(body: &Value, answer: &Answer) -> Value {
    let input = (body.to_string().len() / 4) as u64;
    let output = match answer {
        Answer::Text(text) => text.split_whitespace().count() as u64,
        Answer::ToolUse { input, .. } => (input.to_string().len() / 4).max(1) as u64,
    };
    json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output})
}

/// The non-streaming Converse answer.
pub fn converse_body(answer: &Answer, usage: Value) -> Value {
    let content = match answer {
        Answer::Text(text) => json!([{"text": text}]),
        Answer::ToolUse { id, name, input } => {
            json!([{"toolUse": {"toolUseId": id, "name": name, "input": input}}])
        }
    };
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": answer.stop_reason(),
        "usage": usage,
        "metrics": {"latencyMs": 1},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_rules() {
        let ok = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
        assert!(validate(&ok).is_ok());
        let assistant_first =
            json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]});
        assert!(validate(&assistant_first)
            .unwrap_err()
            .contains("start with a user"));
        let twice = json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]});
        assert!(validate(&twice).unwrap_err().contains("alternate"));
        let orphan = json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "x", "content": [{"text": "r"}]}}]}], "toolConfig": {}});
        assert!(validate(&orphan).is_err());
        let blank = json!({"messages": [{"role": "user", "content": [{"text": " "}]}]});
        assert!(validate(&blank).unwrap_err().contains("blank"));
        let cached = json!({"system": [{"text": "rules"}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [{"text": "hi"}, {"cachePoint": {"type": "default"}}]}]});
        assert!(validate(&cached).is_ok());
        let blank_system = json!({"system": [{"text": " "}],
            "messages": [{"role": "user", "content": [{"text": "hi"}]}]});
        assert!(validate(&blank_system).is_err());
    }

    #[test]
    fn forced_tool_is_called() {
        let body = json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "f"}}], "toolChoice": {"any": {}}}});
        assert!(matches!(answer("s", &body, 1), Answer::ToolUse { name, .. } if name == "f"));
    }
}
