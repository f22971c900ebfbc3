//! Counters read from the proxy's Prometheus text (`GET /metrics` on the admin listener):
//! the soak checks with them that failovers and reloads really happened.

/// The sum of every sample of `family` whose labels contain all of `labels`
/// (`name="value"` pairs as written in the text); 0 when there is none.
pub fn sum(text: &str, family: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(family)?;
            let (label_text, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            let wanted = labels
                .iter()
                .all(|label| label_text.split(',').any(|pair| pair.trim() == *label));
            wanted
                .then(|| value.split_whitespace().next()?.parse::<f64>().ok())
                .flatten()
        })
        // Not `sum()`: an empty f64 sum is -0.0, which prints as "-0".
        .fold(0.0, |total, value| total + value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP switchyard_config_reloads_total Reloads.\n\
        # TYPE switchyard_config_reloads_total counter\n\
        switchyard_config_reloads_total{result=\"ok\"} 4\n\
        switchyard_config_reloads_total{result=\"error\"} 1\n\
        switchyard_failovers_total{model=\"m\",from=\"a/m\",to=\"b/m\",reason=\"server_error\"} 7\n\
        switchyard_failovers_total{model=\"m\",from=\"a/m\",to=\"b/m\",reason=\"capacity\"} 3\n\
        switchyard_failovers_total_extra 100\n\
        switchyard_client_connections 12\n";

    #[test]
    fn sums_the_samples_of_a_family_that_match_the_labels() {
        assert_eq!(
            sum(TEXT, "switchyard_config_reloads_total", &[r#"result="ok""#]),
            4.0
        );
        assert_eq!(sum(TEXT, "switchyard_config_reloads_total", &[]), 5.0);
        assert_eq!(sum(TEXT, "switchyard_failovers_total", &[]), 10.0);
        assert_eq!(
            sum(
                TEXT,
                "switchyard_failovers_total",
                &[r#"reason="capacity""#]
            ),
            3.0
        );
        assert_eq!(sum(TEXT, "switchyard_client_connections", &[]), 12.0);
        let none = sum(TEXT, "switchyard_hedges_total", &[]);
        assert_eq!(format!("{none:.0}"), "0");
    }
}
