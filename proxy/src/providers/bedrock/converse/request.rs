//! A model [`Request`] → the Converse / ConverseStream body (docs/wire-formats.md §2.4).
//!
//! Every field Converse can express is mapped; fields it cannot are dropped when the client's
//! semantics allow (sampling hints such as `seed` or penalties), or refused with
//! [`TranslateError::Refused`] naming the field, so a client never gets a silently different
//! answer (e.g. `n > 1` would return one choice instead of several).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::model::{Reasoning, ReasoningEffort, Request, ResponseFormat, ToolChoice, ToolDef};
use crate::providers::TranslateError;

use super::chat_extra::{
    extra_response_format, extra_tool_choice, extra_tools, Format, JSON_TOOL_DESCRIPTION,
    NO_PARAMETERS,
};
use super::messages::{
    convert_cache_marker, convert_conversation, has_tool_blocks, history_tool_names, refused,
};
use super::wire::{
    AdditionalFields, ConverseRequest, EmptyObject, FixedSchema, InferenceConfig, InputSchema,
    Schema, SystemBlock, Thinking, Tool, ToolChoice as WireChoice, ToolConfig, ToolSpec,
};

/// Converse has no JSON mode; an instruction is the documented fallback.
const JSON_OBJECT_INSTRUCTION: &str = "Respond with a single valid JSON object and nothing else.";
/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u32 = 1024;

/// What the translation needs to know about the target.
#[derive(Debug, Clone, Copy)]
pub struct TargetFields<'a> {
    /// The Bedrock model id (or profile / ARN) the request goes to.
    pub upstream_model: &'a str,
    /// The target's `additional_model_request_fields`, passed through.
    pub additional: Option<&'a Value>,
}

/// A Converse body and what the answer's translation needs to know about it.
#[derive(Debug)]
pub struct Converse<'a> {
    pub body: ConverseRequest<'a>,
    /// The tool injected for `response_format: json_schema`; its input becomes the content.
    pub json_tool: Option<&'a str>,
}

/// Builds the Converse body for `request` sent to `target`.
pub fn convert_request<'a>(
    request: &'a Request,
    target: TargetFields<'a>,
) -> Result<Converse<'a>, TranslateError> {
    refuse_inexpressible(request)?;
    let conversation = convert_conversation(request)?;
    let mut system = conversation.system;
    let json_tool = match convert_response_format(request)? {
        Format::Plain => None,
        Format::JsonObject => {
            system.push(SystemBlock::Text(Cow::Borrowed(JSON_OBJECT_INSTRUCTION)));
            None
        }
        Format::JsonTool(spec) => Some(spec),
    };
    let tools = declared_tools(request)?;
    if json_tool.is_some() && !tools.is_empty() {
        return Err(refused(
            "response_format",
            "`response_format: json_schema` together with `tools` is not supported for Bedrock targets",
        ));
    }
    let choice = resolve_tool_choice(request)?;
    let json_tool_name = json_tool.as_ref().map(|spec| spec.name);
    let body = ConverseRequest {
        system,
        messages: conversation.messages,
        inference_config: convert_inference_config(request),
        tool_config: convert_tool_config(request, json_tool, tools, choice),
        additional_model_request_fields: convert_additional_fields(request, target),
    };
    Ok(Converse {
        body,
        json_tool: json_tool_name,
    })
}

/// The tool injected for `response_format: json_schema`, if the request has a usable one.
pub fn json_tool_name(request: &Request) -> Option<&str> {
    match convert_response_format(request) {
        Ok(Format::JsonTool(spec)) => Some(spec.name),
        _ => None,
    }
}

/// Fields of the client's dialect that Converse cannot honour (kept in `extra` by the Chat
/// and Responses decoders).
fn refuse_inexpressible(request: &Request) -> Result<(), TranslateError> {
    if request.sampling.n.is_some_and(|n| n > 1) {
        return Err(refused(
            "n",
            "`n` greater than 1 is not supported by Bedrock models",
        ));
    }
    let extra = &request.extra;
    let present = |key: &str| extra.get(key).is_some_and(|v| !v.is_null());
    if extra.get("logprobs").and_then(Value::as_bool) == Some(true) || present("top_logprobs") {
        return Err(refused(
            "logprobs",
            "`logprobs` is not supported by Bedrock models",
        ));
    }
    if let Some(modalities) = extra.get("modalities").and_then(Value::as_array) {
        if modalities.iter().any(|m| m.as_str() != Some("text")) {
            return Err(refused(
                "modalities",
                "Bedrock models answer with text only",
            ));
        }
    }
    if present("audio") {
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
        if present(key) {
            return Err(refused(
                key,
                format!("`{key}` is not supported by Bedrock models"),
            ));
        }
    }
    Ok(())
}

fn convert_inference_config(request: &Request) -> Option<InferenceConfig<'_>> {
    let sampling = &request.sampling;
    let config = InferenceConfig {
        max_tokens: request.max_output_tokens,
        // Bedrock accepts 0–1; OpenAI's 1–2 only means "more random", so clamp.
        temperature: sampling.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: sampling.top_p,
        // Converse rejects empty stop sequences.
        stop_sequences: sampling
            .stop
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect(),
    };
    (!config.is_empty()).then_some(config)
}

/// `response_format` (typed, else as the Chat decoder kept it in `extra`). `json_schema`
/// becomes one tool named after the schema, forced, whose input is the answer (the documented
/// fallback where Converse has no structured output).
fn convert_response_format(request: &Request) -> Result<Format<'_>, TranslateError> {
    match &request.response_format {
        None => Ok(extra_response_format(&request.extra)?.unwrap_or(Format::Plain)),
        Some(ResponseFormat::Text) => Ok(Format::Plain),
        Some(ResponseFormat::JsonObject) => Ok(Format::JsonObject),
        Some(ResponseFormat::JsonSchema { name, .. }) if name.is_empty() => {
            Err(refused("response_format", "`json_schema.name` is required"))
        }
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            description,
            ..
        }) => Ok(Format::JsonTool(ToolSpec {
            name,
            description: Some(description.as_deref().unwrap_or(JSON_TOOL_DESCRIPTION)),
            input_schema: InputSchema {
                json: Schema::Raw(schema),
            },
            strict: None,
        })),
    }
}

/// The client's tools: typed, else as the Chat decoder kept them in `extra`.
fn declared_tools(request: &Request) -> Result<Vec<Tool<'_>>, TranslateError> {
    if !request.tools.is_empty() {
        return Ok(convert_tools(&request.tools));
    }
    Ok(extra_tools(&request.extra)?.unwrap_or_default())
}

/// The client's tool choice; `None` for `none`, which Converse cannot say; absent is `auto`.
fn resolve_tool_choice(request: &Request) -> Result<Option<WireChoice<'_>>, TranslateError> {
    Ok(match &request.tool_choice {
        Some(ToolChoice::Auto) => Some(WireChoice::Auto(EmptyObject {})),
        Some(ToolChoice::Required) => Some(WireChoice::Any(EmptyObject {})),
        Some(ToolChoice::None) => None,
        Some(ToolChoice::Tool { name }) => Some(WireChoice::Tool { name }),
        None => {
            Some(extra_tool_choice(&request.extra)?.unwrap_or(WireChoice::Auto(EmptyObject {})))
        }
    })
}

fn convert_tool_config<'a>(
    request: &'a Request,
    json_tool: Option<ToolSpec<'a>>,
    tools: Vec<Tool<'a>>,
    choice: Option<WireChoice<'a>>,
) -> Option<ToolConfig<'a>> {
    if let Some(spec) = json_tool {
        let name = spec.name;
        return Some(ToolConfig {
            tools: vec![Tool::ToolSpec(spec)],
            tool_choice: Some(WireChoice::Tool { name }),
        });
    }
    if tools.is_empty() || choice.is_none() {
        if !has_tool_blocks(request) {
            return None;
        }
        // toolUse/toolResult blocks need a toolConfig; `none` keeps the tools without a choice,
        // and a history without declared tools gets specs for the names it used.
        let tools = if tools.is_empty() {
            history_tool_names(request)
                .into_iter()
                .map(history_tool_spec)
                .collect()
        } else {
            tools
        };
        return Some(ToolConfig {
            tools,
            tool_choice: None,
        });
    }
    Some(ToolConfig {
        tools,
        tool_choice: choice,
    })
}

fn convert_tools(tools: &[ToolDef]) -> Vec<Tool<'_>> {
    let mut out = Vec::with_capacity(tools.len());
    for tool in tools {
        out.push(Tool::ToolSpec(ToolSpec {
            name: &tool.name,
            description: tool.description.as_deref(),
            input_schema: InputSchema {
                json: match &tool.input_schema {
                    Some(schema) => Schema::Raw(schema),
                    None => NO_PARAMETERS,
                },
            },
            strict: tool.strict,
        }));
        if let Some(marker) = tool.cache {
            out.push(Tool::CachePoint(convert_cache_marker(marker)));
        }
    }
    out
}

fn history_tool_spec(name: &str) -> Tool<'_> {
    Tool::ToolSpec(ToolSpec {
        name,
        description: None,
        input_schema: InputSchema {
            json: Schema::Fixed(FixedSchema {
                kind: "object",
                properties: None,
            }),
        },
        strict: None,
    })
}

/// Whether the Bedrock model is one of Anthropic's (base id, profile id or ARN naming it):
/// only those take `thinking` and `top_k` in `additionalModelRequestFields`.
fn is_anthropic(upstream_model: &str) -> bool {
    upstream_model.contains("anthropic.")
}

/// The target's configured fields, with the request's `thinking` and `top_k` added for
/// Anthropic models unless the target already sets them (the operator's choice wins).
fn convert_additional_fields<'a>(
    request: &'a Request,
    target: TargetFields<'a>,
) -> Option<AdditionalFields<'a>> {
    let anthropic = is_anthropic(target.upstream_model);
    let thinking = request
        .reasoning
        .as_ref()
        .filter(|_| anthropic)
        .and_then(|r| convert_reasoning(r, request.max_output_tokens));
    let top_k = request.sampling.top_k.filter(|_| anthropic);
    let configured = match target.additional {
        None if thinking.is_none() && top_k.is_none() => return None,
        None => Cow::Owned(Map::new()),
        Some(Value::Object(map)) => Cow::Borrowed(map),
        Some(other) => return Some(AdditionalFields::Verbatim(other)),
    };
    Some(AdditionalFields::Merged {
        thinking: thinking.filter(|_| !configured.contains_key("thinking")),
        top_k: top_k.filter(|_| !configured.contains_key("top_k")),
        configured,
    })
}

/// Anthropic's `thinking` for the request's reasoning settings: the client's budget as is,
/// else one derived from the effort (LiteLLM's table), kept below `max_tokens` as Anthropic
/// requires.
fn convert_reasoning(reasoning: &Reasoning, max_tokens: Option<u32>) -> Option<Thinking> {
    let enabled = |budget_tokens| Thinking {
        kind: "enabled",
        budget_tokens,
    };
    if let Some(budget) = reasoning.budget_tokens.filter(|_| reasoning.enabled) {
        return Some(enabled(budget));
    }
    let budget = match reasoning.effort {
        Some(ReasoningEffort::Minimal | ReasoningEffort::Low) => MIN_THINKING_BUDGET,
        Some(ReasoningEffort::Medium) => 2048,
        Some(ReasoningEffort::High) => 4096,
        None if reasoning.enabled => MIN_THINKING_BUDGET,
        None => return None,
    };
    match max_tokens {
        Some(max) if max <= MIN_THINKING_BUDGET => None,
        Some(max) => Some(enabled(budget.min(max - 1))),
        None => Some(enabled(budget)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{body, body_for, refusal, request, text, CLAUDE};
    use super::*;

    fn tools_call(choice: Value) -> Value {
        body(
            json!({"messages": [text("user", "x")], "tools": [{"name": "f"}], "tool_choice": choice}),
        )
    }

    #[test]
    fn parameters_map_to_inference_config() {
        let out = body(
            json!({"messages": [text("user", "x")], "max_output_tokens": 20,
            "sampling": {"temperature": 1.5, "top_p": 0.9, "stop": ["END", ""], "seed": 3,
                         "presence_penalty": 1.0}}),
        );
        assert_eq!(
            out["inferenceConfig"],
            json!({"maxTokens": 20, "temperature": 1.0, "topP": 0.9, "stopSequences": ["END"]})
        );
        let bare = body(json!({"messages": [text("user", "x")]}));
        assert!(bare.get("inferenceConfig").is_none());
        assert!(bare.get("toolConfig").is_none());
        assert!(bare.get("additionalModelRequestFields").is_none());
        assert!(bare.get("system").is_none());
    }

    #[test]
    fn tools_map_to_specs_with_a_default_schema() {
        let out = body(json!({"messages": [text("user", "x")], "tools": [
            {"name": "get_weather", "description": "d", "strict": true,
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "get_time"}], "tool_choice": {"type": "required"}}));
        assert_eq!(
            out["toolConfig"],
            json!({"tools": [
                {"toolSpec": {"name": "get_weather", "description": "d", "strict": true, "inputSchema": {"json":
                    {"type": "object", "properties": {"city": {"type": "string"}}}}}},
                {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            ], "toolChoice": {"any": {}}})
        );
    }

    #[test]
    fn tool_choice_variants() {
        assert_eq!(
            tools_call(json!({"type": "auto"}))["toolConfig"]["toolChoice"],
            json!({"auto": {}})
        );
        assert_eq!(
            tools_call(Value::Null)["toolConfig"]["toolChoice"],
            json!({"auto": {}})
        );
        assert_eq!(
            tools_call(json!({"type": "tool", "name": "f"}))["toolConfig"]["toolChoice"],
            json!({"tool": {"name": "f"}})
        );
        assert!(tools_call(json!({"type": "none"}))
            .get("toolConfig")
            .is_none());
    }

    #[test]
    fn tool_history_keeps_or_synthesizes_a_tool_config() {
        let history = json!([
            {"role": "assistant", "content": [
                {"type": "tool_call", "id": "c", "name": "f", "arguments": "{}"},
                {"type": "tool_call", "id": "d", "name": "f", "arguments": "{}"}]},
            {"role": "user", "content": [{"type": "tool_result", "call_id": "c", "content": "r"}]}]);
        let out = body(json!({"messages": history}));
        assert_eq!(
            out["messages"][0],
            json!({"role": "user", "content": [{"text": "."}]})
        );
        assert_eq!(
            out["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]})
        );
        let none = body(json!({"messages": history, "tools": [{"name": "g"}],
            "tool_choice": {"type": "none"}}));
        assert_eq!(none["toolConfig"]["tools"][0]["toolSpec"]["name"], "g");
        assert!(none["toolConfig"].get("toolChoice").is_none());
    }

    #[test]
    fn tool_cache_markers_become_cache_points() {
        let out = body(json!({"messages": [text("user", "x")], "tools": [
            {"name": "f", "cache": {"ttl": "5m"}}, {"name": "g", "cache": {"ttl": "1h"}}]}));
        let tools = &out["toolConfig"]["tools"];
        assert_eq!(tools[1], json!({"cachePoint": {"type": "default"}}));
        assert_eq!(
            tools[3],
            json!({"cachePoint": {"type": "default", "ttl": "1h"}})
        );
    }

    #[test]
    fn inexpressible_fields_are_refused_by_name() {
        let user = json!([text("user", "x")]);
        assert_eq!(
            refusal(json!({"messages": user, "sampling": {"n": 2}})),
            "n"
        );
        for (field, value, param) in [
            ("logprobs", json!(true), "logprobs"),
            ("top_logprobs", json!(2), "logprobs"),
            ("modalities", json!(["text", "audio"]), "modalities"),
            ("audio", json!({"voice": "x"}), "audio"),
            ("functions", json!([]), "functions"),
            ("function_call", json!("auto"), "function_call"),
            ("prediction", json!({}), "prediction"),
            ("web_search_options", json!({}), "web_search_options"),
        ] {
            assert_eq!(
                refusal(json!({"messages": user, "extra": {field: value}})),
                param
            );
        }
        body(json!({"messages": user, "sampling": {"n": 1},
            "extra": {"logprobs": false, "modalities": ["text"], "audio": null}}));
    }

    #[test]
    fn json_schema_becomes_a_forced_tool_and_json_object_an_instruction() {
        let r = request(json!({"messages": [text("user", "x")],
            "response_format": {"type": "json_schema", "name": "answer",
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}));
        let target = TargetFields {
            upstream_model: CLAUDE,
            additional: None,
        };
        let out = convert_request(&r, target).unwrap();
        assert_eq!(out.json_tool, Some("answer"));
        assert_eq!(json_tool_name(&r), Some("answer"));
        let out = serde_json::to_value(&out.body).unwrap();
        assert_eq!(
            out["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "answer",
                "description": "Respond with the answer in this structure.",
                "inputSchema": {"json": {"type": "object", "properties": {"a": {"type": "string"}}}}}}],
                "toolChoice": {"tool": {"name": "answer"}}})
        );
        let object = body(json!({"messages": [text("user", "x")],
            "system": [{"text": "be brief"}], "response_format": {"type": "json_object"}}));
        assert_eq!(object["system"][0]["text"], "be brief");
        assert!(object["system"][1]["text"]
            .as_str()
            .unwrap()
            .contains("JSON"));
        let plain =
            body(json!({"messages": [text("user", "x")], "response_format": {"type": "text"}}));
        assert!(plain.get("system").is_none() && plain.get("toolConfig").is_none());
    }

    #[test]
    fn json_schema_with_tools_or_without_a_name_is_refused() {
        let format = |name: &str| json!({"type": "json_schema", "name": name, "schema": {}});
        assert_eq!(
            refusal(
                json!({"messages": [text("user", "x")], "tools": [{"name": "f"}],
                "response_format": format("a")})
            ),
            "response_format"
        );
        assert_eq!(
            refusal(json!({"messages": [text("user", "x")], "response_format": format("")})),
            "response_format"
        );
    }

    #[test]
    fn additional_model_request_fields_pass_through() {
        let configured = json!({"top_k": 50});
        let out = body_for(
            json!({"messages": [text("user", "x")]}),
            "amazon.nova-lite-v1:0",
            Some(&configured),
        );
        assert_eq!(out["additionalModelRequestFields"], configured);
    }

    #[test]
    fn reasoning_becomes_anthropic_thinking() {
        let thinking = |reasoning: Value, max: Option<u32>, model: &str| {
            body_for(
                json!({"messages": [text("user", "x")], "reasoning": reasoning,
                    "max_output_tokens": max}),
                model,
                None,
            )["additionalModelRequestFields"]
                .clone()
        };
        assert_eq!(
            thinking(
                json!({"enabled": true, "budget_tokens": 3000}),
                Some(8000),
                CLAUDE
            ),
            json!({"thinking": {"type": "enabled", "budget_tokens": 3000}})
        );
        let profile = "us.anthropic.claude-sonnet-4-20250514-v1:0";
        assert_eq!(
            thinking(json!({"effort": "high"}), None, profile),
            json!({"thinking": {"type": "enabled", "budget_tokens": 4096}})
        );
        assert_eq!(
            thinking(json!({"effort": "high"}), Some(3000), profile),
            json!({"thinking": {"type": "enabled", "budget_tokens": 2999}})
        );
        assert!(thinking(json!({"effort": "low"}), Some(1000), profile).is_null());
        assert!(thinking(json!({}), None, profile).is_null());
        assert!(thinking(json!({"effort": "high"}), None, "amazon.nova-pro-v1:0").is_null());
    }

    #[test]
    fn the_target_s_fields_win_over_the_request_s() {
        let configured = json!({"thinking": {"type": "disabled"}, "anthropic_beta": ["b"]});
        let out = body_for(
            json!({"messages": [text("user", "x")], "reasoning": {"effort": "medium"},
                "sampling": {"top_k": 5}}),
            CLAUDE,
            Some(&configured),
        );
        assert_eq!(
            out["additionalModelRequestFields"],
            json!({"thinking": {"type": "disabled"}, "anthropic_beta": ["b"], "top_k": 5})
        );
        let top_k = body_for(
            json!({"messages": [text("user", "x")], "sampling": {"top_k": 5}}),
            "amazon.nova-pro-v1:0",
            None,
        );
        assert!(top_k.get("additionalModelRequestFields").is_none());
    }
}
