use super::*;
use crate::dialects::responses::decode_request;
use crate::dialects::responses::wire::ResponsesRequest;
use serde_json::{json, Value};

fn encoder() -> EventEncoder {
    let wire: ResponsesRequest =
        serde_json::from_value(json!({"model": "alias", "input": "hi", "stream": true})).unwrap();
    EventEncoder::new(&decode_request(&wire, &wire.input_items()).unwrap())
}

/// The (event name, data) pairs of SSE bytes, checking each `event:` line names its data.
fn events(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(name.strip_prefix("event: ").unwrap(), data["type"]);
            data
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[test]
fn a_text_answer_streams_in_the_order_the_sdk_accepts() {
    let mut encoder = encoder();
    let mut out = Vec::new();
    for event in [
        StreamEvent::Start {
            id: Some("chatcmpl-1".to_owned()),
            created: None,
        },
        StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::Text,
        },
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Text("Hel".to_owned()),
        },
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Text("lo".to_owned()),
        },
        StreamEvent::Stop {
            reason: StopReason::EndTurn,
        },
        StreamEvent::Usage(Usage {
            prompt_tokens: 5,
            completion_tokens: 2,
            ..Usage::default()
        }),
    ] {
        encoder.encode(&event, &mut out);
    }
    assert!(encoder.completed().is_none());
    encoder.finish(&mut out);
    let events = events(&out);
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..10).collect::<Vec<u64>>());
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["output"], json!([]));
    assert_eq!(events[0]["response"]["usage"], Value::Null);
    assert_eq!(events[2]["item"]["content"], json!([]));
    assert_eq!(events[3]["part"]["text"], "");
    let item_id = events[2]["item"]["id"].as_str().unwrap();
    for event in &events[3..8] {
        assert_eq!(event["item_id"], item_id);
        assert_eq!(event["output_index"], 0);
        assert_eq!(event["content_index"], 0);
    }
    assert_eq!(events[6]["text"], "Hello");
    let done = &events[9]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["usage"]["total_tokens"], 7);
    assert_eq!(done["id"], events[0]["response"]["id"]);
    let stored = encoder.completed().unwrap();
    assert_eq!(stored.status, "completed");
    assert_eq!(stored.output.len(), 1);
}

#[test]
fn calls_and_reasoning_get_their_own_items_and_events() {
    let mut encoder = encoder();
    let mut out = Vec::new();
    for event in [
        StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::Thinking,
        },
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Thinking("hmm".to_owned()),
        },
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Signature("sig".to_owned()),
        },
        StreamEvent::BlockStop { index: 0 },
        StreamEvent::BlockStart {
            index: 1,
            kind: BlockKind::ToolCall {
                id: "call_1".to_owned(),
                name: "f".to_owned(),
            },
        },
        StreamEvent::Delta {
            index: 1,
            delta: Delta::ToolArguments("{\"a\":".to_owned()),
        },
        StreamEvent::Delta {
            index: 1,
            delta: Delta::ToolArguments("1}".to_owned()),
        },
        StreamEvent::Stop {
            reason: StopReason::ToolUse,
        },
    ] {
        encoder.encode(&event, &mut out);
    }
    encoder.finish(&mut out);
    let events = events(&out);
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(events[7]["item"]["encrypted_content"], "sig");
    assert_eq!(events[7]["item"]["summary"][0]["text"], "hmm");
    assert_eq!(events[8]["output_index"], 1);
    assert_eq!(events[8]["item"]["arguments"], "");
    assert_eq!(events[8]["item"]["call_id"], "call_1");
    assert_eq!(events[11]["arguments"], "{\"a\":1}");
    assert_eq!(events[11]["name"], "f");
    let output = &events[13]["response"]["output"];
    assert_eq!(output[1]["arguments"], "{\"a\":1}");
    assert_eq!(output[1]["status"], "completed");
}

#[test]
fn the_cap_ends_with_incomplete_and_a_failure_with_failed() {
    let mut encoder = encoder();
    let mut out = Vec::new();
    encoder.encode(
        &StreamEvent::Delta {
            index: 0,
            delta: Delta::Text("x".to_owned()),
        },
        &mut out,
    );
    let failed = encoder.error_event("server_error", "upstream broke".to_owned());
    let failed = events(&failed);
    assert_eq!(types(&failed), ["response.failed"]);
    assert_eq!(failed[0]["response"]["status"], "failed");
    assert_eq!(failed[0]["response"]["error"]["code"], "server_error");
    assert_eq!(
        failed[0]["sequence_number"].as_u64().unwrap(),
        events(&out).len() as u64
    );
    encoder.encode(
        &StreamEvent::Stop {
            reason: StopReason::MaxTokens,
        },
        &mut out,
    );
    encoder.finish(&mut out);
    let all = events(&out);
    let last = all.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[test]
fn nothing_is_written_before_content_or_for_a_relayed_stream() {
    let mut encoder = encoder();
    let mut out = Vec::new();
    encoder.encode(
        &StreamEvent::Start {
            id: None,
            created: Some(5),
        },
        &mut out,
    );
    assert!(out.is_empty(), "a failure now can still fail over");
    let mut relayed = super::EventEncoder::new(&encoder_request());
    relayed.finish(&mut out);
    assert!(out.is_empty());
}

fn encoder_request() -> crate::model::Request {
    let wire: ResponsesRequest =
        serde_json::from_value(json!({"model": "alias", "input": "hi"})).unwrap();
    decode_request(&wire, &wire.input_items()).unwrap()
}
