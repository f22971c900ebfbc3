//! Sizes (`8MiB`, `512KB`, `1048576`) and durations (`500ms`, `30s`, `2m`, `1h`) as written in `routes.yaml`.

use std::time::Duration;

/// Unit (lower-cased) → bytes. `KiB` etc. are powers of 1024, `KB` etc. powers of 1000.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("b", 1),
];

/// Unit → milliseconds. Units are matched whole, so `500ms` is never read as minutes.
const DURATION_UNITS: &[(&str, u64)] = &[("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

/// Parses a size in bytes: a whole number, optionally followed by `B`, `KiB`/`MiB`/`GiB`
/// (powers of 1024) or `KB`/`MB`/`GB` (powers of 1000), case-insensitively.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text);
    let unit_lower = unit.to_ascii_lowercase();
    let factor = match unit_lower.as_str() {
        "" => 1,
        _ => lookup(SIZE_UNITS, &unit_lower).ok_or_else(|| {
            format!("`{text}` is not a size: unknown unit `{unit}` (use bytes, KiB, MiB, GiB, KB, MB or GB, e.g. 8MiB)")
        })?,
    };
    let count = parse_count(number, text, "size", "8MiB")?;
    count
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a duration: a whole number followed by `ms`, `s`, `m` or `h`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text);
    if unit.is_empty() {
        return Err(format!(
            "`{text}` needs a unit: ms, s, m or h (e.g. {}s)",
            number.trim()
        ));
    }
    let factor = lookup(DURATION_UNITS, &unit.to_ascii_lowercase()).ok_or_else(|| {
        format!("`{text}` is not a duration: unknown unit `{unit}` (use ms, s, m or h, e.g. 30s)")
    })?;
    let count = parse_count(number, text, "duration", "30s")?;
    count
        .checked_mul(factor)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// Renders a duration the way it could be written in `routes.yaml`; minutes are shown
/// as seconds (`120s`), which reads unambiguously next to `ms`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        0 => "0s".to_owned(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}

/// Renders a byte count with the largest binary unit that divides it.
pub(crate) fn format_size(bytes: u64) -> String {
    match bytes {
        0 => "0".to_owned(),
        b if b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Splits `" 8 MiB "` into `("8", "MiB")`.
fn split_number(text: &str) -> (&str, &str) {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    (number, unit.trim())
}

fn lookup(table: &[(&str, u64)], unit: &str) -> Option<u64> {
    table
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, factor)| *factor)
}

fn parse_count(number: &str, text: &str, what: &str, example: &str) -> Result<u64, String> {
    let digits: String = number.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return Err(format!(
            "`{text}` is not a {what}: expected a whole number and a unit, e.g. {example}"
        ));
    }
    digits.parse().map_err(|_| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_bytes_and_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("8MiB"), Ok(8 * 1024 * 1024));
        assert_eq!(parse_size("512 KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("8mib"), Ok(8 << 20));
    }

    #[test]
    fn sizes_in_decimal_units() {
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("8MB"), Ok(8_000_000));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        let unit = parse_size("8 MiBs").err().unwrap_or_default();
        assert!(unit.contains("unknown unit `MiBs`"), "{unit}");
        let number = parse_size("MiB").err().unwrap_or_default();
        assert!(number.contains("expected a whole number"), "{number}");
        let fraction = parse_size("1.5MiB").err().unwrap_or_default();
        assert!(fraction.contains("unknown unit `.5MiB`"), "{fraction}");
        let huge = parse_size("99999999999GiB").err().unwrap_or_default();
        assert!(huge.contains("too large"), "{huge}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 5 s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        let bare = parse_duration("30").err().unwrap_or_default();
        assert!(
            bare.contains("needs a unit") && bare.contains("30s"),
            "{bare}"
        );
        let unit = parse_duration("3d").err().unwrap_or_default();
        assert!(unit.contains("unknown unit `d`"), "{unit}");
        let combined = parse_duration("1m30s").err().unwrap_or_default();
        assert!(combined.contains("unknown unit `m30s`"), "{combined}");
    }

    #[test]
    fn formatting_round_trips() {
        for (text, shown) in [
            ("500ms", "500ms"),
            ("30s", "30s"),
            ("2m", "120s"),
            ("1h", "1h"),
            ("1500ms", "1500ms"),
        ] {
            let parsed = parse_duration(text).unwrap_or_default();
            assert_eq!(format_duration(parsed), shown);
        }
        assert_eq!(format_size(8 << 20), "8MiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }
}
