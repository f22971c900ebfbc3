//! Turning the fault drawn for a request into a response: immediate errors, a
//! hang, or a 200 delivered completely, cut off, stalled or as garbage.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::body::channel_body;
use super::errors::ApiError;
use super::faults::Fault;
use super::ratelimit::write_retry_after;
use super::state::{InFlight, SimState};

/// How a 200 answer reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    Complete,
    /// Stream: that many content chunks, then the connection is aborted.
    DropAfter(usize),
    /// Stream: that many content chunks, then nothing, forever.
    StallAfter(usize),
    Garbage,
    WrongShape,
}

/// What a request gets, given the fault drawn for it.
pub(crate) enum Outcome {
    Answer(Delivery),
    Error(Response),
    Hang,
}

pub(crate) fn decide(fault: Option<Fault>) -> Outcome {
    let Some(fault) = fault else {
        return Outcome::Answer(Delivery::Complete);
    };
    match fault {
        Fault::RateLimit { retry_after_ms } => {
            let mut response =
                ApiError::rate_limited("Rate limit reached for requests (scripted).")
                    .into_response();
            write_retry_after(
                response.headers_mut(),
                Duration::from_millis(retry_after_ms),
                0,
            );
            Outcome::Error(response)
        }
        Fault::Status(status) | Fault::ClientError(status) => Outcome::Error(
            ApiError::for_status(status, format!("Simulated upstream error {status}."))
                .into_response(),
        ),
        Fault::Hang => Outcome::Hang,
        Fault::DropMidStream { after_chunks } => Outcome::Answer(Delivery::DropAfter(after_chunks)),
        Fault::HangMidStream { after_chunks } => {
            Outcome::Answer(Delivery::StallAfter(after_chunks))
        }
        Fault::Garbage => Outcome::Answer(Delivery::Garbage),
        Fault::WrongShape => Outcome::Answer(Delivery::WrongShape),
    }
}

/// Never answers. The handler future, and with it this wait, is dropped when the
/// client disconnects; shutdown ends it with a 503 so the server can stop.
pub(crate) async fn hang(sim: &SimState) -> Response {
    sim.shutdown_signal().await;
    ApiError::shutting_down().into_response()
}

/// With a latency jitter that paces whole answers, waits `inter_token` per generated token
/// (streams pace themselves). Returns whether the wait ended without a shutdown.
pub(crate) async fn pace_whole_answer(sim: &SimState, tokens: u64) -> bool {
    if !sim.jitter().is_some_and(|j| j.pace_whole_answers) {
        return true;
    }
    let tokens = u32::try_from(tokens).unwrap_or(u32::MAX);
    sim.pause(sim.config.inter_token.saturating_mul(tokens))
        .await
}

/// JSON, but an error object where a completion belongs (some upstreams answer so with a 200).
pub(crate) const WRONG_SHAPE: &str = r#"{"error":{"message":"Simulated error inside a 200.","type":"server_error","param":null,"code":null}}"#;

/// A body that is not JSON, served as if it were.
pub(crate) fn garbage_json(sim: &SimState) -> Response {
    let body = format!("<html>not json from {}: {{\"choices\": [", sim.config.name);
    json_response(StatusCode::OK, body.into_bytes())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Delivers a complete JSON answer, or — for `DropAfter` / `StallAfter` — its
/// headers (with the full `content-length`) and the first half of the body.
/// `on_complete` runs only for a complete delivery, before the response leaves.
pub(crate) fn deliver_json(
    sim: &Arc<SimState>,
    guard: InFlight,
    body: Vec<u8>,
    delivery: Delivery,
    on_complete: impl FnOnce(),
) -> Response {
    match delivery {
        Delivery::Complete => {
            on_complete();
            json_response(StatusCode::OK, body)
        }
        Delivery::Garbage => garbage_json(sim),
        Delivery::WrongShape => json_response(StatusCode::OK, WRONG_SHAPE.as_bytes().to_vec()),
        Delivery::DropAfter(_) | Delivery::StallAfter(_) => {
            let full_length = body.len();
            let (sender, stream_body) = channel_body(Arc::clone(sim));
            let mut partial = body;
            partial.truncate(full_length / 2);
            tokio::spawn(async move {
                // The guard lives as long as the body task, so in-flight counts the stall.
                let _guard = guard;
                if sender.send(partial).await.is_err() {
                    sender.cut();
                    return;
                }
                if matches!(delivery, Delivery::StallAfter(_)) {
                    sender.stall().await;
                } else {
                    sender.abort().await;
                }
            });
            let mut response = json_response(StatusCode::OK, Vec::new());
            *response.body_mut() = stream_body;
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(full_length));
            response
        }
    }
}
