//! The spans of one request: a SERVER span for the client's request (its parent the client's
//! `traceparent`, when it sent one) and a CLIENT span per upstream attempt, children of it —
//! so failovers, hedges and resumed stream legs show as siblings. Both are inert when export
//! is off. Attributes are facts about routing, tokens and money: never a key, never prompt or
//! completion text (docs/tracing.md).

use http::HeaderMap;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use super::attributes::*;
use super::{propagation, Tracing};
use crate::config::{Price, Target};
use crate::endpoint::Api;
use crate::metering::cost::cost_usd;
use crate::metering::{NanoUsd, Usage};
use crate::upstream::{AttemptFailure, FailureKind};

/// What starts children: the tracer and the context holding the request span.
#[derive(Clone)]
pub struct SpanParent {
    tracer: SdkTracer,
    cx: Context,
}

/// The client request's span; ended once, by [`RequestSpan::end`] (or when dropped).
#[derive(Default)]
pub struct RequestSpan {
    parent: Option<SpanParent>,
}

/// How a request ended, as the request span records it.
pub struct RequestEnd<'a> {
    pub request_id: &'a str,
    pub api: Api,
    pub team: &'a str,
    /// The model name the client sent (`none` / `unknown` when there was no valid one).
    pub model: &'a str,
    pub served_by: Option<&'a Target>,
    pub attempts: usize,
    /// The HTTP status sent, when one was (not for a stream that broke or a client gone).
    pub http_status: Option<u16>,
    /// `200`, `429`, `stream_error`, `client_closed`…: the `status` label of the metrics.
    pub status: &'a str,
    pub usage: Option<&'a Usage>,
    pub cost: NanoUsd,
}

impl RequestSpan {
    /// Starts the request's span, continuing the client's trace context from `headers`.
    pub fn start(tracing: &Tracing, headers: &HeaderMap, method: &str, path: &str) -> Self {
        let Some(tracer) = tracing.tracer() else {
            return Self::default();
        };
        let remote = propagation::extract(headers);
        let api = Api::of(path);
        let route = route(api, path);
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method.to_owned(),
        };
        let mut attributes = vec![
            KeyValue::new(HTTP_METHOD, method.to_owned()),
            KeyValue::new(API, api.label()),
        ];
        attributes.extend(route.map(|route| KeyValue::new(HTTP_ROUTE, route)));
        attributes.extend(gen_ai_operation(api).map(|op| KeyValue::new(GEN_AI_OPERATION, op)));
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &remote);
        Self {
            parent: Some(SpanParent {
                tracer: tracer.clone(),
                cx: remote.with_span(span),
            }),
        }
    }

    /// Where this request's attempt spans hang (for the legs of a resumable stream).
    pub fn parent(&self) -> Option<SpanParent> {
        self.parent.clone()
    }

    /// A child span for an upstream attempt (inert when the request span is).
    pub fn attempt(&self, start: AttemptStart<'_>) -> AttemptSpan {
        SpanParent::attempt_of(self.parent.as_ref(), start)
    }

    /// Records how the request ended and ends its span (once; later calls do nothing).
    pub fn end(&mut self, end: RequestEnd<'_>) {
        let Some(parent) = self.parent.take() else {
            return;
        };
        let span = parent.cx.span();
        let mut attributes = vec![
            KeyValue::new(REQUEST_ID, end.request_id.to_owned()),
            KeyValue::new(TEAM, end.team.to_owned()),
            KeyValue::new(ATTEMPTS, end.attempts as i64),
            KeyValue::new(STATUS, end.status.to_owned()),
        ];
        if !matches!(end.model, "none" | "unknown") {
            attributes.push(KeyValue::new(GEN_AI_REQUEST_MODEL, end.model.to_owned()));
        }
        if let Some(target) = end.served_by {
            attributes.extend(target_attributes(target));
            attributes.push(KeyValue::new(
                GEN_AI_RESPONSE_MODEL,
                target.upstream_model.clone(),
            ));
        }
        if let Some(status) = end.http_status {
            attributes.push(KeyValue::new(HTTP_STATUS, i64::from(status)));
        }
        if let Some(usage) = end.usage {
            attributes.extend(usage_attributes(usage));
            attributes.push(KeyValue::new(COST_USD, end.cost.as_usd_f64()));
        }
        // A server span is in error for 5xx and broken streams; a 4xx is the client's.
        let failed = end
            .http_status
            .map_or(end.status == "stream_error", |s| s >= 500);
        if failed {
            attributes.push(KeyValue::new(ERROR_TYPE, end.status.to_owned()));
            span.set_status(Status::error(end.status.to_owned()));
        }
        span.set_attributes(attributes);
        span.end();
    }
}

impl Drop for RequestSpan {
    fn drop(&mut self) {
        if let Some(parent) = self.parent.take() {
            parent.cx.span().end();
        }
    }
}

/// Why an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptRole {
    /// The plan's first target.
    First,
    /// After an earlier target failed.
    Failover,
    /// Raced against a slow first target (`hedge_after`).
    Hedge,
    /// A resumed stream's next leg (docs/streams.md).
    Resume,
}

impl AttemptRole {
    fn label(self) -> &'static str {
        match self {
            AttemptRole::First => "first",
            AttemptRole::Failover => "failover",
            AttemptRole::Hedge => "hedge",
            AttemptRole::Resume => "resume",
        }
    }
}

/// What an attempt span knows when it starts.
pub struct AttemptStart<'a> {
    pub target: &'a Target,
    /// `gen_ai.operation.name` ([`gen_ai_operation_of`]).
    pub operation: &'static str,
    /// The model (name under `models:`) the attempt serves.
    pub model: &'a str,
    /// The output cap sent upstream, if any.
    pub max_tokens: Option<u32>,
    pub stream: bool,
    pub role: AttemptRole,
}

impl SpanParent {
    /// A child span for an upstream attempt.
    pub fn attempt(&self, start: AttemptStart<'_>) -> AttemptSpan {
        Self::attempt_of(Some(self), start)
    }

    fn attempt_of(parent: Option<&SpanParent>, start: AttemptStart<'_>) -> AttemptSpan {
        let Some(parent) = parent else {
            return AttemptSpan::default();
        };
        let target = start.target;
        let operation = start.operation;
        let mut attributes = vec![
            KeyValue::new(GEN_AI_OPERATION, operation),
            KeyValue::new(GEN_AI_REQUEST_MODEL, target.upstream_model.clone()),
            KeyValue::new(GEN_AI_STREAM, start.stream),
            KeyValue::new(MODEL, start.model.to_owned()),
            KeyValue::new(ATTEMPT_ROLE, start.role.label()),
        ];
        attributes.extend(target_attributes(target));
        if let Some(max) = start.max_tokens.filter(|max| *max > 0) {
            attributes.push(KeyValue::new(GEN_AI_MAX_TOKENS, i64::from(max)));
        }
        let span = parent
            .tracer
            .span_builder(format!("{operation} {}", target.upstream_model))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&parent.tracer, &parent.cx);
        AttemptSpan {
            cx: Some(parent.cx.with_span(span)),
            price: Some(target.price),
        }
    }
}

/// One upstream attempt's span. Ended once by one of its `end_*` methods; an attempt
/// dropped before (a hedge's loser, a client gone) ends as `cancelled`.
#[derive(Default)]
pub struct AttemptSpan {
    cx: Option<Context>,
    price: Option<Price>,
}

impl AttemptSpan {
    /// Writes this attempt's `traceparent` (and `tracestate`) into an upstream request's
    /// headers. Bedrock requests are signed before this: trace headers are not among their
    /// `SignedHeaders`, which AWS allows (docs/tracing.md).
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Some(cx) = &self.cx {
            propagation::inject(cx, headers);
        }
    }

    /// A complete answer: its usage and cost at the target's price.
    pub fn end_answered(&mut self, usage: &Usage) {
        self.end_with("ok", Some(usage), None, None);
    }

    /// The attempt failed (or its stream broke): the failure's reason, and its status.
    pub fn end_failed(&mut self, failure: &AttemptFailure) {
        let status = match failure.kind {
            FailureKind::Rejected { status, .. } | FailureKind::CredentialsRejected { status } => {
                Some(status)
            }
            FailureKind::Capacity { .. } | FailureKind::Timeout | FailureKind::ServerError => None,
        };
        let reason = failure.reason_label();
        self.end_with(reason, None, status, Some(reason));
    }

    /// The target cannot express the request: nothing was sent.
    pub fn end_refused(&mut self) {
        self.end_with("refused", None, None, None);
    }

    /// A stream leg ended: `outcome` is `ok`, `stalled`, `broken` or `client_closed`; what it
    /// produced is counted whatever the outcome.
    pub fn end_leg(&mut self, outcome: &'static str, usage: &Usage) {
        let error = matches!(outcome, "stalled" | "broken").then_some(outcome);
        self.end_with(outcome, Some(usage), None, error);
    }

    fn end_with(
        &mut self,
        outcome: &str,
        usage: Option<&Usage>,
        http_status: Option<u16>,
        error: Option<&str>,
    ) {
        let Some(cx) = self.cx.take() else {
            return;
        };
        let span = cx.span();
        let mut attributes = vec![KeyValue::new(ATTEMPT_OUTCOME, outcome.to_owned())];
        if let Some(usage) = usage {
            attributes.extend(usage_attributes(usage));
            if let Some(price) = &self.price {
                attributes.push(KeyValue::new(COST_USD, cost_usd(price, usage).as_usd_f64()));
            }
        }
        if let Some(status) = http_status {
            attributes.push(KeyValue::new(HTTP_STATUS, i64::from(status)));
        }
        if let Some(error) = error {
            attributes.push(KeyValue::new(ERROR_TYPE, error.to_owned()));
            span.set_status(Status::error(error.to_owned()));
        }
        span.set_attributes(attributes);
        span.end();
    }
}

impl Drop for AttemptSpan {
    fn drop(&mut self) {
        self.end_with("cancelled", None, None, None);
    }
}

/// Where an attempt went: provider kind and name, target.
fn target_attributes(target: &Target) -> [KeyValue; 3] {
    [
        KeyValue::new(GEN_AI_PROVIDER, gen_ai_provider(&target.provider.kind)),
        KeyValue::new(PROVIDER, target.provider.name.clone()),
        KeyValue::new(TARGET, target.id.0.clone()),
    ]
}

fn usage_attributes(usage: &Usage) -> [KeyValue; 2] {
    let count = |tokens: u64| i64::try_from(tokens).unwrap_or(i64::MAX);
    [
        KeyValue::new(GEN_AI_INPUT_TOKENS, count(usage.prompt_tokens)),
        KeyValue::new(GEN_AI_OUTPUT_TOKENS, count(usage.completion_tokens)),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry::trace::{SpanKind, Status};

    use super::*;
    use crate::config::testing::compile_yaml;
    use crate::telemetry::testing::{attr, SpanLog};

    const CLIENT_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn target() -> Arc<Target> {
        let yaml = "version: 1\nproviders:\n  p: { kind: anthropic, api_key: k }\nmodels:\n  m: { targets: [ { provider: p, model: claude-x, price: { input: 1, output: 2 } } ] }\n";
        let policy = compile_yaml(yaml, &[]).unwrap();
        policy.models["m"].targets[0].clone()
    }

    fn start(tracing: &Tracing) -> RequestSpan {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", CLIENT_PARENT.parse().unwrap());
        RequestSpan::start(tracing, &headers, "POST", "/v1/messages")
    }

    fn attempt(request: &RequestSpan, target: &Target) -> AttemptSpan {
        request.attempt(AttemptStart {
            target,
            operation: "chat",
            model: "m",
            max_tokens: Some(100),
            stream: false,
            role: AttemptRole::First,
        })
    }

    fn end(request: &mut RequestSpan, http_status: Option<u16>, status: &str, attempts: usize) {
        request.end(RequestEnd {
            request_id: "req-1",
            api: Api::Messages,
            team: "t",
            model: "m",
            served_by: None,
            attempts,
            http_status,
            status,
            usage: None,
            cost: NanoUsd::ZERO,
        });
    }

    #[test]
    fn a_rejected_attempt_and_a_5xx_request_are_errors_with_their_status() {
        let log = SpanLog::default();
        let tracing = log.tracing();
        let target = target();
        let mut request = start(&tracing);
        let mut rejected = attempt(&request, &target);
        rejected.end_failed(&AttemptFailure::new(
            FailureKind::Rejected {
                status: 400,
                param: None,
                code: None,
            },
            "prompt quoted by the upstream: secret plans",
        ));
        end(&mut request, Some(502), "502", 1);

        let spans = log.spans();
        assert_eq!(spans.len(), 2);
        let (child, server) = (&spans[0], &spans[1]);
        assert_eq!(server.span_kind, SpanKind::Server);
        assert_eq!(server.name, "POST /v1/messages");
        assert_eq!(server.parent_span_id.to_string(), "00f067aa0ba902b7");
        assert!(matches!(server.status, Status::Error { .. }));
        assert_eq!(attr(server, "error.type").as_deref(), Some("502"));
        assert_eq!(
            attr(server, "gen_ai.operation.name").as_deref(),
            Some("chat")
        );
        assert_eq!(child.span_kind, SpanKind::Client);
        assert_eq!(child.name, "chat claude-x");
        assert_eq!(
            attr(child, "gen_ai.provider.name").as_deref(),
            Some("anthropic")
        );
        assert_eq!(
            attr(child, "gen_ai.request.max_tokens").as_deref(),
            Some("100")
        );
        assert_eq!(
            attr(child, "http.response.status_code").as_deref(),
            Some("400")
        );
        assert_eq!(
            attr(child, "switchyard.attempt.outcome").as_deref(),
            Some("rejected")
        );
        assert!(matches!(child.status, Status::Error { .. }));
        println!("the upstream's error text is not recorded: it may quote the prompt");
        for span in &spans {
            for kv in &span.attributes {
                assert!(!kv.value.as_str().contains("secret plans"), "{kv:?}");
            }
            assert!(!format!("{:?}", span.status).contains("secret plans"));
        }
    }

    #[test]
    fn a_4xx_is_the_clients_and_a_dropped_span_still_ends() {
        let log = SpanLog::default();
        let tracing = log.tracing();
        let mut request = start(&tracing);
        end(&mut request, Some(429), "429", 0);
        end(&mut request, Some(500), "500", 0);
        let spans = log.spans();
        assert_eq!(spans.len(), 1, "ended once");
        assert_eq!(
            spans[0].status,
            Status::Unset,
            "a refusal is not a server error"
        );

        println!("a cancelled attempt and an abandoned request end when dropped");
        let target = target();
        let request = start(&tracing);
        drop(attempt(&request, &target));
        drop(request);
        let spans = log.spans();
        assert_eq!(spans.len(), 3);
        assert_eq!(
            attr(&spans[1], "switchyard.attempt.outcome").as_deref(),
            Some("cancelled")
        );
    }

    #[test]
    fn off_means_inert() {
        let tracing = Tracing::off();
        let target = target();
        let request = start(&tracing);
        let mut headers = HeaderMap::new();
        attempt(&request, &target).inject(&mut headers);
        assert!(
            headers.is_empty(),
            "nothing sent upstream when tracing is off"
        );
        assert!(request.parent().is_none());
    }
}
