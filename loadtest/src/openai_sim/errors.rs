//! OpenAI-style error responses (`{"error":{"message","type","param","code"}}`,
//! docs/wire-formats.md §1.4) and the status → type/code table the faults use.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answer in OpenAI's shape. `kind` is the `type` field.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// A 400 about one request field, as OpenAI's validation reports it.
    pub(crate) fn invalid_request(message: impl Into<String>, param: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param),
            code: None,
        }
    }

    /// A 400 for a body that is not a JSON object.
    pub(crate) fn unparseable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }
    }

    pub(crate) fn invalid_api_key() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "Incorrect API key provided.".to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("not_found"),
        }
    }

    pub(crate) fn rate_limited(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
            kind: "requests",
            param: None,
            code: Some("rate_limit_exceeded"),
        }
    }

    /// The same error with OpenAI's machine-readable `code`.
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub(crate) fn shutting_down() -> Self {
        Self::for_status(503, "The simulator is shutting down.")
    }

    /// The error a real upstream would send with this status (scripted faults).
    pub(crate) fn for_status(status: u16, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (kind, code) = match status.as_u16() {
            400 | 422 => ("invalid_request_error", "invalid_request_error"),
            401 => ("invalid_request_error", "invalid_api_key"),
            403 => ("permission_denied", "permission_denied"),
            404 => ("invalid_request_error", "model_not_found"),
            408 => ("timeout", "timeout"),
            409 => ("conflict", "conflict"),
            429 => ("requests", "rate_limit_exceeded"),
            502..=504 => ("server_error", "service_unavailable"),
            529 => ("server_error", "overloaded"),
            _ if status.is_server_error() => ("server_error", "server_error"),
            _ => ("invalid_request_error", "invalid_request_error"),
        };
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: Some(code),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, Json(body)).into_response()
    }
}
