//! Fuzz targets: each provider's stream translator (OpenAI and Azure pass-through, Chat
//! chunks read into the model, Anthropic relay and typed, Bedrock ConverseStream and
//! Claude's InvokeModel stream) for clients of each dialect, with the client dialect's
//! stream encoder writing whatever they yield.

use proptest::prelude::*;
use proptest::sample::select;

use super::framing::frame_streams;
use super::{apply_edits, byte_edit, fuzz, generation, json_value, seeds, FIXTURE};
use crate::config::{ProviderKind, Target};
use crate::dialects::{StreamEncoder, StreamFault};
use crate::providers::{StreamDecoder, StreamStep};

/// Feeds `bytes` as `target`'s stream to a client of each dialect.
fn through(target: &Target, bytes: &[u8]) {
    for messages_dialect in [false, true] {
        let generation = generation(messages_dialect, true);
        let Ok(mut decoder) = StreamDecoder::new(target, &generation) else {
            continue;
        };
        let Ok(mut encoder) = StreamEncoder::new(&generation.request) else {
            continue;
        };
        let Ok(events) = decoder.framing().push(bytes) else {
            continue;
        };
        let mut out = Vec::new();
        for event in &events {
            match decoder.on_event(event) {
                StreamStep::Events(events) => {
                    for event in &events {
                        encoder.encode(event, &mut out);
                    }
                }
                StreamStep::LastEvents(events) => {
                    for event in &events {
                        encoder.encode(event, &mut out);
                    }
                    encoder.finish(&mut out);
                    break;
                }
                StreamStep::Done => {
                    encoder.finish(&mut out);
                    break;
                }
                StreamStep::Failed(failure) => {
                    let fault = match failure.capacity {
                        true => StreamFault::Overloaded,
                        false => StreamFault::Upstream,
                    };
                    let _ = encoder.error_event(fault, failure.message);
                    break;
                }
                StreamStep::Emit(_) | StreamStep::Skip => {}
                StreamStep::Last(_) => break,
            }
        }
        let _ = (decoder.usage(), decoder.content_deltas());
    }
}

fn sse_upstreams(bytes: &[u8]) {
    for target in FIXTURE.targets() {
        if !matches!(target.provider.kind, ProviderKind::Bedrock(_)) {
            through(&target, bytes);
        }
    }
}

fn event_stream_upstreams(bytes: &[u8]) {
    for target in FIXTURE.targets() {
        if matches!(target.provider.kind, ProviderKind::Bedrock(_)) {
            through(&target, bytes);
        }
    }
}

/// SSE streams as OpenAI-format and Anthropic upstreams write them: named events whose data
/// are JSON over the formats' vocabulary, or mutated seeds of real streams.
fn sse_streams() -> impl Strategy<Value = Vec<u8>> {
    let names = &[
        "",
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    ][..];
    let event = (select(names), json_value(), any::<bool>()).prop_map(|(name, data, done)| {
        let named = match name {
            "" => String::new(),
            name => format!("event: {name}\n"),
        };
        let data = if done {
            "[DONE]".to_owned()
        } else {
            data.to_string()
        };
        format!("{named}data: {data}\n\n").into_bytes()
    });
    prop_oneof![
        2 => prop::collection::vec(event, 0..10).prop_map(|events| events.concat()),
        3 => (select(seeds("streams")), prop::collection::vec(byte_edit(), 0..4))
            .prop_map(|(seed, edits)| apply_edits(seed, &edits)),
    ]
}

#[test]
fn sse_provider_streams() {
    fuzz(
        "SSE provider stream",
        "streams",
        sse_streams(),
        sse_upstreams,
    );
}

#[test]
fn event_stream_provider_streams() {
    fuzz(
        "event-stream provider stream",
        "eventstream",
        frame_streams(),
        event_stream_upstreams,
    );
}
