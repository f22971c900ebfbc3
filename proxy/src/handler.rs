//! A request's journey in plain Rust, independent of pingora: authenticate → parse →
//! check the model → rate limits and budget reservation → serve through the attempt loop →
//! one error mapping.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::api::embeddings::EmbeddingsRequest;
use crate::api::models::ModelList;
use crate::api::models::{AnthropicModel, AnthropicModelList, Page};
use crate::api::InvalidField;
use crate::auth::authenticate;
use crate::config::{KeyOwner, Model, Policy};
use crate::conversations::endpoints as stored_responses;
use crate::dialects::chat::{decode_request as decode_chat, ChatRequest};
use crate::dialects::messages::{decode_request as decode_messages, MessagesRequest};
use crate::error::{ProxyError, RequestError, RoutingError, UpstreamError};
use crate::providers::{count, Generation, Operation};
use crate::relay::attempts::{attempt_headers, serve};
use crate::relay::{Ending, Reply, RequestRecord};

/// The parts of a client request the proxy reads.
#[derive(Debug)]
pub struct Incoming {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The query string, if any (the Anthropic models list pages with it).
    pub query: Option<String>,
    pub authorization: Option<String>,
    /// Azure-style `api-key`, read on every path.
    pub api_key: Option<String>,
    /// Anthropic-style `x-api-key`, read on the Anthropic paths only
    /// ([`crate::endpoint::Endpoint::takes_x_api_key`]).
    pub x_api_key: Option<String>,
    /// The `anthropic-beta` flags, split at commas and trimmed, in order.
    pub anthropic_beta: Vec<String>,
    /// `x-switchyard-debug: 1`: answer with the attempt chain in `x-switchyard-route`.
    pub debug: bool,
    pub body: Bytes,
}

pub async fn handle(policy: Arc<Policy>, incoming: Incoming, mut record: RequestRecord) -> Reply {
    let endpoint = record.endpoint;
    let key_header = incoming
        .x_api_key
        .as_deref()
        .filter(|_| endpoint.takes_x_api_key())
        .or(incoming.api_key.as_deref());
    let owner = match authenticate(&policy, incoming.authorization.as_deref(), key_header) {
        Ok(owner) => owner.clone(),
        Err(e) => return error_reply(e.into(), record),
    };
    record.team = owner.team.name.clone();
    record.key_id = owner.key_id.clone();
    record.debug = incoming.debug || owner.team.debug;
    let result = match (incoming.method.as_str(), incoming.path.as_str()) {
        ("POST", "/v1/chat/completions") => match chat_generation(&incoming) {
            Ok(generation) => generate(&policy, &owner, generation, record).await,
            Err(e) => Err((e, record)),
        },
        ("POST", "/v1/responses") => {
            crate::api::responses::create(&policy, &owner, &incoming.body, record).await
        }
        ("POST", "/v1/messages") => match messages_generation(&incoming) {
            Ok(generation) => generate(&policy, &owner, generation, record).await,
            Err(e) => Err((e, record)),
        },
        ("POST", "/v1/embeddings") => {
            match parse::<EmbeddingsRequest>(&incoming.body, EmbeddingsRequest::validate) {
                Ok(embeddings) => {
                    dispatch(&policy, &owner, Operation::Embeddings(embeddings), record).await
                }
                Err(e) => Err((e, record)),
            }
        }
        ("POST", "/v1/messages/count_tokens") => {
            let betas = incoming.anthropic_beta.clone();
            count_tokens(&policy, &owner, &incoming.body, betas, record).await
        }
        ("GET", "/v1/models") if endpoint.anthropic_version => {
            match Page::from_query(incoming.query.as_deref()) {
                Ok(page) => Ok(list_models_anthropic(&policy, &owner, &page, record)),
                Err(invalid) => Err((invalid_field(invalid), record)),
            }
        }
        ("GET", "/v1/models") => Ok(list_models(&policy, &owner, record)),
        ("GET", path) if path.starts_with("/v1/models/") => {
            let name = &path["/v1/models/".len()..];
            match find_model(&policy, &owner, name) {
                Ok(model) if endpoint.anthropic_version => {
                    Ok(one_model_anthropic(&model.name, record))
                }
                Ok(model) => Ok(one_model(&model.name, record)),
                Err(e) => Err((e.into(), record)),
            }
        }
        (method, path) => match stored_responses::route(method, path) {
            Some(request) => {
                let query = incoming.query.as_deref();
                stored_responses::serve(request, &owner.team.name, query, record).await
            }
            None => Err((
                RequestError::NotFound {
                    method: method.to_owned(),
                    path: path.to_owned(),
                }
                .into(),
                record,
            )),
        },
    };
    result.unwrap_or_else(|(error, record)| error_reply(error, record))
}

/// `POST /v1/chat/completions`: the body parsed, validated and decoded into the model.
fn chat_generation(incoming: &Incoming) -> Result<Generation, ProxyError> {
    let chat = parse::<ChatRequest>(&incoming.body, ChatRequest::validate)?;
    Ok(Generation {
        request: decoded(decode_chat(chat))?,
        body: incoming.body.clone(),
        betas: Vec::new(),
        responses: None,
    })
}

/// `POST /v1/messages`: the body parsed, validated and decoded into the model, with the
/// client's `anthropic-beta` flags for the upstreams that take them.
fn messages_generation(incoming: &Incoming) -> Result<Generation, ProxyError> {
    let messages = parse::<MessagesRequest>(&incoming.body, MessagesRequest::validate)?;
    Ok(Generation {
        request: decoded(decode_messages(messages))?,
        body: incoming.body.clone(),
        betas: incoming.anthropic_beta.clone(),
        responses: None,
    })
}

async fn generate(
    policy: &Policy,
    owner: &KeyOwner,
    generation: Generation,
    record: RequestRecord,
) -> Result<Reply, (ProxyError, RequestRecord)> {
    dispatch(
        policy,
        owner,
        Operation::Generate(Box::new(generation)),
        record,
    )
    .await
}

pub(crate) async fn dispatch(
    policy: &Policy,
    owner: &KeyOwner,
    mut operation: Operation,
    mut record: RequestRecord,
) -> Result<Reply, (ProxyError, RequestRecord)> {
    record.model = operation.client_model().to_owned();
    let model = match find_model(policy, owner, operation.client_model()) {
        Ok(model) => model,
        Err(e) => {
            // An unknown name is the client's free text: keep it out of metric labels.
            if matches!(e, RoutingError::ModelNotFound { .. }) {
                record.model = "unknown".to_owned();
            }
            return Err((e.into(), record));
        }
    };
    let state = record.state().clone();
    let admission = state
        .spend
        .admit(
            &state.metrics,
            &owner.team,
            &model,
            &operation,
            policy.server.request_timeout,
        )
        .await;
    match admission {
        Ok(admission) => {
            // The cap admission decided is the one sent upstream (docs/spend.md).
            operation.set_output_cap(admission.output_cap);
            record.set_admission(admission);
        }
        Err(refusal) => return Err((refusal.into(), record)),
    }
    serve(policy, &model, &owner.team, operation, record).await
}

/// `POST /v1/messages/count_tokens`: routed like a generation to the model's targets that
/// can count (`providers/count.rs`), without a budget reservation and at no cost. When none
/// could (other kinds, or every counting upstream failed), the proxy's own estimate answers,
/// marked `x-switchyard-estimated: true`; an upstream refusing the client's body is the
/// client's error.
async fn count_tokens(
    policy: &Policy,
    owner: &KeyOwner,
    body: &Bytes,
    betas: Vec<String>,
    mut record: RequestRecord,
) -> Result<Reply, (ProxyError, RequestRecord)> {
    let request = parse::<MessagesRequest>(body, MessagesRequest::validate_count_tokens)
        .and_then(|wire| decoded(decode_messages(wire)));
    let generation = match request {
        Ok(request) => Generation {
            request,
            body: body.clone(),
            betas,
            responses: None,
        },
        Err(e) => return Err((e, record)),
    };
    record.model = generation.request.model.clone();
    let model = match find_model(policy, owner, &generation.request.model) {
        Ok(model) => model,
        Err(e) => {
            if matches!(e, RoutingError::ModelNotFound { .. }) {
                record.model = "unknown".to_owned();
            }
            return Err((e.into(), record));
        }
    };
    let estimate = count::estimate(&generation);
    let operation = Operation::CountTokens(Box::new(generation));
    match serve(policy, &model, &owner.team, operation, record).await {
        Ok(reply) => Ok(reply),
        Err((error @ ProxyError::Upstream(UpstreamError::Rejected { .. }), record)) => {
            Err((error, record))
        }
        Err((error, record)) => {
            tracing::debug!(request_id = %record.request_id, error = %error, "token count estimated");
            let mut headers = attempt_headers(&record);
            headers.push(("content-type", "application/json".to_owned()));
            headers.push(("x-switchyard-estimated", "true".to_owned()));
            let body = serde_json::to_vec(&estimate).unwrap_or_default();
            record.finish(Ending::Status(200), None);
            Ok(Reply::Full {
                status: 200,
                headers,
                body: Bytes::from(body),
            })
        }
    }
}

fn find_model(policy: &Policy, owner: &KeyOwner, name: &str) -> Result<Arc<Model>, RoutingError> {
    let model = policy
        .models
        .get(name)
        .ok_or_else(|| RoutingError::ModelNotFound {
            model: name.to_owned(),
        })?;
    if !owner.team.may_use(name) {
        return Err(RoutingError::ModelNotAllowed {
            model: name.to_owned(),
            team: owner.team.name.clone(),
        });
    }
    Ok(model.clone())
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `GET /v1/models/{model}`: one entry of the list.
fn one_model(name: &str, record: RequestRecord) -> Reply {
    let list = ModelList::new([name.to_owned()], now_unix());
    let body = list
        .data
        .first()
        .and_then(|entry| serde_json::to_vec(entry).ok())
        .unwrap_or_default();
    record.finish(Ending::Status(200), None);
    Reply::json(200, body)
}

fn list_models(policy: &Policy, owner: &KeyOwner, record: RequestRecord) -> Reply {
    let created = now_unix();
    let names = allowed_models(policy, owner);
    let body = serde_json::to_vec(&ModelList::new(names, created)).unwrap_or_default();
    record.finish(Ending::Status(200), None);
    Reply::json(200, body)
}

/// A dialect decoder's verdict as the client's error.
pub(crate) fn decoded<T>(result: Result<T, InvalidField>) -> Result<T, ProxyError> {
    result.map_err(invalid_field)
}

fn invalid_field(invalid: InvalidField) -> ProxyError {
    RequestError::Invalid {
        message: invalid.message,
        param: Some(invalid.param),
    }
    .into()
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The team's models, sorted (the policy keeps them sorted): Anthropic's pages rely on it.
fn allowed_models(policy: &Policy, owner: &KeyOwner) -> Vec<String> {
    policy
        .models
        .keys()
        .filter(|name| owner.team.may_use(name))
        .cloned()
        .collect()
}

/// `GET /v1/models` from an Anthropic client: one page in Anthropic's shape.
fn list_models_anthropic(
    policy: &Policy,
    owner: &KeyOwner,
    page: &Page,
    record: RequestRecord,
) -> Reply {
    let list = AnthropicModelList::page(&allowed_models(policy, owner), page, &now_rfc3339());
    let body = serde_json::to_vec(&list).unwrap_or_default();
    record.finish(Ending::Status(200), None);
    Reply::json(200, body)
}

/// `GET /v1/models/{model}` from an Anthropic client: one model object.
fn one_model_anthropic(name: &str, record: RequestRecord) -> Reply {
    let model = AnthropicModel::new(name.to_owned(), &now_rfc3339());
    let body = serde_json::to_vec(&model).unwrap_or_default();
    record.finish(Ending::Status(200), None);
    Reply::json(200, body)
}

/// Parses a JSON body into `T`, naming the offending field on error, then validates it.
pub(crate) fn parse<T: DeserializeOwned>(
    body: &[u8],
    validate: impl Fn(&T) -> Result<(), InvalidField>,
) -> Result<T, ProxyError> {
    // The plain decode first: tracking the path costs on every field, and only an error needs
    // it, so a body that fails is decoded a second time to name the field.
    let value: T = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => return Err(decode_error::<T>(body)),
    };
    validate(&value).map_err(|invalid| RequestError::Invalid {
        message: invalid.message,
        param: Some(invalid.param),
    })?;
    Ok(value)
}

/// Why `body` is not a `T`, naming the offending field where it can.
fn decode_error<T: DeserializeOwned>(body: &[u8]) -> ProxyError {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let decoded = serde_path_to_error::deserialize::<_, T>(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        // serde_path_to_error says "." for the root and "?" where it lost track.
        let param = (!syntax && path != "." && !path.contains('?')).then_some(path);
        let message = match (&param, syntax) {
            (_, true) => format!("the request body is not valid JSON: {inner}"),
            (Some(param), false) => format!("invalid `{param}`: {inner}"),
            (None, false) => format!("invalid request body: {inner}"),
        };
        RequestError::Invalid { message, param }
    });
    let error = match decoded {
        Err(error) => error,
        Ok(_) => match deserializer.end() {
            Err(e) => RequestError::Invalid {
                message: format!("the request body is not valid JSON: {e}"),
                param: None,
            },
            // Cannot be: the plain decode failed on the same bytes.
            Ok(()) => RequestError::Invalid {
                message: "invalid request body".to_owned(),
                param: None,
            },
        },
    };
    error.into()
}

/// The one place an error becomes a response (and is logged, once), in the dialect of the
/// API the client called.
pub fn error_reply(error: ProxyError, record: RequestRecord) -> Reply {
    let response = error.to_response();
    if response.operator_problem {
        tracing::warn!(request_id = %record.request_id, model = %record.model, error = %error, "request failed");
    }
    let (status, body) = response.render(record.endpoint.error_dialect());
    let mut headers = response.headers;
    if record.attempts > 0 {
        headers.extend(attempt_headers(&record));
    }
    headers.push(("content-type", "application/json".to_owned()));
    record.finish(Ending::Status(status), None);
    Reply::Full {
        status,
        headers,
        body: Bytes::from(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_bad_field() {
        let err = parse::<ChatRequest>(
            br#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
            |_| Ok(()),
        )
        .unwrap_err();
        match err {
            ProxyError::Request(RequestError::Invalid { param, message }) => {
                assert_eq!(param.as_deref(), Some("messages[0].role"));
                assert!(message.contains("robot"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_reports_malformed_json() {
        let err = parse::<ChatRequest>(b"{\"model\": ", |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        let err = parse::<ChatRequest>(b"[1,2]", |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
    }

    #[test]
    fn parse_reports_missing_messages() {
        let err = parse::<ChatRequest>(br#"{"model":"m"}"#, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("messages"), "{err}");
    }
}
