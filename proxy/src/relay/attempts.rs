//! The attempt loop: walk the plan, send to each target in turn, fail over on capacity,
//! server errors and timeouts before anything reaches the client, and stop at the first
//! answer, the first client error, the attempt bound or the request deadline.

use std::sync::Arc;

use tokio::time::Instant;

use super::record::{Ending, RequestRecord};
use super::stream::ChatStream;
use super::Reply;
use crate::config::{Model, Policy};
use crate::error::{ProxyError, RoutingError, UpstreamError};
use crate::metering::{cost::format_usd, Usage};
use crate::providers::{self, Operation, StreamTranslator};
use crate::routing::{self, PlannedAttempt};
use crate::upstream::client::read_answer;
use crate::upstream::{AttemptFailure, FailureKind, RateLimitSnapshot};

/// Serves `operation` for `model`. On success for a stream, the record travels inside the
/// stream; otherwise it is finished here.
pub async fn serve(
    policy: &Policy,
    model: &Arc<Model>,
    operation: Operation,
    mut record: RequestRecord,
) -> Result<Reply, (ProxyError, RequestRecord)> {
    let state = record.state().clone();
    let now = Instant::now();
    let deadline = record.started + policy.server.request_timeout;
    let plan = routing::plan(policy, model, &state.stats, now);
    if plan.attempts.is_empty() {
        let reasons = plan
            .skipped
            .iter()
            .map(|(id, reason)| format!("{id}: {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        let error = RoutingError::NoUsableTarget {
            model: model.name.clone(),
            reasons,
            retry_after: plan.soonest_retry(),
        };
        return Err((error.into(), record));
    }

    let mut last_failure: Option<AttemptFailure> = None;
    let mut previous: Option<&PlannedAttempt> = None;
    for step in &plan.attempts {
        if Instant::now() >= deadline {
            break;
        }
        if let (Some(from), Some(failure)) = (previous, &last_failure) {
            state
                .metrics
                .failovers
                .with_label_values(&[
                    &record.model,
                    &from.target.provider.name,
                    &step.target.provider.name,
                    failure.reason_label(),
                ])
                .inc();
        }
        previous = Some(step);
        record.attempts += 1;
        match attempt(policy, step, &operation, &mut record, deadline).await {
            Ok(AttemptSuccess::Full { body, usage }) => {
                let reply = full_reply(&record, body, &usage);
                record.finish(Ending::Status(200), Some(usage));
                return Ok(reply);
            }
            Ok(AttemptSuccess::Stream(mut stream)) => {
                let headers = stream_headers(&record);
                stream.attach_record(record);
                return Ok(Reply::Stream { headers, stream });
            }
            Err(failure) => {
                tracing::debug!(
                    request_id = %record.request_id,
                    target = %step.target.id,
                    failure = %failure.detail,
                    "attempt failed"
                );
                account_failure(&state, step, &failure);
                if !failure.fails_over() {
                    record.set_served_by(&step.target);
                    let error = final_error(model, step, &failure, record.attempts, None);
                    return Err((error, record));
                }
                last_failure = Some(failure);
            }
        }
    }
    let soonest_retry = routing::plan(policy, model, &state.stats, Instant::now()).soonest_retry();
    let error = match (previous, &last_failure) {
        (Some(step), Some(failure)) => {
            record.set_served_by(&step.target);
            final_error(model, step, failure, record.attempts, soonest_retry)
        }
        _ => UpstreamError::Timeout {
            model: model.name.clone(),
            attempts: record.attempts,
        }
        .into(),
    };
    Err((error, record))
}

enum AttemptSuccess {
    Full { body: bytes::Bytes, usage: Usage },
    Stream(Box<ChatStream>),
}

/// One attempt against one target.
async fn attempt(
    policy: &Policy,
    step: &PlannedAttempt,
    operation: &Operation,
    record: &mut RequestRecord,
    deadline: Instant,
) -> Result<AttemptSuccess, AttemptFailure> {
    let state = record.state().clone();
    let target = &step.target;
    let request = providers::build_request(target, operation, &record.request_id, &state.providers)
        .map_err(|e| AttemptFailure::new(FailureKind::ServerError, e.to_string()))?;
    let started = Instant::now();
    let first_byte_timeout = step
        .model
        .first_byte_timeout
        .unwrap_or(policy.server.first_byte_timeout);
    let first_byte_deadline = (started + first_byte_timeout).min(deadline);
    let inflight = state.stats.start_attempt(&target.id);
    let gauge = state
        .metrics
        .inflight_requests
        .with_label_values(&[&target.provider.name]);
    gauge.inc();
    let _gauge_guard = scopeguard(move || gauge.dec());

    let response = state.client.send(request, first_byte_deadline).await?;
    if let Some(limits) = RateLimitSnapshot::from_headers(response.headers()) {
        state
            .stats
            .record_rate_limits(&target.id, limits, Instant::now());
    }
    match operation {
        Operation::Chat(chat) if chat.is_stream() => {
            let translator = StreamTranslator::new(target, chat)
                .map_err(|e| AttemptFailure::new(FailureKind::ServerError, e.to_string()))?;
            let mut stream = Box::new(ChatStream::new(
                response,
                translator,
                deadline,
                started,
                operation.prompt_bytes(),
                target.id.clone(),
                inflight,
            ));
            stream.prime(first_byte_deadline).await?;
            state
                .metrics
                .upstream_attempts
                .with_label_values(&[&target.provider.name, "ok"])
                .inc();
            record.set_served_by(target);
            Ok(AttemptSuccess::Stream(stream))
        }
        _ => {
            let body = read_answer(response, deadline).await?;
            let (body, usage) = providers::translate_full(target, operation, &body)
                .map_err(|e| AttemptFailure::new(FailureKind::ServerError, e.to_string()))?;
            let usage = usage.unwrap_or_else(|| Usage::estimate(operation.prompt_bytes(), 0));
            let elapsed = started.elapsed();
            state
                .stats
                .record_success(&target.id, elapsed, elapsed, usage.completion_tokens);
            state
                .metrics
                .upstream_attempts
                .with_label_values(&[&target.provider.name, "ok"])
                .inc();
            record.set_served_by(target);
            record.first_byte = Some(record.started.elapsed());
            drop(inflight);
            Ok(AttemptSuccess::Full {
                body: body.into(),
                usage,
            })
        }
    }
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

fn account_failure(
    state: &crate::state::AppState,
    step: &PlannedAttempt,
    failure: &AttemptFailure,
) {
    state
        .metrics
        .upstream_attempts
        .with_label_values(&[&step.target.provider.name, failure.outcome().label()])
        .inc();
    let now = Instant::now();
    if let Some(limits) = failure.rate_limits {
        state.stats.record_rate_limits(&step.target.id, limits, now);
    }
    match &failure.kind {
        FailureKind::Capacity { retry_after } => {
            state
                .stats
                .record_capacity_error(&step.target.id, *retry_after, now);
        }
        FailureKind::Timeout => {
            state
                .stats
                .record_capacity_error(&step.target.id, None, now);
        }
        FailureKind::ServerError | FailureKind::CredentialsRejected { .. } => {
            state.stats.record_error(&step.target.id)
        }
        FailureKind::Rejected { .. } => {}
    }
}

/// The client's error once no further attempt will be made. `soonest_retry` is when a
/// cooling-down target becomes usable again, for `retry-after`.
fn final_error(
    model: &Model,
    step: &PlannedAttempt,
    failure: &AttemptFailure,
    attempts: usize,
    soonest_retry: Option<std::time::Duration>,
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
    vec![
        ("x-switchyard-provider", record.provider().to_owned()),
        ("x-switchyard-attempts", record.attempts.to_string()),
    ]
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
