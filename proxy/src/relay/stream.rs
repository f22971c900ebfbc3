//! Relaying one upstream stream to the client, event by event as it arrives: the provider's
//! [`StreamDecoder`] reads the upstream's events, and what it yields is either bytes already
//! in the client's dialect (pass-through) or typed events that the client's dialect
//! [`StreamEncoder`] writes.
//!
//! Before the client sees anything, [`ChatStream::prime`] reads up to the first translated
//! event, so an upstream that fails early can still be failed over. After that, a failure
//! ends the stream with the dialect's error event: never a silent truncation.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::time::{timeout_at, Instant};

use super::record::{Ending, RequestRecord};
use crate::dialects::{StreamEncoder, StreamFault};
use crate::metering::Usage;
use crate::model::{Delta, StreamEvent};
use crate::providers::{StreamDecoder, StreamStep, UpstreamDecoder, UpstreamStreamError};
use crate::routing::AttemptPermit;
use crate::upstream::client::transport_failure;
use crate::upstream::{AttemptFailure, FailureKind};

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Work to finish before a completed stream's last event reaches the client, given the
/// finished Responses object as the client reads it (the Responses store keeps each turn
/// before the client sees it complete).
pub type CompletionHook =
    Box<dyn FnOnce(serde_json::Value) -> futures_util::future::BoxFuture<'static, ()> + Send>;

pub struct ChatStream {
    upstream: ByteStream,
    framing: UpstreamDecoder,
    decoder: StreamDecoder,
    encoder: StreamEncoder,
    /// The last usage reported in typed events, and their content deltas so far.
    event_usage: Option<Usage>,
    event_deltas: u64,
    ready: VecDeque<Bytes>,
    deadline: Instant,
    attempt_started: Instant,
    first_event_at: Option<Instant>,
    prompt_bytes: usize,
    state: StreamEnd,
    record: Option<RequestRecord>,
    /// The attempt's permit: the verdict on the target is given when the stream ends.
    permit: Option<AttemptPermit>,
    on_complete: Option<CompletionHook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    Open,
    /// `[DONE]` queued: the upstream finished properly.
    Complete,
    /// An error event queued.
    Failed,
}

/// Why a stream failed, for the client's error event.
struct StreamFailure {
    /// `Overloaded` for a capacity error the upstream reported in the stream (e.g. Bedrock
    /// throttling): before the first client byte, the next target may be tried after a
    /// cool-down.
    fault: StreamFault,
    message: String,
}

impl ChatStream {
    pub fn new(
        response: reqwest::Response,
        decoder: StreamDecoder,
        encoder: StreamEncoder,
        deadline: Instant,
        attempt_started: Instant,
        prompt_bytes: usize,
    ) -> Self {
        Self {
            upstream: Box::pin(response.bytes_stream()),
            framing: decoder.framing(),
            decoder,
            encoder,
            event_usage: None,
            event_deltas: 0,
            ready: VecDeque::new(),
            deadline,
            attempt_started,
            first_event_at: None,
            prompt_bytes,
            state: StreamEnd::Open,
            record: None,
            permit: None,
            on_complete: None,
        }
    }

    /// Runs `hook` once the stream completed, before its last bytes go to the client.
    pub fn on_complete(&mut self, hook: CompletionHook) {
        self.on_complete = Some(hook);
    }

    /// The finished Responses object of a completed stream: written by the proxy, or relayed.
    fn completed_response(&self) -> Option<serde_json::Value> {
        match self.encoder.completed_response() {
            Some(response) => serde_json::to_value(response).ok(),
            None => self.decoder.completed_response().cloned(),
        }
    }

    /// Reads until the first event for the client is ready. An error here means nothing was
    /// sent, so the caller may fail over.
    pub async fn prime(&mut self, first_byte_deadline: Instant) -> Result<(), AttemptFailure> {
        // Bytes that held no event are a broken answer, not a sign of missing capacity.
        let mut received = 0usize;
        while self.ready.is_empty() && self.state == StreamEnd::Open {
            let next = match timeout_at(
                first_byte_deadline.min(self.deadline),
                self.upstream.next(),
            )
            .await
            {
                Err(_) => {
                    return Err(AttemptFailure::new(
                        FailureKind::Timeout,
                        "no stream event before the first-byte timeout",
                    ))
                }
                Ok(next) => next,
            };
            match next {
                None if received > 0 => {
                    return Err(AttemptFailure::new(
                        FailureKind::ServerError,
                        format!(
                            "the upstream's stream ended after {received} bytes that held no event"
                        ),
                    ))
                }
                None => {
                    return Err(AttemptFailure::new(
                        FailureKind::Capacity { retry_after: None },
                        "the upstream closed the stream before its first event",
                    ))
                }
                Some(Err(e)) => return Err(transport_failure(&e)),
                Some(Ok(bytes)) => {
                    received += bytes.len();
                    if let Err(failure) = self.absorb(&bytes) {
                        return Err(early_failure(failure));
                    }
                }
            }
        }
        Ok(())
    }

    /// Attaches the attempt's permit; the stream reports the target's verdict when it ends.
    pub fn attach_permit(&mut self, permit: AttemptPermit) {
        self.permit = Some(permit);
    }

    /// Attaches the request's record; the stream finishes it when it ends.
    pub fn attach_record(&mut self, mut record: RequestRecord) {
        record.first_byte = Some(record.started.elapsed());
        self.record = Some(record);
    }

    /// The next bytes for the client, or `None` when the stream is over.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.state == StreamEnd::Complete {
                if let Some(hook) = self.on_complete.take() {
                    if let Some(response) = self.completed_response() {
                        hook(response).await;
                    }
                }
            }
            if let Some(bytes) = self.take_ready() {
                return Some(bytes);
            }
            if self.state != StreamEnd::Open {
                self.finish(None);
                return None;
            }
            let failure = match timeout_at(self.deadline, self.upstream.next()).await {
                Err(_) => Some(StreamFailure {
                    fault: StreamFault::Timeout,
                    message: "the request timed out while the upstream was streaming".to_owned(),
                }),
                Ok(None) => Some(ended_early()),
                Ok(Some(Err(e))) => Some(StreamFailure {
                    fault: StreamFault::Upstream,
                    message: transport_failure(&e).detail,
                }),
                Ok(Some(Ok(bytes))) => self.absorb(&bytes).err().or_else(|| self.absorb_buffered()),
            };
            if let Some(failure) = failure {
                self.fail(failure);
            }
        }
    }

    /// Absorbs what the upstream has already delivered, without waiting: events that arrived
    /// together leave together, in one write to the client.
    fn absorb_buffered(&mut self) -> Option<StreamFailure> {
        while self.state == StreamEnd::Open {
            match self.upstream.next().now_or_never() {
                Some(Some(Ok(bytes))) => {
                    if let Err(failure) = self.absorb(&bytes) {
                        return Some(failure);
                    }
                }
                Some(Some(Err(e))) => {
                    return Some(StreamFailure {
                        fault: StreamFault::Upstream,
                        message: transport_failure(&e).detail,
                    })
                }
                Some(None) => return Some(ended_early()),
                // Nothing more right now.
                None => return None,
            }
        }
        None
    }

    /// Every event ready now, as one write: one network read often completes several events,
    /// and a write per event would cost a syscall (and an HTTP chunk) each.
    fn take_ready(&mut self) -> Option<Bytes> {
        match self.ready.len() {
            0 => None,
            1 => self.ready.pop_front(),
            _ => {
                let mut batch = BytesMut::with_capacity(self.ready.iter().map(Bytes::len).sum());
                for event in self.ready.drain(..) {
                    batch.extend_from_slice(&event);
                }
                Some(batch.freeze())
            }
        }
    }

    /// The client went away: stop reading the upstream and account for what was produced.
    pub fn client_gone(&mut self) {
        self.finish(Some(Ending::ClientGone));
    }

    /// Decodes and translates bytes into ready events.
    fn absorb(&mut self, bytes: &[u8]) -> Result<(), StreamFailure> {
        let events = self.framing.push(bytes).map_err(|message| StreamFailure {
            fault: StreamFault::Upstream,
            message,
        })?;
        for event in events {
            match self.decoder.on_event(&event) {
                StreamStep::Emit(out) => self.emit(out),
                StreamStep::Events(events) => self.emit_events(&events),
                StreamStep::LastEvents(events) => {
                    self.emit_events(&events);
                    self.complete();
                    return Ok(());
                }
                StreamStep::Skip => {}
                StreamStep::Done => {
                    self.complete();
                    return Ok(());
                }
                StreamStep::Last(out) => {
                    // The relayed bytes already end the stream in the client's dialect.
                    self.emit(out);
                    self.state = StreamEnd::Complete;
                    return Ok(());
                }
                StreamStep::Failed(UpstreamStreamError {
                    message, capacity, ..
                }) => {
                    return Err(StreamFailure {
                        fault: if capacity {
                            StreamFault::Overloaded
                        } else {
                            StreamFault::Upstream
                        },
                        message,
                    })
                }
            }
        }
        Ok(())
    }

    /// Typed events through the client's dialect encoder, counted for metering.
    fn emit_events(&mut self, events: &[StreamEvent]) {
        let mut out = Vec::new();
        for event in events {
            self.count(event);
            self.encoder.encode(event, &mut out);
        }
        if !out.is_empty() {
            self.emit(Bytes::from(out));
        }
    }

    fn emit(&mut self, bytes: Bytes) {
        self.first_event_at.get_or_insert_with(Instant::now);
        self.ready.push_back(bytes);
    }

    /// The upstream finished properly: the dialect's end of stream.
    fn complete(&mut self) {
        let mut out = Vec::new();
        self.encoder.finish(&mut out);
        self.ready.push_back(Bytes::from(out));
        self.state = StreamEnd::Complete;
    }

    /// Usage and content deltas of typed events, for metering.
    fn count(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Usage(usage) => self.event_usage = Some(*usage),
            StreamEvent::Delta { delta, .. } if !matches!(delta, Delta::Signature(_)) => {
                self.event_deltas += 1;
            }
            _ => {}
        }
    }

    fn fail(&mut self, failure: StreamFailure) {
        let code = failure.fault.code();
        let event = self.encoder.error_event(failure.fault, failure.message);
        self.ready.push_back(event);
        self.state = StreamEnd::Failed;
        if let Some(record) = &self.record {
            record
                .state()
                .metrics
                .stream_errors
                .with_label_values(&[record.provider(), code])
                .inc();
        }
    }

    fn usage(&self) -> Usage {
        self.decoder
            .usage()
            .or(self.event_usage)
            .unwrap_or_else(|| {
                let deltas = self.decoder.content_deltas() + self.event_deltas;
                Usage::estimate(self.prompt_bytes, deltas)
            })
    }

    /// Accounts for the stream once: live figures of the target, metrics, spend, log.
    fn finish(&mut self, ending: Option<Ending>) {
        let Some(record) = self.record.take() else {
            return;
        };
        let usage = self.usage();
        let ending = ending.unwrap_or(match self.state {
            StreamEnd::Complete => Ending::Status(200),
            StreamEnd::Failed | StreamEnd::Open => Ending::StreamError,
        });
        if let Some(permit) = self.permit.take() {
            match ending {
                Ending::Status(_) => {
                    let first = self.first_event_at.unwrap_or(self.attempt_started);
                    permit.succeeded(
                        first - self.attempt_started,
                        first.elapsed(),
                        usage.completion_tokens,
                    );
                }
                Ending::StreamError => permit.failed(Instant::now()),
                // No verdict on the target: dropping the permit frees it.
                Ending::ClientGone => drop(permit),
            }
        }
        record.finish(ending, Some(usage));
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        // Dropped mid-way (the connection task ended): still meter what was produced.
        if self.record.is_some() {
            self.finish(Some(Ending::ClientGone));
        }
    }
}

/// The upstream closed the stream before it was complete.
fn ended_early() -> StreamFailure {
    StreamFailure {
        fault: StreamFault::Upstream,
        message: "the upstream ended the stream before it was complete".to_owned(),
    }
}

/// A failure before the first client byte: the next target may be tried.
fn early_failure(failure: StreamFailure) -> AttemptFailure {
    let kind = if failure.fault == StreamFault::Overloaded {
        FailureKind::Capacity { retry_after: None }
    } else {
        FailureKind::ServerError
    };
    AttemptFailure::new(kind, failure.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::chat::ChunkEncoder;
    use crate::providers::openai::{StreamState, TypedStream};
    use std::time::Duration;

    const UPSTREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,\"total_tokens\":5,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\n",
        "data: [DONE]\n\n",
    );

    /// Relays `upstream` through `decoder` to a Chat client that asked for usage.
    async fn relay(upstream: impl Into<reqwest::Body>, decoder: StreamDecoder) -> (String, Usage) {
        let response = reqwest::Response::from(http::Response::new(upstream.into()));
        let encoder = StreamEncoder::Chat(ChunkEncoder::new("alias", true));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut stream = ChatStream::new(response, decoder, encoder, deadline, Instant::now(), 8);
        stream.prime(deadline).await.unwrap();
        let mut out = Vec::new();
        while let Some(bytes) = stream.next_chunk().await {
            out.extend_from_slice(&bytes);
        }
        (String::from_utf8(out).unwrap(), stream.usage())
    }

    #[tokio::test]
    async fn typed_events_are_written_by_the_clients_encoder() {
        let (out, usage) = relay(UPSTREAM, StreamDecoder::Chat(TypedStream::default())).await;
        assert!(out.contains("\"model\":\"alias\""), "{out}");
        assert!(out.contains("\"content\":\"Hi\""), "{out}");
        assert!(out.contains("\"finish_reason\":\"stop\""), "{out}");
        assert!(out.contains("\"cached_tokens\":2"), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        assert_eq!(
            (usage.prompt_tokens, usage.cached_tokens, usage.estimated),
            (4, 2, false)
        );
    }

    #[tokio::test]
    async fn pass_through_bytes_are_relayed_with_one_done() {
        let decoder = StreamDecoder::OpenAi(StreamState::new("alias", false));
        let (out, usage) = relay(UPSTREAM, decoder).await;
        assert_eq!(out.matches("[DONE]").count(), 1, "{out}");
        assert!(!out.contains("usage"), "the client did not ask: {out}");
        assert_eq!(out.matches("\"model\":\"alias\"").count(), 3, "{out}");
        assert_eq!(usage.completion_tokens, 1);
    }

    #[tokio::test]
    async fn a_relayed_end_of_stream_is_not_followed_by_the_dialects_own() {
        let upstream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let decoder = StreamDecoder::Anthropic(
            crate::providers::anthropic::relay::MessagesRelay::new("alias"),
        );
        let (out, usage) = relay(upstream, decoder).await;
        assert!(out.starts_with("event: message_start\n"), "{out}");
        assert!(out.contains("\"model\":\"alias\""), "{out}");
        assert!(
            out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{out}"
        );
        assert!(!out.contains("[DONE]"), "{out}");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.estimated
            ),
            (3, 5, false)
        );
    }

    /// One ConverseStream event frame, encoded as Bedrock sends it.
    fn frame(event: &str, payload: &str) -> Vec<u8> {
        use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
        let message = Message::new(payload.as_bytes().to_vec())
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(event.to_owned().into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".to_owned().into()),
            ));
        let mut out = Vec::new();
        aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
        out
    }

    #[tokio::test]
    async fn bedrock_events_end_with_usage_and_one_done() {
        let mut body = frame("messageStart", r#"{"role":"assistant"}"#);
        body.extend(frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        ));
        body.extend(frame("contentBlockStop", r#"{"contentBlockIndex":0}"#));
        body.extend(frame("messageStop", r#"{"stopReason":"end_turn"}"#));
        body.extend(frame(
            "metadata",
            r#"{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":6,"cacheReadInputTokens":2}}"#,
        ));
        let (out, usage) = relay(body, StreamDecoder::Bedrock(Default::default())).await;
        assert!(out.contains("\"content\":\"Hi\""), "{out}");
        assert!(out.contains("\"finish_reason\":\"stop\""), "{out}");
        assert!(out.contains("\"cached_tokens\":2"), "{out}");
        assert_eq!(out.matches("[DONE]").count(), 1, "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.estimated
            ),
            (5, 1, false)
        );
    }

    /// Garbage where a Bedrock stream should be fails the attempt at once, as a server error
    /// (a failover without a cool-down), not when the upstream finally closes.
    #[tokio::test(start_paused = true)]
    async fn bedrock_garbage_fails_before_the_upstream_closes() {
        let garbage: Result<Bytes, std::io::Error> = Ok(Bytes::from_static(b"<html><body>oops"));
        let body = futures_util::stream::iter([garbage]).chain(futures_util::stream::pending());
        let response =
            reqwest::Response::from(http::Response::new(reqwest::Body::wrap_stream(body)));
        let decoder = StreamDecoder::Bedrock(Default::default());
        let encoder = StreamEncoder::Chat(ChunkEncoder::new("alias", true));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut stream = ChatStream::new(response, decoder, encoder, deadline, Instant::now(), 8);
        let started = Instant::now();
        let failure = stream.prime(deadline).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::ServerError, "{}", failure.detail);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
