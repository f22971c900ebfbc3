//! A scripted upstream for unit tests of the attempt loop: answers queued per upstream host
//! (status, headers, a delay before the headers, a body as timed pieces, a hang, a refused
//! connection), played on tokio's clock, and a log of every call with its fate (answered in
//! full, failed, or cancelled by the proxy).
//!
//! Answers become real [`UpstreamResponse`]s with a streaming body and go through the same
//! status classification as the HTTP client's, so the attempt loop cannot tell them apart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{sleep, timeout_at, Instant};

use super::body::{streamed, UpstreamResponse};
use super::classify::{classify_status, AttemptFailure, Classifier};
use super::client::{accept, connection_failure, no_headers_in_time};
use super::UpstreamRequest;

/// Upstreams keyed by the `host:port` of the request URL.
#[derive(Debug, Default)]
pub struct ScriptedUpstream {
    scripts: Mutex<Scripts>,
}

#[derive(Debug, Default)]
struct Scripts {
    answers: HashMap<String, VecDeque<Answer>>,
    calls: Vec<Arc<Call>>,
}

/// One request the proxy sent.
#[derive(Debug)]
pub struct Call {
    pub host: String,
    pub url: String,
    pub body: Bytes,
    /// The `traceparent` header it carried.
    pub traceparent: Option<String>,
    /// When the proxy sent it.
    pub at: Instant,
    fate: Mutex<Fate>,
}

/// What became of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Still waiting for its headers, or its body is still being read.
    Open,
    /// Answered, and the whole body handed out.
    Delivered,
    /// The connection was refused or reset, as scripted.
    Failed,
    /// The proxy dropped it before it was over (a lost hedge, a timeout).
    Cancelled,
}

impl Call {
    pub fn fate(&self) -> Fate {
        *self.fate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    fn settle(&self, fate: Fate) {
        let mut current = self.fate.lock().unwrap_or_else(PoisonError::into_inner);
        if *current == Fate::Open {
            *current = fate;
        }
    }
}

/// Marks its call cancelled when dropped before the call was settled.
#[derive(Debug)]
struct Watch(Arc<Call>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.settle(Fate::Cancelled);
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    head_delay: Duration,
    head: Head,
}

#[derive(Debug, Clone)]
enum Head {
    Respond {
        status: u16,
        headers: Vec<(&'static str, String)>,
        pieces: Vec<(Duration, Bytes)>,
        end: BodyEnd,
    },
    /// Headers never come.
    Hang,
    /// The connection is refused.
    Refuse,
}

/// How a body ends after its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyEnd {
    Close,
    /// Nothing more, ever: the connection stays open.
    Hang,
    /// The connection is reset.
    Reset,
}

impl Answer {
    /// `status` with an empty body.
    pub fn status(status: u16) -> Self {
        Self {
            head_delay: Duration::ZERO,
            head: Head::Respond {
                status,
                headers: Vec::new(),
                pieces: Vec::new(),
                end: BodyEnd::Close,
            },
        }
    }

    /// `status` with a JSON body, all at once.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::status(status)
            .header("content-type", "application/json")
            .piece(Duration::ZERO, body.to_string())
    }

    /// An SSE stream (200) whose body is delivered as the pieces added next.
    pub fn stream() -> Self {
        Self::status(200).header("content-type", "text/event-stream")
    }

    /// Headers never come.
    pub fn hang() -> Self {
        Self {
            head_delay: Duration::ZERO,
            head: Head::Hang,
        }
    }

    /// The connection is refused.
    pub fn refuse() -> Self {
        Self {
            head_delay: Duration::ZERO,
            head: Head::Refuse,
        }
    }

    /// Waits `delay` before the headers (or the refusal).
    pub fn after(mut self, delay: Duration) -> Self {
        self.head_delay = delay;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Head::Respond { headers, .. } = &mut self.head {
            headers.push((name, value.into()));
        }
        self
    }

    /// A body piece, `delay` after the previous one (or after the headers).
    pub fn piece(mut self, delay: Duration, bytes: impl Into<Bytes>) -> Self {
        if let Head::Respond { pieces, .. } = &mut self.head {
            pieces.push((delay, bytes.into()));
        }
        self
    }

    /// After its pieces the body neither ends nor sends anything.
    pub fn then_hang(self) -> Self {
        self.ending(BodyEnd::Hang)
    }

    /// After its pieces the connection is reset.
    pub fn then_reset(self) -> Self {
        self.ending(BodyEnd::Reset)
    }

    fn ending(mut self, new: BodyEnd) -> Self {
        if let Head::Respond { end, .. } = &mut self.head {
            *end = new;
        }
        self
    }
}

impl ScriptedUpstream {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Queues `answer` for the next call to `host` (`host:port`).
    pub fn script(&self, host: &str, answer: Answer) {
        self.lock()
            .answers
            .entry(host.to_owned())
            .or_default()
            .push_back(answer);
    }

    /// Every call so far, in the order they were sent.
    pub fn calls(&self) -> Vec<Arc<Call>> {
        self.lock().calls.clone()
    }

    /// The calls sent to `host`.
    pub fn calls_to(&self, host: &str) -> Vec<Arc<Call>> {
        self.lock()
            .calls
            .iter()
            .filter(|call| call.host == host)
            .cloned()
            .collect()
    }

    /// Answers scripted but never asked for.
    pub fn unused(&self) -> usize {
        self.lock().answers.values().map(VecDeque::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Scripts> {
        self.scripts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plays the next answer scripted for the request's host.
    pub async fn send(
        &self,
        request: UpstreamRequest,
        first_byte_deadline: Instant,
        classify: Classifier,
    ) -> Result<UpstreamResponse, AttemptFailure> {
        let host = host_of(request.url.as_str()).to_owned();
        let call = Arc::new(Call {
            host: host.clone(),
            url: request.url.to_string(),
            traceparent: request
                .headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: request.body,
            at: Instant::now(),
            fate: Mutex::new(Fate::Open),
        });
        let answer = {
            let mut scripts = self.lock();
            scripts.calls.push(call.clone());
            scripts.answers.get_mut(&host).and_then(VecDeque::pop_front)
        };
        let Some(answer) = answer else {
            panic!("no answer scripted for {host} (call to {})", call.url);
        };
        let watch = Watch(call);
        let head = async move {
            sleep(answer.head_delay).await;
            match answer.head {
                Head::Hang => std::future::pending().await,
                Head::Refuse => {
                    watch.0.settle(Fate::Failed);
                    Err(connection_failure(true, "scripted: connection refused"))
                }
                Head::Respond {
                    status,
                    headers,
                    pieces,
                    end,
                } => Ok(response(status, &headers, pieces, end, watch)),
            }
        };
        let response = match timeout_at(first_byte_deadline, head).await {
            Err(_) => return Err(no_headers_in_time()),
            Ok(outcome) => outcome?,
        };
        accept(response, first_byte_deadline, classify).await
    }
}

/// The `host:port` of a URL.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// A real response whose body plays `pieces` on the clock, then ends as `end` says.
fn response(
    status: u16,
    headers: &[(&'static str, String)],
    pieces: Vec<(Duration, Bytes)>,
    end: BodyEnd,
    watch: Watch,
) -> UpstreamResponse {
    struct Body {
        pieces: VecDeque<(Duration, Bytes)>,
        end: BodyEnd,
        watch: Watch,
    }
    let body = Body {
        pieces: pieces.into(),
        end,
        watch,
    };
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        if let Some((delay, bytes)) = body.pieces.pop_front() {
            sleep(delay).await;
            if body.pieces.is_empty() && body.end == BodyEnd::Close {
                // A reader may stop at the last event without polling for the end.
                body.watch.0.settle(Fate::Delivered);
            }
            return Some((Ok(bytes), body));
        }
        match body.end {
            BodyEnd::Close => {
                body.watch.0.settle(Fate::Delivered);
                None
            }
            BodyEnd::Hang => std::future::pending().await,
            BodyEnd::Reset => {
                body.watch.0.settle(Fate::Failed);
                body.end = BodyEnd::Close;
                let reset = std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "scripted: connection reset",
                );
                Some((Err(reset), body))
            }
        }
    });
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(streamed(stream))
        .expect("scripted headers are valid")
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use serde_json::json;

    use super::*;
    use crate::upstream::body::byte_stream;
    use crate::upstream::client::body_failure;
    use crate::upstream::FailureKind;

    fn request() -> UpstreamRequest {
        UpstreamRequest {
            url: url::Url::parse("http://127.0.0.1:7/v1/chat/completions").unwrap(),
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(b"{\"model\":\"x\"}"),
        }
    }

    const HOST: &str = "127.0.0.1:7";

    #[tokio::test(start_paused = true)]
    async fn bodies_play_on_the_clock_and_end_delivered_or_cancelled() {
        let upstream = ScriptedUpstream::new();
        upstream.script(
            HOST,
            Answer::stream()
                .after(Duration::from_millis(100))
                .piece(Duration::from_millis(50), "one")
                .piece(Duration::from_millis(50), "two"),
        );
        upstream.script(
            HOST,
            Answer::stream().piece(Duration::ZERO, "x").then_hang(),
        );
        let start = Instant::now();
        let far = start + Duration::from_secs(60);

        let response = upstream
            .send(request(), far, classify_status)
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        let mut body = byte_stream(response);
        assert_eq!(body.next().await.unwrap().unwrap(), "one");
        assert_eq!(start.elapsed(), Duration::from_millis(150));
        assert_eq!(body.next().await.unwrap().unwrap(), "two");
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        assert_eq!(upstream.calls()[0].fate(), Fate::Delivered);
        assert_eq!(upstream.calls()[0].json()["model"], "x");

        let response = upstream
            .send(request(), far, classify_status)
            .await
            .unwrap();
        let mut body = byte_stream(response);
        assert_eq!(body.next().await.unwrap().unwrap(), "x");
        assert_eq!(upstream.calls()[1].fate(), Fate::Open);
        drop(body);
        assert_eq!(upstream.calls()[1].fate(), Fate::Cancelled);
        assert_eq!(upstream.unused(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_classified_like_the_http_clients() {
        let upstream = ScriptedUpstream::new();
        upstream.script(HOST, Answer::refuse());
        upstream.script(
            HOST,
            Answer::json(429, &json!({"error": {"message": "slow down"}}))
                .header("retry-after", "2"),
        );
        upstream.script(HOST, Answer::hang());
        upstream.script(HOST, Answer::stream().then_reset());
        let start = Instant::now();
        let far = start + Duration::from_secs(60);

        let refused = upstream
            .send(request(), far, classify_status)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, FailureKind::Capacity { retry_after: None });
        assert!(
            refused.detail.starts_with("could not connect"),
            "{}",
            refused.detail
        );

        let limited = upstream
            .send(request(), far, classify_status)
            .await
            .unwrap_err();
        assert_eq!(
            limited.kind,
            FailureKind::Capacity {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(limited.detail, "HTTP 429: slow down");

        let deadline = start + Duration::from_secs(3);
        let hung = upstream
            .send(request(), deadline, classify_status)
            .await
            .unwrap_err();
        assert_eq!(hung.kind, FailureKind::Timeout);
        assert_eq!(Instant::now(), deadline);

        let reset = upstream
            .send(request(), far, classify_status)
            .await
            .unwrap();
        let error = byte_stream(reset).next().await.unwrap().unwrap_err();
        assert!(
            matches!(body_failure(&error).kind, FailureKind::Capacity { .. }),
            "a reset is a broken connection: {error}"
        );

        let fates: Vec<Fate> = upstream.calls().iter().map(|c| c.fate()).collect();
        assert_eq!(
            fates,
            [Fate::Failed, Fate::Delivered, Fate::Cancelled, Fate::Failed]
        );
    }
}
