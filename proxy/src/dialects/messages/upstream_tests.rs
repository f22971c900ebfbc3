//! Tests of the Messages upstream side: answers and recorded streams into the model.

use super::*;
use crate::dialects::messages::respond::{encode_answer, EventEncoder};

/// Anthropic's documented tool-use stream (docs: "Streaming Messages"), with the `event:`
/// names as the framing reports them.
const TOOL_STREAM: &[(&str, &str)] = &[
    (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_019Q","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":377,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    ),
    ("ping", r#"{"type": "ping"}"#),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll check the current weather in Paris for you."}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01NR","name":"get_weather","input":{}}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"locati"}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"on\": \"Paris\"}"}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":1}"#,
    ),
    (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}"#,
    ),
    ("message_stop", r#"{"type":"message_stop"}"#),
];

fn decode_all(decoder: &mut EventDecoder, stream: &[(&str, &str)]) -> Vec<StreamEvent> {
    let mut out = Vec::new();
    for (i, (name, data)) in stream.iter().enumerate() {
        let progress = decoder.decode(name, data, &mut out).unwrap();
        let last = i + 1 == stream.len();
        assert_eq!(progress == Progress::Done, last, "event {i} ({name})");
    }
    out
}

fn usage(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_tokens: 0,
        cache_write_tokens: 0,
        cache_write_1h_tokens: 0,
        estimated: false,
    }
}

#[test]
fn the_recorded_tool_stream_becomes_model_events() {
    let mut decoder = EventDecoder::new();
    let events = decode_all(&mut decoder, TOOL_STREAM);
    let tool = BlockKind::ToolCall {
        id: "toolu_01NR".to_owned(),
        name: "get_weather".to_owned(),
    };
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: Some("msg_019Q".to_owned()),
                created: None
            },
            StreamEvent::Usage(usage(377, 1)),
            StreamEvent::BlockStart {
                index: 0,
                kind: BlockKind::Text
            },
            StreamEvent::Delta {
                index: 0,
                delta: Delta::Text("I'll check the current weather in Paris for you.".to_owned())
            },
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::BlockStart {
                index: 1,
                kind: tool
            },
            StreamEvent::Delta {
                index: 1,
                delta: Delta::ToolArguments("{\"locati".to_owned())
            },
            StreamEvent::Delta {
                index: 1,
                delta: Delta::ToolArguments("on\": \"Paris\"}".to_owned())
            },
            StreamEvent::BlockStop { index: 1 },
            StreamEvent::Stop {
                reason: StopReason::ToolUse
            },
            StreamEvent::Usage(usage(377, 65)),
        ]
    );
    assert_eq!(decoder.usage(), Some(usage(377, 65)));
}

#[test]
fn thinking_signatures_and_unknown_blocks_are_handled() {
    let stream = [
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":20},"output_tokens":1}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm."}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBsig"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"redacted_thinking","data":"EmwK"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":2}"#,
        ),
        ("future_event", r#"{"type":"future_event"}"#),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":9}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let mut decoder = EventDecoder::new();
    let events = decode_all(&mut decoder, &stream);
    assert_eq!(
        events[4],
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Signature("EqQBsig".to_owned())
        }
    );
    assert_eq!(
        events[6],
        StreamEvent::BlockStart {
            index: 1,
            kind: BlockKind::RedactedThinking {
                data: "EmwK".to_owned()
            }
        },
        "the server-tool block is skipped and the next index closes up"
    );
    assert_eq!(
        events[8],
        StreamEvent::Stop {
            reason: StopReason::StopSequence {
                sequence: Some("END".to_owned())
            }
        }
    );
    let final_usage = decoder.usage().unwrap();
    assert_eq!(
        (
            final_usage.prompt_tokens,
            final_usage.cached_tokens,
            final_usage.cache_write_tokens,
            final_usage.cache_write_1h_tokens,
            final_usage.completion_tokens
        ),
        (125, 100, 20, 20, 9)
    );
}

#[test]
fn an_error_event_says_its_type_and_whether_it_is_capacity() {
    let mut decoder = EventDecoder::new();
    let mut out = Vec::new();
    let fault = decoder
        .decode(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        fault,
        StreamFault {
            error_type: "overloaded_error".to_owned(),
            message: "Overloaded".to_owned(),
            capacity: true
        }
    );
    let fault = decoder
        .decode(
            "",
            r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#,
            &mut out,
        )
        .unwrap_err();
    assert!(
        !fault.capacity,
        "the data's type stands in for a missing event name"
    );
    let broken = decoder
        .decode("content_block_delta", "{not json", &mut out)
        .unwrap_err();
    assert_eq!(broken.error_type, "api_error");
    assert!(out.is_empty());
}

#[test]
fn encoded_events_decode_back_to_the_same_events() {
    let events = super::super::respond::tests::agent_stream();
    let mut encoder = EventEncoder::new("alias");
    let mut bytes = Vec::new();
    for event in &events {
        encoder.encode(event, &mut bytes);
    }
    encoder.finish(&mut bytes);
    let mut decoder = EventDecoder::new();
    let mut replayed = Vec::new();
    for (name, data) in super::super::respond::tests::events(&bytes) {
        decoder
            .decode(&name, &data.to_string(), &mut replayed)
            .unwrap();
    }
    // The usage reported at the start (zero) comes first; the rest is what went in.
    let Some(StreamEvent::Usage(zero)) = replayed.get(1).cloned() else {
        panic!("{replayed:?}")
    };
    assert_eq!(zero.prompt_tokens, 0);
    replayed.remove(1);
    let Some(StreamEvent::Usage(last)) = events.last() else {
        panic!()
    };
    assert_eq!(decoder.usage().unwrap().prompt_tokens, last.prompt_tokens);
    assert_eq!(replayed.len(), events.len());
    assert_eq!(replayed[..replayed.len() - 1], events[..events.len() - 1]);
}

#[test]
fn a_complete_answer_reads_every_block_and_round_trips() {
    let body = br#"{"id":"msg_01XF","type":"message","role":"assistant","model":"claude-sonnet-4",
        "content":[{"type":"thinking","thinking":"...","signature":"EqQB"},
            {"type":"redacted_thinking","data":"EmwK"},
            {"type":"text","text":"I'll check.","citations":null},
            {"type":"tool_use","id":"toolu_01NR","name":"get_weather","input":{"location":"Paris"}},
            {"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]}],
        "stop_reason":"tool_use","stop_sequence":null,
        "usage":{"input_tokens":377,"output_tokens":65,"cache_creation_input_tokens":10,"cache_read_input_tokens":5,
            "cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":10}}}"#;
    let answer = decode_answer(body).unwrap();
    assert_eq!(answer.id.as_deref(), Some("msg_01XF"));
    assert_eq!(answer.stop, StopReason::ToolUse);
    assert_eq!(
        answer.content[0],
        Block::Thinking {
            text: "...".to_owned(),
            signature: Some("EqQB".to_owned())
        }
    );
    assert_eq!(answer.content[2], Block::text("I'll check."));
    assert!(
        matches!(&answer.content[3], Block::ToolCall { id, arguments, .. } if id == "toolu_01NR" && arguments == r#"{"location":"Paris"}"#)
    );
    assert!(
        matches!(&answer.content[4], Block::Opaque { dialect: Dialect::Messages, part } if part["type"] == "web_search_tool_result")
    );
    let usage = answer.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.cached_tokens,
            usage.cache_write_tokens,
            usage.cache_write_1h_tokens
        ),
        (392, 5, 10, 10)
    );
    // Written for a Messages client and read again: the same answer.
    let again = decode_answer(&encode_answer(&answer, "alias").unwrap()).unwrap();
    assert_eq!(again, answer);
    assert!(decode_answer(b"<html>").is_err());
}

#[test]
fn events_without_names_and_starts_that_carry_content_decode_the_same() {
    // Bedrock's event-stream chunks carry the JSON only; a start may already hold content.
    let stream = [
        r#"{"type":"message_start","message":{"id":"msg_bdrk_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_9","name":"f","input":{"a":1}}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":4}}"#,
        r#"{"type":"message_stop"}"#,
    ];
    let named: Vec<(&str, &str)> = stream.iter().map(|data| ("", *data)).collect();
    let mut decoder = EventDecoder::new();
    let events = decode_all(&mut decoder, &named);
    assert_eq!(
        events[3],
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Text("Hi".to_owned())
        }
    );
    assert_eq!(
        events[6],
        StreamEvent::Delta {
            index: 1,
            delta: Delta::ToolArguments(r#"{"a":1}"#.to_owned())
        }
    );
    assert_eq!(decoder.usage(), Some(usage(3, 4)));
}
