//! Reloading `routes.yaml` while serving: compile the new file fully, then swap it in one step
//! that cannot fail. Triggers: the file (or the `server.tls` certificate or key) changing on
//! disk (polled, so renames and symlink swaps are seen too), `SIGHUP`, and `POST
//! /admin/reload`. An invalid file keeps the old policy (and its certificate).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use sha2::{Digest, Sha256};

use crate::config;
use crate::state::{AppState, ReloadError};

/// How often the file is checked; a change takes effect within two of these.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Reloads now. Returns the new version, or the error (with file position) and keeps the old policy.
pub fn reload_now(state: &AppState) -> Result<String, String> {
    match config::load(&state.config_path) {
        Ok(policy) => {
            let old = state.policy();
            if policy.server.listen != old.server.listen
                || policy.server.admin_listen != old.server.admin_listen
                || policy.server.tls.is_some() != old.server.tls.is_some()
                || policy.server.client.max_connections != old.server.client.max_connections
            {
                tracing::warn!(
                    "listener addresses, TLS on or off, or max_client_connections changed in the file; they take effect only after a restart"
                );
            }
            if policy.telemetry.otlp != old.telemetry.otlp {
                tracing::warn!(
                    "telemetry: changed in the file; trace export keeps its start-up settings until a restart"
                );
            }
            for warning in &policy.warnings {
                tracing::warn!("{warning}");
            }
            let version = policy.version.clone();
            // Stored turns keep their expiry; new ones take the reloaded retention.
            state
                .conversations
                .set_retention(policy.responses.retention);
            state.policy.store(Arc::new(policy));
            state.set_last_reload_error(None);
            state
                .metrics
                .config_reloads
                .with_label_values(&["ok"])
                .inc();
            tracing::info!(version = %version, "policy reloaded");
            Ok(version)
        }
        Err(error) => {
            let message = error.to_string();
            tracing::error!(error = %message, "policy reload failed; the previous policy stays active");
            state
                .metrics
                .config_reloads
                .with_label_values(&["error"])
                .inc();
            state.set_last_reload_error(Some(ReloadError {
                message: message.clone(),
                at: SystemTime::now(),
            }));
            Err(message)
        }
    }
}

/// Background task: watches the file and `SIGHUP`.
pub struct ReloadService {
    state: Arc<AppState>,
}

impl ReloadService {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

fn file_digest(path: &std::path::Path) -> Option<[u8; 32]> {
    std::fs::read(path)
        .ok()
        .map(|bytes| Sha256::digest(&bytes).into())
}

/// The config file's digest, with the active certificate and key files' when TLS is on, so
/// that a renewed certificate is loaded without touching the config.
fn watched_digest(state: &AppState) -> Option<[u8; 32]> {
    let config = file_digest(&state.config_path)?;
    let policy = state.policy();
    let Some(tls) = &policy.server.tls else {
        return Some(config);
    };
    let mut all = Sha256::new();
    all.update(config);
    for path in [&tls.cert_file, &tls.key_file] {
        // A file mid-replacement is not a change yet.
        all.update(file_digest(path)?);
    }
    Some(all.finalize().into())
}

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut last_seen = watched_digest(&self.state);
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload on file change and /admin/reload only");
                None
            }
        };
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = async { match hangup.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: reloading the policy");
                    let _ = reload_now(&self.state);
                    last_seen = watched_digest(&self.state);
                }
                _ = ticker.tick() => {
                    let current = watched_digest(&self.state);
                    // A missing file (mid-rename) is not a change; wait for the new one.
                    if current.is_some() && current != last_seen {
                        let _ = reload_now(&self.state);
                        // The new policy may name other certificate files.
                        last_seen = watched_digest(&self.state);
                    }
                }
            }
        }
    }
}
