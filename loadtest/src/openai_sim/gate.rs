//! What every inference request passes before it is answered: the API key check
//! and the rate limiter (with its 429 and `x-ratelimit-*` headers).

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use super::ratelimit::{write_retry_after, RateDecision};
use super::state::SimState;

/// `Authorization: Bearer <key>` must match when the sim has a key.
pub(crate) fn check_auth(sim: &SimState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &sim.config.api_key else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if presented == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(ApiError::invalid_api_key())
    }
}

/// Counts the request against the limits; `Err` is the 429 to send.
pub(crate) fn admit(sim: &SimState, expected_tokens: u64) -> (RateDecision, Result<(), Response>) {
    let decision = sim.limiter.admit(expected_tokens);
    if decision.allowed {
        return (decision, Ok(()));
    }
    let limit = decision.limit_requests;
    let message = format!(
        "Rate limit reached for requests on {}: Limit {limit}, Used {limit}, Requested 1.",
        sim.config.name
    );
    let mut response = ApiError::rate_limited(message).into_response();
    // The window end is when a retry can succeed; never advertise 0 s.
    write_retry_after(response.headers_mut(), decision.reset, 1);
    (decision, Err(response))
}

/// Adds the `x-ratelimit-*` headers when the sim is configured to send them.
pub(crate) fn with_rate_headers(
    sim: &Arc<SimState>,
    decision: &RateDecision,
    mut response: Response,
) -> Response {
    if sim.config.send_rate_limit_headers {
        decision.write_headers(response.headers_mut());
    }
    response
}
