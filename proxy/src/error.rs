//! Errors of every layer, and the one place that maps them to an HTTP status, a body in
//! the client's dialect (OpenAI's, or Anthropic's on the Anthropic paths), extra headers, a
//! metric reason and a log level.
//!
//! The match in [`ProxyError::to_response`] has no `_` arm on purpose: a new variant cannot
//! be added without deciding how clients see it.

use std::time::Duration;

use thiserror::Error;

use crate::api::error_body::{ErrorBody, ErrorType};
pub use crate::conversations::StoreError;
use crate::dialects::messages::error as anthropic;
use crate::endpoint::ErrorDialect;
pub use crate::metering::ledger::LedgerError;
pub use crate::metering::SpendError;

/// Who is calling: resolved from `Authorization: Bearer <key>`.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("missing API key: send `Authorization: Bearer <key>` (or `x-api-key: <key>` to the Anthropic API)")]
    MissingKey,
    #[error("invalid API key")]
    UnknownKey,
}

/// The client's request itself is unusable.
#[derive(Debug, Error)]
pub enum RequestError {
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{message}")]
    Invalid {
        message: String,
        param: Option<String>,
    },
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error("unknown endpoint {method} {path}")]
    NotFound { method: String, path: String },
    /// A stored Responses turn that is unknown, expired, deleted or another team's.
    #[error("Response with id '{id}' not found.")]
    ResponseNotFound { id: String },
    /// `previous_response_id` names no stored response of the caller's team.
    #[error("Previous response with id '{id}' not found.")]
    PreviousResponseNotFound { id: String },
    #[error("request header block exceeds the limit of {limit} bytes")]
    HeaderTooLarge { limit: usize },
    #[error("malformed request header")]
    MalformedHeader,
    #[error("the request body was not received within {}s", timeout.as_secs_f64())]
    BodyTimeout { timeout: Duration },
    #[error("the proxy has {limit} client connections open, its limit; retry shortly")]
    TooManyConnections { limit: usize },
}

/// The request is valid but the policy cannot serve it.
#[derive(Debug, Error)]
pub enum RoutingError {
    #[error("the model `{model}` does not exist")]
    ModelNotFound { model: String },
    #[error("team `{team}` may not use the model `{model}`")]
    ModelNotAllowed { model: String, team: String },
    #[error("no target can serve `{model}` right now ({reasons})")]
    NoUsableTarget {
        model: String,
        reasons: String,
        retry_after: Option<Duration>,
    },
}

/// Every attempt failed, or an upstream refused the request.
#[derive(Debug, Error)]
pub enum UpstreamError {
    #[error("every target for `{model}` failed after {attempts} attempt(s); last: {last}")]
    Unavailable {
        model: String,
        attempts: usize,
        last: String,
        retry_after: Option<Duration>,
    },
    #[error("no target for `{model}` answered in time ({attempts} attempt(s))")]
    Timeout { model: String, attempts: usize },
    #[error("{message}")]
    Rejected {
        status: u16,
        message: String,
        param: Option<String>,
        code: Option<String>,
    },
    #[error("provider `{provider}` rejected the proxy's credentials (HTTP {status})")]
    CredentialsRejected { provider: String, status: u16 },
}

#[derive(Debug, Error)]
pub enum ProxyError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Routing(#[from] RoutingError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Spend(#[from] SpendError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Conversations(#[from] StoreError),
}

/// How an error reaches the client and the operator.
#[derive(Debug)]
pub struct ErrorResponse {
    pub status: u16,
    pub body: ErrorBody,
    pub headers: Vec<(&'static str, String)>,
    /// Whether the operator should hear about it (a warning) or it is the client's business.
    pub operator_problem: bool,
    /// No upstream could take the request (every target failed or none was usable): Anthropic's
    /// clients read this as 529 `overloaded_error`, their signal to back off and retry.
    pub overloaded: bool,
}

impl ErrorResponse {
    /// The status and body a client of `dialect` reads. Anthropic's keeps the status except
    /// for overload (529), and names the error type Anthropic pairs with it.
    pub fn render(&self, dialect: ErrorDialect) -> (u16, Vec<u8>) {
        match dialect {
            ErrorDialect::OpenAi => (self.status, self.body.to_json()),
            ErrorDialect::Anthropic => {
                let status = if self.overloaded { 529 } else { self.status };
                // Anthropic's body has no `param`: the message names it, as Anthropic's own do.
                let error = &self.body.error;
                let message = match &error.param {
                    Some(param) if !error.message.contains(param.as_str()) => {
                        format!("{param}: {}", error.message)
                    }
                    _ => error.message.clone(),
                };
                (
                    status,
                    anthropic::body(anthropic::error_type(status), message),
                )
            }
        }
    }
}

fn retry_after_headers(wait: Option<Duration>) -> Vec<(&'static str, String)> {
    match wait {
        Some(wait) => vec![
            (
                "retry-after",
                wait.as_secs_f64().ceil().max(1.0).to_string(),
            ),
            ("retry-after-ms", wait.as_millis().max(1).to_string()),
        ],
        None => Vec::new(),
    }
}

impl ProxyError {
    pub fn to_response(&self) -> ErrorResponse {
        use ErrorType::*;
        let message = self.to_string();
        let (status, kind, code, param, headers, operator_problem) = match self {
            ProxyError::Auth(AuthError::MissingKey | AuthError::UnknownKey) => (
                401,
                AuthenticationError,
                "invalid_api_key",
                None,
                vec![],
                false,
            ),
            ProxyError::Request(RequestError::BodyTooLarge { .. }) => (
                413,
                InvalidRequestError,
                "request_too_large",
                None,
                vec![],
                false,
            ),
            ProxyError::Request(RequestError::Invalid { param, .. }) => (
                400,
                InvalidRequestError,
                "invalid_request",
                param.clone(),
                vec![],
                false,
            ),
            ProxyError::Request(RequestError::BodyRead(_)) => (
                400,
                InvalidRequestError,
                "invalid_request",
                None,
                vec![],
                false,
            ),
            ProxyError::Request(
                RequestError::NotFound { .. } | RequestError::ResponseNotFound { .. },
            ) => (404, InvalidRequestError, "not_found", None, vec![], false),
            // The store's own message (database details) is logged, not sent.
            ProxyError::Conversations(error) => {
                let (status, code) = match error {
                    StoreError::Database(_) | StoreError::Timeout(_) | StoreError::Stopped => {
                        (503, "conversation_store_unavailable")
                    }
                    StoreError::Invalid { .. } | StoreError::Conflict { .. } => {
                        (500, "conversation_store_error")
                    }
                };
                let message = "the proxy could not read or write its stored conversations";
                return ErrorResponse {
                    status,
                    body: ErrorBody::new(ServerError, code, message),
                    headers: vec![],
                    operator_problem: true,
                    overloaded: false,
                };
            }
            ProxyError::Request(RequestError::PreviousResponseNotFound { .. }) => (
                404,
                InvalidRequestError,
                "previous_response_not_found",
                Some("previous_response_id".to_owned()),
                vec![],
                false,
            ),
            ProxyError::Request(RequestError::HeaderTooLarge { .. }) => (
                431,
                InvalidRequestError,
                "request_header_too_large",
                None,
                vec![],
                false,
            ),
            ProxyError::Request(RequestError::MalformedHeader) => (
                400,
                InvalidRequestError,
                "invalid_request",
                None,
                vec![],
                false,
            ),
            // The client's own slowness: not the upstream's 504 (issue 15, item 6).
            ProxyError::Request(RequestError::BodyTimeout { .. }) => (
                408,
                InvalidRequestError,
                "client_timeout",
                None,
                vec![],
                false,
            ),
            ProxyError::Request(RequestError::TooManyConnections { .. }) => (
                503,
                ServerError,
                "too_many_connections",
                None,
                vec![("retry-after", "1".to_owned())],
                true,
            ),
            ProxyError::Routing(RoutingError::ModelNotFound { .. }) => (
                404,
                InvalidRequestError,
                "model_not_found",
                Some("model".to_owned()),
                vec![],
                false,
            ),
            ProxyError::Routing(RoutingError::ModelNotAllowed { .. }) => (
                403,
                PermissionError,
                "model_not_allowed",
                Some("model".to_owned()),
                vec![],
                false,
            ),
            ProxyError::Routing(RoutingError::NoUsableTarget { retry_after, .. }) => (
                503,
                ServerError,
                "upstream_unavailable",
                None,
                retry_after_headers(*retry_after),
                true,
            ),
            ProxyError::Upstream(UpstreamError::Unavailable { retry_after, .. }) => (
                503,
                ServerError,
                "upstream_unavailable",
                None,
                retry_after_headers(*retry_after),
                true,
            ),
            ProxyError::Upstream(UpstreamError::Timeout { .. }) => {
                (504, ServerError, "upstream_timeout", None, vec![], true)
            }
            ProxyError::Upstream(UpstreamError::Rejected {
                status,
                param,
                code,
                ..
            }) => {
                let body = ErrorBody::new(
                    rejected_type(*status),
                    code.as_deref().unwrap_or("invalid_request"),
                    message,
                )
                .with_param(param.clone());
                return ErrorResponse {
                    status: *status,
                    body,
                    headers: vec![],
                    operator_problem: false,
                    overloaded: false,
                };
            }
            ProxyError::Spend(
                SpendError::BudgetExhausted { .. } | SpendError::TooExpensive { .. },
            ) => (
                429,
                InsufficientQuota,
                "insufficient_quota",
                None,
                // The budget renews with its period, not in a few seconds.
                vec![("x-should-retry", "false".to_owned())],
                false,
            ),
            ProxyError::Spend(SpendError::CapTooLarge { .. }) => (
                400,
                InvalidRequestError,
                "invalid_request",
                Some("max_tokens".to_owned()),
                vec![],
                false,
            ),
            ProxyError::Spend(SpendError::RateLimited { retry_after, .. }) => (
                429,
                RateLimitError,
                "rate_limit_exceeded",
                None,
                retry_after_headers(Some(*retry_after)),
                false,
            ),
            ProxyError::Ledger(
                LedgerError::Database(_)
                | LedgerError::Timeout(_)
                | LedgerError::Stopped
                | LedgerError::Query(_),
            ) => (503, ServerError, "ledger_unavailable", None, vec![], true),
            ProxyError::Upstream(UpstreamError::CredentialsRejected { .. }) => (
                502,
                ServerError,
                "upstream_auth_failed",
                None,
                // Retrying cannot fix the proxy's own credentials.
                vec![("x-should-retry", "false".to_owned())],
                true,
            ),
        };
        let overloaded = matches!(
            self,
            ProxyError::Routing(RoutingError::NoUsableTarget { .. })
                | ProxyError::Upstream(UpstreamError::Unavailable { .. })
        );
        ErrorResponse {
            status,
            body: ErrorBody::new(kind, code, message).with_param(param),
            headers,
            operator_problem,
            overloaded,
        }
    }
}

/// OpenAI's error class for an upstream's 4xx that is passed on to the client.
fn rejected_type(status: u16) -> ErrorType {
    match status {
        401 => ErrorType::AuthenticationError,
        403 => ErrorType::PermissionError,
        429 => ErrorType::RateLimitError,
        500.. => ErrorType::ServerError,
        _ => ErrorType::InvalidRequestError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_contract() {
        let cases: Vec<(ProxyError, u16, &str)> = vec![
            (AuthError::UnknownKey.into(), 401, "invalid_api_key"),
            (
                RequestError::BodyTooLarge { limit: 1 }.into(),
                413,
                "request_too_large",
            ),
            (
                RequestError::Invalid {
                    message: "x".into(),
                    param: Some("messages".into()),
                }
                .into(),
                400,
                "invalid_request",
            ),
            (
                RoutingError::ModelNotFound { model: "m".into() }.into(),
                404,
                "model_not_found",
            ),
            (
                RequestError::PreviousResponseNotFound {
                    id: "resp_1".into(),
                }
                .into(),
                404,
                "previous_response_not_found",
            ),
            (
                RoutingError::ModelNotAllowed {
                    model: "m".into(),
                    team: "t".into(),
                }
                .into(),
                403,
                "model_not_allowed",
            ),
            (
                UpstreamError::Unavailable {
                    model: "m".into(),
                    attempts: 2,
                    last: "429".into(),
                    retry_after: Some(Duration::from_millis(1500)),
                }
                .into(),
                503,
                "upstream_unavailable",
            ),
            (
                UpstreamError::Timeout {
                    model: "m".into(),
                    attempts: 1,
                }
                .into(),
                504,
                "upstream_timeout",
            ),
        ];
        for (error, status, code) in cases {
            let response = error.to_response();
            assert_eq!(response.status, status, "{error}");
            assert_eq!(response.body.error.code.as_deref(), Some(code));
        }
    }

    #[test]
    fn client_side_refusals_blame_the_client_not_the_upstream() {
        let cases: [(ProxyError, u16, &str); 4] = [
            (
                RequestError::HeaderTooLarge { limit: 65536 }.into(),
                431,
                "request_header_too_large",
            ),
            (RequestError::MalformedHeader.into(), 400, "invalid_request"),
            (
                RequestError::BodyTimeout {
                    timeout: Duration::from_secs(60),
                }
                .into(),
                408,
                "client_timeout",
            ),
            (
                RequestError::TooManyConnections { limit: 10 }.into(),
                503,
                "too_many_connections",
            ),
        ];
        for (error, status, code) in cases {
            let response = error.to_response();
            assert_eq!(response.status, status, "{error}");
            assert_eq!(response.body.error.code.as_deref(), Some(code));
            assert!(!response.overloaded, "{error}");
        }
        let timeout = ProxyError::from(RequestError::BodyTimeout {
            timeout: Duration::from_secs(1),
        })
        .to_response();
        let (status, body) = timeout.render(ErrorDialect::Anthropic);
        assert_eq!(status, 408);
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn spend_refusals_match_the_contract() {
        let budget = ProxyError::from(SpendError::BudgetExhausted {
            team: "t".into(),
            budget_usd: crate::metering::NanoUsd::from_nanos(1_000_000_000),
            period: "daily",
            renews_at: "2026-11-29T00:00:00Z".into(),
        })
        .to_response();
        assert_eq!(budget.status, 429);
        assert_eq!(
            budget.body.error.code.as_deref(),
            Some("insufficient_quota")
        );
        assert!(budget
            .headers
            .contains(&("x-should-retry", "false".to_owned())));
        let limited = ProxyError::from(SpendError::RateLimited {
            team: "t".into(),
            limit: "rpm",
            retry_after: Duration::from_millis(2500),
        })
        .to_response();
        assert_eq!(limited.status, 429);
        assert_eq!(
            limited.body.error.code.as_deref(),
            Some("rate_limit_exceeded")
        );
        assert!(limited.headers.contains(&("retry-after", "3".to_owned())));
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let response = ProxyError::from(UpstreamError::Unavailable {
            model: "m".into(),
            attempts: 1,
            last: "x".into(),
            retry_after: Some(Duration::from_millis(1500)),
        })
        .to_response();
        assert!(response.headers.contains(&("retry-after", "2".to_owned())));
        assert!(response
            .headers
            .contains(&("retry-after-ms", "1500".to_owned())));
    }

    /// The status and `error.type` an Anthropic client reads for `error`.
    fn anthropic(error: ProxyError) -> (u16, String, String) {
        let (status, body) = error.to_response().render(ErrorDialect::Anthropic);
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "error", "{body}");
        let kind = body["error"]["type"].as_str().unwrap().to_owned();
        let message = body["error"]["message"].as_str().unwrap().to_owned();
        (status, kind, message)
    }

    #[test]
    fn anthropic_clients_get_anthropics_status_and_type_pairs() {
        let cases: Vec<(ProxyError, u16, &str)> = vec![
            (AuthError::UnknownKey.into(), 401, "authentication_error"),
            (AuthError::MissingKey.into(), 401, "authentication_error"),
            (
                RequestError::BodyTooLarge { limit: 1 }.into(),
                413,
                "request_too_large",
            ),
            (
                RequestError::NotFound {
                    method: "GET".into(),
                    path: "/v1/x".into(),
                }
                .into(),
                404,
                "not_found_error",
            ),
            (
                RoutingError::ModelNotFound { model: "m".into() }.into(),
                404,
                "not_found_error",
            ),
            (
                RoutingError::ModelNotAllowed {
                    model: "m".into(),
                    team: "t".into(),
                }
                .into(),
                403,
                "permission_error",
            ),
            (
                RoutingError::NoUsableTarget {
                    model: "m".into(),
                    reasons: "a: cooling down".into(),
                    retry_after: None,
                }
                .into(),
                529,
                "overloaded_error",
            ),
            (
                UpstreamError::Unavailable {
                    model: "m".into(),
                    attempts: 2,
                    last: "429".into(),
                    retry_after: None,
                }
                .into(),
                529,
                "overloaded_error",
            ),
            (
                UpstreamError::Timeout {
                    model: "m".into(),
                    attempts: 1,
                }
                .into(),
                504,
                "timeout_error",
            ),
            (
                UpstreamError::CredentialsRejected {
                    provider: "p".into(),
                    status: 403,
                }
                .into(),
                502,
                "api_error",
            ),
            (
                UpstreamError::Rejected {
                    status: 422,
                    message: "bad".into(),
                    param: None,
                    code: None,
                }
                .into(),
                422,
                "invalid_request_error",
            ),
            (
                SpendError::BudgetExhausted {
                    team: "t".into(),
                    budget_usd: crate::metering::NanoUsd::from_nanos(1_000_000_000),
                    period: "daily",
                    renews_at: "2026-11-29T00:00:00Z".into(),
                }
                .into(),
                429,
                "rate_limit_error",
            ),
            (
                SpendError::RateLimited {
                    team: "t".into(),
                    limit: "rpm",
                    retry_after: Duration::from_secs(2),
                }
                .into(),
                429,
                "rate_limit_error",
            ),
            (
                SpendError::TooExpensive {
                    team: "t".into(),
                    max_cost_usd: crate::metering::NanoUsd::from_nanos(2_000_000_000),
                    prompt_tokens: 10,
                    output_tokens: 100,
                    remaining_usd: crate::metering::NanoUsd::from_nanos(500_000_000),
                    short_usd: crate::metering::NanoUsd::from_nanos(1_500_000_000),
                    period: "daily",
                    in_flight: String::new(),
                }
                .into(),
                429,
                "rate_limit_error",
            ),
            (
                SpendError::CapTooLarge {
                    model: "m".into(),
                    cap: 1_000_000_000,
                    max: 4096,
                }
                .into(),
                400,
                "invalid_request_error",
            ),
            (LedgerError::Stopped.into(), 503, "api_error"),
        ];
        for (error, status, kind) in cases {
            let shown = error.to_string();
            let (got_status, got_kind, message) = anthropic(error);
            assert_eq!((got_status, got_kind.as_str()), (status, kind), "{shown}");
            assert_eq!(message, shown);
        }
    }

    #[test]
    fn anthropic_messages_name_the_param_they_lack_a_field_for() {
        let (status, kind, message) = anthropic(
            RequestError::Invalid {
                message: "must be a positive integer".into(),
                param: Some("max_tokens".into()),
            }
            .into(),
        );
        assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
        assert_eq!(message, "max_tokens: must be a positive integer");
        let (_, _, message) = anthropic(
            RequestError::Invalid {
                message: "invalid `messages[0].role`: unknown variant".into(),
                param: Some("messages[0].role".into()),
            }
            .into(),
        );
        assert_eq!(message, "invalid `messages[0].role`: unknown variant");
        let openai = ProxyError::from(AuthError::UnknownKey)
            .to_response()
            .render(ErrorDialect::OpenAi);
        assert_eq!(openai.0, 401);
        let body: serde_json::Value = serde_json::from_slice(&openai.1).unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key");
    }

    #[test]
    fn upstream_rejection_keeps_status_and_code() {
        let response = ProxyError::from(UpstreamError::Rejected {
            status: 422,
            message: "bad schema".into(),
            param: Some("response_format".into()),
            code: Some("invalid_schema".into()),
        })
        .to_response();
        assert_eq!(response.status, 422);
        assert_eq!(
            response.body.error.param.as_deref(),
            Some("response_format")
        );
        assert_eq!(response.body.error.code.as_deref(), Some("invalid_schema"));
    }
}
