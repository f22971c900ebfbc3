//! `POST /v1/chat/completions`: the gate, the fault, then a non-streamed
//! `chat.completion` here or a stream from `chat_stream`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::answer::Answer;
use super::chat_stream;
use super::deliver::{decide, deliver_json, hang, pace_whole_answer, Outcome};
use super::errors::ApiError;
use super::gate::{admit, check_auth, with_rate_headers};
use super::request::{parse_chat, ChatPlan};
use super::state::{bump, InFlight, SimState};
use super::wire::{completion_body, Usage};

pub(crate) async fn chat_completions(
    State(sim): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guard = sim.enter();
    bump(&sim.counters.requests, 1);
    bump(&sim.counters.chat_requests, 1);
    sim.record_request(&headers, &body);
    if let Err(error) = check_auth(&sim, &headers) {
        return error.into_response();
    }
    let plan = match parse_chat(&body) {
        Ok(plan) => plan,
        Err(error) => return error.into_response(),
    };
    if plan.stream {
        bump(&sim.counters.stream_requests, 1);
        if plan.include_usage {
            bump(&sim.counters.include_usage_requested, 1);
        }
    }
    // Like OpenAI, budget the prompt plus the most the answer may use.
    let output = plan.max_tokens.unwrap_or(sim.config.output_tokens as u64);
    let (decision, admitted) = admit(&sim, plan.prompt_tokens.saturating_add(output));
    let response = match admitted {
        Ok(()) => answer(&sim, plan, guard).await,
        Err(too_many) => too_many,
    };
    with_rate_headers(&sim, &decision, response)
}

async fn answer(sim: &Arc<SimState>, plan: ChatPlan, guard: InFlight) -> Response {
    let delivery = match decide(sim.faults.next()) {
        Outcome::Answer(delivery) => delivery,
        Outcome::Error(response) => return response,
        Outcome::Hang => return hang(sim).await,
    };
    if !sim.pause(sim.ttft()).await {
        return ApiError::shutting_down().into_response();
    }
    let answer = Answer::build(&plan, &sim.config, sim.next_id());
    if plan.stream {
        return chat_stream::respond(Arc::clone(sim), answer, plan.include_usage, delivery, guard);
    }
    if !pace_whole_answer(sim, answer.completion_tokens()).await {
        return ApiError::shutting_down().into_response();
    }
    let body = match completion_body(&answer, &sim.fingerprint) {
        Ok(body) => body,
        Err(error) => return ApiError::for_status(500, error.to_string()).into_response(),
    };
    let usage = Usage::of(&answer);
    // A stream-shaped fault on a non-stream request truncates or stalls the JSON body instead.
    deliver_json(sim, guard, body, delivery, || {
        sim.record_served(usage.prompt_tokens, usage.completion_tokens);
    })
}
