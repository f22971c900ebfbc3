//! Remaining capacity of a target, from the upstream's rate-limit headers
//! (`x-ratelimit-remaining-*`, OpenAI and Azure; `anthropic-ratelimit-*`, Anthropic) and from
//! the configured `limits` counted locally. Headroom is a fraction in 0..=1: 1 = untouched quota, 0 = exhausted.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use tokio::time::Instant;

use super::window::Counts;
use crate::config::Limits;

/// Without a reset time, an observation fades back to "plenty" over this long.
const OBSERVATION_LIFETIME: Duration = Duration::from_secs(60);

/// What one response said about the upstream's quota (each figure optional).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimitHeaders {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub reset_requests: Option<Duration>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_tokens: Option<Duration>,
    /// Azure PTU deployments' `azure-openai-deployment-utilization` (percent).
    pub utilization_pct: Option<f64>,
}

impl RateLimitHeaders {
    /// Reads the `x-ratelimit-*` headers, else Anthropic's `anthropic-ratelimit-*`; `None`
    /// when there are none. Negative or unparsable values (Azure's `-1` placeholders) count
    /// as unknown.
    pub fn parse(headers: &HeaderMap) -> Option<Self> {
        let found = Found::in_headers(headers);
        found
            .openai()
            .or_else(|| found.anthropic(SystemTime::now()))
    }

    /// Anthropic's headers alone, read against `now`.
    #[cfg(test)]
    fn parse_anthropic(headers: &HeaderMap, now: SystemTime) -> Option<Self> {
        Found::in_headers(headers).anthropic(now)
    }

    /// Headroom right after the observation, from remaining/limit pairs; a remaining count
    /// without its limit is judged against the configured `limits`.
    fn fraction(&self, limits: Option<&Limits>) -> Option<f64> {
        let pair = |remaining: Option<u64>, limit: Option<u64>| -> Option<f64> {
            let remaining = remaining? as f64;
            let limit = limit? as f64;
            Some((remaining / limit).clamp(0.0, 1.0))
        };
        let requests = pair(
            self.remaining_requests,
            self.limit_requests.or(limits.and_then(|l| l.rpm)),
        );
        let tokens = pair(
            self.remaining_tokens,
            self.limit_tokens.or(limits.and_then(|l| l.tpm)),
        );
        // A PTU deployment's utilization is a direct figure: 100 % used = no headroom.
        let provisioned = self
            .utilization_pct
            .map(|pct| (1.0 - pct / 100.0).clamp(0.0, 1.0));
        min_known(min_known(requests, tokens), provisioned)
    }
}

/// OpenAI's and Azure's rate-limit headers, in [`Found::openai`]'s order.
const OPENAI_HEADERS: [&str; 7] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "azure-openai-deployment-utilization",
];

/// Anthropic's quotas (requests, then the three token quotas), each as limit, remaining,
/// reset.
const ANTHROPIC_HEADERS: [[&str; 3]; 4] = [
    [
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ],
    [
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ],
    [
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ],
    [
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ],
];

/// The rate-limit headers' values, found in one pass over an answer's headers. This runs
/// on every answer: a dozen names compared, where nineteen lookups by name would parse and
/// hash each name. Each slot holds the first value of its name, as `HeaderMap::get` gives
/// (`Some(None)`: present, but not text).
#[derive(Default)]
struct Found<'a> {
    openai: [Option<Option<&'a str>>; 7],
    anthropic: [[Option<Option<&'a str>>; 3]; 4],
}

impl<'a> Found<'a> {
    fn in_headers(headers: &'a HeaderMap) -> Self {
        let mut found = Self::default();
        for (name, value) in headers {
            let name = name.as_str();
            let slot = if name.starts_with("x-ratelimit-") || name.starts_with("azure-openai-") {
                OPENAI_HEADERS
                    .iter()
                    .position(|known| *known == name)
                    .map(|at| &mut found.openai[at])
            } else if name.starts_with("anthropic-ratelimit-") {
                ANTHROPIC_HEADERS
                    .iter()
                    .enumerate()
                    .find_map(|(quota, names)| {
                        Some((quota, names.iter().position(|known| *known == name)?))
                    })
                    .map(|(quota, at)| &mut found.anthropic[quota][at])
            } else {
                None
            };
            if let Some(slot @ None) = slot {
                *slot = Some(value.to_str().ok());
            }
        }
        found
    }

    /// `x-ratelimit-*` (and Azure's utilization), when any is there.
    fn openai(&self) -> Option<RateLimitHeaders> {
        let text = |at: usize| self.openai[at].flatten().map(str::trim);
        let number = |at: usize| text(at)?.parse::<u64>().ok();
        let duration = |at: usize| parse_go_duration(text(at)?);
        let parsed = RateLimitHeaders {
            limit_requests: number(0).filter(|l| *l > 0),
            remaining_requests: number(1),
            reset_requests: duration(2),
            limit_tokens: number(3).filter(|l| *l > 0),
            remaining_tokens: number(4),
            reset_tokens: duration(5),
            utilization_pct: text(6)
                .and_then(|v| v.trim_end_matches('%').parse::<f64>().ok())
                .filter(|pct| pct.is_finite() && *pct >= 0.0),
        };
        (parsed != RateLimitHeaders::default()).then_some(parsed)
    }

    /// Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
    /// {limit,remaining,reset}` (reset an RFC 3339 instant, read against `now`). Of the three
    /// token quotas the scarcest (least remaining of its limit) stands for tokens.
    fn anthropic(&self, now: SystemTime) -> Option<RateLimitHeaders> {
        let quota = |[limit, remaining, reset]: [Option<Option<&str>>; 3]| {
            let number = |value: Option<Option<&str>>| value??.trim().parse::<u64>().ok();
            let reset = reset
                .flatten()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
                .map(|at| {
                    let at = SystemTime::from(at);
                    at.duration_since(now).unwrap_or(Duration::ZERO)
                });
            (number(limit).filter(|l| *l > 0), number(remaining), reset)
        };
        let [requests, tokens @ ..] = self.anthropic;
        let (limit_requests, remaining_requests, reset_requests) = quota(requests);
        let fraction = |(limit, remaining, _): &(Option<u64>, Option<u64>, Option<Duration>)| {
            Some(remaining.as_ref().copied()? as f64 / limit.as_ref().copied()? as f64)
        };
        let tokens = tokens
            .map(quota)
            .into_iter()
            .filter(|q| q.0.is_some() || q.1.is_some())
            .min_by(|a, b| {
                let (a, b) = (fraction(a).unwrap_or(1.0), fraction(b).unwrap_or(1.0));
                a.total_cmp(&b)
            });
        let (limit_tokens, remaining_tokens, reset_tokens) = tokens.unwrap_or_default();
        let parsed = RateLimitHeaders {
            limit_requests,
            remaining_requests,
            reset_requests,
            limit_tokens,
            remaining_tokens,
            reset_tokens,
            utilization_pct: None,
        };
        (parsed != RateLimitHeaders::default()).then_some(parsed)
    }
}

/// An observation of the headers at a point in time.
#[derive(Debug, Clone, Copy)]
pub struct ObservedLimits {
    pub headers: RateLimitHeaders,
    pub at: Instant,
}

impl ObservedLimits {
    /// Headroom now: the observed fraction, recovering linearly toward 1 until the reset
    /// time the upstream gave (or [`OBSERVATION_LIFETIME`]).
    pub fn headroom(&self, now: Instant, limits: Option<&Limits>) -> Option<f64> {
        let fraction = self.headers.fraction(limits)?;
        let reset = [self.headers.reset_requests, self.headers.reset_tokens]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(OBSERVATION_LIFETIME)
            .max(Duration::from_millis(1));
        let elapsed = now.saturating_duration_since(self.at);
        let recovered = (elapsed.as_secs_f64() / reset.as_secs_f64()).min(1.0);
        Some(fraction + (1.0 - fraction) * recovered)
    }
}

/// Headroom left under the configured `limits`, from what this proxy sent in the window.
pub fn local_headroom(limits: Option<&Limits>, window: &Counts) -> Option<f64> {
    let limits = limits?;
    let left = |used: u64, limit: Option<u64>| -> Option<f64> {
        let limit = limit? as f64;
        Some((1.0 - used as f64 / limit).clamp(0.0, 1.0))
    };
    min_known(
        left(window.started, limits.rpm),
        left(window.tokens, limits.tpm),
    )
}

pub fn min_known(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Go-style durations as OpenAI sends them: `1s`, `250ms`, `6m0s`, `1h2m3.5s`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    // An absurd figure (`1000000000000000000h`) is no duration, not a panic (issue 15).
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_repeated_header_counts_by_its_first_value_as_a_lookup_would() {
        let mut map = headers(&[("content-type", "application/json")]);
        map.append(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static("7"),
        );
        map.append(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static("9"),
        );
        map.append(
            "x-ratelimit-limit-requests",
            HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        map.append("x-ratelimit-limit-requests", HeaderValue::from_static("20"));
        map.append(
            "azure-openai-deployment-utilization",
            HeaderValue::from_static(" 42.5% "),
        );
        let parsed = RateLimitHeaders::parse(&map).unwrap();
        assert_eq!(parsed.remaining_requests, Some(7));
        assert_eq!(parsed.limit_requests, None, "the first value is not text");
        assert_eq!(parsed.utilization_pct, Some(42.5));
        // Anthropic's are read only when there are no OpenAI-style ones.
        map.append(
            "anthropic-ratelimit-requests-remaining",
            HeaderValue::from_static("1"),
        );
        assert_eq!(
            RateLimitHeaders::parse(&map).unwrap().remaining_requests,
            Some(7)
        );
        let only_anthropic = headers(&[
            ("anthropic-ratelimit-output-tokens-limit", "100"),
            ("anthropic-ratelimit-output-tokens-remaining", "5"),
            ("anthropic-ratelimit-tokens-limit", "100"),
            ("anthropic-ratelimit-tokens-remaining", "50"),
        ]);
        let parsed = RateLimitHeaders::parse(&only_anthropic).unwrap();
        assert_eq!(
            (parsed.limit_tokens, parsed.remaining_tokens),
            (Some(100), Some(5)),
            "the scarcest token quota"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_go_duration("soon"), None);
        // Issue 15: an absurd figure panicked the proxy's client thread.
        assert_eq!(parse_go_duration("1000000000000000000h"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn headroom_is_the_scarcer_resource_and_recovers_until_reset() {
        let parsed = RateLimitHeaders::parse(&headers(&[
            ("x-ratelimit-limit-requests", "100"),
            ("x-ratelimit-remaining-requests", "50"),
            ("x-ratelimit-limit-tokens", "1000"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-reset-tokens", "10s"),
        ]))
        .unwrap();
        let at = Instant::now();
        let observed = ObservedLimits {
            headers: parsed,
            at,
        };
        assert!((observed.headroom(at, None).unwrap() - 0.1).abs() < 1e-9);
        let halfway = observed
            .headroom(at + Duration::from_secs(5), None)
            .unwrap();
        assert!((halfway - 0.55).abs() < 1e-9, "{halfway}");
        assert_eq!(
            observed.headroom(at + Duration::from_secs(10), None),
            Some(1.0)
        );
    }

    #[test]
    fn placeholders_and_missing_headers_are_unknown() {
        assert_eq!(RateLimitHeaders::parse(&HeaderMap::new()), None);
        let parsed = RateLimitHeaders::parse(&headers(&[
            ("x-ratelimit-limit-requests", "-1"),
            ("x-ratelimit-remaining-requests", "7"),
        ]))
        .unwrap();
        assert_eq!(parsed.fraction(None), None, "no limit to compare with");
        let limits = Limits {
            rpm: Some(14),
            tpm: None,
        };
        assert_eq!(parsed.fraction(Some(&limits)), Some(0.5));
    }

    #[test]
    fn anthropic_headers_give_the_scarcest_token_quota() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200);
        let parsed = RateLimitHeaders::parse_anthropic(
            &headers(&[
                ("anthropic-ratelimit-requests-limit", "100"),
                ("anthropic-ratelimit-requests-remaining", "90"),
                ("anthropic-ratelimit-requests-reset", "2024-01-01T00:00:30Z"),
                ("anthropic-ratelimit-tokens-limit", "1000"),
                ("anthropic-ratelimit-tokens-remaining", "500"),
                ("anthropic-ratelimit-input-tokens-limit", "800"),
                ("anthropic-ratelimit-input-tokens-remaining", "80"),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2024-01-01T00:00:10Z",
                ),
                ("anthropic-ratelimit-output-tokens-limit", "200"),
                ("anthropic-ratelimit-output-tokens-remaining", "150"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(parsed.remaining_requests, Some(90));
        assert_eq!(parsed.reset_requests, Some(Duration::from_secs(30)));
        assert_eq!(
            (
                parsed.limit_tokens,
                parsed.remaining_tokens,
                parsed.reset_tokens
            ),
            (Some(800), Some(80), Some(Duration::from_secs(10)))
        );
        assert!((parsed.fraction(None).unwrap() - 0.1).abs() < 1e-9);
        // A reset already past counts as now; no headers, no observation.
        let past = RateLimitHeaders::parse_anthropic(
            &headers(&[
                ("anthropic-ratelimit-requests-remaining", "1"),
                ("anthropic-ratelimit-requests-reset", "2023-01-01T00:00:00Z"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(past.reset_requests, Some(Duration::ZERO));
        assert_eq!(
            RateLimitHeaders::parse_anthropic(&HeaderMap::new(), now),
            None
        );
        // The OpenAI-style headers win when both are present.
        let both = headers(&[
            ("x-ratelimit-remaining-requests", "7"),
            ("anthropic-ratelimit-requests-remaining", "1"),
        ]);
        assert_eq!(
            RateLimitHeaders::parse(&both).unwrap().remaining_requests,
            Some(7)
        );
    }

    #[test]
    fn ptu_utilization_is_headroom_too() {
        let parsed = RateLimitHeaders::parse(&headers(&[(
            "azure-openai-deployment-utilization",
            "75.5%",
        )]))
        .unwrap();
        assert_eq!(parsed.utilization_pct, Some(75.5));
        assert!((parsed.fraction(None).unwrap() - 0.245).abs() < 1e-9);
    }

    #[test]
    fn local_limits_count_what_was_sent() {
        let limits = Limits {
            rpm: Some(10),
            tpm: Some(1000),
        };
        let window = Counts {
            started: 5,
            tokens: 900,
            ..Counts::default()
        };
        let headroom = local_headroom(Some(&limits), &window).unwrap();
        assert!((headroom - 0.1).abs() < 1e-9);
        assert_eq!(local_headroom(None, &window), None);
    }
}
