//! The attempt loop: walk the plan, send to each target in turn, fail over on capacity,
//! server errors and timeouts before anything reaches the client, and stop at the first
//! answer, the first client error, the attempt bound or the request deadline.

use std::sync::Arc;

use tokio::time::Instant;

use super::record::{Ending, RequestRecord};
use super::stream::ChatStream;
use super::Reply;
use crate::config::{Model, Policy};
use crate::error::{ProxyError, RequestError, RoutingError, UpstreamError};
use crate::metering::{cost::format_usd, Usage};
use crate::providers::{self, Operation, StreamTranslator, TranslateError, UpstreamRequest};
use crate::routing::{self, PlannedAttempt};
use crate::upstream::client::read_answer;
use crate::upstream::{AttemptFailure, FailureKind};

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
    // A target that cannot express the request (e.g. `n > 1` on Bedrock) is passed over; if
    // every target refuses, the client gets the first refusal as a 400 naming the field.
    let mut first_refusal: Option<RequestError> = None;
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
            Err(AttemptError::Refused { param, message }) => {
                tracing::debug!(
                    request_id = %record.request_id,
                    target = %step.target.id,
                    param = %param,
                    "target cannot express the request"
                );
                // Nothing was sent: this was no upstream attempt.
                record.attempts -= 1;
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
    if let (None, Some(refusal)) = (&last_failure, first_refusal) {
        return Err((refusal.into(), record));
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
        other => AttemptError::Failed(AttemptFailure::new(
            FailureKind::ServerError,
            other.to_string(),
        )),
    }
}

/// Upstream calls of one fanned-out operation in flight at once.
const FAN_OUT_CONCURRENCY: usize = 16;

/// Sends every request (bounded concurrency) and reads each answer; the first failure wins.
async fn send_all(
    client: &crate::upstream::UpstreamClient,
    requests: Vec<UpstreamRequest>,
    first_byte_deadline: Instant,
    deadline: Instant,
) -> Result<Vec<bytes::Bytes>, AttemptFailure> {
    use futures_util::{StreamExt, TryStreamExt};
    futures_util::stream::iter(requests)
        .map(|request| async move {
            let response = client.send(request, first_byte_deadline).await?;
            read_answer(response, deadline).await
        })
        .buffered(FAN_OUT_CONCURRENCY)
        .try_collect()
        .await
}

/// One attempt against one target.
async fn attempt(
    policy: &Policy,
    step: &PlannedAttempt,
    operation: &Operation,
    record: &mut RequestRecord,
    deadline: Instant,
) -> Result<AttemptSuccess, AttemptError> {
    let state = record.state().clone();
    let target = &step.target;
    let mut requests =
        providers::build_requests(target, operation, &record.request_id, &state.providers)
            .map_err(translate_failure)?;
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

    match operation {
        Operation::Chat(chat) if chat.is_stream() => {
            let request = requests.pop().ok_or_else(|| {
                AttemptFailure::new(FailureKind::ServerError, "no upstream request was built")
            })?;
            let response = state.client.send(request, first_byte_deadline).await?;
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
            let bodies = send_all(&state.client, requests, first_byte_deadline, deadline).await?;
            let (body, usage) = providers::translate_parts(target, operation, &bodies)
                .map_err(translate_failure)?;
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
