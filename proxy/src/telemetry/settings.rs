//! `telemetry:` as compiled: whether traces are exported, where to, over which OTLP
//! transport, and how many are sampled and queued (docs/tracing.md).

/// The compiled `telemetry:` section; `otlp: None` when no endpoint is configured.
#[derive(Debug, Clone, Default)]
pub struct TelemetrySettings {
    pub otlp: Option<OtlpSettings>,
}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    /// The collector's base URL (`http://collector:4317`); HTTP export posts to
    /// `{endpoint}/v1/traces`.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// Fraction of new traces recorded (0..=1); a client's sampled parent is always followed.
    pub sample_ratio: f64,
    /// Ended spans waiting for export; past this, spans are dropped and counted.
    pub max_queue_spans: usize,
    /// `service.name` of the exported resource (`OTEL_SERVICE_NAME`, else `switchyard`).
    pub service_name: String,
    /// Where the endpoint came from, for `--check`.
    pub source: EndpointSource,
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (tonic), usually port 4317.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, usually port 4318.
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The word `routes.yaml` and `--check` use.
    pub fn label(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http",
        }
    }
}

/// Where `telemetry.otlp_endpoint`'s value was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSource {
    Config,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    Environment,
}

/// Spans queued for export unless `telemetry.max_queue_spans` says otherwise (the SDK's
/// own default).
pub const DEFAULT_MAX_QUEUE_SPANS: usize = 2048;
/// `service.name` unless `OTEL_SERVICE_NAME` is set.
pub const DEFAULT_SERVICE_NAME: &str = "switchyard";
