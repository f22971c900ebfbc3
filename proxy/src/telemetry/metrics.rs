//! The trace exporter's counters (listed in docs/operations.md#metrics).

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct TraceMetrics {
    /// `switchyard_trace_spans_dropped_total{reason}`: `queue_full` (the export queue was
    /// full when the span ended), `export_failed` (the collector refused it or did not
    /// answer in time), `shutdown` (ended after the exporter stopped).
    pub spans_dropped: IntCounterVec,
    /// `switchyard_trace_spans_exported_total`: spans the collector accepted.
    pub spans_exported: IntCounter,
}

impl TraceMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let spans_dropped = IntCounterVec::new(
            Opts::new(
                "switchyard_trace_spans_dropped_total",
                "Trace spans not exported, by reason (queue_full, export_failed, shutdown).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(spans_dropped.clone()))?;
        let spans_exported = IntCounter::new(
            "switchyard_trace_spans_exported_total",
            "Trace spans the OTLP collector accepted.",
        )?;
        registry.register(Box::new(spans_exported.clone()))?;
        Ok(Self {
            spans_dropped,
            spans_exported,
        })
    }

    /// Counters registered nowhere, for unit tests.
    #[cfg(test)]
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).unwrap()
    }

    pub(crate) fn dropped(&self, reason: &str, spans: usize) {
        self.spans_dropped
            .with_label_values(&[reason])
            .inc_by(spans as u64);
    }
}

impl std::fmt::Debug for TraceMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceMetrics").finish_non_exhaustive()
    }
}
