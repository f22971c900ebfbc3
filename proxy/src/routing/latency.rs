//! A target's measured latency: its last answers, streamed and whole, in windows that start
//! over when the target changes, and what they give: means and their standard errors, and
//! for whole answers a line of total time against output length (docs/routing.md).
//!
//! Windowed means rather than exponential averages: an average over the last 128 answers has
//! a standard error of ≈ 0.09 of one answer's spread, where an α = 0.3 average stays at ≈ 0.42
//! however many answers came, so a 25 % difference hidden in heavy-tailed times to first
//! token can be told from chance. A change detector (the newest answers against the older
//! ones) keeps the reaction to a real change within a few answers.

use std::collections::{vec_deque, VecDeque};

/// Answers kept per target and kind (streamed, whole).
pub const LATENCY_SAMPLES: usize = 128;
/// The newest answers compared against the older ones to detect a change.
const CHANGE_SAMPLES: usize = 5;
/// Older answers needed before a change can be judged.
const CHANGE_MIN_OLDER: usize = 8;
/// A change is when every one of the newest answers lies beyond this quantile of the older
/// ones (or below the lower one: `1 −` it): by chance that is 0.05⁵ ≈ 3 in 10 million per
/// answer, however heavy the tail, so a run of unlucky answers does not throw the window
/// away (at 0.9 and 4 answers, 1 in 10,000 per answer, it did in the seeded simulations) …
const CHANGE_QUANTILE: f64 = 0.95;
/// … and beyond it by at least this fraction of the older mean (noiseless figures do not
/// restart on every small wobble).
const CHANGE_MIN_FRACTION: f64 = 0.1;

/// One streamed answer: time to first token, and time per output token when it had any.
#[derive(Debug, Clone, Copy)]
struct StreamSample {
    ttft_ms: f64,
    per_token_ms: Option<f64>,
}

/// The last streamed answers of one target.
#[derive(Debug, Default)]
pub struct StreamWindow {
    samples: VecDeque<StreamSample>,
    figures: Option<StreamFigures>,
}

/// What a target's streams measured: means over the window and their spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamFigures {
    pub ttft_ms: f64,
    pub ms_per_output_token: Option<f64>,
    ttft: Spread,
    per_token: Option<Spread>,
}

impl StreamFigures {
    /// The standard error of `ttft + per-token time × output`, once two answers were
    /// measured (the two parts are taken as independent).
    pub fn standard_error_ms(&self, output: f64) -> Option<f64> {
        let ttft = self.ttft.standard_error()?;
        let per_token = self
            .per_token
            .and_then(|s| s.standard_error())
            .unwrap_or(0.0);
        Some(ttft.hypot(per_token * output))
    }

    /// Answers behind the figures.
    pub fn samples(&self) -> usize {
        self.ttft.samples
    }
}

impl StreamWindow {
    /// Adds one answer; returns whether it showed the target changed (the older answers are
    /// then dropped and the figures start from the newest few).
    pub fn push(&mut self, ttft_ms: f64, per_token_ms: Option<f64>) -> bool {
        let sample = StreamSample {
            ttft_ms,
            per_token_ms,
        };
        let changed = push_and_check(&mut self.samples, sample, |older, newest| {
            shifted(
                ttft(older.clone()),
                ttft(newest.clone()),
                mean(ttft(older.clone())),
            ) || shifted(
                per_token(older.clone()),
                per_token(newest),
                mean(per_token(older)),
            )
        });
        self.figures = self.summarize();
        changed
    }

    fn summarize(&self) -> Option<StreamFigures> {
        let ttft = Spread::of(self.samples.iter().map(|s| s.ttft_ms))?;
        let per_token = Spread::of(self.samples.iter().filter_map(|s| s.per_token_ms));
        Some(StreamFigures {
            ttft_ms: ttft.mean,
            ms_per_output_token: per_token.map(|s| s.mean),
            ttft,
            per_token,
        })
    }

    pub fn figures(&self) -> Option<StreamFigures> {
        self.figures
    }

    /// The smallest and largest total these answers (but the newest, with `skip_newest`)
    /// would have taken for `tokens` (each answer's own first-token time and per-token time;
    /// the mean per-token time where an answer had no tokens); `None` until per-token time
    /// was measured.
    pub fn range_ms(&self, tokens: f64, skip_newest: bool) -> Option<(f64, f64)> {
        let per_token = self.figures?.ms_per_output_token?;
        let kept = self.samples.len().saturating_sub(usize::from(skip_newest));
        min_max(
            self.samples
                .iter()
                .take(kept)
                .map(|s| s.ttft_ms + s.per_token_ms.unwrap_or(per_token) * tokens),
        )
    }

    pub fn clear(&mut self) {
        self.samples.clear();
        self.figures = None;
    }
}

fn ttft(samples: vec_deque::Iter<'_, StreamSample>) -> impl Iterator<Item = f64> + Clone + '_ {
    samples.map(|s| s.ttft_ms)
}

fn per_token(samples: vec_deque::Iter<'_, StreamSample>) -> impl Iterator<Item = f64> + Clone + '_ {
    samples.filter_map(|s| s.per_token_ms)
}

/// The last whole (non-streamed) answers of one target, as (output tokens, total ms).
#[derive(Debug, Default)]
pub struct WholeWindow {
    samples: VecDeque<(f64, f64)>,
    figures: Option<WholeFigures>,
}

/// What a target's whole answers measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WholeFigures {
    /// Their mean total time.
    pub average_ms: f64,
    average: Spread,
    /// Total time against output length, once two lengths differ.
    pub fit: Option<LengthFit>,
}

impl WholeFigures {
    /// The standard error of the mean total time, once two answers were measured.
    pub fn average_standard_error_ms(&self) -> Option<f64> {
        self.average.standard_error()
    }

    /// Answers behind the figures.
    pub fn samples(&self) -> usize {
        self.average.samples
    }
}

impl WholeWindow {
    /// Adds one answer; returns whether it showed the target changed (see
    /// [`StreamWindow::push`]): the newest answers' errors against a line through the older
    /// ones (their mean, when the older ones are all of one length), judged against the older
    /// ones' own errors.
    pub fn push(&mut self, tokens: f64, total_ms: f64) -> bool {
        let changed = push_and_check(&mut self.samples, (tokens, total_ms), |older, newest| {
            let older_mean = mean(older.clone().map(|(_, y)| *y));
            let line = fit(older.clone().copied());
            let predict = |x: f64| line.map_or(older_mean, |l| l.base_ms + l.ms_per_token * x);
            let error = |(x, y): &(f64, f64)| y - predict(*x);
            shifted(older.map(&error), newest.map(&error), older_mean)
        });
        self.figures = self.summarize();
        changed
    }

    fn summarize(&self) -> Option<WholeFigures> {
        let average = Spread::of(self.samples.iter().map(|(_, y)| *y))?;
        Some(WholeFigures {
            average_ms: average.mean,
            average,
            fit: fit(self.samples.iter().copied()),
        })
    }

    pub fn figures(&self) -> Option<WholeFigures> {
        self.figures
    }

    /// The smallest and largest total these answers (but the newest, with `skip_newest`)
    /// would have taken for `tokens`: the expectation plus each answer's own error against it.
    pub fn range_ms(&self, tokens: f64, skip_newest: bool) -> Option<(f64, f64)> {
        let figures = self.figures?;
        let predict = |x: f64| {
            figures
                .fit
                .map_or(figures.average_ms, |l| l.base_ms + l.ms_per_token * x)
        };
        let expected = predict(tokens);
        let kept = self.samples.len().saturating_sub(usize::from(skip_newest));
        min_max(
            self.samples
                .iter()
                .take(kept)
                .map(|(x, y)| expected + y - predict(*x)),
        )
    }

    pub fn clear(&mut self) {
        self.samples.clear();
        self.figures = None;
    }
}

/// Adds `sample` to a window of at most [`LATENCY_SAMPLES`]; once there are enough answers,
/// `changed(older, newest [CHANGE_SAMPLES])` judges whether they show a change, and if so
/// the window keeps only the newest. Returns whether it did.
fn push_and_check<T>(
    samples: &mut VecDeque<T>,
    sample: T,
    changed: impl FnOnce(vec_deque::Iter<'_, T>, vec_deque::Iter<'_, T>) -> bool,
) -> bool {
    if samples.len() == LATENCY_SAMPLES {
        samples.pop_front();
    }
    samples.push_back(sample);
    let Some(split) = samples.len().checked_sub(CHANGE_SAMPLES) else {
        return false;
    };
    if split < CHANGE_MIN_OLDER {
        return false;
    }
    // Read where the answers lie: the full window wraps around its ring buffer after every
    // answer, and making it one slice would move all of it each time.
    let shifted = changed(samples.range(..split), samples.range(split..));
    if shifted {
        samples.drain(..split);
    }
    shifted
}

/// Whether `newest` come from a different distribution than `older`: all of them above the
/// older ones' [`CHANGE_QUANTILE`], or all below the mirrored one, by more than
/// [`CHANGE_MIN_FRACTION`] of `scale`.
///
/// Judged by counting instead of sorting: this runs for every answer, and "the smallest of
/// the newest lies above the older values' k-th smallest (plus the margin)" is the same as
/// "more than k older values (plus the margin) lie below it" — one pass, no copy, no sort.
fn shifted(
    older: impl Iterator<Item = f64> + Clone,
    newest: impl Iterator<Item = f64>,
    scale: f64,
) -> bool {
    let older_count = older.clone().count();
    let (newest_count, lowest, highest) = newest.fold(
        (0usize, f64::INFINITY, f64::NEG_INFINITY),
        |(n, lo, hi), v| (n + 1, lo.min(v), hi.max(v)),
    );
    if older_count < CHANGE_MIN_OLDER || newest_count < CHANGE_SAMPLES {
        return false;
    }
    // The rank (0-based, in ascending order) of the older values' quantile `q`.
    let rank = |q: f64| (q * (older_count - 1) as f64).round() as usize;
    let margin = CHANGE_MIN_FRACTION * scale.abs();
    // All newest above `older[rank] + margin`: more than `rank` older values have
    // `value + margin` below the lowest of the newest.
    let above = older.clone().filter(|v| v + margin < lowest).count() > rank(CHANGE_QUANTILE);
    // All newest below `older[rank] − margin`: at most `rank` older values have
    // `value − margin` at or below the highest of the newest.
    let below = older.filter(|v| v - margin <= highest).count() <= rank(1.0 - CHANGE_QUANTILE);
    above || below
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |range, v| match range {
        None => Some((v, v)),
        Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (count, sum) = values.fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    if count == 0 {
        return 0.0;
    }
    sum / count as f64
}

/// Mean and sample standard deviation of a window.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    mean: f64,
    deviation: f64,
    samples: usize,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64> + Clone) -> Option<Self> {
        let (count, sum) = values
            .clone()
            .fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
        if count == 0 {
            return None;
        }
        let mean = sum / count as f64;
        let squares: f64 = values.map(|v| (v - mean).powi(2)).sum();
        let deviation = if count > 1 {
            (squares / (count - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Spread {
            mean,
            deviation,
            samples: count,
        })
    }

    /// `None` with one sample: its spread is unknown, not zero.
    fn standard_error(&self) -> Option<f64> {
        (self.samples > 1).then(|| self.deviation / (self.samples as f64).sqrt())
    }
}

/// `total ≈ base_ms + ms_per_token × output tokens`, from whole answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthFit {
    pub base_ms: f64,
    pub ms_per_token: f64,
    /// Samples behind the fit, their mean length, and the spread of their lengths (Σ(x − x̄)²).
    samples: f64,
    mean_tokens: f64,
    mean_ms: f64,
    spread_tokens: f64,
    /// Standard deviation of the samples around the line, once there are three or more.
    residual_ms: Option<f64>,
}

impl LengthFit {
    /// The standard error of the fitted total for an answer of `tokens`: small near the
    /// lengths measured, larger the further the line is carried beyond their mean (a slope
    /// fitted from a few noisy answers, or from answers of nearly one length, is unsure).
    pub fn standard_error_ms(&self, tokens: f64) -> Option<f64> {
        let residual = self.residual_ms?;
        let leverage =
            1.0 / self.samples + (tokens - self.mean_tokens).powi(2) / self.spread_tokens;
        Some(residual * leverage.sqrt())
    }

    /// Answers behind the fit.
    pub fn samples(&self) -> usize {
        self.samples as usize
    }

    /// The variance of the fitted time per token, once there are three answers or more.
    pub fn slope_variance(&self) -> Option<f64> {
        self.residual_ms.map(|r| r * r / self.spread_tokens)
    }

    /// The total for an answer of `tokens` through these answers' mean with another time per
    /// token (`slope`, of variance `slope_variance`), and its standard error.
    pub fn with_slope(&self, slope: f64, slope_variance: f64, tokens: f64) -> (f64, Option<f64>) {
        let offset = tokens - self.mean_tokens;
        let total = (self.mean_ms + slope * offset).max(0.0);
        let error = self
            .residual_ms
            .map(|r| (r * r / self.samples + offset * offset * slope_variance).sqrt());
        (total, error)
    }

    /// Whether the answers show a time per token at all: the slope is at least twice its own
    /// standard error (or fitted without spread). Lengths close together under heavy-tailed
    /// waits can give any slope; such a line must not be carried to other lengths.
    pub fn slope_is_measured(&self) -> bool {
        match self.residual_ms {
            None => true,
            Some(residual) => {
                let slope_error = residual / self.spread_tokens.sqrt();
                self.ms_per_token >= 2.0 * slope_error
            }
        }
    }
}

/// Least-squares line through `(tokens, ms)` samples; `None` until two lengths differ.
/// Slope and base are kept non-negative (noise must not make longer answers look faster).
pub fn fit(samples: impl Iterator<Item = (f64, f64)> + Clone) -> Option<LengthFit> {
    let (count, sum_x, sum_y) = samples
        .clone()
        .fold((0usize, 0.0, 0.0), |(n, sx, sy), (x, y)| {
            (n + 1, sx + x, sy + y)
        });
    if count < 2 {
        return None;
    }
    let n = count as f64;
    let (mean_tokens, mean_ms) = (sum_x / n, sum_y / n);
    let (spread_tokens, covariance) = samples.clone().fold((0.0, 0.0), |(sxx, sxy), (x, y)| {
        (
            sxx + (x - mean_tokens).powi(2),
            sxy + (x - mean_tokens) * (y - mean_ms),
        )
    });
    if spread_tokens < 1e-9 {
        return None;
    }
    let mut ms_per_token = (covariance / spread_tokens).max(0.0);
    let mut base_ms = mean_ms - ms_per_token * mean_tokens;
    if base_ms < 0.0 {
        // No answer takes less than no time: the line through the origin instead.
        let (xy, xx) = samples
            .clone()
            .fold((0.0, 0.0), |(xy, xx), (x, y)| (xy + x * y, xx + x * x));
        ms_per_token = if xx > 0.0 { (xy / xx).max(0.0) } else { 0.0 };
        base_ms = 0.0;
    }
    // The residuals' standard deviation (n − 2 degrees of freedom): the standard error of
    // a mean total must count the heavy tail of first-token times, not discount it.
    let residual_ms = (count > 2).then(|| {
        let squares: f64 = samples
            .map(|(x, y)| (y - base_ms - ms_per_token * x).powi(2))
            .sum();
        (squares / (n - 2.0)).sqrt()
    });
    Some(LengthFit {
        base_ms,
        ms_per_token,
        samples: n,
        mean_tokens,
        mean_ms,
        spread_tokens,
        residual_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fit_is_less_sure_far_beyond_the_lengths_measured() {
        let points: Vec<(f64, f64)> = (0..12)
            .map(|i| {
                let tokens = 50.0 + (i % 4) as f64 * 10.0;
                (
                    tokens,
                    500.0 + 15.0 * tokens + if i % 2 == 0 { 80.0 } else { -80.0 },
                )
            })
            .collect();
        let line = fit(points.iter().copied()).unwrap();
        let near = line.standard_error_ms(65.0).unwrap();
        let far = line.standard_error_ms(600.0).unwrap();
        assert!(near > 0.0 && far > 5.0 * near, "near {near}, far {far}");
        // Two samples give a line but no spread to judge it by.
        let two = fit([(10.0, 100.0), (20.0, 200.0)].into_iter()).unwrap();
        assert_eq!(two.standard_error_ms(15.0), None);
    }

    /// Alternating ±`swing` around `centre`: a noisy but steady target.
    fn steady(centre: f64, swing: f64, i: usize) -> f64 {
        centre + if i.is_multiple_of(2) { swing } else { -swing }
    }

    #[test]
    fn a_steady_target_fills_its_window_and_its_standard_error_shrinks() {
        let mut streams = StreamWindow::default();
        assert!(!streams.push(600.0, Some(15.0)));
        assert_eq!(
            streams.figures().unwrap().standard_error_ms(100.0),
            None,
            "one answer: spread unknown"
        );
        for i in 1..200 {
            assert!(!streams.push(steady(600.0, 200.0, i), Some(15.0)), "{i}");
        }
        let figures = streams.figures().unwrap();
        assert_eq!(figures.samples(), LATENCY_SAMPLES);
        assert!((figures.ttft_ms - 600.0).abs() < 1e-9);
        let se = figures.standard_error_ms(100.0).unwrap();
        // 200 / √n (the sample deviation of ±200 is slightly above 200).
        let expected = 200.0 / (LATENCY_SAMPLES as f64).sqrt();
        assert!(
            (expected..expected * 1.02).contains(&se),
            "{se} against {expected}"
        );
    }

    #[test]
    fn a_target_that_slows_down_starts_over_within_a_few_answers() {
        let mut streams = StreamWindow::default();
        for i in 0..40 {
            streams.push(steady(600.0, 150.0, i), Some(15.0));
        }
        let restarted = (0..CHANGE_SAMPLES)
            .map(|i| streams.push(steady(1800.0, 150.0, i), Some(15.0)))
            .position(|changed| changed);
        assert!(restarted.is_some(), "three times slower: a change");
        let figures = streams.figures().unwrap();
        assert_eq!(figures.samples(), CHANGE_SAMPLES);
        assert!(figures.ttft_ms > 1500.0, "{figures:?}");

        println!("slower generation alone is a change too");
        let mut streams = StreamWindow::default();
        for i in 0..20 {
            streams.push(steady(600.0, 150.0, i), Some(15.0));
        }
        let changed = (0..CHANGE_SAMPLES).any(|_| streams.push(600.0, Some(45.0)));
        assert!(changed);
    }

    #[test]
    fn whole_answers_of_varied_length_are_judged_against_the_line() {
        let mut whole = WholeWindow::default();
        // Lengths 10..=40, 20 ms per token, ±100 ms noise: long answers are no change.
        for i in 0..60 {
            let tokens = 10.0 + (i * 7 % 31) as f64;
            let total = steady(600.0, 100.0, i) + 20.0 * tokens;
            assert!(!whole.push(tokens, total), "{i}: steady");
        }
        let fit = whole.figures().unwrap().fit.unwrap();
        assert!((fit.ms_per_token - 20.0).abs() < 3.0, "{fit:?}");
        let restarted = (0..CHANGE_SAMPLES).any(|i| {
            let tokens = 10.0 + (i * 7 % 31) as f64;
            whole.push(tokens, steady(1600.0, 100.0, i) + 20.0 * tokens)
        });
        assert!(restarted, "a second more per answer: a change");
        assert!(whole.figures().unwrap().average_ms > 1500.0);
    }

    #[test]
    fn noiseless_figures_do_not_restart_on_a_small_wobble() {
        let mut whole = WholeWindow::default();
        for _ in 0..20 {
            whole.push(20.0, 300.0);
        }
        assert!(!(0..CHANGE_SAMPLES).any(|_| whole.push(20.0, 310.0)));
    }

    /// The sorting definition `shifted` counts its way to.
    fn shifted_by_sorting(older: &[f64], newest: &[f64], scale: f64) -> bool {
        if older.len() < CHANGE_MIN_OLDER || newest.len() < CHANGE_SAMPLES {
            return false;
        }
        let mut sorted = older.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted[(q * (sorted.len() - 1) as f64).round() as usize];
        let margin = CHANGE_MIN_FRACTION * scale.abs();
        let (high, low) = (
            at(CHANGE_QUANTILE) + margin,
            at(1.0 - CHANGE_QUANTILE) - margin,
        );
        newest.iter().all(|v| *v > high) || newest.iter().all(|v| *v < low)
    }

    #[test]
    fn counting_judges_a_change_exactly_as_sorting_would() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut changes, mut cases) = (0, 0);
        for _ in 0..20_000 {
            let older_len = rng.random_range(0..=LATENCY_SAMPLES);
            // Coarse values, so ties with the quantile and the margin's edge come up.
            let older: Vec<f64> = (0..older_len)
                .map(|_| f64::from(rng.random_range(0..40u8)) * 5.0)
                .collect();
            let offset = f64::from(rng.random_range(0..80u8)) * 5.0 - 100.0;
            let newest: Vec<f64> = (0..rng.random_range(3..=CHANGE_SAMPLES + 1))
                .map(|_| offset + f64::from(rng.random_range(0..4u8)) * 5.0)
                .collect();
            let scale = f64::from(rng.random_range(0..300u16));
            let expected = shifted_by_sorting(&older, &newest, scale);
            let counted = shifted(older.iter().copied(), newest.iter().copied(), scale);
            assert_eq!(
                counted, expected,
                "older {older:?} newest {newest:?} scale {scale}"
            );
            changes += usize::from(expected);
            cases += 1;
        }
        // Both outcomes were exercised.
        assert!(
            changes > 500 && changes < cases - 500,
            "{changes} of {cases}"
        );
    }
}
