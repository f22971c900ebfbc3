//! What the Chat decoder keeps in `extra` because the model has no typed place for it: a tool
//! list with non-function tools or extra members, a `tool_choice` or `response_format` of
//! another shape. Read here the way the Chat API defines them, so such requests keep working
//! on Bedrock (function tools with extra members, e.g. `cache_control`), or refused naming the
//! field (`tools[i]`, `tool_choice`, `response_format`).

use serde_json::{Map, Value};

use crate::model::{CacheMarker, CacheTtl};
use crate::providers::TranslateError;

use super::messages::{convert_cache_marker, refused};
use super::wire::{self, EmptyObject, FixedSchema, InputSchema, Schema, Tool, ToolSpec};

pub const JSON_TOOL_DESCRIPTION: &str = "Respond with the answer in this structure.";

/// What `response_format` asks of the answer's text.
#[derive(Debug, Clone)]
pub enum Format<'a> {
    Plain,
    JsonObject,
    /// The tool injected for `json_schema`, forced, whose input is the answer.
    JsonTool(ToolSpec<'a>),
}

/// `{"type": "object", "properties": {}}`: the schema of a tool declared without one.
pub const NO_PARAMETERS: Schema<'static> = Schema::Fixed(FixedSchema {
    kind: "object",
    properties: Some(EmptyObject {}),
});

/// Chat `tools` kept in `extra`: function tools → specs; any other kind is refused.
pub fn extra_tools(extra: &Map<String, Value>) -> Result<Option<Vec<Tool<'_>>>, TranslateError> {
    let Some(tools) = extra.get("tools").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let tools = tools
        .as_array()
        .ok_or_else(|| refused("tools", "`tools` must be an array"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let function = tool
            .get("function")
            .filter(|_| tool.get("type").and_then(Value::as_str) == Some("function"));
        let Some((function, name)) = function.and_then(|f| Some((f, f.get("name")?.as_str()?)))
        else {
            return Err(refused(
                format!("tools[{i}]"),
                "only `function` tools can be sent to Bedrock models",
            ));
        };
        out.push(Tool::ToolSpec(ToolSpec {
            name,
            description: function.get("description").and_then(Value::as_str),
            input_schema: InputSchema {
                json: match function.get("parameters").filter(|p| !p.is_null()) {
                    Some(schema) => Schema::Value(schema),
                    None => NO_PARAMETERS,
                },
            },
            strict: function.get("strict").and_then(Value::as_bool),
        }));
        if let Some(marker) = cache_control(tool.get("cache_control")) {
            out.push(Tool::CachePoint(convert_cache_marker(marker)));
        }
    }
    Ok(Some(out))
}

/// `cache_control: {"type": "ephemeral", "ttl"?}` → a marker.
fn cache_control(control: Option<&Value>) -> Option<CacheMarker> {
    let control = control?;
    (control.get("type")?.as_str()? == "ephemeral").then(|| CacheMarker {
        ttl: match control.get("ttl").and_then(Value::as_str) {
            Some("1h") => Some(CacheTtl::OneHour),
            _ => None,
        },
    })
}

/// Chat `tool_choice` kept in `extra`: a named function maps to Converse's `tool`; anything
/// else is refused. `Ok(None)` when there is none in `extra`.
pub fn extra_tool_choice(
    extra: &Map<String, Value>,
) -> Result<Option<wire::ToolChoice<'_>>, TranslateError> {
    let Some(choice) = extra.get("tool_choice").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if let Some(mode) = choice.as_str() {
        return Err(refused(
            "tool_choice",
            format!("unknown `tool_choice` {mode:?}"),
        ));
    }
    let name = choice
        .get("function")
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            refused(
                "tool_choice",
                "only a named `function` tool_choice maps to Bedrock",
            )
        })?;
    Ok(Some(wire::ToolChoice::Tool { name }))
}

/// Chat `response_format` kept in `extra`. `Ok(None)` when there is none in `extra`.
pub fn extra_response_format(
    extra: &Map<String, Value>,
) -> Result<Option<Format<'_>>, TranslateError> {
    let Some(format) = extra.get("response_format").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Some(Format::Plain)),
        Some("json_object") => Ok(Some(Format::JsonObject)),
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
            Ok(Some(Format::JsonTool(ToolSpec {
                name,
                description: Some(
                    schema
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or(JSON_TOOL_DESCRIPTION),
                ),
                input_schema: InputSchema {
                    json: match schema.get("schema").filter(|s| !s.is_null()) {
                        Some(schema) => Schema::Value(schema),
                        None => Schema::Fixed(FixedSchema {
                            kind: "object",
                            properties: None,
                        }),
                    },
                },
                strict: None,
            })))
        }
        _ => Err(refused("response_format", "unknown `response_format.type`")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{body, refusal, text};

    #[test]
    fn function_tools_kept_in_extra_still_map_to_specs() {
        let out = body(
            json!({"messages": [text("user", "x")], "tool_choice": {"type": "auto"},
            "extra": {"tools": [
                {"type": "function", "cache_control": {"type": "ephemeral", "ttl": "1h"},
                 "function": {"name": "f", "description": "d", "parameters": {"type": "object"},
                              "strict": true, "x-vendor": 1}},
                {"type": "function", "function": {"name": "g"}}]}}),
        );
        assert_eq!(
            out["toolConfig"]["tools"],
            json!([
                {"toolSpec": {"name": "f", "description": "d", "strict": true,
                    "inputSchema": {"json": {"type": "object"}}}},
                {"cachePoint": {"type": "default", "ttl": "1h"}},
                {"toolSpec": {"name": "g", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            ])
        );
        assert_eq!(out["toolConfig"]["toolChoice"], json!({"auto": {}}));
    }

    #[test]
    fn other_tool_kinds_and_choices_are_refused_by_name() {
        let user = json!([text("user", "x")]);
        assert_eq!(
            refusal(json!({"messages": user, "extra": {"tools": [
                {"type": "function", "function": {"name": "f"}},
                {"type": "custom", "custom": {"name": "x"}}]}})),
            "tools[1]"
        );
        assert_eq!(
            refusal(json!({"messages": user, "tools": [{"name": "f"}],
                "extra": {"tool_choice": "sometimes"}})),
            "tool_choice"
        );
        assert_eq!(
            refusal(json!({"messages": user, "tools": [{"name": "f"}],
                "extra": {"tool_choice": {"type": "allowed_tools"}}})),
            "tool_choice"
        );
        let named = body(json!({"messages": user, "tools": [{"name": "f"}],
            "extra": {"tool_choice": {"type": "function", "function": {"name": "f"}, "x": 1}}}));
        assert_eq!(
            named["toolConfig"]["toolChoice"],
            json!({"tool": {"name": "f"}})
        );
    }

    #[test]
    fn response_formats_kept_in_extra() {
        let user = json!([text("user", "x")]);
        let schema = body(json!({"messages": user, "extra": {"response_format": {
            "type": "json_schema", "x": 1, "json_schema": {"name": "answer", "schema": {"type": "object"}}}}}));
        assert_eq!(
            schema["toolConfig"]["toolChoice"],
            json!({"tool": {"name": "answer"}})
        );
        assert_eq!(
            schema["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"],
            json!({"json": {"type": "object"}})
        );
        let object = body(
            json!({"messages": user, "extra": {"response_format": {"type": "json_object", "x": 1}}}),
        );
        assert!(object["system"][0]["text"]
            .as_str()
            .unwrap()
            .contains("JSON"));
        for format in [
            json!({"type": "json_schema"}),
            json!({"type": "json_schema", "json_schema": {"schema": {}}}),
            json!({"type": "yaml"}),
        ] {
            assert_eq!(
                refusal(json!({"messages": user, "extra": {"response_format": format}})),
                "response_format"
            );
        }
    }
}
