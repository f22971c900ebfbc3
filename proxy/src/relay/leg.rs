//! One upstream attempt inside a relayed stream: its bytes and their decoding, when it
//! started and first answered, what it produced, and its permit (the verdict on its target).
//! A stream has one leg, or several when it was resumed on other targets (docs/streams.md).

use tokio::time::Instant;

use crate::metering::Usage;
use crate::model::{Delta, StreamEvent};
use crate::providers::{StreamDecoder, StreamStep, UpstreamDecoder};
use crate::routing::AttemptPermit;
use crate::telemetry::AttemptSpan;
use crate::upstream::body::{byte_stream, ByteStream, UpstreamResponse};

pub struct Leg {
    pub upstream: ByteStream,
    framing: UpstreamDecoder,
    decoder: StreamDecoder,
    /// The last usage reported in typed events, and their content deltas so far.
    event_usage: Option<Usage>,
    event_deltas: u64,
    pub started: Instant,
    pub first_event_at: Option<Instant>,
    prompt_bytes: usize,
    /// The output allowance the leg was sent with (content deltas; 0: unbounded): deltas
    /// past it are withheld from the client and not billed (docs/spend.md, "Output caps").
    output_max: u64,
    permit: Option<AttemptPermit>,
    /// The attempt's span, ended with the leg.
    span: AttemptSpan,
}

/// How a leg ended, for the verdict on its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    Complete,
    /// No event for `server.stream_idle_timeout`: a timeout, like a first-byte timeout.
    Stalled,
    Failed,
    /// The client went away: no verdict.
    Abandoned,
}

impl Leg {
    /// The finished Responses object a native Responses upstream sent, if it did.
    pub fn completed_response(&self) -> Option<serde_json::Value> {
        self.decoder.completed_response().cloned()
    }

    pub fn new(
        response: UpstreamResponse,
        decoder: StreamDecoder,
        started: Instant,
        prompt_bytes: usize,
    ) -> Self {
        Self {
            upstream: byte_stream(response),
            framing: decoder.framing(),
            decoder,
            event_usage: None,
            event_deltas: 0,
            started,
            first_event_at: None,
            prompt_bytes,
            output_max: 0,
            permit: None,
            span: AttemptSpan::default(),
        }
    }

    /// Bounds the leg's output by the request's allowance.
    pub fn bound_output(&mut self, output_max: u64) {
        self.output_max = output_max;
    }

    /// Content deltas decoded so far: each holds at least one output token.
    pub fn relayed(&self) -> u64 {
        self.decoder.content_deltas() + self.event_deltas
    }

    /// Content deltas the client received: the ones past the allowance are withheld.
    pub fn delivered(&self) -> u64 {
        match self.output_max {
            0 => self.relayed(),
            max => self.relayed().min(max),
        }
    }

    /// Whether the upstream went on past the allowance it was sent (it ignored its cap).
    pub fn past_output_cap(&self) -> Option<u64> {
        (self.output_max > 0 && self.relayed() > self.output_max).then_some(self.output_max)
    }

    /// The upstream's steps for `bytes`, or why they cannot be read.
    pub fn steps(&mut self, bytes: &[u8]) -> Result<Vec<StreamStep>, String> {
        let events = self.framing.push(bytes)?;
        Ok(events
            .iter()
            .map(|event| self.decoder.on_event(event))
            .collect())
    }

    pub fn attach_permit(&mut self, permit: AttemptPermit) {
        self.permit = Some(permit);
    }

    pub fn attach_span(&mut self, span: AttemptSpan) {
        self.span = span;
    }

    /// Usage and content deltas of typed events, for metering.
    pub fn count(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Usage(usage) => self.event_usage = Some(*usage),
            StreamEvent::Delta { delta, .. } if !matches!(delta, Delta::Signature(_)) => {
                self.event_deltas += 1;
            }
            _ => {}
        }
    }

    pub fn noted_first_event(&mut self) {
        self.first_event_at.get_or_insert_with(Instant::now);
    }

    /// What the leg produced: the upstream's usage, else an estimate.
    pub fn usage(&self) -> Usage {
        self.decoder
            .usage()
            .or(self.event_usage)
            .unwrap_or_else(|| self.estimate())
    }

    /// What a leg that broke produced: the prompt as reported (Anthropic reports it first),
    /// and at least the output it delivered, which its usage may not have reached yet.
    pub fn broken_usage(&self) -> Usage {
        let estimate = self.estimate();
        match self.decoder.usage().or(self.event_usage) {
            Some(reported) => Usage {
                completion_tokens: reported.completion_tokens.max(estimate.completion_tokens),
                estimated: reported.completion_tokens < estimate.completion_tokens,
                ..reported
            },
            None => estimate,
        }
    }

    fn estimate(&self) -> Usage {
        Usage::estimate(self.prompt_bytes, self.delivered())
    }

    /// Gives the target its verdict and ends the attempt's span, once.
    pub fn end(&mut self, end: LegEnd) {
        let (outcome, usage) = match end {
            LegEnd::Complete => ("ok", self.usage()),
            LegEnd::Stalled => ("stalled", self.broken_usage()),
            LegEnd::Failed => ("broken", self.broken_usage()),
            LegEnd::Abandoned => ("client_closed", self.broken_usage()),
        };
        self.span.end_leg(outcome, &usage);
        let Some(permit) = self.permit.take() else {
            return;
        };
        let now = Instant::now();
        match end {
            LegEnd::Complete => {
                let first = self.first_event_at.unwrap_or(self.started);
                permit.succeeded(
                    first - self.started,
                    first.elapsed(),
                    self.usage().completion_tokens,
                );
            }
            LegEnd::Stalled => {
                permit.capacity_error(None, now);
            }
            LegEnd::Failed => permit.failed(now),
            // Dropping the permit frees it.
            LegEnd::Abandoned => drop(permit),
        }
    }
}
