//! Every Prometheus metric Switchyard exports, in one registered struct (names are a contract:
//! docs/operations.md#metrics and the dashboards rely on them).

use crate::conversations::ResponsesMetrics;
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds: LLM calls span milliseconds (cached, tiny) to minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub time_to_first_token: HistogramVec,
    pub upstream_attempts: IntCounterVec,
    pub failovers: IntCounterVec,
    pub tokens: IntCounterVec,
    pub spend_usd: CounterVec,
    pub target_circuit_open: IntGaugeVec,
    pub inflight_requests: IntGaugeVec,
    pub config_reloads: IntCounterVec,
    pub stream_errors: IntCounterVec,
    pub usage_rejected: IntCounterVec,
    pub hedges: IntCounterVec,
    pub stream_resumes: IntCounterVec,
    pub target_headroom: GaugeVec,
    pub target_ttft: GaugeVec,
    pub target_output_token_seconds: GaugeVec,
    pub credential_refresh_failures: IntCounterVec,
    pub spend: SpendMetrics,
    /// The Responses conversation store (`conversations/metrics.rs`).
    pub responses: ResponsesMetrics,
    /// Client connections: open, refused, timed out (listener/metrics.rs).
    pub client: crate::listener::metrics::ClientMetrics,
    /// OTLP trace export: spans exported and dropped (telemetry/metrics.rs).
    pub telemetry: crate::telemetry::TraceMetrics,
}

/// Budgets, rate limits and the ledger (issue #6).
pub struct SpendMetrics {
    pub budget_usd: GaugeVec,
    pub budget_spent_usd: GaugeVec,
    pub budget_alert_at: GaugeVec,
    pub budget_fallbacks: IntCounterVec,
    pub rate_limit_fallbacks: IntCounterVec,
    pub ledger_buffered: IntGauge,
    pub ledger_over_bound: IntCounter,
    pub ledger_writes: IntCounterVec,
    pub ledger_written: IntCounter,
    /// Rows deleted for being older than `ledger.retention`.
    pub ledger_retention_deleted: IntCounter,
}

impl SpendMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let gauge = |name: &str, help: &str| -> Result<GaugeVec, prometheus::Error> {
            let metric = GaugeVec::new(Opts::new(name, help), &["team"])?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let ledger_buffered = IntGauge::new(
            "switchyard_ledger_buffered_entries",
            "Ledger entries accepted and not yet written.",
        )?;
        registry.register(Box::new(ledger_buffered.clone()))?;
        let ledger_over_bound = IntCounter::new(
            "switchyard_ledger_buffer_over_bound_total",
            "Entries accepted while the ledger buffer was over its bound (kept in memory).",
        )?;
        registry.register(Box::new(ledger_over_bound.clone()))?;
        let ledger_written = IntCounter::new(
            "switchyard_ledger_entries_written_total",
            "Ledger entries written to the database.",
        )?;
        registry.register(Box::new(ledger_written.clone()))?;
        let ledger_retention_deleted = IntCounter::new(
            "switchyard_ledger_retention_deleted_total",
            "Ledger rows deleted for being older than ledger.retention.",
        )?;
        registry.register(Box::new(ledger_retention_deleted.clone()))?;
        Ok(Self {
            budget_usd: gauge(
                "switchyard_budget_usd",
                "Budget of the team's current period, USD.",
            )?,
            budget_spent_usd: gauge(
                "switchyard_budget_spent_usd",
                "Spend of the team in its current budget period, USD.",
            )?,
            budget_alert_at: gauge(
                "switchyard_budget_alert_at",
                "Fraction of the budget at which to alert (alert_at).",
            )?,
            budget_fallbacks: counter(
                "switchyard_budget_fallbacks_total",
                "Budget reservations made locally because the shared ledger did not answer.",
                &["reason"],
            )?,
            rate_limit_fallbacks: counter(
                "switchyard_rate_limit_fallbacks_total",
                "Rate-limit checks made locally because Redis did not answer.",
                &["reason"],
            )?,
            ledger_buffered,
            ledger_over_bound,
            ledger_writes: counter(
                "switchyard_ledger_writes_total",
                "Ledger batch writes by result.",
                &["result"],
            )?,
            ledger_written,
            ledger_retention_deleted,
        })
    }
}

/// Outcome label of one upstream attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Ok,
    Capacity,
    Error,
    Timeout,
}

impl AttemptOutcome {
    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Capacity => "capacity",
            AttemptOutcome::Error => "error",
            AttemptOutcome::Timeout => "timeout",
        }
    }
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let histogram = |name: &str, help: &str| -> Result<HistogramVec, prometheus::Error> {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            let metric = HistogramVec::new(opts, &["model", "provider"])?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let gauge =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let float_gauge = |name: &str, help: &str| -> Result<GaugeVec, prometheus::Error> {
            let metric = GaugeVec::new(Opts::new(name, help), &["provider", "model", "target"])?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let spend_usd = CounterVec::new(
            Opts::new("switchyard_spend_usd_total", "Metered spend in USD."),
            &["team", "model", "provider"],
        )?;
        registry.register(Box::new(spend_usd.clone()))?;
        Ok(Self {
            requests: counter(
                "switchyard_requests_total",
                "Client requests by API and outcome status.",
                &["api", "model", "provider", "team", "status"],
            )?,
            request_duration: histogram(
                "switchyard_request_duration_seconds",
                "Time from request to the last byte of the response.",
            )?,
            time_to_first_token: histogram(
                "switchyard_time_to_first_token_seconds",
                "Time from request to the first content byte sent to the client.",
            )?,
            upstream_attempts: counter(
                "switchyard_upstream_attempts_total",
                "Upstream attempts by outcome.",
                &["provider", "outcome"],
            )?,
            failovers: counter(
                "switchyard_failovers_total",
                "Moves from one target to the next within a request.",
                &["model", "from", "to", "reason"],
            )?,
            tokens: counter(
                "switchyard_tokens_total",
                "Tokens metered, by direction.",
                &["team", "model", "provider", "kind"],
            )?,
            spend_usd,
            target_circuit_open: gauge(
                "switchyard_target_circuit_open",
                "1 while the circuit of a target of this provider and model is open or half-open.",
                &["provider", "model"],
            )?,
            inflight_requests: gauge(
                "switchyard_inflight_requests",
                "Upstream requests in flight.",
                &["provider"],
            )?,
            config_reloads: counter(
                "switchyard_config_reloads_total",
                "Policy reloads by result.",
                &["result"],
            )?,
            stream_errors: counter(
                "switchyard_stream_errors_total",
                "Streams that ended with an error event after their first byte.",
                &["provider", "reason"],
            )?,
            usage_rejected: counter(
                "switchyard_usage_rejected_total",
                "Upstream usage figures out of range, replaced by the proxy's estimate.",
                &["provider", "reason"],
            )?,
            hedges: counter(
                "switchyard_hedges_total",
                "Hedged streams by which attempt answered (primary, hedge, none).",
                &["model", "winner"],
            )?,
            stream_resumes: counter(
                "switchyard_stream_resumes_total",
                "Broken streams of resume_streams models: continued on another target, or why not.",
                &["model", "from", "to", "outcome"],
            )?,
            target_headroom: float_gauge(
                "switchyard_target_headroom",
                "Estimated remaining capacity of a target, 0..1 (absent when unknown).",
            )?,
            target_ttft: float_gauge(
                "switchyard_target_ttft_seconds",
                "Decayed average time to first token of a target.",
            )?,
            target_output_token_seconds: float_gauge(
                "switchyard_target_output_token_seconds",
                "Decayed average time per output token of a target.",
            )?,
            credential_refresh_failures: counter(
                "switchyard_credential_refresh_failures_total",
                "Background credential refreshes (Azure Entra tokens, AWS credentials) that failed.",
                &["provider"],
            )?,
            spend: SpendMetrics::new(&registry)?,
            responses: ResponsesMetrics::new(&registry)?,
            client: crate::listener::metrics::ClientMetrics::new(&registry)?,
            telemetry: crate::telemetry::TraceMetrics::new(&registry)?,
            registry,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut buffer = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which registration prevents.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            buffer.clear();
        }
        buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_names_are_exported() {
        let metrics = Metrics::new().unwrap();
        metrics
            .requests
            .with_label_values(&["chat", "m", "p", "t", "200"])
            .inc();
        metrics
            .request_duration
            .with_label_values(&["m", "p"])
            .observe(0.1);
        metrics
            .time_to_first_token
            .with_label_values(&["m", "p"])
            .observe(0.1);
        metrics
            .upstream_attempts
            .with_label_values(&["p", "ok"])
            .inc();
        metrics
            .failovers
            .with_label_values(&["m", "a", "b", "capacity"])
            .inc();
        metrics
            .tokens
            .with_label_values(&["t", "m", "p", "input"])
            .inc();
        metrics
            .spend_usd
            .with_label_values(&["t", "m", "p"])
            .inc_by(0.5);
        metrics.config_reloads.with_label_values(&["ok"]).inc();
        let text = String::from_utf8(metrics.render()).unwrap();
        for name in [
            "switchyard_requests_total",
            "switchyard_request_duration_seconds_bucket",
            "switchyard_time_to_first_token_seconds_bucket",
            "switchyard_upstream_attempts_total",
            "switchyard_failovers_total",
            "switchyard_tokens_total",
            "switchyard_spend_usd_total",
            "switchyard_config_reloads_total",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
