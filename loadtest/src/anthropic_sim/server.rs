//! The `AnthropicSim` handle and its HTTP handlers: `/v1/messages` (JSON or SSE),
//! `/v1/messages/count_tokens`, `/v1/models`; auth, version header, faults, stats and the
//! count of answers in flight.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::brain::Brain;
use super::config::{AnthropicFault, AnthropicSimConfig, AnthropicSimStats};
use super::events::{sse, stream_events};
use super::respond::{api_error, set, Window};
use super::validate::Surface;
use super::wire::Message;
use crate::bedrock_sim::deliver::{InFlight, InFlightCounter};
use crate::capture::{CapturedRequest, CapturesRequests, RequestLog};
use crate::serve::{lock, spawn_until_stopped};

/// Time given to hyper to flush what was sent before a cut (it drops its buffer on a body error).
const FLUSH_BEFORE_CUT: Duration = Duration::from_millis(25);

/// The body of a [`AnthropicFault::WrongShape`] answer: valid JSON, an error object, no Message.
const WRONG_SHAPE: &str =
    r#"{"type":"error","error":{"type":"api_error","message":"Simulated error inside a 200."}}"#;

pub(crate) struct SimState {
    config: AnthropicSimConfig,
    brain: Brain,
    faults: Mutex<VecDeque<AnthropicFault>>,
    stats: Mutex<AnthropicSimStats>,
    window: Mutex<Window>,
    request_ids: AtomicU64,
    /// Valid `/v1/messages` requests whose handler or body is still running.
    in_flight: Arc<InFlightCounter>,
    /// The last API requests (`POST /v1/...`), for `GET /_sim/requests`.
    requests: Arc<RequestLog>,
    stop: watch::Sender<bool>,
}

/// A running simulator; dropping it stops the listener and ends stalled streams.
pub struct AnthropicSim {
    addr: SocketAddr,
    state: Arc<SimState>,
}

impl AnthropicSim {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: AnthropicSimConfig) -> anyhow::Result<AnthropicSim> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(
        config: AnthropicSimConfig,
        addr: SocketAddr,
    ) -> anyhow::Result<AnthropicSim> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the Anthropic simulator to {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the simulator's address")?;
        let mut brain = Brain::new(&config.name, &config.thinking_secret);
        brain.strict_alternation = config.strict_alternation;
        let state = Arc::new(SimState {
            brain,
            config,
            faults: Mutex::new(VecDeque::new()),
            stats: Mutex::new(AnthropicSimStats::default()),
            window: Mutex::new(Window::default()),
            request_ids: AtomicU64::new(1),
            in_flight: Arc::default(),
            requests: RequestLog::new(|path| path.starts_with("/v1/")),
            stop: watch::Sender::new(false),
        });
        let routes = Router::new()
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .route("/v1/models", get(list_models))
            .route("/v1/models/{id}", get(get_model))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(32 * 1024 * 1024));
        let requests = &state.requests;
        let app = requests
            .with_reset(requests.attach(routes))
            .with_state(Arc::clone(&state));
        spawn_until_stopped(listener, app, state.stop.subscribe(), "Anthropic simulator");
        Ok(AnthropicSim { addr, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: an Anthropic client's base URL (it appends `/v1/messages`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &AnthropicSimConfig {
        &self.state.config
    }

    /// Queues faults; each valid `POST /v1/messages` consumes one.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = AnthropicFault>) {
        lock(&self.state.faults).extend(faults);
    }

    pub fn stats(&self) -> AnthropicSimStats {
        lock(&self.state.stats).clone()
    }

    /// Valid `/v1/messages` requests whose answer is still being produced (stalled ones
    /// included): how a test sees that the proxy let go of an upstream request.
    pub fn in_flight(&self) -> u64 {
        self.state.in_flight.get()
    }

    /// The signature this simulator gives a thinking block with that text.
    pub fn sign_thinking(&self, thinking: &str) -> String {
        self.state.brain.sign_thinking(thinking)
    }
}

impl CapturesRequests for AnthropicSim {
    fn captured(&self) -> Vec<CapturedRequest> {
        self.state.requests.snapshot()
    }

    fn clear_captured(&self) {
        self.state.requests.clear();
    }
}

impl Drop for AnthropicSim {
    fn drop(&mut self) {
        self.state.stop.send_replace(true);
    }
}

impl SimState {
    fn request_id(&self) -> String {
        format!(
            "req_sim{:020}",
            self.request_ids.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Checks `x-api-key` and `anthropic-version`; records the request if they pass.
    fn admit(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        request_id: &str,
    ) -> Result<(), Box<Response>> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if header("x-api-key") != Some(self.config.api_key.as_str()) {
            lock(&self.stats).auth_failures += 1;
            return Err(Box::new(api_error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid x-api-key",
                request_id,
            )));
        }
        let Some(version) = header("anthropic-version") else {
            return Err(Box::new(api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "anthropic-version: header is required",
                request_id,
            )));
        };
        let mut stats = lock(&self.stats);
        stats.requests += 1;
        stats.last_version = Some(version.to_owned());
        stats.last_path = Some(uri.path().to_owned());
        stats.last_body = Some(
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
        );
        stats.last_headers = headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        for value in headers.get_all("anthropic-beta") {
            for beta in String::from_utf8_lossy(value.as_bytes()).split(',') {
                let beta = beta.trim().to_owned();
                if !beta.is_empty() && !stats.betas_seen.contains(&beta) {
                    stats.betas_seen.push(beta);
                }
            }
        }
        Ok(())
    }

    fn invalid(&self, message: &str, request_id: &str) -> Response {
        lock(&self.stats).validation_failures += 1;
        api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            message,
            request_id,
        )
    }

    fn record_served(&self, message: &Message) {
        let mut stats = lock(&self.stats);
        let usage = &message.usage;
        stats.served_ok += 1;
        stats.input_tokens += usage.input_tokens;
        stats.output_tokens += usage.output_tokens;
        stats.cache_read_input_tokens += usage.cache_read_input_tokens;
        stats.cache_creation_input_tokens += usage.cache_creation_input_tokens;
    }

    /// Replaces the prompt-cache accounting with the configured fixed report, if any.
    fn fixed_cache_report(&self, message: &mut Message) {
        let (read, write) = (
            self.config.cache_read_tokens,
            self.config.cache_write_tokens,
        );
        if read == 0 && write == 0 {
            return;
        }
        let usage = &mut message.usage;
        usage.cache_read_input_tokens = read;
        usage.cache_creation_input_tokens = write;
        usage.cache_creation.ephemeral_5m_input_tokens = write;
        usage.cache_creation.ephemeral_1h_input_tokens = 0;
    }

    fn success_headers(&self, headers: &mut HeaderMap, request_id: &str, content_type: &str) {
        set(headers, "content-type", content_type);
        set(headers, "request-id", request_id);
        set(headers, "x-sim-name", &self.config.name);
        lock(&self.window).write_headers(&self.config.quota, headers);
    }

    async fn sleep(&self, delay: Duration) {
        if !delay.is_zero() {
            let mut stop = self.stop.subscribe();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
    }
}

async fn messages(
    State(sim): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = sim.request_id();
    if let Err(refused) = sim.admit(&uri, &headers, &body, &request_id) {
        return *refused;
    }
    lock(&sim.stats).message_requests += 1;
    let request = match sim.brain.parse(&body, Surface::Messages) {
        Ok(request) => request,
        Err(invalid) => return sim.invalid(&invalid.0, &request_id),
    };
    let streaming = request.stream == Some(true);
    if streaming {
        lock(&sim.stats).stream_requests += 1;
    }
    // Held until the body ends or the client leaves (the body owns it from then on).
    let guard = sim.in_flight.enter();
    let fault = lock(&sim.faults).pop_front();
    let mut delay = sim.config.latency;
    let error = |status, kind: &str, message: &str| api_error(status, kind, message, &request_id);
    match fault {
        Some(AnthropicFault::RateLimit { retry_after_secs }) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit (scripted).",
            );
            set(
                response.headers_mut(),
                "retry-after",
                &retry_after_secs.to_string(),
            );
            lock(&sim.window).write_headers(&sim.config.quota, response.headers_mut());
            return response;
        }
        Some(AnthropicFault::Overloaded) => {
            return error(
                StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "overloaded_error",
                "Overloaded",
            )
        }
        Some(AnthropicFault::StreamError { .. }) if !streaming => {
            return error(
                StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "overloaded_error",
                "Overloaded",
            )
        }
        Some(AnthropicFault::ApiError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "Internal server error (scripted).",
            )
        }
        Some(AnthropicFault::Latency(extra)) => delay += extra,
        _ => {}
    }
    let model = request.model.clone().unwrap_or_default();
    let input = Brain::count_tokens(&request);
    // Bound first: a guard in the `if let` scrutinee would live into the body, which locks again.
    let admitted = lock(&sim.window).admit(&sim.config.quota, input);
    if let Err(over) = admitted {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            &format!(
                "This request would exceed your organization's rate limit of {} per minute.",
                over.what
            ),
        );
        set(
            response.headers_mut(),
            "retry-after",
            &over.retry_after_secs.to_string(),
        );
        lock(&sim.window).write_headers(&sim.config.quota, response.headers_mut());
        return response;
    }
    let mut message = sim.brain.answer(&request, &model, "msg_sim_");
    sim.fixed_cache_report(&mut message);
    lock(&sim.window).charge_output(message.usage.output_tokens);
    sim.sleep(delay).await;
    if streaming {
        stream_answer(&sim, message, fault, &request_id, guard)
    } else {
        json_answer(&sim, message, fault, &request_id, guard)
    }
}

type Chunk = Result<Bytes, io::Error>;

/// A body fed through the returned sender; it owns `guard`, so the request stops counting as
/// in flight when hyper drops the body (its end, or the client leaving).
fn body_channel(guard: InFlight) -> (mpsc::Sender<Chunk>, Body) {
    let (tx, mut rx) = mpsc::channel::<Chunk>(4);
    let frames = stream::poll_fn(move |cx| {
        let _held = &guard;
        rx.poll_recv(cx)
    });
    (tx, Body::from_stream(frames))
}

/// Waits until the client goes away (counted as a cancelled stream) or the sim stops.
async fn stall(sim: &SimState, tx: &mpsc::Sender<Chunk>) {
    let mut stop = sim.stop.subscribe();
    tokio::select! {
        () = tx.closed() => lock(&sim.stats).cancelled_streams += 1,
        _ = stop.wait_for(|s| *s) => {}
    }
}

async fn cut(tx: mpsc::Sender<Chunk>) {
    tokio::time::sleep(FLUSH_BEFORE_CUT).await;
    let _ = tx
        .send(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "simulated connection cut",
        )))
        .await;
}

fn json_answer(
    sim: &Arc<SimState>,
    message: Message,
    fault: Option<AnthropicFault>,
    request_id: &str,
    guard: InFlight,
) -> Response {
    let body = serde_json::to_vec(&message).unwrap_or_default();
    let mut response = match fault {
        Some(AnthropicFault::Garbage) => Response::new(Body::from(format!(
            "<html>not json from {}: {{\"content\": [",
            sim.config.name
        ))),
        Some(AnthropicFault::WrongShape) => Response::new(Body::from(WRONG_SHAPE)),
        Some(
            ref fault @ (AnthropicFault::StreamCut { .. } | AnthropicFault::StreamStall { .. }),
        ) => {
            let full = body.len();
            let (tx, stream_body) = body_channel(guard);
            let half = Bytes::from(body).slice(..full / 2);
            let stalls = matches!(fault, AnthropicFault::StreamStall { .. });
            let task_sim = Arc::clone(sim);
            tokio::spawn(async move {
                if tx.send(Ok(half)).await.is_err() {
                    return;
                }
                if stalls {
                    stall(&task_sim, &tx).await;
                } else {
                    cut(tx).await;
                }
            });
            let mut response = Response::new(stream_body);
            set(response.headers_mut(), "content-length", &full.to_string());
            response
        }
        _ => {
            sim.record_served(&message);
            Response::new(Body::from(body))
        }
    };
    sim.success_headers(response.headers_mut(), request_id, "application/json");
    response
}

fn stream_answer(
    sim: &Arc<SimState>,
    message: Message,
    fault: Option<AnthropicFault>,
    request_id: &str,
    guard: InFlight,
) -> Response {
    let (tx, body) = body_channel(guard);
    let mut response = Response::new(body);
    sim.success_headers(response.headers_mut(), request_id, "text/event-stream");
    set(response.headers_mut(), "cache-control", "no-cache");
    let sim = Arc::clone(sim);
    tokio::spawn(async move {
        if fault == Some(AnthropicFault::Garbage) {
            let _ = tx
                .send(Ok(Bytes::from_static(b"this is {not an event stream\n\n")))
                .await;
            return;
        }
        if fault == Some(AnthropicFault::WrongShape) {
            let _ = tx
                .send(Ok(Bytes::from(format!(
                    "event: error\ndata: {WRONG_SHAPE}\n\n"
                ))))
                .await;
            return;
        }
        let events = stream_events(&message, true);
        let stop_after = match fault {
            Some(
                AnthropicFault::StreamError { after_events }
                | AnthropicFault::StreamCut { after_events }
                | AnthropicFault::StreamStall { after_events },
            ) => Some(after_events),
            _ => None,
        };
        let last = events.len().saturating_sub(1);
        for (k, event) in events.iter().enumerate() {
            if stop_after == Some(k) {
                break;
            }
            if k > 0 {
                sim.sleep(sim.config.inter_event).await;
            }
            if k == last {
                // Recorded before the last event leaves: a client that saw the end sees the stats.
                sim.record_served(&message);
            }
            if tx.send(Ok(Bytes::from(sse(event)))).await.is_err() {
                lock(&sim.stats).cancelled_streams += 1;
                return;
            }
        }
        match fault {
            Some(AnthropicFault::StreamError { .. }) => {
                let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
                let _ = tx
                    .send(Ok(Bytes::from(format!("event: error\ndata: {error}\n\n"))))
                    .await;
            }
            Some(AnthropicFault::StreamCut { .. }) => cut(tx).await,
            Some(AnthropicFault::StreamStall { .. }) => stall(&sim, &tx).await,
            _ => {}
        }
    });
    response
}

async fn count_tokens(
    State(sim): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = sim.request_id();
    if let Err(refused) = sim.admit(&uri, &headers, &body, &request_id) {
        return *refused;
    }
    lock(&sim.stats).count_tokens_requests += 1;
    let request = match sim.brain.parse(&body, Surface::CountTokens) {
        Ok(request) => request,
        Err(invalid) => return sim.invalid(&invalid.0, &request_id),
    };
    let count = json!({"input_tokens": Brain::count_tokens(&request)});
    let mut response = Response::new(Body::from(count.to_string()));
    set(response.headers_mut(), "content-type", "application/json");
    set(response.headers_mut(), "request-id", &request_id);
    response
}

fn model_info(id: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"})
}

fn auth_only(sim: &SimState, headers: &HeaderMap, request_id: &str) -> Result<(), Box<Response>> {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if key == Some(sim.config.api_key.as_str()) {
        Ok(())
    } else {
        lock(&sim.stats).auth_failures += 1;
        Err(Box::new(api_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
            request_id,
        )))
    }
}

fn json_ok(value: &Value, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    set(response.headers_mut(), "content-type", "application/json");
    set(response.headers_mut(), "request-id", request_id);
    response
}

async fn list_models(State(sim): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let request_id = sim.request_id();
    if let Err(refused) = auth_only(&sim, &headers, &request_id) {
        return *refused;
    }
    let models = &sim.config.models;
    let body = json!({
        "data": models.iter().map(|id| model_info(id)).collect::<Vec<_>>(),
        "has_more": false,
        "first_id": models.first(),
        "last_id": models.last(),
    });
    json_ok(&body, &request_id)
}

async fn get_model(
    State(sim): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let request_id = sim.request_id();
    if let Err(refused) = auth_only(&sim, &headers, &request_id) {
        return *refused;
    }
    if sim.config.models.contains(&id) {
        json_ok(&model_info(&id), &request_id)
    } else {
        api_error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("model: {id}"),
            &request_id,
        )
    }
}

async fn not_found(State(sim): State<Arc<SimState>>, uri: Uri) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        &format!("Not found: {}", uri.path()),
        &sim.request_id(),
    )
}
