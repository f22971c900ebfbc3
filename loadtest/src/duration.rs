//! Go-style durations (`50ms`, `1.5s`, `1m30s`): parsed from the command line and
//! written into `x-ratelimit-reset-*` headers, which OpenAI formats the same way.

use std::time::Duration;

use anyhow::{bail, Context};

/// Parses a duration such as `50ms`, `1s`, `1.5s`, `2m`, `1h2m3.5s` or `0`.
///
/// Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`. A bare number is refused (except
/// `0`) because "was that milliseconds or seconds?" is exactly the mistake this
/// guards against.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        bail!("empty duration");
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .with_context(|| format!("invalid number in duration {text:?}"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after_unit) = after.split_at(unit_len);
        let seconds_per_unit = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => bail!("missing unit in duration {text:?} (use e.g. 50ms or 1s)"),
            other => bail!("unknown unit {other:?} in duration {text:?}"),
        };
        total += value * seconds_per_unit;
        rest = after_unit;
    }
    Duration::try_from_secs_f64(total).with_context(|| format!("duration {text:?} out of range"))
}

/// Formats like Go's `time.Duration.String()` at millisecond precision:
/// `0s`, `250ms`, `12s`, `12.5s`, `1m0s`, `1h2m3.5s`.
pub fn format_go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 && duration.is_zero() {
        return "0s".to_owned();
    }
    if millis < 1000 {
        // Round sub-millisecond remainders up so a non-zero wait never reads "0ms".
        return format!("{}ms", millis.max(1));
    }
    let hours = millis / 3_600_000;
    let minutes = (millis / 60_000) % 60;
    let seconds = (millis / 1000) % 60;
    let fraction = millis % 1000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if fraction == 0 {
        out.push_str(&format!("{seconds}s"));
    } else {
        let fraction = format!("{fraction:03}");
        out.push_str(&format!("{seconds}.{}s", fraction.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() -> anyhow::Result<()> {
        assert_eq!(parse_duration("50ms")?, Duration::from_millis(50));
        assert_eq!(parse_duration("1s")?, Duration::from_secs(1));
        assert_eq!(parse_duration("1.5s")?, Duration::from_millis(1500));
        assert_eq!(parse_duration("1m30s")?, Duration::from_secs(90));
        assert_eq!(parse_duration("250us")?, Duration::from_micros(250));
        assert_eq!(parse_duration("0")?, Duration::ZERO);
        Ok(())
    }

    #[test]
    fn refuses_ambiguous_or_broken_input() {
        for bad in ["", "5", "5x", "ms", "1.2.3s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_micros(10)), "1ms");
        assert_eq!(format_go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_go_duration(Duration::from_secs(12)), "12s");
        assert_eq!(format_go_duration(Duration::from_millis(12_500)), "12.5s");
        assert_eq!(format_go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(
            format_go_duration(Duration::from_millis(3_723_500)),
            "1h2m3.5s"
        );
    }
}
