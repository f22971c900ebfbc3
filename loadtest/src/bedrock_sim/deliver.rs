//! How an answer leaves the Bedrock simulator: complete, or shaped by a fault that strikes
//! after the 200 (garbage, a connection cut or a stall after some content), with every body
//! counted as in flight until it ends or the client goes away.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::sync::watch;

/// Time given to hyper to flush what was sent before an abort (hyper drops its write
/// buffer when a body fails, and the client should see the partial answer first).
const FLUSH_BEFORE_ABORT: Duration = Duration::from_millis(25);

/// How the body of a 200 ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Complete,
    /// The connection is aborted: no final chunk, nothing that looks like a clean end.
    Abort,
    /// Nothing more is sent until the client leaves or the simulator stops.
    Stall,
}

/// Counts requests whose handler or body is still running; see [`InFlight`].
#[derive(Debug, Default)]
pub struct InFlightCounter(AtomicU64);

impl InFlightCounter {
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Held by a handler, then by its body: dropped when the body ends or the client leaves,
/// which is how a test sees that the proxy cancelled an upstream request.
#[derive(Debug)]
pub struct InFlight(Arc<InFlightCounter>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A 200 whose body is `chunks` (each written after its delay) then `ending`.
/// `stop` ends a stall when the simulator shuts down.
pub fn body_response(
    content_type: &str,
    chunks: Vec<(Duration, Bytes)>,
    ending: Ending,
    guard: InFlight,
    mut stop: watch::Receiver<bool>,
) -> Response {
    let chunks = futures_util::stream::iter(chunks).then(|(delay, chunk)| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, io::Error>(chunk)
    });
    let end = futures_util::stream::once(async move {
        match ending {
            Ending::Complete => None,
            Ending::Abort => {
                tokio::time::sleep(FLUSH_BEFORE_ABORT).await;
                Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "simulated upstream drop",
                )))
            }
            Ending::Stall => {
                let _ = stop.wait_for(|stopped| *stopped).await;
                Some(Err(io::Error::other("simulator stopped")))
            }
        }
    })
    .filter_map(std::future::ready);
    let body = chunks.chain(end).map(move |item| {
        // The guard lives as long as the body does.
        let _held = &guard;
        item
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000001")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

/// A Converse answer's bytes cut to their first half: what a dropped or stalled
/// non-streamed answer delivers before it breaks.
pub fn first_half(body: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&body[..body.len() / 2])
}

/// Bytes that are not AWS event-stream frames, served as if they were.
pub fn garbage_frames(sim_name: &str) -> Vec<Bytes> {
    vec![Bytes::from(format!(
        "<html>not an event stream from {sim_name}</html>\n"
    ))]
}

/// JSON, but Bedrock's error body where a Converse answer belongs.
pub fn wrong_shape_json() -> Bytes {
    Bytes::from_static(br#"{"message":"Simulated error inside a 200."}"#)
}

/// A body that is not JSON, served as a Converse answer.
pub fn garbage_json(sim_name: &str) -> Bytes {
    Bytes::from(format!(
        "<html>not json from {sim_name}: {{\"output\": {{\"message\":"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(response: Response) -> (Vec<u8>, Option<String>) {
        let mut stream = response.into_body().into_data_stream();
        let mut bytes = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(error) => return (bytes, Some(error.to_string())),
            }
        }
        (bytes, None)
    }

    fn chunks() -> Vec<(Duration, Bytes)> {
        vec![
            (Duration::ZERO, Bytes::from_static(b"ab")),
            (Duration::ZERO, Bytes::from_static(b"cd")),
        ]
    }

    #[tokio::test]
    async fn complete_and_aborted_bodies_and_the_in_flight_count() {
        let counter = Arc::new(InFlightCounter::default());
        let (_stop, stopped) = watch::channel(false);
        let response = body_response(
            "x",
            chunks(),
            Ending::Complete,
            counter.enter(),
            stopped.clone(),
        );
        assert_eq!(counter.get(), 1, "the body holds the request in flight");
        assert_eq!(read(response).await, (b"abcd".to_vec(), None));
        assert_eq!(counter.get(), 0);

        let response = body_response("x", chunks(), Ending::Abort, counter.enter(), stopped);
        let (bytes, error) = read(response).await;
        assert_eq!(bytes, b"abcd");
        assert!(error.is_some(), "an abort must not look like a clean end");
        assert_eq!(counter.get(), 0);
    }

    #[tokio::test]
    async fn a_stall_holds_until_the_client_leaves_or_the_sim_stops() {
        let counter = Arc::new(InFlightCounter::default());
        let (stop, stopped) = watch::channel(false);
        let stalled = |counter: &Arc<InFlightCounter>| {
            body_response(
                "x",
                chunks(),
                Ending::Stall,
                counter.enter(),
                stopped.clone(),
            )
        };
        let mut body = stalled(&counter).into_body().into_data_stream();
        assert_eq!(body.next().await.map(|c| c.ok()), Some(Some("ab".into())));
        assert_eq!(body.next().await.map(|c| c.ok()), Some(Some("cd".into())));
        let next = tokio::time::timeout(Duration::from_millis(50), body.next()).await;
        assert!(next.is_err(), "nothing after the content: {next:?}");
        drop(body);
        assert_eq!(counter.get(), 0, "a client that leaves ends the request");

        let response = stalled(&counter);
        let _ = stop.send(true);
        let (bytes, error) = read(response).await;
        assert_eq!(bytes, b"abcd");
        assert!(
            error.is_some(),
            "a stall ended by shutdown is not a clean end"
        );
        assert_eq!(counter.get(), 0);
    }

    #[test]
    fn garbage_is_neither_json_nor_frames() {
        assert!(serde_json::from_slice::<serde_json::Value>(&garbage_json("s")).is_err());
        assert!(garbage_frames("s")[0].starts_with(b"<html>"));
        assert_eq!(first_half(b"abcd"), Bytes::from_static(b"ab"));
    }
}
