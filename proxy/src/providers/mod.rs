//! Provider adapters: turn a client request into one upstream's HTTP request, and its answer
//! back into OpenAI's format. Dispatch is a closed `match` on the provider kind; translation is
//! pure and synchronous so it is unit-tested with plain inputs.

pub mod azure;
pub mod bedrock;
pub mod encode;
mod metered;
pub mod openai;
pub mod registry;
pub mod runtime;

pub use runtime::ProviderRuntime;

use bytes::Bytes;
use thiserror::Error;

use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::config::{AzureAuth, ProviderKind, Target};
use crate::metering::Usage;

pub use crate::upstream::UpstreamRequest;

/// A client request as it travels through the attempt loop.
#[derive(Debug, Clone)]
pub enum Operation {
    Chat(ChatRequest),
    Embeddings(EmbeddingsRequest),
}

impl Operation {
    pub fn client_model(&self) -> &str {
        match self {
            Operation::Chat(chat) => &chat.model,
            Operation::Embeddings(embeddings) => &embeddings.model,
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Operation::Chat(chat) if chat.is_stream())
    }

    pub fn prompt_bytes(&self) -> usize {
        match self {
            Operation::Chat(chat) => chat.prompt_bytes(),
            Operation::Embeddings(embeddings) => embeddings.input_bytes(),
        }
    }
}

/// A translation that cannot be made; the client gets a 400 naming the field, or the
/// target is skipped when the failure is the upstream's.
#[derive(Debug, Error, PartialEq)]
pub enum TranslateError {
    #[error("provider kind `{0}` cannot serve this request yet")]
    Unsupported(&'static str),
    #[error("the upstream's answer is not valid: {0}")]
    BadUpstreamBody(String),
    #[error("invalid header value for {0}")]
    BadHeader(&'static str),
    /// The client's request cannot be expressed for this target: a 400 naming `param`
    /// when no other target can serve it.
    #[error("{message}")]
    Refused { param: String, message: String },
    #[error("could not sign the upstream request: {0}")]
    Signing(String),
    /// Credentials are resolved in the background and are not (yet) usable.
    #[error("{0}")]
    MissingCredentials(String),
    #[error("provider `{provider}` has no usable credential: {reason}")]
    CredentialUnavailable { provider: String, reason: String },
}

/// Builds the upstream request of `operation` for `target`. `runtime` holds credentials
/// that are refreshed in the background; building never waits for them.
pub fn build_request(
    target: &Target,
    operation: &Operation,
    request_id: &str,
    runtime: &ProviderRuntime,
) -> Result<UpstreamRequest, TranslateError> {
    match &target.provider.kind {
        ProviderKind::OpenAi(openai::config::Settings { base_url, api_key }) => {
            openai::build_request(base_url, api_key.as_ref(), target, operation, request_id)
        }
        ProviderKind::Azure(azure::config::Settings {
            endpoint,
            auth,
            api_version,
        }) => {
            let token;
            let credential = match auth {
                AzureAuth::ApiKey(key) => azure::Credential::ApiKey(key),
                AzureAuth::Entra(_) => {
                    let name = &target.provider.name;
                    token = runtime
                        .entra
                        .current(name, tokio::time::Instant::now())
                        .map_err(|reason| TranslateError::CredentialUnavailable {
                            provider: name.clone(),
                            reason,
                        })?;
                    azure::Credential::Bearer(&token.token)
                }
            };
            azure::build_request(
                endpoint,
                api_version,
                credential,
                target,
                operation,
                request_id,
            )
        }
        ProviderKind::Bedrock(_) => {
            let mut requests = bedrock::build_requests(target, operation, runtime)?;
            match (requests.pop(), requests.is_empty()) {
                (Some(request), true) => Ok(request),
                _ => Err(TranslateError::Unsupported("bedrock fan-out")),
            }
        }
    }
}

/// Like [`build_request`], for operations a provider serves with several upstream calls
/// (Titan embeddings take one text per call). The attempt loop sends them concurrently and
/// hands every answer, in order, to [`translate_parts`].
pub fn build_requests(
    target: &Target,
    operation: &Operation,
    request_id: &str,
    runtime: &ProviderRuntime,
) -> Result<Vec<UpstreamRequest>, TranslateError> {
    match &target.provider.kind {
        ProviderKind::Bedrock(_) => bedrock::build_requests(target, operation, runtime),
        _ => build_request(target, operation, request_id, runtime).map(|r| vec![r]),
    }
}

/// Translates the answers of [`build_requests`]' calls, in order.
pub fn translate_parts(
    target: &Target,
    operation: &Operation,
    bodies: &[Bytes],
) -> Result<(Vec<u8>, Option<Usage>), TranslateError> {
    match (&target.provider.kind, bodies) {
        (ProviderKind::Bedrock(_), _) => bedrock::translate_full(target, operation, bodies),
        (_, [body]) => translate_full(target, operation, body),
        _ => Err(TranslateError::BadUpstreamBody(
            "expected exactly one answer".to_owned(),
        )),
    }
}

/// Translates a complete (non-streaming) 2xx answer into the client's OpenAI body and usage.
pub fn translate_full(
    target: &Target,
    operation: &Operation,
    body: &[u8],
) -> Result<(Vec<u8>, Option<Usage>), TranslateError> {
    match &target.provider.kind {
        ProviderKind::OpenAi(_) => openai::translate_full(operation.client_model(), body),
        ProviderKind::Azure(_) => azure::translate_full(operation.client_model(), body),
        ProviderKind::Bedrock(_) => {
            bedrock::translate_full(target, operation, &[Bytes::copy_from_slice(body)])
        }
    }
}

/// Per-stream translation state, one variant per provider wire format.
#[derive(Debug)]
pub enum StreamTranslator {
    OpenAi(openai::StreamState),
    /// Boxed: Azure's re-stamping state is larger than the other variants.
    Azure(Box<azure::StreamState>),
    Bedrock(bedrock::stream::StreamState),
}

/// One event of an upstream stream, decoded from its wire framing.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamEvent {
    /// The data of one SSE event (OpenAI-format upstreams).
    Sse(String),
    /// One AWS event-stream frame (Bedrock ConverseStream).
    Frame(bedrock::eventstream::Frame),
}

/// Incremental decoder of an upstream stream's framing: bytes in, whole events out.
#[derive(Debug)]
pub enum UpstreamDecoder {
    Sse(crate::api::sse::SseDecoder),
    EventStream(bedrock::eventstream::FrameDecoder),
}

impl UpstreamDecoder {
    /// Feeds bytes; returns the events they completed, or why the stream is unreadable.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<UpstreamEvent>, String> {
        match self {
            UpstreamDecoder::Sse(decoder) => decoder
                .push(bytes)
                .map(|events| events.into_iter().map(UpstreamEvent::Sse).collect())
                .map_err(|e| e.to_string()),
            UpstreamDecoder::EventStream(decoder) => decoder
                .push(bytes)
                .map(|frames| frames.into_iter().map(UpstreamEvent::Frame).collect())
                .map_err(|e| e.to_string()),
        }
    }
}

/// What one upstream stream event becomes for the client.
#[derive(Debug, PartialEq)]
pub enum StreamStep {
    /// Send these bytes (one or more complete SSE events).
    Emit(Bytes),
    /// Nothing to send for this event.
    Skip,
    /// The upstream finished the stream properly.
    Done,
    /// Send these bytes; then the upstream has finished the stream properly.
    Last(Bytes),
    /// The upstream reported an error inside the stream.
    Failed(UpstreamStreamError),
}

/// An error event an upstream sent inside a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamStreamError {
    pub message: String,
    pub code: Option<String>,
    /// Throttling-like errors, which may fail over when no byte reached the client yet.
    pub capacity: bool,
}

impl StreamTranslator {
    pub fn new(target: &Target, chat: &ChatRequest) -> Result<Self, TranslateError> {
        match &target.provider.kind {
            ProviderKind::OpenAi(_) => Ok(StreamTranslator::OpenAi(openai::StreamState::new(
                &chat.model,
                chat.client_wants_stream_usage(),
            ))),
            ProviderKind::Azure(_) => Ok(StreamTranslator::Azure(Box::new(
                azure::StreamState::new(&chat.model, chat.client_wants_stream_usage()),
            ))),
            ProviderKind::Bedrock(_) => Ok(StreamTranslator::Bedrock(bedrock::stream_state(chat))),
        }
    }

    /// The decoder for this upstream's stream framing.
    pub fn decoder(&self) -> UpstreamDecoder {
        match self {
            StreamTranslator::OpenAi(_) | StreamTranslator::Azure(_) => {
                UpstreamDecoder::Sse(crate::api::sse::SseDecoder::new())
            }
            StreamTranslator::Bedrock(_) => {
                UpstreamDecoder::EventStream(bedrock::eventstream::FrameDecoder::new())
            }
        }
    }

    /// Translates one upstream event.
    pub fn on_event(&mut self, event: &UpstreamEvent) -> StreamStep {
        match (self, event) {
            (StreamTranslator::OpenAi(state), UpstreamEvent::Sse(data)) => state.on_event(data),
            (StreamTranslator::Azure(state), UpstreamEvent::Sse(data)) => state.on_event(data),
            (StreamTranslator::Bedrock(state), UpstreamEvent::Frame(frame)) => {
                state.on_frame(frame)
            }
            _ => StreamStep::Failed(UpstreamStreamError {
                message: "the upstream's stream framing does not match its provider".to_owned(),
                code: Some("upstream_error".to_owned()),
                capacity: false,
            }),
        }
    }

    /// Usage reported by the upstream so far.
    pub fn usage(&self) -> Option<Usage> {
        match self {
            StreamTranslator::OpenAi(state) => state.usage,
            StreamTranslator::Azure(state) => state.usage(),
            StreamTranslator::Bedrock(state) => state.usage,
        }
    }

    /// Content deltas relayed so far (the basis of an estimate when usage never came).
    pub fn content_deltas(&self) -> u64 {
        match self {
            StreamTranslator::OpenAi(state) => state.content_deltas,
            StreamTranslator::Azure(state) => state.content_deltas(),
            StreamTranslator::Bedrock(state) => state.content_deltas,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the providers' stream tests.

    use super::StreamStep;
    use serde_json::Value;

    /// The JSON chunk of an emitted SSE event (panics on any other step).
    pub fn emitted(step: StreamStep) -> Value {
        match step {
            StreamStep::Emit(bytes) => {
                let text = std::str::from_utf8(&bytes).unwrap();
                serde_json::from_str(text.strip_prefix("data: ").unwrap().trim_end()).unwrap()
            }
            other => panic!("expected Emit, got {other:?}"),
        }
    }
}
