//! What a correct router does in each scenario, as checks over the timeline and totals.

use super::timeline::{Row, Totals};

/// One verdict, printed as `PASS`/`FAIL  label (observed)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub label: String,
    pub observed: String,
    pub passed: bool,
}

impl Check {
    fn new(label: impl Into<String>, observed: impl Into<String>, passed: bool) -> Self {
        Self {
            label: label.into(),
            observed: observed.into(),
            passed,
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        write!(f, "{verdict}  {} ({})", self.label, self.observed)
    }
}

/// Requests served by `providers` in rows whose second is in `from..=to`.
pub fn served_in(rows: &[Row], providers: &[&str], from: u64, to: u64) -> usize {
    rows.iter()
        .filter(|r| (from..=to).contains(&r.second))
        .map(|r| providers.iter().map(|p| r.served_by(p)).sum::<usize>())
        .sum()
}

/// Every request served by any provider in rows `from..=to`.
fn all_served_in(rows: &[Row], from: u64, to: u64) -> usize {
    rows.iter()
        .filter(|r| (from..=to).contains(&r.second))
        .map(|r| r.served.values().sum::<usize>())
        .sum()
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// At most `max` failovers in seconds `from..to` (the router stops trying a target it knows
/// is unavailable instead of failing over from it on every request).
pub fn few_failovers(rows: &[Row], from: u64, to: u64, max: usize, what: &str) -> Check {
    let seen: usize = rows
        .iter()
        .filter(|r| (from..to).contains(&r.second))
        .map(|r| r.failovers)
        .sum();
    Check::new(
        format!("{what}: ≤ {max} failovers in t={from}..{to}s"),
        format!("{seen}"),
        seen <= max,
    )
}

pub fn no_client_errors(totals: &Totals) -> Check {
    Check::new(
        "no client-visible errors",
        format!("{} of {}", totals.errors, totals.requests),
        totals.errors == 0,
    )
}

/// `provider` serves at least `min` of what was served in seconds `from..=to`.
fn mostly(rows: &[Row], provider: &[&str], from: u64, to: u64, min: f64, what: &str) -> Check {
    let (part, whole) = (
        served_in(rows, provider, from, to),
        all_served_in(rows, from, to),
    );
    Check::new(
        format!(
            "{what}: {} serve ≥ {:.0}% in t={from}..{}s",
            provider.join("+"),
            min * 100.0,
            to + 1
        ),
        format!("{part} of {whole}"),
        whole > 0 && share(part, whole) >= min,
    )
}

/// Priority with a quota burst on `primary` at `fault_at` (cool-down `cooldown` seconds): no
/// errors, the backups take over right after, the primary is left alone while it cools down
/// (at most `max_failovers` requests learn of the shortage the hard way), and it is back a
/// second after the cool-down.
pub fn capacity_shortage(
    rows: &[Row],
    totals: &Totals,
    primary: &str,
    backups: &[&str],
    fault_at: u64,
    cooldown: u64,
    max_failovers: usize,
) -> Vec<Check> {
    let last = rows.last().map_or(0, |r| r.second);
    let back = (fault_at + cooldown + 1).min(last);
    let during = (fault_at + 1, (fault_at + cooldown).saturating_sub(1));
    vec![
        no_client_errors(totals),
        mostly(
            rows,
            &[primary],
            0,
            fault_at.saturating_sub(1),
            0.95,
            "before",
        ),
        mostly(
            rows,
            backups,
            during.0,
            during.1,
            0.95,
            "during the cool-down",
        ),
        few_failovers(
            rows,
            fault_at,
            fault_at + cooldown,
            max_failovers,
            &format!("{primary} is left alone while it cools down"),
        ),
        mostly(rows, &[primary], back, last, 0.8, "after it"),
    ]
}

/// Latency strategy with one slow target: the fast ones take > 80 % and both get a share.
pub fn slow_target(totals: &Totals, slow: &str, fast: &[&str]) -> Vec<Check> {
    let served = totals.served_total();
    let fast_served: usize = fast.iter().map(|p| totals.served_by(p)).sum();
    let mut checks = vec![
        no_client_errors(totals),
        Check::new(
            format!("{} serve > 80% (not {slow})", fast.join("+")),
            format!("{fast_served} of {served}"),
            share(fast_served, served) > 0.8,
        ),
    ];
    for p in fast {
        let n = totals.served_by(p);
        checks.push(Check::new(
            format!("{p} takes ≥ 10% of the fast traffic (spread)"),
            format!("{n} of {fast_served}"),
            share(n, fast_served) >= 0.1,
        ));
    }
    checks
}

/// Cost strategy, `cheap` with a local `rpm` limit (the upstream's real quota is the same):
/// `cheap` first, never past its quota (so never refused: no failovers), then `dear`.
pub fn cost_capacity(
    rows: &[Row],
    totals: &Totals,
    cheap: &str,
    dear: &str,
    rpm: usize,
) -> Vec<Check> {
    let last = rows.last().map_or(0, |r| r.second);
    let n = totals.served_by(cheap);
    vec![
        no_client_errors(totals),
        mostly(rows, &[cheap], 0, 0, 0.95, "first"),
        Check::new(
            format!("{cheap} serves 80–100% of its rpm {rpm}, then is left alone"),
            format!("{n}"),
            n * 10 >= rpm * 8 && n <= rpm,
        ),
        Check::new(
            format!("{cheap}'s quota is never hit (the local limit acts first): no failovers"),
            format!("{}", totals.failovers),
            totals.failovers == 0,
        ),
        mostly(rows, &[dear], last.saturating_sub(2), last, 0.95, "then"),
    ]
}

/// Priority, `primary` answers 500 in seconds `from..to`: no errors, the circuit spares the
/// primary (few failovers), the backup serves, the primary is back at the end.
pub fn outage(
    rows: &[Row],
    totals: &Totals,
    primary: &str,
    backup: &str,
    from: u64,
    to: u64,
    max_failovers: usize,
) -> Vec<Check> {
    let last = rows.last().map_or(0, |r| r.second);
    vec![
        no_client_errors(totals),
        mostly(
            rows,
            &[backup],
            from + 1,
            to.saturating_sub(1),
            0.95,
            "during the outage",
        ),
        few_failovers(
            rows,
            from,
            to,
            max_failovers,
            &format!("the open circuit spares {primary}"),
        ),
        mostly(
            rows,
            &[primary],
            last.saturating_sub(1),
            last,
            0.8,
            "after it",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(second: u64, served: &[(&str, usize)], errors: usize, failovers: usize) -> Row {
        Row {
            second,
            served: served
                .iter()
                .map(|(p, n)| ((*p).to_owned(), *n))
                .collect::<BTreeMap<_, _>>(),
            errors,
            failovers,
        }
    }

    fn totals_of(rows: &[Row]) -> Totals {
        let mut t = Totals::default();
        for r in rows {
            for (p, n) in &r.served {
                *t.served.entry(p.clone()).or_default() += n;
                t.requests += n;
            }
            t.errors += r.errors;
            t.requests += r.errors;
            t.failovers += r.failovers;
        }
        t
    }

    fn all_pass(checks: &[Check]) -> bool {
        checks.iter().all(|c| c.passed)
    }

    #[test]
    fn capacity_shortage_passes_a_clean_takeover_and_return() {
        let mut rows: Vec<Row> = (0..12)
            .map(|s| match s {
                0..=2 | 7..=11 => row(s, &[("a", 20), ("b", 0)], 0, 0),
                3 => row(s, &[("a", 5), ("b", 15)], 0, 1),
                _ => row(s, &[("a", 0), ("b", 20)], 0, 0),
            })
            .collect();
        let t = totals_of(&rows);
        assert!(all_pass(&capacity_shortage(
            &rows,
            &t,
            "a",
            &["b", "c"],
            3,
            3,
            4
        )));
        rows[4].failovers = 5;
        let t = totals_of(&rows);
        let checks = capacity_shortage(&rows, &t, "a", &["b", "c"], 3, 3, 4);
        assert!(!checks[3].passed && checks[3].label.contains("a is left alone"));
        rows[4].failovers = 0;
        rows[4].errors = 1;
        let t = totals_of(&rows);
        let checks = capacity_shortage(&rows, &t, "a", &["b", "c"], 3, 3, 4);
        assert!(!checks[0].passed);
        assert!(checks[0]
            .to_string()
            .starts_with("FAIL  no client-visible errors (1 of"));
    }

    #[test]
    fn capacity_shortage_fails_when_the_primary_never_returns() {
        let rows: Vec<Row> = (0..12)
            .map(|s| {
                if s < 3 {
                    row(s, &[("a", 20)], 0, 0)
                } else {
                    row(s, &[("b", 20)], 0, 0)
                }
            })
            .collect();
        let t = totals_of(&rows);
        let checks = capacity_shortage(&rows, &t, "a", &["b"], 3, 3, 4);
        assert!(checks[..4].iter().all(|c| c.passed));
        assert!(!checks[4].passed);
    }

    #[test]
    fn slow_target_needs_share_and_spread() {
        let rows = vec![row(0, &[("a", 10), ("b", 50), ("c", 40)], 0, 0)];
        assert!(all_pass(&slow_target(&totals_of(&rows), "a", &["b", "c"])));
        let lopsided = vec![row(0, &[("a", 10), ("b", 85), ("c", 5)], 0, 0)];
        let checks = slow_target(&totals_of(&lopsided), "a", &["b", "c"]);
        assert!(checks[1].passed && checks[2].passed && !checks[3].passed);
        let slow = vec![row(0, &[("a", 30), ("b", 35), ("c", 35)], 0, 0)];
        assert!(!slow_target(&totals_of(&slow), "a", &["b", "c"])[1].passed);
    }

    #[test]
    fn cost_capacity_bounds_the_cheap_target() {
        let rows: Vec<Row> = (0..12)
            .map(|s| match s {
                0..=1 => row(s, &[("a", 20), ("b", 0)], 0, 0),
                2 => row(s, &[("a", 18), ("b", 2)], 0, 0),
                _ => row(s, &[("a", 0), ("b", 20)], 0, 0),
            })
            .collect();
        assert!(all_pass(&cost_capacity(
            &rows,
            &totals_of(&rows),
            "a",
            "b",
            60
        )));
        assert!(!cost_capacity(&rows, &totals_of(&rows), "a", "b", 40)[2].passed);
        assert!(!cost_capacity(&rows, &totals_of(&rows), "a", "b", 100)[2].passed);
    }

    #[test]
    fn outage_counts_failovers_inside_the_window_only() {
        let rows: Vec<Row> = (0..12)
            .map(|s| match s {
                3 => row(s, &[("a", 2), ("b", 18)], 0, 3),
                4..=7 => row(s, &[("a", 0), ("b", 20)], 0, 1),
                8 => row(s, &[("a", 15), ("b", 5)], 0, 0),
                _ => row(s, &[("a", 20), ("b", 0)], 0, 0),
            })
            .collect();
        let t = totals_of(&rows);
        assert!(all_pass(&outage(&rows, &t, "a", "b", 3, 7, 8)));
        assert!(!outage(&rows, &t, "a", "b", 3, 7, 5)[2].passed);
        assert_eq!(served_in(&rows, &["a", "b"], 3, 3), 20);
    }
}
