//! Anthropic's `usage` object as a relay reads it: `message_start` gives the input side,
//! each `message_delta` the cumulative output (and, on newer APIs, the input figures
//! again), so the figures present in a later object replace the earlier ones.

use serde::Deserialize;

use crate::metering::Usage;

/// The members of an Anthropic `usage` object the proxy meters; each optional, because a
/// `message_delta` carries only some.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireUsage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub cache_creation: Option<CacheCreation>,
}

/// The cache writes split by TTL.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct CacheCreation {
    #[serde(default)]
    pub ephemeral_5m_input_tokens: u64,
    #[serde(default)]
    pub ephemeral_1h_input_tokens: u64,
}

impl WireUsage {
    /// A raw JSON `usage` member, if it is one.
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }

    /// Takes the figures `later` reports (output tokens are cumulative: the last one wins).
    pub fn update(&mut self, later: &WireUsage) {
        let take = |mine: &mut Option<u64>, theirs: Option<u64>| {
            if theirs.is_some() {
                *mine = theirs;
            }
        };
        take(&mut self.input_tokens, later.input_tokens);
        take(&mut self.output_tokens, later.output_tokens);
        take(
            &mut self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        take(
            &mut self.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
        if later.cache_creation.is_some() {
            self.cache_creation = later.cache_creation;
        }
    }

    /// In the proxy's terms: Anthropic's `input_tokens` excludes cache reads and writes,
    /// the proxy's `prompt_tokens` includes them.
    pub fn to_usage(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let written = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: self.input_tokens.unwrap_or(0) + read + written,
            completion_tokens: self.output_tokens.unwrap_or(0),
            cached_tokens: read,
            cache_write_tokens: written,
            estimated: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_figures_replace_earlier_ones() {
        let mut usage = WireUsage::parse(
            r#"{"input_tokens":5,"cache_read_input_tokens":7,"cache_creation_input_tokens":3,"output_tokens":1}"#,
        )
        .unwrap();
        usage.update(&WireUsage::parse(r#"{"output_tokens":9}"#).unwrap());
        let usage = usage.to_usage();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
                usage.cache_write_tokens
            ),
            (15, 9, 7, 3)
        );
        assert!(WireUsage::parse("[]").is_none());
    }
}
