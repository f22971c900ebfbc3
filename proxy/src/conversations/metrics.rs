//! The conversation store's counters (listed in docs/operations.md#metrics).

use prometheus::{IntCounter, Registry};

#[derive(Clone)]
pub struct ResponsesMetrics {
    /// `switchyard_responses_stored_total`: turns written to the database.
    pub stored: IntCounter,
    /// `switchyard_responses_cache_hits_total`: reads answered by the in-memory cache.
    pub cache_hits: IntCounter,
    /// `switchyard_responses_cache_misses_total`: reads that went to the database.
    pub cache_misses: IntCounter,
    /// `switchyard_responses_expired_total`: expired turns deleted by the sweeper.
    pub expired: IntCounter,
}

impl ResponsesMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let metric = IntCounter::new(name, help)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        Ok(Self {
            stored: counter(
                "switchyard_responses_stored_total",
                "Responses turns written to the conversation store.",
            )?,
            cache_hits: counter(
                "switchyard_responses_cache_hits_total",
                "Conversation store reads answered by the in-memory cache.",
            )?,
            cache_misses: counter(
                "switchyard_responses_cache_misses_total",
                "Conversation store reads that went to the database.",
            )?,
            expired: counter(
                "switchyard_responses_expired_total",
                "Expired Responses turns deleted by the retention sweeper.",
            )?,
        })
    }

    /// Counters registered nowhere, for stores built in tests.
    #[cfg(test)]
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).unwrap()
    }
}
