//! One sentence per ranked target for `/admin/routes` (docs/routing.md#explain): where it
//! stands and the figures the strategy weighed, each said to be measured or a prior.

use super::plan::RankedTarget;
use super::score::LatencyBasis;
use crate::config::{PriceSource, Strategy, Tier};

/// Why `ranked` is where it is in its model's order (`position` counts from 0).
pub fn decision(strategy: Strategy, ranked: &RankedTarget, position: usize) -> String {
    if let Some(skipped) = &ranked.skipped {
        return format!("skipped: {skipped}");
    }
    let figures = &ranked.figures;
    let mut parts = vec![format!("#{} under `{}`", position + 1, strategy.label())];
    if ranked.target.tier == Some(Tier::Provisioned) {
        parts.push("provisioned capacity is filled first".to_owned());
    }
    let latency = match figures.latency_basis {
        LatencyBasis::Prior => "prior",
        _ => "measured",
    };
    parts.push(format!(
        "expected {:.0} ms to the whole answer ({latency}; {:.0} ms of it from priors)",
        figures.expected_latency_ms, figures.prior_latency_ms
    ));
    let price = match ranked.target.price_source {
        PriceSource::Configured => "configured price",
        PriceSource::Table { .. } => "built-in price table",
        PriceSource::FreeModel => "model marked free",
    };
    parts.push(format!(
        "expected cost ${:.6} ({price})",
        figures.expected_cost_usd
    ));
    let headroom = match ranked.snapshot.headroom {
        Some(_) => "measured from rate-limit headers and limits",
        None => "prior: nothing known, assumed free",
    };
    parts.push(format!("headroom {:.2} ({headroom})", figures.headroom));
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::compile_yaml;
    use crate::routing::{rank, LiveStats, RequestShape};
    use tokio::time::Instant;

    #[test]
    fn each_figure_says_whether_it_was_measured() {
        let yaml = concat!(
            "version: 1\n",
            "providers:\n",
            "  a: {kind: openai, base_url: 'http://127.0.0.1:1/v1', api_key: k}\n",
            "models:\n",
            "  m:\n",
            "    strategy: cost\n",
            "    targets:\n",
            "      - {provider: a, model: x, price: {input: 1, output: 2}}\n",
        );
        let policy = compile_yaml(yaml, &[]).unwrap();
        let model = &policy.models["m"];
        let stats = LiveStats::default();
        let shape = RequestShape::from_prompt_bytes(4000, None);
        let ranked = rank(model, None, &stats, &shape, Instant::now(), None);
        let text = decision(model.strategy, &ranked[0], 0);
        assert!(text.starts_with("#1 under `cost`"), "{text}");
        assert!(text.contains("(prior;"), "nothing measured yet: {text}");
        assert!(text.contains("configured price"), "{text}");
        assert!(text.contains("headroom 1.00 (prior"), "{text}");
        assert!(!text.contains("provisioned"), "{text}");
    }
}
