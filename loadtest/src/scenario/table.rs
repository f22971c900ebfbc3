//! Plain-text rendering of the timeline and the totals.

use std::fmt::Write as _;
use std::time::Duration;

use super::timeline::{Row, Totals};

/// One line per second: requests served by each provider, client errors, failovers.
pub fn timeline(rows: &[Row]) -> String {
    let providers: Vec<&String> =
        rows.iter()
            .flat_map(|row| row.served.keys())
            .fold(Vec::new(), |mut seen, p| {
                if !seen.contains(&p) {
                    seen.push(p);
                }
                seen
            });
    let width = |name: &str| name.len().max(6);
    let mut out = String::new();
    let _ = write!(out, "  {:>5}", "t");
    for p in &providers {
        let _ = write!(out, "  {:>w$}", p, w = width(p));
    }
    let _ = writeln!(out, "  {:>6}  {:>9}", "errors", "failovers");
    for row in rows {
        let _ = write!(out, "  {:>4}s", row.second);
        for p in &providers {
            let _ = write!(out, "  {:>w$}", row.served_by(p), w = width(p));
        }
        let _ = writeln!(out, "  {:>6}  {:>9}", row.errors, row.failovers);
    }
    out
}

/// `12.3ms`, or `-` when unknown.
pub fn millis(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1}ms", d.as_secs_f64() * 1000.0),
    )
}

/// The totals block: served per target (with shares), errors, failovers, latency.
pub fn totals(t: &Totals) -> String {
    let served_total = t.served_total().max(1) as f64;
    let served: Vec<String> = t
        .served
        .iter()
        .map(|(p, n)| format!("{p} {n} ({:.0}%)", 100.0 * *n as f64 / served_total))
        .collect();
    format!(
        "  requests {}; served: {}\n  client-visible errors {}; failovers (x-switchyard-attempts > 1) {}\n  latency p50 {}  p90 {}  p99 {}\n",
        t.requests,
        served.join(", "),
        t.errors,
        t.failovers,
        millis(t.p50),
        millis(t.p90),
        millis(t.p99),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::timeline::{bucket, tests::outcome, totals as sum};

    #[test]
    fn timeline_has_a_header_and_a_row_per_second() {
        let providers = vec!["a".to_owned(), "backup".to_owned()];
        let rows = bucket(
            &[
                outcome(10, Some("a"), 1),
                outcome(1_500, Some("backup"), 2),
                outcome(1_600, None, 2),
            ],
            &providers,
            2,
        );
        let text = timeline(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "      t       a  backup  errors  failovers");
        assert_eq!(lines[1], "     0s       1       0       0          0");
        assert_eq!(lines[2], "     1s       0       1       1          2");
    }

    #[test]
    fn totals_show_shares_and_latencies() {
        let providers = vec!["a".to_owned(), "b".to_owned()];
        let t = sum(
            &[
                outcome(0, Some("a"), 1),
                outcome(1, Some("a"), 1),
                outcome(2, Some("a"), 1),
                outcome(3, Some("b"), 2),
            ],
            &providers,
        );
        let text = totals(&t);
        assert!(text.contains("served: a 3 (75%), b 1 (25%)"), "{text}");
        assert!(text.contains("client-visible errors 0; failovers (x-switchyard-attempts > 1) 1"));
        assert!(text.contains("p50 "));
        assert_eq!(millis(None), "-");
        assert_eq!(millis(Some(Duration::from_micros(12_340))), "12.3ms");
    }
}
