//! Tests of the Messages client side: answer bodies and the stream encoder's exact events.

use super::*;
use serde_json::json;

/// `(event name, data)` of each SSE event; every event's data `type` equals its name.
pub(crate) fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    std::str::from_utf8(bytes)
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

fn usage() -> Usage {
    Usage {
        prompt_tokens: 1310,
        completion_tokens: 65,
        cached_tokens: 1000,
        cache_write_tokens: 300,
        cache_write_1h_tokens: 200,
        estimated: false,
    }
}

#[test]
fn answer_has_every_block_stop_and_usage_with_the_cache_split() {
    let answer = Answer {
        id: Some("msg_01XF".to_owned()),
        content: vec![
            Block::Thinking {
                text: "hmm".to_owned(),
                signature: Some("EqQB".to_owned()),
            },
            Block::RedactedThinking {
                data: "EmwK".to_owned(),
            },
            Block::text("I'll check."),
            Block::ToolCall {
                id: "toolu_01NR".to_owned(),
                name: "get_weather".to_owned(),
                arguments: r#"{"location":"Paris","units":["c"]}"#.to_owned(),
                cache: None,
            },
            Block::Opaque {
                dialect: Dialect::Messages,
                part: json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
            },
            Block::Opaque {
                dialect: Dialect::Chat,
                part: json!({"type": "refusal", "refusal": "no"}),
            },
        ],
        stop: StopReason::ToolUse,
        usage: Some(usage()),
        created: Some(1),
    };
    let body: Value = serde_json::from_slice(&encode_answer(&answer, "alias").unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"id": "msg_01XF", "type": "message", "role": "assistant", "model": "alias",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "EmwK"},
                {"type": "text", "text": "I'll check."},
                {"type": "tool_use", "id": "toolu_01NR", "name": "get_weather",
                    "input": {"location": "Paris", "units": ["c"]}},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 300,
                "cache_read_input_tokens": 1000,
                "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
                "output_tokens": 65}})
    );
}

#[test]
fn an_answer_without_id_or_usage_gets_a_minted_id_and_zero_counts() {
    let answer = Answer {
        id: None,
        content: vec![Block::Thinking {
            text: "unsigned".to_owned(),
            signature: None,
        }],
        stop: StopReason::StopSequence {
            sequence: Some("END".to_owned()),
        },
        usage: None,
        created: None,
    };
    let body: Value = serde_json::from_slice(&encode_answer(&answer, "m").unwrap()).unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["content"][0]["signature"], "");
    assert_eq!(
        (&body["stop_reason"], &body["stop_sequence"]),
        (&json!("stop_sequence"), &json!("END"))
    );
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 0, "output_tokens": 0})
    );
}

#[test]
fn stop_reasons_use_anthropics_names() {
    let cases = [
        (StopReason::EndTurn, "end_turn"),
        (StopReason::MaxTokens, "max_tokens"),
        (StopReason::ContentFilter, "refusal"),
        (StopReason::Refusal, "refusal"),
        (
            StopReason::ContextWindowExceeded,
            "model_context_window_exceeded",
        ),
        (StopReason::PauseTurn, "pause_turn"),
        (
            StopReason::Other {
                reason: "new_reason".to_owned(),
            },
            "new_reason",
        ),
    ];
    for (stop, name) in cases {
        assert_eq!(stop_reason(&stop).0, name);
    }
}

fn run(events: &[StreamEvent]) -> Vec<u8> {
    let mut encoder = EventEncoder::new("alias");
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    out
}

fn start(index: usize, kind: BlockKind) -> StreamEvent {
    StreamEvent::BlockStart { index, kind }
}

fn delta(index: usize, delta: Delta) -> StreamEvent {
    StreamEvent::Delta { index, delta }
}

/// Thinking with its signature, text, a tool call; usage after the stop.
pub(crate) fn agent_stream() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: Some("msg_up".to_owned()),
            created: None,
        },
        start(0, BlockKind::Thinking),
        delta(0, Delta::Thinking("Let me".to_owned())),
        delta(0, Delta::Thinking(" think.".to_owned())),
        delta(0, Delta::Signature("EqQBsig".to_owned())),
        StreamEvent::BlockStop { index: 0 },
        start(1, BlockKind::Text),
        delta(1, Delta::Text("Checking.".to_owned())),
        StreamEvent::BlockStop { index: 1 },
        start(
            2,
            BlockKind::ToolCall {
                id: "toolu_01".to_owned(),
                name: "get_weather".to_owned(),
            },
        ),
        delta(2, Delta::ToolArguments("{\"loc".to_owned())),
        delta(2, Delta::ToolArguments("\":\"Paris\"}".to_owned())),
        StreamEvent::BlockStop { index: 2 },
        StreamEvent::Stop {
            reason: StopReason::ToolUse,
        },
        StreamEvent::Usage(usage()),
    ]
}

#[test]
fn stream_events_come_in_anthropics_order_with_full_start_payloads() {
    let out = run(&agent_stream());
    let events = events(&out);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let message = &events[0].1["message"];
    assert_eq!(
        *message,
        json!({"id": "msg_up", "type": "message", "role": "assistant", "model": "alias",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}})
    );
    assert_eq!(
        events[2].1,
        json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
    );
    assert_eq!(
        events[5].1["delta"],
        json!({"type": "signature_delta", "signature": "EqQBsig"})
    );
    assert_eq!(
        events[8].1,
        json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "text_delta", "text": "Checking."}})
    );
    assert_eq!(
        events[10].1["content_block"],
        json!({"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}})
    );
    assert_eq!(
        events[11].1["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"loc"})
    );
    assert_eq!(events[13].1["index"], 2);
    assert_eq!(
        events[14].1,
        json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 300,
                "cache_read_input_tokens": 1000, "output_tokens": 65}})
    );
}

#[test]
fn usage_before_the_stop_still_lands_in_message_delta() {
    let mut events = agent_stream();
    let usage = events.pop().unwrap();
    let stop = events.pop().unwrap();
    events.push(usage);
    events.push(stop);
    let after = run(&agent_stream());
    let before = run(&events);
    let (after, before) = (self::events(&after), self::events(&before));
    assert_eq!(names(&before), names(&after));
    assert_eq!(before[14].1, after[14].1);
    assert_eq!(before[14].1["usage"]["output_tokens"], 65);
}

#[test]
fn indexes_count_in_order_of_opening_and_unclosed_blocks_are_closed() {
    let out = run(&[
        start(
            3,
            BlockKind::RedactedThinking {
                data: "EmwK".to_owned(),
            },
        ),
        StreamEvent::BlockStop { index: 3 },
        // A delta for a block never opened opens the block it implies.
        delta(7, Delta::Text("hi".to_owned())),
        // A signature for an unknown block has nowhere to go.
        delta(9, Delta::Signature("x".to_owned())),
    ]);
    let events = events(&out);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        events[2].1["content_block"],
        json!({"type": "redacted_thinking", "data": "EmwK"})
    );
    assert_eq!(events[2].1["index"], 0);
    assert_eq!(events[4].1["index"], 1);
    assert_eq!(events[5].1["index"], 1);
    assert_eq!(events[6].1["index"], 1);
    assert_eq!(events[7].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[7].1["usage"], json!({"output_tokens": 0}));
}

#[test]
fn nothing_goes_out_before_content_and_finish_writes_once() {
    let mut encoder = EventEncoder::new("alias");
    let mut out = Vec::new();
    encoder.encode(
        &StreamEvent::Start {
            id: Some("msg_1".to_owned()),
            created: None,
        },
        &mut out,
    );
    encoder.encode(&StreamEvent::Usage(usage()), &mut out);
    assert!(out.is_empty(), "a failure now can still fail over");
    encoder.encode(&start(0, BlockKind::Text), &mut out);
    let first = events(&out);
    assert_eq!(
        first[0].1["message"]["usage"]["input_tokens"], 10,
        "usage known before the first byte goes into message_start"
    );
    encoder.finish(&mut out);
    let len = out.len();
    encoder.finish(&mut out);
    encoder.encode(&delta(0, Delta::Text("late".to_owned())), &mut out);
    assert_eq!(out.len(), len);
}

#[test]
fn a_stream_without_content_is_still_a_whole_message() {
    let out = run(&[
        StreamEvent::Start {
            id: None,
            created: None,
        },
        StreamEvent::Usage(usage()),
    ]);
    let events = events(&out);
    assert_eq!(
        names(&events),
        ["message_start", "ping", "message_delta", "message_stop"]
    );
    assert_eq!(events[2].1["usage"]["output_tokens"], 65);
    let mut untouched = EventEncoder::new("alias");
    let mut out = Vec::new();
    untouched.finish(&mut out);
    assert!(out.is_empty(), "a pass-through stream brings its own end");
}

#[test]
fn error_event_has_anthropics_shape() {
    let bytes = EventEncoder::error_event("overloaded_error", "Overloaded".to_owned());
    let events = events(&bytes);
    assert_eq!(
        events,
        [(
            "error".to_owned(),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )]
    );
}
