//! Starting the conversation store next to the ledger: the same database and runtime, and
//! the retention sweeper on that runtime.

use super::sweep::{Sweeper, SWEEP_INTERVAL};
use super::{ConversationSettings, ConversationStore};
use crate::metering::Spend;
use crate::metrics::Metrics;

/// The started store and its sweeper (stop it on shutdown, before the ledger's runtime).
pub struct Started {
    pub store: ConversationStore,
    /// `None` without a ledger (the in-memory store keeps nothing past the process).
    pub sweeper: Option<Sweeper>,
}

/// The store over `spend`'s ledger database, sweeping expired turns every [`SWEEP_INTERVAL`].
pub fn start(settings: &ConversationSettings, spend: &Spend, metrics: &Metrics) -> Started {
    match &spend.ledger {
        Some(ledger) => {
            let store = ConversationStore::new(
                ledger.store().clone(),
                Some(ledger.runtime().clone()),
                settings,
                metrics.responses.clone(),
            );
            let sweeper = Sweeper::start(store.clone(), ledger.runtime(), SWEEP_INTERVAL);
            Started {
                store,
                sweeper: Some(sweeper),
            }
        }
        None => Started {
            store: ConversationStore::in_memory(settings, metrics.responses.clone()),
            sweeper: None,
        },
    }
}
