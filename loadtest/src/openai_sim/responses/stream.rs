//! Streamed Responses answers: the events of `wire::stream_events` sent one by one from a
//! task, numbered from 0 by `sequence_number`, deltas paced by `inter_token`, with the
//! mid-stream faults (drop, stall after N deltas; garbage; an `error` event).

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::answer::ResponsesAnswer;
use super::request::ResponsesRequest;
use super::wire::{event_frame, stream_events, ResponseUsage};
use crate::openai_sim::body::{channel_body, BodySender};
use crate::openai_sim::deliver::Delivery;
use crate::openai_sim::state::{InFlight, SimState};

/// The `error` event a [`Delivery::WrongShape`] stream consists of: OpenAI's documented flat
/// fields and the nested `error` the official SDK raises on, as the live API sends both.
const ERROR_EVENT: &str = "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"Simulated error inside a 200.\",\"param\":null,\"sequence_number\":0,\"error\":{\"type\":\"server_error\",\"code\":\"server_error\",\"message\":\"Simulated error inside a 200.\",\"param\":null}}\n\n";

/// Starts the producer task and returns the `text/event-stream` response it feeds.
pub(crate) fn respond(
    sim: Arc<SimState>,
    answer: ResponsesAnswer,
    request: ResponsesRequest,
    delivery: Delivery,
    guard: InFlight,
) -> Response {
    let (sender, body) = channel_body(Arc::clone(&sim));
    tokio::spawn(async move {
        // Dropped with the task: the request stays "in flight" while its body is produced.
        let _guard = guard;
        let outcome = match delivery {
            Delivery::Garbage => send_garbage(&sender, &answer).await,
            Delivery::WrongShape => sender.send(ERROR_EVENT).await.map_err(|_| Stopped),
            _ => produce(&sim, &sender, &answer, &request, delivery).await,
        };
        match (outcome, delivery) {
            (Ok(()), Delivery::DropAfter(_)) => sender.abort().await,
            (Ok(()), Delivery::StallAfter(_)) => sender.stall().await,
            (Ok(()), Delivery::Complete | Delivery::Garbage | Delivery::WrongShape) => {}
            // Shutdown, or a serialization failure: must not look like a clean end.
            (Err(Stopped), _) => sender.cut(),
        }
    });
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The stream stopped early: the client left, the sim is stopping, or an event failed to
/// serialize. All end the same way.
struct Stopped;

/// Sends the events in order. For `DropAfter(n)` / `StallAfter(n)` it stops after the
/// `n`-th delta (everything before it included) and returns `Ok`, leaving the fault to the
/// caller.
async fn produce(
    sim: &SimState,
    sender: &BodySender,
    answer: &ResponsesAnswer,
    request: &ResponsesRequest,
    delivery: Delivery,
) -> Result<(), Stopped> {
    let cut_after = match delivery {
        Delivery::DropAfter(n) | Delivery::StallAfter(n) => Some(n),
        Delivery::Complete | Delivery::Garbage | Delivery::WrongShape => None,
    };
    let events = stream_events(answer, request);
    let last = events.len().saturating_sub(1);
    let mut deltas = 0;
    for (sequence_number, event) in (0u64..).zip(&events) {
        if event.is_delta() {
            if cut_after == Some(deltas) {
                return Ok(());
            }
            deltas += 1;
            sender
                .pause(sim.config.inter_token)
                .await
                .map_err(|_| Stopped)?;
        } else if cut_after.is_some() && sequence_number as usize == last {
            // Fewer deltas than the cut: stop before the terminal event all the same.
            return Ok(());
        }
        if sequence_number as usize == last {
            let usage = ResponseUsage::of(answer);
            sim.record_served(usage.input_tokens, usage.output_tokens);
        }
        let frame = event_frame(event, sequence_number).map_err(|_| Stopped)?;
        sender.send(frame).await.map_err(|_| Stopped)?;
    }
    Ok(())
}

/// An event cut inside its JSON, then a `data:` line that is not JSON.
async fn send_garbage(sender: &BodySender, answer: &ResponsesAnswer) -> Result<(), Stopped> {
    let truncated = format!(
        "event: response.created\ndata: {{\"type\":\"response.created\",\"response\":{{\"id\":\"{}\",\"output\":\n\n",
        answer.id
    );
    sender.send(truncated).await.map_err(|_| Stopped)?;
    sender
        .send("data: this is not json\n\n")
        .await
        .map_err(|_| Stopped)?;
    Ok(())
}
