//! The `POST /v1/responses` request, typed (docs/wire-formats.md has the Chat side; the
//! Responses fields are those of OpenAI's API reference), validated as OpenAI validates it,
//! and reduced to the plan of the answer the chat path's brain gives.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::openai_sim::errors::ApiError;
use crate::openai_sim::request::{ChatPlan, Reply};
use crate::openai_sim::tokens::answer_text;
use crate::openai_sim::tools::{choose_call, sample_arguments, FunctionSpec};

/// The roles a message item may have.
const ROLES: [&str; 4] = ["user", "assistant", "system", "developer"];

/// OpenAI's lower bound for `max_output_tokens`.
const MIN_OUTPUT_TOKENS: u64 = 16;

/// The request body. Fields the simulator does not act on are carried in `extra`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponsesRequest {
    pub model: Option<String>,
    pub input: Option<Input>,
    pub instructions: Option<String>,
    pub tools: Option<Vec<ToolDef>>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub text: Option<TextConfig>,
    pub reasoning: Option<ReasoningConfig>,
    pub store: Option<bool>,
    pub stream: Option<bool>,
    pub previous_response_id: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub include: Option<Vec<String>>,
    pub background: Option<bool>,
    pub conversation: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input`: one user message as a string, or a list of items (parsed one by one, so an
/// error can name the item).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Input {
    Text(String),
    Items(Vec<Value>),
}

/// One input item: typed by `type`, or a message without one (the "easy" form). Fields no
/// rule reads (`id`, `status`, image details, …) are accepted and ignored: input items are
/// read, never echoed.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum InputItem {
    Typed(TypedItem),
    Easy(MessageItem),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum TypedItem {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
    Reasoning(ReasoningItem),
    ItemReference {
        id: String,
    },
    /// Built-in tool calls and outputs and items newer than the simulator: counted, not read.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MessageItem {
    pub role: String,
    pub content: Content,
}

/// A message's content: a string, or parts (`input_text`, `output_text`, `input_image`, …).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub(crate) struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FunctionCallItem {
    pub call_id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FunctionCallOutputItem {
    pub call_id: String,
    pub output: Content,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReasoningItem {
    pub id: Option<String>,
    #[serde(default)]
    pub summary: Vec<ContentPart>,
    pub encrypted_content: Option<String>,
}

/// A tool: `function` tools are read, built-in ones (`web_search`, `file_search`, …) are
/// accepted and echoed. Every field is echoed back in the response.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct ToolDef {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `"none"` / `"auto"` / `"required"`, or an object such as `{"type":"function","name"}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum ToolChoice {
    Mode(String),
    Object {
        #[serde(rename = "type")]
        kind: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct TextConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type":"text"}`, `{"type":"json_object"}` or `{"type":"json_schema","name","schema",…}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct TextFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct ReasoningConfig {
    pub effort: Option<String>,
    pub summary: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The reasoning item an answer starts with, when the request asks for reasoning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReasoningPlan {
    /// `reasoning.summary` was set: the item carries a summary (streamed as deltas).
    pub summary: bool,
    /// `include` has `reasoning.encrypted_content`.
    pub encrypted: bool,
}

/// A validated Responses request: the chat brain's plan plus what only Responses has.
#[derive(Debug)]
pub(crate) struct ResponsesPlan {
    pub chat: ChatPlan,
    pub reasoning: Option<ReasoningPlan>,
    /// `store` was not `false` (it defaults to true): a proxy should always send `false`.
    pub store_requested: bool,
    /// Echoed in the response object.
    pub request: ResponsesRequest,
}

/// What a valid request's answer is computed from: the sim's name (answers and the
/// reasoning items' `encrypted_content` carry it) and its answer length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Brain<'a> {
    pub name: &'a str,
    pub output_tokens: usize,
}

impl Brain<'_> {
    /// The `encrypted_content` prefix of this sim's reasoning items: another sim's (or
    /// provider's) items are refused, as OpenAI refuses reasoning it cannot decrypt.
    pub(crate) fn encrypted_prefix(&self) -> String {
        format!("enc_{}:", self.name)
    }
}

pub(crate) fn parse_responses(body: &[u8], brain: Brain<'_>) -> Result<ResponsesPlan, ApiError> {
    let request: ResponsesRequest = serde_json::from_slice(body).map_err(|err| {
        ApiError::unparseable(format!(
            "We could not parse the JSON body of your request. ({err})"
        ))
    })?;
    let model = match &request.model {
        Some(model) => model.clone(),
        None => {
            return Err(ApiError::invalid_request(
                "Missing required parameter: 'model'.",
                "model",
            ))
        }
    };
    if let Some(id) = &request.previous_response_id {
        // The simulator keeps no responses: a proxy must expand the chain itself.
        return Err(ApiError::invalid_request(
            format!("Previous response with id '{id}' not found."),
            "previous_response_id",
        )
        .with_code("previous_response_not_found"));
    }
    if request.conversation.as_ref().is_some_and(|c| !c.is_null()) {
        return Err(ApiError::invalid_request(
            "The simulator keeps no conversations.",
            "conversation",
        ));
    }
    if request.background == Some(true) {
        return Err(ApiError::invalid_request(
            "Background responses are not supported by the simulator.",
            "background",
        ));
    }
    if let Some(max) = request.max_output_tokens {
        if max < MIN_OUTPUT_TOKENS {
            return Err(ApiError::invalid_request(
                format!("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}, but got {max} instead."),
                "max_output_tokens",
            )
            .with_code("integer_below_min_value"));
        }
    }
    let items = input_items(&request)?;
    check_tool_outputs(&items)?;
    check_reasoning_items(&items, brain)?;
    let reasoning = reasoning_plan(&request);
    let reply = reply(&request, &items, brain)?;
    let prompt_tokens = prompt_tokens(request.instructions.as_deref(), &items);
    let store_requested = request.store != Some(false);
    Ok(ResponsesPlan {
        chat: ChatPlan {
            model,
            stream: request.stream == Some(true),
            include_usage: false,
            prompt_tokens,
            max_tokens: request.max_output_tokens,
            reply,
        },
        reasoning,
        store_requested,
        request,
    })
}

fn input_items(request: &ResponsesRequest) -> Result<Vec<InputItem>, ApiError> {
    match &request.input {
        None => Err(ApiError::invalid_request(
            "Missing required parameter: 'input'.",
            "input",
        )),
        Some(Input::Text(text)) => Ok(vec![InputItem::Easy(MessageItem {
            role: "user".to_owned(),
            content: Content::Text(text.clone()),
        })]),
        Some(Input::Items(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let item = InputItem::deserialize(item).map_err(|_| {
                    ApiError::invalid_request(
                        format!("Invalid value for 'input[{index}]': not an input item ({item})."),
                        "input",
                    )
                })?;
                match &item {
                    InputItem::Typed(TypedItem::ItemReference { id }) => {
                        return Err(ApiError::not_found(format!(
                            "Item with id '{id}' not found. The simulator stores no items."
                        )))
                    }
                    InputItem::Easy(message) | InputItem::Typed(TypedItem::Message(message))
                        if !ROLES.contains(&message.role.as_str()) =>
                    {
                        return Err(ApiError::invalid_request(
                            format!(
                                "Invalid value for 'input[{index}].role': '{}'. Supported values are: 'assistant', 'system', 'developer', and 'user'.",
                                message.role
                            ),
                            "input",
                        ))
                    }
                    _ => {}
                }
                Ok(item)
            })
            .collect(),
    }
}

/// Every `function_call_output` answers a `function_call` earlier in the input, as OpenAI
/// requires (a proxy that loses the call while expanding a conversation is caught here).
fn check_tool_outputs(items: &[InputItem]) -> Result<(), ApiError> {
    let mut calls: Vec<&str> = Vec::new();
    for item in items {
        match item {
            InputItem::Typed(TypedItem::FunctionCall(call)) => calls.push(&call.call_id),
            InputItem::Typed(TypedItem::FunctionCallOutput(output))
                if !calls.contains(&output.call_id.as_str()) =>
            {
                return Err(ApiError::invalid_request(
                    format!(
                        "No tool call found for function call output with call_id {}.",
                        output.call_id
                    ),
                    "input",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reasoning items must come from this simulator (see [`Brain::encrypted_prefix`]).
fn check_reasoning_items(items: &[InputItem], brain: Brain<'_>) -> Result<(), ApiError> {
    let prefix = brain.encrypted_prefix();
    for item in items {
        let InputItem::Typed(TypedItem::Reasoning(reasoning)) = item else {
            continue;
        };
        if let Some(encrypted) = &reasoning.encrypted_content {
            if !encrypted.starts_with(&prefix) {
                let id = reasoning.id.as_deref().unwrap_or("(no id)");
                return Err(ApiError::invalid_request(
                    format!("The encrypted content for item {id} could not be verified."),
                    "input",
                )
                .with_code("invalid_encrypted_content"));
            }
        }
    }
    Ok(())
}

fn reasoning_plan(request: &ResponsesRequest) -> Option<ReasoningPlan> {
    let reasoning = request.reasoning.as_ref()?;
    if reasoning.effort.as_deref() == Some("none") {
        return None;
    }
    let summary = reasoning.summary.is_some() || reasoning.extra.contains_key("generate_summary");
    let encrypted = request
        .include
        .iter()
        .flatten()
        .any(|included| included == "reasoning.encrypted_content");
    Some(ReasoningPlan { summary, encrypted })
}

/// The chat brain's rules in Responses terms: after a `function_call_output`, what the tool
/// said; a function call when function tools are offered and `tool_choice` allows one; else
/// the structured output `text.format` asks for, or the greeting.
fn reply(
    request: &ResponsesRequest,
    items: &[InputItem],
    brain: Brain<'_>,
) -> Result<Reply, ApiError> {
    if let Some(InputItem::Typed(TypedItem::FunctionCallOutput(output))) = items.last() {
        return Ok(Reply::ToolResult(content_text(&output.output)));
    }
    let functions: Vec<FunctionSpec<'_>> = request
        .tools
        .iter()
        .flatten()
        .filter(|tool| tool.kind == "function")
        .map(|tool| FunctionSpec {
            name: tool.name.as_deref(),
            parameters: tool.parameters.as_ref(),
        })
        .collect();
    let (allowed, wanted) = match &request.tool_choice {
        None => (true, None),
        Some(ToolChoice::Mode(mode)) => (mode != "none", None),
        Some(ToolChoice::Object { kind, name, .. }) if kind == "function" => {
            let name = name.as_deref().ok_or_else(|| {
                ApiError::invalid_request(
                    "Missing required parameter: 'tool_choice.name'.",
                    "tool_choice",
                )
            })?;
            (true, Some(name))
        }
        // Built-in tool selectors and `allowed_tools`: any function may be called.
        Some(ToolChoice::Object { .. }) => (true, None),
    };
    if allowed {
        if let Some(call) = choose_call(&functions, wanted)? {
            return Ok(Reply::ToolCall(call));
        }
    }
    let format = request.text.as_ref().and_then(|text| text.format.as_ref());
    match format.map(|format| format.kind.as_str()) {
        Some("json_schema") => {
            let format = format.and_then(|f| f.schema.as_ref().map(|schema| (f, schema)));
            let Some((format, schema)) = format else {
                return Err(ApiError::invalid_request(
                    "Missing required parameter: 'text.format.schema'.",
                    "text.format.schema",
                ));
            };
            if format.name.is_none() {
                return Err(ApiError::invalid_request(
                    "Missing required parameter: 'text.format.name'.",
                    "text.format.name",
                ));
            }
            Ok(Reply::Text(
                Value::Object(sample_arguments(Some(schema))).to_string(),
            ))
        }
        Some("json_object") => {
            let answer = answer_text(brain.name, brain.output_tokens);
            Ok(Reply::Text(
                serde_json::json!({ "answer": answer }).to_string(),
            ))
        }
        _ => Ok(Reply::Greeting),
    }
}

/// Text of a content string or of each text-bearing part (a refusal's text included;
/// images and files count for nothing).
fn content_text(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        Content::Parts(parts) => parts.iter().filter_map(part_text).collect(),
    }
}

fn part_text(part: &ContentPart) -> Option<&str> {
    match part.kind.as_str() {
        "refusal" => part.refusal.as_deref(),
        "input_text" | "output_text" | "text" | "summary_text" | "reasoning_text" => {
            part.text.as_deref()
        }
        _ => None,
    }
}

/// ceil(characters of every text in the instructions and the items / 4) + 3 per item
/// (the instructions count as one), at least 1: the chat rule, applied to items.
fn prompt_tokens(instructions: Option<&str>, items: &[InputItem]) -> u64 {
    let item_chars = |item: &InputItem| match item {
        InputItem::Easy(message) | InputItem::Typed(TypedItem::Message(message)) => {
            content_text(&message.content).chars().count()
        }
        InputItem::Typed(TypedItem::FunctionCall(call)) => {
            call.name.chars().count() + call.arguments.chars().count()
        }
        InputItem::Typed(TypedItem::FunctionCallOutput(output)) => {
            content_text(&output.output).chars().count()
        }
        InputItem::Typed(TypedItem::Reasoning(reasoning)) => reasoning
            .summary
            .iter()
            .filter_map(part_text)
            .map(|text| text.chars().count())
            .sum(),
        InputItem::Typed(TypedItem::ItemReference { .. } | TypedItem::Other) => 0,
    };
    let chars: usize = instructions.map_or(0, |text| text.chars().count())
        + items.iter().map(item_chars).sum::<usize>();
    let count = items.len() as u64 + u64::from(instructions.is_some());
    (chars.div_ceil(4) as u64 + 3 * count).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BRAIN: Brain<'static> = Brain {
        name: "sim",
        output_tokens: 8,
    };

    fn plan(body: Value) -> Result<ResponsesPlan, ApiError> {
        parse_responses(body.to_string().as_bytes(), BRAIN)
    }

    fn refusal(body: Value) -> (u16, Option<&'static str>, Option<&'static str>) {
        match plan(body) {
            Ok(_) => (200, None, None),
            Err(error) => (error.status.as_u16(), error.param, error.code),
        }
    }

    #[test]
    fn a_string_input_is_one_user_message() -> anyhow::Result<()> {
        let plan = plan(json!({"model": "m", "input": "abcdefgh", "instructions": "abcd"}))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        // 12 chars → 3 tokens, plus 3 for the instructions and 3 for the message.
        assert_eq!(plan.chat.prompt_tokens, 9);
        assert_eq!(plan.chat.reply, Reply::Greeting);
        assert!(plan.store_requested, "store defaults to true");
        assert!(!plan.chat.stream);
        assert_eq!(plan.reasoning, None);
        Ok(())
    }

    #[test]
    fn refuses_what_a_stateless_upstream_must_refuse() {
        assert_eq!(refusal(json!({"input": "x"})).1, Some("model"));
        assert_eq!(refusal(json!({"model": "m"})).1, Some("input"));
        assert_eq!(
            refusal(json!({"model": "m", "input": "x", "previous_response_id": "resp_1"})),
            (
                400,
                Some("previous_response_id"),
                Some("previous_response_not_found")
            )
        );
        assert_eq!(
            refusal(json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]})).0,
            404
        );
        assert_eq!(
            refusal(json!({"model": "m", "input": "x", "max_output_tokens": 15})).2,
            Some("integer_below_min_value")
        );
        assert_eq!(
            refusal(json!({"model": "m", "input": [{"type": "function_call"}]})).1,
            Some("input")
        );
        assert_eq!(
            refusal(json!({"model": "m", "input": [{"role": "tool", "content": "x"}]})).1,
            Some("input")
        );
        let orphan = json!({"model": "m", "input": [
            {"type": "function_call_output", "call_id": "call_9", "output": "x"}]});
        assert_eq!(refusal(orphan).0, 400, "an output needs its call");
        let foreign = json!({"model": "m", "input": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc_other:x"},
            {"role": "user", "content": "x"}]});
        assert_eq!(refusal(foreign).2, Some("invalid_encrypted_content"));
        let own = json!({"model": "m", "input": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc_sim:x"},
            {"role": "user", "content": "x"}]});
        assert_eq!(refusal(own).0, 200);
    }

    #[test]
    fn function_tools_are_flat_and_built_in_tools_are_accepted() -> anyhow::Result<()> {
        let tools = json!([{"type": "web_search"},
            {"type": "function", "name": "a", "parameters": {"type": "object"}},
            {"type": "function", "name": "b", "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
        let named = plan(json!({"model": "m", "input": "x", "tools": tools,
                                "tool_choice": {"type": "function", "name": "b"}}))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let Reply::ToolCall(call) = named.chat.reply else {
            anyhow::bail!("expected a call, got {:?}", named.chat.reply);
        };
        assert_eq!(
            (call.name.as_str(), call.arguments.as_str()),
            ("b", r#"{"city":"sample"}"#)
        );
        let none = plan(json!({"model": "m", "input": "x", "tools": tools, "tool_choice": "none"}))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(none.chat.reply, Reply::Greeting);
        let built_in_only =
            plan(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}))
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(built_in_only.chat.reply, Reply::Greeting);
        Ok(())
    }

    #[test]
    fn a_function_call_output_gets_what_the_tool_said() -> anyhow::Result<()> {
        let body = json!({"model": "m", "tools": [{"type": "function", "name": "f"}], "input": [
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"}]});
        let plan = plan(body).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(plan.chat.reply, Reply::ToolResult("18C".to_owned()));
        Ok(())
    }

    #[test]
    fn structured_output_follows_the_schema() -> anyhow::Result<()> {
        let format = json!({"format": {"type": "json_schema", "name": "w", "strict": true,
            "schema": {"type": "object", "properties": {"city": {"type": "string"},
                "temp": {"type": "number"}}, "required": ["city", "temp"]}}});
        let plan_ = plan(json!({"model": "m", "input": "x", "text": format}))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let Reply::Text(text) = plan_.chat.reply else {
            anyhow::bail!("expected text");
        };
        assert_eq!(
            serde_json::from_str::<Value>(&text)?,
            json!({"city": "sample", "temp": 1})
        );
        let object =
            plan(json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}}))
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let Reply::Text(text) = object.chat.reply else {
            anyhow::bail!("expected text");
        };
        assert_eq!(
            serde_json::from_str::<Value>(&text)?["answer"],
            answer_text("sim", 8)
        );
        Ok(())
    }

    #[test]
    fn reasoning_and_store_are_read() -> anyhow::Result<()> {
        let plan = plan(
            json!({"model": "m", "input": "x", "store": false, "stream": true,
            "reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"]}),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(
            plan.reasoning,
            Some(ReasoningPlan {
                summary: true,
                encrypted: true
            })
        );
        assert!(!plan.store_requested);
        assert!(plan.chat.stream);
        Ok(())
    }
}
