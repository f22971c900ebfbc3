//! Tool calling: whether a request gets a tool call, which tool, and the sample
//! arguments built from the tool's JSON-schema `required` properties.

use serde_json::{Map, Value};

use super::errors::ApiError;

/// The function the simulator will call and its JSON-encoded arguments.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PlannedCall {
    pub name: String,
    pub arguments: String,
}

/// A function the model may call: its name and JSON-schema parameters, whatever the
/// request's dialect (Chat nests them under `function`, Responses keeps them flat).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FunctionSpec<'a> {
    pub name: Option<&'a str>,
    pub parameters: Option<&'a Value>,
}

impl<'a> FunctionSpec<'a> {
    /// Reads `name` and `parameters` of a function object.
    pub(crate) fn of(function: &'a Value) -> Self {
        Self {
            name: function.get("name").and_then(Value::as_str),
            parameters: function.get("parameters"),
        }
    }
}

/// Decides on a tool call: `tools` non-empty, `tool_choice` not `"none"`, and the
/// conversation not just answered by a tool. Picks the named tool of
/// `{"type":"function","function":{"name":..}}`, else the first function tool.
pub(crate) fn plan_tool_call(
    request: &Map<String, Value>,
    last_role: &str,
) -> Result<Option<PlannedCall>, ApiError> {
    let tools = match request.get("tools") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(tools)) => tools,
        Some(_) => {
            return Err(ApiError::invalid_request(
                "'tools' must be an array",
                "tools",
            ))
        }
    };
    let choice = request.get("tool_choice");
    if tools.is_empty() || last_role == "tool" || choice.and_then(Value::as_str) == Some("none") {
        return Ok(None);
    }
    let functions: Vec<FunctionSpec<'_>> = tools
        .iter()
        .filter_map(|tool| tool.get("function"))
        .map(FunctionSpec::of)
        .collect();
    let wanted = choice
        .and_then(|choice| choice.get("function"))
        .and_then(|function| function.get("name"))
        .and_then(Value::as_str);
    choose_call(&functions, wanted)
}

/// The call to `wanted` (which must be among `functions`), else to the first function;
/// `None` when there is no function to call.
pub(crate) fn choose_call(
    functions: &[FunctionSpec<'_>],
    wanted: Option<&str>,
) -> Result<Option<PlannedCall>, ApiError> {
    let function = match wanted {
        Some(wanted) => functions
            .iter()
            .find(|function| function.name == Some(wanted))
            .ok_or_else(|| {
                ApiError::invalid_request(
                    format!("tool_choice names function {wanted:?}, which is not in 'tools'"),
                    "tool_choice",
                )
            })?,
        None => match functions.first() {
            Some(function) => function,
            None => return Ok(None),
        },
    };
    let name = function
        .name
        .ok_or_else(|| ApiError::invalid_request("every function tool needs a 'name'", "tools"))?;
    let arguments = sample_arguments(function.parameters);
    Ok(Some(PlannedCall {
        name: name.to_owned(),
        arguments: Value::Object(arguments).to_string(),
    }))
}

/// An object with every `required` property set to a sample of its schema type.
pub(crate) fn sample_arguments(parameters: Option<&Value>) -> Map<String, Value> {
    let Some(parameters) = parameters else {
        return Map::new();
    };
    let properties = parameters.get("properties");
    parameters
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|name| {
            let schema = properties.and_then(|properties| properties.get(name));
            (name.to_owned(), sample_value(schema))
        })
        .collect()
}

fn sample_value(schema: Option<&Value>) -> Value {
    let Some(schema) = schema else {
        return Value::from("sample");
    };
    // An enum constrains the value more than its type does.
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|v| v.first())
    {
        return first.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        // `["string", "null"]`: the first non-null type.
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        _ => "string",
    };
    match kind {
        "number" | "integer" => Value::from(1),
        "boolean" => Value::Bool(true),
        "array" => Value::Array(Vec::new()),
        // Nested objects get their own required properties (structured outputs nest them).
        "object" => Value::Object(sample_arguments(Some(schema))),
        "null" => Value::Null,
        _ => Value::from("sample"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn samples_each_required_property_by_type() -> anyhow::Result<()> {
        let req = request(json!({"tools": [{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                               "unit": {"type": "string", "enum": ["c", "f"]},
                               "optional": {"type": "number"}},
                "required": ["city", "days", "unit"]}}}]}));
        let call = plan_tool_call(&req, "user").map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let call = call.ok_or_else(|| anyhow::anyhow!("expected a tool call"))?;
        assert_eq!(call.name, "get_weather");
        let args: Value = serde_json::from_str(&call.arguments)?;
        assert_eq!(args, json!({"city": "sample", "days": 1, "unit": "c"}));
        Ok(())
    }

    #[test]
    fn no_call_after_a_tool_result_or_with_none() -> anyhow::Result<()> {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let req = request(json!({"tools": tools}));
        assert_eq!(
            plan_tool_call(&req, "tool").map_err(|e| anyhow::anyhow!("{e:?}"))?,
            None
        );
        let req = request(json!({"tools": tools, "tool_choice": "none"}));
        assert_eq!(
            plan_tool_call(&req, "user").map_err(|e| anyhow::anyhow!("{e:?}"))?,
            None
        );
        Ok(())
    }

    #[test]
    fn named_tool_choice_wins() -> anyhow::Result<()> {
        let req = request(json!({
            "tools": [{"type": "function", "function": {"name": "a"}},
                      {"type": "function", "function": {"name": "b"}}],
            "tool_choice": {"type": "function", "function": {"name": "b"}}}));
        let call = plan_tool_call(&req, "user").map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(call.map(|c| c.name), Some("b".to_owned()));
        Ok(())
    }
}
