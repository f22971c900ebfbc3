//! Streamed chat answers: the SSE frames of docs/wire-formats.md §1.3 sent one by one
//! from a task as they are produced, with `inter_token` pacing and the
//! mid-stream faults (drop, stall, garbage).

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::answer::Answer;
use super::body::{channel_body, BodySender, Gone};
use super::deliver::{Delivery, WRONG_SHAPE};
use super::state::{InFlight, SimState};
use super::wire::{ChunkWriter, DONE_FRAME};

/// Starts the producer task and returns the `text/event-stream` response it feeds.
/// Called after `ttft`, so the headers and the role chunk go out together.
pub(crate) fn respond(
    sim: Arc<SimState>,
    answer: Answer,
    include_usage: bool,
    delivery: Delivery,
    guard: InFlight,
) -> Response {
    let (sender, body) = channel_body(Arc::clone(&sim));
    tokio::spawn(async move {
        // Dropped with the task: the request stays "in flight" while its body is produced.
        let _guard = guard;
        let writer = ChunkWriter {
            answer: &answer,
            fingerprint: &sim.fingerprint,
            include_usage,
        };
        let outcome = match delivery {
            Delivery::Garbage => send_garbage(&sender, &answer).await,
            Delivery::WrongShape => sender
                .send(format!("data: {WRONG_SHAPE}\n\n"))
                .await
                .map_err(StreamError::from),
            _ => produce(&sim, &sender, &writer, delivery).await,
        };
        match (outcome, delivery) {
            (Ok(()), Delivery::DropAfter(_)) => sender.abort().await,
            (Ok(()), Delivery::StallAfter(_)) => sender.stall().await,
            (
                Ok(()),
                Delivery::Complete | Delivery::Garbage | Delivery::WrongShape | Delivery::Endless,
            ) => {}
            // Shutdown, or a serialization failure: must not look like a clean end.
            (Err(_), _) => sender.cut(),
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

/// Why a stream stopped early: the client left, the sim is stopping, or a chunk
/// failed to serialize. All end the same way, so no detail is kept.
struct StreamError;

impl From<Gone> for StreamError {
    fn from(_: Gone) -> Self {
        StreamError
    }
}

impl From<serde_json::Error> for StreamError {
    fn from(_: serde_json::Error) -> Self {
        StreamError
    }
}

/// Sends the frames in docs/wire-formats.md §1.3 order. For `DropAfter(n)` /
/// `StallAfter(n)` it stops after `n` content chunks and returns `Ok`, leaving the fault to
/// the caller.
async fn produce(
    sim: &SimState,
    sender: &BodySender,
    writer: &ChunkWriter<'_>,
    delivery: Delivery,
) -> Result<(), StreamError> {
    let pieces = writer.answer.pieces();
    let cut_after = match delivery {
        Delivery::DropAfter(n) | Delivery::StallAfter(n) => Some(n.min(pieces)),
        Delivery::Complete | Delivery::Garbage | Delivery::WrongShape | Delivery::Endless => None,
    };
    sender.send(writer.role()?).await?;
    for index in 0..cut_after.unwrap_or(pieces) {
        sender.pause(sim.config.inter_token).await?;
        sender.send(writer.piece(index)?).await?;
    }
    if delivery == Delivery::Endless {
        // Ends only when the client goes away (the send fails) or the sim stops.
        loop {
            sender.pause(sim.config.inter_token).await?;
            sender.send(writer.extra_token()?).await?;
        }
    }
    if cut_after.is_some() {
        return Ok(());
    }
    sender.send(writer.finish()?).await?;
    if writer.include_usage {
        sender.send(writer.usage()?).await?;
    }
    let answer = writer.answer;
    sim.record_served(answer.prompt_tokens, answer.completion_tokens());
    sender.send(DONE_FRAME).await?;
    Ok(())
}

/// SSE framing around payloads that are not JSON, then `[DONE]`.
async fn send_garbage(sender: &BodySender, answer: &Answer) -> Result<(), StreamError> {
    let truncated = format!(
        "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"delta\":\n\n",
        answer.id
    );
    sender.send(truncated).await?;
    sender.send("data: this is not json\n\n").await?;
    sender.send(DONE_FRAME).await?;
    Ok(())
}
