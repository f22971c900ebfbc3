//! Request capture shared by every simulator: the last [`CAPTURE_LIMIT`] inference request
//! bodies with their path and W3C trace-context headers (never credentials), in arrival order, so a test can check what an upstream was sent
//! (in process through [`CapturesRequests`], over HTTP through `GET /_sim/requests`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::serve::lock;

/// Requests kept per simulator; older ones are forgotten first.
pub const CAPTURE_LIMIT: usize = 64;

/// The largest body read for capture: the simulators' own body limit.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// One request a simulator received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapturedRequest {
    /// Arrival number: 1 for the first request since start or the last reset.
    pub seq: u64,
    /// The URL path as sent (percent-encoded; no query).
    pub path: String,
    /// The body as JSON, or a JSON string holding it when it was not JSON.
    pub body: Value,
    /// The `traceparent` header the request carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The `tracestate` header the request carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// The body of `GET /_sim/requests`, oldest request first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CapturedRequests {
    pub requests: Vec<CapturedRequest>,
}

/// A request as it is kept: raw bytes (a reference-count bump, no parsing on the hot
/// path), parsed only when someone reads the log.
struct Entry {
    seq: u64,
    path: String,
    body: Bytes,
    trace: TraceHeaders,
}

/// The trace-context headers of a request: the only headers kept (others carry keys).
#[derive(Clone, Debug, Default)]
pub(crate) struct TraceHeaders {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl TraceHeaders {
    fn of(headers: &axum::http::HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            traceparent: text("traceparent"),
            tracestate: text("tracestate"),
        }
    }
}

#[derive(Default)]
struct Ring {
    /// Requests recorded since start or the last reset.
    recorded: u64,
    entries: VecDeque<Entry>,
}

/// The last [`CAPTURE_LIMIT`] requests of one simulator, and which paths count as inference.
pub(crate) struct RequestLog {
    ring: Mutex<Ring>,
    /// Whether a `POST` to this path is captured (credential endpoints must not be: their
    /// bodies hold secrets).
    captures: fn(&str) -> bool,
}

impl RequestLog {
    pub(crate) fn new(captures: fn(&str) -> bool) -> Arc<Self> {
        Arc::new(Self {
            ring: Mutex::new(Ring::default()),
            captures,
        })
    }

    pub(crate) fn record(&self, path: &str, trace: TraceHeaders, body: Bytes) {
        let mut ring = lock(&self.ring);
        ring.recorded += 1;
        let seq = ring.recorded;
        if ring.entries.len() == CAPTURE_LIMIT {
            ring.entries.pop_front();
        }
        ring.entries.push_back(Entry {
            seq,
            path: path.to_owned(),
            body,
            trace,
        });
    }

    /// The kept requests, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<CapturedRequest> {
        let ring = lock(&self.ring);
        ring.entries
            .iter()
            .map(|entry| CapturedRequest {
                seq: entry.seq,
                path: entry.path.clone(),
                body: serde_json::from_slice(&entry.body).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&entry.body).into_owned())
                }),
                traceparent: entry.trace.traceparent.clone(),
                tracestate: entry.trace.tracestate.clone(),
            })
            .collect()
    }

    /// Forgets every request and restarts the numbering.
    pub(crate) fn clear(&self) {
        *lock(&self.ring) = Ring::default();
    }

    /// `router` with every captured `POST` recorded before its handler runs, and
    /// `GET /_sim/requests`. The recording wraps the fallback too (the Bedrock simulator
    /// routes by hand).
    pub(crate) fn attach<S>(self: &Arc<Self>, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router
            .layer(middleware::from_fn_with_state(Arc::clone(self), capture))
            .route("/_sim/requests", get(requests).with_state(Arc::clone(self)))
    }

    /// `router` with `POST /_sim/reset` clearing the log, for simulators that have no
    /// other reset (the OpenAI simulator's own reset clears it too).
    pub(crate) fn with_reset<S>(self: &Arc<Self>, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.route("/_sim/reset", post(reset).with_state(Arc::clone(self)))
    }
}

/// Reads the body of a captured request, records it, and hands an identical request on.
async fn capture(State(log): State<Arc<RequestLog>>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !(log.captures)(request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let message = format!("reading the request body: {error}");
            return (StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
        }
    };
    log.record(
        parts.uri.path(),
        TraceHeaders::of(&parts.headers),
        bytes.clone(),
    );
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn requests(State(log): State<Arc<RequestLog>>) -> Json<CapturedRequests> {
    Json(CapturedRequests {
        requests: log.snapshot(),
    })
}

async fn reset(State(log): State<Arc<RequestLog>>) -> Json<Value> {
    log.clear();
    Json(serde_json::json!({"reset": true}))
}

/// Read access to a simulator's captured requests, whichever simulator it is.
pub trait CapturesRequests {
    /// The last [`CAPTURE_LIMIT`] captured requests, oldest first.
    fn captured(&self) -> Vec<CapturedRequest>;

    /// Forgets the captured requests and restarts their numbering.
    fn clear_captured(&self);

    /// The bodies of the captured requests whose path ends with `suffix`, oldest first.
    fn captured_bodies(&self, suffix: &str) -> Vec<Value> {
        self.captured()
            .into_iter()
            .filter(|request| request.path.ends_with(suffix))
            .map(|request| request.body)
            .collect()
    }

    /// The body of the latest captured request.
    fn last_captured_body(&self) -> Option<Value> {
        self.captured().pop().map(|request| request.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything(_: &str) -> bool {
        true
    }

    #[test]
    fn keeps_the_latest_in_arrival_order() {
        let log = RequestLog::new(everything);
        for n in 0..CAPTURE_LIMIT + 3 {
            log.record(
                "/v1/x",
                TraceHeaders::default(),
                Bytes::from(format!("{{\"n\":{n}}}")),
            );
        }
        let kept = log.snapshot();
        assert_eq!(kept.len(), CAPTURE_LIMIT);
        assert_eq!(kept[0].seq, 4);
        assert_eq!(kept[0].body, serde_json::json!({"n": 3}));
        assert_eq!(kept[CAPTURE_LIMIT - 1].seq, CAPTURE_LIMIT as u64 + 3);
        log.clear();
        assert!(log.snapshot().is_empty());
        log.record(
            "/v1/y",
            TraceHeaders {
                traceparent: Some(
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
                ),
                tracestate: None,
            },
            Bytes::from_static(b"not json"),
        );
        let kept = log.snapshot();
        assert_eq!(kept[0].seq, 1, "numbering restarts after a reset");
        assert_eq!(kept[0].body, Value::String("not json".to_owned()));
        assert_eq!(
            kept[0].traceparent.as_deref(),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            "the trace context is kept"
        );
    }
}
