//! Providers: each turns an operation into its upstream's HTTP request(s) and reads the
//! answers back. One API for every kind, dispatched here by a closed `match`:
//!
//! - [`build_requests`]: the upstream request(s) of an operation (several when a provider
//!   fans out, e.g. Titan embeddings take one text per call);
//! - [`decode_answer`]: complete answers → [`Decoded`]: a typed [`model::Answer`] that the
//!   client's dialect encodes, or a body already in the client's dialect (pass-through);
//! - [`StreamDecoder`]: one stream's events → [`StreamStep`]s: typed [`model::StreamEvent`]s,
//!   or bytes already in the client's dialect.
//!
//! Translation is pure and synchronous so it is unit-tested with plain inputs.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod capabilities;
pub mod count;
pub mod encode;
mod metered;
pub mod native_responses;
pub mod openai;
pub mod registry;
pub mod responses_turn;
pub mod runtime;

pub use runtime::ProviderRuntime;

use bytes::Bytes;
use thiserror::Error;

use crate::api::embeddings::EmbeddingsRequest;
use crate::config::{AzureAuth, ProviderKind, Target};
use crate::metering::Usage;
use crate::model;

pub use crate::upstream::UpstreamRequest;

/// A generation request as it travels through the attempt loop: the model, and the client's
/// body for upstreams that speak the client's dialect (forwarded with only the model renamed).
#[derive(Debug, Clone)]
pub struct Generation {
    pub request: model::Request,
    /// The body as the client sent it, in `request.dialect`.
    pub body: Bytes,
    /// The `anthropic-beta` flags the client sent (header values split at commas, in order):
    /// forwarded to upstreams that take them (Anthropic; Claude on Bedrock as `anthropic_beta`).
    pub betas: Vec<String>,
    /// A Responses turn's routing facts (built-in tools, whose reasoning it replays);
    /// `None` for other dialects.
    pub responses: Option<std::sync::Arc<crate::dialects::responses::TurnContext>>,
}

/// A client request as it travels through the attempt loop.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Boxed: the model is much larger than an embeddings request.
    Generate(Box<Generation>),
    Embeddings(EmbeddingsRequest),
    /// `POST /v1/messages/count_tokens`: the prompt of a generation, counted by the upstream
    /// (`count.rs`) and never generated; free, so nothing is reserved against a budget.
    CountTokens(Box<Generation>),
}

impl Operation {
    pub fn client_model(&self) -> &str {
        match self {
            Operation::Generate(generation) | Operation::CountTokens(generation) => {
                &generation.request.model
            }
            Operation::Embeddings(embeddings) => &embeddings.model,
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Operation::Generate(generation) if generation.request.stream)
    }

    pub fn prompt_bytes(&self) -> usize {
        match self {
            Operation::Generate(generation) | Operation::CountTokens(generation) => {
                generation.request.prompt_bytes()
            }
            Operation::Embeddings(embeddings) => embeddings.input_bytes(),
        }
    }

    /// The client's cap on output tokens (embeddings and counts produce none).
    pub fn max_output_tokens(&self) -> Option<u32> {
        match self {
            Operation::Generate(generation) => generation.request.max_output_tokens,
            Operation::Embeddings(_) | Operation::CountTokens(_) => Some(0),
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
    /// A 2xx answer that is not one (e.g. an error object in a 200), classified by the
    /// provider: the attempt failed as if the upstream had said so with its status. Boxed:
    /// the failure is much larger than the other variants.
    #[error("{}", .0.detail)]
    NotAnAnswer(Box<crate::upstream::AttemptFailure>),
}

/// Builds the upstream request(s) of `operation` for `target`: one, or several that the
/// attempt loop sends concurrently and hands, in order, to [`decode_answer`]. `runtime` holds
/// credentials that are refreshed in the background; building never waits for them.
pub fn build_requests(
    target: &Target,
    operation: &Operation,
    request_id: &str,
    runtime: &ProviderRuntime,
) -> Result<Vec<UpstreamRequest>, TranslateError> {
    let adapted = responses_turn::adapt(target, operation, request_id)?;
    let operation = adapted.as_ref().unwrap_or(operation);
    capabilities::check(target, operation)?;
    if let Operation::CountTokens(generation) = operation {
        return count::build_request(target, generation, runtime).map(|r| vec![r]);
    }
    match &target.provider.kind {
        ProviderKind::OpenAi(openai::config::Settings {
            base_url, api_key, ..
        }) => openai::build_request(base_url, api_key.as_ref(), target, operation, request_id)
            .map(|r| vec![r]),
        ProviderKind::Azure(azure::config::Settings {
            endpoint,
            auth,
            api_version,
            ..
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
            .map(|r| vec![r])
        }
        ProviderKind::Bedrock(_) => bedrock::build_requests(target, operation, runtime),
        ProviderKind::Anthropic(settings) => {
            anthropic::build_request(settings, &target.upstream_model, operation).map(|r| vec![r])
        }
    }
}

/// A complete answer, read.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// The answer in the proxy's model; the client's dialect writes it out.
    Answer(model::Answer),
    /// A body already in the client's dialect (pass-through, embeddings), and its usage
    /// (`None` when the upstream reported none).
    Body { body: Bytes, usage: Option<Usage> },
}

/// Reads the complete (non-streaming) 2xx answers of [`build_requests`]' calls, in order.
pub fn decode_answer(
    target: &Target,
    operation: &Operation,
    bodies: &[Bytes],
) -> Result<Decoded, TranslateError> {
    if let Operation::CountTokens(_) = operation {
        return count::decode_answer(target, bodies);
    }
    match &target.provider.kind {
        ProviderKind::Bedrock(_) => bedrock::decode_answer(target, operation, bodies),
        ProviderKind::Anthropic(_) => anthropic::decode_answer(operation, bodies),
        ProviderKind::OpenAi(_) | ProviderKind::Azure(_) => match bodies {
            [body] if native_responses::serves(target, operation) => {
                let classify = registry::classifier(&target.provider.kind);
                native_responses::decode_answer(operation, body, classify)
            }
            [body] => {
                openai::decode_answer(operation, body, registry::classifier(&target.provider.kind))
            }
            _ => Err(TranslateError::BadUpstreamBody(
                "expected exactly one answer".to_owned(),
            )),
        },
    }
}

/// Per-stream decoding state, one variant per upstream wire format.
#[derive(Debug)]
pub enum StreamDecoder {
    /// OpenAI chunks relayed to a Chat client (pass-through).
    OpenAi(openai::StreamState),
    /// Azure chunks relayed to a Chat client; boxed: its re-stamping state is larger.
    Azure(Box<azure::StreamState>),
    /// OpenAI-format chunks read into the model, for a client of another dialect.
    Chat(openai::TypedStream),
    Bedrock(bedrock::converse::events::ConverseStream),
    /// Anthropic events relayed to a Messages client (pass-through).
    Anthropic(anthropic::relay::MessagesRelay),
    /// Anthropic events read into the model, for a client of another dialect.
    AnthropicTyped(anthropic::typed::TypedEvents),
    /// Claude's InvokeModelWithResponseStream chunks relayed to a Messages client.
    BedrockInvoke(bedrock::invoke::stream::InvokeStream),
    /// A native Responses stream relayed to a Responses client (`responses: native`).
    NativeResponses(native_responses::stream::ResponsesRelay),
}

impl StreamDecoder {
    /// The decoder of `generation`'s stream from `target`.
    pub fn new(target: &Target, generation: &Generation) -> Result<Self, TranslateError> {
        let request = &generation.request;
        let passthrough = request.dialect == model::Dialect::Chat;
        if request.dialect == model::Dialect::Responses && native_responses::native_target(target) {
            return Ok(StreamDecoder::NativeResponses(
                native_responses::stream::ResponsesRelay::new(&request.model),
            ));
        }
        match &target.provider.kind {
            ProviderKind::OpenAi(_) if passthrough => Ok(StreamDecoder::OpenAi(
                openai::StreamState::new(&request.model, request.stream_usage),
            )),
            ProviderKind::Azure(_) if passthrough => Ok(StreamDecoder::Azure(Box::new(
                azure::StreamState::new(&request.model, request.stream_usage),
            ))),
            ProviderKind::OpenAi(_) | ProviderKind::Azure(_) => {
                Ok(StreamDecoder::Chat(openai::TypedStream::default()))
            }
            ProviderKind::Bedrock(_)
                if bedrock::invoke::uses_invoke(&target.upstream_model, generation) =>
            {
                Ok(StreamDecoder::BedrockInvoke(
                    bedrock::invoke::stream::InvokeStream::new(&request.model),
                ))
            }
            ProviderKind::Bedrock(_) => {
                Ok(StreamDecoder::Bedrock(bedrock::stream_state(generation)))
            }
            ProviderKind::Anthropic(_) if request.dialect == model::Dialect::Messages => Ok(
                StreamDecoder::Anthropic(anthropic::relay::MessagesRelay::new(&request.model)),
            ),
            ProviderKind::Anthropic(_) => Ok(StreamDecoder::AnthropicTyped(Default::default())),
        }
    }

    /// Like [`Self::new`], but never a pass-through: every upstream's events are read into
    /// typed events, which a resumable stream needs to splice a second upstream's answer
    /// onto the first (docs/streams.md).
    pub fn typed(target: &Target, generation: &Generation) -> Result<Self, TranslateError> {
        Ok(match Self::new(target, generation)? {
            StreamDecoder::OpenAi(_) | StreamDecoder::Azure(_) => {
                StreamDecoder::Chat(openai::TypedStream::default())
            }
            StreamDecoder::Anthropic(_) => StreamDecoder::AnthropicTyped(Default::default()),
            StreamDecoder::BedrockInvoke(_) => {
                StreamDecoder::BedrockInvoke(bedrock::invoke::stream::InvokeStream::typed())
            }
            typed => typed,
        })
    }

    /// The decoder for this upstream's stream framing.
    pub fn framing(&self) -> UpstreamDecoder {
        match self {
            StreamDecoder::OpenAi(_) | StreamDecoder::Azure(_) | StreamDecoder::Chat(_) => {
                UpstreamDecoder::Sse(crate::api::sse::SseDecoder::new())
            }
            StreamDecoder::Anthropic(_)
            | StreamDecoder::AnthropicTyped(_)
            | StreamDecoder::NativeResponses(_) => {
                UpstreamDecoder::NamedSse(crate::api::sse::SseDecoder::new())
            }
            StreamDecoder::Bedrock(_) | StreamDecoder::BedrockInvoke(_) => {
                UpstreamDecoder::EventStream(bedrock::eventstream::FrameDecoder::new())
            }
        }
    }

    /// Decodes one upstream event.
    pub fn on_event(&mut self, event: &UpstreamEvent) -> StreamStep {
        match (self, event) {
            (StreamDecoder::OpenAi(state), UpstreamEvent::Sse(data)) => state.on_event(data),
            (StreamDecoder::Azure(state), UpstreamEvent::Sse(data)) => state.on_event(data),
            (StreamDecoder::Chat(state), UpstreamEvent::Sse(data)) => state.on_event(data),
            (StreamDecoder::Bedrock(state), UpstreamEvent::Frame(frame)) => state.on_frame(frame),
            (StreamDecoder::BedrockInvoke(state), UpstreamEvent::Frame(frame)) => {
                state.on_frame(frame)
            }
            (StreamDecoder::Anthropic(relay), UpstreamEvent::Named(event)) => {
                relay.on_event(event.event.as_deref(), &event.data)
            }
            (StreamDecoder::AnthropicTyped(state), UpstreamEvent::Named(event)) => {
                state.on_event(event.event.as_deref(), &event.data)
            }
            (StreamDecoder::NativeResponses(relay), UpstreamEvent::Named(event)) => {
                relay.on_event(event.event.as_deref(), &event.data)
            }
            _ => StreamStep::Failed(UpstreamStreamError {
                message: "the upstream's stream framing does not match its provider".to_owned(),
                code: Some("upstream_error".to_owned()),
                capacity: false,
            }),
        }
    }

    /// Usage seen by a decoder that relays bytes (typed events carry their own).
    pub fn usage(&self) -> Option<Usage> {
        match self {
            StreamDecoder::OpenAi(state) => state.usage,
            StreamDecoder::Azure(state) => state.usage(),
            StreamDecoder::Anthropic(relay) => relay.usage(),
            StreamDecoder::BedrockInvoke(state) => state.relay.usage(),
            StreamDecoder::NativeResponses(relay) => relay.usage(),
            StreamDecoder::Chat(_)
            | StreamDecoder::Bedrock(_)
            | StreamDecoder::AnthropicTyped(_) => None,
        }
    }

    /// Content deltas relayed as bytes so far (the basis of an estimate when usage never came).
    pub fn content_deltas(&self) -> u64 {
        match self {
            StreamDecoder::OpenAi(state) => state.content_deltas,
            StreamDecoder::Azure(state) => state.content_deltas(),
            StreamDecoder::Anthropic(relay) => relay.content_deltas(),
            StreamDecoder::BedrockInvoke(state) => state.relay.content_deltas(),
            StreamDecoder::NativeResponses(relay) => relay.content_deltas(),
            StreamDecoder::Chat(_)
            | StreamDecoder::Bedrock(_)
            | StreamDecoder::AnthropicTyped(_) => 0,
        }
    }

    /// The finished Response object of a relayed native Responses stream (what the proxy
    /// stores), once its terminal event arrived.
    pub fn completed_response(&self) -> Option<&serde_json::Value> {
        match self {
            StreamDecoder::NativeResponses(relay) => relay.completed(),
            _ => None,
        }
    }
}

/// One event of an upstream stream, decoded from its wire framing.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamEvent {
    /// The data of one SSE event (OpenAI-format upstreams).
    Sse(String),
    /// One AWS event-stream frame (Bedrock ConverseStream, InvokeModelWithResponseStream).
    Frame(bedrock::eventstream::Frame),
    /// One SSE event with its `event:` name (upstreams that dispatch on it: Anthropic).
    Named(crate::api::sse::SseEvent),
}

/// Incremental decoder of an upstream stream's framing: bytes in, whole events out.
#[derive(Debug)]
pub enum UpstreamDecoder {
    Sse(crate::api::sse::SseDecoder),
    /// SSE whose events keep their `event:` names.
    NamedSse(crate::api::sse::SseDecoder),
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
            UpstreamDecoder::NamedSse(decoder) => decoder
                .push_named(bytes)
                .map(|events| events.into_iter().map(UpstreamEvent::Named).collect())
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
    /// Send these bytes (one or more complete SSE events already in the client's dialect).
    Emit(Bytes),
    /// Typed events, for the client's dialect encoder to write.
    Events(Vec<model::StreamEvent>),
    /// Nothing to send for this event.
    Skip,
    /// The upstream finished the stream properly.
    Done,
    /// Send these bytes, which end the stream in the client's dialect (a relayed
    /// `message_stop`): the upstream has finished the stream properly, and the dialect
    /// writes no end of its own.
    Last(Bytes),
    /// Typed events (the last ones, e.g. Bedrock's closing usage); then the upstream has
    /// finished the stream properly.
    LastEvents(Vec<model::StreamEvent>),
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

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the providers' stream tests.

    use super::{Generation, Operation, StreamStep};
    use crate::dialects::chat::{decode_request, ChatRequest};
    use serde_json::Value;

    /// The operation of a Chat client's request body, as the handler makes it.
    pub fn chat_operation(body: Value) -> Operation {
        let text = body.to_string();
        let wire: ChatRequest = serde_json::from_str(&text).unwrap();
        wire.validate().unwrap();
        Operation::Generate(Box::new(Generation {
            request: decode_request(wire).unwrap(),
            body: text.into(),
            betas: Vec::new(),
            responses: None,
        }))
    }

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
