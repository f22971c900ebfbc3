//! Cost in USD of a request's tokens at a target's price (USD per million tokens).

use super::Usage;
use crate::config::Price;

pub fn cost_usd(price: &Price, usage: &Usage) -> f64 {
    match *price {
        Price::Free => 0.0,
        Price::PerMillion {
            input,
            output,
            cached_input,
            cache_write,
            cache_write_1h,
        } => {
            let cached = usage.cached_tokens.min(usage.prompt_tokens);
            let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
            // The 1-hour writes are a subset of the writes, at their own rate.
            let written_1h = usage.cache_write_1h_tokens.min(written);
            let write_rate = cache_write.unwrap_or(input);
            let uncached = usage.prompt_tokens - cached - written;
            (uncached as f64 * input
                + cached as f64 * cached_input.unwrap_or(input)
                + (written - written_1h) as f64 * write_rate
                + written_1h as f64 * cache_write_1h.unwrap_or(write_rate)
                + usage.completion_tokens as f64 * output)
                / 1_000_000.0
        }
    }
}

/// Formats a cost for the `x-switchyard-cost-usd` header: plain decimal, no exponent.
pub fn format_usd(cost: f64) -> String {
    let text = format!("{cost:.9}");
    let trimmed = text.trim_end_matches('0');
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() || trimmed == "-" {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
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
        assert!((cost - 0.001125).abs() < 1e-12);
        assert_eq!(cost_usd(&Price::Free, &usage(300, 50, 0)), 0.0);
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
        let expected = (300.0 + 30.0 + 3750.0 + 1500.0) / 1_000_000.0;
        assert!((cost_usd(&price, &usage) - expected).abs() < 1e-12);
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
        let expected = (300.0 + 1500.0 + 3600.0) / 1_000_000.0;
        assert!((cost_usd(&with_1h, &usage) - expected).abs() < 1e-12);
        let without_1h = Price::PerMillion {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
            cache_write: Some(3.75),
            cache_write_1h: None,
        };
        let expected = (300.0 + 1000.0 * 3.75) / 1_000_000.0;
        assert!((cost_usd(&without_1h, &usage) - expected).abs() < 1e-12);
        // 1h figures beyond the writes are capped at the writes.
        let odd = Usage {
            cache_write_1h_tokens: 5000,
            ..usage
        };
        let expected = (300.0 + 1000.0 * 6.0) / 1_000_000.0;
        assert!((cost_usd(&with_1h, &odd) - expected).abs() < 1e-12);
    }

    #[test]
    fn header_format_is_plain_decimal() {
        assert_eq!(format_usd(0.000315), "0.000315");
        assert_eq!(format_usd(0.0), "0");
        assert_eq!(format_usd(1.5), "1.5");
        assert_eq!(format_usd(1e-10), "0");
    }
}
