//! What each strategy expects of a target for one request: time to the full answer, its
//! price, and remaining capacity, blended into one score (lower is better).

use super::stats::TargetSnapshot;
use crate::config::{Model, Strategy, Target};

/// Priors when no target of a model has been measured yet: plausible for a hosted model.
pub const PRIOR_TTFT_MS: f64 = 800.0;
pub const PRIOR_MS_PER_OUTPUT_TOKEN: f64 = 20.0;
/// Output length assumed when the request does not bound it.
pub const DEFAULT_EXPECTED_OUTPUT_TOKENS: u32 = 256;
/// Each request already in flight on a target makes it look this much slower (queueing),
/// which spreads load before the latency averages catch up.
const INFLIGHT_PENALTY: f64 = 0.05;
/// Error rates above this are treated as this (the circuit breaker handles outages).
const MAX_ERROR_RATE: f64 = 0.9;

/// The size of the request being routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestShape {
    pub prompt_tokens: u64,
    /// `max_completion_tokens` / `max_tokens` of the request, if given.
    pub max_output_tokens: Option<u32>,
}

impl RequestShape {
    /// Prompt estimate as docs/spend.md: content bytes / 4.
    pub fn from_prompt_bytes(bytes: usize, max_output_tokens: Option<u32>) -> Self {
        Self {
            prompt_tokens: bytes.div_ceil(4) as u64,
            max_output_tokens,
        }
    }

    pub fn expected_output_tokens(&self) -> u32 {
        self.max_output_tokens
            .unwrap_or(DEFAULT_EXPECTED_OUTPUT_TOKENS)
            .min(DEFAULT_EXPECTED_OUTPUT_TOKENS * 16)
    }
}

/// The figures behind a target's score, shown in `/admin/routes`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub expected_ttft_ms: f64,
    pub expected_latency_ms: f64,
    pub expected_cost_usd: f64,
    pub headroom: f64,
}

/// What an unmeasured (or no longer measured) target is assumed to do: as well as the best
/// measured target of the model, so it gets tried and measured instead of starved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Priors {
    pub ttft_ms: f64,
    pub ms_per_output_token: f64,
}

impl Priors {
    /// The best fresh figures among `snapshots`, else the static priors.
    pub fn optimistic<'a>(snapshots: impl Iterator<Item = &'a TargetSnapshot>) -> Self {
        let mut priors = Priors {
            ttft_ms: f64::INFINITY,
            ms_per_output_token: f64::INFINITY,
        };
        for snapshot in snapshots.filter(|s| s.fresh) {
            if let Some(ttft) = snapshot.ttft_ms {
                priors.ttft_ms = priors.ttft_ms.min(ttft);
            }
            if let Some(per_token) = snapshot.ms_per_output_token {
                priors.ms_per_output_token = priors.ms_per_output_token.min(per_token);
            }
        }
        if !priors.ttft_ms.is_finite() {
            priors.ttft_ms = PRIOR_TTFT_MS;
        }
        if !priors.ms_per_output_token.is_finite() {
            priors.ms_per_output_token = PRIOR_MS_PER_OUTPUT_TOKEN;
        }
        priors
    }
}

pub fn figures(
    target: &Target,
    snapshot: &TargetSnapshot,
    shape: &RequestShape,
    priors: &Priors,
) -> Figures {
    let output = shape.expected_output_tokens() as f64;
    // Figures nobody refreshed for a while may be stale (the target may have recovered).
    let measured = |value: Option<f64>| value.filter(|_| snapshot.fresh);
    let ttft = measured(snapshot.ttft_ms).unwrap_or(priors.ttft_ms);
    let per_token = measured(snapshot.ms_per_output_token).unwrap_or(priors.ms_per_output_token);
    let error_rate = snapshot.window.error_rate().min(MAX_ERROR_RATE);
    let queueing = 1.0 + INFLIGHT_PENALTY * snapshot.inflight.max(0) as f64;
    // Expected retries after errors stretch the expected time.
    let latency = (ttft + per_token * output) * queueing / (1.0 - error_rate);
    let (input_price, output_price) = target.price.per_million();
    let cost = (shape.prompt_tokens as f64 * input_price + output * output_price) / 1_000_000.0;
    Figures {
        expected_ttft_ms: ttft * queueing,
        expected_latency_ms: latency,
        expected_cost_usd: cost,
        headroom: snapshot.headroom.unwrap_or(1.0),
    }
}

/// Scores every candidate of `model` (same order as `figures`); lower is better.
pub fn scores(model: &Model, figures: &[Figures], written_order: &[usize]) -> Vec<f64> {
    let min = |f: fn(&Figures) -> f64| {
        figures
            .iter()
            .map(f)
            .fold(f64::INFINITY, f64::min)
            .max(f64::MIN_POSITIVE)
    };
    match model.strategy {
        Strategy::Priority => written_order.iter().map(|&i| i as f64).collect(),
        Strategy::Latency => figures.iter().map(|f| f.expected_latency_ms).collect(),
        Strategy::Cost => {
            // Cheapest first; among equal prices the faster one.
            let slowest = figures
                .iter()
                .map(|f| f.expected_latency_ms)
                .fold(0.0, f64::max)
                .max(1.0);
            figures
                .iter()
                .map(|f| f.expected_cost_usd + 1e-12 * f.expected_latency_ms / slowest)
                .collect()
        }
        Strategy::Balanced => {
            let weights = model.routing.weights;
            let (fastest, cheapest) =
                (min(|f| f.expected_latency_ms), min(|f| f.expected_cost_usd));
            figures
                .iter()
                .map(|f| {
                    weights.latency * f.expected_latency_ms / fastest
                        + weights.cost * relative(f.expected_cost_usd, cheapest)
                        + weights.headroom * (1.0 - f.headroom)
                })
                .collect()
        }
    }
}

/// `value / best`, where a free best makes every priced target look twice as dear.
fn relative(value: f64, best: f64) -> f64 {
    if best <= f64::MIN_POSITIVE {
        if value <= f64::MIN_POSITIVE {
            1.0
        } else {
            2.0
        }
    } else {
        value / best
    }
}
