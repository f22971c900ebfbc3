//! The client listener's metrics (docs/operations.md#metrics): open connections, connections
//! refused at the bound, and clients cut for being too slow.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct ClientMetrics {
    pub connections_open: IntGauge,
    pub connections_refused: IntCounter,
    /// `phase`: `header` (the request header was not complete in time) or `body`.
    pub timeouts: IntCounterVec,
}

impl ClientMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let connections_open = IntGauge::new(
            "switchyard_client_connections",
            "Client connections open on the client listener.",
        )?;
        registry.register(Box::new(connections_open.clone()))?;
        let connections_refused = IntCounter::new(
            "switchyard_client_connections_refused_total",
            "Client connections refused because server.max_client_connections were open.",
        )?;
        registry.register(Box::new(connections_refused.clone()))?;
        let timeouts = IntCounterVec::new(
            Opts::new(
                "switchyard_client_timeouts_total",
                "Client connections cut because the client was too slow, by phase.",
            ),
            &["phase"],
        )?;
        registry.register(Box::new(timeouts.clone()))?;
        Ok(Self {
            connections_open,
            connections_refused,
            timeouts,
        })
    }
}
