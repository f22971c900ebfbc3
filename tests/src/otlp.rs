//! In-process OTLP trace receivers for the tracing tests: a gRPC one (tonic, with
//! `opentelemetry-proto`'s `TraceService`) and an HTTP/protobuf one (hyper, decoding
//! `ExportTraceServiceRequest` from `POST /v1/traces`), both keeping every span received; a
//! "black hole" that accepts connections and never answers; and a text rendering of a
//! trace's span tree.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;

/// A span as received, with its resource's `service.name`.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub service_name: String,
    pub span: Span,
}

impl ReceivedSpan {
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent's span id, empty for a root span.
    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    pub fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    pub fn is_error(&self) -> bool {
        self.span
            .status
            .as_ref()
            .is_some_and(|status| status.code == StatusCode::Error as i32)
    }

    /// The attribute `key`'s value, if the span has it.
    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key)? {
            AnyValue::StringValue(text) => Some(text),
            _ => None,
        }
    }

    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key)? {
            AnyValue::IntValue(number) => Some(*number),
            _ => None,
        }
    }

    pub fn float_attr(&self, key: &str) -> Option<f64> {
        match self.attr(key)? {
            AnyValue::DoubleValue(number) => Some(*number),
            _ => None,
        }
    }

    /// Every attribute as `key=value` text, for secret and content checks.
    pub fn attribute_texts(&self) -> Vec<String> {
        self.span
            .attributes
            .iter()
            .map(|kv| {
                format!(
                    "{}={}",
                    kv.key,
                    value_text(kv.value.as_ref().and_then(|v| v.value.as_ref()))
                )
            })
            .collect()
    }
}

fn value_text(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(text)) => text.clone(),
        Some(AnyValue::IntValue(number)) => number.to_string(),
        Some(AnyValue::DoubleValue(number)) => number.to_string(),
        Some(AnyValue::BoolValue(flag)) => flag.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The spans a receiver got, shared with its server task.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<ReceivedSpan>>>);

impl Received {
    fn add(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_spans in request.resource_spans {
            let service_name = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| value_text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                spans.extend(scope_spans.spans.into_iter().map(|span| ReceivedSpan {
                    service_name: service_name.clone(),
                    span,
                }));
            }
        }
    }

    fn all(&self) -> Vec<ReceivedSpan> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A running OTLP receiver on a free local port.
pub struct OtlpReceiver {
    addr: SocketAddr,
    received: Received,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct GrpcCollector(Received);

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.add(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl OtlpReceiver {
    /// OTLP/gRPC (what `otlp_protocol: grpc` sends to).
    pub async fn grpc() -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let addr = listener.local_addr().expect("local address");
        let received = Received::default();
        let service = TraceServiceServer::new(GrpcCollector(received.clone()));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        println!("OTLP/gRPC receiver on {addr}");
        OtlpReceiver {
            addr,
            received,
            server,
        }
    }

    /// OTLP/HTTP with protobuf bodies (what `otlp_protocol: http` sends to).
    pub async fn http() -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let addr = listener.local_addr().expect("local address");
        let received = Received::default();
        let sink = received.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let sink = sink.clone();
                            async move { Ok::<_, hyper::Error>(http_export(&sink, request).await) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        println!("OTLP/HTTP receiver on {addr}");
        OtlpReceiver {
            addr,
            received,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`: the endpoint to configure.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.all()
    }

    /// The spans of trace `trace_id` once there are at least `count` of them, polling for
    /// at most 15 s (export runs every second).
    pub async fn trace(&self, trace_id: &str, count: usize) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans: Vec<_> = self
                .spans()
                .into_iter()
                .filter(|span| span.trace_id() == trace_id)
                .collect();
            if spans.len() >= count || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One `POST /v1/traces`: decode, keep, answer with an empty success.
async fn http_export(
    sink: &Received,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let reply = |status: u16, body: Vec<u8>| {
        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/x-protobuf"),
        );
        response
    };
    if request.uri().path() != "/v1/traces" {
        return reply(404, Vec::new());
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(400, Vec::new()),
    };
    match ExportTraceServiceRequest::decode(body) {
        Ok(export) => {
            sink.add(export);
            reply(200, ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(_) => reply(400, Vec::new()),
    }
}

/// A listener that accepts connections and never reads or answers: a collector that hangs.
pub struct BlackHole {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                // Kept open, never read: the exporter waits for an answer that never comes.
                held.push(stream);
            }
        });
        BlackHole { addr, server }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The span tree of `spans` (one trace) as indented text: name, kind, duration, status and
/// attributes, children in start order.
pub fn render_tree(spans: &[ReceivedSpan]) -> String {
    let ids: Vec<String> = spans.iter().map(ReceivedSpan::span_id).collect();
    let mut roots: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| !ids.contains(&span.parent_id()))
        .collect();
    roots.sort_by_key(|span| span.span.start_time_unix_nano);
    let mut out = String::new();
    for root in roots {
        if !root.parent_id().is_empty() {
            out.push_str(&format!("(remote parent {})\n", root.parent_id()));
        }
        render_span(root, spans, 0, &mut out);
    }
    out
}

fn render_span(span: &ReceivedSpan, all: &[ReceivedSpan], depth: usize, out: &mut String) {
    let indent = "    ".repeat(depth);
    let millis = span
        .span
        .end_time_unix_nano
        .saturating_sub(span.span.start_time_unix_nano) as f64
        / 1e6;
    let kind = match span.kind() {
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
        _ => "OTHER",
    };
    let status = if span.is_error() { "  ERROR" } else { "" };
    out.push_str(&format!(
        "{indent}{} [{kind}] {millis:.1} ms{status}  span {}\n",
        span.span.name,
        span.span_id()
    ));
    let mut attributes = span.attribute_texts();
    attributes.sort();
    for attribute in attributes {
        out.push_str(&format!("{indent}    {attribute}\n"));
    }
    let mut children: Vec<&ReceivedSpan> = all
        .iter()
        .filter(|child| child.parent_id() == span.span_id())
        .collect();
    children.sort_by_key(|child| child.span.start_time_unix_nano);
    for child in children {
        render_span(child, all, depth + 1, out);
    }
}
