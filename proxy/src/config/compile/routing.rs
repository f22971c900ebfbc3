//! A model's routing knobs: the `max_ttft` SLO, `balanced` weights and `health` thresholds.

use super::Ctx;
use crate::config::error::Problem;
use std::collections::BTreeSet;

use crate::config::policy::{HealthSettings, HedgeAfter, Placement, RoutingSettings, Weights};
use crate::config::raw::{RawModel, RawWeights};

pub(crate) fn routing_settings(
    ctx: &Ctx<'_>,
    raw: &RawModel,
    path: &str,
) -> Result<RoutingSettings, Problem> {
    let max_ttft = match &raw.max_ttft {
        Some(value) => Some(ctx.duration(value, &format!("{path}.max_ttft"))?),
        None => None,
    };
    let weights = match &raw.weights {
        Some(raw) => weights(raw, path)?,
        None => Weights::default(),
    };
    let defaults = HealthSettings::default();
    let health = match &raw.health {
        None => defaults,
        Some(h) => {
            let what = |field: &str| format!("{path}.health.{field}");
            let failures = match &h.failures {
                Some(n) if (1..=1000).contains(&n.value) => n.value as u32,
                Some(n) => {
                    return Err(Problem::spanned(
                        n,
                        format!("{} must be a whole number from 1 to 1000", what("failures")),
                    ))
                }
                None => defaults.failures,
            };
            let settings = HealthSettings {
                failures,
                open_for: ctx.duration_or(
                    h.open_for.as_ref(),
                    &what("open_for"),
                    defaults.open_for,
                )?,
                cooldown_initial: ctx.duration_or(
                    h.cooldown.as_ref(),
                    &what("cooldown"),
                    defaults.cooldown_initial,
                )?,
                cooldown_max: ctx.duration_or(
                    h.max_cooldown.as_ref(),
                    &what("max_cooldown"),
                    defaults.cooldown_max,
                )?,
            };
            if settings.cooldown_max < settings.cooldown_initial {
                if let Some(value) = &h.max_cooldown {
                    return Err(Problem::spanned(
                        value,
                        format!("{} must not be shorter than cooldown", what("max_cooldown")),
                    ));
                }
            }
            settings
        }
    };
    let hedge_after = match &raw.hedge_after {
        None => None,
        Some(value) if value.value.trim() == "p95" => Some(HedgeAfter::P95),
        Some(value) => Some(HedgeAfter::After(
            ctx.duration(value, &format!("{path}.hedge_after (`p95` or a duration)"))?,
        )),
    };
    Ok(RoutingSettings {
        max_ttft,
        weights,
        health,
        hedge_after,
    })
}

/// `regions:` / `clouds:` allow-lists (non-empty lists of names).
pub(crate) fn placement(
    regions: Option<&[serde_saphyr::Spanned<String>]>,
    clouds: Option<&[serde_saphyr::Spanned<String>]>,
    path: &str,
) -> Result<Placement, Problem> {
    let list = |values: Option<&[serde_saphyr::Spanned<String>]>, field: &str| {
        let Some(values) = values else {
            return Ok(None);
        };
        let mut set = BTreeSet::new();
        for value in values {
            let name = value.value.trim();
            if name.is_empty() {
                return Err(Problem::spanned(
                    value,
                    format!("{path}.{field}: an entry is empty"),
                ));
            }
            set.insert(name.to_owned());
        }
        if set.is_empty() {
            return Err(Problem::at(
                serde_saphyr::Location::UNKNOWN,
                format!(
                    "{path}.{field}: an empty list would allow nothing; remove it to allow any"
                ),
            ));
        }
        Ok(Some(set))
    };
    Ok(Placement {
        regions: list(regions, "regions")?,
        clouds: list(clouds, "clouds")?,
    })
}

fn weights(raw: &RawWeights, path: &str) -> Result<Weights, Problem> {
    let defaults = Weights::default();
    let weight = |value: &Option<serde_saphyr::Spanned<f64>>, name: &str, default: f64| match value
    {
        None => Ok(default),
        Some(w) if w.value.is_finite() && w.value >= 0.0 => Ok(w.value),
        Some(w) => Err(Problem::spanned(
            w,
            format!("{path}.weights.{name} must be a number ≥ 0"),
        )),
    };
    let weights = Weights {
        latency: weight(&raw.latency, "latency", defaults.latency)?,
        cost: weight(&raw.cost, "cost", defaults.cost)?,
        headroom: weight(&raw.headroom, "headroom", defaults.headroom)?,
    };
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use crate::config::{compile_str, HedgeAfter};
    use std::path::Path;
    use std::time::Duration;

    fn compile(model_extra: &str) -> Result<crate::config::Policy, crate::config::ConfigError> {
        let text = format!(
            "version: 1\nproviders:\n  p: {{ kind: openai, base_url: \"http://x/v1\" }}\nmodels:\n  m:\n    targets: [ {{ provider: p, model: a, price: free }} ]\n{model_extra}"
        );
        compile_str(&text, Path::new("routes.yaml"), &|_| None)
    }

    #[test]
    fn defaults_follow_the_design() {
        let policy = compile("").unwrap();
        let routing = policy.models["m"].routing;
        assert_eq!(routing.health.failures, 5);
        assert_eq!(routing.health.open_for, Duration::from_secs(30));
        assert_eq!(routing.health.cooldown_initial, Duration::from_secs(1));
        assert_eq!(routing.max_ttft, None);
    }

    #[test]
    fn knobs_are_read() {
        let policy = compile(
            "    max_ttft: 800ms\n    weights: { latency: 2, cost: 0.5 }\n    health: { failures: 3, open_for: 10s, cooldown: 2s, max_cooldown: 20s }\n",
        )
        .unwrap();
        let routing = policy.models["m"].routing;
        assert_eq!(routing.max_ttft, Some(Duration::from_millis(800)));
        assert_eq!(
            (
                routing.weights.latency,
                routing.weights.cost,
                routing.weights.headroom
            ),
            (2.0, 0.5, 1.0)
        );
        assert_eq!(routing.health.failures, 3);
        assert_eq!(routing.health.cooldown_max, Duration::from_secs(20));
        let hedged = compile("    hedge_after: p95\n").unwrap();
        assert_eq!(
            hedged.models["m"].routing.hedge_after,
            Some(HedgeAfter::P95)
        );
        let fixed = compile("    hedge_after: 300ms\n").unwrap();
        assert_eq!(
            fixed.models["m"].routing.hedge_after,
            Some(HedgeAfter::After(Duration::from_millis(300)))
        );
        assert!(compile("    hedge_after: soon\n").is_err());
    }

    #[test]
    fn a_team_may_ask_for_the_route_header_on_every_answer() {
        let text = "version: 1\nproviders:\n  p: { kind: openai, base_url: \"http://x/v1\" }\nmodels:\n  m:\n    targets: [ { provider: p, model: a, price: free } ]\nteams:\n  ops: { keys: [], debug: true }\n  app: { keys: [] }\n";
        let policy = compile_str(text, Path::new("routes.yaml"), &|_| None).unwrap();
        assert!(policy.teams["ops"].debug);
        assert!(!policy.teams["app"].debug);
    }

    #[test]
    fn bad_knobs_are_errors_with_positions() {
        let err = compile("    health: { failures: 0 }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("routes.yaml:7:") && err.contains("health.failures"),
            "{err}"
        );
        let err = compile("    weights: { cost: -1 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("weights.cost"), "{err}");
        let err = compile("    health: { cooldown: 5s, max_cooldown: 1s }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_cooldown"), "{err}");
    }
}
