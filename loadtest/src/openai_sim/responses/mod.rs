//! `POST /v1/responses`, OpenAI's Responses API answered natively: the same gate, faults,
//! latency and brain as the chat path (`request` types and plans it, `answer` builds it,
//! `wire` serializes the response object and events, `stream` sends them). The simulator
//! keeps no state: `previous_response_id` is a 400, so whoever sits in front must expand
//! conversations itself (and should send `store: false`, which the stats count).

mod answer;
pub(crate) mod request;
mod stream;
mod wire;

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::deliver::{decide, deliver_json, hang, pace_whole_answer, Outcome};
use super::errors::ApiError;
use super::gate::{admit, check_auth, with_rate_headers};
use super::state::{bump, InFlight, SimState};
use answer::ResponsesAnswer;
use request::{parse_responses, Brain, ResponsesPlan};
use wire::{response_body, ResponseUsage};

pub(crate) async fn responses(
    State(sim): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guard = sim.enter();
    bump(&sim.counters.requests, 1);
    bump(&sim.counters.responses_requests, 1);
    sim.record_request(&headers, &body);
    if let Err(error) = check_auth(&sim, &headers) {
        return error.into_response();
    }
    let brain = Brain {
        name: &sim.config.name,
        output_tokens: sim.config.output_tokens,
    };
    let plan = match parse_responses(&body, brain) {
        Ok(plan) => plan,
        Err(error) => return error.into_response(),
    };
    if plan.chat.stream {
        bump(&sim.counters.stream_requests, 1);
    }
    if plan.store_requested {
        bump(&sim.counters.store_requested, 1);
    }
    // Like OpenAI, budget the prompt plus the most the answer may use.
    let output = plan
        .chat
        .max_tokens
        .unwrap_or(sim.config.output_tokens as u64);
    let (decision, admitted) = admit(&sim, plan.chat.prompt_tokens.saturating_add(output));
    let response = match admitted {
        Ok(()) => answer(&sim, plan, guard).await,
        Err(too_many) => too_many,
    };
    with_rate_headers(&sim, &decision, response)
}

async fn answer(sim: &Arc<SimState>, plan: ResponsesPlan, guard: InFlight) -> Response {
    let delivery = match decide(sim.faults.next()) {
        Outcome::Answer(delivery) => delivery,
        Outcome::Error(response) => return response,
        Outcome::Hang => return hang(sim).await,
    };
    if !sim.pause(sim.ttft()).await {
        return ApiError::shutting_down().into_response();
    }
    let answer = ResponsesAnswer::build(&plan, &sim.config, &sim.id_tag, sim.next_id());
    if plan.chat.stream {
        return stream::respond(Arc::clone(sim), answer, plan.request, delivery, guard);
    }
    if !pace_whole_answer(sim, answer.output_tokens()).await {
        return ApiError::shutting_down().into_response();
    }
    let body = match response_body(&answer, &plan.request) {
        Ok(body) => body,
        Err(error) => return ApiError::for_status(500, error.to_string()).into_response(),
    };
    let usage = ResponseUsage::of(&answer);
    // A stream-shaped fault on a non-stream request truncates or stalls the JSON body instead.
    deliver_json(sim, guard, body, delivery, || {
        sim.record_served(usage.input_tokens, usage.output_tokens);
    })
}

#[cfg(test)]
mod tests;
