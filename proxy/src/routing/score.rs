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
/// A latency average's standard error per unit of its noise figure: an α = 0.3 average's
/// standard error is ≈ 0.42 of one sample's spread, and a mean absolute error (the noise
/// figure) is ≈ 0.8 of it. A fitted expectation's standard error is turned into a noise
/// figure with it, so both kinds of expectation are compared on one scale.
pub const STANDARD_ERROR_PER_NOISE: f64 = 0.53;
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
    /// What the expected latency was computed from.
    pub latency_basis: LatencyBasis,
    /// Whether the time to first token was measured on this target (else a prior).
    pub ttft_measured: bool,
    /// Whether the time per output token was measured on this target (else a prior).
    pub per_token_measured: bool,
    /// The part of `expected_latency_ms` that comes from priors, not from this target's
    /// measurements: it says nothing about how this target differs from the others.
    pub prior_latency_ms: f64,
    /// How far this target's measured totals stray from its expectation (ms), if known.
    pub noise_ms: Option<f64>,
}

/// Where a target's expected time to the complete answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyBasis {
    /// Streams: measured time to first token + time per token × expected output.
    Streams,
    /// Whole answers of different lengths: a fitted base time + time per token × output.
    WholeByLength,
    /// Whole answers of one length: their average total time.
    WholeAverage,
    /// Nothing fresh measured: assumed as good as the best measured target of the model.
    Prior,
}

impl LatencyBasis {
    pub fn label(self) -> &'static str {
        match self {
            LatencyBasis::Streams => "measured: streams (time to first token + per token)",
            LatencyBasis::WholeByLength => {
                "measured: whole answers (base + per token, fitted over lengths)"
            }
            LatencyBasis::WholeAverage => "measured: whole answers (average total time)",
            LatencyBasis::Prior => "prior: unmeasured, assumed as good as the best measured",
        }
    }
}

/// What an unmeasured (or no longer measured) target is assumed to do: as well as the best
/// measured target of the model, so it gets tried and measured instead of starved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Priors {
    pub ttft_ms: f64,
    pub ms_per_output_token: f64,
    /// Expected total time for the request being ranked.
    pub total_ms: f64,
}

/// One target's own measured figures for a request of `output` tokens.
struct Measured {
    ttft_ms: f64,
    /// Time per token, when measured (streams, or whole answers of different lengths).
    per_token_ms: Option<f64>,
    /// Expected total, when it does not need a per-token figure.
    total_ms: Option<f64>,
    basis: LatencyBasis,
}

fn measure(snapshot: &TargetSnapshot, output: f64) -> Option<Measured> {
    // Figures nobody refreshed for a while may be stale (the target may have recovered).
    if !snapshot.fresh {
        return None;
    }
    let fit_per_token = snapshot.whole_fit.map(|f| f.ms_per_token);
    if let Some(ttft_ms) = snapshot.ttft_ms {
        let per_token_ms = snapshot.ms_per_output_token.or(fit_per_token);
        return Some(Measured {
            ttft_ms,
            per_token_ms,
            total_ms: per_token_ms.map(|p| ttft_ms + p * output),
            basis: LatencyBasis::Streams,
        });
    }
    if let Some(fit) = snapshot.whole_fit {
        return Some(Measured {
            ttft_ms: fit.base_ms,
            per_token_ms: Some(fit.ms_per_token),
            total_ms: Some(fit.base_ms + fit.ms_per_token * output),
            basis: LatencyBasis::WholeByLength,
        });
    }
    // A whole answer's first byte is its last: its total time is its time to first token.
    snapshot.whole_ms.map(|total| Measured {
        ttft_ms: total,
        per_token_ms: None,
        total_ms: Some(total),
        basis: LatencyBasis::WholeAverage,
    })
}

impl Priors {
    /// The best fresh figures among `snapshots` for a request of `shape`, else the static
    /// priors.
    pub fn optimistic<'a>(
        snapshots: impl Iterator<Item = &'a TargetSnapshot>,
        shape: &RequestShape,
    ) -> Self {
        let output = shape.expected_output_tokens() as f64;
        let (mut ttft, mut per_token, mut total) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
        for measured in snapshots.filter_map(|s| measure(s, output)) {
            ttft = ttft.min(measured.ttft_ms);
            if let Some(p) = measured.per_token_ms {
                per_token = per_token.min(p);
            }
            if let Some(t) = measured.total_ms {
                total = total.min(t);
            }
        }
        let ttft_ms = if ttft.is_finite() {
            ttft
        } else {
            PRIOR_TTFT_MS
        };
        let ms_per_output_token = if per_token.is_finite() {
            per_token
        } else {
            PRIOR_MS_PER_OUTPUT_TOKEN
        };
        let total_ms = if total.is_finite() {
            total
        } else {
            ttft_ms + ms_per_output_token * output
        };
        Priors {
            ttft_ms,
            ms_per_output_token,
            total_ms,
        }
    }
}

pub fn figures(
    target: &Target,
    snapshot: &TargetSnapshot,
    shape: &RequestShape,
    priors: &Priors,
) -> Figures {
    let output = shape.expected_output_tokens() as f64;
    // A target is judged on what was measured on it; priors only fill what is missing.
    let (ttft, total, prior_part, basis, per_token_measured) = match measure(snapshot, output) {
        Some(Measured {
            ttft_ms,
            total_ms: Some(total),
            per_token_ms,
            basis,
        }) => (ttft_ms, total, 0.0, basis, per_token_ms.is_some()),
        Some(Measured { ttft_ms, basis, .. }) => {
            let prior = priors.ms_per_output_token * output;
            (ttft_ms, ttft_ms + prior, prior, basis, false)
        }
        None => (
            priors.ttft_ms,
            priors.total_ms,
            priors.total_ms,
            LatencyBasis::Prior,
            false,
        ),
    };
    let error_rate = snapshot.window.error_rate().min(MAX_ERROR_RATE);
    let queueing = 1.0 + INFLIGHT_PENALTY * snapshot.inflight.max(0) as f64;
    // Expected retries after errors stretch the expected time.
    let stretch = queueing / (1.0 - error_rate);
    let (input_price, output_price) = target.price.per_million();
    let cost = (shape.prompt_tokens as f64 * input_price + output * output_price) / 1_000_000.0;
    Figures {
        expected_ttft_ms: ttft * queueing,
        expected_latency_ms: total * stretch,
        expected_cost_usd: cost,
        headroom: snapshot.headroom.unwrap_or(1.0),
        latency_basis: basis,
        ttft_measured: basis != LatencyBasis::Prior,
        per_token_measured,
        prior_latency_ms: prior_part * stretch,
        noise_ms: noise(snapshot, basis, output),
    }
}

/// How unsure this target's expected time is, as a noise figure (ms): its measured noise,
/// and for whole answers fitted against length, at least the fit's standard error at the
/// expected length (a line carried beyond the lengths measured is unsure even when every
/// answer so far fell close to it).
fn noise(snapshot: &TargetSnapshot, basis: LatencyBasis, output: f64) -> Option<f64> {
    let fitted = match basis {
        LatencyBasis::WholeByLength => snapshot
            .whole_fit
            .and_then(|fit| fit.standard_error_ms(output))
            .map(|se| se / STANDARD_ERROR_PER_NOISE),
        LatencyBasis::Prior => return None,
        _ => None,
    };
    match (snapshot.noise_ms, fitted) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
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
