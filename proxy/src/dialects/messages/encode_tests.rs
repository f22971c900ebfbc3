//! Tests of the model → Messages request encoder: from Chat clients, and Messages round trips.

use super::*;
use crate::dialects::messages::decode::decode_request;
use crate::providers::testing::chat_operation;
use crate::providers::Operation;
use serde_json::json;

fn chat(body: Value) -> Request {
    let Operation::Generate(generation) = chat_operation(body) else {
        unreachable!()
    };
    generation.request
}

fn encode(request: &Request, flavour: Flavour, betas: &[String]) -> Value {
    serde_json::to_value(encode_request(request, "claude-sonnet-4-5", flavour, betas).unwrap())
        .unwrap()
}

#[test]
fn a_chat_request_becomes_an_anthropic_body() {
    let request = chat(json!({"model": "alias", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "use tools"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "calling", "tool_calls": [
            {"id": "call_A1", "type": "function", "function": {"name": "w", "arguments": "{\"c\":1}"}},
            {"id": "call.odd/id", "type": "function", "function": {"name": "w", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_A1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call.odd/id", "content": ""},
        {"role": "system", "content": "mid-way"},
        {"role": "user", "content": "thanks"}],
        "tools": [{"type": "function", "function": {"name": "w", "description": "weather",
            "parameters": {"type": "object", "properties": {"c": {"type": "integer"}}}}},
            {"type": "function", "function": {"name": "noargs"}}],
        "tool_choice": "required", "parallel_tool_calls": false,
        "max_completion_tokens": 500, "stop": ["END"], "temperature": 0.5, "top_p": 0.9,
        "seed": 4, "presence_penalty": 0.1, "user": "u-1", "stream": true, "logprobs": true}));
    let body = encode(&request, Flavour::Anthropic, &["beta-1".to_owned()]);
    let odd = body["messages"][1]["content"][2]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(odd.starts_with("toolu_sy"), "{odd}");
    assert_eq!(
        body,
        json!({"model": "claude-sonnet-4-5",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}},
                    {"type": "text", "text": "and?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "call_A1", "name": "w", "input": {"c": 1}},
                    {"type": "tool_use", "id": odd, "name": "w", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_A1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": odd},
                    {"type": "text", "text": "thanks"}]}],
            "max_tokens": 500,
            "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "use tools"},
                {"type": "text", "text": "mid-way"}],
            "metadata": {"user_id": "u-1"},
            "stop_sequences": ["END"], "stream": true, "temperature": 0.5, "top_p": 0.9,
            "tools": [
                {"name": "w", "description": "weather",
                    "input_schema": {"type": "object", "properties": {"c": {"type": "integer"}}}},
                {"name": "noargs", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
        "seed, penalties and Chat-only members are dropped; betas go in a header"
    );
}

#[test]
fn reasoning_effort_becomes_a_budget_and_max_tokens_grows_around_it() {
    let effort = |effort: &str, extra: Value| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": effort});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        encode(&chat(body), Flavour::Anthropic, &[])
    };
    let high = effort("high", json!({}));
    assert_eq!(
        high["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    assert_eq!(high["max_tokens"], 4096 + DEFAULT_MAX_TOKENS);
    let low = effort("low", json!({"max_completion_tokens": 3000}));
    assert_eq!(low["thinking"]["budget_tokens"], MIN_THINKING_BUDGET);
    assert_eq!(low["max_tokens"], 3000, "the budget fits below the cap");
    let medium = effort("medium", json!({"max_tokens": 1000}));
    assert_eq!(medium["max_tokens"], 2048 + 1000);
    // Anthropic refuses thinking with a forced tool or a changed temperature: left off.
    let forced = effort(
        "high",
        json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"}),
    );
    assert!(forced.get("thinking").is_none());
    assert_eq!(forced["max_tokens"], DEFAULT_MAX_TOKENS);
    assert!(effort("high", json!({"temperature": 0.2}))
        .get("thinking")
        .is_none());
    let plain = encode(
        &chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})),
        Flavour::Anthropic,
        &[],
    );
    assert_eq!(plain["max_tokens"], DEFAULT_MAX_TOKENS);
    assert!(plain.get("thinking").is_none() && plain.get("stream").is_none());
}

#[test]
fn the_bedrock_flavour_has_no_model_or_stream_and_carries_version_and_betas() {
    let request = chat(json!({"model": "alias", "stream": true,
        "messages": [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"}]}));
    let betas = ["interleaved-thinking-2025-05-14".to_owned()];
    let body = encode(&request, Flavour::Bedrock, &betas);
    assert_eq!(
        body,
        json!({"messages": [
                {"role": "user", "content": [{"type": "text", "text": "."}]},
                {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "max_tokens": DEFAULT_MAX_TOKENS,
            "anthropic_version": BEDROCK_VERSION,
            "anthropic_beta": ["interleaved-thinking-2025-05-14"]}),
        "a conversation must start with a user turn"
    );
    assert!(encode(&request, Flavour::Bedrock, &[])
        .get("anthropic_beta")
        .is_none());
}

#[test]
fn what_anthropic_cannot_express_is_refused_naming_it() {
    let refused = |body: Value| {
        encode_request(&chat(body), "m", Flavour::Anthropic, &[])
            .unwrap_err()
            .param
    };
    let messages = json!([{"role": "user", "content": "x"}]);
    assert_eq!(
        refused(json!({"model": "m", "messages": messages, "n": 2})),
        "n"
    );
    assert_eq!(
        refused(json!({"model": "m", "messages": messages,
            "response_format": {"type": "json_object"}})),
        "response_format"
    );
    let audio = refused(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "listen"},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]}]}),
    );
    assert_eq!(audio, "messages[0].content[1]");
    let mut request = chat(
        json!({"model": "m", "messages": [{"role": "system", "content": "s"},
        {"role": "user", "content": "x"}]}),
    );
    request.messages.insert(
        0,
        Message {
            role: Role::System,
            content: vec![Block::Image {
                source: ImageSource::Url {
                    url: "https://x".to_owned(),
                },
                detail: None,
                cache: None,
            }],
            name: None,
            extra: Map::new(),
        },
    );
    let err = encode_request(&request, "m", Flavour::Anthropic, &[]).unwrap_err();
    assert_eq!(err.param, "messages[0].content[0]");
}

#[test]
fn cache_markers_unsigned_thinking_and_empty_text_are_handled() {
    let mut request = chat(json!({"model": "m", "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "long prefix"},
            {"type": "text", "text": "", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
        {"role": "assistant", "content": "a"}]}));
    request.messages[1].content.insert(
        0,
        Block::Thinking {
            text: "from an OpenAI upstream".to_owned(),
            signature: None,
        },
    );
    let body = encode(&request, Flavour::Anthropic, &[]);
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"type": "text", "text": "long prefix", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]),
        "the empty block's marker moves to the block before it"
    );
    assert_eq!(
        body["messages"][1]["content"],
        json!([{"type": "text", "text": "a"}]),
        "thinking without a signature cannot be replayed to Anthropic"
    );
}

/// A Messages client's body, in the canonical forms the encoder writes.
fn messages_body() -> Value {
    json!({"model": "claude-sonnet-4-5",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "weather?", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    "cache_control": {"type": "ephemeral"}},
                {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}, "title": "a.pdf"},
                {"type": "search_result", "source": "s", "title": "r", "content": []}],
                "x_message_member": 1},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me check.", "signature": "EqQBsig=="},
                {"type": "redacted_thinking", "data": "EmwKopaque"},
                {"type": "tool_use", "id": "toolu_01NR", "name": "get_weather", "input": {"z": 1, "a": "b"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01NR", "is_error": true,
                    "content": [{"type": "text", "text": "boom"}], "cache_control": {"type": "ephemeral", "ttl": "5m"}}]}],
        "max_tokens": 8000,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "metadata": {"user_id": "{\"device_id\":\"d\"}"},
        "stop_sequences": ["END"], "stream": true, "temperature": 1.0, "top_k": 5,
        "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "service_tier": "auto",
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}})
}

fn round_trip(body: &Value, flavour: Flavour) -> Value {
    let wire: MessagesRequest = serde_json::from_str(&body.to_string()).unwrap();
    wire.validate().unwrap();
    let request = decode_request(wire).unwrap();
    encode(&request, flavour, &[])
}

#[test]
fn messages_to_model_to_messages_is_faithful() {
    let body = messages_body();
    assert_eq!(round_trip(&body, Flavour::Anthropic), body);
}

#[test]
fn what_the_model_reads_in_part_comes_back_whole() {
    let mut body = messages_body();
    body["tools"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 5}));
    body["thinking"] = json!({"type": "adaptive"});
    body["tool_choice"] = json!({"type": "auto", "future_member": true});
    body["metadata"] = json!({"user_id": "u", "tags": ["t"]});
    assert_eq!(round_trip(&body, Flavour::Anthropic), body);
}

#[test]
fn a_messages_request_for_bedrock_keeps_everything_but_model_and_stream() {
    let body = messages_body();
    let mut expected = body.clone();
    let object = expected.as_object_mut().unwrap();
    object.remove("model");
    object.remove("stream");
    object.insert("anthropic_version".to_owned(), json!(BEDROCK_VERSION));
    assert_eq!(round_trip(&body, Flavour::Bedrock), expected);
}

#[test]
fn tool_input_keeps_objects_and_wraps_the_rest() {
    assert_eq!(
        tool_input(r#"{"b":1,"a":2}"#).to_string(),
        r#"{"b":1,"a":2}"#
    );
    assert_eq!(tool_input("[1]"), json!({"value": [1]}));
    assert_eq!(tool_input(""), json!({}));
    assert_eq!(tool_input("null"), json!({}));
    assert_eq!(tool_input("{broken"), json!({}));
    assert_eq!(tool_id("toolu_01-A"), "toolu_01-A");
    assert_eq!(
        tool_id("a.b"),
        tool_id("a.b"),
        "the same rewrite for call and result"
    );
    assert_ne!(tool_id("a.b"), tool_id("a:b"));
}

#[test]
fn parallel_calls_off_without_a_choice_is_an_auto_choice() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let body = |extra: Value| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "parallel_tool_calls": false});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        encode(&chat(body), Flavour::Anthropic, &[])
    };
    assert_eq!(
        body(json!({"tools": tools}))["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        body(json!({"tools": tools, "tool_choice": "none"}))["tool_choice"],
        json!({"type": "none"}),
        "`none` has no parallel switch"
    );
    assert_eq!(
        body(
            json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "f"}}})
        )["tool_choice"],
        json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})
    );
    assert!(
        body(json!({})).get("tool_choice").is_none(),
        "no tools, no choice"
    );
}

#[test]
fn a_messages_clients_opaque_blocks_go_back_verbatim_even_inside_tool_results() {
    let body = json!({"model": "claude", "max_tokens": 100, "messages": [
        {"role": "user", "content": "search"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "s", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "search_result", "source": "https://x", "title": "t",
                "content": [{"type": "text", "text": "found"}]}]}]}]});
    let wire: MessagesRequest = serde_json::from_str(&body.to_string()).unwrap();
    let request = decode_request(wire).unwrap();
    let back = encode(&request, Flavour::Anthropic, &[]);
    assert_eq!(
        back["messages"][2]["content"][0]["content"][0],
        body["messages"][2]["content"][0]["content"][0]
    );
    assert_eq!(
        back["messages"][0]["content"],
        json!([{"type": "text", "text": "search"}])
    );
}
