//! The `AzureSim` handle and its router: Azure's two URL forms in front of one OpenAI-sim
//! state per deployment, with Azure's auth and `api-version` checks.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::config::AzureSimConfig;
use super::entra::{self, TokenEndpoint};
use super::managed_identity;
use super::shape::{self, azure_error, Shape};
use crate::capture::{CapturedRequest, CapturesRequests, RequestLog};
use crate::openai_sim::faults::Fault;
use crate::openai_sim::state::SimState;
use crate::openai_sim::{chat, embeddings, responses};
use crate::serve::spawn_until_stopped;
use crate::{SimConfig, SimStats};

const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// One deployment's simulator state and the Azure-level counter in front of it.
pub(super) struct Deployment {
    pub model: String,
    pub sim: Arc<SimState>,
    /// Requests that reached this deployment (auth and api-version checks passed).
    pub requests: AtomicU64,
}

pub(super) struct AzureState {
    pub config: AzureSimConfig,
    pub deployments: HashMap<String, Deployment>,
    pub entra: TokenEndpoint,
    pub auth_failures: AtomicU64,
    /// The last inference requests (`POST /openai/...`), for `GET /_sim/requests`.
    requests: Arc<RequestLog>,
    shutdown: watch::Sender<bool>,
}

/// A running Azure simulator; dropping it stops the listener.
pub struct AzureSim {
    addr: SocketAddr,
    state: Arc<AzureState>,
}

impl AzureSim {
    pub async fn start(config: AzureSimConfig) -> anyhow::Result<AzureSim> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(config: AzureSimConfig, addr: SocketAddr) -> anyhow::Result<AzureSim> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the Azure simulator to {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the simulator's address")?;
        let deployments = config
            .deployments
            .iter()
            .map(|d| {
                let sim = SimState::new(SimConfig {
                    name: format!("{}/{}", config.name, d.name),
                    ttft: config.ttft,
                    inter_token: config.inter_token,
                    output_tokens: config.output_tokens,
                    api_key: None,
                    rpm_limit: d.rpm,
                    send_rate_limit_headers: true,
                    cached_prompt_tokens: config.cached_prompt_tokens,
                });
                let deployment = Deployment {
                    model: d.model.clone(),
                    sim: Arc::new(sim),
                    requests: AtomicU64::new(0),
                };
                (d.name.clone(), deployment)
            })
            .collect();
        let (shutdown, stop) = watch::channel(false);
        let state = Arc::new(AzureState {
            entra: TokenEndpoint::new(&config),
            config,
            deployments,
            auth_failures: AtomicU64::new(0),
            requests: RequestLog::new(|path| path.starts_with("/openai/")),
            shutdown,
        });
        let app = router(Arc::clone(&state));
        spawn_until_stopped(listener, app, stop, "Azure simulator");
        Ok(AzureSim { addr, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the provider's `endpoint:` (and the fake Entra authority).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for one deployment (each inference request consumes one).
    pub fn push_faults(&self, deployment: &str, faults: impl IntoIterator<Item = Fault>) {
        if let Some(d) = self.state.deployments.get(deployment) {
            d.sim.faults.push(faults);
        }
    }

    /// The OpenAI-sim counters of one deployment.
    pub fn stats(&self, deployment: &str) -> SimStats {
        self.state
            .deployments
            .get(deployment)
            .map(|d| d.sim.stats())
            .unwrap_or_default()
    }

    /// Requests of one deployment whose handler or body is still running (see
    /// `OpenAiSim::in_flight`): how a test sees that the proxy cancelled one.
    pub fn in_flight(&self, deployment: &str) -> u64 {
        self.state
            .deployments
            .get(deployment)
            .map_or(0, |d| d.sim.in_flight())
    }

    /// Requests that reached each deployment, content-filtered ones included.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.state
            .deployments
            .iter()
            .map(|(name, d)| (name.clone(), d.requests.load(Ordering::Relaxed)))
            .collect()
    }

    /// Requests refused for a missing or wrong key or token.
    pub fn auth_failures(&self) -> u64 {
        self.state.auth_failures.load(Ordering::Relaxed)
    }

    /// Token requests the fake Entra endpoint answered (successfully or not).
    pub fn token_requests(&self) -> u64 {
        self.state.entra.requests()
    }

    /// The App Service identity endpoint: the value of `IDENTITY_ENDPOINT`.
    pub fn identity_endpoint(&self) -> String {
        format!("http://{}/msi/token", self.addr)
    }

    /// Makes the fake Entra endpoint answer 500 (`true`) or work again.
    pub fn set_token_endpoint_failing(&self, failing: bool) {
        self.state.entra.set_failing(failing);
    }

    pub fn config(&self) -> &AzureSimConfig {
        &self.state.config
    }
}

impl CapturesRequests for AzureSim {
    fn captured(&self) -> Vec<CapturedRequest> {
        self.state.requests.snapshot()
    }

    fn clear_captured(&self) {
        self.state.requests.clear();
    }
}

impl Drop for AzureSim {
    fn drop(&mut self) {
        let _ = self.state.shutdown.send(true);
        for deployment in self.state.deployments.values() {
            deployment.sim.trigger_shutdown();
        }
    }
}

fn router(state: Arc<AzureState>) -> Router {
    let routes = Router::new()
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(deployments_chat),
        )
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(deployments_embeddings),
        )
        .route("/openai/v1/chat/completions", post(v1_chat))
        .route("/openai/v1/embeddings", post(v1_embeddings))
        .route("/openai/v1/responses", post(v1_responses))
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
        .route(
            "/metadata/identity/oauth2/token",
            get(managed_identity::imds),
        )
        .route("/msi/token", get(managed_identity::app_service))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let requests = &state.requests;
    requests
        .with_reset(requests.attach(routes))
        .with_state(Arc::clone(&state))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operation {
    Chat,
    Embeddings,
    /// The Responses API, only on the v1 form (`/openai/v1/responses`).
    Responses,
}

async fn deployments_chat(
    State(azure): State<Arc<AzureState>>,
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    deployments_form(&azure, &deployment, &uri, headers, body, Operation::Chat).await
}

async fn deployments_embeddings(
    State(azure): State<Arc<AzureState>>,
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    deployments_form(
        &azure,
        &deployment,
        &uri,
        headers,
        body,
        Operation::Embeddings,
    )
    .await
}

async fn v1_chat(
    State(azure): State<Arc<AzureState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    v1_form(&azure, headers, body, Operation::Chat).await
}

async fn v1_embeddings(
    State(azure): State<Arc<AzureState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    v1_form(&azure, headers, body, Operation::Embeddings).await
}

async fn v1_responses(
    State(azure): State<Arc<AzureState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    v1_form(&azure, headers, body, Operation::Responses).await
}

async fn deployments_form(
    azure: &AzureState,
    deployment: &str,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
    operation: Operation,
) -> Response {
    if let Some(refused) = check_auth(azure, &headers, false) {
        return refused;
    }
    let api_version = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("api-version=").filter(|v| !v.is_empty()));
    let Some(api_version) = api_version else {
        return azure_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    // The deployment decides the model; the body's `model` is ignored.
    let body = shape::with_model(&body, deployment);
    serve(azure, deployment, api_version, headers, body, operation).await
}

async fn v1_form(
    azure: &AzureState,
    headers: HeaderMap,
    body: Bytes,
    operation: Operation,
) -> Response {
    if let Some(refused) = check_auth(azure, &headers, true) {
        return refused;
    }
    let Some(deployment) = shape::body_model(&body) else {
        return azure_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The v1 API needs the deployment name as `model`.",
        );
    };
    serve(azure, &deployment, "v1", headers, body, operation).await
}

async fn serve(
    azure: &AzureState,
    deployment: &str,
    api_version: &str,
    headers: HeaderMap,
    body: Bytes,
    operation: Operation,
) -> Response {
    let Some(found) = azure.deployments.get(deployment) else {
        return azure_error(
            StatusCode::NOT_FOUND,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist.",
        );
    };
    found.requests.fetch_add(1, Ordering::Relaxed);
    let shape = Shape::of(&body, &found.model, api_version);
    if shape.filter_prompt {
        return shape::content_filter_400();
    }
    // The deployment's OpenAI simulator does the rest (it checks no key: auth was Azure's,
    // above), and records the headers as they came, for tests.
    let response = match operation {
        Operation::Chat => {
            chat::chat_completions(State(Arc::clone(&found.sim)), headers, body).await
        }
        Operation::Embeddings => {
            embeddings::embeddings(State(Arc::clone(&found.sim)), headers, body).await
        }
        Operation::Responses => {
            responses::responses(State(Arc::clone(&found.sim)), headers, body).await
        }
    };
    shape.apply(response, operation).await
}

/// `api-key: <key>`, or `Authorization: Bearer <Entra token>` (on v1 also the key as bearer).
/// The refusal, if the request may not pass.
fn check_auth(azure: &AzureState, headers: &HeaderMap, v1: bool) -> Option<Response> {
    let config = &azure.config;
    if config.api_key.is_none()
        && config.bearer_token.is_none()
        && config.entra_client_secret.is_none()
        && config.federated_token.is_none()
        && config.identity_header.is_none()
    {
        return None;
    }
    let key = headers.get("api-key").and_then(|v| v.to_str().ok());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let by_key = key.is_some() && key == config.api_key.as_deref();
    let by_token = bearer.is_some()
        && (bearer == config.bearer_token.as_deref()
            || bearer.is_some_and(|token| azure.entra.accepts(token))
            || (v1 && bearer == config.api_key.as_deref()));
    if by_key || by_token {
        return None;
    }
    azure.auth_failures.fetch_add(1, Ordering::Relaxed);
    Some(azure_error(
        StatusCode::UNAUTHORIZED,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
    ))
}

async fn not_found() -> Response {
    azure_error(StatusCode::NOT_FOUND, "404", "Resource not found")
}
