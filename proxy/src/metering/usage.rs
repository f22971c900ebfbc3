//! Token counts of one request, read from an upstream's OpenAI-style `usage` object.

use serde_json::Value;

use super::usage_check::INVALID_COUNT;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Cached prompt tokens: a subset of `prompt_tokens`, priced at the cached-input rate.
    pub cached_tokens: u64,
    /// Prompt tokens written to a cache (Anthropic on Bedrock): a subset of `prompt_tokens`
    /// beside `cached_tokens`, priced at the cache-write rate.
    pub cache_write_tokens: u64,
    /// Of `cache_write_tokens`, those written with a 1-hour TTL (Anthropic's
    /// `cache_creation.ephemeral_1h_input_tokens`), priced at the 1-hour cache-write rate; the
    /// rest of `cache_write_tokens` were written with the default 5-minute TTL. Always
    /// ≤ `cache_write_tokens`; 0 where the upstream reports no TTL split.
    pub cache_write_1h_tokens: u64,
    /// True when the counts are the proxy's estimate because the upstream never reported usage.
    pub estimated: bool,
}

impl Usage {
    /// Reads `{"prompt_tokens", "completion_tokens", "prompt_tokens_details": {"cached_tokens",
    /// "cache_write_tokens"}}`.
    /// Returns `None` when the value is not a usage object.
    pub fn from_openai(usage: &Value) -> Option<Self> {
        let object = usage.as_object()?;
        // A number that is no count (negative, fractional) is kept as one no check accepts
        // (`usage_check.rs`), rather than read as 0 and billed as nothing.
        let count = |v: Option<&Value>| match v {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(INVALID_COUNT),
            _ => 0,
        };
        let prompt_tokens = count(object.get("prompt_tokens"));
        let completion_tokens = count(object.get("completion_tokens"));
        let details = object.get("prompt_tokens_details");
        let cached_tokens = count(details.and_then(|d| d.get("cached_tokens"))).min(prompt_tokens);
        let cache_write_tokens = count(details.and_then(|d| d.get("cache_write_tokens")))
            .min(prompt_tokens - cached_tokens);
        Some(Self {
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            cache_write_tokens,
            cache_write_1h_tokens: 0,
            estimated: false,
        })
    }

    /// The proxy's own estimate for a request whose upstream gave no usage (e.g. a stream cut
    /// short): prompt bytes / 4, and one token per streamed content delta.
    pub fn estimate(prompt_bytes: usize, output_deltas: u64) -> Self {
        Self {
            prompt_tokens: prompt_bytes.div_ceil(4) as u64,
            completion_tokens: output_deltas,
            cached_tokens: 0,
            cache_write_tokens: 0,
            cache_write_1h_tokens: 0,
            estimated: true,
        }
    }

    /// Two attempts' usage together (a resumed stream's, docs/streams.md): every count
    /// summed; estimated when either was.
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens + other.prompt_tokens,
            completion_tokens: self.completion_tokens + other.completion_tokens,
            cached_tokens: self.cached_tokens + other.cached_tokens,
            cache_write_tokens: self.cache_write_tokens + other.cache_write_tokens,
            cache_write_1h_tokens: self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            estimated: self.estimated || other.estimated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_cached_tokens_as_subset() {
        let usage = Usage::from_openai(&json!({"prompt_tokens": 100, "completion_tokens": 7,
            "total_tokens": 107, "prompt_tokens_details": {"cached_tokens": 64}}))
        .unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens
            ),
            (100, 7, 64)
        );
        assert!(Usage::from_openai(&Value::Null).is_none());
    }

    #[test]
    fn counts_that_are_no_counts_are_marked_invalid() {
        let usage =
            Usage::from_openai(&json!({"prompt_tokens": -5, "completion_tokens": 2.5})).unwrap();
        assert_eq!(usage.prompt_tokens, INVALID_COUNT);
        assert_eq!(usage.completion_tokens, INVALID_COUNT);
        assert_eq!(usage.cached_tokens, 0);
    }

    #[test]
    fn estimate_rounds_up() {
        assert_eq!(Usage::estimate(9, 3).prompt_tokens, 3);
    }

    #[test]
    fn usages_add_up_and_stay_estimated_if_either_was() {
        let reported = Usage {
            prompt_tokens: 10,
            completion_tokens: 4,
            cached_tokens: 2,
            cache_write_tokens: 1,
            cache_write_1h_tokens: 1,
            estimated: false,
        };
        let sum = reported.plus(&Usage::estimate(8, 3));
        assert_eq!(
            (sum.prompt_tokens, sum.completion_tokens, sum.cached_tokens),
            (12, 7, 2)
        );
        assert_eq!((sum.cache_write_tokens, sum.cache_write_1h_tokens), (1, 1));
        assert!(sum.estimated);
        assert!(!reported.plus(&reported).estimated);
    }
}
