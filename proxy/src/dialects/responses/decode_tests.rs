use super::*;
use crate::dialects::responses::wire::ResponsesRequest;
use serde_json::json;

fn decode(body: Value) -> Request {
    let wire: ResponsesRequest = serde_json::from_str(&body.to_string()).unwrap();
    wire.validate().unwrap();
    decode_request(&wire, &wire.input_items()).unwrap()
}

#[test]
fn a_string_input_is_one_user_message_after_the_instructions() {
    let request = decode(
        json!({"model": "m", "input": "hi", "instructions": "be brief",
        "max_output_tokens": 64, "temperature": 0.5, "top_p": 0.9, "store": false,
        "metadata": {"k": "v"}, "previous_response_id": "resp_1", "truncation": "auto"}),
    );
    assert_eq!(request.dialect, Dialect::Responses);
    assert_eq!(request.system[0].text, "be brief");
    assert_eq!(request.messages.len(), 1);
    assert_eq!(request.messages[0].role, Role::User);
    assert_eq!(request.messages[0].content, vec![Block::text("hi")]);
    assert_eq!(request.max_output_tokens, Some(64));
    assert_eq!(request.sampling.temperature, Some(0.5));
    assert!(request.stream_usage);
    assert_eq!(request.extra["store"], json!(false));
    assert_eq!(request.extra["metadata"], json!({"k": "v"}));
    assert_eq!(request.extra["previous_response_id"], json!("resp_1"));
    assert_eq!(request.extra["truncation"], json!("auto"));
}

#[test]
fn calls_join_the_assistant_turn_and_outputs_fold_into_one_user_message() {
    let request = decode(json!({"model": "m", "input": [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "checking", "annotations": []}]},
        {"type": "function_call", "call_id": "call_1", "name": "w", "arguments": "{\"c\":\"P\"}"},
        {"type": "function_call", "call_id": "call_2", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": "rain"}],
        "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "w"}, "parallel_tool_calls": false}));
    assert!(request.system[0].developer);
    let roles: Vec<Role> = request.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    assert!(matches!(
        &request.messages[0].content[1],
        Block::Image { source: ImageSource::Base64 { media_type, data }, detail: Some(d), .. }
            if media_type == "image/png" && data == "AAAA" && d == "low"
    ));
    let assistant = &request.messages[1].content;
    assert_eq!(assistant.len(), 3);
    assert!(
        matches!(&assistant[1], Block::ToolCall { id, arguments, .. }
        if id == "call_1" && arguments == "{\"c\":\"P\"}")
    );
    assert_eq!(request.messages[2].content.len(), 2);
    assert_eq!(request.tools[0].name, "w");
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Tool {
            name: "w".to_owned()
        })
    );
    assert_eq!(request.parallel_tool_calls, Some(false));
}

#[test]
fn reasoning_with_encrypted_content_becomes_signed_thinking_and_summaries_alone_drop() {
    let request = decode(json!({"model": "m", "input": [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}],
         "encrypted_content": "gAAA"},
        {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "x"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
        {"type": "reasoning", "id": "rs_3", "summary": [],
         "encrypted_content": format!("{REDACTED_PREFIX}b3Bh")},
        {"role": "user", "content": "more"}]}));
    assert_eq!(
        request.messages[1].content,
        vec![
            Block::Thinking {
                text: "think".to_owned(),
                signature: Some("gAAA".to_owned())
            },
            Block::text("a")
        ]
    );
    assert_eq!(
        request.messages[2].content,
        vec![Block::RedactedThinking {
            data: "b3Bh".to_owned()
        }]
    );
}

#[test]
fn formats_effort_and_unknown_items_are_carried() {
    let request = decode(json!({"model": "m", "input": [
        {"role": "user", "content": "q"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"}],
        "text": {"format": {"type": "json_schema", "name": "out",
            "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "high", "summary": "auto"}}));
    assert!(matches!(&request.response_format,
        Some(ResponseFormat::JsonSchema { name, strict: Some(true), .. }) if name == "out"));
    assert_eq!(
        request.reasoning.as_ref().and_then(|r| r.effort),
        Some(ReasoningEffort::High)
    );
    assert!(matches!(&request.messages[1].content[0],
        Block::Opaque { dialect: Dialect::Responses, part } if part["type"] == "web_search_call"));
}

#[test]
fn an_unresolved_item_reference_is_named() {
    let wire: ResponsesRequest = serde_json::from_value(json!({"model": "m", "input": [
        {"role": "user", "content": "q"}, {"type": "item_reference", "id": "msg_9"}]}))
    .unwrap();
    let error = decode_request(&wire, &wire.input_items()).unwrap_err();
    assert_eq!(error.param, "input[1]");
}
