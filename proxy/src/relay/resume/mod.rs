//! Streams that survive their upstream (docs/streams.md). For a model with
//! `resume_streams: true`, a stream that breaks after bytes reached the client (a reset, a
//! stall, garbage, a mid-stream error) goes on at the next target of its plan: the target is
//! sent the original request with the delivered text as the start of the assistant's turn
//! ([`continuation`]), and only what it writes after that reaches the client ([`splice`]).
//! Never when a tool call or thinking block was delivered ([`delivered`]).
//!
//! Works on the typed [`StreamEvent`]s, whatever the client's dialect: a resumable stream is
//! read with typed decoders only (`StreamDecoder::typed`).

pub mod continuation;
pub mod delivered;
pub mod splice;

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::time::{timeout_at, Instant};

use super::attempts::{report_failure, send_one};
use super::leg::Leg;
use crate::metering::Usage;
use crate::model::StreamEvent;
use crate::providers::{self, Generation, Operation, StreamDecoder, StreamStep};
use crate::routing::{PlannedAttempt, RequestShape};
use crate::state::AppState;
use crate::telemetry::{AttemptRole, AttemptSpan, AttemptStart, SpanParent};
use crate::upstream::client::body_failure;
use crate::upstream::{AttemptFailure, FailureKind};

pub use delivered::{Delivered, NotResumed};
use splice::Splice;

/// The resume state of one stream: what the client has, and where the rest may come from.
#[derive(Default)]
pub struct Resumer {
    delivered: Delivered,
    /// Set once a leg was resumed: the current leg's events pass through it.
    splice: Option<Splice>,
    next: Option<NextTargets>,
    /// What the broken legs produced, added to the usage the client sees.
    earlier: Usage,
}

/// What starting the next target needs, owned: the stream outlives the attempt loop.
pub struct NextTargets {
    pub state: Arc<AppState>,
    pub generation: Generation,
    /// The rest of the request's plan, in order.
    pub steps: VecDeque<PlannedAttempt>,
    pub request_id: String,
    pub deadline: Instant,
    /// The request's span: each resumed leg is an attempt span under it.
    pub trace: Option<SpanParent>,
}

impl NextTargets {
    /// The targets after the one now streaming, for a streamed generation.
    pub fn after<'p>(
        state: &Arc<AppState>,
        operation: &Operation,
        rest: impl Iterator<Item = &'p PlannedAttempt>,
        request_id: &str,
        deadline: Instant,
    ) -> Option<Self> {
        let Operation::Generate(generation) = operation else {
            return None;
        };
        Some(Self {
            state: state.clone(),
            generation: (**generation).clone(),
            steps: rest.cloned().collect(),
            request_id: request_id.to_owned(),
            deadline,
            trace: None,
        })
    }

    /// Hangs the legs' spans under the request's span.
    pub fn traced_under(mut self, trace: Option<SpanParent>) -> Self {
        self.trace = trace;
        self
    }

    /// The span of a resumed leg on `step`.
    fn leg_span(&self, step: &PlannedAttempt) -> AttemptSpan {
        let Some(parent) = &self.trace else {
            return AttemptSpan::default();
        };
        parent.attempt(AttemptStart {
            target: &step.target,
            operation: "chat",
            model: &step.model.name,
            max_tokens: self.generation.request.max_output_tokens,
            stream: true,
            role: AttemptRole::Resume,
        })
    }
}

/// The next leg, started: its first events for the client (spliced, not yet delivered).
pub struct Resumed {
    pub leg: Leg,
    pub step: PlannedAttempt,
    pub events: Vec<StreamEvent>,
    /// The leg already finished properly.
    pub done: bool,
}

impl Resumer {
    pub fn set_next(&mut self, next: NextTargets) {
        self.next = Some(next);
    }

    /// The client's event for one of the current leg's, noted as delivered.
    pub fn client_event(&mut self, event: StreamEvent) -> Option<StreamEvent> {
        let event = match &mut self.splice {
            Some(splice) => splice.apply(event)?,
            None => event,
        };
        self.delivered.observe(&event);
        Some(event)
    }

    /// Notes an event of [`Resumed::events`] (already spliced) as delivered.
    pub fn note_delivered(&mut self, event: &StreamEvent) {
        self.delivered.observe(event);
    }

    /// Continues on the next target that starts answering, after a leg that produced
    /// `broken`; or says why the stream cannot go on.
    pub async fn resume(&mut self, broken: Usage) -> Result<Resumed, NotResumed> {
        self.delivered.resumable()?;
        let next = self.next.as_mut().ok_or(NotResumed::NoTarget)?;
        self.earlier = self.earlier.plus(&broken);
        while let Some(step) = next.steps.pop_front() {
            if Instant::now() >= next.deadline {
                return Err(NotResumed::Deadline);
            }
            let state = next.state.clone();
            let shape = RequestShape::from_prompt_bytes(
                next.generation.request.prompt_bytes(),
                next.generation.request.max_output_tokens,
            );
            let estimated = shape.prompt_tokens + u64::from(shape.expected_output_tokens());
            let Ok(permit) = state.stats.try_start(
                &step.target,
                step.model.routing.health,
                estimated,
                Instant::now(),
            ) else {
                continue;
            };
            let mut splice = Splice::new(&self.delivered, self.earlier);
            let mut span = next.leg_span(&step);
            let outcome = start_leg(next, &step, self.delivered.text(), &mut splice, &span).await;
            let label = match &outcome {
                Ok(_) => "ok",
                Err(failure) => failure.outcome().label(),
            };
            state
                .metrics
                .upstream_attempts
                .with_label_values(&[&step.target.provider.name, label])
                .inc();
            match outcome {
                Ok((mut leg, events, done)) => {
                    leg.attach_permit(permit);
                    leg.attach_span(span);
                    self.splice = Some(splice);
                    return Ok(Resumed {
                        leg,
                        step,
                        events,
                        done,
                    });
                }
                Err(failure) => {
                    span.end_failed(&failure);
                    tracing::debug!(
                        request_id = %next.request_id,
                        target = %step.target.id,
                        failure = %failure.detail,
                        "resumed attempt failed"
                    );
                    report_failure(&state, &step, &failure, permit);
                }
            }
        }
        Err(NotResumed::NoTarget)
    }
}

/// Sends the continuation to `step` and reads up to its first event for the client.
async fn start_leg(
    next: &NextTargets,
    step: &PlannedAttempt,
    delivered: &str,
    splice: &mut Splice,
    span: &AttemptSpan,
) -> Result<(Leg, Vec<StreamEvent>, bool), AttemptFailure> {
    let server_error = |detail: String| AttemptFailure::new(FailureKind::ServerError, detail);
    let target = &step.target;
    let operation = continuation::continuation(target, &next.generation, delivered)
        .map_err(|e| server_error(e.to_string()))?;
    let Operation::Generate(generation) = &operation else {
        return Err(server_error("a continuation is a generation".to_owned()));
    };
    let state = &next.state;
    let mut requests =
        providers::build_requests(target, &operation, &next.request_id, &state.providers)
            .map_err(|e| server_error(e.to_string()))?;
    let request = requests
        .pop()
        .ok_or_else(|| server_error("no upstream request was built".to_owned()))?;
    let decoder =
        StreamDecoder::typed(target, generation).map_err(|e| server_error(e.to_string()))?;
    let started = Instant::now();
    let first_byte_timeout = step
        .model
        .first_byte_timeout
        .unwrap_or(state.policy().server.first_byte_timeout);
    let first_byte_deadline = (started + first_byte_timeout).min(next.deadline);
    let response = send_one(state, step, request, first_byte_deadline, span).await?;
    let mut leg = Leg::new(response, decoder, started, operation.prompt_bytes());
    let mut events = Vec::new();
    let mut received = 0usize;
    while events.is_empty() {
        let bytes = match timeout_at(first_byte_deadline, leg.upstream.next()).await {
            Err(_) => {
                return Err(AttemptFailure::new(
                    FailureKind::Timeout,
                    "no stream event before the first-byte timeout",
                ))
            }
            Ok(None) if received > 0 => {
                return Err(server_error(format!(
                    "the upstream's stream ended after {received} bytes without text"
                )))
            }
            Ok(None) => {
                return Err(AttemptFailure::new(
                    FailureKind::Capacity { retry_after: None },
                    "the upstream closed the stream before its first event",
                ))
            }
            Ok(Some(Err(e))) => return Err(body_failure(&e)),
            Ok(Some(Ok(bytes))) => bytes,
        };
        received += bytes.len();
        for step in leg.steps(&bytes).map_err(server_error)? {
            let (typed, last) = match step {
                StreamStep::Events(typed) => (typed, false),
                StreamStep::LastEvents(typed) => (typed, true),
                StreamStep::Done => (Vec::new(), true),
                StreamStep::Skip => continue,
                StreamStep::Failed(error) => {
                    let kind = match error.capacity {
                        true => FailureKind::Capacity { retry_after: None },
                        false => FailureKind::ServerError,
                    };
                    return Err(AttemptFailure::new(kind, error.message));
                }
                StreamStep::Emit(_) | StreamStep::Last(_) => {
                    return Err(server_error(
                        "a resumed stream must be read as typed events".to_owned(),
                    ))
                }
            };
            for event in typed {
                leg.count(&event);
                events.extend(splice.apply(event));
            }
            if last {
                leg.noted_first_event();
                return Ok((leg, events, true));
            }
        }
    }
    leg.noted_first_event();
    Ok((leg, events, false))
}
