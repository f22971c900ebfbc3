//! The background task that keeps every `auth: entra` provider's token fresh. It follows
//! reloads: providers that appear get a refresher, changed settings a new one, removed ones
//! are dropped. A failing identity endpoint degrades only its provider (counted in
//! `switchyard_credential_refresh_failures_total{provider}` and logged).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::{source_for, Refresher};
use crate::config::{azure, AzureAuth, EntraSettings, Policy, ProviderKind};
use crate::state::AppState;

/// How often due refreshes and policy changes are checked.
const TICK: Duration = Duration::from_millis(250);

pub struct EntraService {
    state: Arc<AppState>,
}

impl EntraService {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// Entra providers of a policy with their settings.
fn entra_providers(policy: &Policy) -> HashMap<String, EntraSettings> {
    policy
        .providers
        .values()
        .filter(|p| p.disabled.is_none())
        .filter_map(|p| match &p.kind {
            ProviderKind::Azure(azure::Settings {
                auth: AzureAuth::Entra(settings),
                ..
            }) => Some((p.name.clone(), settings.clone())),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl BackgroundService for EntraService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let http = match reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Token requests carry client secrets and assertions: never re-sent to a redirect.
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(http) => http,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the Entra token client; entra providers get no tokens");
                return;
            }
        };
        let mut refreshers: HashMap<String, (EntraSettings, Refresher)> = HashMap::new();
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {}
            }
            let wanted = entra_providers(&self.state.policy());
            refreshers.retain(|name, (settings, _)| wanted.get(name) == Some(settings));
            for (name, settings) in wanted {
                refreshers.entry(name.clone()).or_insert_with(|| {
                    let source = source_for(&settings, http.clone());
                    let slot = self.state.providers.entra.slot(&name);
                    let refresher = Refresher::new(source, settings.scope.clone(), slot);
                    (settings, refresher)
                });
            }
            for (name, (settings, refresher)) in refreshers.iter_mut() {
                match refresher.tick().await {
                    Ok(true) => tracing::debug!(provider = %name, "Entra token refreshed"),
                    Ok(false) => {}
                    Err(error) => {
                        self.state
                            .metrics
                            .credential_refresh_failures
                            .with_label_values(&[name])
                            .inc();
                        tracing::warn!(
                            provider = %name,
                            credential = settings.credential.label(),
                            error = %error,
                            "Entra token refresh failed; the provider fails over once its token expires"
                        );
                    }
                }
            }
        }
    }
}
