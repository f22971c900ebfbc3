//! What each request looked like to the client, bucketed per second of the run, and the
//! run's totals.

use std::collections::BTreeMap;
use std::time::Duration;

use super::percentile::percentile;

/// One client request as the load generator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// When it was sent, from the start of the run.
    pub sent_at: Duration,
    /// Until the whole answer (for streams, `[DONE]`) or the error arrived.
    pub latency: Duration,
    /// `x-switchyard-provider` of a complete answer; `None` for client-visible errors.
    pub provider: Option<String>,
    /// `x-switchyard-attempts` (1 when absent).
    pub attempts: u32,
}

impl Outcome {
    /// Served, but only after at least one other target was tried.
    pub fn failed_over(&self) -> bool {
        self.attempts > 1
    }
}

/// One second of the run (by send time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub second: u64,
    /// Requests served per provider; every provider of the scenario has an entry.
    pub served: BTreeMap<String, usize>,
    pub errors: usize,
    pub failovers: usize,
}

impl Row {
    pub fn served_by(&self, provider: &str) -> usize {
        self.served.get(provider).copied().unwrap_or(0)
    }
}

/// Buckets `outcomes` into `seconds` rows (later ones go into the last row), with a
/// column for each of `providers` (and for any other provider that served something).
pub fn bucket(outcomes: &[Outcome], providers: &[String], seconds: u64) -> Vec<Row> {
    let seconds = seconds.max(1);
    let mut rows: Vec<Row> = (0..seconds)
        .map(|second| Row {
            second,
            served: providers.iter().map(|p| (p.clone(), 0)).collect(),
            ..Row::default()
        })
        .collect();
    for outcome in outcomes {
        let index = (outcome.sent_at.as_secs()).min(seconds - 1) as usize;
        let Some(row) = rows.get_mut(index) else {
            continue;
        };
        match &outcome.provider {
            Some(provider) => *row.served.entry(provider.clone()).or_default() += 1,
            None => row.errors += 1,
        }
        if outcome.failed_over() {
            row.failovers += 1;
        }
    }
    rows
}

/// The whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub requests: usize,
    pub served: BTreeMap<String, usize>,
    pub errors: usize,
    pub failovers: usize,
    pub p50: Option<Duration>,
    pub p90: Option<Duration>,
    pub p99: Option<Duration>,
}

impl Totals {
    pub fn served_by(&self, provider: &str) -> usize {
        self.served.get(provider).copied().unwrap_or(0)
    }

    pub fn served_total(&self) -> usize {
        self.served.values().sum()
    }
}

/// Totals of `outcomes`; latency percentiles are over every request, errors included.
pub fn totals(outcomes: &[Outcome], providers: &[String]) -> Totals {
    let mut totals = Totals {
        requests: outcomes.len(),
        served: providers.iter().map(|p| (p.clone(), 0)).collect(),
        ..Totals::default()
    };
    for outcome in outcomes {
        match &outcome.provider {
            Some(provider) => *totals.served.entry(provider.clone()).or_default() += 1,
            None => totals.errors += 1,
        }
        if outcome.failed_over() {
            totals.failovers += 1;
        }
    }
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    latencies.sort();
    totals.p50 = percentile(&latencies, 0.50);
    totals.p90 = percentile(&latencies, 0.90);
    totals.p99 = percentile(&latencies, 0.99);
    totals
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn outcome(sent_ms: u64, provider: Option<&str>, attempts: u32) -> Outcome {
        Outcome {
            sent_at: Duration::from_millis(sent_ms),
            latency: Duration::from_millis(10 + sent_ms % 7),
            provider: provider.map(str::to_owned),
            attempts,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn buckets_by_send_second_with_a_column_per_provider() {
        let outcomes = vec![
            outcome(100, Some("a"), 1),
            outcome(900, Some("a"), 1),
            outcome(1_200, Some("b"), 2),
            outcome(1_300, None, 3),
            outcome(9_999, Some("c"), 1),
        ];
        let rows = bucket(&outcomes, &names(&["a", "b"]), 3);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].served_by("a"), 2);
        assert_eq!(rows[0].served_by("b"), 0);
        assert_eq!(rows[0].served.len(), 2);
        assert_eq!((rows[1].served_by("b"), rows[1].errors), (1, 1));
        assert_eq!(rows[1].failovers, 2);
        // Late requests land in the last row; unknown providers get a column there.
        assert_eq!(rows[2].served_by("c"), 1);
    }

    #[test]
    fn totals_count_and_percentiles() {
        let outcomes: Vec<Outcome> = (0..100)
            .map(|i| Outcome {
                sent_at: Duration::from_millis(i * 10),
                latency: Duration::from_millis(i + 1),
                provider: if i == 5 { None } else { Some("a".into()) },
                attempts: if i % 10 == 0 { 2 } else { 1 },
            })
            .collect();
        let t = totals(&outcomes, &names(&["a", "b"]));
        assert_eq!(t.requests, 100);
        assert_eq!((t.served_by("a"), t.served_by("b")), (99, 0));
        assert_eq!(t.served_total(), 99);
        assert_eq!((t.errors, t.failovers), (1, 10));
        assert_eq!(t.p50, Some(Duration::from_millis(50)));
        assert_eq!(t.p90, Some(Duration::from_millis(90)));
        assert_eq!(t.p99, Some(Duration::from_millis(99)));
        assert_eq!(totals(&[], &[]).p50, None);
    }
}
