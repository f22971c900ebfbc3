//! Response pieces of the Anthropic simulator: the error shape, `request-id`,
//! `anthropic-ratelimit-*` headers from a fixed one-minute window, and RFC 3339 times.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::config::RateQuota;

const WINDOW: Duration = Duration::from_secs(60);

/// `{"type":"error","error":{"type","message"},"request_id"}` with `request-id`.
pub fn api_error(
    status: StatusCode,
    error_type: &str,
    message: &str,
    request_id: &str,
) -> Response {
    let body = json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    set(response.headers_mut(), "content-type", "application/json");
    set(response.headers_mut(), "request-id", request_id);
    response
}

pub fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Usage in the current window.
#[derive(Debug)]
pub struct Window {
    started: Instant,
    requests: u64,
    input: u64,
    output: u64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            requests: 0,
            input: 0,
            output: 0,
        }
    }
}

/// Why a request was refused by the quota, and when to retry.
pub struct OverQuota {
    pub retry_after_secs: u64,
    pub what: &'static str,
}

impl Window {
    fn roll(&mut self) {
        if self.started.elapsed() >= WINDOW {
            *self = Window::default();
        }
    }

    fn reset_in(&self) -> Duration {
        WINDOW.saturating_sub(self.started.elapsed())
    }

    /// Admits a request of `input` tokens, or says which limit it would break.
    pub fn admit(&mut self, quota: &RateQuota, input: u64) -> Result<(), OverQuota> {
        self.roll();
        let retry_after_secs = self.reset_in().as_secs().max(1);
        let what = if self.requests >= quota.requests_per_minute {
            Some("requests")
        } else if self.input + input > quota.input_tokens_per_minute {
            Some("input tokens")
        } else if self.output >= quota.output_tokens_per_minute {
            Some("output tokens")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(OverQuota {
                retry_after_secs,
                what,
            });
        }
        self.requests += 1;
        self.input += input;
        Ok(())
    }

    pub fn charge_output(&mut self, output: u64) {
        self.output += output;
    }

    /// The `anthropic-ratelimit-*` headers as of now.
    pub fn write_headers(&mut self, quota: &RateQuota, headers: &mut HeaderMap) {
        self.roll();
        let reset = rfc3339(SystemTime::now() + self.reset_in());
        let tokens_limit = quota.input_tokens_per_minute + quota.output_tokens_per_minute;
        let rows: [(&'static str, &'static str, &'static str, u64, u64); 4] = [
            (
                "anthropic-ratelimit-requests-limit",
                "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-requests-reset",
                quota.requests_per_minute,
                self.requests,
            ),
            (
                "anthropic-ratelimit-tokens-limit",
                "anthropic-ratelimit-tokens-remaining",
                "anthropic-ratelimit-tokens-reset",
                tokens_limit,
                self.input + self.output,
            ),
            (
                "anthropic-ratelimit-input-tokens-limit",
                "anthropic-ratelimit-input-tokens-remaining",
                "anthropic-ratelimit-input-tokens-reset",
                quota.input_tokens_per_minute,
                self.input,
            ),
            (
                "anthropic-ratelimit-output-tokens-limit",
                "anthropic-ratelimit-output-tokens-remaining",
                "anthropic-ratelimit-output-tokens-reset",
                quota.output_tokens_per_minute,
                self.output,
            ),
        ];
        for (limit_name, remaining_name, reset_name, limit, used) in rows {
            set(headers, limit_name, &limit.to_string());
            set(
                headers,
                remaining_name,
                &limit.saturating_sub(used).to_string(),
            );
            set(headers, reset_name, &reset);
        }
    }
}

/// `2026-01-02T03:04:05Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_704_067_200 + 3_661)),
            "2024-01-01T01:01:01Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn the_window_refuses_past_its_request_limit() {
        let quota = RateQuota {
            requests_per_minute: 1,
            ..RateQuota::default()
        };
        let mut window = Window::default();
        assert!(window.admit(&quota, 10).is_ok());
        let refused = window.admit(&quota, 10).err().map(|e| e.what);
        assert_eq!(refused, Some("requests"));
        let mut headers = HeaderMap::new();
        window.write_headers(&quota, &mut headers);
        assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "0");
        assert_eq!(
            headers["anthropic-ratelimit-input-tokens-remaining"],
            "399990"
        );
    }
}
