//! The proxy's own counters, picked out of its Prometheus text.

/// Metric families the report shows.
pub const SHOWN: &[&str] = &[
    "switchyard_failovers_total",
    "switchyard_upstream_attempts_total",
];

/// The sample lines (not `# HELP` / `# TYPE`) of the [`SHOWN`] families, in input order.
pub fn shown_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| {
            SHOWN.iter().any(|name| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_samples_of_the_shown_families() {
        let text = "# HELP switchyard_failovers_total Moves.\n\
                    # TYPE switchyard_failovers_total counter\n\
                    switchyard_failovers_total{model=\"m\",from=\"a/m\",to=\"b/m\",reason=\"rate_limited\"} 2\n\
                    switchyard_failovers_total_extra 1\n\
                    switchyard_upstream_attempts_total{provider=\"a\",outcome=\"ok\"} 40\n\
                    switchyard_requests_total{status=\"200\"} 42\n";
        assert_eq!(
            shown_lines(text),
            vec![
                "switchyard_failovers_total{model=\"m\",from=\"a/m\",to=\"b/m\",reason=\"rate_limited\"} 2",
                "switchyard_upstream_attempts_total{provider=\"a\",outcome=\"ok\"} 40",
            ]
        );
        assert!(shown_lines("").is_empty());
    }
}
