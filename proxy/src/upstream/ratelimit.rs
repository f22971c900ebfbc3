//! The `x-ratelimit-*` headers OpenAI and Azure send on every answer (wire-formats §6.4, §7),
//! read into a snapshot of a target's remaining capacity.

use http::HeaderMap;

/// What one upstream answer said about its deployment's remaining quota. Every figure is
/// optional: servers send some, all or none, and `-1`/`0` limits are placeholders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitSnapshot {
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub limit_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    /// Azure PTU deployments' `azure-openai-deployment-utilization`, in hundredths of a
    /// percent (integer so the snapshot stays `Eq`).
    pub utilization_bp: Option<u32>,
}

impl RateLimitSnapshot {
    /// Reads the headers; `None` when the answer carried no usable remaining figure.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let number = |name: &str| -> Option<i64> {
            headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok()
        };
        // A remaining count of 0 is real (exhausted); a negative one is a placeholder.
        let remaining = |name: &str| number(name).and_then(|n| u64::try_from(n).ok());
        // A limit of 0 would mean "no quota at all", which Azure uses as a placeholder.
        let limit = |name: &str| number(name).filter(|n| *n > 0).map(|n| n as u64);
        let snapshot = Self {
            remaining_requests: remaining("x-ratelimit-remaining-requests"),
            remaining_tokens: remaining("x-ratelimit-remaining-tokens"),
            limit_requests: limit("x-ratelimit-limit-requests"),
            limit_tokens: limit("x-ratelimit-limit-tokens"),
            utilization_bp: headers
                .get("azure-openai-deployment-utilization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().trim_end_matches('%').parse::<f64>().ok())
                .filter(|pct| pct.is_finite() && *pct >= 0.0)
                .map(|pct| (pct.min(1000.0) * 100.0).round() as u32),
        };
        let known = snapshot.remaining_requests.is_some()
            || snapshot.remaining_tokens.is_some()
            || snapshot.utilization_bp.is_some();
        known.then_some(snapshot)
    }

    /// Share of the quota left, `min(remaining / limit)` over requests and tokens, in 0..=1;
    /// `None` unless at least one pair is complete. A configured limit stands in for a
    /// missing limit header (Azure sends only the remaining counts).
    pub fn headroom(
        &self,
        configured_rpm: Option<u64>,
        configured_tpm: Option<u64>,
    ) -> Option<f64> {
        let ratio = |remaining: Option<u64>, limit: Option<u64>| -> Option<f64> {
            let limit = limit.filter(|l| *l > 0)?;
            Some((remaining? as f64 / limit as f64).clamp(0.0, 1.0))
        };
        let requests = ratio(
            self.remaining_requests,
            self.limit_requests.or(configured_rpm),
        );
        let tokens = ratio(self.remaining_tokens, self.limit_tokens.or(configured_tpm));
        // A PTU deployment's utilization is a direct figure: 100 % used = no headroom.
        let provisioned = self
            .utilization_bp
            .map(|bp| (1.0 - f64::from(bp) / 10_000.0).clamp(0.0, 1.0));
        [requests, tokens, provisioned]
            .into_iter()
            .flatten()
            .reduce(f64::min)
    }
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
    fn openai_headers_give_the_smaller_share() {
        let snapshot = RateLimitSnapshot::from_headers(&headers(&[
            ("x-ratelimit-limit-requests", "100"),
            ("x-ratelimit-remaining-requests", "50"),
            ("x-ratelimit-limit-tokens", "1000"),
            ("x-ratelimit-remaining-tokens", "100"),
        ]))
        .unwrap();
        assert_eq!(snapshot.remaining_tokens, Some(100));
        assert_eq!(snapshot.headroom(None, None), Some(0.1));
    }

    #[test]
    fn azure_sends_only_remaining_and_configured_limits_fill_in() {
        let snapshot = RateLimitSnapshot::from_headers(&headers(&[
            ("x-ratelimit-remaining-requests", "30"),
            ("x-ratelimit-remaining-tokens", "40000"),
        ]))
        .unwrap();
        assert_eq!(snapshot.headroom(None, None), None);
        assert_eq!(snapshot.headroom(Some(60), Some(400_000)), Some(0.1));
    }

    #[test]
    fn ptu_utilization_is_headroom_too() {
        let snapshot = RateLimitSnapshot::from_headers(&headers(&[(
            "azure-openai-deployment-utilization",
            "75.5%",
        )]))
        .unwrap();
        assert_eq!(snapshot.utilization_bp, Some(7550));
        assert_eq!(snapshot.headroom(None, None), Some(0.245));
    }

    #[test]
    fn placeholders_are_unknown() {
        let snapshot = RateLimitSnapshot::from_headers(&headers(&[
            ("x-ratelimit-limit-requests", "-1"),
            ("x-ratelimit-remaining-requests", "-1"),
            ("x-ratelimit-limit-tokens", "0"),
            ("x-ratelimit-remaining-tokens", "12"),
        ]))
        .unwrap();
        assert_eq!(snapshot.remaining_requests, None);
        assert_eq!(snapshot.limit_tokens, None);
        assert_eq!(snapshot.headroom(None, None), None);
        assert!(RateLimitSnapshot::from_headers(&headers(&[(
            "x-ratelimit-remaining-requests",
            "n/a"
        )]))
        .is_none());
    }
}
