//! Scrubs known secrets out of upstream text before it is passed on to a client or written to
//! a log: an upstream that echoes the proxy's credential in an error message must not hand it
//! on (docs/security.md, "Upstreams").
//!
//! One [`Scrubber`] is built per policy from every secret it configures (provider keys, AWS
//! keys, Entra client secrets, credentials in a `base_url`, the admin token); the upstream
//! client adds the credential headers it sent on each attempt (refreshed Entra tokens and AWS
//! session tokens are not in the policy).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};

/// What a secret found in upstream text is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not looked for: they would match ordinary words (a test
/// key `k` would eat every `k`). Real credentials are far longer.
pub const MIN_SECRET_LEN: usize = 8;

/// Replaces every occurrence of a set of secrets with [`REDACTED`]. Cheap to clone.
#[derive(Clone, Default)]
pub struct Scrubber {
    matcher: Option<Arc<AhoCorasick>>,
}

impl Scrubber {
    /// A scrubber for `secrets`; ones shorter than [`MIN_SECRET_LEN`] are left out.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut patterns: Vec<&str> = secrets
            .into_iter()
            .filter(|secret| secret.len() >= MIN_SECRET_LEN)
            .collect();
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return Self::default();
        }
        // Leftmost-longest: a secret that contains another is replaced whole.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()
            .map(Arc::new);
        Self { matcher }
    }

    /// `text` with every secret replaced; borrowed when it held none.
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.matcher {
            Some(matcher) if matcher.is_match(text) => {
                let mut scrubbed = String::with_capacity(text.len());
                matcher.replace_all_with(text, &mut scrubbed, |_, _, out| {
                    out.push_str(REDACTED);
                    true
                });
                Cow::Owned(scrubbed)
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Scrubs `text` where it is.
    pub fn scrub_in_place(&self, text: &mut String) {
        if let Cow::Owned(scrubbed) = self.scrub(text) {
            *text = scrubbed;
        }
    }

    /// How many secrets are looked for.
    pub fn len(&self) -> usize {
        self.matcher.as_ref().map_or(0, |m| m.patterns_len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Scrubber {
    /// Never the patterns: they are the secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secrets)", self.len())
    }
}

/// The credentials among header `values` (those marked sensitive), and the token of each
/// `Bearer <token>`, as an upstream might echo either.
pub fn header_secrets<'a>(values: impl IntoIterator<Item = &'a http::HeaderValue>) -> Vec<String> {
    let mut secrets = Vec::new();
    for value in values.into_iter().filter(|value| value.is_sensitive()) {
        let Ok(text) = value.to_str() else { continue };
        if let Some(token) = text.strip_prefix("Bearer ") {
            secrets.push(token.to_owned());
        }
        secrets.push(text.to_owned());
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn every_secret_is_replaced_wherever_it_appears() {
        let scrubber = Scrubber::new(["sk-upstream-0123456789", "aws-secret-abcdefgh"]);
        let text = "Incorrect API key provided: Bearer sk-upstream-0123456789 (also aws-secret-abcdefgh, sk-upstream-0123456789)";
        assert_eq!(
            scrubber.scrub(text),
            "Incorrect API key provided: Bearer [redacted] (also [redacted], [redacted])"
        );
        assert!(matches!(scrubber.scrub("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_containing_another_is_replaced_whole() {
        let scrubber = Scrubber::new(["abcdefgh", "abcdefgh-longer"]);
        assert_eq!(scrubber.scrub("x abcdefgh-longer y"), "x [redacted] y");
    }

    #[test]
    fn short_values_are_not_secrets_and_debug_shows_none() {
        let scrubber = Scrubber::new(["k", "sk-1", "long-enough-secret"]);
        assert_eq!(scrubber.len(), 1);
        assert_eq!(scrubber.scrub("keep sk-1"), "keep sk-1");
        assert_eq!(format!("{scrubber:?}"), "Scrubber(1 secrets)");
        assert!(Scrubber::new([]).is_empty());
    }

    #[test]
    fn sensitive_headers_and_their_bearer_tokens_are_secrets() {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_static("Bearer tok-0123456789");
        auth.set_sensitive(true);
        headers.insert("authorization", auth);
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let secrets = header_secrets(headers.values());
        assert_eq!(secrets, ["tok-0123456789", "Bearer tok-0123456789"]);
    }
}
