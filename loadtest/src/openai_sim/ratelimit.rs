//! The fixed-window request/token counters behind `rpm_limit`, and the
//! `x-ratelimit-*` / `retry-after` headers they produce (docs/wire-formats.md §7).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::duration::format_go_duration;

const WINDOW: Duration = Duration::from_secs(60);
/// Advertised request limit when the sim does not enforce one.
const DEFAULT_RPM: u64 = 10_000;
/// Token budget per allowed request, to derive a plausible tokens-per-minute limit.
const TOKENS_PER_REQUEST: u64 = 1_000;

/// A counter that restarts every window. Window index and count share one atomic
/// word so a rollover and an increment can never interleave.
#[derive(Default)]
struct WindowCounter(AtomicU64);

const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

impl WindowCounter {
    /// Adds `amount` in `window` and returns the window's new total.
    fn add(&self, window: u64, amount: u64) -> u64 {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let stored_window = current >> COUNT_BITS;
            // A caller that read the clock just before a rollover counts in the new window.
            let window = window.max(stored_window);
            let base = if stored_window == window {
                current & COUNT_MASK
            } else {
                0
            };
            let total = base.saturating_add(amount).min(COUNT_MASK);
            let next = (window << COUNT_BITS) | total;
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return total,
                Err(actual) => current = actual,
            }
        }
    }

    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// The outcome of admitting one request, with everything the headers need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateDecision {
    pub allowed: bool,
    pub limit_requests: u64,
    pub remaining_requests: u64,
    pub limit_tokens: u64,
    pub remaining_tokens: u64,
    /// Time until the current window ends and both buckets are full again.
    pub reset: Duration,
}

pub(crate) struct RateLimiter {
    started: Instant,
    enforced: bool,
    limit_requests: u64,
    limit_tokens: u64,
    requests: WindowCounter,
    tokens: WindowCounter,
}

impl RateLimiter {
    pub(crate) fn new(rpm_limit: Option<u64>) -> Self {
        let limit_requests = rpm_limit.unwrap_or(DEFAULT_RPM);
        Self {
            started: Instant::now(),
            enforced: rpm_limit.is_some(),
            limit_requests,
            limit_tokens: limit_requests.saturating_mul(TOKENS_PER_REQUEST),
            requests: WindowCounter::default(),
            tokens: WindowCounter::default(),
        }
    }

    /// Counts one request that expects to use `tokens` and says whether it may proceed.
    pub(crate) fn admit(&self, tokens: u64) -> RateDecision {
        let elapsed = self.started.elapsed();
        let window_ms = WINDOW.as_millis() as u64;
        let elapsed_ms = elapsed.as_millis() as u64;
        let window = elapsed_ms / window_ms;
        let reset = Duration::from_millis(window_ms - elapsed_ms % window_ms);
        let used_requests = self.requests.add(window, 1);
        let allowed = !self.enforced || used_requests <= self.limit_requests;
        // A refused request spends no tokens, as with OpenAI.
        let used_tokens = self.tokens.add(window, if allowed { tokens } else { 0 });
        RateDecision {
            allowed,
            limit_requests: self.limit_requests,
            remaining_requests: self.limit_requests.saturating_sub(used_requests),
            limit_tokens: self.limit_tokens,
            remaining_tokens: self.limit_tokens.saturating_sub(used_tokens),
            reset,
        }
    }

    pub(crate) fn reset(&self) {
        self.requests.reset();
        self.tokens.reset();
    }
}

impl RateDecision {
    /// Adds the six `x-ratelimit-*` headers.
    pub(crate) fn write_headers(&self, headers: &mut HeaderMap) {
        let reset = format_go_duration(self.reset);
        let pairs = [
            (
                "x-ratelimit-limit-requests",
                self.limit_requests.to_string(),
            ),
            (
                "x-ratelimit-remaining-requests",
                self.remaining_requests.to_string(),
            ),
            ("x-ratelimit-reset-requests", reset.clone()),
            ("x-ratelimit-limit-tokens", self.limit_tokens.to_string()),
            (
                "x-ratelimit-remaining-tokens",
                self.remaining_tokens.to_string(),
            ),
            ("x-ratelimit-reset-tokens", reset),
        ];
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}

/// Adds `retry-after-ms` and `retry-after` (whole seconds, rounded up, at least `min_secs`).
pub(crate) fn write_retry_after(headers: &mut HeaderMap, wait: Duration, min_secs: u64) {
    let millis = wait.as_millis() as u64;
    let secs = millis.div_ceil(1000).max(min_secs);
    headers.insert(
        HeaderName::from_static("retry-after-ms"),
        HeaderValue::from(millis),
    );
    headers.insert(
        HeaderName::from_static("retry-after"),
        HeaderValue::from(secs),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counter_restarts_on_a_new_window() {
        let counter = WindowCounter::default();
        assert_eq!(counter.add(0, 1), 1);
        assert_eq!(counter.add(0, 2), 3);
        assert_eq!(counter.add(1, 1), 1);
        // A late caller still in window 0 lands in window 1.
        assert_eq!(counter.add(0, 1), 2);
    }

    #[test]
    fn enforces_the_request_limit() {
        let limiter = RateLimiter::new(Some(2));
        assert!(limiter.admit(10).allowed);
        let second = limiter.admit(10);
        assert!(second.allowed);
        assert_eq!(second.remaining_requests, 0);
        assert_eq!(second.remaining_tokens, 2 * TOKENS_PER_REQUEST - 20);
        let third = limiter.admit(10);
        assert!(!third.allowed);
        assert!(third.reset <= WINDOW && !third.reset.is_zero());
    }
}
