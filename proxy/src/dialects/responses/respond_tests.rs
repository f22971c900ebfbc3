use super::*;
use crate::dialects::responses::wire::ResponsesRequest;
use crate::metering::Usage;
use serde_json::json;

fn request(body: Value) -> Request {
    let wire: ResponsesRequest = serde_json::from_value(body).unwrap();
    super::super::decode_request(&wire, &wire.input_items()).unwrap()
}

fn answer(content: Vec<Block>, stop: StopReason) -> Answer {
    Answer {
        id: Some("chatcmpl-1".to_owned()),
        content,
        stop,
        usage: Some(Usage {
            prompt_tokens: 30,
            completion_tokens: 7,
            cached_tokens: 10,
            ..Usage::default()
        }),
        created: Some(1_700_000_000),
    }
}

#[test]
fn a_text_and_call_answer_is_a_completed_response_with_minted_ids() {
    let request = request(
        json!({"model": "alias", "input": "hi", "metadata": {"k": "v"},
        "instructions": "be brief", "store": false}),
    );
    let body = encode_answer(
        &request,
        &answer(
            vec![
                Block::text("Hel"),
                Block::text("lo"),
                Block::ToolCall {
                    id: "call_1".to_owned(),
                    name: "f".to_owned(),
                    arguments: "{}".to_owned(),
                    cache: None,
                },
            ],
            StopReason::ToolUse,
        ),
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "alias");
    assert_eq!(body["created_at"], 1_700_000_000);
    assert_eq!(body["instructions"], "be brief");
    assert_eq!(body["store"], false);
    assert_eq!(body["metadata"], json!({"k": "v"}));
    assert_eq!(body["incomplete_details"], Value::Null);
    let message = &body["output"][0];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"][1]["text"], "lo");
    assert_eq!(message["content"][0]["annotations"], json!([]));
    let call = &body["output"][1];
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(call["call_id"], "call_1");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 30, "input_tokens_details": {"cached_tokens": 10,
            "cache_write_tokens": 0}, "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 37})
    );
    for key in [
        "error",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "top_p",
        "temperature",
        "previous_response_id",
        "parallel_tool_calls",
        "truncation",
        "user",
    ] {
        assert!(body.get(key).is_some(), "{key} is written");
    }
}

#[test]
fn the_cap_and_filters_make_an_incomplete_response() {
    let request = request(json!({"model": "m", "input": "hi"}));
    for (stop, reason) in [
        (StopReason::MaxTokens, "max_output_tokens"),
        (StopReason::ContentFilter, "content_filter"),
    ] {
        let body = encode_answer(&request, &answer(vec![Block::text("x")], stop)).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "incomplete");
        assert_eq!(body["incomplete_details"]["reason"], reason);
    }
}

#[test]
fn thinking_becomes_reasoning_items_that_decode_back() {
    let request = request(json!({"model": "m", "input": "hi"}));
    let blocks = vec![
        Block::Thinking {
            text: "hmm".to_owned(),
            signature: Some("sig".to_owned()),
        },
        Block::RedactedThinking {
            data: "opaque".to_owned(),
        },
        Block::text("yes"),
    ];
    let items = output_items(&blocks);
    let json = serde_json::to_value(&items).unwrap();
    assert_eq!(json[0]["type"], "reasoning");
    assert_eq!(json[0]["summary"][0]["text"], "hmm");
    assert_eq!(json[0]["encrypted_content"], "sig");
    let mut replay = vec![json!({"role": "user", "content": "hi"})];
    replay.extend(json.as_array().unwrap().iter().cloned());
    replay.push(json!({"role": "user", "content": "again"}));
    let back = super::super::decode_request(
        &serde_json::from_value(json!({"model": "m", "input": replay})).unwrap(),
        &serde_json::from_value::<Vec<InputItem>>(Value::Array(replay.clone())).unwrap(),
    )
    .unwrap();
    assert_eq!(back.messages[1].content, blocks);
    assert_eq!(request.messages.len(), 1);
}
