//! OpenAI-style error bodies: `{"error": {"message", "type", "param", "code"}}`.

use serde::Serialize;

/// OpenAI's error class (`type`), which the SDKs use to pick an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    PermissionError,
    InsufficientQuota,
    RateLimitError,
    ServerError,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorBody {
    pub fn new(kind: ErrorType, code: &str, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                message: message.into(),
                kind,
                param: None,
                code: Some(code.to_owned()),
            },
        }
    }

    pub fn with_param(mut self, param: Option<String>) -> Self {
        self.error.param = param;
        self
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and enums cannot fail; fall back to a fixed body anyway.
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#
                .to_vec()
        })
    }

    /// The SSE event that ends a stream which failed after its first byte reached the client.
    pub fn to_sse_event(&self) -> Vec<u8> {
        let mut event = b"data: ".to_vec();
        event.extend_from_slice(&self.to_json());
        event.extend_from_slice(b"\n\n");
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_openai() {
        let body = ErrorBody::new(ErrorType::InvalidRequestError, "model_not_found", "nope")
            .with_param(Some("model".into()));
        let json: serde_json::Value = serde_json::from_slice(&body.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"message": "nope", "type": "invalid_request_error",
                "param": "model", "code": "model_not_found"}})
        );
        assert!(body.to_sse_event().starts_with(b"data: {\"error\""));
    }
}
