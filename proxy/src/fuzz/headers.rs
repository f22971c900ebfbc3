//! Fuzz target: an upstream's status, headers and error body through each provider's
//! classifier and the rate-limit header reader (absurd `retry-after` and reset figures once
//! panicked the client thread).

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::select;

use super::{apply_edits, byte_edit, fuzz, seeds, FIXTURE};
use crate::providers::registry::classifier;
use crate::routing::headroom::RateLimitHeaders;

/// Input layout: two status bytes, then `name: value` lines, a blank line, the body.
fn classify(input: &[u8]) {
    let status = match input {
        [a, b, ..] => 100 + (u16::from(*a) << 8 | u16::from(*b)) % 500,
        _ => 500,
    };
    let rest = input.get(2..).unwrap_or_default();
    let text = String::from_utf8_lossy(rest);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut headers = HeaderMap::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let _ = RateLimitHeaders::parse(&headers);
    for target in FIXTURE.targets() {
        let failure = classifier(&target.provider.kind)(status, &headers, body.as_bytes());
        let _ = (failure.fails_over(), failure.reason_label());
    }
}

const NAMES: &[&str] = &[
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-amzn-errortype",
    "content-type",
];
const VALUES: &[&str] = &[
    "1",
    "-1",
    "0",
    "1e300",
    "-1e309",
    "NaN",
    "inf",
    "1.5",
    "18446744073709551616",
    "1000000000000000000h",
    "1h2m3.5s",
    "6m0s",
    "250ms",
    "1us",
    "ThrottlingException",
    "",
];

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    let header = (select(NAMES), select(VALUES)).prop_map(|(n, v)| format!("{n}: {v}\n"));
    let generated = (
        any::<[u8; 2]>(),
        prop::collection::vec(header, 0..8),
        ".{0,64}",
    )
        .prop_map(|(status, headers, body)| {
            let mut input = status.to_vec();
            input.extend(headers.concat().into_bytes());
            input.extend(b"\n\n");
            input.extend(body.into_bytes());
            input
        });
    prop_oneof![
        3 => generated,
        1 => (select(seeds("headers")), prop::collection::vec(byte_edit(), 0..4))
            .prop_map(|(seed, edits)| apply_edits(seed, &edits)),
    ]
}

#[test]
fn upstream_error_classification() {
    fuzz("upstream classification", "headers", inputs(), classify);
}
