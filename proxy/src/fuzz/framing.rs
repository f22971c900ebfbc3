//! Fuzz targets: the stream framings, SSE and AWS event-stream. Besides never panicking
//! or hanging, a decoder must not care where the network split its bytes: fed in arbitrary
//! pieces, it yields exactly what it yields when fed all at once.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use proptest::prelude::*;
use proptest::sample::select;

use super::{apply_edits, byte_edit, fuzz, json_value, seeds};
use crate::api::sse::SseDecoder;
use crate::providers::bedrock::eventstream::FrameDecoder;

/// `input` cut into pieces at points derived from its own bytes (so a failing input
/// reproduces), and `input` whole.
fn pieces(input: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let seed = input.iter().take(64).fold(input.len(), |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    let mut cuts = Vec::new();
    let mut rest = input;
    let mut step = seed % 17 + 1;
    while rest.len() > step {
        let (piece, tail) = rest.split_at(step);
        cuts.push(piece);
        rest = tail;
        step = (step * 7 + seed) % 23 + 1;
    }
    cuts.push(rest);
    (cuts, input)
}

fn sse(input: &[u8]) {
    let (cuts, whole) = pieces(input);
    let at_once = SseDecoder::new().push_named(whole);
    let mut decoder = SseDecoder::new();
    let mut piecewise = Vec::new();
    let mut failed = None;
    for piece in cuts {
        match decoder.push_named(piece) {
            Ok(events) => piecewise.extend(events),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    match (at_once, failed) {
        (Ok(events), None) => assert_eq!(events, piecewise, "split points changed the events"),
        (Err(_), Some(_)) => {}
        (whole, split) => {
            // UTF-8 is checked per line, so the same bytes fail either way.
            panic!("fed whole: {whole:?}; in pieces failed with {split:?}")
        }
    }
    let _ = decoder.has_partial_event();
}

fn event_stream(input: &[u8]) {
    let (cuts, whole) = pieces(input);
    let at_once = FrameDecoder::new().push(whole);
    let mut decoder = FrameDecoder::new();
    let mut piecewise = Vec::new();
    let mut failed = None;
    for piece in cuts {
        match decoder.push(piece) {
            Ok(frames) => piecewise.extend(frames),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if let (Ok(frames), None) = (&at_once, &failed) {
        assert_eq!(frames, &piecewise, "split points changed the frames");
    }
    // A stream that fails whole yields its good frames before the bad one in pieces too;
    // it must fail there as well (one failure is enough to end an upstream stream).
    if at_once.is_err() {
        assert!(
            failed.is_some(),
            "fed whole it fails, in pieces it does not"
        );
    }
}

/// SSE text: seeds with byte edits, or events made of names, `data:` lines and odd endings.
fn sse_streams() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        json_value().prop_map(|v| format!("data: {v}")),
        select(
            &[
                "event",
                "data",
                "id",
                "retry",
                ":comment",
                "data:",
                "event:error",
                ""
            ][..]
        )
        .prop_map(str::to_owned),
        ".{0,24}".prop_map(|s: String| s),
    ];
    let ending = select(&["\n", "\r\n", "\r", "\n\n", "\r\n\r\n"][..]);
    let generated = prop::collection::vec((line, ending), 0..12).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(line, end)| format!("{line}{end}").into_bytes())
            .collect::<Vec<u8>>()
    });
    let seeds = seeds("sse");
    prop_oneof![
        2 => generated,
        2 => (select(seeds), prop::collection::vec(byte_edit(), 0..5))
            .prop_map(|(seed, edits)| apply_edits(seed, &edits)),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// One encoded event-stream frame with the given headers and payload.
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            Header::new(
                name.to_string(),
                HeaderValue::String(value.to_string().into()),
            )
        })
        .collect();
    let message = Message::new_from_parts(headers, bytes::Bytes::copy_from_slice(payload));
    let mut out = Vec::new();
    let _ = write_message_to(&message, &mut out);
    out
}

/// Frames Bedrock could send (event types, exceptions, errors) around generated payloads,
/// then byte edits that break lengths and checksums.
pub fn frame_streams() -> impl Strategy<Value = Vec<u8>> {
    let kinds = &[
        ("event", ":event-type", "messageStart"),
        ("event", ":event-type", "contentBlockStart"),
        ("event", ":event-type", "contentBlockDelta"),
        ("event", ":event-type", "contentBlockStop"),
        ("event", ":event-type", "messageStop"),
        ("event", ":event-type", "metadata"),
        ("event", ":event-type", "chunk"),
        ("exception", ":exception-type", "throttlingException"),
        ("exception", ":exception-type", "validationException"),
        ("error", ":error-code", "InternalFailure"),
    ][..];
    let one = (select(kinds), json_value()).prop_map(|((message_type, name, value), payload)| {
        frame(
            &[
                (":message-type", message_type),
                (name, value),
                (":content-type", "application/json"),
            ],
            payload.to_string().as_bytes(),
        )
    });
    let generated = (
        prop::collection::vec(one, 0..8),
        prop::collection::vec(byte_edit(), 0..3),
    )
        .prop_map(|(frames, edits)| apply_edits(frames.concat(), &edits));
    prop_oneof![
        3 => generated,
        1 => (select(seeds("eventstream")), prop::collection::vec(byte_edit(), 0..3))
            .prop_map(|(seed, edits)| apply_edits(seed, &edits)),
    ]
}

#[test]
fn sse_framing() {
    fuzz("SSE decoder", "sse", sse_streams(), sse);
}

#[test]
fn event_stream_framing() {
    fuzz(
        "event-stream decoder",
        "eventstream",
        frame_streams(),
        event_stream,
    );
}
