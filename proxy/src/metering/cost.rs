//! Cost of a request's tokens at a target's price, in integer nano-dollars: each kind of
//! token × its rate (nano-dollars per million tokens) added in integers and rounded once.

use super::money::{from_millionths, sum_millionths, NanoUsd, Rates};
use super::Usage;
use crate::config::Price;

pub fn cost_usd(price: &Price, usage: &Usage) -> NanoUsd {
    let rates = Rates::of(price);
    let cached = usage.cached_tokens.min(usage.prompt_tokens);
    let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
    // The 1-hour writes are a subset of the writes, at their own rate.
    let written_1h = usage.cache_write_1h_tokens.min(written);
    let uncached = usage.prompt_tokens - cached - written;
    from_millionths(sum_millionths([
        Rates::millionths(uncached, rates.input),
        Rates::millionths(cached, rates.cached_input),
        Rates::millionths(written - written_1h, rates.cache_write),
        Rates::millionths(written_1h, rates.cache_write_1h),
        Rates::millionths(usage.completion_tokens, rates.output),
    ]))
}

/// Formats a cost for the `x-switchyard-cost-usd` header: plain decimal, no exponent.
pub fn format_usd(cost: NanoUsd) -> String {
    cost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, completion: u64, cached: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            cache_write_tokens: 0,
            cache_write_1h_tokens: 0,
            estimated: false,
        }
    }

    #[test]
    fn prices_input_output_and_cached() {
        let price = Price::PerMillion {
            input: 2.5,
            output: 10.0,
            cached_input: Some(1.25),
            cache_write: None,
            cache_write_1h: None,
        };
        // 200 uncached × 2.5 + 100 cached × 1.25 + 50 × 10 = 500 + 125 + 500 = 1125 per 1e6
        let cost = cost_usd(&price, &usage(300, 50, 100));
        assert_eq!(cost, NanoUsd::from_nanos(1_125_000));
        assert_eq!(cost_usd(&Price::Free, &usage(300, 50, 0)), NanoUsd::ZERO);
    }

    #[test]
    fn cache_writes_are_priced_at_the_cache_write_rate() {
        let price = Price::PerMillion {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
            cache_write: Some(3.75),
            cache_write_1h: None,
        };
        let usage = Usage {
            cache_write_tokens: 1000,
            ..usage(1200, 100, 100)
        };
        // 100 uncached × 3 + 100 cached × 0.3 + 1000 written × 3.75 + 100 × 15
        let expected = NanoUsd::from_nanos(300_000 + 30_000 + 3_750_000 + 1_500_000);
        assert_eq!(cost_usd(&price, &usage), expected);
    }

    #[test]
    fn one_hour_cache_writes_are_priced_at_their_own_rate_else_the_writes() {
        let usage = Usage {
            cache_write_tokens: 1000,
            cache_write_1h_tokens: 600,
            ..usage(1100, 0, 0)
        };
        let with_1h = Price::PerMillion {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
            cache_write: Some(3.75),
            cache_write_1h: Some(6.0),
        };
        // 100 uncached × 3 + 400 (5m) × 3.75 + 600 (1h) × 6
        let expected = NanoUsd::from_nanos(300_000 + 1_500_000 + 3_600_000);
        assert_eq!(cost_usd(&with_1h, &usage), expected);
        let without_1h = Price::PerMillion {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
            cache_write: Some(3.75),
            cache_write_1h: None,
        };
        let expected = NanoUsd::from_nanos(300_000 + 3_750_000);
        assert_eq!(cost_usd(&without_1h, &usage), expected);
        // 1h figures beyond the writes are capped at the writes.
        let odd = Usage {
            cache_write_1h_tokens: 5000,
            ..usage
        };
        let expected = NanoUsd::from_nanos(300_000 + 6_000_000);
        assert_eq!(cost_usd(&with_1h, &odd), expected);
    }

    #[test]
    fn header_format_is_plain_decimal() {
        assert_eq!(format_usd(NanoUsd::from_nanos(315_000)), "0.000315");
        assert_eq!(format_usd(NanoUsd::ZERO), "0");
        assert_eq!(format_usd(NanoUsd::from_nanos(1_500_000_000)), "1.5");
    }

    #[test]
    fn many_small_requests_add_up_exactly() {
        // gpt-4o-mini's 0.15 / 0.6 USD per million: 1,000 requests of 7 in + 3 out tokens.
        let price = Price::PerMillion {
            input: 0.15,
            output: 0.6,
            cached_input: None,
            cache_write: None,
            cache_write_1h: None,
        };
        let one = cost_usd(&price, &usage(7, 3, 0));
        // 7 × 150 + 3 × 600 nano-dollars = 2,850 nano-dollars, exactly.
        assert_eq!(one, NanoUsd::from_nanos(2_850));
        let total: NanoUsd = std::iter::repeat_n(one, 1_000).sum();
        assert_eq!(total.to_string(), "0.00285");
        // The same in floats does not come out even.
        let float: f64 = std::iter::repeat_n(one.as_usd_f64(), 1_000).sum();
        assert_ne!(float, 0.00285);
    }
}
