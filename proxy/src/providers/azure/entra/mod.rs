//! Entra ID access tokens for `auth: entra` providers: a cache per provider that requests
//! only read ([`EntraTokens::current`]), and the refresh logic a background task drives
//! ([`Refresher::tick`]) so that no request ever waits on the identity endpoint.
//!
//! Time is `tokio::time::Instant`, so tests drive refreshes with a paused clock and a fake
//! [`TokenSource`].

pub mod config;
mod service;
mod sources;

pub use service::EntraService;
pub use sources::source_for;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use thiserror::Error;
use tokio::time::Instant;

use crate::config::Secret;

/// Refresh this long before expiry (or at half the lifetime for short-lived tokens).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Bound on one token request, so a hanging identity endpoint cannot stall the refresher.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
const MIN_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A token as an identity endpoint hands it out.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    /// Time left when it was issued (`expires_in`, or `expires_on` minus now).
    pub expires_in: Duration,
}

/// Why no token could be had; the text never contains a secret.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum CredentialError {
    #[error("the identity endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity endpoint refused: {0}")]
    Refused(String),
    #[error("the identity endpoint's answer is not a token: {0}")]
    BadAnswer(String),
    #[error("no token within {}s", FETCH_TIMEOUT.as_secs())]
    Timeout,
}

/// Where tokens come from: client secret, workload identity, managed identity, Azure CLI,
/// or a fake in tests.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// Requests a new token for `scope`. Runs only in the background refresher.
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError>;
}

/// A token in the cache, with the instants that decide when it is refreshed.
#[derive(Debug)]
pub struct CachedToken {
    pub token: Secret,
    pub fetched_at: Instant,
    pub expires_at: Instant,
}

impl CachedToken {
    /// When the refresher should replace it: ahead of expiry by the margin, or half way
    /// through a short lifetime.
    pub fn refresh_at(&self) -> Instant {
        let lifetime = self.expires_at.saturating_duration_since(self.fetched_at);
        self.expires_at - REFRESH_MARGIN.min(lifetime / 2)
    }
}

/// One provider's published token and the last refresh error.
#[derive(Debug, Default)]
pub struct TokenSlot {
    token: ArcSwapOption<CachedToken>,
    last_error: ArcSwapOption<String>,
}

/// The token caches of every `auth: entra` provider, by provider name (they survive reloads).
#[derive(Debug, Default)]
pub struct EntraTokens {
    slots: RwLock<HashMap<String, Arc<TokenSlot>>>,
}

impl EntraTokens {
    /// The provider's slot, created on first use.
    pub fn slot(&self, provider: &str) -> Arc<TokenSlot> {
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider)
        {
            return slot.clone();
        }
        self.slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(provider.to_owned())
            .or_default()
            .clone()
    }

    /// A valid token for `provider` now, or why there is none. Never waits.
    pub fn current(&self, provider: &str, now: Instant) -> Result<Arc<CachedToken>, String> {
        let slot = self.slot(provider);
        let why = || {
            slot.last_error
                .load_full()
                .map_or_else(|| "no token fetched yet".to_owned(), |e| e.to_string())
        };
        match slot.token.load_full() {
            Some(token) if token.expires_at > now => Ok(token),
            Some(_) => Err(format!(
                "the Entra token expired; last refresh error: {}",
                why()
            )),
            None => Err(format!("no Entra token: {}", why())),
        }
    }
}

/// What `/admin/routes` shows of a provider's token (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStatus {
    /// Time left on the published token; `None` when there is none or it expired.
    pub valid_for: Option<Duration>,
    /// The last refresh error, cleared by the next success.
    pub last_error: Option<String>,
}

impl EntraTokens {
    pub fn status(&self, provider: &str, now: Instant) -> TokenStatus {
        let slot = self.slot(provider);
        let valid_for = slot
            .token
            .load_full()
            .filter(|token| token.expires_at > now)
            .map(|token| token.expires_at - now);
        TokenStatus {
            valid_for,
            last_error: slot.last_error.load_full().map(|e| e.to_string()),
        }
    }
}

/// Keeps one provider's slot filled from its source. Owned by the background task.
pub struct Refresher {
    source: Arc<dyn TokenSource>,
    scope: String,
    slot: Arc<TokenSlot>,
    next_attempt: Instant,
    failures_in_row: u32,
}

impl Refresher {
    /// Fetches at the first tick.
    pub fn new(source: Arc<dyn TokenSource>, scope: String, slot: Arc<TokenSlot>) -> Self {
        Self {
            source,
            scope,
            slot,
            next_attempt: Instant::now(),
            failures_in_row: 0,
        }
    }

    /// When the next fetch is due.
    pub fn next_attempt(&self) -> Instant {
        self.next_attempt
    }

    /// Fetches a token if one is due. `Ok(true)` = a new token was published; `Err` = the
    /// fetch failed (the old token, while valid, stays published; the retry backs off).
    pub async fn tick(&mut self) -> Result<bool, CredentialError> {
        if Instant::now() < self.next_attempt {
            return Ok(false);
        }
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, self.source.get_token(&self.scope))
            .await
            .unwrap_or(Err(CredentialError::Timeout));
        let now = Instant::now();
        match fetched {
            Ok(token) => {
                let cached = CachedToken {
                    token: token.token,
                    fetched_at: now,
                    expires_at: now + token.expires_in,
                };
                self.next_attempt = cached.refresh_at().max(now + MIN_RETRY);
                self.slot.token.store(Some(Arc::new(cached)));
                self.slot.last_error.store(None);
                self.failures_in_row = 0;
                Ok(true)
            }
            Err(error) => {
                self.failures_in_row = self.failures_in_row.saturating_add(1);
                let doublings = self.failures_in_row.saturating_sub(1).min(6);
                self.next_attempt = now + (MIN_RETRY * 2u32.pow(doublings)).min(MAX_RETRY);
                self.slot
                    .last_error
                    .store(Some(Arc::new(error.to_string())));
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// Hands out `token-N` valid for an hour, or the scripted failures first.
    #[derive(Default)]
    struct FakeSource {
        calls: AtomicU32,
        failures: Mutex<Vec<CredentialError>>,
    }

    #[async_trait]
    impl TokenSource for FakeSource {
        async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
            assert_eq!(scope, "scope/.default");
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(error) = self.failures.lock().unwrap().pop() {
                return Err(error);
            }
            Ok(AccessToken {
                token: Secret::new(format!("token-{n}")),
                expires_in: Duration::from_secs(3600),
            })
        }
    }

    fn setup(source: Arc<FakeSource>) -> (EntraTokens, Refresher) {
        let tokens = EntraTokens::default();
        let refresher = Refresher::new(source, "scope/.default".to_owned(), tokens.slot("az"));
        (tokens, refresher)
    }

    #[tokio::test(start_paused = true)]
    async fn token_is_refreshed_ahead_of_expiry_and_readers_never_wait() {
        let source = Arc::new(FakeSource::default());
        let (tokens, mut refresher) = setup(source.clone());
        assert!(tokens
            .current("az", Instant::now())
            .unwrap_err()
            .contains("no token fetched yet"));
        assert_eq!(refresher.tick().await, Ok(true));
        assert_eq!(
            tokens.current("az", Instant::now()).unwrap().token.expose(),
            "token-1"
        );
        assert_eq!(refresher.tick().await, Ok(false), "not due yet");

        // 55 minutes in, the refresh is due: five minutes before the hour-long token expires.
        tokio::time::advance(Duration::from_secs(55 * 60)).await;
        assert_eq!(
            tokens.current("az", Instant::now()).unwrap().token.expose(),
            "token-1"
        );
        assert_eq!(refresher.tick().await, Ok(true));
        assert_eq!(
            tokens.current("az", Instant::now()).unwrap().token.expose(),
            "token-2"
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_keep_the_old_token_back_off_and_then_recover() {
        let source = Arc::new(FakeSource::default());
        let (tokens, mut refresher) = setup(source.clone());
        refresher.tick().await.unwrap();
        tokio::time::advance(Duration::from_secs(55 * 60)).await;
        source.failures.lock().unwrap().extend([
            CredentialError::Refused("AADSTS7000215: invalid client secret".into()),
            CredentialError::Unreachable("connection refused".into()),
        ]);
        assert!(refresher.tick().await.is_err());
        assert_eq!(
            refresher.next_attempt() - Instant::now(),
            Duration::from_secs(1)
        );
        // Still valid: requests keep using the old token.
        assert_eq!(
            tokens.current("az", Instant::now()).unwrap().token.expose(),
            "token-1"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(refresher.tick().await.is_err());
        assert_eq!(
            refresher.next_attempt() - Instant::now(),
            Duration::from_secs(2)
        );
        // Past expiry without a new token, requests get a clear error naming the last failure.
        tokio::time::advance(Duration::from_secs(10 * 60)).await;
        let error = tokens.current("az", Instant::now()).unwrap_err();
        assert!(
            error.contains("expired") && error.contains("AADSTS7000215"),
            "{error}"
        );
        assert_eq!(refresher.tick().await, Ok(true));
        assert_eq!(
            tokens.current("az", Instant::now()).unwrap().token.expose(),
            "token-4"
        );
    }

    #[test]
    fn short_lived_tokens_refresh_half_way() {
        let now = Instant::now();
        let token = CachedToken {
            token: Secret::new("t"),
            fetched_at: now,
            expires_at: now + Duration::from_secs(120),
        };
        assert_eq!(token.refresh_at(), now + Duration::from_secs(60));
    }
}
