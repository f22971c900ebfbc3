//! The Responses API's own request rules that serde cannot express, so a bad request fails
//! here with a 400 naming the parameter instead of at an upstream.

use std::collections::HashSet;

use serde_json::Value;

use super::wire::{Input, ResponsesRequest, ToolChoice};
use crate::api::InvalidField;

/// OpenAI's smallest `max_output_tokens`.
pub const MIN_OUTPUT_TOKENS: u32 = 16;

const EFFORTS: [&str; 7] = ["none", "minimal", "low", "medium", "high", "xhigh", "max"];

impl ResponsesRequest {
    /// The rules of `POST /v1/responses`.
    pub fn validate(&self) -> Result<(), InvalidField> {
        if self.model.is_empty() {
            return Err(InvalidField::new("model", "`model` must not be empty"));
        }
        let empty_input = match &self.input {
            None => true,
            Some(Input::Text(text)) => text.is_empty(),
            Some(Input::Items(items)) => items.is_empty(),
        };
        if empty_input && self.previous_response_id.is_none() {
            return Err(InvalidField::new(
                "input",
                "`input` is required (or `previous_response_id`)",
            ));
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(InvalidField::new(
                "temperature",
                "`temperature` must be between 0 and 2",
            ));
        }
        if self.top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(InvalidField::new(
                "top_p",
                "`top_p` must be between 0 and 1",
            ));
        }
        if self
            .max_output_tokens
            .is_some_and(|m| m < MIN_OUTPUT_TOKENS)
        {
            return Err(InvalidField::new(
                "max_output_tokens",
                format!("`max_output_tokens` must be at least {MIN_OUTPUT_TOKENS}"),
            ));
        }
        if self.extra.get("background").and_then(Value::as_bool) == Some(true) {
            return Err(InvalidField::new(
                "background",
                "`background: true` is not supported by this proxy",
            ));
        }
        self.validate_metadata()?;
        self.validate_tools()?;
        self.validate_format()?;
        if let Some(effort) = self.reasoning.as_ref().and_then(|r| r.effort.as_deref()) {
            if !EFFORTS.contains(&effort) {
                return Err(InvalidField::new(
                    "reasoning.effort",
                    format!("unknown reasoning effort `{effort}`"),
                ));
            }
        }
        Ok(())
    }

    fn validate_metadata(&self) -> Result<(), InvalidField> {
        let Some(metadata) = &self.metadata else {
            return Ok(());
        };
        if metadata.len() > 16 {
            return Err(InvalidField::new(
                "metadata",
                "`metadata` holds at most 16 pairs",
            ));
        }
        for (key, value) in metadata {
            let param = || format!("metadata.{key}");
            let Some(value) = value.as_str() else {
                return Err(InvalidField::new(
                    param(),
                    "metadata values must be strings",
                ));
            };
            if key.chars().count() > 64 || value.chars().count() > 512 {
                return Err(InvalidField::new(
                    param(),
                    "metadata keys are at most 64 characters and values at most 512",
                ));
            }
        }
        Ok(())
    }

    fn validate_tools(&self) -> Result<(), InvalidField> {
        let mut names = HashSet::new();
        for (i, tool) in self.tools.iter().flatten().enumerate() {
            if tool.kind != "function" {
                continue;
            }
            let Some(name) = tool.name.as_deref().filter(|n| valid_name(n)) else {
                return Err(InvalidField::new(
                    format!("tools[{i}].name"),
                    "a function tool needs a `name` of letters, digits, `_` and `-` (at most 64)",
                ));
            };
            if !names.insert(name) {
                return Err(InvalidField::new(
                    format!("tools[{i}].name"),
                    format!("tool name `{name}` is declared twice"),
                ));
            }
        }
        match &self.tool_choice {
            Some(ToolChoice::Mode(mode))
                if !["auto", "none", "required"].contains(&mode.as_str()) =>
            {
                Err(InvalidField::new(
                    "tool_choice",
                    format!("unknown tool_choice `{mode}`"),
                ))
            }
            Some(ToolChoice::Object(object)) if object.kind == "function" => {
                match object.name.as_deref() {
                    Some(name) if names.contains(name) => Ok(()),
                    _ => Err(InvalidField::new(
                        "tool_choice.name",
                        "`tool_choice` must name one of the function tools",
                    )),
                }
            }
            _ => Ok(()),
        }
    }

    fn validate_format(&self) -> Result<(), InvalidField> {
        let Some(format) = self.text.as_ref().and_then(|t| t.format.as_ref()) else {
            return Ok(());
        };
        match format.kind.as_str() {
            "text" | "json_object" => Ok(()),
            "json_schema" => {
                if !format.name.as_deref().is_some_and(valid_name) {
                    return Err(InvalidField::new(
                        "text.format.name",
                        "`text.format.name` is required: letters, digits, `_` and `-` (at most 64)",
                    ));
                }
                if format.schema.is_none() {
                    return Err(InvalidField::new(
                        "text.format.schema",
                        "`text.format.schema` is required for `json_schema`",
                    ));
                }
                Ok(())
            }
            other => Err(InvalidField::new(
                "text.format.type",
                format!("unknown text format `{other}`"),
            )),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param_of(body: Value) -> String {
        let request: ResponsesRequest = serde_json::from_value(body).unwrap();
        request.validate().unwrap_err().param
    }

    #[test]
    fn each_rule_names_its_parameter() {
        assert_eq!(param_of(json!({"model": "m"})), "input");
        assert_eq!(param_of(json!({"model": "", "input": "x"})), "model");
        let cases = [
            (json!({"temperature": 3.0}), "temperature"),
            (json!({"top_p": 1.5}), "top_p"),
            (json!({"max_output_tokens": 4}), "max_output_tokens"),
            (json!({"background": true}), "background"),
            (json!({"metadata": {"k": 1}}), "metadata.k"),
            (json!({"tools": [{"type": "function"}]}), "tools[0].name"),
            (
                json!({"tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]}),
                "tools[1].name",
            ),
            (
                json!({"tool_choice": {"type": "function", "name": "g"}}),
                "tool_choice.name",
            ),
            (json!({"tool_choice": "sometimes"}), "tool_choice"),
            (
                json!({"text": {"format": {"type": "json_schema", "schema": {}}}}),
                "text.format.name",
            ),
            (
                json!({"text": {"format": {"type": "json_schema", "name": "x"}}}),
                "text.format.schema",
            ),
            (
                json!({"text": {"format": {"type": "yaml"}}}),
                "text.format.type",
            ),
            (
                json!({"reasoning": {"effort": "extreme"}}),
                "reasoning.effort",
            ),
        ];
        for (extra, param) in cases {
            let mut body = json!({"model": "m", "input": "hi"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            assert_eq!(param_of(body), param);
        }
    }

    #[test]
    fn a_chained_turn_may_omit_input() {
        let request: ResponsesRequest =
            serde_json::from_value(json!({"model": "m", "previous_response_id": "resp_1"}))
                .unwrap();
        assert_eq!(request.validate(), Ok(()));
    }
}
