//! Relaying one upstream stream to the client, event by event as it arrives: the provider's
//! [`StreamDecoder`] reads the upstream's events, and what it yields is either bytes already
//! in the client's dialect (pass-through) or typed events that the client's dialect
//! [`StreamEncoder`] writes.
//!
//! Before the client sees anything, [`ChatStream::prime`] reads up to the first translated
//! event, so an upstream that fails early can still be failed over. After that, a failure
//! (including a stall: no event for `server.stream_idle_timeout`) ends the stream with the
//! dialect's error event, never a silent truncation; unless the model resumes streams, when
//! the next target continues it (docs/streams.md, `resume/`).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use tokio::time::{timeout_at, Instant};

use super::leg::{Leg, LegEnd};
use super::record::{Ending, RequestRecord};
use super::resume::{NextTargets, NotResumed, Resumed, Resumer};
use crate::dialects::{StreamEncoder, StreamFault};
use crate::metering::usage_check::{self, UsageBounds};
use crate::metering::Usage;
use crate::model::StreamEvent;
use crate::providers::{StreamDecoder, StreamStep, UpstreamStreamError};
use crate::routing::AttemptPermit;
use crate::upstream::client::body_failure;
use crate::upstream::scrub::Scrubber;
use crate::upstream::{AttemptFailure, FailureKind, UpstreamResponse};

/// Rounds of letting the upstream connection's task run before a write (see
/// `ChatStream::absorb_arrived`), and the bytes past which the write goes out anyway.
const MAX_ARRIVED_ROUNDS: usize = 32;
const MAX_ARRIVED_BYTES: usize = 64 * 1024;

/// Work to finish before a completed stream's last event reaches the client, given the
/// finished Responses object as the client reads it (the Responses store keeps each turn
/// before the client sees it complete).
pub type CompletionHook =
    Box<dyn FnOnce(serde_json::Value) -> futures_util::future::BoxFuture<'static, ()> + Send>;

pub struct ChatStream {
    /// The upstream attempt now streaming.
    leg: Leg,
    encoder: StreamEncoder,
    ready: VecDeque<Bytes>,
    deadline: Instant,
    /// `server.stream_idle_timeout`; `None` waits for events up to the deadline.
    idle_timeout: Option<Duration>,
    /// What the request may be billed for: the output each leg may relay, and the range its
    /// reported usage is checked against.
    bounds: UsageBounds,
    state: StreamEnd,
    /// How the last leg broke, for its target's verdict.
    broken: Option<LegEnd>,
    record: Option<RequestRecord>,
    /// Set for models with `resume_streams: true`.
    resume: Option<Box<Resumer>>,
    /// Takes configured secrets out of an upstream's error text.
    scrubber: Scrubber,
    /// Runs before a completed stream's last event reaches the client.
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
    /// No event came for `server.stream_idle_timeout`.
    stalled: bool,
}

impl StreamFailure {
    fn upstream(message: String) -> Self {
        Self {
            fault: StreamFault::Upstream,
            message,
            stalled: false,
        }
    }
}

impl ChatStream {
    pub fn new(
        response: UpstreamResponse,
        decoder: StreamDecoder,
        encoder: StreamEncoder,
        deadline: Instant,
        attempt_started: Instant,
        prompt_bytes: usize,
    ) -> Self {
        Self {
            leg: Leg::new(response, decoder, attempt_started, prompt_bytes),
            encoder,
            ready: VecDeque::new(),
            deadline,
            idle_timeout: None,
            bounds: UsageBounds::default(),
            state: StreamEnd::Open,
            broken: None,
            record: None,
            resume: None,
            scrubber: Scrubber::default(),
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
            None => self.leg.completed_response(),
        }
    }

    /// A stall, once the stream has started: no event for `idle` ends the attempt.
    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.idle_timeout = Some(idle);
    }

    /// Tracks what the client is given from the first event, so a broken stream can be
    /// resumed (the decoder must be `StreamDecoder::typed`).
    pub fn track_for_resume(&mut self) {
        self.resume = Some(Box::default());
    }

    /// Where a broken stream may continue; only for a stream that tracks for resume.
    pub fn resume_on(&mut self, next: NextTargets) {
        if let Some(resume) = &mut self.resume {
            resume.set_next(next);
        }
    }

    /// Secrets to take out of an upstream's error message before the client's error event
    /// carries it (the policy's scrubber).
    pub fn scrub_errors_with(&mut self, scrubber: Scrubber) {
        self.scrubber = scrubber;
    }

    /// Reads until the first event for the client is ready. An error here means nothing was
    /// sent, so the caller may fail over.
    pub async fn prime(&mut self, first_byte_deadline: Instant) -> Result<(), AttemptFailure> {
        // Bytes that held no event are a broken answer, not a sign of missing capacity.
        let mut received = 0usize;
        while self.ready.is_empty() && self.state == StreamEnd::Open {
            let next = match timeout_at(
                first_byte_deadline.min(self.deadline),
                self.leg.upstream.next(),
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
                Some(Err(e)) => return Err(body_failure(&e)),
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

    /// Bounds the stream by the request's output allowance (cut past it) and checks its
    /// usage against `bounds` when it ends.
    pub fn bound_by(&mut self, bounds: UsageBounds) {
        self.bounds = bounds;
        self.leg.bound_output(bounds.output_max);
    }

    /// Attaches the attempt's permit; the stream reports the target's verdict when it ends.
    pub fn attach_permit(&mut self, permit: AttemptPermit) {
        self.leg.attach_permit(permit);
    }

    /// Attaches the attempt's span; it ends with the leg.
    pub fn attach_span(&mut self, span: crate::telemetry::AttemptSpan) {
        self.leg.attach_span(span);
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
            let stall_at = self.idle_timeout.map_or(self.deadline, |idle| {
                (Instant::now() + idle).min(self.deadline)
            });
            let failure = match timeout_at(stall_at, self.leg.upstream.next()).await {
                Err(_) if stall_at < self.deadline => Some(StreamFailure {
                    fault: StreamFault::Timeout,
                    message: "the upstream sent no event within the stream idle timeout".to_owned(),
                    stalled: true,
                }),
                Err(_) => Some(StreamFailure {
                    fault: StreamFault::Timeout,
                    message: "the request timed out while the upstream was streaming".to_owned(),
                    stalled: false,
                }),
                Ok(None) => Some(ended_early()),
                Ok(Some(Err(e))) => Some(StreamFailure::upstream(body_failure(&e).detail)),
                Ok(Some(Ok(bytes))) => match self.absorb(&bytes) {
                    Err(failure) => Some(failure),
                    Ok(()) => match self.absorb_buffered() {
                        (_, Some(failure)) => Some(failure),
                        (_, None) => self.absorb_arrived().await,
                    },
                },
            };
            if let Some(failure) = failure {
                if !self.resume_after(&failure).await {
                    self.fail(failure);
                }
            }
        }
    }

    /// Absorbs what the upstream has already delivered, without waiting: events that arrived
    /// together leave together, in one write to the client. Returns how many reads it took.
    fn absorb_buffered(&mut self) -> (usize, Option<StreamFailure>) {
        let mut reads = 0;
        while self.state == StreamEnd::Open {
            match self.leg.upstream.next().now_or_never() {
                Some(Some(Ok(bytes))) => {
                    reads += 1;
                    if let Err(failure) = self.absorb(&bytes) {
                        return (reads, Some(failure));
                    }
                }
                Some(Some(Err(e))) => {
                    return (
                        reads,
                        Some(StreamFailure::upstream(body_failure(&e).detail)),
                    )
                }
                Some(None) => return (reads, Some(ended_early())),
                // Nothing more right now.
                None => return (reads, None),
            }
        }
        (reads, None)
    }

    /// The upstream client hands the body over one piece at a time from its connection's own
    /// task, so what already arrived on the socket is only visible once that task has run:
    /// lets it run (a yield, no timer) and takes what it passed on, until a round brings
    /// nothing. Events already received then leave in one write instead of one each (each
    /// write to the client is a system call and a wake-up of the reader); nothing waits for
    /// an event that has not arrived. Bounded in rounds and bytes.
    async fn absorb_arrived(&mut self) -> Option<StreamFailure> {
        for _ in 0..MAX_ARRIVED_ROUNDS {
            if self.state != StreamEnd::Open
                || self.ready.iter().map(Bytes::len).sum::<usize>() >= MAX_ARRIVED_BYTES
            {
                return None;
            }
            tokio::task::yield_now().await;
            match self.absorb_buffered() {
                (_, Some(failure)) => return Some(failure),
                (0, None) => return None,
                (_, None) => {}
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
        let steps = self.leg.steps(bytes).map_err(StreamFailure::upstream)?;
        for step in steps {
            match step {
                StreamStep::Emit(out) => {
                    self.within_cap()?;
                    self.emit(out);
                }
                StreamStep::Events(events) => self.emit_events(events)?,
                StreamStep::LastEvents(events) => {
                    self.emit_events(events)?;
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
                        stalled: false,
                    })
                }
            }
        }
        Ok(())
    }

    /// Typed events through the client's dialect encoder (and, for a resumable stream, its
    /// splice and record of what was delivered), counted for metering; none of them once
    /// the output allowance is passed.
    fn emit_events(&mut self, events: Vec<StreamEvent>) -> Result<(), StreamFailure> {
        for event in &events {
            self.leg.count(event);
        }
        self.within_cap()?;
        let mut out = Vec::new();
        for event in events {
            let event = match &mut self.resume {
                Some(resume) => match resume.client_event(event) {
                    Some(event) => event,
                    None => continue,
                },
                None => event,
            };
            self.encoder.encode(&event, &mut out);
        }
        if !out.is_empty() {
            self.emit(Bytes::from(out));
        }
        Ok(())
    }

    /// An upstream that ignores the cap it was sent would stream (and bill) on without end:
    /// past the request's output allowance the stream is cut (docs/spend.md, "Output caps").
    fn within_cap(&self) -> Result<(), StreamFailure> {
        let Some(max) = self.leg.past_output_cap() else {
            return Ok(());
        };
        Err(StreamFailure {
            fault: StreamFault::OutputCap,
            message: format!(
                "the upstream went on past the output cap of {max} tokens it was sent; the proxy \
                 ended the stream and billed the output delivered"
            ),
            stalled: false,
        })
    }

    fn emit(&mut self, bytes: Bytes) {
        self.leg.noted_first_event();
        self.ready.push_back(bytes);
    }

    /// The upstream finished properly: the dialect's end of stream.
    fn complete(&mut self) {
        let mut out = Vec::new();
        self.encoder.finish(&mut out);
        self.ready.push_back(Bytes::from(out));
        self.state = StreamEnd::Complete;
    }

    /// For a resumable stream: continues on the next target after `failure`. False when the
    /// stream cannot go on (it then ends with the error event).
    async fn resume_after(&mut self, failure: &StreamFailure) -> bool {
        let Some(mut resume) = self.resume.take() else {
            return false;
        };
        let broken = self.leg.broken_usage();
        let outcome = resume.resume(broken).await;
        let resumed = self.hand_over(outcome, failure, broken, &mut resume);
        self.resume = Some(resume);
        resumed
    }

    fn hand_over(
        &mut self,
        outcome: Result<Resumed, NotResumed>,
        failure: &StreamFailure,
        broken: Usage,
        resume: &mut Resumer,
    ) -> bool {
        let count = |record: &RequestRecord, to: &str, outcome: &str| {
            record
                .state()
                .metrics
                .stream_resumes
                .with_label_values(&[record.model.as_str(), record.provider(), to, outcome])
                .inc();
        };
        let resumed = match outcome {
            Ok(resumed) => resumed,
            Err(reason) => {
                if let Some(record) = &self.record {
                    count(record, "none", reason.label());
                    tracing::debug!(
                        request_id = %record.request_id,
                        reason = reason.label(),
                        failure = %failure.message,
                        "broken stream not resumed"
                    );
                }
                return false;
            }
        };
        self.leg.end(match failure.stalled {
            true => LegEnd::Stalled,
            false => LegEnd::Failed,
        });
        self.leg = resumed.leg;
        // The continuation was sent with the same cap; its prompt holds the output already
        // delivered, beyond the admission's prompt bound, so only its output is checked.
        self.leg.bound_output(self.bounds.output_max);
        if self.bounds.prompt_max > 0 {
            self.bounds.prompt_max = u64::MAX;
            self.bounds.prompt_min = 0;
        }
        if let Some(record) = &mut self.record {
            count(record, &resumed.step.target.provider.name, "resumed");
            tracing::debug!(
                request_id = %record.request_id,
                from = %record.provider(),
                to = %resumed.step.target.id,
                failure = %failure.message,
                "stream resumed on the next target"
            );
            record.resumed_after(broken);
            record.attempts += 1;
            record.note_attempt(&resumed.step.target.id, "resumed");
            record.set_served_by(&resumed.step.target);
        }
        let mut out = Vec::new();
        for event in &resumed.events {
            resume.note_delivered(event);
            self.encoder.encode(event, &mut out);
        }
        if !out.is_empty() {
            self.ready.push_back(Bytes::from(out));
        }
        if resumed.done {
            self.complete();
        }
        true
    }

    fn fail(&mut self, failure: StreamFailure) {
        let code = failure.fault.code();
        let message = self.scrubber.scrub(&failure.message).into_owned();
        let event = self.encoder.error_event(failure.fault, message);
        self.ready.push_back(event);
        self.state = StreamEnd::Failed;
        self.broken = Some(match failure.stalled {
            true => LegEnd::Stalled,
            false => LegEnd::Failed,
        });
        if let Some(record) = &self.record {
            record
                .state()
                .metrics
                .stream_errors
                .with_label_values(&[record.provider(), code])
                .inc();
        }
    }

    #[cfg(test)]
    fn usage(&self) -> Usage {
        self.leg.usage()
    }

    /// Accounts for the stream once: live figures of the target, metrics, spend, log.
    fn finish(&mut self, ending: Option<Ending>) {
        let Some(record) = self.record.take() else {
            return;
        };
        let reported = self.leg.usage();
        let (usage, rejection) =
            usage_check::check(reported, &self.bounds, Some(self.leg.delivered()));
        if let Some(rejection) = rejection {
            usage_check::report(
                &record.state().metrics,
                record.provider(),
                &record.request_id,
                rejection,
                &reported,
            );
        }
        let ending = ending.unwrap_or(match self.state {
            StreamEnd::Complete => Ending::Status(200),
            StreamEnd::Failed | StreamEnd::Open => Ending::StreamError,
        });
        self.leg.end(match ending {
            Ending::Status(_) => LegEnd::Complete,
            Ending::StreamError => self.broken.unwrap_or(LegEnd::Failed),
            Ending::ClientGone => LegEnd::Abandoned,
        });
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
    StreamFailure::upstream("the upstream ended the stream before it was complete".to_owned())
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
    use crate::upstream::body::{streamed, whole};
    use std::time::Duration;

    const UPSTREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,\"total_tokens\":5,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\n",
        "data: [DONE]\n\n",
    );

    /// Relays `upstream` through `decoder` to a Chat client that asked for usage.
    async fn relay(upstream: impl Into<Bytes>, decoder: StreamDecoder) -> (String, Usage) {
        let response = http::Response::new(whole(upstream));
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
        let response = http::Response::new(streamed(body));
        let decoder = StreamDecoder::Bedrock(Default::default());
        let encoder = StreamEncoder::Chat(ChunkEncoder::new("alias", true));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut stream = ChatStream::new(response, decoder, encoder, deadline, Instant::now(), 8);
        let started = Instant::now();
        let failure = stream.prime(deadline).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::ServerError, "{}", failure.detail);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
    /// A chunk of text, then nothing: the upstream stalled.
    fn stalling_upstream() -> UpstreamResponse {
        let first: Result<Bytes, std::io::Error> = Ok(Bytes::from_static(
            b"data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n",
        ));
        let body = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
        http::Response::new(streamed(body))
    }

    /// A Chat stream over [`stalling_upstream`] with a 120 s deadline, and that deadline.
    fn stalling_chat_stream() -> (ChatStream, Instant) {
        let decoder = StreamDecoder::Chat(TypedStream::default());
        let encoder = StreamEncoder::Chat(ChunkEncoder::new("alias", true));
        let deadline = Instant::now() + Duration::from_secs(120);
        let stream = ChatStream::new(
            stalling_upstream(),
            decoder,
            encoder,
            deadline,
            Instant::now(),
            8,
        );
        (stream, deadline)
    }

    async fn read_all(stream: &mut ChatStream) -> String {
        let mut out = Vec::new();
        while let Some(bytes) = stream.next_chunk().await {
            out.extend_from_slice(&bytes);
        }
        String::from_utf8(out).unwrap()
    }

    /// No event for the idle timeout ends the stream then, not at the request's deadline.
    #[tokio::test(start_paused = true)]
    async fn a_stall_past_the_idle_timeout_ends_with_the_timeout_event() {
        let (mut stream, deadline) = stalling_chat_stream();
        stream.set_idle_timeout(Duration::from_millis(300));
        stream.prime(deadline).await.unwrap();
        let out = read_all(&mut stream).await;
        assert!(out.contains("\"content\":\"Hi\""), "{out}");
        assert!(out.contains("\"code\":\"upstream_timeout\""), "{out}");
        assert!(
            out.contains("stream idle timeout"),
            "a stall, not the deadline: {out}"
        );
        assert!(!out.contains("[DONE]"), "{out}");
        assert!(Instant::now() < deadline);
    }

    /// Without an idle timeout the same stall waits for the request's deadline.
    #[tokio::test(start_paused = true)]
    async fn without_an_idle_timeout_a_stall_ends_at_the_deadline() {
        let (mut stream, deadline) = stalling_chat_stream();
        stream.prime(deadline).await.unwrap();
        let out = read_all(&mut stream).await;
        assert!(out.contains("the request timed out"), "{out}");
        assert!(Instant::now() >= deadline);
    }

    /// A resumable stream with nowhere to go ends with the error event, text relayed once.
    #[tokio::test(start_paused = true)]
    async fn a_resumable_stream_with_no_next_target_ends_with_the_error_event() {
        let (mut stream, deadline) = stalling_chat_stream();
        stream.set_idle_timeout(Duration::from_millis(300));
        stream.track_for_resume();
        stream.prime(deadline).await.unwrap();
        let out = read_all(&mut stream).await;
        assert_eq!(out.matches("\"content\":\"Hi\"").count(), 1, "{out}");
        assert!(out.contains("\"code\":\"upstream_timeout\""), "{out}");
    }
}
