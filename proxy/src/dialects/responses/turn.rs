//! What routing needs to know about a Responses turn beyond the model: the built-in tools the
//! client declared (only a `responses: native` target whose model allows them can serve), and
//! which provider the conversation's encrypted reasoning came from (only that provider can
//! verify it; docs/responses-dialect.md).

use super::wire::{InputItem, ResponsesRequest};

/// The tool types that have a place in the model; every other type is a built-in tool.
const TRANSLATABLE_TOOLS: [&str; 1] = ["function"];

/// A Responses turn's routing facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnContext {
    /// Built-in tools the client declared: (index in `tools`, type).
    pub builtin_tools: Vec<(usize, String)>,
    /// Input items only an upstream speaking Responses can take (built-in tool calls and
    /// their outputs): (index in the expanded input, type).
    pub native_items: Vec<(usize, String)>,
    /// The provider that produced the `encrypted_content` of the conversation's reasoning
    /// items (the stored turn that produced them); `None` when the client sent reasoning the
    /// proxy has no record of, or none at all.
    pub reasoning_from: Option<String>,
    /// The conversation replays reasoning with `encrypted_content`.
    pub has_encrypted_reasoning: bool,
}

impl TurnContext {
    /// The facts of `wire` whose expanded input is `items`; `reasoning_from` as the chain
    /// says.
    pub fn new(
        wire: &ResponsesRequest,
        items: &[InputItem],
        reasoning_from: Option<String>,
    ) -> Self {
        let builtin_tools = wire
            .tools
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, tool)| !TRANSLATABLE_TOOLS.contains(&tool.kind.as_str()))
            .map(|(i, tool)| (i, tool.kind.clone()))
            .collect();
        let native_items = items
            .iter()
            .enumerate()
            .filter(|(_, item)| matches!(item, InputItem::Other(_)))
            .map(|(i, item)| (i, item.kind().to_owned()))
            .collect();
        let has_encrypted_reasoning = items
            .iter()
            .any(|item| matches!(item, InputItem::Reasoning(r) if r.encrypted_content.is_some()));
        Self {
            builtin_tools,
            native_items,
            reasoning_from: reasoning_from.filter(|_| has_encrypted_reasoning),
            has_encrypted_reasoning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_tools_native_items_and_reasoning_are_noticed() {
        let wire: ResponsesRequest = serde_json::from_value(json!({"model": "m",
            "input": [{"role": "user", "content": "q"},
                {"type": "web_search_call", "id": "ws_1"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"}],
            "tools": [{"type": "function", "name": "f"}, {"type": "web_search_preview"}]}))
        .unwrap();
        let context = TurnContext::new(&wire, &wire.input_items(), Some("oai".to_owned()));
        assert_eq!(
            context.builtin_tools,
            [(1, "web_search_preview".to_owned())]
        );
        assert_eq!(context.native_items, [(1, "web_search_call".to_owned())]);
        assert_eq!(context.reasoning_from.as_deref(), Some("oai"));
        let plain: ResponsesRequest =
            serde_json::from_value(json!({"model": "m", "input": "hi"})).unwrap();
        let context = TurnContext::new(&plain, &plain.input_items(), Some("oai".to_owned()));
        assert_eq!(context, TurnContext::default());
    }
}
