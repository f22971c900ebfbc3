//! A complete Converse answer → [`model::Answer`](crate::model::Answer) (docs/wire-formats.md §2.3,
//! §2.5): text, tool calls and reasoning blocks in order, `stopReason` mapped, usage with
//! the cache buckets folded into the prompt count.

use crate::metering::Usage;
use crate::model::{Answer, Block, StopReason};
use crate::providers::TranslateError;

use super::ids;
use super::wire::{
    AnswerBlock, AnswerReasoning, AnswerToolUse, ConverseResponse, KnownAnswerBlock, TokenUsage,
};

/// Translates a complete Converse answer. `json_tool` is the tool injected for
/// `response_format: json_schema`, whose input is returned as text.
pub fn convert_answer(body: &[u8], json_tool: Option<&str>) -> Result<Answer, TranslateError> {
    let response: ConverseResponse = serde_json::from_slice(body).map_err(|e| {
        TranslateError::BadUpstreamBody(format!("Converse answer is not valid: {e}"))
    })?;
    let message = response.output.message.ok_or_else(|| {
        TranslateError::BadUpstreamBody("Converse answer has no output.message".into())
    })?;
    let content = message
        .content
        .into_iter()
        .filter_map(|block| convert_block(block, json_tool))
        .collect();
    let sequence = stop_sequence(response.additional_model_response_fields.as_ref());
    let stop = convert_stop_reason(
        response.stop_reason.as_deref().unwrap_or("end_turn"),
        json_tool.is_some(),
        sequence,
    );
    Ok(Answer {
        // Converse answers carry no id; the dialect's encoder mints one.
        id: None,
        content,
        stop,
        usage: response.usage.as_ref().map(convert_usage),
        created: None,
    })
}

/// One answer block; `None` for kinds the model has no place for (citations, images, …).
fn convert_block(block: AnswerBlock, json_tool: Option<&str>) -> Option<Block> {
    let AnswerBlock::Known(block) = block else {
        return None;
    };
    Some(match block {
        KnownAnswerBlock::Text(text) => Block::text(text),
        KnownAnswerBlock::ToolUse(tool) => convert_tool_use(tool, json_tool),
        KnownAnswerBlock::ReasoningContent(AnswerReasoning::ReasoningText(reasoning)) => {
            Block::Thinking {
                text: reasoning.text,
                signature: reasoning.signature,
            }
        }
        KnownAnswerBlock::ReasoningContent(AnswerReasoning::RedactedContent(data)) => {
            Block::RedactedThinking { data }
        }
    })
}

fn convert_tool_use(tool: AnswerToolUse, json_tool: Option<&str>) -> Block {
    let arguments = tool.input.to_string();
    if json_tool == Some(tool.name.as_str()) {
        return Block::text(arguments);
    }
    Block::ToolCall {
        id: ids::original(&tool.tool_use_id).into_owned(),
        name: tool.name,
        arguments,
        cache: None,
    }
}

/// Which stop sequence matched, when the upstream copied it back
/// (`additionalModelResponseFieldPaths: ["/stop_sequence"]`).
pub fn stop_sequence(fields: Option<&serde_json::Value>) -> Option<String> {
    fields?.get("stop_sequence")?.as_str().map(str::to_owned)
}

/// `stopReason` → the model's stop reason. The tool injected for `response_format` ends a
/// turn normally. `malformed_model_output`, `malformed_tool_use` and reasons Bedrock adds
/// later end it normally too (LiteLLM's choice): kept verbatim they would reach Chat clients
/// as a `finish_reason` their SDKs cannot parse.
pub fn convert_stop_reason(reason: &str, json_tool: bool, sequence: Option<String>) -> StopReason {
    match reason {
        "end_turn" => StopReason::EndTurn,
        "tool_use" if json_tool => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence { sequence },
        "model_context_window_exceeded" => StopReason::ContextWindowExceeded,
        "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

/// Converse usage → the proxy's figures. Bedrock's `inputTokens` excludes cache reads and
/// writes; the proxy's `prompt_tokens` includes them.
pub fn convert_usage(usage: &TokenUsage) -> Usage {
    let (read, write) = (
        usage.cache_read_input_tokens,
        usage.cache_write_input_tokens,
    );
    Usage {
        prompt_tokens: usage.input_tokens + read + write,
        completion_tokens: usage.output_tokens,
        cached_tokens: read,
        cache_write_tokens: write,
        cache_write_1h_tokens: 0,
        estimated: false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn run(body: Value, json_tool: Option<&str>) -> Answer {
        convert_answer(body.to_string().as_bytes(), json_tool).unwrap()
    }

    #[test]
    fn text_and_tool_use_with_cached_usage() {
        let answer = run(
            json!({"output": {"message": {"role": "assistant", "content": [
                {"text": "It's a cat. "}, {"text": "Checking."},
                {"toolUse": {"toolUseId": "tooluse_Ab12", "name": "get_weather", "input": {"city": "Paris"}}}]}},
              "stopReason": "tool_use",
              "usage": {"inputTokens": 20, "outputTokens": 35, "totalTokens": 1079,
                        "cacheReadInputTokens": 1024, "cacheWriteInputTokens": 0},
              "metrics": {"latencyMs": 812}}),
            None,
        );
        assert_eq!(
            answer.content,
            vec![
                Block::text("It's a cat. "),
                Block::text("Checking."),
                Block::ToolCall {
                    id: "tooluse_Ab12".to_owned(),
                    name: "get_weather".to_owned(),
                    arguments: "{\"city\":\"Paris\"}".to_owned(),
                    cache: None,
                },
            ]
        );
        assert_eq!(answer.stop, StopReason::ToolUse);
        assert_eq!(answer.id, None);
        assert_eq!(
            answer.usage,
            Some(Usage {
                prompt_tokens: 1044,
                completion_tokens: 35,
                cached_tokens: 1024,
                cache_write_tokens: 0,
                cache_write_1h_tokens: 0,
                estimated: false,
            })
        );
    }

    #[test]
    fn cache_writes_count_into_the_prompt() {
        let answer = run(
            json!({"output": {"message": {"content": [{"text": "ok"}]}}, "stopReason": "end_turn",
                   "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 306,
                             "cacheReadInputTokens": 0, "cacheWriteInputTokens": 300,
                             "cacheDetails": [{"ttl": "5m", "inputTokens": 300}]}}),
            None,
        );
        let usage = answer.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.cache_write_tokens), (305, 300));
    }

    #[test]
    fn reasoning_blocks_keep_their_signature_and_redacted_data() {
        let answer = run(
            json!({"output": {"message": {"content": [
                {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig=="}}},
                {"reasoningContent": {"redactedContent": "b3BhcXVl"}},
                {"citationsContent": {"content": []}},
                {"text": "done"}]}},
              "stopReason": "end_turn"}),
            None,
        );
        assert_eq!(
            answer.content,
            vec![
                Block::Thinking {
                    text: "think".to_owned(),
                    signature: Some("sig==".to_owned()),
                },
                Block::RedactedThinking {
                    data: "b3BhcXVl".to_owned()
                },
                Block::text("done"),
            ]
        );
        assert_eq!(answer.usage, None);
    }

    #[test]
    fn json_tool_input_becomes_text() {
        let answer = run(
            json!({"output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "name": "answer", "input": {"a": "b"}}}]}},
                   "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
            Some("answer"),
        );
        assert_eq!(answer.content, vec![Block::text("{\"a\":\"b\"}")]);
        assert_eq!(answer.stop, StopReason::EndTurn);
    }

    #[test]
    fn rewritten_tool_ids_are_given_back() {
        let sent = ids::to_bedrock("call id/with spaces").into_owned();
        let answer = run(
            json!({"output": {"message": {"content": [{"toolUse": {"toolUseId": sent, "name": "f", "input": {}}}]}},
                   "stopReason": "tool_use"}),
            None,
        );
        assert!(
            matches!(&answer.content[0], Block::ToolCall { id, .. } if id == "call id/with spaces")
        );
    }

    #[test]
    fn stop_reasons() {
        for (reason, stop) in [
            ("end_turn", StopReason::EndTurn),
            ("stop_sequence", StopReason::StopSequence { sequence: None }),
            ("tool_use", StopReason::ToolUse),
            ("max_tokens", StopReason::MaxTokens),
            (
                "model_context_window_exceeded",
                StopReason::ContextWindowExceeded,
            ),
            ("guardrail_intervened", StopReason::ContentFilter),
            ("content_filtered", StopReason::ContentFilter),
            ("malformed_model_output", StopReason::EndTurn),
            ("malformed_tool_use", StopReason::EndTurn),
            ("something_new", StopReason::EndTurn),
        ] {
            assert_eq!(convert_stop_reason(reason, false, None), stop, "{reason}");
        }
        assert_eq!(
            convert_stop_reason("tool_use", true, None),
            StopReason::EndTurn
        );
        let fields = json!({"stop_sequence": "END"});
        let answer = run(
            json!({"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": "stop_sequence",
                   "additionalModelResponseFields": fields}),
            None,
        );
        assert_eq!(
            answer.stop,
            StopReason::StopSequence {
                sequence: Some("END".to_owned())
            }
        );
    }

    #[test]
    fn garbage_is_an_upstream_error() {
        for body in [&b"<html>"[..], b"{}", br#"{"output": {}}"#] {
            assert!(matches!(
                convert_answer(body, None),
                Err(TranslateError::BadUpstreamBody(_))
            ));
        }
    }
}
