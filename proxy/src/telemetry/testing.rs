//! Test helpers: an exporter that keeps spans in memory (or refuses them), and a tracer
//! that hands every ended span to it at once.

use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanExporter};

use super::Tracing;

/// Keeps what it is asked to export; refuses everything when `refuse` is set.
#[derive(Debug, Clone, Default)]
pub struct SpanLog {
    spans: Arc<Mutex<Vec<SpanData>>>,
    pub refuse: bool,
}

impl SpanExporter for SpanLog {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.refuse {
            return Err(OTelSdkError::InternalFailure("refused".to_owned()));
        }
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(batch);
        Ok(())
    }
}

impl SpanLog {
    /// An exporter whose collector refuses every batch.
    pub fn refusing() -> Self {
        Self {
            refuse: true,
            ..Self::default()
        }
    }

    /// The spans exported so far, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A tracer whose spans end up here as soon as they end.
    pub fn tracing(&self) -> Tracing {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(SimpleSpanProcessor::new(self.clone()))
            .build();
        Tracing {
            tracer: Some(provider.tracer("test")),
        }
    }
}

/// The string (or number, as text) value of `span`'s attribute `key`.
pub fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}
