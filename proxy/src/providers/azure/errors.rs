//! How an Azure OpenAI upstream's failures are classified. Azure answers in OpenAI's error
//! shape (a content-filter refusal is a 400 with `code: content_filter`, returned to the
//! client; a PTU or quota 429 carries `retry-after-ms`), so the generic classifier reads
//! it; this module is where Azure-only codes go when they need a class of their own.

use http::HeaderMap;

use crate::upstream::classify::classify_status;
use crate::upstream::AttemptFailure;

/// Classifies a non-2xx answer of an Azure OpenAI deployment.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptFailure {
    classify_status(status, headers, body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;
    use crate::upstream::FailureKind;

    #[test]
    fn a_content_filter_refusal_goes_back_to_the_client() {
        let body = br#"{"error":{"code":"content_filter","message":"filtered","param":"prompt"}}"#;
        let failure = classify(400, &HeaderMap::new(), body);
        assert!(!failure.fails_over());
        assert_eq!(
            failure.kind,
            FailureKind::Rejected {
                status: 400,
                param: Some("prompt".into()),
                code: Some("content_filter".into())
            }
        );
    }

    #[test]
    fn a_quota_429_fails_over_after_retry_after_ms() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        let failure = classify(429, &headers, br#"{"error":{"code":"429","message":"m"}}"#);
        assert_eq!(
            failure.kind,
            FailureKind::Capacity {
                retry_after: Some(Duration::from_millis(1500))
            }
        );
    }
}
