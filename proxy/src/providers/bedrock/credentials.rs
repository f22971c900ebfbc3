//! AWS credentials for Bedrock providers: static keys from `routes.yaml` are used directly;
//! the default chain (env, profile, web identity / IRSA, ECS, EC2 IMDS) and `assume_role`
//! are resolved by `aws-config` in a background task that refreshes them ahead of expiry and
//! publishes them into a cache. Signing only reads the cache, so no request ever waits on
//! IMDS or STS.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider as TlsProvider};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use sha2::{Digest, Sha256};

use crate::config::{AwsAssumeRole, AwsStaticCredentials, Provider, ProviderKind};
use crate::providers::TranslateError;
use crate::state::AppState;

/// Credentials are refreshed this long before they expire (or half way through a shorter
/// lifetime, so short-lived credentials are not refreshed at every tick).
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// How often the task looks at the policy and the caches.
const TICK: Duration = Duration::from_secs(1);
/// Longest wait between failed refresh attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Resolved credentials of one provider configuration, refreshed in the background.
pub struct CredentialCache {
    current: ArcSwapOption<Resolved>,
    /// The last refresh's error, cleared by the next success (for `/readyz` and `/admin/routes`).
    last_error: ArcSwapOption<String>,
    state: tokio::sync::Mutex<RefreshState>,
}

/// Credentials and when they were fetched (their lifetime decides when to refresh).
struct Resolved {
    credentials: Credentials,
    fetched_at: SystemTime,
}

impl Resolved {
    /// When to replace them: [`REFRESH_AHEAD`] before expiry, or half way through a short
    /// lifetime; never for credentials without an expiry.
    fn refresh_at(&self) -> Option<SystemTime> {
        let expiry = self.credentials.expiry()?;
        let lifetime = expiry
            .duration_since(self.fetched_at)
            .unwrap_or(Duration::ZERO);
        Some(expiry - REFRESH_AHEAD.min(lifetime / 2))
    }
}

struct RefreshState {
    provider: Option<SharedCredentialsProvider>,
    next_attempt: SystemTime,
    backoff: Duration,
}

impl CredentialCache {
    fn new() -> Self {
        Self {
            current: ArcSwapOption::empty(),
            last_error: ArcSwapOption::empty(),
            state: tokio::sync::Mutex::new(RefreshState {
                provider: None,
                next_attempt: SystemTime::UNIX_EPOCH,
                backoff: TICK,
            }),
        }
    }

    /// Usable credentials, if resolved and not expired.
    pub fn get(&self, now: SystemTime) -> Option<Credentials> {
        let current = self.current.load_full()?;
        match current.credentials.expiry() {
            Some(expiry) if expiry <= now => None,
            _ => Some(current.credentials.clone()),
        }
    }

    fn needs_refresh(&self, now: SystemTime) -> bool {
        match self.current.load().as_ref() {
            None => true,
            Some(resolved) => resolved.refresh_at().is_some_and(|at| at <= now),
        }
    }

    fn publish(&self, credentials: Credentials, now: SystemTime) {
        self.current.store(Some(Arc::new(Resolved {
            credentials,
            fetched_at: now,
        })));
        self.last_error.store(None);
    }

    /// Time left on the usable credentials (`None`: none, or expired; `Duration::MAX`: no
    /// expiry) and the last refresh error.
    pub fn status(&self, now: SystemTime) -> (Option<Duration>, Option<String>) {
        let valid_for = self.get(now).map(|c| match c.expiry() {
            Some(expiry) => expiry.duration_since(now).unwrap_or(Duration::ZERO),
            None => Duration::MAX,
        });
        (
            valid_for,
            self.last_error.load_full().map(|e| e.to_string()),
        )
    }
}

/// Every credential cache, keyed by the provider's name and credential configuration so a
/// reload that changes them gets a fresh cache.
#[derive(Default)]
pub struct AwsCredentials {
    caches: RwLock<HashMap<String, Arc<CredentialCache>>>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsCredentials(..)")
    }
}

/// What a Bedrock provider's credentials come from.
struct Source<'a> {
    name: &'a str,
    region: &'a str,
    static_keys: Option<&'a AwsStaticCredentials>,
    assume_role: Option<&'a AwsAssumeRole>,
}

impl<'a> Source<'a> {
    fn of(provider: &'a Provider) -> Option<Source<'a>> {
        match &provider.kind {
            ProviderKind::Bedrock(settings) => Source::new(&provider.name, settings),
            _ => None,
        }
    }

    /// `None` for a Bedrock API key, which needs no AWS credentials.
    fn new(name: &'a str, settings: &'a super::config::Settings) -> Option<Source<'a>> {
        if settings.api_key.is_some() {
            return None;
        }
        Some(Source {
            name,
            region: &settings.region,
            static_keys: settings.credentials.as_ref(),
            assume_role: settings.assume_role.as_ref(),
        })
    }

    /// Static keys without a role need no cache.
    fn needs_cache(&self) -> bool {
        self.static_keys.is_none() || self.assume_role.is_some()
    }

    /// A cache key that changes when the credential configuration does; secrets are hashed.
    fn key(&self) -> String {
        let mut hash = Sha256::new();
        if let Some(keys) = self.static_keys {
            hash.update(keys.access_key_id.expose());
            hash.update([0]);
            hash.update(keys.secret_access_key.expose());
        }
        if let Some(role) = self.assume_role {
            hash.update(&role.role_arn);
            hash.update([0]);
            hash.update(role.external_id.as_ref().map_or("", |e| e.expose()));
            hash.update([0]);
            hash.update(role.session_name.as_deref().unwrap_or(""));
        }
        format!(
            "{}|{}|{}",
            self.name,
            self.region,
            hex::encode(&hash.finalize()[..8])
        )
    }
}

fn static_credentials(keys: &AwsStaticCredentials) -> Credentials {
    Credentials::new(
        keys.access_key_id.expose(),
        keys.secret_access_key.expose(),
        keys.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "routes.yaml",
    )
}

impl AwsCredentials {
    /// The credentials to sign with for `provider` now; never waits.
    pub fn for_provider(&self, provider: &Provider) -> Result<Credentials, TranslateError> {
        let source = Source::of(provider).ok_or(TranslateError::MissingCredentials(
            "not a bedrock provider".to_owned(),
        ))?;
        if !source.needs_cache() {
            if let Some(keys) = source.static_keys {
                return Ok(static_credentials(keys));
            }
        }
        let cache = self
            .caches
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&source.key())
            .cloned();
        cache
            .and_then(|c| c.get(SystemTime::now()))
            .ok_or_else(|| {
                TranslateError::MissingCredentials(format!(
                    "AWS credentials for provider `{}` are not resolved yet (see the log for the credential chain's error)",
                    provider.name
                ))
            })
    }

    /// The state of `provider`'s background-refreshed credentials (`None` when it needs
    /// none: static keys without a role, or a Bedrock API key): time left and last error.
    pub fn status(
        &self,
        name: &str,
        settings: &super::config::Settings,
        now: SystemTime,
    ) -> Option<(Option<Duration>, Option<String>)> {
        let source = Source::new(name, settings).filter(Source::needs_cache)?;
        let cache = self
            .caches
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&source.key())
            .cloned();
        Some(match cache {
            Some(cache) => cache.status(now),
            None => (None, None),
        })
    }

    fn cache_for(&self, key: String) -> Arc<CredentialCache> {
        let mut caches = self
            .caches
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        caches
            .entry(key)
            .or_insert_with(|| Arc::new(CredentialCache::new()))
            .clone()
    }

    /// Drops caches of configurations the policy no longer has.
    fn retain(&self, keys: &[String]) {
        self.caches
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|key, _| keys.contains(key));
    }
}

/// Builds the `aws-config` provider for a source: the default chain or static keys, with
/// `assume_role` layered on top. Uses rustls with ring, the process's one TLS stack.
async fn build_provider(source: &Source<'_>) -> Option<SharedCredentialsProvider> {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(TlsProvider::Rustls(CryptoMode::Ring))
        .build_https();
    let region = Region::new(source.region.to_owned());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .http_client(http);
    if let Some(keys) = source.static_keys {
        loader = loader.credentials_provider(static_credentials(keys));
    }
    let config = loader.load().await;
    let base = config.credentials_provider()?;
    let Some(role) = source.assume_role else {
        return Some(base);
    };
    let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
        .region(region)
        .session_name(
            role.session_name
                .clone()
                .unwrap_or_else(|| "switchyard".to_owned()),
        )
        .configure(&config);
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id.expose());
    }
    Some(SharedCredentialsProvider::new(
        builder.build_from_provider(base).await,
    ))
}

/// One refresh of one cache if it is due. Failures back off and are counted.
async fn refresh(state: &AppState, source: &Source<'_>, cache: &CredentialCache) {
    let now = SystemTime::now();
    if !cache.needs_refresh(now) {
        return;
    }
    // A refresh already running for this cache is enough.
    let Ok(mut refresh) = cache.state.try_lock() else {
        return;
    };
    if refresh.next_attempt > now {
        return;
    }
    if refresh.provider.is_none() {
        refresh.provider = build_provider(source).await;
    }
    let result = match &refresh.provider {
        Some(provider) => provider
            .provide_credentials()
            .await
            .map_err(|e| crate::upstream::client::error_chain(&e)),
        None => Err("the AWS default credential chain found no credential source".to_owned()),
    };
    match result {
        Ok(credentials) => {
            tracing::info!(provider = source.name, expires = ?credentials.expiry(), "AWS credentials resolved");
            cache.publish(credentials, now);
            refresh.backoff = TICK;
            refresh.next_attempt = now;
        }
        Err(error) => {
            // The error text of aws-config names the sources tried, never a secret.
            tracing::warn!(provider = source.name, error = %error, "AWS credential refresh failed; the last good credentials are used until they expire");
            cache.last_error.store(Some(Arc::new(error)));
            state
                .metrics
                .credential_refresh_failures
                .with_label_values(&[source.name])
                .inc();
            refresh.next_attempt = now + refresh.backoff;
            refresh.backoff = (refresh.backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Background task: keeps the credential caches of the active policy's Bedrock providers
/// fresh. Each provider refreshes in its own task so a slow IMDS does not hold up the others.
pub struct CredentialRefresher {
    state: Arc<AppState>,
}

impl CredentialRefresher {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    fn tick(&self) {
        let policy = self.state.policy();
        let mut keys = Vec::new();
        for provider in policy.providers.values() {
            let Some(source) = Source::of(provider).filter(Source::needs_cache) else {
                continue;
            };
            if provider.disabled.is_some() {
                continue;
            }
            let key = source.key();
            let cache = self.state.providers.aws.cache_for(key.clone());
            keys.push(key);
            if !cache.needs_refresh(SystemTime::now()) {
                continue;
            }
            let state = self.state.clone();
            let provider = provider.clone();
            tokio::spawn(async move {
                if let Some(source) = Source::of(&provider) {
                    refresh(&state, &source, &cache).await;
                }
            });
        }
        self.state.providers.aws.retain(&keys);
    }
}

#[async_trait]
impl BackgroundService for CredentialRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => self.tick(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn bedrock(credentials: Option<AwsStaticCredentials>, role: Option<AwsAssumeRole>) -> Provider {
        Provider {
            name: "aws".into(),
            kind: ProviderKind::Bedrock(crate::config::bedrock::Settings {
                region: "us-east-1".into(),
                api_key: None,
                credentials,
                endpoint: None,
                base_url: crate::providers::bedrock::base_url("us-east-1", None).unwrap(),
                assume_role: role,
            }),
            disabled: None,
            region: Some("us-east-1".into()),
            cloud: "aws".into(),
        }
    }

    fn keys() -> AwsStaticCredentials {
        AwsStaticCredentials {
            access_key_id: Secret::new("AKID"),
            secret_access_key: Secret::new("SECRET"),
            session_token: Some(Secret::new("TOKEN")),
        }
    }

    #[test]
    fn static_keys_are_used_directly_with_their_session_token() {
        let creds = AwsCredentials::default()
            .for_provider(&bedrock(Some(keys()), None))
            .unwrap();
        assert_eq!(creds.access_key_id(), "AKID");
        assert_eq!(creds.session_token(), Some("TOKEN"));
    }

    #[test]
    fn default_chain_without_a_resolved_cache_fails_fast() {
        let err = AwsCredentials::default()
            .for_provider(&bedrock(None, None))
            .unwrap_err();
        assert!(matches!(err, TranslateError::MissingCredentials(_)));
        assert!(!err.to_string().contains("SECRET"));
    }

    #[test]
    fn cached_credentials_are_read_until_they_expire() {
        let all = AwsCredentials::default();
        let provider = bedrock(None, None);
        let key = Source::of(&provider).unwrap().key();
        let cache = all.cache_for(key);
        let now = SystemTime::now();
        let hour = Credentials::new("A", "S", None, Some(now + Duration::from_secs(3600)), "t");
        cache.publish(hour, now);
        assert!(all.for_provider(&provider).is_ok());
        assert!(!cache.needs_refresh(now));
        assert!(!cache.needs_refresh(now + Duration::from_secs(3299)));
        assert!(
            cache.needs_refresh(now + Duration::from_secs(3300)),
            "refreshed five minutes ahead of expiry"
        );
        assert!(cache.get(now + Duration::from_secs(3600)).is_none());
        // Short-lived credentials (a test STS) are refreshed half way, not at every tick.
        let short = Credentials::new("A", "S", None, Some(now + Duration::from_secs(10)), "t");
        cache.publish(short, now);
        assert!(!cache.needs_refresh(now + Duration::from_secs(4)));
        assert!(cache.needs_refresh(now + Duration::from_secs(5)));
        assert_eq!(
            cache.status(now + Duration::from_secs(4)),
            (Some(Duration::from_secs(6)), None)
        );
        assert_eq!(cache.status(now + Duration::from_secs(10)).0, None);
    }

    #[test]
    fn cache_keys_change_with_the_role_and_hide_secrets() {
        let role = AwsAssumeRole {
            role_arn: "arn:aws:iam::1:role/r".into(),
            external_id: Some(Secret::new("ext")),
            session_name: None,
        };
        let plain = bedrock(Some(keys()), None);
        let with_role = bedrock(Some(keys()), Some(role));
        let a = Source::of(&plain).unwrap();
        let b = Source::of(&with_role).unwrap();
        assert!(!a.needs_cache() && b.needs_cache());
        assert_ne!(a.key(), b.key());
        assert!(!b.key().contains("SECRET") && !b.key().contains("ext"));
    }
}
