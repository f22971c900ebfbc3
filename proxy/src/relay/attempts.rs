//! The attempt loop: walk the ranked plan, send to each target in turn, fail over on
//! capacity, server errors and timeouts before anything reaches the client, and stop at the
//! first answer, the first client error, the attempt bound or the request deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::record::{Ending, RequestRecord};
use super::resume::NextTargets;
use super::stream::ChatStream;
use super::Reply;
use crate::config::{HedgeAfter, Model, Policy, TargetId, Team};
use crate::dialects::{self, StreamEncoder};
use crate::error::{ProxyError, RequestError, RoutingError, UpstreamError};
use crate::metering::usage_check::{self, UsageBounds};
use crate::metering::{cost::format_usd, Usage};
use crate::metrics::AttemptOutcome;
use crate::providers::{self, Decoded, Operation, StreamDecoder, TranslateError, UpstreamRequest};
use crate::routing::headroom::RateLimitHeaders;
use crate::routing::{
    self, AttemptPermit, Availability, Plan, PlannedAttempt, RequestShape, SkipReason,
};
use crate::state::AppState;
use crate::telemetry::attributes::gen_ai_operation_of;
use crate::telemetry::{AttemptRole, AttemptSpan, AttemptStart, RequestSpan};
use crate::upstream::client::read_answer;
use crate::upstream::{AttemptFailure, FailureKind, UpstreamResponse};

#[cfg(test)]
#[path = "attempts_tests.rs"]
mod tests;

/// Serves `operation` for `model`. On success for a stream, the record travels inside the
/// stream; otherwise it is finished by the caller (errors) or here (answers).
pub async fn serve(
    policy: &Policy,
    model: &Arc<Model>,
    team: &Team,
    operation: Operation,
    record: RequestRecord,
) -> Result<Reply, (ProxyError, RequestRecord)> {
    let shape = request_shape(&operation, record.client_output_cap());
    let plan = routing::plan(
        policy,
        model,
        Some(team),
        &record.state().stats,
        &shape,
        Instant::now(),
        &mut rand::rng(),
    );
    let plan = providers::responses_turn::sticky(plan, &operation);
    serve_planned(policy, model, team, operation, record, &shape, plan).await
}

/// The attempt loop over `plan`, made for this request just before (the tests make it
/// themselves, to change a target's state between planning and its attempt).
async fn serve_planned(
    policy: &Policy,
    model: &Arc<Model>,
    team: &Team,
    operation: Operation,
    mut record: RequestRecord,
    shape: &RequestShape,
    plan: Plan,
) -> Result<Reply, (ProxyError, RequestRecord)> {
    let state = record.state().clone();
    let deadline = record.body_read + policy.server.request_timeout;
    if plan.attempts.is_empty() {
        return Err((no_usable_target(model, &plan.skipped), record));
    }

    // Planned targets that could not be started after all (e.g. a half-open target whose
    // single probe another request took since planning), and why.
    let mut not_started: Vec<(TargetId, SkipReason)> = Vec::new();
    let mut last: Option<(&PlannedAttempt, AttemptFailure)> = None;
    // A target that cannot express the request (e.g. `n > 1` on Bedrock) is passed over; if
    // every target refuses, the client gets the first refusal as a 400 naming the field.
    let mut first_refusal: Option<RequestError> = None;
    let mut steps = plan.attempts.iter().peekable();
    while let Some(step) = steps.next() {
        if Instant::now() >= deadline {
            break;
        }
        let estimated_tokens = shape.prompt_tokens + u64::from(shape.expected_output_tokens());
        // Taken now, not at planning: a half-open target's single probe may be gone by now.
        let permit = match state.stats.try_start(
            &step.target,
            step.model.routing.health,
            estimated_tokens,
            Instant::now(),
        ) {
            Ok(permit) => permit,
            Err(availability) => {
                if let Some(reason) = unavailable(availability) {
                    not_started.push((step.target.id.clone(), reason));
                }
                continue;
            }
        };
        let failover_from = last
            .as_ref()
            .map(|(from, failure)| (*from, failure.reason_label()));
        record.attempts += 1;
        let hedge = hedge_delay(&state, step, &operation)
            .and_then(|delay| steps.peek().map(|next| (delay, *next)));
        let attempt_ctx = AttemptCtx {
            state: &state,
            policy,
            operation: &operation,
            request_id: &record.request_id,
            deadline,
            bounds: record.usage_bounds(),
            trace: &record.trace,
        };
        let role = match failover_from {
            Some(_) => AttemptRole::Failover,
            None => AttemptRole::First,
        };
        let outcomes = match hedge {
            None => vec![(step, attempt(&attempt_ctx, step, permit, role).await)],
            Some((delay, next)) => {
                let raced = race(
                    &attempt_ctx,
                    step,
                    permit,
                    role,
                    next,
                    delay,
                    estimated_tokens,
                )
                .await;
                if raced.hedged {
                    // Sent, whoever wins: an attempt, and not to be tried again.
                    steps.next();
                    record.attempts += 1;
                }
                if let Some(loser) = raced.cancelled {
                    record.note_attempt(&loser.target.id, "cancelled");
                }
                raced.outcomes
            }
        };
        // A failover is counted once the step was sent: a target that cannot express the
        // request never saw it.
        let refused = outcomes.iter().any(|(s, outcome)| {
            std::ptr::eq(*s, step) && matches!(outcome, Err(AttemptError::Refused { .. }))
        });
        if let (Some((from, reason)), false) = (failover_from, refused) {
            count_failover(&state, &record.model, from, step, reason);
        }
        for (step, outcome) in outcomes {
            match outcome {
                Ok(success) => {
                    record.note_attempt(&step.target.id, "ok");
                    record.set_served_by(&step.target);
                    // A resumable stream may go on at the rest of the plan (docs/streams.md).
                    let next = step.model.resume_streams.then(|| {
                        let rest = steps.clone().filter(|s| s.target.id != step.target.id);
                        let trace = record.trace.parent();
                        NextTargets::after(&state, &operation, rest, &record.request_id, deadline)
                            .map(|next| next.traced_under(trace))
                    });
                    return Ok(success.into_reply(record, next.flatten()));
                }
                Err(AttemptError::Refused { param, message }) => {
                    tracing::debug!(
                        request_id = %record.request_id,
                        target = %step.target.id,
                        param = %param,
                        "target cannot express the request"
                    );
                    // Nothing was sent: this was no upstream attempt; the debug route
                    // header still shows the skip and why.
                    record.attempts -= 1;
                    record.note_attempt(&step.target.id, &format!("refused({param})"));
                    first_refusal.get_or_insert(RequestError::Invalid {
                        message,
                        param: Some(param),
                    });
                }
                Err(AttemptError::Failed(failure)) => {
                    tracing::debug!(
                        request_id = %record.request_id,
                        target = %step.target.id,
                        failure = %failure.detail,
                        "attempt failed"
                    );
                    record.note_attempt(&step.target.id, failure.reason_label());
                    if !failure.fails_over() {
                        record.set_served_by(&step.target);
                        let error = final_error(model, step, &failure, record.attempts, None);
                        return Err((error, record));
                    }
                    last = Some((step, failure));
                }
            }
        }
    }
    if let (None, Some(refusal)) = (&last, first_refusal) {
        return Err((refusal.into(), record));
    }
    if last.is_none() && record.attempts == 0 && Instant::now() < deadline {
        // Nothing was sent and there is time left: no timeout, the targets were unusable.
        let skipped: Vec<_> = plan.skipped.into_iter().chain(not_started).collect();
        return Err((no_usable_target(model, &skipped), record));
    }
    let soonest_retry = routing::plan(
        policy,
        model,
        Some(team),
        &state.stats,
        shape,
        Instant::now(),
        &mut rand::rng(),
    )
    .soonest_retry();
    let error = match &last {
        Some((step, failure)) => {
            record.set_served_by(&step.target);
            final_error(model, step, failure, record.attempts, soonest_retry)
        }
        None => UpstreamError::Timeout {
            model: model.name.clone(),
            attempts: record.attempts,
        }
        .into(),
    };
    Err((error, record))
}

/// The client's 503 when no target of `model` could be tried, with the reasons and, when
/// one of them says, when to retry.
fn no_usable_target(model: &Model, skipped: &[(TargetId, SkipReason)]) -> ProxyError {
    let reasons = skipped
        .iter()
        .map(|(id, reason)| format!("{id}: {reason}"))
        .collect::<Vec<_>>()
        .join("; ");
    RoutingError::NoUsableTarget {
        model: model.name.clone(),
        reasons,
        retry_after: skipped.iter().filter_map(|(_, r)| r.retry_in()).min(),
    }
    .into()
}

/// Why a planned target could not be started, as planning would have said it.
fn unavailable(availability: Availability) -> Option<SkipReason> {
    match availability {
        Availability::Ready => None,
        Availability::CoolingDown { remaining } => Some(SkipReason::CoolingDown(remaining)),
        Availability::CircuitOpen { remaining } => Some(SkipReason::CircuitOpen(remaining)),
        Availability::Probing => Some(SkipReason::Probing),
    }
}

/// The request's size as routing estimates it: with the client's own cap (admission may
/// have set a larger one to send upstream; routing expects a typical answer then).
fn request_shape(operation: &Operation, client_cap: Option<Option<u32>>) -> RequestShape {
    let cap = client_cap.unwrap_or_else(|| operation.max_output_tokens());
    RequestShape::from_prompt_bytes(operation.prompt_bytes(), cap)
}

enum AttemptSuccess {
    Full { body: bytes::Bytes, usage: Usage },
    Stream(Box<ChatStream>),
}

impl AttemptSuccess {
    /// The client's reply; a complete answer finishes the record here, a stream carries it.
    fn into_reply(self, mut record: RequestRecord, next: Option<NextTargets>) -> Reply {
        match self {
            AttemptSuccess::Full { body, usage } => {
                record.first_byte = Some(record.started.elapsed());
                let reply = full_reply(&record, body, &usage);
                record.finish(Ending::Status(200), Some(usage));
                reply
            }
            AttemptSuccess::Stream(mut stream) => {
                if let Some(next) = next {
                    stream.resume_on(next);
                }
                let headers = stream_headers(&record);
                stream.attach_record(record);
                Reply::Stream { headers, stream }
            }
        }
    }
}

/// What every attempt of one request shares.
struct AttemptCtx<'a> {
    state: &'a Arc<AppState>,
    policy: &'a Policy,
    operation: &'a Operation,
    request_id: &'a str,
    deadline: Instant,
    /// What the request may be billed for (from its admission).
    bounds: UsageBounds,
    /// The request's span, parent of every attempt's.
    trace: &'a RequestSpan,
}

/// Why an attempt ended without an answer.
enum AttemptError {
    /// The upstream call failed (or could not be made).
    Failed(AttemptFailure),
    /// The target cannot express the client's request; nothing was sent.
    Refused { param: String, message: String },
}

impl From<AttemptFailure> for AttemptError {
    fn from(failure: AttemptFailure) -> Self {
        AttemptError::Failed(failure)
    }
}

fn translate_failure(error: TranslateError) -> AttemptError {
    match error {
        TranslateError::Refused { param, message } => AttemptError::Refused { param, message },
        TranslateError::NotAnAnswer(failure) => AttemptError::Failed(*failure),
        other => AttemptError::Failed(AttemptFailure::new(
            FailureKind::ServerError,
            other.to_string(),
        )),
    }
}

/// One attempt against one target; its outcome is reported through `permit`, and recorded
/// in its span (a stream's span goes on with the stream and ends with it).
async fn attempt(
    ctx: &AttemptCtx<'_>,
    step: &PlannedAttempt,
    permit: AttemptPermit,
    role: AttemptRole,
) -> Result<AttemptSuccess, AttemptError> {
    let state = ctx.state;
    let target = &step.target;
    let mut span = ctx.trace.attempt(AttemptStart {
        target,
        operation: gen_ai_operation_of(ctx.operation),
        model: &step.model.name,
        max_tokens: ctx.operation.max_output_tokens(),
        stream: ctx.operation.is_stream(),
        role,
    });
    let started = Instant::now();
    let first_byte_timeout = step
        .model
        .first_byte_timeout
        .unwrap_or(ctx.policy.server.first_byte_timeout);
    let own_first_byte_deadline = started + first_byte_timeout;
    let first_byte_deadline = own_first_byte_deadline.min(ctx.deadline);
    let gauge = state
        .metrics
        .inflight_requests
        .with_label_values(&[&target.provider.name]);
    gauge.inc();
    let _gauge_guard = scopeguard(move || gauge.dec());

    let mut outcome = exchange(ctx, step, started, first_byte_deadline, &span).await;
    if let Err(AttemptError::Failed(failure)) = &mut outcome {
        // Upstream text (an error message that echoes a key) goes no further with a secret.
        ctx.policy.scrubber.scrub_in_place(&mut failure.detail);
    }
    let outcome = match outcome {
        Ok(AttemptSuccess::Full { body, usage }) => {
            // A whole answer: its total time and length (docs/routing.md, live figures).
            permit.completed(started.elapsed(), usage.completion_tokens);
            span.end_answered(&usage);
            Ok(AttemptSuccess::Full { body, usage })
        }
        Ok(AttemptSuccess::Stream(mut stream)) => {
            stream.attach_permit(permit);
            stream.attach_span(span);
            Ok(AttemptSuccess::Stream(stream))
        }
        Err(AttemptError::Failed(failure)) => {
            span.end_failed(&failure);
            if failure.kind == FailureKind::Timeout
                && ctx.deadline < own_first_byte_deadline
                && Instant::now() >= ctx.deadline
            {
                // The request's deadline ended the attempt before the target's own
                // first-byte timeout: nothing is known against the target, so no cool-down
                // and no circuit failure; dropping the permit frees it.
                drop(permit);
            } else {
                report_failure(state, step, &failure, permit);
            }
            Err(AttemptError::Failed(failure))
        }
        // No verdict on the target: dropping the permit frees it.
        Err(refused @ AttemptError::Refused { .. }) => {
            span.end_refused();
            return Err(refused);
        }
    };
    let label = match &outcome {
        Ok(_) => AttemptOutcome::Ok.label(),
        Err(AttemptError::Failed(failure)) => failure.outcome().label(),
        Err(AttemptError::Refused { .. }) => "refused",
    };
    state
        .metrics
        .upstream_attempts
        .with_label_values(&[&target.provider.name, label])
        .inc();
    outcome
}

/// Builds, sends and reads one upstream exchange (up to the first event for streams).
async fn exchange(
    ctx: &AttemptCtx<'_>,
    step: &PlannedAttempt,
    started: Instant,
    first_byte_deadline: Instant,
    span: &AttemptSpan,
) -> Result<AttemptSuccess, AttemptError> {
    let (state, operation) = (ctx.state, ctx.operation);
    let target = &step.target;
    let mut requests =
        providers::build_requests(target, operation, ctx.request_id, &state.providers)
            .map_err(translate_failure)?;
    match operation {
        Operation::Generate(generation) if generation.request.stream => {
            let request = requests.pop().ok_or_else(|| {
                AttemptFailure::new(FailureKind::ServerError, "no upstream request was built")
            })?;
            // A resumable stream is read as typed events, to splice another target's onto.
            let resumable = step.model.resume_streams;
            let decoder = match resumable {
                true => StreamDecoder::typed(target, generation),
                false => StreamDecoder::new(target, generation),
            }
            .map_err(translate_failure)?;
            let encoder = StreamEncoder::new(&generation.request)
                .map_err(|e| AttemptFailure::new(FailureKind::ServerError, e.to_string()))?;
            let response = send_one(state, step, request, first_byte_deadline, span).await?;
            let mut stream = Box::new(ChatStream::new(
                response,
                decoder,
                encoder,
                ctx.deadline,
                started,
                operation.prompt_bytes(),
            ));
            stream.bound_by(ctx.bounds);
            stream.set_idle_timeout(ctx.policy.server.stream_idle_timeout);
            if resumable {
                stream.track_for_resume();
            }
            stream.scrub_errors_with(ctx.policy.scrubber.clone());
            stream.prime(first_byte_deadline).await?;
            Ok(AttemptSuccess::Stream(stream))
        }
        _ => {
            let bodies = send_all(state, step, requests, first_byte_deadline, ctx, span).await?;
            let (body, usage) = match providers::decode_answer(target, operation, &bodies)
                .map_err(translate_failure)?
            {
                Decoded::Body { body, usage } => (body, usage),
                Decoded::Answer(answer) => {
                    let Operation::Generate(generation) = operation else {
                        return Err(AttemptFailure::new(
                            FailureKind::ServerError,
                            "a typed answer to an embeddings request",
                        )
                        .into());
                    };
                    let body =
                        dialects::encode_answer(&generation.request, &answer).map_err(|e| {
                            AttemptFailure::new(FailureKind::ServerError, e.to_string())
                        })?;
                    (body.into(), answer.usage)
                }
            };
            let usage = match usage {
                Some(reported) => {
                    let (usage, rejection) = usage_check::check(reported, &ctx.bounds, None);
                    if let Some(rejection) = rejection {
                        let provider = &target.provider.name;
                        let metrics = &state.metrics;
                        usage_check::report(
                            metrics,
                            provider,
                            ctx.request_id,
                            rejection,
                            &reported,
                        );
                    }
                    usage
                }
                None => Usage::estimate(operation.prompt_bytes(), 0),
            };
            Ok(AttemptSuccess::Full { body, usage })
        }
    }
}

/// Sends one request, with the attempt's `traceparent`, and records the upstream's
/// rate-limit headers. Every provider's requests go through here, signed ones included.
pub(super) async fn send_one(
    state: &AppState,
    step: &PlannedAttempt,
    mut request: UpstreamRequest,
    first_byte_deadline: Instant,
    span: &AttemptSpan,
) -> Result<UpstreamResponse, AttemptFailure> {
    span.inject(&mut request.headers);
    let classify = providers::registry::classifier(&step.target.provider.kind);
    let response = state
        .client
        .send(request, first_byte_deadline, classify)
        .await?;
    if let Some(limits) = RateLimitHeaders::parse(response.headers()) {
        state
            .stats
            .observe_rate_limits(&step.target.id, limits, Instant::now());
    }
    Ok(response)
}

/// Upstream calls of one fanned-out operation in flight at once.
const FAN_OUT_CONCURRENCY: usize = 16;

/// Sends every request of an operation (Titan embeddings take one text per call) with
/// bounded concurrency and reads each answer, in order; the first failure wins.
async fn send_all(
    state: &AppState,
    step: &PlannedAttempt,
    requests: Vec<UpstreamRequest>,
    first_byte_deadline: Instant,
    ctx: &AttemptCtx<'_>,
    span: &AttemptSpan,
) -> Result<Vec<bytes::Bytes>, AttemptFailure> {
    use futures_util::{StreamExt, TryStreamExt};
    let (deadline, max_response_bytes) = (ctx.deadline, ctx.policy.server.max_response_bytes);
    // One request (every operation but a fanned-out embedding) is awaited as it is: the
    // ordered stream below would allocate its task queue and route every wake-up of the
    // upstream connection through its own waker, for nothing.
    let requests = match <[UpstreamRequest; 1]>::try_from(requests) {
        Ok([request]) => {
            let response = send_one(state, step, request, first_byte_deadline, span).await?;
            return Ok(vec![
                read_answer(response, deadline, max_response_bytes).await?,
            ]);
        }
        Err(requests) => requests,
    };
    futures_util::stream::iter(requests)
        .map(|request| async move {
            let response = send_one(state, step, request, first_byte_deadline, span).await?;
            read_answer(response, deadline, max_response_bytes).await
        })
        .buffered(FAN_OUT_CONCURRENCY)
        .try_collect()
        .await
}

/// How long to wait for `step`'s first event before hedging, for streams of models that
/// hedge and whose first target's p95 is known.
fn hedge_delay(state: &AppState, step: &PlannedAttempt, operation: &Operation) -> Option<Duration> {
    if !operation.is_stream() {
        return None;
    }
    match step.model.routing.hedge_after? {
        HedgeAfter::After(delay) => Some(delay),
        HedgeAfter::P95 => state
            .stats
            .snapshot(&step.target, Instant::now())
            .ttft_p95_ms
            .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
    }
}

/// What a hedged stream's race came to.
struct Raced<'p> {
    /// The outcomes in the order they became final; a winner ends it.
    outcomes: Vec<(&'p PlannedAttempt, Result<AttemptSuccess, AttemptError>)>,
    /// Whether the second attempt was sent.
    hedged: bool,
    /// The attempt dropped because the other one answered first.
    cancelled: Option<&'p PlannedAttempt>,
}

/// A hedged stream: `primary` first; if it has no first event after `delay`, `secondary`
/// too; the first to answer wins and the other is dropped (its upstream request cancelled,
/// never metered).
async fn race<'p>(
    ctx: &AttemptCtx<'_>,
    primary: &'p PlannedAttempt,
    permit: AttemptPermit,
    role: AttemptRole,
    secondary: &'p PlannedAttempt,
    delay: Duration,
    estimated_tokens: u64,
) -> Raced<'p> {
    let alone = |outcome| Raced {
        outcomes: vec![(primary, outcome)],
        hedged: false,
        cancelled: None,
    };
    let first = attempt(ctx, primary, permit, role);
    tokio::pin!(first);
    tokio::select! {
        outcome = &mut first => return alone(outcome),
        _ = tokio::time::sleep(delay) => {}
    }
    let Ok(second_permit) = ctx.state.stats.try_start(
        &secondary.target,
        secondary.model.routing.health,
        estimated_tokens,
        Instant::now(),
    ) else {
        return alone(first.await);
    };
    let hedges = &ctx.state.metrics.hedges;
    let second = attempt(ctx, secondary, second_permit, AttemptRole::Hedge);
    tokio::pin!(second);
    let (winner, loser) = tokio::select! {
        outcome = &mut first => ((primary, outcome), Side::Second),
        outcome = &mut second => ((secondary, outcome), Side::First),
    };
    if winner.1.is_ok() {
        let (label, cancelled) = match loser {
            Side::Second => ("primary", secondary),
            Side::First => ("hedge", primary),
        };
        hedges
            .with_label_values(&[&primary.model.name, label])
            .inc();
        return Raced {
            outcomes: vec![winner],
            hedged: true,
            cancelled: Some(cancelled),
        };
    }
    let other = match loser {
        Side::First => (primary, first.await),
        Side::Second => (secondary, second.await),
    };
    let label = match (&other.1, loser) {
        (Ok(_), Side::First) => "primary",
        (Ok(_), Side::Second) => "hedge",
        (Err(_), _) => "none",
    };
    hedges
        .with_label_values(&[&primary.model.name, label])
        .inc();
    let mut outcomes = vec![winner, other];
    // An answer beats an error that would end the request: one target's 400 (e.g. a shorter
    // context) does not undo the other's stream. Errors that fail over keep their order.
    let ends_request =
        |o: &Result<_, _>| matches!(o, Err(AttemptError::Failed(f)) if !f.fails_over());
    if outcomes[1].1.is_ok() && ends_request(&outcomes[0].1) {
        outcomes.swap(0, 1);
    }
    Raced {
        outcomes,
        hedged: true,
        cancelled: None,
    }
}

/// Which of the two raced attempts is still running.
#[derive(Debug, Clone, Copy)]
enum Side {
    First,
    Second,
}

fn count_failover(
    state: &AppState,
    model: &str,
    from: &PlannedAttempt,
    to: &PlannedAttempt,
    reason: &str,
) {
    state
        .metrics
        .failovers
        .with_label_values(&[
            model,
            &from.target.provider.name,
            &to.target.provider.name,
            reason,
        ])
        .inc();
}

/// Runs `f` when dropped (the attempt ends however it ends).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

pub(super) fn report_failure(
    state: &AppState,
    step: &PlannedAttempt,
    failure: &AttemptFailure,
    permit: AttemptPermit,
) {
    let now = Instant::now();
    if let Some(limits) = failure.rate_limits {
        state
            .stats
            .observe_rate_limits(&step.target.id, limits, now);
    }
    match &failure.kind {
        FailureKind::Capacity { retry_after } => {
            permit.capacity_error(*retry_after, now);
        }
        FailureKind::Timeout => {
            permit.capacity_error(None, now);
        }
        FailureKind::ServerError | FailureKind::CredentialsRejected { .. } => permit.failed(now),
        FailureKind::Rejected { .. } => permit.answered(),
    }
}

/// The client's error once no further attempt will be made. `soonest_retry` is when a
/// skipped target becomes usable again, for `retry-after`.
fn final_error(
    model: &Model,
    step: &PlannedAttempt,
    failure: &AttemptFailure,
    attempts: usize,
    soonest_retry: Option<Duration>,
) -> ProxyError {
    match &failure.kind {
        FailureKind::Rejected {
            status,
            param,
            code,
        } => UpstreamError::Rejected {
            status: *status,
            message: failure.detail.clone(),
            param: param.clone(),
            code: code.clone(),
        }
        .into(),
        FailureKind::CredentialsRejected { status } => UpstreamError::CredentialsRejected {
            provider: step.target.provider.name.clone(),
            status: *status,
        }
        .into(),
        FailureKind::Timeout => UpstreamError::Timeout {
            model: model.name.clone(),
            attempts,
        }
        .into(),
        FailureKind::Capacity { retry_after } => UpstreamError::Unavailable {
            model: model.name.clone(),
            attempts,
            last: failure.detail.clone(),
            retry_after: soonest_retry.or(*retry_after),
        }
        .into(),
        FailureKind::ServerError => UpstreamError::Unavailable {
            model: model.name.clone(),
            attempts,
            last: failure.detail.clone(),
            retry_after: None,
        }
        .into(),
    }
}

/// Headers every answered request carries.
pub fn attempt_headers(record: &RequestRecord) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("x-switchyard-provider", record.provider().to_owned()),
        ("x-switchyard-attempts", record.attempts.to_string()),
    ];
    if let Some(route) = record.route_header() {
        headers.push(("x-switchyard-route", route));
    }
    headers
}

fn full_reply(record: &RequestRecord, body: bytes::Bytes, usage: &Usage) -> Reply {
    let mut headers = attempt_headers(record);
    headers.push(("content-type", "application/json".to_owned()));
    headers.push(("x-switchyard-cost-usd", format_usd(record.cost_of(usage))));
    Reply::Full {
        status: 200,
        headers,
        body,
    }
}

fn stream_headers(record: &RequestRecord) -> Vec<(&'static str, String)> {
    let mut headers = attempt_headers(record);
    headers.push(("content-type", "text/event-stream".to_owned()));
    headers.push(("cache-control", "no-cache".to_owned()));
    headers
}
