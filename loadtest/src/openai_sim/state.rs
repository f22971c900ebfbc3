//! Shared state of one simulator: config, counters, the captured requests, the fault
//! book, the rate limiter and the shutdown signal. Counters are atomics and the
//! only mutexes are never held across an `.await`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;

use super::config::SimConfig;
use super::faults::FaultBook;
use super::latency::LatencyJitter;
use super::ratelimit::RateLimiter;
use crate::capture::RequestLog;

/// A snapshot of what a simulator has seen since start or the last reset.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimStats {
    /// Requests that reached an API handler (chat, embeddings, models, unknown
    /// paths), faulted ones included; `/_sim/*` control calls are not counted.
    pub requests: u64,
    pub chat_requests: u64,
    /// `POST /v1/responses` requests, faulted and refused ones included.
    pub responses_requests: u64,
    /// Valid chat and Responses requests with `"stream": true`.
    pub stream_requests: u64,
    /// Valid Responses requests that did not send `"store": false` (the API stores by
    /// default): a proxy that keeps conversations itself should leave this at 0.
    pub store_requested: u64,
    pub embedding_requests: u64,
    /// Requests that got a complete 200 answer (a stream counts once it reaches `[DONE]`).
    pub served_ok: u64,
    /// Usage totals of complete answers: what a meter should see.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Body of the last chat, Responses or embeddings request (a JSON string if it was not JSON).
    pub last_body: Option<serde_json::Value>,
    /// Headers of the last chat, Responses or embeddings request, names lowercase.
    pub last_headers: Vec<(String, String)>,
    /// Valid streams that asked for `stream_options.include_usage`.
    pub include_usage_requested: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub chat_requests: AtomicU64,
    pub responses_requests: AtomicU64,
    pub stream_requests: AtomicU64,
    pub store_requested: AtomicU64,
    pub embedding_requests: AtomicU64,
    pub served_ok: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    pub include_usage_requested: AtomicU64,
}

/// Bumps a counter; relaxed ordering is enough because nothing is published through them.
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// The last inference request, kept raw so recording it costs two reference-count bumps;
/// parsing happens only when someone asks for stats.
#[derive(Default)]
struct LastRequest {
    headers: HeaderMap,
    body: Option<Bytes>,
}

pub(crate) struct SimState {
    pub config: SimConfig,
    pub counters: Counters,
    pub faults: FaultBook,
    pub limiter: RateLimiter,
    /// `x-sim-name`, prepared once.
    pub name_header: Option<HeaderValue>,
    /// The last inference requests (`POST /v1/...`), for `GET /_sim/requests`.
    pub requests: Arc<RequestLog>,
    /// `system_fingerprint` of every answer.
    pub fingerprint: String,
    /// Random hex in every Responses id (`resp_<tag><n>`), so two simulators never mint
    /// the same id.
    pub id_tag: String,
    next_id: AtomicU64,
    in_flight: AtomicU64,
    last: Mutex<LastRequest>,
    shutdown: watch::Sender<bool>,
    jitter: Mutex<Option<LatencyJitter>>,
}

impl SimState {
    pub(crate) fn new(config: SimConfig) -> Self {
        let name_header = HeaderValue::from_str(&config.name).ok();
        let fingerprint = format!("fp_sim_{}", config.name);
        let limiter = RateLimiter::new(config.rpm_limit);
        Self {
            config,
            counters: Counters::default(),
            faults: FaultBook::default(),
            limiter,
            name_header,
            requests: RequestLog::new(|path| path.starts_with("/v1/")),
            fingerprint,
            id_tag: format!("{:08x}", rand::random::<u32>()),
            next_id: AtomicU64::new(1),
            in_flight: AtomicU64::new(0),
            last: Mutex::new(LastRequest::default()),
            shutdown: watch::Sender::new(false),
            jitter: Mutex::new(None),
        }
    }

    pub(crate) fn set_jitter(&self, jitter: Option<LatencyJitter>) {
        *self.jitter.lock().unwrap_or_else(PoisonError::into_inner) = jitter;
    }

    pub(crate) fn jitter(&self) -> Option<LatencyJitter> {
        *self.jitter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This request's time to first token: `ttft`, varied when a jitter is set.
    pub(crate) fn ttft(&self) -> Duration {
        match self.jitter() {
            Some(jitter) => jitter.ttft(self.config.ttft),
            None => self.config.ttft,
        }
    }

    /// A fresh number for response and tool-call ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn record_request(&self, headers: &HeaderMap, body: &Bytes) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.headers = headers.clone();
        last.body = Some(body.clone());
    }

    /// Marks a request as in progress until the returned guard is dropped (which
    /// happens when the client goes away, since the guard lives in the handler or
    /// in the task feeding its body).
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn stats(&self) -> SimStats {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (headers, body) = {
            let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            (last.headers.clone(), last.body.clone())
        };
        SimStats {
            requests: load(&c.requests),
            chat_requests: load(&c.chat_requests),
            responses_requests: load(&c.responses_requests),
            stream_requests: load(&c.stream_requests),
            store_requested: load(&c.store_requested),
            embedding_requests: load(&c.embedding_requests),
            served_ok: load(&c.served_ok),
            prompt_tokens: load(&c.prompt_tokens),
            completion_tokens: load(&c.completion_tokens),
            include_usage_requested: load(&c.include_usage_requested),
            last_body: body.map(|raw| {
                serde_json::from_slice(&raw).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&raw).into_owned())
                })
            }),
            last_headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
        }
    }

    pub(crate) fn reset_stats(&self) {
        let c = &self.counters;
        for counter in [
            &c.requests,
            &c.chat_requests,
            &c.responses_requests,
            &c.stream_requests,
            &c.store_requested,
            &c.embedding_requests,
            &c.served_ok,
            &c.prompt_tokens,
            &c.completion_tokens,
            &c.include_usage_requested,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.limiter.reset();
        self.requests.clear();
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = LastRequest::default();
    }

    /// Records a complete answer. Called before its last byte is handed to the
    /// client, so a client that has seen the end of the answer also sees the stats.
    pub(crate) fn record_served(&self, prompt_tokens: u64, completion_tokens: u64) {
        bump(&self.counters.served_ok, 1);
        bump(&self.counters.prompt_tokens, prompt_tokens);
        bump(&self.counters.completion_tokens, completion_tokens);
    }

    pub(crate) fn trigger_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once the simulator is shutting down.
    pub(crate) fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            // An error means the sender is gone, which also means we are shutting down.
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// Runs `work` unless the simulator shuts down first (then `None`).
    pub(crate) async fn unless_shutdown<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            out = work => Some(out),
            () = self.shutdown_signal() => None,
        }
    }

    /// Sleeps, cut short by shutdown. Returns whether the full delay elapsed.
    pub(crate) async fn pause(&self, delay: Duration) -> bool {
        if delay.is_zero() {
            return true;
        }
        self.unless_shutdown(tokio::time::sleep(delay))
            .await
            .is_some()
    }
}

/// Keeps [`SimState::in_flight`] accurate; see [`SimState::enter`].
pub(crate) struct InFlight(Arc<SimState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
