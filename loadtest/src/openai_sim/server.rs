//! The `OpenAiSim` handle: binds, serves the router in a spawned task, and
//! exposes faults, stats, captured requests and shutdown to the test or binary that owns it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderName;
use axum::middleware::map_response_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;

use super::config::SimConfig;
use super::faults::Fault;
use super::latency::LatencyJitter;
use super::state::{SimState, SimStats};
use super::{chat, control, embeddings, models, responses};
use crate::capture::{CapturedRequest, CapturesRequests};

/// Request bodies up to this size are accepted (images and long prompts included).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// A running simulator. Dropping it (or calling [`shutdown`](Self::shutdown))
/// stops the listener and ends every pending answer, hangs included.
pub struct OpenAiSim {
    addr: SocketAddr,
    state: Arc<SimState>,
}

impl OpenAiSim {
    /// Starts a simulator on `127.0.0.1` with a free port.
    pub async fn start(config: SimConfig) -> anyhow::Result<OpenAiSim> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a simulator on `addr` (port 0 picks a free one).
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> anyhow::Result<OpenAiSim> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the simulator to {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the simulator's address")?;
        let state = Arc::new(SimState::new(config));
        let app = router(Arc::clone(&state));
        let stop = state.shutdown_signal();
        let name = state.config.name.clone();
        // Streams are latency-sensitive: without NODELAY, Nagle holds small SSE frames back.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(sim = %name, %error, "simulator server stopped with an error");
            }
        });
        Ok(OpenAiSim { addr, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`, the base URL an OpenAI client expects.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues faults; each inference request (chat, Responses or embeddings) consumes one.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.push(faults);
    }

    /// Applies `fault` to every inference request (when none is queued) until cleared with `None`.
    pub fn set_sticky_fault(&self, fault: Option<Fault>) {
        self.state.faults.set_sticky(fault);
    }

    /// Varies the time to first token per request and paces whole answers (`None`: fixed).
    pub fn set_latency_jitter(&self, jitter: Option<LatencyJitter>) {
        self.state.set_jitter(jitter);
    }

    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// Zeroes the counters, forgets the last and the captured requests and restarts the
    /// rate-limit window.
    pub fn reset_stats(&self) {
        self.state.reset_stats();
    }

    /// Requests whose handler or body is still running (hangs and stalls included);
    /// it drops back when clients disconnect, which is how tests check for leaks.
    pub fn in_flight(&self) -> u64 {
        self.state.in_flight()
    }

    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    pub fn shutdown(self) {
        // Drop does the work.
    }
}

impl CapturesRequests for OpenAiSim {
    fn captured(&self) -> Vec<CapturedRequest> {
        self.state.requests.snapshot()
    }

    fn clear_captured(&self) {
        self.state.requests.clear();
    }
}

impl Drop for OpenAiSim {
    fn drop(&mut self) {
        self.state.trigger_shutdown();
    }
}

fn router(state: Arc<SimState>) -> Router {
    let routes = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/responses", post(responses::responses))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{model}", get(models::retrieve))
        .route("/_sim/faults", post(control::faults))
        .route("/_sim/stats", get(control::stats))
        .route("/_sim/reset", post(control::reset))
        .fallback(models::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    state
        .requests
        .attach(routes)
        .layer(map_response_with_state(Arc::clone(&state), name_header))
        .with_state(state)
}

/// `x-sim-name` on every response, so a test can tell which upstream answered.
async fn name_header(State(sim): State<Arc<SimState>>, mut response: Response) -> Response {
    if let Some(name) = &sim.name_header {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-sim-name"), name.clone());
    }
    response
}
