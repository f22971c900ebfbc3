//! `responses:` as compiled from the policy: how long stored turns are kept and how many the
//! in-memory cache holds (docs/configuration.md, "responses").

use std::time::Duration;

/// Default `responses.retention`: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// Default `responses.cache_entries`.
pub const DEFAULT_CACHE_ENTRIES: u64 = 10_000;

/// How long a stored turn stays readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// `retention: keep`: until the client deletes it.
    Keep,
    /// Counted from the turn's `created_at`; expired turns are invisible at once and deleted
    /// by the sweeper.
    For(Duration),
}

impl Retention {
    /// The Unix second a turn created at `created_at` expires at, or `None` when kept.
    pub fn expires_at(self, created_at: i64) -> Option<i64> {
        match self {
            Retention::Keep => None,
            Retention::For(duration) => Some(
                created_at.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)),
            ),
        }
    }
}

/// The compiled `responses:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSettings {
    pub retention: Retention,
    /// Turns the in-memory cache holds (0: no cache, every read goes to the database). Read at
    /// start-up only.
    pub cache_entries: u64,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        Self {
            retention: Retention::For(DEFAULT_RETENTION),
            cache_entries: DEFAULT_CACHE_ENTRIES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_counts_from_creation_and_keep_never_expires() {
        let day = Retention::For(Duration::from_secs(86_400));
        assert_eq!(day.expires_at(1_000), Some(87_400));
        assert_eq!(Retention::Keep.expires_at(1_000), None);
        assert_eq!(
            Retention::For(Duration::MAX).expires_at(1_000),
            Some(i64::MAX)
        );
    }
}
