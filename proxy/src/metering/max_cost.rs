//! A request's maximum cost, for its budget reservation (docs/spend.md, "The reservation
//! bound"): the output cap it will be sent with, its prompt bound (cheap, or tokenized when
//! the cheap one does not fit what remains), priced at the model's dearest target through
//! the cost functions every bill uses.

use super::bound::{PromptParts, TokenBound};
use super::cost::cost_usd;
use super::money::NanoUsd;
use super::tokenizer::TextCounter;
use super::{Metered, Usage};
use crate::config::{Model, Price};

/// Output tokens a request is capped at when neither the client nor the model says.
pub const DEFAULT_OUTPUT_CAP: u32 = 4096;
/// A cap no model honours (none writes a million tokens in one answer): refused as a
/// mistake where the model names no `max_output_tokens` of its own.
pub const ABSURD_OUTPUT_CAP: u32 = 1_000_000;
/// The smallest cap the proxy lowers a default cap to so that it fits the remaining
/// budget; below it the request is refused rather than sent to produce almost nothing.
pub const MIN_LOWERED_CAP: u32 = 16;

/// Why the output cap cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapTooLarge {
    pub cap: u32,
    pub max: u32,
}

/// The cap sent upstream before the budget is considered: the client's, else the model's
/// `max_output_tokens`, else [`DEFAULT_OUTPUT_CAP`]. A client cap beyond the model's maximum
/// (or beyond [`ABSURD_OUTPUT_CAP`] when the model names none) is refused.
pub fn output_cap(model: &Model, client: Option<u32>) -> Result<u32, CapTooLarge> {
    let max = model.max_output_tokens.unwrap_or(ABSURD_OUTPUT_CAP);
    match client {
        Some(cap) if cap > max => Err(CapTooLarge { cap, max }),
        Some(cap) => Ok(cap),
        None => Ok(model.max_output_tokens.unwrap_or(DEFAULT_OUTPUT_CAP)),
    }
}

/// The request's bound with the prompt counted cheaply (one token per byte plus overheads).
pub fn cheap_bound(parts: &PromptParts<'_>, operation: &impl Metered, cap: u32) -> TokenBound {
    TokenBound {
        prompt: parts.tokens(TextCounter::Bytes),
        cap,
        thinking: operation.thinking_allowance(cap),
        choices: operation.choices(),
    }
}

/// The prompt bound with each target's counter (tokenized once per kind of counter): the
/// largest, never above the cheap bound.
pub fn tokenized_prompt(parts: &PromptParts<'_>, model: &Model, cheap: u64) -> u64 {
    let mut counters: Vec<TextCounter> = Vec::new();
    for target in &model.targets {
        let counter = TextCounter::for_target(target);
        if !counters.iter().any(|c| c.same_as(counter)) {
            counters.push(counter);
        }
    }
    counters
        .into_iter()
        .map(|counter| parts.tokens(counter))
        .max()
        .unwrap_or(cheap)
        .min(cheap)
}

/// The cost of `bound` at `price`.
pub fn usd(price: &Price, bound: &TokenBound) -> NanoUsd {
    cost_usd(
        price,
        &Usage {
            prompt_tokens: bound.prompt,
            completion_tokens: bound.output(),
            ..Usage::default()
        },
    )
}

/// The largest cap (at most `bound.cap`, at least [`MIN_LOWERED_CAP`]) whose bound costs no
/// more than `remaining` at `price`; `None` when even that floor does not fit.
pub fn affordable_cap(price: &Price, bound: &TokenBound, remaining: NanoUsd) -> Option<u32> {
    let with_cap = |cap: u32| TokenBound { cap, ..*bound };
    if usd(price, bound) <= remaining {
        return Some(bound.cap);
    }
    let prompt = usd(
        price,
        &TokenBound {
            cap: 0,
            thinking: 0,
            ..*bound
        },
    );
    let per_output = usd(
        price,
        &TokenBound {
            prompt: 0,
            cap: 1,
            thinking: 0,
            choices: bound.choices,
        },
    );
    if per_output <= NanoUsd::ZERO {
        return Some(bound.cap);
    }
    if remaining < prompt {
        return None;
    }
    // Integer division floors; the loop below corrects the rounding of per-token cost.
    let tokens = ((remaining - prompt).nanos() / per_output.nanos()).max(0) as u64;
    let mut cap = tokens
        .saturating_sub(u64::from(bound.thinking))
        .min(u64::from(bound.cap)) as u32;
    // Rounding may leave one token too many.
    while cap >= MIN_LOWERED_CAP && usd(price, &with_cap(cap)) > remaining {
        cap -= 1;
    }
    (cap >= MIN_LOWERED_CAP).then_some(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::compile_yaml;

    fn dollars(usd: f64) -> NanoUsd {
        NanoUsd::from_usd_f64(usd).unwrap()
    }

    const PRICE: Price = Price::PerMillion {
        input: 1_000_000.0,
        output: 2_000_000.0,
        cached_input: None,
        cache_write: None,
        cache_write_1h: None,
    };

    fn model(max_output: Option<u32>) -> std::sync::Arc<Model> {
        let max = max_output.map_or(String::new(), |m| format!("    max_output_tokens: {m}\n"));
        let yaml = format!(
            "version: 1
providers:
  p: {{ kind: openai, base_url: \"http://127.0.0.1:9/v1\", api_key: k }}
  b: {{ kind: bedrock, region: us-east-1 }}
models:
  m:
{max}    targets:
      - {{ provider: p, model: gpt-4o, price: {{ input: 1, output: 1 }} }}
      - {{ provider: b, model: anthropic.claude-x, price: {{ input: 1, output: 1 }} }}
"
        );
        compile_yaml(&yaml, &[]).unwrap().models["m"].clone()
    }

    #[test]
    fn the_cap_is_the_clients_else_the_models_and_never_beyond_its_maximum() {
        let capped = model(Some(2048));
        assert_eq!(output_cap(&capped, Some(100)), Ok(100));
        assert_eq!(output_cap(&capped, None), Ok(2048));
        assert_eq!(
            output_cap(&capped, Some(4096)),
            Err(CapTooLarge {
                cap: 4096,
                max: 2048
            })
        );
        let open = model(None);
        assert_eq!(output_cap(&open, None), Ok(DEFAULT_OUTPUT_CAP));
        assert_eq!(output_cap(&open, Some(200_000)), Ok(200_000));
        assert!(output_cap(&open, Some(1_000_000_000)).is_err());
    }

    #[test]
    fn the_tokenized_bound_takes_the_largest_counter_and_stays_below_the_cheap_one() {
        super::super::tokenizer::load();
        let text = "The reservation bound counts every prompt token. ".repeat(20);
        let parts = PromptParts {
            texts: vec![&text],
            messages: 1,
            chat: true,
            ..PromptParts::default()
        };
        let cheap = parts.tokens(TextCounter::Bytes);
        let tokenized = tokenized_prompt(&parts, &model(None), cheap);
        let exact = parts.tokens(TextCounter::Exact(tiktoken_rs::o200k_base_singleton()));
        assert!(tokenized < cheap, "{tokenized} < {cheap}");
        // The Bedrock target's margin (2× o200k) is the larger.
        assert!(tokenized > exact, "{tokenized} > {exact}");
    }

    #[test]
    fn a_default_cap_is_lowered_to_what_the_remaining_budget_pays_for() {
        // 10 prompt tokens at 1 USD, each output token 2 USD.
        let bound = TokenBound {
            prompt: 10,
            cap: 100,
            thinking: 0,
            choices: 1,
        };
        assert_eq!(usd(&PRICE, &bound), dollars(210.0));
        assert_eq!(affordable_cap(&PRICE, &bound, dollars(500.0)), Some(100));
        assert_eq!(affordable_cap(&PRICE, &bound, dollars(110.0)), Some(50));
        assert_eq!(affordable_cap(&PRICE, &bound, dollars(111.9)), Some(50));
        let two = TokenBound {
            choices: 2,
            ..bound
        };
        assert_eq!(affordable_cap(&PRICE, &two, dollars(110.0)), Some(25));
        assert_eq!(
            affordable_cap(&PRICE, &bound, dollars(40.0)),
            None,
            "15 tokens < floor"
        );
        assert_eq!(affordable_cap(&PRICE, &bound, dollars(5.0)), None);
        assert_eq!(
            affordable_cap(&Price::Free, &bound, dollars(0.0)),
            Some(100)
        );
    }
}
