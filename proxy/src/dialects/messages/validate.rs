//! The Messages API's own request rules that serde cannot express, so a bad request fails here
//! with a clear 400 naming the parameter instead of at the upstream (or, worse, at an upstream
//! of another format that would accept it).

use std::collections::HashSet;

use super::wire::{MessagesRequest, Role, System, Thinking, Tool, ToolChoice};
use crate::api::InvalidField;

/// Anthropic's smallest thinking budget.
pub const MIN_THINKING_BUDGET: u32 = 1024;

impl MessagesRequest {
    /// The rules of `POST /v1/messages`.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let max_tokens = match self.max_tokens {
            None => return Err(InvalidField::new("max_tokens", "`max_tokens` is required")),
            Some(0) => {
                return Err(InvalidField::new(
                    "max_tokens",
                    "`max_tokens` must be at least 1",
                ))
            }
            Some(max) => max,
        };
        self.validate_common()?;
        if let Some(Thinking::Enabled { budget_tokens, .. }) = &self.thinking {
            if *budget_tokens >= max_tokens {
                return Err(InvalidField::new(
                    "max_tokens",
                    "`max_tokens` must be greater than `thinking.budget_tokens`",
                ));
            }
        }
        Ok(())
    }

    /// The rules of `POST /v1/messages/count_tokens`, whose body has no `max_tokens`.
    pub fn validate_count_tokens(&self) -> Result<(), InvalidField> {
        self.validate_common()
    }

    fn validate_common(&self) -> Result<(), InvalidField> {
        if self.model.is_empty() {
            return Err(InvalidField::new("model", "`model` must not be empty"));
        }
        self.validate_messages()?;
        if let Some(System::Blocks(blocks)) = &self.system {
            if let Some(k) = blocks.iter().position(|b| b.kind != "text") {
                return Err(InvalidField::new(
                    format!("system[{k}].type"),
                    "system blocks must be of type `text`",
                ));
            }
        }
        if self.temperature.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(InvalidField::new(
                "temperature",
                "`temperature` must be between 0 and 1",
            ));
        }
        if self.top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(InvalidField::new(
                "top_p",
                "`top_p` must be between 0 and 1",
            ));
        }
        if let Some(Thinking::Enabled { budget_tokens, .. }) = &self.thinking {
            if *budget_tokens < MIN_THINKING_BUDGET {
                return Err(InvalidField::new(
                    "thinking.budget_tokens",
                    format!("`thinking.budget_tokens` must be at least {MIN_THINKING_BUDGET}"),
                ));
            }
        }
        let names = self.validate_tools()?;
        self.validate_tool_choice(&names)
    }

    fn validate_messages(&self) -> Result<(), InvalidField> {
        let Some(first) = self.messages.first() else {
            return Err(InvalidField::new(
                "messages",
                "`messages` must contain at least one message",
            ));
        };
        if first.role != Role::User {
            return Err(InvalidField::new(
                "messages[0].role",
                "the first message must use the `user` role",
            ));
        }
        let last = self.messages.len() - 1;
        for (i, message) in self.messages.iter().enumerate() {
            // Only a final assistant message (a prefill) may be empty.
            if message.content.is_empty() && !(i == last && message.role == Role::Assistant) {
                return Err(InvalidField::new(
                    format!("messages[{i}].content"),
                    format!(
                        "messages[{i}]: all messages must have non-empty content except for the optional final assistant message"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks tool names; returns them for `tool_choice`.
    fn validate_tools(&self) -> Result<HashSet<&str>, InvalidField> {
        let mut names = HashSet::new();
        for (k, tool) in self.tools.iter().flatten().enumerate() {
            let name = match tool {
                Tool::Custom(custom) => {
                    let valid = !custom.name.is_empty()
                        && custom.name.len() <= 128
                        && custom
                            .name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !valid {
                        return Err(InvalidField::new(
                            format!("tools[{k}].name"),
                            "a tool name must match ^[a-zA-Z0-9_-]{1,128}$",
                        ));
                    }
                    custom.name.as_str()
                }
                Tool::Other(value) => value.get("name").and_then(|n| n.as_str()).unwrap_or(""),
            };
            if !name.is_empty() && !names.insert(name) {
                return Err(InvalidField::new(
                    format!("tools[{k}].name"),
                    format!("tool names must be unique; `{name}` is repeated"),
                ));
            }
        }
        Ok(names)
    }

    fn validate_tool_choice(&self, names: &HashSet<&str>) -> Result<(), InvalidField> {
        match &self.tool_choice {
            Some(ToolChoice::Any { .. } | ToolChoice::Tool { .. }) if names.is_empty() => {
                Err(InvalidField::new(
                    "tool_choice",
                    "`tool_choice` may only be specified while providing tools",
                ))
            }
            Some(ToolChoice::Tool { name, .. }) if !names.contains(name.as_str()) => {
                Err(InvalidField::new(
                    "tool_choice.name",
                    format!("tool `{name}` is not one of the provided tools"),
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(value: Value) -> MessagesRequest {
        serde_json::from_str(&value.to_string()).unwrap()
    }

    fn base() -> Value {
        json!({"model": "claude", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}]})
    }

    fn with(changes: Value) -> MessagesRequest {
        let mut body = base();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        parse(body)
    }

    fn param(request: &MessagesRequest) -> String {
        request.validate().unwrap_err().param
    }

    #[test]
    fn a_plain_request_and_a_prefill_pass() {
        parse(base()).validate().unwrap();
        with(json!({"messages": [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": ""}]}))
        .validate()
        .unwrap();
    }

    #[test]
    fn each_broken_rule_names_its_parameter() {
        let cases = [
            (json!({"max_tokens": null}), "max_tokens"),
            (json!({"max_tokens": 0}), "max_tokens"),
            (json!({"model": ""}), "model"),
            (json!({"messages": []}), "messages"),
            (
                json!({"messages": [{"role": "assistant", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"},
                    {"role": "assistant", "content": []}, {"role": "user", "content": "y"}]}),
                "messages[1].content",
            ),
            (
                json!({"system": [{"type": "image", "text": "x"}]}),
                "system[0].type",
            ),
            (json!({"temperature": 1.5}), "temperature"),
            (json!({"top_p": -0.1}), "top_p"),
            (
                json!({"thinking": {"type": "enabled", "budget_tokens": 512}}),
                "thinking.budget_tokens",
            ),
            (
                json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}),
                "max_tokens",
            ),
            (
                json!({"tools": [{"name": "bad name", "input_schema": {}}]}),
                "tools[0].name",
            ),
            (
                json!({"tools": [{"name": "f", "input_schema": {}}, {"name": "f", "input_schema": {}}]}),
                "tools[1].name",
            ),
            (json!({"tool_choice": {"type": "any"}}), "tool_choice"),
            (
                json!({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "tool", "name": "g"}}),
                "tool_choice.name",
            ),
        ];
        for (changes, expected) in cases {
            let request = with(changes.clone());
            assert_eq!(param(&request), expected, "{changes}");
        }
    }

    #[test]
    fn a_server_tool_can_be_chosen_by_name() {
        with(
            json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "tool", "name": "web_search"}}),
        )
        .validate()
        .unwrap();
    }

    #[test]
    fn count_tokens_bodies_need_no_max_tokens() {
        let request = with(json!({"max_tokens": null,
            "thinking": {"type": "enabled", "budget_tokens": 2048}}));
        request.validate_count_tokens().unwrap();
        assert_eq!(param(&request), "max_tokens");
        let empty = with(json!({"max_tokens": null, "messages": []}));
        assert_eq!(empty.validate_count_tokens().unwrap_err().param, "messages");
    }
}
