//! What an upstream's failure means for the request: fail over (capacity, server error,
//! timeout) or hand the error to the client (its own request was refused).
//!
//! Only the generic HTTP part lives here: status, `retry-after`, rate-limit headers and
//! OpenAI-style error bodies. Each provider unit classifies its own dialect first
//! (`providers/<kind>/errors.rs`) and falls back on [`classify_status`].

use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;

use crate::metrics::AttemptOutcome;
use crate::routing::headroom::RateLimitHeaders;

#[derive(Debug, Clone, PartialEq)]
pub enum FailureKind {
    /// Out of capacity (429, 503, 529, refused or dropped connection): cool down, fail over.
    Capacity { retry_after: Option<Duration> },
    /// No first byte before the attempt's deadline: cool down, fail over.
    Timeout,
    /// Other server-side failure (500, 502, garbage): fail over without a cool-down.
    ServerError,
    /// The upstream refused the request itself (400, 404, 422, …): return it to the client.
    Rejected {
        status: u16,
        param: Option<String>,
        code: Option<String>,
    },
    /// The upstream refused the proxy's credentials (401/403): an operator problem.
    CredentialsRejected { status: u16 },
}

/// One failed attempt, with a short description for logs and the final error.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptFailure {
    pub kind: FailureKind,
    pub detail: String,
    /// The upstream's `x-ratelimit-*` figures, when its answer carried them.
    pub rate_limits: Option<RateLimitHeaders>,
}

impl AttemptFailure {
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            rate_limits: None,
        }
    }

    /// Whether the next target may be tried.
    pub fn fails_over(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::Capacity { .. } | FailureKind::Timeout | FailureKind::ServerError
        )
    }

    pub fn outcome(&self) -> AttemptOutcome {
        match self.kind {
            FailureKind::Capacity { .. } => AttemptOutcome::Capacity,
            FailureKind::Timeout => AttemptOutcome::Timeout,
            FailureKind::ServerError
            | FailureKind::Rejected { .. }
            | FailureKind::CredentialsRejected { .. } => AttemptOutcome::Error,
        }
    }

    /// Low-cardinality label for `switchyard_failovers_total{reason}`.
    pub fn reason_label(&self) -> &'static str {
        match self.kind {
            FailureKind::Capacity { .. } => "capacity",
            FailureKind::Timeout => "timeout",
            FailureKind::ServerError => "server_error",
            FailureKind::Rejected { .. } => "rejected",
            FailureKind::CredentialsRejected { .. } => "credentials",
        }
    }
}

/// How one provider kind reads a non-2xx answer (status, headers, bounded body).
pub type Classifier = fn(u16, &HeaderMap, &[u8]) -> AttemptFailure;

/// Classifies a non-2xx answer from its status, headers and (bounded) body.
pub fn classify_status(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptFailure {
    let error = parse_error_body(body);
    let message = error
        .as_ref()
        .and_then(|e| e.message.clone())
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let detail = format!("HTTP {status}: {message}");
    let kind = match status {
        429 | 503 | 529 | 408 => FailureKind::Capacity {
            retry_after: retry_after(headers),
        },
        401 | 403 => FailureKind::CredentialsRejected { status },
        400..=499 => FailureKind::Rejected {
            status,
            param: error.as_ref().and_then(|e| e.param.clone()),
            code: error.and_then(|e| e.code),
        },
        _ => FailureKind::ServerError,
    };
    AttemptFailure {
        rate_limits: RateLimitHeaders::parse(headers),
        ..AttemptFailure::new(kind, detail)
    }
}

/// The fields of an OpenAI-style (or Azure-style) error body that the client may see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamErrorFields {
    pub message: Option<String>,
    pub param: Option<String>,
    pub code: Option<String>,
}

pub fn parse_error_body(body: &[u8]) -> Option<UpstreamErrorFields> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let text = |key: &str| match error.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some(UpstreamErrorFields {
        message: text("message").or_else(|| error.as_str().map(str::to_owned)),
        param: text("param"),
        code: text("code").or_else(|| text("type")),
    })
}

/// `retry-after-ms` (float milliseconds) first, then `retry-after` (seconds).
/// An HTTP-date `retry-after` is rare from model APIs and falls back to backoff.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    // An absurd figure (`1e300`) is no duration, not a panic (issue 15).
    if let Some(ms) = number("retry-after-ms") {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    number("retry-after").and_then(|secs| Duration::try_from_secs_f64(secs).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn capacity_statuses_fail_over_with_retry_after() {
        for status in [429, 503, 529] {
            let failure = classify_status(status, &headers(&[("retry-after", "2")]), b"{}");
            assert_eq!(
                failure.kind,
                FailureKind::Capacity {
                    retry_after: Some(Duration::from_secs(2))
                }
            );
            assert!(failure.fails_over());
        }
    }

    #[test]
    fn retry_after_ms_wins() {
        let h = headers(&[("retry-after", "2"), ("retry-after-ms", "250")]);
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
    }

    /// Issue 15: an upstream's absurd `retry-after` panicked the proxy's client thread.
    #[test]
    fn absurd_retry_after_is_ignored_not_a_panic() {
        assert_eq!(retry_after(&headers(&[("retry-after", "1e300")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after-ms", "1e308")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1e309")])), None);
    }

    #[test]
    fn client_errors_are_returned_with_their_fields() {
        let body = br#"{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":"invalid_value"}}"#;
        let failure = classify_status(400, &HeaderMap::new(), body);
        assert!(!failure.fails_over());
        assert_eq!(
            failure.kind,
            FailureKind::Rejected {
                status: 400,
                param: Some("messages".into()),
                code: Some("invalid_value".into())
            }
        );
        assert_eq!(failure.detail, "HTTP 400: bad");
    }

    #[test]
    fn server_errors_fail_over_without_cooldown_and_auth_errors_do_not() {
        assert_eq!(
            classify_status(500, &HeaderMap::new(), b"oops").kind,
            FailureKind::ServerError
        );
        assert_eq!(
            classify_status(401, &HeaderMap::new(), b"").kind,
            FailureKind::CredentialsRejected { status: 401 }
        );
    }

    #[test]
    fn azure_style_numeric_code_is_read() {
        let fields =
            parse_error_body(br#"{"error":{"code":"429","message":"slow down"}}"#).unwrap();
        assert_eq!(fields.code.as_deref(), Some("429"));
    }
}
