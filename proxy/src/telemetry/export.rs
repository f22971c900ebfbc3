//! Starting and stopping trace export: the OTLP exporter (tonic for gRPC, the proxy's own
//! reqwest stack for HTTP/protobuf) on a runtime of its own, behind the bounded
//! [`queue`](super::queue), and the tracer provider that samples and builds the spans.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanExporter as _};
use opentelemetry_sdk::Resource;
use thiserror::Error;
use tokio::runtime::Runtime;

use super::metrics::TraceMetrics;
use super::queue::{self, Flusher, QueueSettings};
use super::settings::{OtlpProtocol, OtlpSettings};
use super::Tracing;

/// One export call's bound (the exporter's own timeout, and the queue's).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum TelemetryError {
    #[error("cannot start the telemetry runtime: {0}")]
    Runtime(String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// Trace export while the proxy runs; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    runtime: Runtime,
    provider: SdkTracerProvider,
    flusher: Flusher,
    tracing: Tracing,
}

impl Telemetry {
    /// Builds the exporter for `settings` and starts exporting.
    pub fn start(settings: &OtlpSettings, metrics: TraceMetrics) -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchyard-telemetry")
            .enable_all()
            .build()
            .map_err(|e| TelemetryError::Runtime(e.to_string()))?;
        let resource = Resource::builder()
            .with_service_name(settings.service_name.clone())
            .build();
        let mut exporter = {
            // tonic's channel starts its connection task on the runtime it is built in.
            let _entered = runtime.enter();
            exporter(settings)?
        };
        exporter.set_resource(&resource);
        let queue = queue::queue(
            exporter,
            QueueSettings::new(settings.max_queue_spans),
            metrics,
        );
        runtime.spawn(queue.worker.run());
        let sampler =
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue.processor)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let scope = InstrumentationScope::builder("switchyard")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let tracer = provider.tracer_with_scope(scope);
        tracing::info!(
            protocol = settings.protocol.label(),
            sample_ratio = settings.sample_ratio,
            "exporting traces over OTLP"
        );
        Ok(Self {
            runtime,
            provider,
            flusher: queue.flusher,
            tracing: Tracing {
                tracer: Some(tracer),
            },
        })
    }

    /// What requests make their spans with.
    pub fn tracing(&self) -> Tracing {
        self.tracing.clone()
    }

    /// Exports the spans still queued, for at most `bound`, then stops (after the drain,
    /// when every request has ended its spans).
    pub fn shutdown(self, bound: Duration) {
        let flushed = self.runtime.block_on(self.flusher.flush(bound));
        if !flushed {
            tracing::warn!(
                bound_s = bound.as_secs_f64(),
                "trace export did not finish flushing in time; the rest is dropped"
            );
        }
        drop(self.tracing);
        drop(self.provider);
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// The OTLP exporter of `settings`' protocol.
fn exporter(settings: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let built = match settings.protocol {
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
        OtlpProtocol::HttpProtobuf => {
            // The proxy's rustls stack (ring provider), not a second TLS setup.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_http_client(client)
                .with_endpoint(traces_url(&settings.endpoint))
                .with_timeout(EXPORT_TIMEOUT)
                .build()
        }
    };
    built.map_err(|e| TelemetryError::Exporter(e.to_string()))
}

/// OTLP/HTTP's traces path on the collector's base URL.
fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn http_export_posts_to_the_traces_path() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
    }
}
