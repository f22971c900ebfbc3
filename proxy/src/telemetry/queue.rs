//! The bounded queue between the request path and the OTLP exporter. Ending a span never
//! waits: [`QueuedProcessor::on_end`] offers it to a bounded channel and, when the channel is
//! full (the collector is slow or away), drops it and counts it in
//! `switchyard_trace_spans_dropped_total{reason="queue_full"}`. One task on the telemetry
//! runtime takes spans off the queue and exports them in batches, one export at a time,
//! each bounded in time. (The SDK's own batch processor drops silently: its count is private.)

use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::{mpsc, oneshot};

use super::metrics::TraceMetrics;

/// How the queue is drained.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Spans waiting for export at most.
    pub capacity: usize,
    /// Spans per export call at most.
    pub max_batch: usize,
    /// A partial batch is exported after this long.
    pub interval: Duration,
    /// One export call's bound; its spans are dropped (`export_failed`) past it.
    pub export_timeout: Duration,
}

impl QueueSettings {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_batch: capacity.clamp(1, 512),
            interval: Duration::from_secs(1),
            export_timeout: Duration::from_secs(10),
        }
    }
}

/// What the exporting task is asked besides exporting.
enum Control {
    /// Export everything queued now, then answer.
    Flush(oneshot::Sender<()>),
}

/// The span processor of the tracer provider: ended spans go into the queue.
pub struct QueuedProcessor {
    spans: mpsc::Sender<SpanData>,
    metrics: TraceMetrics,
}

impl std::fmt::Debug for QueuedProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedProcessor")
            .field("capacity", &self.spans.max_capacity())
            .finish_non_exhaustive()
    }
}

/// Asks the exporting task to flush; cloneable, kept by the telemetry handle.
#[derive(Clone, Debug)]
pub struct Flusher {
    control: mpsc::Sender<Control>,
}

impl Flusher {
    /// Exports what is queued, waiting at most `bound`; false when that was not enough (or
    /// the task is gone).
    pub async fn flush(&self, bound: Duration) -> bool {
        let (done, finished) = oneshot::channel();
        let asked = async {
            self.control.send(Control::Flush(done)).await.ok()?;
            finished.await.ok()
        };
        matches!(tokio::time::timeout(bound, asked).await, Ok(Some(())))
    }
}

/// The queue's two ends: the processor for the provider, and the exporting task to spawn.
pub struct Queue<E> {
    pub processor: QueuedProcessor,
    pub flusher: Flusher,
    pub worker: Worker<E>,
}

/// Builds the queue in front of `exporter`.
pub fn queue<E: SpanExporter>(
    exporter: E,
    settings: QueueSettings,
    metrics: TraceMetrics,
) -> Queue<E> {
    let (spans, queued) = mpsc::channel(settings.capacity);
    let (control, requests) = mpsc::channel(4);
    Queue {
        processor: QueuedProcessor {
            spans,
            metrics: metrics.clone(),
        },
        flusher: Flusher { control },
        worker: Worker {
            exporter,
            queued,
            requests,
            settings,
            metrics,
        },
    }
}

impl SpanProcessor for QueuedProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.spans.try_send(span) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.metrics.dropped("queue_full", 1),
            Err(mpsc::error::TrySendError::Closed(_)) => self.metrics.dropped("shutdown", 1),
        }
    }

    /// Flushing is asynchronous ([`Flusher::flush`], on shutdown); this synchronous hook must
    /// not block a runtime thread.
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The exporting task: owns the exporter and the queue's receiving end.
pub struct Worker<E> {
    exporter: E,
    queued: mpsc::Receiver<SpanData>,
    requests: mpsc::Receiver<Control>,
    settings: QueueSettings,
    metrics: TraceMetrics,
}

impl<E: SpanExporter> Worker<E> {
    /// Exports batches until every sender is gone.
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.settings.max_batch);
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                span = self.queued.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() >= self.settings.max_batch {
                            self.export(&mut batch).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.export(&mut batch).await,
                Some(Control::Flush(done)) = self.requests.recv() => {
                    while let Ok(span) = self.queued.try_recv() {
                        batch.push(span);
                        if batch.len() >= self.settings.max_batch {
                            self.export(&mut batch).await;
                        }
                    }
                    self.export(&mut batch).await;
                    let _ = done.send(());
                }
            }
        }
        self.export(&mut batch).await;
    }

    async fn export(&self, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let spans = std::mem::take(batch);
        let count = spans.len();
        let exported =
            tokio::time::timeout(self.settings.export_timeout, self.exporter.export(spans))
                .await
                .unwrap_or(Err(OTelSdkError::Timeout(self.settings.export_timeout)));
        match exported {
            Ok(()) => self.metrics.spans_exported.inc_by(count as u64),
            Err(error) => {
                self.metrics.dropped("export_failed", count);
                tracing::debug!(%error, spans = count, "trace export failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;
    use crate::telemetry::testing::SpanLog;

    fn provider(processor: QueuedProcessor) -> SdkTracerProvider {
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build()
    }

    fn end_spans(provider: &SdkTracerProvider, count: usize) {
        let tracer = provider.tracer("test");
        for n in 0..count {
            tracer.start(format!("span {n}")).end();
        }
    }

    fn dropped(metrics: &TraceMetrics, reason: &str) -> u64 {
        metrics.spans_dropped.with_label_values(&[reason]).get()
    }

    #[test]
    fn spans_past_a_full_queue_are_dropped_and_counted_without_waiting() {
        let metrics = TraceMetrics::unregistered();
        let queue = queue(SpanLog::default(), QueueSettings::new(3), metrics.clone());
        println!("no worker drains the queue: 3 spans fit, the next 5 are dropped");
        let provider = provider(queue.processor);
        end_spans(&provider, 8);
        assert_eq!(dropped(&metrics, "queue_full"), 5);
        assert_eq!(metrics.spans_exported.get(), 0);
        drop(queue.worker);
        end_spans(&provider, 2);
        assert_eq!(dropped(&metrics, "shutdown"), 2, "no exporter any more");
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_exports_everything_queued() {
        let metrics = TraceMetrics::unregistered();
        let exporter = SpanLog::default();
        let queue = queue(exporter.clone(), QueueSettings::new(16), metrics.clone());
        let provider = provider(queue.processor);
        tokio::spawn(queue.worker.run());
        end_spans(&provider, 5);
        assert!(queue.flusher.flush(Duration::from_secs(5)).await);
        assert_eq!(exporter.spans().len(), 5);
        assert_eq!(metrics.spans_exported.get(), 5);
        assert_eq!(dropped(&metrics, "queue_full"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn spans_the_collector_refuses_are_counted_as_failed_exports() {
        let metrics = TraceMetrics::unregistered();
        let exporter = SpanLog::refusing();
        let queue = queue(exporter, QueueSettings::new(16), metrics.clone());
        let provider = provider(queue.processor);
        tokio::spawn(queue.worker.run());
        end_spans(&provider, 4);
        assert!(queue.flusher.flush(Duration::from_secs(5)).await);
        assert_eq!(dropped(&metrics, "export_failed"), 4);
        assert_eq!(metrics.spans_exported.get(), 0);
    }
}
