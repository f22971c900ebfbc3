//! Fuzz target: a client's request body through the Chat, Messages and Responses parsers (the
//! handler's own `parse` and validation), decoding into the model, and every provider's
//! request builder and stream decoder choice.

use bytes::Bytes;

use super::{fuzz, json_documents, FIXTURE};
use crate::dialects::chat::{decode_request as decode_chat, ChatRequest};
use crate::dialects::messages::{decode_request as decode_messages, MessagesRequest};
use crate::dialects::responses::{decode_request as decode_responses, ResponsesRequest};
use crate::handler::parse;
use crate::model::Request;
use crate::providers::{build_requests, Generation, Operation, ProviderRuntime, StreamDecoder};

/// Everything the proxy does with a request body before it sends anything.
fn through_every_provider(request: Request, body: &[u8]) {
    let runtime = ProviderRuntime::new();
    let generation = Generation {
        request,
        body: Bytes::copy_from_slice(body),
        betas: vec!["fuzz-beta-1".to_owned()],
        responses: None,
    };
    let _ = crate::dialects::StreamEncoder::new(&generation.request);
    let _ = generation.request.prompt_bytes();
    for target in FIXTURE.targets() {
        let _ = StreamDecoder::new(&target, &generation);
        let operation = Operation::Generate(Box::new(generation.clone()));
        let _ = build_requests(&target, &operation, "req-fuzz", &runtime);
        let count = Operation::CountTokens(Box::new(generation.clone()));
        let _ = build_requests(&target, &count, "req-fuzz", &runtime);
    }
}

fn chat(body: &[u8]) {
    if let Ok(wire) = parse::<ChatRequest>(body, ChatRequest::validate) {
        if let Ok(request) = decode_chat(wire) {
            through_every_provider(request, body);
        }
    }
}

fn messages(body: &[u8]) {
    if let Ok(wire) = parse::<MessagesRequest>(body, MessagesRequest::validate) {
        if let Ok(request) = decode_messages(wire) {
            through_every_provider(request, body);
        }
    }
    let _ = parse::<MessagesRequest>(body, MessagesRequest::validate_count_tokens);
}

fn responses(body: &[u8]) {
    if let Ok(wire) = parse::<ResponsesRequest>(body, ResponsesRequest::validate) {
        let items = wire.input_items();
        if let Ok(request) = decode_responses(&wire, &items) {
            through_every_provider(request, body);
        }
    }
}

#[test]
fn chat_requests() {
    fuzz("chat request", "chat", json_documents("chat"), chat);
}

#[test]
fn messages_requests() {
    fuzz(
        "messages request",
        "messages",
        json_documents("messages"),
        messages,
    );
}

#[test]
fn responses_requests() {
    fuzz(
        "responses request",
        "responses",
        json_documents("responses"),
        responses,
    );
}
