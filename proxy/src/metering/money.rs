//! Money as an integer number of nano-dollars (10⁻⁹ USD): what costs, budgets, reservations
//! and the ledger store and add, so that sums are exact (docs/spend.md, "Units").
//!
//! An `i64` of nano-dollars holds ±9.2 billion USD, far beyond any budget or month of spend
//! the proxy books; arithmetic saturates rather than wraps, so a hostile figure can only pin
//! a total at the bound, never flip its sign. Conversion to a decimal happens only at the
//! edges: [`fmt::Display`] (exact), and [`NanoUsd::as_usd_f64`] for JSON numbers and metrics.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

use crate::config::Price;

/// Nano-dollars in one dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;
const TOKENS_PER_MILLION: i128 = 1_000_000;

/// An amount of USD, in nano-dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NanoUsd(i64);

impl NanoUsd {
    pub const ZERO: NanoUsd = NanoUsd(0);
    pub const MAX: NanoUsd = NanoUsd(i64::MAX);

    pub const fn from_nanos(nanos: i64) -> NanoUsd {
        NanoUsd(nanos)
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// A decimal USD figure from configuration (a budget, a price), rounded to the nearest
    /// nano-dollar. A decimal with at most 9 fractional digits comes out exact: the `f64`
    /// parsed from it is within far less than half a nano-dollar of it below 10⁶ USD.
    /// `None` for a figure that is not finite or does not fit.
    pub fn from_usd_f64(usd: f64) -> Option<NanoUsd> {
        let nanos = (usd * NANOS_PER_USD as f64).round();
        // `i64::MAX as f64` rounds up to 2⁶³, which itself does not fit: compare strictly.
        (nanos.is_finite() && nanos >= i64::MIN as f64 && nanos < i64::MAX as f64)
            .then_some(NanoUsd(nanos as i64))
    }

    /// A decimal amount as written in a provider's cost export (`0.0000123456789`, `-1.5`,
    /// `2.5E-7`), rounded to the nearest nano-dollar (half away from zero). Plain decimals
    /// are read digit by digit, so no float is involved; exponent notation goes through
    /// `f64`, which is exact to far below a nano-dollar for amounts of one line item.
    pub fn parse_decimal(text: &str) -> Option<NanoUsd> {
        let text = text.trim();
        if text.contains(['e', 'E']) {
            return text.parse::<f64>().ok().and_then(NanoUsd::from_usd_f64);
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return None;
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        // The first nine fractional digits are nano-dollars; the tenth rounds.
        let mut nanos = whole.checked_mul(i128::from(NANOS_PER_USD))?;
        let mut scale = i128::from(NANOS_PER_USD) / 10;
        for (i, digit) in fraction.bytes().enumerate() {
            let digit = i128::from(digit - b'0');
            if i < 9 {
                nanos += digit * scale;
                scale /= 10;
            } else {
                if digit >= 5 {
                    nanos += 1;
                }
                break;
            }
        }
        let nanos = if negative { -nanos } else { nanos };
        i64::try_from(nanos).ok().map(NanoUsd)
    }

    /// The nearest `f64` of USD: for JSON numbers and Prometheus gauges only, never to add.
    pub fn as_usd_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }

    pub fn checked_add(self, other: NanoUsd) -> Option<NanoUsd> {
        self.0.checked_add(other.0).map(NanoUsd)
    }

    pub fn saturating_add(self, other: NanoUsd) -> NanoUsd {
        NanoUsd(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: NanoUsd) -> NanoUsd {
        NanoUsd(self.0.saturating_sub(other.0))
    }

    /// `self - other`, but not below zero (a released reservation, what remains of a budget).
    pub fn minus_floor_zero(self, other: NanoUsd) -> NanoUsd {
        self.saturating_sub(other).max(NanoUsd::ZERO)
    }

    /// Fixed 9 decimals (`0.000315000`): the finance report's column, aligned and exact.
    pub fn to_fixed(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per = NANOS_PER_USD as u64;
        format!("{sign}{}.{:09}", abs / per, abs % per)
    }
}

/// Plain decimal, no exponent, no trailing zeros (`0.000315`, `1.5`, `0`): exact.
impl fmt::Display for NanoUsd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fixed = self.to_fixed();
        let trimmed = fixed.trim_end_matches('0');
        f.write_str(trimmed.strip_suffix('.').unwrap_or(trimmed))
    }
}

/// Saturating: a sum of money never wraps.
impl Add for NanoUsd {
    type Output = NanoUsd;
    fn add(self, other: NanoUsd) -> NanoUsd {
        self.saturating_add(other)
    }
}

impl AddAssign for NanoUsd {
    fn add_assign(&mut self, other: NanoUsd) {
        *self = self.saturating_add(other);
    }
}

/// Saturating, may go negative (use [`NanoUsd::minus_floor_zero`] where it must not).
impl Sub for NanoUsd {
    type Output = NanoUsd;
    fn sub(self, other: NanoUsd) -> NanoUsd {
        self.saturating_sub(other)
    }
}

impl Sum for NanoUsd {
    fn sum<I: Iterator<Item = NanoUsd>>(iter: I) -> NanoUsd {
        iter.fold(NanoUsd::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a NanoUsd> for NanoUsd {
    fn sum<I: Iterator<Item = &'a NanoUsd>>(iter: I) -> NanoUsd {
        iter.copied().sum()
    }
}

/// A price converted to integers: nano-dollars per million tokens of each kind. A configured
/// price with at most 9 decimals (e.g. `0.075` USD per million) is held exactly, so
/// `tokens × rate / 10⁶` is computed in integers and rounded once, per request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub input: i64,
    pub output: i64,
    pub cached_input: i64,
    pub cache_write: i64,
    pub cache_write_1h: i64,
}

impl Rates {
    /// The integer rates of a price. Prices are validated finite and non-negative when the
    /// policy is compiled; anything that still does not convert counts as the largest rate,
    /// so that an unrepresentable price can never make a request look free.
    pub fn of(price: &Price) -> Rates {
        match *price {
            Price::Free => Rates::default(),
            Price::PerMillion {
                input,
                output,
                cached_input,
                cache_write,
                cache_write_1h,
            } => {
                let rate = |usd: f64| NanoUsd::from_usd_f64(usd).map_or(i64::MAX, |n| n.0.max(0));
                let input = rate(input);
                let cache_write = cache_write.map_or(input, rate);
                Rates {
                    input,
                    output: rate(output),
                    cached_input: cached_input.map_or(input, rate),
                    cache_write,
                    cache_write_1h: cache_write_1h.map_or(cache_write, rate),
                }
            }
        }
    }

    /// The cost of `tokens` at `rate` (nano-dollars per million), as an exact fraction's
    /// numerator: `tokens × rate` in nano-dollar-millionths (saturating: a hostile token
    /// count cannot wrap it).
    pub fn millionths(tokens: u64, rate: i64) -> i128 {
        i128::from(tokens).saturating_mul(i128::from(rate))
    }
}

/// Adds terms of [`Rates::millionths`], saturating.
pub fn sum_millionths(terms: impl IntoIterator<Item = i128>) -> i128 {
    terms.into_iter().fold(0, i128::saturating_add)
}

/// Nano-dollar-millionths to nano-dollars, rounded half up (all costs are ≥ 0), saturating.
pub fn from_millionths(millionths: i128) -> NanoUsd {
    let nanos = millionths
        .saturating_add(TOKENS_PER_MILLION / 2)
        .div_euclid(TOKENS_PER_MILLION);
    NanoUsd(i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_figures_convert_exactly() {
        for (usd, nanos) in [
            (0.15, 150_000_000),
            (0.075, 75_000_000),
            (0.0375, 37_500_000),
            (2.5, 2_500_000_000),
            (0.1, 100_000_000),
            (16.5, 16_500_000_000),
            (123_456.123_456_789, 123_456_123_456_789),
            (0.000_000_001, 1),
        ] {
            assert_eq!(NanoUsd::from_usd_f64(usd), Some(NanoUsd(nanos)), "{usd}");
        }
        assert_eq!(NanoUsd::from_usd_f64(f64::NAN), None);
        assert_eq!(NanoUsd::from_usd_f64(f64::INFINITY), None);
        assert_eq!(NanoUsd::from_usd_f64(1e10), None, "beyond ±9.2 billion USD");
        assert!(NanoUsd::from_usd_f64(9e9).is_some());
    }

    #[test]
    fn export_decimals_are_read_without_floats() {
        for (text, nanos) in [
            ("0.0000123456789", 12_346),
            ("0.0000123454", 12_345),
            ("0.00001234565", 12_346),
            ("12.5", 12_500_000_000),
            ("-0.000000001", -1),
            ("-0.0000000015", -2),
            (".25", 250_000_000),
            ("7", 7_000_000_000),
            ("+3.", 3_000_000_000),
            (" 1.000000000999 ", 1_000_000_001),
            ("2.5E-7", 250),
            ("1e2", 100_000_000_000),
        ] {
            assert_eq!(NanoUsd::parse_decimal(text), Some(NanoUsd(nanos)), "{text}");
        }
        for bad in ["", ".", "-", "1.2.3", "1,5", "abc", "1 2", "99999999999"] {
            assert_eq!(NanoUsd::parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sums_are_exact_where_floats_drift() {
        // Ten costs of 0.1 USD: as f64 they add to 0.9999999999999999.
        let float: f64 = std::iter::repeat_n(0.1, 10).sum();
        assert_ne!(float, 1.0);
        let exact: NanoUsd = std::iter::repeat_n(NanoUsd::from_nanos(100_000_000), 10).sum();
        assert_eq!(exact, NanoUsd::from_nanos(NANOS_PER_USD));
        // Reserving and releasing the same amounts leaves exactly nothing (no 1e-17 residue).
        let mut reserved = NanoUsd::ZERO;
        let amounts = [NanoUsd(300_000_001), NanoUsd(7), NanoUsd(123_456_789)];
        for a in amounts {
            reserved += a;
        }
        for a in amounts {
            reserved = reserved.minus_floor_zero(a);
        }
        assert_eq!(reserved, NanoUsd::ZERO);
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(NanoUsd::MAX + NanoUsd(1), NanoUsd::MAX);
        assert_eq!(NanoUsd::MAX.checked_add(NanoUsd(1)), None);
        assert_eq!(NanoUsd(i64::MIN) - NanoUsd(1), NanoUsd(i64::MIN));
        assert_eq!(NanoUsd(5).minus_floor_zero(NanoUsd(9)), NanoUsd::ZERO);
        assert_eq!(from_millionths(i128::MAX / 2), NanoUsd::MAX);
        let huge = Rates::millionths(u64::MAX, i64::MAX);
        assert_eq!(
            from_millionths(sum_millionths([huge, huge, huge])),
            NanoUsd::MAX
        );
    }

    #[test]
    fn displays_exact_decimals() {
        assert_eq!(NanoUsd(315_000).to_string(), "0.000315");
        assert_eq!(NanoUsd::ZERO.to_string(), "0");
        assert_eq!(NanoUsd(1_500_000_000).to_string(), "1.5");
        assert_eq!(NanoUsd(1).to_string(), "0.000000001");
        assert_eq!(NanoUsd(-2_000_000_001).to_string(), "-2.000000001");
        assert_eq!(NanoUsd(750_000_000).to_fixed(), "0.750000000");
        assert_eq!(NanoUsd(-1).to_fixed(), "-0.000000001");
        assert_eq!(NanoUsd(315_000).as_usd_f64(), 0.000315);
    }

    #[test]
    fn rates_fill_in_unset_cache_prices() {
        let price = Price::PerMillion {
            input: 3.0,
            output: 15.0,
            cached_input: None,
            cache_write: Some(3.75),
            cache_write_1h: None,
        };
        assert_eq!(
            Rates::of(&price),
            Rates {
                input: 3_000_000_000,
                output: 15_000_000_000,
                cached_input: 3_000_000_000,
                cache_write: 3_750_000_000,
                cache_write_1h: 3_750_000_000,
            }
        );
        assert_eq!(Rates::of(&Price::Free), Rates::default());
    }

    #[test]
    fn millionths_round_half_up_once() {
        // 1 token at 0.0375 USD per million = 37.5 nano-dollars → 38 (half up, once).
        assert_eq!(
            from_millionths(Rates::millionths(1, 37_500_000)),
            NanoUsd(38)
        );
        // 1 token at 0.0000375 USD per million = 0.0375 nano-dollars → 0; 20 = 0.75 → 1.
        assert_eq!(from_millionths(Rates::millionths(1, 37_500)), NanoUsd(0));
        assert_eq!(from_millionths(Rates::millionths(20, 37_500)), NanoUsd(1));
        // 3 tokens: 112.5 → 113, not 3 × 38 = 114 (no rounding per token).
        assert_eq!(
            from_millionths(Rates::millionths(3, 37_500_000)),
            NanoUsd(113)
        );
        assert_eq!(from_millionths(500_000), NanoUsd(1));
        assert_eq!(from_millionths(499_999), NanoUsd(0));
    }
}
