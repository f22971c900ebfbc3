//! A Bedrock Runtime simulator: Converse, ConverseStream (real AWS event-stream framing) and
//! InvokeModel for Titan / Cohere embeddings, behind real SigV4 verification (or a Bedrock API
//! key as a bearer token; temporary credentials from the identity simulator's [`Keyring`]
//! are checked for their session token and expiry), Bedrock's
//! validation rules and scriptable faults (429 throttling, 500, 503, exception frames, latency,
//! garbage, streams cut or stalled after some content), and optional prompt-cache usage.

pub mod claude;
pub mod converse;
pub mod deliver;
pub mod frames;
pub mod sigv4;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::capture::{CapturedRequest, CapturesRequests, RequestLog};
use crate::identity_sim::{KeyRefusal, Keyring};
use crate::serve::{lock, spawn_until_stopped};
use converse::Answer;
use deliver::{body_response, Ending, InFlight, InFlightCounter};

/// Who the simulator believes in and where it pretends to be.
#[derive(Debug, Clone)]
pub struct BedrockSimConfig {
    /// Names the answers (`"<name> says: …"`) so a test can tell simulators apart.
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// Delay before each stream frame and before a complete answer.
    pub latency: Duration,
    /// Reported in every answer's usage as `cacheReadInputTokens` / `cacheWriteInputTokens`
    /// (beside `inputTokens`, which excludes them), as Bedrock does for prompts with cache
    /// points; 0 leaves the field out.
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Bedrock API keys accepted as `Authorization: Bearer <key>` instead of a signature.
    pub api_keys: Vec<String>,
    /// More keys accepted besides `access_key_id`: temporary credentials an identity
    /// simulator issues (with their session token and expiry).
    pub keyring: Keyring,
}

impl BedrockSimConfig {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            access_key_id: "AKIDSIMULATOR".to_owned(),
            secret_access_key: "sim/secret/key".to_owned(),
            region: "us-east-1".to_owned(),
            latency: Duration::ZERO,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            api_keys: Vec::new(),
            keyring: Keyring::default(),
        }
    }
}

/// A scripted misbehaviour; each model request consumes one queued fault.
#[derive(Debug, Clone, PartialEq)]
pub enum BedrockFault {
    /// HTTP 429 `ThrottlingException`.
    Throttle,
    /// HTTP 503 `ServiceUnavailableException`.
    Unavailable,
    /// HTTP 500 `InternalServerException`.
    Internal,
    /// 200 whose body is not JSON (Converse) or not event-stream frames (ConverseStream).
    Garbage,
    /// Converse: 200 whose body is JSON but not a Converse answer (an error message).
    WrongShape,
    /// A stream: `messageStart` and that many content frames, then the connection is cut.
    /// Converse: the headers and half the body, then the cut.
    DropMidStream { after_chunks: usize },
    /// As `DropMidStream`, but then nothing more is sent (until the client leaves).
    StallMidStream { after_chunks: usize },
    /// A stream: `messageStart`, then a `throttlingException` frame before any content.
    ThrottleBeforeContent,
    /// A stream: some text, then a `throttlingException` frame.
    ThrottleMidStream,
    /// Answer normally after this extra delay.
    Latency(Duration),
}

/// What the simulator saw.
#[derive(Debug, Clone, Default)]
pub struct BedrockSimStats {
    pub requests: u64,
    pub signature_failures: u64,
    pub validation_failures: u64,
    /// The last model request's path (as sent, percent-encoded) and JSON body.
    pub last_path: Option<String>,
    pub last_body: Option<Value>,
    /// Who each accepted model request came from, in order: the access key id that signed
    /// it, or `bearer:<key>` for a Bedrock API key.
    pub callers: Vec<String>,
}

struct SimState {
    claude: claude::Claude,
    config: BedrockSimConfig,
    faults: Mutex<VecDeque<BedrockFault>>,
    stats: Mutex<BedrockSimStats>,
    counter: AtomicU64,
    in_flight: Arc<InFlightCounter>,
    /// The last model requests (`POST /model/...`), for `GET /_sim/requests`.
    requests: Arc<RequestLog>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// A running simulator; dropping it stops the listener.
pub struct BedrockSim {
    addr: SocketAddr,
    state: Arc<SimState>,
}

impl BedrockSim {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: BedrockSimConfig) -> anyhow::Result<BedrockSim> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(
        config: BedrockSimConfig,
        addr: SocketAddr,
    ) -> anyhow::Result<BedrockSim> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the Bedrock simulator to {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the simulator's address")?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let state = Arc::new(SimState {
            claude: claude::Claude::new(&config.name),
            config,
            faults: Mutex::new(VecDeque::new()),
            stats: Mutex::new(BedrockSimStats::default()),
            counter: AtomicU64::new(0),
            in_flight: Arc::default(),
            requests: RequestLog::new(|path| path.starts_with("/model/")),
            stop,
        });
        let routes = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(32 * 1024 * 1024));
        let requests = &state.requests;
        let app = requests
            .with_reset(requests.attach(routes))
            .with_state(Arc::clone(&state));
        spawn_until_stopped(listener, app, stopped, "Bedrock simulator");
        Ok(BedrockSim { addr, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the `endpoint` of a bedrock provider in routes.yaml.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &BedrockSimConfig {
        &self.state.config
    }

    pub fn push_faults(&self, faults: impl IntoIterator<Item = BedrockFault>) {
        lock(&self.state.faults).extend(faults);
    }

    pub fn stats(&self) -> BedrockSimStats {
        lock(&self.state.stats).clone()
    }

    /// Model requests whose handler or answer body is still running (stalls included); it
    /// drops back when clients disconnect, which is how tests see an upstream cancelled.
    pub fn in_flight(&self) -> u64 {
        self.state.in_flight.get()
    }
}

impl CapturesRequests for BedrockSim {
    fn captured(&self) -> Vec<CapturedRequest> {
        self.state.requests.snapshot()
    }

    fn clear_captured(&self) {
        self.state.requests.clear();
    }
}

impl Drop for BedrockSim {
    fn drop(&mut self) {
        let _ = self.state.stop.send(true);
    }
}

/// Bedrock's error answer: status, `x-amzn-ErrorType`, `{"message"}`.
fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header(
            "x-amzn-errortype",
            format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
        .body(Body::from(json!({"message": message}).to_string()))
        .unwrap_or_default()
}

fn json_response(value: &Value) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap_or_default()
}

/// `/model/{id}/{operation}` → (decoded id, operation).
fn route(path: &str) -> Option<(String, &str)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, op) = rest.rsplit_once('/')?;
    Some((percent_decode(id)?, op))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn handle(
    State(sim): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let config = &sim.config;
    let caller = match authenticate(config, &path, &headers, &body) {
        Ok(caller) => caller,
        Err(error) => {
            lock(&sim.stats).signature_failures += 1;
            return aws_error(StatusCode::FORBIDDEN, error.error_type, &error.message);
        }
    };
    let Some((model_id, op)) = route(&path) else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "unknown operation",
        );
    };
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the body is not JSON",
        );
    };
    {
        let mut stats = lock(&sim.stats);
        stats.requests += 1;
        stats.last_path = Some(path.clone());
        stats.last_body = Some(value.clone());
        stats.callers.push(caller);
    }
    let guard = sim.in_flight.enter();
    let fault = lock(&sim.faults).pop_front();
    let mut delay = config.latency;
    match fault {
        Some(BedrockFault::Throttle) => {
            return aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            )
        }
        Some(BedrockFault::Unavailable) => {
            return aws_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                "Bedrock is unable to process your request.",
            )
        }
        Some(BedrockFault::Internal) => {
            return aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "The server encountered an internal error (simulated).",
            )
        }
        Some(BedrockFault::Latency(extra)) => delay += extra,
        _ => {}
    }
    match op {
        op if claude::handles(&model_id, op) => {
            claude::respond(&sim, &model_id, op, value, fault, delay, guard).await
        }
        "converse" | "converse-stream" => {
            if let Err(message) = converse::validate(&value) {
                lock(&sim.stats).validation_failures += 1;
                return aws_error(StatusCode::BAD_REQUEST, "ValidationException", &message);
            }
            let n = sim.counter.fetch_add(1, Ordering::Relaxed);
            let answer = converse::answer(&config.name, &value, n);
            let usage = with_cache(converse::usage(&value, &answer), config);
            if op == "converse" {
                tokio::time::sleep(delay).await;
                return converse_response(&sim, &answer, usage, fault, guard);
            }
            stream_response(&sim, &answer, usage, fault, delay, guard)
        }
        "invoke" => {
            tokio::time::sleep(delay).await;
            invoke_embeddings(&model_id, &value)
        }
        _ => aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "unknown operation",
        ),
    }
}

/// Who sent the request: a known Bedrock API key (`bearer:<key>`), or the access key id of
/// a valid signature by the configured pair or a key of the keyring.
fn authenticate(
    config: &BedrockSimConfig,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, sigv4::SignatureError> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(key) = bearer {
        return match config.api_keys.iter().any(|k| k == key) {
            true => Ok(format!("bearer:{key}")),
            false => Err(sigv4::SignatureError {
                error_type: "UnrecognizedClientException",
                message: "Invalid API Key format: Must start with pre-defined prefix".to_owned(),
            }),
        };
    }
    let secret_of = |key: &str, token: Option<&str>| {
        if key == config.access_key_id {
            return Ok(config.secret_access_key.clone());
        }
        config
            .keyring
            .check(key, token, std::time::SystemTime::now())
            .map_err(|refusal| sigv4::SignatureError {
                error_type: match refusal {
                    KeyRefusal::Expired => "ExpiredTokenException",
                    KeyRefusal::Unknown | KeyRefusal::WrongToken => "UnrecognizedClientException",
                },
                message: match refusal {
                    KeyRefusal::Expired => "The security token included in the request is expired",
                    KeyRefusal::Unknown | KeyRefusal::WrongToken => {
                        "The security token included in the request is invalid."
                    }
                }
                .to_owned(),
            })
    };
    let scope = sigv4::Scope {
        region: &config.region,
        service: "bedrock",
    };
    sigv4::verify_by(&secret_of, scope, path, headers, body)
}

/// Adds the configured cache reads and writes to a Converse usage object.
fn with_cache(mut usage: Value, config: &BedrockSimConfig) -> Value {
    let (read, write) = (config.cache_read_tokens, config.cache_write_tokens);
    if read > 0 {
        usage["cacheReadInputTokens"] = json!(read);
    }
    if write > 0 {
        usage["cacheWriteInputTokens"] = json!(write);
    }
    let total = usage["totalTokens"].as_u64().unwrap_or(0);
    usage["totalTokens"] = json!(total + read + write);
    usage
}

/// The Converse answer, or what a fault leaves of it.
fn converse_response(
    sim: &SimState,
    answer: &Answer,
    usage: Value,
    fault: Option<BedrockFault>,
    guard: InFlight,
) -> Response {
    let body = Bytes::from(converse::converse_body(answer, usage).to_string());
    let (bytes, ending) = match fault {
        Some(BedrockFault::Garbage) => (deliver::garbage_json(&sim.config.name), Ending::Complete),
        Some(BedrockFault::WrongShape) => (deliver::wrong_shape_json(), Ending::Complete),
        Some(BedrockFault::DropMidStream { .. }) => (deliver::first_half(&body), Ending::Abort),
        Some(BedrockFault::StallMidStream { .. }) => (deliver::first_half(&body), Ending::Stall),
        _ => (body, Ending::Complete),
    };
    let stop = sim.stop.subscribe();
    body_response(
        "application/json",
        vec![(Duration::ZERO, bytes)],
        ending,
        guard,
        stop,
    )
}

fn stream_response(
    sim: &SimState,
    answer: &Answer,
    usage: Value,
    fault: Option<BedrockFault>,
    delay: Duration,
    guard: InFlight,
) -> Response {
    let all = frames::answer_frames(answer, usage);
    // messageStart, then that many content frames.
    let cut = |after_chunks: usize| all[..(1 + after_chunks).min(all.len())].to_vec();
    let (frames, ending) = match fault {
        Some(BedrockFault::ThrottleBeforeContent) => (
            vec![
                frames::event("messageStart", &json!({"role": "assistant"})),
                frames::exception(
                    "throttlingException",
                    "Too many requests, please wait before trying again.",
                ),
            ],
            Ending::Complete,
        ),
        Some(BedrockFault::ThrottleMidStream) => {
            let mut some = cut(2);
            some.push(frames::exception(
                "throttlingException",
                "Too many tokens, please wait before trying again.",
            ));
            (some, Ending::Complete)
        }
        Some(BedrockFault::DropMidStream { after_chunks }) => (cut(after_chunks), Ending::Abort),
        Some(BedrockFault::StallMidStream { after_chunks }) => (cut(after_chunks), Ending::Stall),
        Some(BedrockFault::Garbage) => {
            (deliver::garbage_frames(&sim.config.name), Ending::Complete)
        }
        _ => (all.clone(), Ending::Complete),
    };
    // Each frame goes out in two network writes, split mid-frame, so clients must reassemble;
    // the delay comes before each frame's first half.
    let mut chunks = Vec::with_capacity(frames.len() * 2);
    for frame in frames {
        let half = frame.len() / 2;
        chunks.push((delay, frame.slice(..half)));
        chunks.push((Duration::ZERO, frame.slice(half..)));
    }
    let stop = sim.stop.subscribe();
    body_response(
        "application/vnd.amazon.eventstream",
        chunks,
        ending,
        guard,
        stop,
    )
}

/// A deterministic unit-ish vector for `text`.
fn vector(text: &str, dims: usize) -> Vec<f64> {
    let seed = text
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    (0..dims)
        .map(|i| (((seed.wrapping_add(i as u64 * 2_654_435_761)) % 2000) as f64 / 1000.0) - 1.0)
        .collect()
}

fn invoke_embeddings(model_id: &str, body: &Value) -> Response {
    if model_id.contains("titan-embed") {
        let Some(text) = body["inputText"].as_str() else {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "inputText is required",
            );
        };
        let dims = body["dimensions"].as_u64().unwrap_or(1024) as usize;
        let tokens = text.split_whitespace().count().max(1);
        return json_response(
            &json!({"embedding": vector(text, dims), "inputTextTokenCount": tokens}),
        );
    }
    if model_id.contains("cohere.embed") {
        let Some(texts) = body["texts"].as_array() else {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "texts is required",
            );
        };
        let vectors: Vec<Vec<f64>> = texts
            .iter()
            .map(|t| vector(t.as_str().unwrap_or_default(), 1024))
            .collect();
        return json_response(
            &json!({"embeddings": vectors, "id": "sim", "response_type": "embeddings_floats", "texts": texts}),
        );
    }
    aws_error(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        "this model does not support InvokeModel embeddings in the simulator",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_reads_and_writes_are_reported_beside_input_tokens() {
        let usage = json!({"inputTokens": 10, "outputTokens": 5, "totalTokens": 15});
        let config = BedrockSimConfig {
            cache_read_tokens: 64,
            cache_write_tokens: 32,
            ..BedrockSimConfig::new("s")
        };
        assert_eq!(
            with_cache(usage.clone(), &config),
            json!({"inputTokens": 10, "outputTokens": 5, "totalTokens": 111,
                   "cacheReadInputTokens": 64, "cacheWriteInputTokens": 32})
        );
        assert_eq!(
            with_cache(usage.clone(), &BedrockSimConfig::new("s")),
            usage
        );
    }

    fn signed(access_key: &str, secret: &str, token: Option<&str>) -> HeaderMap {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        use aws_smithy_runtime_api::client::identity::Identity;
        let identity = Identity::from(Credentials::new(
            access_key,
            secret,
            token.map(str::to_owned),
            None,
            "test",
        ));
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("bedrock")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:1".parse().unwrap());
        let pairs = vec![("host", "127.0.0.1:1")];
        let request = SignableRequest::new(
            "POST",
            "http://127.0.0.1:1/model/m/converse",
            pairs.into_iter(),
            SignableBody::Bytes(b"{}"),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let (added, _) = instructions.into_parts();
        for header in added {
            headers.insert(header.name(), header.value().parse().unwrap());
        }
        headers
    }

    #[test]
    fn requests_authenticate_by_api_key_static_pair_or_keyring() {
        use crate::identity_sim::KnownKey;
        let keyring = Keyring::default();
        let now = std::time::SystemTime::now();
        keyring.trust(
            "ASIALIVE",
            KnownKey {
                secret_access_key: "live-secret".into(),
                session_token: Some("live-token".into()),
                expires: Some(now + Duration::from_secs(60)),
            },
        );
        keyring.trust(
            "ASIAOLD",
            KnownKey {
                secret_access_key: "old-secret".into(),
                session_token: Some("old-token".into()),
                expires: Some(now - Duration::from_secs(1)),
            },
        );
        let config = BedrockSimConfig {
            api_keys: vec!["ABSKgood".into()],
            keyring,
            ..BedrockSimConfig::new("s")
        };
        let auth = |headers: &HeaderMap| authenticate(&config, "/model/m/converse", headers, b"{}");
        let mut bearer = HeaderMap::new();
        bearer.insert("authorization", "Bearer ABSKgood".parse().unwrap());
        assert_eq!(auth(&bearer), Ok("bearer:ABSKgood".to_owned()));
        bearer.insert("authorization", "Bearer ABSKbad".parse().unwrap());
        assert_eq!(
            auth(&bearer).unwrap_err().error_type,
            "UnrecognizedClientException"
        );

        let pair = signed(&config.access_key_id, &config.secret_access_key, None);
        assert_eq!(auth(&pair), Ok(config.access_key_id.clone()));
        let live = signed("ASIALIVE", "live-secret", Some("live-token"));
        assert_eq!(auth(&live), Ok("ASIALIVE".to_owned()));
        let wrong_token = signed("ASIALIVE", "live-secret", Some("other-token"));
        assert_eq!(
            auth(&wrong_token).unwrap_err().error_type,
            "UnrecognizedClientException"
        );
        let wrong_secret = signed("ASIALIVE", "guessed", Some("live-token"));
        assert_eq!(
            auth(&wrong_secret).unwrap_err().error_type,
            "InvalidSignatureException"
        );
        let expired = signed("ASIAOLD", "old-secret", Some("old-token"));
        assert_eq!(
            auth(&expired).unwrap_err().error_type,
            "ExpiredTokenException"
        );
    }
}
