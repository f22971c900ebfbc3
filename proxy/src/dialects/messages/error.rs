//! Anthropic's error shape, `{"type": "error", "error": {"type", "message"}}`, and its
//! status ↔ error-type pairs: the body of every error on `/v1/messages*` and the data of a
//! stream's `event: error`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Anthropic's `error.type` for an HTTP status (docs: "Errors"); a status Anthropic does not
/// list takes its class's type.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500 => "api_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Anthropic's error types, as the SDK knows them.
const TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
];

/// The `error.type` of a stream's `event: error` for the relay's failure code: an Anthropic
/// type passes as is, a timeout is `timeout_error`, anything else `api_error`.
pub fn stream_error_type(code: &str) -> &str {
    match code {
        known if TYPES.contains(&known) => known,
        "upstream_timeout" => "timeout_error",
        _ => "api_error",
    }
}

/// Whether an error type says the upstream is out of capacity (worth another target).
pub fn is_capacity(error_type: &str) -> bool {
    matches!(error_type, "overloaded_error" | "rate_limit_error")
}

/// `{"type": "error", "error": {...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ErrorBody {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: ErrorDetail,
    /// `request_id` and newer members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorBody {
    pub fn new(error_type: &str, message: impl Into<String>) -> Self {
        ErrorBody {
            kind: "error".to_owned(),
            error: ErrorDetail {
                kind: error_type.to_owned(),
                message: message.into(),
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Strings and maps of strings always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The error body for `error_type` (see [`error_type`]) and `message`.
pub fn body(error_type: &str, message: impl Into<String>) -> Vec<u8> {
    ErrorBody::new(error_type, message).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_map_to_anthropics_types() {
        let pairs = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (409, "invalid_request_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (529, "overloaded_error"),
        ];
        for (status, kind) in pairs {
            assert_eq!(error_type(status), kind, "{status}");
        }
        assert!(is_capacity("overloaded_error") && !is_capacity("api_error"));
        assert_eq!(stream_error_type("overloaded_error"), "overloaded_error");
        assert_eq!(stream_error_type("upstream_timeout"), "timeout_error");
        assert_eq!(stream_error_type("upstream_error"), "api_error");
    }

    #[test]
    fn body_has_anthropics_shape_and_parses_back() {
        let bytes = body("overloaded_error", "Overloaded");
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            value,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        );
        let parsed: ErrorBody = serde_json::from_value(json!({"type": "error",
            "error": {"type": "rate_limit_error", "message": "slow down"}, "request_id": "req_1"}))
        .unwrap();
        assert_eq!(parsed.error.kind, "rate_limit_error");
        assert_eq!(parsed.extra["request_id"], "req_1");
    }
}
