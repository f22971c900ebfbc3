//! How an OpenAI-compatible upstream's failures are classified: it speaks the generic
//! dialect (HTTP status, `retry-after`, `{"error": {message, param, code}}`), so the
//! generic classifier in `upstream/classify.rs` is the whole of it.

use http::HeaderMap;

use crate::upstream::classify::{classify_status, parse_error_body};
use crate::upstream::{AttemptFailure, Classifier, FailureKind};

/// Classifies a non-2xx answer of an OpenAI-compatible endpoint.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptFailure {
    classify_status(status, headers, body)
}

/// Error codes (or types) saying the upstream is out of capacity rather than broken.
pub fn is_capacity_code(code: &str) -> bool {
    matches!(
        code,
        "rate_limit_exceeded"
            | "rate_limit_error"
            | "server_overloaded"
            | "overloaded_error"
            | "service_unavailable"
            | "429"
            | "503"
            | "529"
    )
}

/// A 2xx answer that is not an answer (`missing` says what it lacks: an `error` object, or
/// no `choices`): never the client's 200, always a failure that fails over. An error object
/// whose code or type means capacity is read by the provider's `classify` as the 429 it
/// stands for (a cool-down); anything else as a 502 (a server error).
pub fn error_in_answer(classify: Classifier, body: &[u8], missing: &str) -> AttemptFailure {
    let error = parse_error_body(body);
    let capacity = error
        .as_ref()
        .and_then(|e| e.code.as_deref())
        .is_some_and(is_capacity_code);
    let status = if capacity { 429 } else { 502 };
    let mut failure = classify(status, &HeaderMap::new(), body);
    if !failure.fails_over() {
        failure.kind = FailureKind::ServerError;
    }
    let message = error
        .and_then(|e| e.message)
        .map_or_else(String::new, |m| format!(": {m}"));
    failure.detail = format!("the upstream answered 2xx {missing}{message}");
    failure
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::FailureKind;

    #[test]
    fn an_error_object_in_a_2xx_fails_over_by_its_code() {
        let body = br#"{"error":{"message":"busy","type":"server_error","code":null}}"#;
        let failure = error_in_answer(classify, body, "with an error");
        assert_eq!(failure.kind, FailureKind::ServerError);
        assert_eq!(
            failure.detail,
            "the upstream answered 2xx with an error: busy"
        );
        let body = br#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#;
        let failure = error_in_answer(classify, body, "with an error");
        assert_eq!(failure.kind, FailureKind::Capacity { retry_after: None });
        // A client-looking error inside a 2xx is still the upstream's failure.
        let body = br#"{"error":{"message":"bad","code":"invalid_request_error"}}"#;
        assert!(error_in_answer(classify, body, "with an error").fails_over());
        let failure = error_in_answer(classify, br#"{"id":"x"}"#, "without `choices`");
        assert_eq!(failure.kind, FailureKind::ServerError);
    }

    #[test]
    fn an_aws_looking_body_is_not_read_as_an_aws_error() {
        // Only Bedrock's unit knows AWS error types; here `__type` is just text.
        let body = br#"{"__type":"ThrottlingException","message":"m"}"#;
        let failure = classify(400, &HeaderMap::new(), body);
        assert!(matches!(
            failure.kind,
            FailureKind::Rejected { status: 400, .. }
        ));
    }
}
