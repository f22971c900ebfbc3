//! Converse answer → OpenAI `chat.completion` (wire-formats §2.5): text and `toolUse` blocks
//! into `choices[0].message`, `stopReason` into `finish_reason`, usage with cache buckets.

use serde_json::{json, Map, Value};

use crate::metering::Usage;
use crate::providers::TranslateError;

/// `stopReason` → `finish_reason`. Unknown and malformed-output reasons end as `stop`.
pub fn finish_reason(stop_reason: &str, json_tool: bool) -> &'static str {
    match stop_reason {
        "tool_use" if json_tool => "stop",
        "tool_use" => "tool_calls",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// Converse `usage` → the OpenAI usage object and the proxy's metering figures. Bedrock's
/// `inputTokens` excludes cache reads and writes; OpenAI's `prompt_tokens` includes them.
pub fn usage(usage: &Value) -> Option<(Value, Usage)> {
    let object = usage.as_object()?;
    let count = |key: &str| object.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (count("inputTokens"), count("outputTokens"));
    let (read, write) = (
        count("cacheReadInputTokens"),
        count("cacheWriteInputTokens"),
    );
    let prompt = input + read + write;
    let mut openai = json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
    });
    if read > 0 || write > 0 {
        openai["prompt_tokens_details"] =
            json!({"cached_tokens": read, "cache_write_tokens": write});
    }
    let metered = Usage {
        prompt_tokens: prompt,
        completion_tokens: output,
        cached_tokens: read,
        cache_write_tokens: write,
        estimated: false,
    };
    Some((openai, metered))
}

/// Translates a complete Converse answer. `json_tool` is the tool injected for
/// `response_format: json_schema`, whose input is returned as the content.
pub fn translate(
    client_model: &str,
    body: &[u8],
    json_tool: Option<&str>,
    id: &str,
    created: u64,
) -> Result<(Vec<u8>, Option<Usage>), TranslateError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        TranslateError::BadUpstreamBody(format!("Converse answer is not JSON: {e}"))
    })?;
    let blocks = value["output"]["message"]["content"]
        .as_array()
        .ok_or_else(|| {
            TranslateError::BadUpstreamBody("Converse answer has no output.message".into())
        })?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tool) = block.get("toolUse") {
            let name = tool["name"].as_str().unwrap_or_default();
            let arguments = serde_json::to_string(&tool["input"]).unwrap_or_else(|_| "{}".into());
            if json_tool == Some(name) {
                text.push_str(&arguments);
                continue;
            }
            calls.push(json!({
                "id": tool["toolUseId"],
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }));
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        json!(text)
    };
    message.insert("content".into(), content);
    message.insert("refusal".into(), Value::Null);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let stop = value["stopReason"].as_str().unwrap_or("end_turn");
    let translated = value.get("usage").and_then(usage);
    let mut out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": client_model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(stop, json_tool.is_some()),
        }],
    });
    if let Some((openai, _)) = &translated {
        out["usage"] = openai.clone();
    }
    let bytes =
        serde_json::to_vec(&out).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))?;
    Ok((bytes, translated.map(|(_, metered)| metered)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: Value, json_tool: Option<&str>) -> (Value, Option<Usage>) {
        let (out, usage) = translate(
            "alias",
            body.to_string().as_bytes(),
            json_tool,
            "chatcmpl-1",
            7,
        )
        .unwrap();
        (serde_json::from_slice(&out).unwrap(), usage)
    }

    #[test]
    fn text_and_tool_use_with_cached_usage() {
        let (out, usage) = run(
            json!({"output": {"message": {"role": "assistant", "content": [
                {"text": "It's a cat. "}, {"text": "Checking."},
                {"toolUse": {"toolUseId": "tooluse_Ab12", "name": "get_weather", "input": {"city": "Paris"}}}]}},
              "stopReason": "tool_use",
              "usage": {"inputTokens": 20, "outputTokens": 35, "totalTokens": 1079,
                        "cacheReadInputTokens": 1024, "cacheWriteInputTokens": 0},
              "metrics": {"latencyMs": 812}}),
            None,
        );
        let choice = &out["choices"][0];
        assert_eq!(out["model"], "alias");
        assert_eq!(out["object"], "chat.completion");
        assert_eq!(choice["message"]["content"], "It's a cat. Checking.");
        assert_eq!(choice["message"]["tool_calls"][0]["id"], "tooluse_Ab12");
        assert_eq!(
            choice["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(out["usage"]["prompt_tokens"], 1044);
        assert_eq!(out["usage"]["total_tokens"], 1079);
        assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 1024);
        let usage = usage.unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens
            ),
            (1044, 35, 1024)
        );
    }

    #[test]
    fn tool_only_answer_has_null_content() {
        let (out, _) = run(
            json!({"output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}]}},
                   "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
            None,
        );
        assert!(out["choices"][0]["message"]["content"].is_null());
    }

    #[test]
    fn json_tool_input_becomes_content() {
        let (out, _) = run(
            json!({"output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "name": "answer", "input": {"a": "b"}}}]}},
                   "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
            Some("answer"),
        );
        assert_eq!(out["choices"][0]["message"]["content"], "{\"a\":\"b\"}");
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert!(out["choices"][0]["message"].get("tool_calls").is_none());
    }

    #[test]
    fn stop_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("tool_use", "tool_calls"),
            ("max_tokens", "length"),
            ("model_context_window_exceeded", "length"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
            ("malformed_model_output", "stop"),
        ] {
            assert_eq!(finish_reason(stop, false), finish, "{stop}");
        }
    }

    #[test]
    fn garbage_is_an_upstream_error() {
        assert!(translate("a", b"<html>", None, "i", 1).is_err());
        assert!(translate("a", b"{}", None, "i", 1).is_err());
    }
}
