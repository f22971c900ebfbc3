//! Usage an upstream reports, checked against what the proxy knows of the request before it
//! is billed (docs/spend.md, "Usage checks"): the prompt's bound, the output cap it sent and
//! the output it relayed. A figure out of range is replaced by the proxy's estimate and the
//! usage flagged `estimated`, with the reason counted and logged by the caller.

use super::Usage;
use crate::metrics::Metrics;

/// What a usage reader records for a count that is not a whole non-negative number
/// (negative, fractional, not a number): out of every range, so the check rejects it.
pub const INVALID_COUNT: u64 = u64::MAX;

/// Below this many bytes per token no tokenizer averages over a whole prompt, so a reported
/// prompt shorter than `text bytes / this` was not counted on this prompt.
const MAX_BYTES_PER_TOKEN: u64 = 64;
/// Output tokens an upstream may report beyond the cap it was sent (a stop sequence or the
/// end-of-turn token counted after the cap).
const OUTPUT_SLACK: u64 = 8;

/// What the proxy knows of a request's size, set at admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageBounds {
    /// The most prompt tokens the request can be billed for (the reservation's bound).
    pub prompt_max: u64,
    /// The fewest it can be billed for.
    pub prompt_min: u64,
    /// The proxy's own estimate of the prompt (text bytes / 4 plus 3 per message), booked in
    /// place of a figure out of range.
    pub prompt_estimate: u64,
    /// Every output token the request may produce: the cap sent (plus a thinking budget)
    /// times the choices.
    pub output_max: u64,
}

impl UsageBounds {
    /// Bounds of a prompt of `text_bytes` text in `messages` messages (0 for embeddings)
    /// whose bound is `prompt_max`, sent with output allowance `output_max`.
    pub fn new(prompt_max: u64, text_bytes: u64, messages: u64, output_max: u64) -> Self {
        let prompt_min = text_bytes / MAX_BYTES_PER_TOKEN;
        UsageBounds {
            prompt_max,
            // Every chat prompt is at least one token.
            prompt_min: if messages > 0 {
                prompt_min.max(1)
            } else {
                prompt_min
            },
            prompt_estimate: (text_bytes.div_ceil(4) + 3 * messages).min(prompt_max),
            output_max,
        }
    }

    /// Whether anything is known (requests without an admission, like token counts, are not
    /// checked).
    fn known(&self) -> bool {
        self.prompt_max > 0
    }
}

/// Why reported usage was not believed: the `reason` label of
/// `switchyard_usage_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A negative, fractional or non-numeric count.
    Invalid,
    /// More prompt tokens than the prompt can hold.
    InputAboveBound,
    /// Fewer prompt tokens than the prompt's text can make.
    InputBelowBound,
    /// More output than the cap sent upstream allows.
    OutputAboveCap,
    /// Less output than the proxy relayed to the client.
    OutputBelowRelayed,
}

impl Rejection {
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Invalid => "invalid",
            Rejection::InputAboveBound => "input_above_bound",
            Rejection::InputBelowBound => "input_below_bound",
            Rejection::OutputAboveCap => "output_above_cap",
            Rejection::OutputBelowRelayed => "output_below_relayed",
        }
    }
}

/// `reported` checked against `bounds` and the output tokens `relayed` to the client (when
/// the proxy counted them: streams). Returns the usage to bill, and why it was replaced.
/// Estimated usage (the upstream reported none) is the proxy's own and is not checked.
pub fn check(
    reported: Usage,
    bounds: &UsageBounds,
    relayed: Option<u64>,
) -> (Usage, Option<Rejection>) {
    if !bounds.known() || reported.estimated {
        return (reported, None);
    }
    let mut usage = reported;
    let mut rejection = None;
    let invalid = |n: u64| n == INVALID_COUNT;
    if invalid(usage.prompt_tokens) || usage.prompt_tokens > bounds.prompt_max {
        rejection.get_or_insert(if invalid(usage.prompt_tokens) {
            Rejection::Invalid
        } else {
            Rejection::InputAboveBound
        });
        usage.prompt_tokens = bounds.prompt_estimate;
    } else if usage.prompt_tokens < bounds.prompt_min {
        rejection.get_or_insert(Rejection::InputBelowBound);
        usage.prompt_tokens = bounds.prompt_estimate;
    }
    let relayed = relayed.unwrap_or(0);
    let output_ceiling = bounds.output_max.saturating_add(OUTPUT_SLACK);
    if invalid(usage.completion_tokens) || usage.completion_tokens > output_ceiling {
        rejection.get_or_insert(if invalid(usage.completion_tokens) {
            Rejection::Invalid
        } else {
            Rejection::OutputAboveCap
        });
        // What was relayed, else the most that was allowed.
        usage.completion_tokens = if relayed > 0 {
            relayed.min(bounds.output_max)
        } else {
            bounds.output_max
        };
    } else if usage.completion_tokens < relayed / 2 {
        // Every relayed content delta holds at least one token; half leaves room for
        // upstreams that send some empty.
        rejection.get_or_insert(Rejection::OutputBelowRelayed);
        usage.completion_tokens = relayed.min(bounds.output_max);
    }
    if rejection.is_some() {
        usage.estimated = true;
        // The cache figures are parts of the prompt: never more than it.
        let invalid_part = |n: u64| if invalid(n) { 0 } else { n };
        usage.cached_tokens = invalid_part(usage.cached_tokens).min(usage.prompt_tokens);
        usage.cache_write_tokens =
            invalid_part(usage.cache_write_tokens).min(usage.prompt_tokens - usage.cached_tokens);
        usage.cache_write_1h_tokens = usage.cache_write_1h_tokens.min(usage.cache_write_tokens);
    }
    (usage, rejection)
}

/// Counts a rejection in `switchyard_usage_rejected_total{provider,reason}` and logs it
/// (token counts only: nothing of the request or its credentials).
pub fn report(
    metrics: &Metrics,
    provider: &str,
    request_id: &str,
    rejection: Rejection,
    reported: &Usage,
) {
    metrics
        .usage_rejected
        .with_label_values(&[provider, rejection.label()])
        .inc();
    tracing::warn!(
        request_id = %request_id,
        provider = %provider,
        reason = rejection.label(),
        reported_input_tokens = reported.prompt_tokens,
        reported_output_tokens = reported.completion_tokens,
        "upstream usage out of range; billed the proxy's estimate"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: UsageBounds = UsageBounds {
        prompt_max: 1_000,
        prompt_min: 2,
        prompt_estimate: 100,
        output_max: 50,
    };

    fn usage(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            ..Usage::default()
        }
    }

    #[test]
    fn plausible_usage_is_billed_as_reported() {
        let reported = Usage {
            cached_tokens: 40,
            ..usage(120, 50)
        };
        assert_eq!(check(reported, &BOUNDS, Some(30)), (reported, None));
        assert_eq!(check(usage(2, 58), &BOUNDS, None), (usage(2, 58), None));
    }

    #[test]
    fn absurd_prompt_figures_are_replaced_by_the_estimate() {
        let (billed, why) = check(usage(1_000_000_000_000_000, 10), &BOUNDS, None);
        assert_eq!(why, Some(Rejection::InputAboveBound));
        assert_eq!((billed.prompt_tokens, billed.completion_tokens), (100, 10));
        assert!(billed.estimated);
        let (billed, why) = check(usage(INVALID_COUNT, 10), &BOUNDS, None);
        assert_eq!(why, Some(Rejection::Invalid));
        assert_eq!(billed.prompt_tokens, 100);
        let (billed, why) = check(usage(0, 10), &BOUNDS, None);
        assert_eq!(why, Some(Rejection::InputBelowBound));
        assert_eq!(billed.prompt_tokens, 100);
    }

    #[test]
    fn output_is_checked_against_the_cap_and_what_was_relayed() {
        let (billed, why) = check(usage(120, 5_000), &BOUNDS, Some(20));
        assert_eq!(why, Some(Rejection::OutputAboveCap));
        assert_eq!(billed.completion_tokens, 20);
        let (billed, _) = check(usage(120, 5_000), &BOUNDS, None);
        assert_eq!(billed.completion_tokens, 50, "unrelayed: the cap");
        let (billed, why) = check(usage(120, 0), &BOUNDS, Some(30));
        assert_eq!(why, Some(Rejection::OutputBelowRelayed));
        assert_eq!(billed.completion_tokens, 30);
        let (billed, why) = check(usage(120, INVALID_COUNT), &BOUNDS, Some(30));
        assert_eq!(why, Some(Rejection::Invalid));
        assert_eq!(billed.completion_tokens, 30);
    }

    #[test]
    fn cache_parts_stay_within_a_replaced_prompt() {
        let reported = Usage {
            cached_tokens: 900,
            cache_write_tokens: 100,
            ..usage(5_000, 10)
        };
        let (billed, _) = check(reported, &BOUNDS, None);
        assert_eq!((billed.cached_tokens, billed.cache_write_tokens), (100, 0));
    }

    #[test]
    fn unknown_bounds_and_estimates_are_not_checked() {
        let odd = usage(INVALID_COUNT, 0);
        assert_eq!(check(odd, &UsageBounds::default(), None), (odd, None));
        let estimated = Usage {
            estimated: true,
            ..usage(0, 0)
        };
        assert_eq!(check(estimated, &BOUNDS, Some(9)), (estimated, None));
    }

    #[test]
    fn bounds_of_a_chat_prompt() {
        let bounds = UsageBounds::new(500, 400, 2, 64);
        assert_eq!(bounds.prompt_min, 6);
        assert_eq!(bounds.prompt_estimate, 106);
        assert_eq!(UsageBounds::new(500, 10, 1, 64).prompt_min, 1);
        assert_eq!(UsageBounds::new(500, 10, 0, 0).prompt_min, 0);
    }
}
