//! OpenTelemetry traces (docs/tracing.md): one SERVER span per client request and one
//! CLIENT span per upstream attempt, with the GenAI semantic conventions, exported over
//! OTLP (gRPC or HTTP/protobuf) when `telemetry.otlp_endpoint` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` says where. Off otherwise: requests then carry inert spans.
//!
//! - [`settings`]: the compiled `telemetry:` section.
//! - [`export`]: the exporter, the tracer provider and their runtime; the flush on shutdown.
//! - [`queue`]: the bounded queue in front of the exporter, which counts what it drops.
//! - [`spans`]: the request and attempt spans and what they record.
//! - [`attributes`]: attribute names and values.
//! - [`propagation`]: W3C `traceparent` in from the client, out to every upstream.
//! - [`metrics`]: the exporter's Prometheus counters.

pub mod attributes;
pub mod export;
pub mod metrics;
pub mod propagation;
mod queue;
pub mod settings;
pub mod spans;
#[cfg(test)]
pub mod testing;

use opentelemetry_sdk::trace::SdkTracer;

pub use export::Telemetry;
pub use metrics::TraceMetrics;
pub use settings::{OtlpProtocol, OtlpSettings, TelemetrySettings};
pub use spans::{AttemptRole, AttemptSpan, AttemptStart, RequestEnd, RequestSpan, SpanParent};

/// What requests make their spans with: the tracer, or nothing when export is off.
#[derive(Clone, Debug, Default)]
pub struct Tracing {
    tracer: Option<SdkTracer>,
}

impl Tracing {
    /// No export: every span is inert and costs nothing.
    pub fn off() -> Self {
        Self::default()
    }

    pub fn tracer(&self) -> Option<&SdkTracer> {
        self.tracer.as_ref()
    }

    pub fn is_on(&self) -> bool {
        self.tracer.is_some()
    }
}
