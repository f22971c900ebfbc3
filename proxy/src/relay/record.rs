//! The account of one client request: who, what, where it went, what it cost. Finished
//! exactly once, when the response ends, into metrics, the access log and the ledger; its
//! budget reservation is settled then (or when it is dropped, if the client went away).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Price, Target};
use crate::endpoint::{Api, Endpoint};
use crate::metering::ledger::LedgerEntry;
use crate::metering::spend::now_ms;
use crate::metering::usage_check::UsageBounds;
use crate::metering::{cost::cost_usd, Admission, NanoUsd, Usage};
use crate::state::AppState;
use crate::telemetry::{RequestEnd, RequestSpan};

pub struct RequestRecord {
    state: Arc<AppState>,
    pub request_id: String,
    /// The client's `x-request-id`, when the proxy kept it as `request_id`.
    pub client_request_id: Option<String>,
    /// The version of the policy the request was routed by.
    pub policy_version: String,
    pub team: String,
    pub key_id: String,
    /// The API the client called: the `api` label, and the dialect of its errors.
    pub endpoint: Endpoint,
    /// The model name the client sent (the label every metric uses).
    pub model: String,
    pub started: Instant,
    /// When the client's body was complete: the request deadline (`server.request_timeout`)
    /// counts from here, so a slow upload is never blamed on the upstreams.
    pub body_read: Instant,
    pub attempts: usize,
    served_by: Option<ServedBy>,
    pub first_byte: Option<Duration>,
    /// Whether the client asked for the attempt chain (`x-switchyard-debug: 1`).
    pub debug: bool,
    /// `target=outcome` per attempt: the debug header, and the ledger's audit trail.
    route: Vec<String>,
    finished: bool,
    /// The budget reservation and rate-limit charge made before the request was sent.
    admission: Option<Admission>,
    /// A resumed stream's broken attempts (docs/streams.md).
    resumed: Option<Resumed>,
    /// The request's trace span (inert when trace export is off), ended with the record.
    pub trace: RequestSpan,
}

/// The attempts of a stream that broke and were continued on another target: billed at
/// their own targets' prices, on the request's one ledger row.
#[derive(Debug, Clone)]
struct Resumed {
    /// The targets whose streams broke, in order.
    from: Vec<String>,
    usage: Usage,
    cost: NanoUsd,
}

/// The target that answered.
#[derive(Debug, Clone)]
struct ServedBy {
    provider: String,
    target: String,
    price: Price,
    /// For the trace: the provider's kind and the upstream model.
    served: Arc<Target>,
}

/// How a request ended, for the metrics' `status` label and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The HTTP status sent.
    Status(u16),
    /// A stream that failed after its first byte (status 200 was already sent).
    StreamError,
    /// The client went away before the response was complete.
    ClientGone,
}

impl Ending {
    fn label(self) -> String {
        match self {
            Ending::Status(code) => code.to_string(),
            Ending::StreamError => "stream_error".to_owned(),
            Ending::ClientGone => "client_closed".to_owned(),
        }
    }
}

impl RequestRecord {
    pub fn new(state: Arc<AppState>, request_id: String, started: Instant) -> Self {
        Self {
            state,
            request_id,
            client_request_id: None,
            policy_version: String::new(),
            team: "unknown".to_owned(),
            key_id: String::new(),
            endpoint: Endpoint {
                api: Api::Unknown,
                anthropic_version: false,
            },
            model: "none".to_owned(),
            started,
            body_read: started,
            attempts: 0,
            served_by: None,
            first_byte: None,
            debug: false,
            route: Vec::new(),
            finished: false,
            admission: None,
            resumed: None,
            trace: RequestSpan::default(),
        }
    }

    /// The serving target's stream broke after producing `usage` and goes on elsewhere: its
    /// tokens are metered under its own provider now, and its cost is carried to the ledger.
    pub fn resumed_after(&mut self, usage: Usage) {
        let cost = self.cost_of(&usage);
        let provider = self.provider().to_owned();
        let labels = |kind| {
            [
                self.team.as_str(),
                self.model.as_str(),
                provider.as_str(),
                kind,
            ]
        };
        let metrics = &self.state.metrics;
        metrics
            .tokens
            .with_label_values(&labels("input"))
            .inc_by(usage.prompt_tokens);
        metrics
            .tokens
            .with_label_values(&labels("output"))
            .inc_by(usage.completion_tokens);
        metrics
            .spend_usd
            .with_label_values(&[&self.team, &self.model, &provider])
            .inc_by(cost.as_usd_f64());
        let target = self
            .served_by
            .as_ref()
            .map_or_else(String::new, |s| s.target.clone());
        let resumed = self.resumed.get_or_insert(Resumed {
            from: Vec::new(),
            usage: Usage::default(),
            cost: NanoUsd::ZERO,
        });
        resumed.from.push(target);
        resumed.usage = resumed.usage.plus(&usage);
        resumed.cost += cost;
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    pub fn set_served_by(&mut self, target: &Arc<Target>) {
        self.served_by = Some(ServedBy {
            provider: target.provider.name.clone(),
            target: target.id.0.clone(),
            price: target.price,
            served: target.clone(),
        });
    }

    /// Notes an attempt's outcome, for the debug header and the ledger.
    pub fn note_attempt(&mut self, target: &crate::config::TargetId, outcome: &str) {
        self.route.push(format!("{target}={outcome}"));
    }

    /// `x-switchyard-route`: the attempt chain, when the client asked for it.
    pub fn route_header(&self) -> Option<String> {
        (self.debug && !self.route.is_empty()).then(|| self.route.join(", "))
    }

    /// The provider label: the answering target's provider, or `none`.
    pub fn provider(&self) -> &str {
        self.served_by
            .as_ref()
            .map_or("none", |s| s.provider.as_str())
    }

    /// Keeps the admission until the request ends, when it is settled.
    pub fn set_admission(&mut self, admission: Admission) {
        self.admission = Some(admission);
    }

    /// What the request may be billed for, as its admission found (unknown without one).
    pub fn usage_bounds(&self) -> UsageBounds {
        self.admission
            .as_ref()
            .map_or_else(UsageBounds::default, |a| a.bounds)
    }

    /// The client's own output cap, when the request was admitted (`Some(None)`: it set
    /// none); `None` without an admission.
    pub fn client_output_cap(&self) -> Option<Option<u32>> {
        self.admission.as_ref().map(|a| a.client_cap)
    }

    /// Settles the admission to `usage`'s cost and accepts the ledger entry: every request
    /// that reached an upstream is recorded, whatever its ending.
    fn settle(&mut self, status: &str, usage: Option<&Usage>, cost: NanoUsd) {
        let entry = (self.attempts > 0).then(|| self.entry(status, usage, cost));
        let tokens = usage.map_or(0, |u| u.prompt_tokens + u.completion_tokens);
        let Some(admission) = self.admission.take() else {
            if let (Some(entry), Some(ledger)) = (entry, &self.state.spend.ledger) {
                ledger.record(entry);
            }
            return;
        };
        self.state.spend.settle(admission, cost, tokens, entry);
    }

    fn entry(&self, status: &str, usage: Option<&Usage>, cost: NanoUsd) -> LedgerEntry {
        let elapsed = self.started.elapsed();
        let count = |f: fn(&Usage) -> u64| usage.map_or(0, |u| f(u) as i64);
        LedgerEntry {
            // Time-ordered (UUIDv7): new rows land at the end of the primary-key index
            // instead of at random places in it, so a batch dirties a few pages, not one
            // per row (docs/benchmarks.md, "Where the CPU goes").
            entry_id: crate::ids::time_ordered_uuid().to_string(),
            request_id: self.request_id.clone(),
            at_ms: now_ms() - elapsed.as_millis() as i64,
            team: self.team.clone(),
            key_id: self.key_id.clone(),
            model: self.model.clone(),
            api: self.endpoint.api.label().to_owned(),
            provider: self.provider().to_owned(),
            target: self
                .served_by
                .as_ref()
                .map_or_else(String::new, |s| s.target.clone()),
            input_tokens: count(|u| u.prompt_tokens),
            output_tokens: count(|u| u.completion_tokens),
            cached_tokens: count(|u| u.cached_tokens),
            cache_write_tokens: count(|u| u.cache_write_tokens),
            cost_usd: cost,
            latency_ms: elapsed.as_millis() as i64,
            ttft_ms: self.first_byte.map(|d| d.as_millis() as i64),
            attempts: self.attempts as i64,
            status: status.to_owned(),
            usage_estimated: usage.is_some_and(|u| u.estimated),
            resumed: self.resumed.is_some(),
            attempt_chain: self.route.join(", "),
            policy_version: self.policy_version.clone(),
            client_request_id: self.client_request_id.clone(),
            reservation_id: None,
        }
    }

    /// Cost of `usage` at the serving target's price.
    pub fn cost_of(&self, usage: &Usage) -> NanoUsd {
        self.served_by
            .as_ref()
            .map_or(NanoUsd::ZERO, |s| cost_usd(&s.price, usage))
    }

    /// Ends the request's span with what the record knows (all attempts' usage and cost).
    fn end_trace(&mut self, ending: Ending, status: &str, usage: Option<&Usage>, cost: NanoUsd) {
        let end = RequestEnd {
            request_id: &self.request_id,
            api: self.endpoint.api,
            team: &self.team,
            model: &self.model,
            served_by: self.served_by.as_ref().map(|s| &*s.served),
            attempts: self.attempts,
            http_status: match ending {
                Ending::Status(status) => Some(status),
                Ending::StreamError | Ending::ClientGone => None,
            },
            status,
            usage,
            cost,
        };
        self.trace.end(end);
    }

    /// Records the request's end: metrics, spend and one access-log line.
    pub fn finish(mut self, ending: Ending, usage: Option<Usage>) {
        self.finished = true;
        let metrics = &self.state.metrics;
        let provider = self.provider().to_owned();
        let elapsed = self.started.elapsed();
        let status = ending.label();
        metrics
            .requests
            .with_label_values(&[
                self.endpoint.api.label(),
                &self.model,
                &provider,
                &self.team,
                &status,
            ])
            .inc();
        if self.served_by.is_some() {
            metrics
                .request_duration
                .with_label_values(&[&self.model, &provider])
                .observe(elapsed.as_secs_f64());
            if let Some(first) = self.first_byte {
                metrics
                    .time_to_first_token
                    .with_label_values(&[&self.model, &provider])
                    .observe(first.as_secs_f64());
            }
        }
        let cost = usage.as_ref().map_or(NanoUsd::ZERO, |u| self.cost_of(u));
        if let Some(usage) = &usage {
            let labels = |kind| {
                [
                    self.team.as_str(),
                    self.model.as_str(),
                    provider.as_str(),
                    kind,
                ]
            };
            metrics
                .tokens
                .with_label_values(&labels("input"))
                .inc_by(usage.prompt_tokens);
            metrics
                .tokens
                .with_label_values(&labels("output"))
                .inc_by(usage.completion_tokens);
            metrics
                .spend_usd
                .with_label_values(&[&self.team, &self.model, &provider])
                .inc_by(cost.as_usd_f64());
        }
        // The ledger and the budget take every attempt; the metrics above took the broken
        // ones when they broke.
        let (usage, cost) = match &self.resumed {
            Some(resumed) => (
                Some(usage.map_or(resumed.usage, |u| u.plus(&resumed.usage))),
                cost + resumed.cost,
            ),
            None => (usage, cost),
        };
        self.settle(&status, usage.as_ref(), cost);
        self.end_trace(ending, &status, usage.as_ref(), cost);
        let resumed_from = self.resumed.as_ref().map(|r| r.from.join(","));
        // Text fields as `&str` (not `%`), so the log writes them without `fmt` machinery.
        tracing::info!(
            target: "switchyard::access",
            request_id = self.request_id.as_str(),
            team = self.team.as_str(),
            key_id = self.key_id.as_str(),
            api = self.endpoint.api.label(),
            model = self.model.as_str(),
            provider = provider.as_str(),
            status = status.as_str(),
            attempts = self.attempts,
            duration_ms = elapsed.as_millis() as u64,
            ttft_ms = self.first_byte.map(|d| d.as_millis() as u64),
            input_tokens = usage.map(|u| u.prompt_tokens),
            output_tokens = usage.map(|u| u.completion_tokens),
            usage_estimated = usage.map(|u| u.estimated),
            cost_usd = %cost,
            resumed_from = resumed_from.as_deref(),
            "request"
        );
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        if !self.finished {
            // Dropped without an ending: the task was cancelled (client gone) mid-way.
            tracing::debug!(request_id = %self.request_id, "request abandoned before it finished");
            self.state
                .metrics
                .requests
                .with_label_values(&[
                    self.endpoint.api.label(),
                    &self.model,
                    self.provider(),
                    &self.team,
                    "client_closed",
                ])
                .inc();
            self.settle("client_closed", None, NanoUsd::ZERO);
            self.end_trace(Ending::ClientGone, "client_closed", None, NanoUsd::ZERO);
        }
    }
}
