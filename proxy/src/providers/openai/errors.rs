//! How an OpenAI-compatible upstream's failures are classified: it speaks the generic
//! dialect (HTTP status, `retry-after`, `{"error": {message, param, code}}`), so the
//! generic classifier in `upstream/classify.rs` is the whole of it.

use http::HeaderMap;

use crate::upstream::classify::classify_status;
use crate::upstream::AttemptFailure;

/// Classifies a non-2xx answer of an OpenAI-compatible endpoint.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptFailure {
    classify_status(status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::FailureKind;

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
