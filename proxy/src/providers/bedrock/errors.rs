//! Bedrock's error types (`x-amzn-ErrorType` header, body `__type`/`code`, stream exception
//! frames) mapped to the proxy's failure classes, as docs/wire-formats.md §4's table says:
//! throttling and unavailability fail over; the client's own mistakes are returned.

use http::HeaderMap;
use serde_json::Value;

use super::converse::wire::ExceptionBody;
use super::eventstream::Frame;
use crate::providers::UpstreamStreamError;
use crate::upstream::classify::{classify_status, retry_after};
use crate::upstream::{AttemptFailure, FailureKind};

/// Classifies a non-2xx answer of a Bedrock endpoint: by its AWS error type when it names
/// one, else (a proxy or load balancer in front answered) by the generic HTTP rules.
pub fn classify_answer(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptFailure {
    classify(status, headers, body).unwrap_or_else(|| classify_status(status, headers, body))
}

/// The error code of a Bedrock error answer, if it is one: the `x-amzn-ErrorType` header,
/// else body `code`, else `__type`; the part before the first `:` and after any `#`.
pub fn error_code(headers: &HeaderMap, body: &Value) -> Option<String> {
    let raw = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| body.get("code").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            body.get("__type")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })?;
    let before_colon = raw.split(':').next().unwrap_or_default();
    let name = before_colon.rsplit('#').next().unwrap_or_default().trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Classifies a non-2xx Bedrock answer; `None` when it does not look like one (no AWS
/// error type), so the generic classification applies.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Option<AttemptFailure> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = error_code(headers, &value)?;
    let message = value
        .get("message")
        .or_else(|| value.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_owned();
    let detail = format!("HTTP {status} {code}: {message}");
    Some(AttemptFailure::new(kind_of(&code, status, headers), detail))
}

fn kind_of(code: &str, status: u16, headers: &HeaderMap) -> FailureKind {
    let capacity = FailureKind::Capacity {
        retry_after: retry_after(headers),
    };
    match code {
        "ThrottlingException"
        | "ServiceUnavailableException"
        | "ModelNotReadyException"
        | "ServiceQuotaExceededException" => capacity,
        "ModelTimeoutException" => FailureKind::Timeout,
        "InternalServerException" | "ModelErrorException" | "ModelStreamErrorException" => {
            FailureKind::ServerError
        }
        // A model or profile missing in this region is this target's misconfiguration:
        // another target may well serve the request.
        "ResourceNotFoundException" => FailureKind::ServerError,
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "IncompleteSignatureException" => FailureKind::CredentialsRejected { status: 403 },
        "ValidationException" => FailureKind::Rejected {
            status: 400,
            param: None,
            code: Some("invalid_request".to_owned()),
        },
        "ConflictException" => FailureKind::Rejected {
            status: 409,
            param: None,
            code: Some("conflict".to_owned()),
        },
        _ => match status {
            429 | 503 => capacity,
            400..=499 => FailureKind::Rejected {
                status,
                param: None,
                code: None,
            },
            _ => FailureKind::ServerError,
        },
    }
}

/// An exception frame's class: capacity errors may fail over before the first client byte.
pub fn exception_is_capacity(exception_type: &str) -> bool {
    matches!(
        exception_type,
        "throttlingException"
            | "serviceUnavailableException"
            | "modelNotReadyException"
            | "ThrottlingException"
            | "ServiceUnavailableException"
            | "ModelNotReadyException"
    )
}

/// An `exception` frame of a Bedrock stream (ConverseStream or InvokeModelWithResponseStream)
/// as the stream's failure: throttling and unavailability are capacity errors, which fail
/// over while nothing reached the client.
pub fn stream_exception(frame: &Frame) -> UpstreamStreamError {
    let message = serde_json::from_slice::<ExceptionBody>(&frame.payload)
        .ok()
        .and_then(|body| body.message)
        .unwrap_or_else(|| frame.event_type.clone());
    UpstreamStreamError {
        message: format!("Bedrock {}: {message}", frame.event_type),
        code: Some(exception_code(&frame.event_type).to_owned()),
        capacity: exception_is_capacity(&frame.event_type),
    }
}

/// The OpenAI-style `code` of a stream exception, for the client's error event.
pub fn exception_code(exception_type: &str) -> &'static str {
    match exception_type {
        "throttlingException" | "ThrottlingException" => "rate_limit_exceeded",
        "serviceUnavailableException" | "ServiceUnavailableException" => "upstream_unavailable",
        "validationException" | "ValidationException" => "invalid_request",
        _ => "upstream_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn code_comes_from_header_then_body_code_then_type() {
        let h =
            with_type("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/");
        assert_eq!(error_code(&h, &Value::Null).unwrap(), "ThrottlingException");
        let body = serde_json::json!({"__type": "com.amazon.bedrock#ValidationException"});
        assert_eq!(
            error_code(&HeaderMap::new(), &body).unwrap(),
            "ValidationException"
        );
        assert!(error_code(&HeaderMap::new(), &serde_json::json!({"error": {}})).is_none());
    }

    #[test]
    fn table_of_wire_formats_section_4() {
        type Check = fn(&FailureKind) -> bool;
        let cases: &[(&str, u16, Check)] = &[
            ("ThrottlingException", 429, |k| {
                matches!(k, FailureKind::Capacity { .. })
            }),
            ("ServiceUnavailableException", 503, |k| {
                matches!(k, FailureKind::Capacity { .. })
            }),
            ("ModelNotReadyException", 429, |k| {
                matches!(k, FailureKind::Capacity { .. })
            }),
            ("ServiceQuotaExceededException", 400, |k| {
                matches!(k, FailureKind::Capacity { .. })
            }),
            ("InternalServerException", 500, |k| {
                *k == FailureKind::ServerError
            }),
            ("ModelTimeoutException", 408, |k| *k == FailureKind::Timeout),
            ("ModelErrorException", 424, |k| {
                *k == FailureKind::ServerError
            }),
            ("ModelStreamErrorException", 424, |k| {
                *k == FailureKind::ServerError
            }),
            ("ValidationException", 400, |k| {
                matches!(k, FailureKind::Rejected { status: 400, .. })
            }),
            ("AccessDeniedException", 403, |k| {
                matches!(k, FailureKind::CredentialsRejected { .. })
            }),
            ("ResourceNotFoundException", 404, |k| {
                *k == FailureKind::ServerError
            }),
            ("ConflictException", 400, |k| {
                matches!(k, FailureKind::Rejected { status: 409, .. })
            }),
        ];
        for (code, status, check) in cases {
            let body = format!(r#"{{"message":"m","__type":"{code}"}}"#);
            let failure = classify(*status, &HeaderMap::new(), body.as_bytes()).unwrap();
            assert!(check(&failure.kind), "{code}: {:?}", failure.kind);
            assert!(failure.detail.contains(code));
        }
    }

    #[test]
    fn openai_style_errors_are_not_bedrock_errors() {
        assert!(classify(429, &HeaderMap::new(), br#"{"error":{"message":"x"}}"#).is_none());
        let generic = classify_answer(429, &HeaderMap::new(), br#"{"error":{"message":"x"}}"#);
        assert!(matches!(generic.kind, FailureKind::Capacity { .. }));
        assert_eq!(generic.detail, "HTTP 429: x");
    }

    #[test]
    fn stream_exceptions() {
        assert!(exception_is_capacity("throttlingException"));
        assert!(exception_is_capacity("serviceUnavailableException"));
        assert!(!exception_is_capacity("validationException"));
        assert_eq!(exception_code("throttlingException"), "rate_limit_exceeded");
    }
}
