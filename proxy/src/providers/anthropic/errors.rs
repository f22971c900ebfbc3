//! How the Anthropic API's failures are classified: its error body
//! (`{"type":"error","error":{"type","message"}}`) names the class. `rate_limit_error` (429)
//! and `overloaded_error` (529) are capacity (a cool-down, honouring `retry-after`) and fail
//! over; `invalid_request_error` is the client's own mistake and is returned; anything the
//! body does not name falls back on the generic HTTP rules (`upstream/classify.rs`).

use http::HeaderMap;
use serde::Deserialize;

use crate::upstream::classify::{classify_status, retry_after};
use crate::upstream::{AttemptFailure, FailureKind};

/// `{"type":"error","error":{"type","message"}}`, the shape of every Anthropic error, also
/// inside a 200 stream (`event: error`).
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: Option<String>,
}

impl ErrorEnvelope {
    /// The error of a body, when it is one.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

/// Error types saying the API is out of capacity rather than broken.
pub fn is_capacity_type(error_type: &str) -> bool {
    matches!(error_type, "rate_limit_error" | "overloaded_error")
}

/// Classifies a non-2xx answer of the Anthropic API.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptFailure {
    let mut failure = classify_status(status, headers, body);
    let Some(envelope) = ErrorEnvelope::parse(body) else {
        return failure;
    };
    let error = envelope.error;
    failure.detail = format!(
        "HTTP {status} {}: {}",
        error.kind,
        error.message.as_deref().unwrap_or("no message")
    );
    if let Some(kind) = kind_of(&error.kind, status, headers) {
        failure.kind = kind;
    }
    failure
}

/// The failure class an error type names; `None` leaves the status to decide.
fn kind_of(error_type: &str, status: u16, headers: &HeaderMap) -> Option<FailureKind> {
    Some(match error_type {
        "rate_limit_error" | "overloaded_error" => FailureKind::Capacity {
            retry_after: retry_after(headers),
        },
        "timeout_error" => FailureKind::Timeout,
        "api_error" => FailureKind::ServerError,
        // A model this key cannot reach, or an account out of credit, is this target's
        // problem: another target may well serve the request.
        "not_found_error" | "billing_error" => FailureKind::ServerError,
        "authentication_error" | "permission_error" => FailureKind::CredentialsRejected { status },
        "invalid_request_error" | "request_too_large" => FailureKind::Rejected {
            status: if (400..500).contains(&status) {
                status
            } else {
                400
            },
            param: None,
            code: Some(error_type.to_owned()),
        },
        _ => return None,
    })
}

/// An Anthropic error object inside a 2xx answer: never the client's 200, always a failure
/// that fails over (capacity types as the 429 they stand for, anything else as a 502).
pub fn error_in_answer(body: &[u8], what: &str) -> AttemptFailure {
    let envelope = ErrorEnvelope::parse(body);
    let capacity = envelope
        .as_ref()
        .is_some_and(|e| is_capacity_type(&e.error.kind));
    let kind = if capacity {
        FailureKind::Capacity { retry_after: None }
    } else {
        FailureKind::ServerError
    };
    let message = envelope
        .map(|e| format!(": {} {}", e.error.kind, e.error.message.unwrap_or_default()))
        .unwrap_or_default();
    AttemptFailure::new(kind, format!("the upstream answered 2xx {what}{message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    fn body(error_type: &str) -> Vec<u8> {
        format!(r#"{{"type":"error","error":{{"type":"{error_type}","message":"m"}},"request_id":"req_1"}}"#)
            .into_bytes()
    }

    #[test]
    fn rate_limits_and_overload_are_capacity_with_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let limited = classify(429, &headers, &body("rate_limit_error"));
        assert_eq!(
            limited.kind,
            FailureKind::Capacity {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(limited.detail, "HTTP 429 rate_limit_error: m");
        let overloaded = classify(529, &HeaderMap::new(), &body("overloaded_error"));
        assert!(matches!(overloaded.kind, FailureKind::Capacity { .. }));
        assert!(overloaded.fails_over());
    }

    #[test]
    fn the_clients_mistakes_are_returned_and_the_operators_are_not() {
        let invalid = classify(400, &HeaderMap::new(), &body("invalid_request_error"));
        assert_eq!(
            invalid.kind,
            FailureKind::Rejected {
                status: 400,
                param: None,
                code: Some("invalid_request_error".into())
            }
        );
        assert!(!invalid.fails_over());
        let auth = classify(401, &HeaderMap::new(), &body("authentication_error"));
        assert_eq!(auth.kind, FailureKind::CredentialsRejected { status: 401 });
        let missing = classify(404, &HeaderMap::new(), &body("not_found_error"));
        assert_eq!(missing.kind, FailureKind::ServerError);
        assert_eq!(
            classify(500, &HeaderMap::new(), &body("api_error")).kind,
            FailureKind::ServerError
        );
    }

    #[test]
    fn bodies_that_are_not_anthropic_errors_fall_back_on_the_status() {
        let failure = classify(503, &HeaderMap::new(), b"<html>busy</html>");
        assert!(matches!(failure.kind, FailureKind::Capacity { .. }));
        let unknown = classify(418, &HeaderMap::new(), &body("teapot_error"));
        assert!(matches!(
            unknown.kind,
            FailureKind::Rejected { status: 418, .. }
        ));
    }

    #[test]
    fn an_error_inside_a_200_fails_over() {
        let busy = error_in_answer(&body("overloaded_error"), "with an error");
        assert!(matches!(busy.kind, FailureKind::Capacity { .. }));
        assert_eq!(
            busy.detail,
            "the upstream answered 2xx with an error: overloaded_error m"
        );
        let odd = error_in_answer(b"{\"id\":1}", "that is not a message");
        assert_eq!(odd.kind, FailureKind::ServerError);
    }
}
