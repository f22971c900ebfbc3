//! What each strategy expects of a target for one request: time to the full answer, its
//! price, and remaining capacity, blended into one score (lower is better).

use super::latency::LengthFit;
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
    /// The standard error of `expected_latency_ms` (ms), once two answers were measured:
    /// how sure the figure is, so that ranking can tell a real difference from chance.
    pub standard_error_ms: Option<f64>,
    /// Answers behind the measured figures (0 for a prior).
    pub samples: usize,
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
    /// The time per token of whole answers, pooled over the model's targets.
    pub whole_slope: Option<PooledSlope>,
}

/// The time per token of whole answers over every target of a model that has a fitted line
/// with a spread, weighted by how sure each is (inverse variance). A line fitted from one
/// target's answers alone is unsure when its lengths lie close together (and the router
/// itself chooses which lengths each target gets); where its own time per token does not
/// differ from the pooled one by more than chance, it is carried to other lengths with the
/// pooled one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PooledSlope {
    pub ms_per_token: f64,
    pub variance: f64,
}

/// Standard errors within which a target's own time per token counts as the pooled one.
const SAME_SLOPE_STANDARD_ERRORS: f64 = 3.0;

impl PooledSlope {
    fn of<'a>(snapshots: impl Iterator<Item = &'a TargetSnapshot>) -> Option<Self> {
        let (mut weights, mut weighted, mut lines) = (0.0, 0.0, 0);
        for fit in snapshots
            .filter(|s| s.fresh)
            .filter_map(|s| s.whole.and_then(|w| w.fit))
        {
            // A line without spread (noiseless answers) is exact: nothing to pool.
            let variance = fit.slope_variance().filter(|v| *v > 0.0)?;
            weights += 1.0 / variance;
            weighted += fit.ms_per_token / variance;
            lines += 1;
        }
        (lines >= 2).then(|| PooledSlope {
            ms_per_token: weighted / weights,
            variance: 1.0 / weights,
        })
    }

    /// The time per token to carry `fit` to other lengths with, and its variance: the pooled
    /// one where `fit`'s own does not differ from it by more than chance, else `fit`'s own
    /// where its answers show one; `None` when `fit` has no spread yet or neither applies.
    fn for_fit(pooled: Option<Self>, fit: &LengthFit) -> Option<(f64, f64)> {
        let own = fit.slope_variance()?;
        match pooled {
            Some(p)
                if (fit.ms_per_token - p.ms_per_token).abs()
                    <= SAME_SLOPE_STANDARD_ERRORS * (own + p.variance).sqrt() =>
            {
                Some((p.ms_per_token, p.variance))
            }
            _ => fit.slope_is_measured().then_some((fit.ms_per_token, own)),
        }
    }
}

/// One target's own measured figures for a request of `output` tokens.
struct Measured {
    ttft_ms: f64,
    /// Time per token, when measured (streams, or whole answers of different lengths).
    per_token_ms: Option<f64>,
    /// Expected total, when it does not need a per-token figure.
    total_ms: Option<f64>,
    /// The standard error of the expected total (of the time to first token without one).
    standard_error_ms: Option<f64>,
    samples: usize,
    basis: LatencyBasis,
}

fn measure(
    snapshot: &TargetSnapshot,
    output: f64,
    pooled: Option<PooledSlope>,
) -> Option<Measured> {
    // Figures nobody refreshed for a while may be stale (the target may have recovered).
    if !snapshot.fresh {
        return None;
    }
    let line = snapshot.whole.and_then(|w| w.fit);
    let fit = line.filter(|f| f.slope_is_measured());
    if let Some(streams) = snapshot.streams {
        let per_token_ms = streams.ms_per_output_token.or(fit.map(|f| f.ms_per_token));
        return Some(Measured {
            ttft_ms: streams.ttft_ms,
            per_token_ms,
            total_ms: per_token_ms.map(|p| streams.ttft_ms + p * output),
            standard_error_ms: streams.standard_error_ms(output),
            samples: streams.samples(),
            basis: LatencyBasis::Streams,
        });
    }
    let whole = snapshot.whole?;
    // The line through this target's answers, carried to the request's length with the pooled
    // time per token, else with its own where the answers show one.
    let carried = line.and_then(|line| match PooledSlope::for_fit(pooled, &line) {
        Some((slope, variance)) => {
            let (total, error) = line.with_slope(slope, variance, output);
            Some((slope, total, error, line.samples()))
        }
        None => fit.map(|fit| {
            (
                fit.ms_per_token,
                fit.base_ms + fit.ms_per_token * output,
                fit.standard_error_ms(output),
                fit.samples(),
            )
        }),
    });
    if let Some((per_token_ms, total_ms, standard_error_ms, samples)) = carried {
        return Some(Measured {
            ttft_ms: (total_ms - per_token_ms * output).max(0.0),
            per_token_ms: Some(per_token_ms),
            total_ms: Some(total_ms),
            standard_error_ms,
            samples,
            basis: LatencyBasis::WholeByLength,
        });
    }
    // A whole answer's first byte is its last: its total time is its time to first token.
    Some(Measured {
        ttft_ms: whole.average_ms,
        per_token_ms: None,
        total_ms: Some(whole.average_ms),
        standard_error_ms: whole.average_standard_error_ms(),
        samples: whole.samples(),
        basis: LatencyBasis::WholeAverage,
    })
}

impl Priors {
    /// The best fresh figures among `snapshots` for a request of `shape`, else the static
    /// priors.
    pub fn optimistic<'a>(
        snapshots: impl Iterator<Item = &'a TargetSnapshot> + Clone,
        shape: &RequestShape,
    ) -> Self {
        let output = shape.expected_output_tokens() as f64;
        let whole_slope = PooledSlope::of(snapshots.clone());
        let (mut ttft, mut per_token, mut total) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
        for measured in snapshots.filter_map(|s| measure(s, output, whole_slope)) {
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
            whole_slope,
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
    let measured = measure(snapshot, output, priors.whole_slope);
    let standard_error = measured.as_ref().and_then(|m| m.standard_error_ms);
    let samples = measured.as_ref().map_or(0, |m| m.samples);
    let (ttft, total, prior_part, basis, per_token_measured) = match measured {
        Some(Measured {
            ttft_ms,
            total_ms: Some(total),
            per_token_ms,
            basis,
            ..
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
        noise_ms: snapshot.noise_ms.filter(|_| basis != LatencyBasis::Prior),
        standard_error_ms: standard_error.map(|se| se * stretch),
        samples,
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
