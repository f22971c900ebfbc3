//! What every request shares: the policy snapshot holder, live target figures, metrics and
//! the upstream client. Only the policy is swapped on reload; the rest lives on.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::Policy;
use crate::conversations::{ConversationSettings, ConversationStore};
use crate::metering::Spend;
use crate::metrics::Metrics;
use crate::providers::ProviderRuntime;
use crate::routing::LiveStats;
use crate::telemetry::Tracing;
use crate::upstream::Transport;

pub struct AppState {
    pub policy: ArcSwap<Policy>,
    pub stats: LiveStats,
    pub metrics: Metrics,
    /// The upstream transport: the shared HTTP client (scripted upstreams in unit tests).
    pub client: Transport,
    /// Credential caches and other live provider state (survives reloads).
    pub providers: ProviderRuntime,
    /// Budgets, rate limits and the ledger (spend lives outside the policy, across reloads).
    pub spend: Spend,
    /// Stored Responses turns (in the ledger's database; in memory until [`AppState::with_conversations`]).
    pub conversations: ConversationStore,
    pub config_path: PathBuf,
    /// The tracer requests make their spans with (inert when trace export is off).
    pub tracing: Tracing,
    last_reload_error: Mutex<Option<ReloadError>>,
}

/// The last reload that failed (the old policy stayed active), for `/admin/routes`.
#[derive(Debug, Clone)]
pub struct ReloadError {
    pub message: String,
    pub at: SystemTime,
}

impl AppState {
    pub fn new(
        policy: Policy,
        config_path: PathBuf,
        metrics: Metrics,
        client: impl Into<Transport>,
    ) -> Self {
        let conversations = ConversationStore::in_memory(
            &ConversationSettings::default(),
            metrics.responses.clone(),
        );
        Self {
            policy: ArcSwap::from_pointee(policy),
            stats: LiveStats::new(),
            metrics,
            client: client.into(),
            providers: ProviderRuntime::new(),
            spend: Spend::default(),
            conversations,
            config_path,
            tracing: Tracing::off(),
            last_reload_error: Mutex::new(None),
        }
    }

    /// Replaces the default spend control (no ledger, local budgets) with a connected one.
    pub fn with_spend(mut self, spend: Spend) -> Self {
        self.spend = spend;
        self
    }

    /// Replaces the in-memory conversation store with the one on the ledger's database.
    pub fn with_conversations(mut self, conversations: ConversationStore) -> Self {
        self.conversations = conversations;
        self
    }

    /// Turns trace export on for every request from now.
    pub fn with_tracing(mut self, tracing: Tracing) -> Self {
        self.tracing = tracing;
        self
    }

    /// The snapshot a request keeps for all its attempts.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    pub fn last_reload_error(&self) -> Option<ReloadError> {
        self.last_reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_last_reload_error(&self, error: Option<ReloadError>) {
        *self
            .last_reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }
}
