//! `models:` — strategies, targets (provider, upstream model or deployment, price,
//! limits) and fallbacks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::{limits, name_list, Ctx};
use crate::config::error::Problem;
use crate::config::policy::{
    Model, Price, PriceSource, Provider, ProviderKind, Strategy, Target, TargetId, Tier,
};
use crate::config::prices;
use crate::config::raw::{Entries, RawModel, RawPrice, RawStrategy, RawTarget, RawTier};

type Providers = BTreeMap<String, Arc<Provider>>;

pub(super) fn compile(
    ctx: &mut Ctx<'_>,
    raw: Option<Entries<RawModel>>,
    providers: &Providers,
) -> Result<BTreeMap<String, Arc<Model>>, Problem> {
    let entries = raw.map(|entries| entries.0).unwrap_or_default();
    // Fallbacks may name models defined further down the file.
    let names: BTreeSet<String> = entries.iter().map(|(name, _)| name.value.clone()).collect();
    let mut models = BTreeMap::new();
    for (name, raw) in entries {
        let model = model(ctx, &name, raw, providers, &names)?;
        if model
            .targets
            .iter()
            .all(|target| target.disabled_reason().is_some())
        {
            let consequence = match model.fallbacks.is_empty() {
                true => "requests for it fail until one is enabled",
                false => "only its fallbacks can serve it",
            };
            ctx.warnings.push(format!(
                "model {}: every target's provider is disabled, so {consequence}",
                model.name
            ));
        }
        models.insert(name.value, Arc::new(model));
    }
    if models.is_empty() {
        ctx.warnings
            .push("no models are defined: every request will get model_not_found".to_owned());
    }
    Ok(models)
}

fn model(
    ctx: &Ctx<'_>,
    name: &Spanned<String>,
    raw: RawModel,
    providers: &Providers,
    names: &BTreeSet<String>,
) -> Result<Model, Problem> {
    let path = format!("models.{}", name.value);
    if name.value.trim().is_empty() {
        return Err(Problem::spanned(
            name,
            "models: a model name cannot be empty",
        ));
    }
    let free = model_price_is_free(raw.price.as_ref(), &path)?;
    let routing = super::routing::routing_settings(ctx, &raw, &path)?;
    let placement =
        super::routing::placement(raw.regions.as_deref(), raw.clouds.as_deref(), &path)?;
    let responses = super::responses_options::responses_options(&raw, &path)?;
    let Some(raw_targets) = raw.targets else {
        return Err(Problem::spanned(
            name,
            format!("{path}: missing `targets:` (a list of at least one `- provider: …` entry)"),
        ));
    };
    if raw_targets.value.is_empty() {
        return Err(Problem::spanned(
            &raw_targets,
            format!("{path}.targets: a model needs at least one target"),
        ));
    }
    let mut targets: Vec<Arc<Target>> = Vec::with_capacity(raw_targets.value.len());
    for (index, raw_target) in raw_targets.value.iter().enumerate() {
        let target_path = format!("{path}.targets[{index}]");
        let target = target(ctx, raw_target, providers, free, &target_path)?;
        if let Some(earlier) = targets.iter().position(|t| t.id == target.id) {
            return Err(Problem::spanned(
                raw_target,
                format!(
                    "{target_path}: same provider and upstream model as targets[{earlier}] ({})",
                    target.id
                ),
            ));
        }
        targets.push(Arc::new(target));
    }
    Ok(Model {
        name: name.value.clone(),
        strategy: strategy(raw.strategy.as_ref()),
        targets,
        fallbacks: fallbacks(
            raw.fallbacks.as_deref().unwrap_or_default(),
            &name.value,
            names,
            &path,
        )?,
        max_output_tokens: max_output_tokens(raw.max_output_tokens.as_ref(), &path)?,
        first_byte_timeout: match &raw.first_byte_timeout {
            Some(value) => Some(ctx.duration(value, &format!("{path}.first_byte_timeout"))?),
            None => None,
        },
        routing,
        placement,
        resume_streams: raw.resume_streams.as_ref().is_some_and(|r| r.value),
        responses,
    })
}

fn strategy(raw: Option<&Spanned<RawStrategy>>) -> Strategy {
    match raw.map(|strategy| strategy.value) {
        None | Some(RawStrategy::Priority) => Strategy::Priority,
        Some(RawStrategy::Latency) => Strategy::Latency,
        Some(RawStrategy::Cost) => Strategy::Cost,
        Some(RawStrategy::Balanced) => Strategy::Balanced,
    }
}

/// Model-level `price:` only says `free`: prices themselves belong to targets.
fn model_price_is_free(raw: Option<&Spanned<String>>, path: &str) -> Result<bool, Problem> {
    match raw {
        None => Ok(false),
        Some(word) if word.value == "free" => Ok(true),
        Some(word) => Err(Problem::spanned(
            word,
            format!("{path}.price: a model's price can only be `free`; give input/output prices on each target"),
        )),
    }
}

fn target(
    ctx: &Ctx<'_>,
    raw: &Spanned<RawTarget>,
    providers: &Providers,
    model_is_free: bool,
    path: &str,
) -> Result<Target, Problem> {
    let provider_name = &raw.value.provider;
    let Some(provider) = providers.get(&provider_name.value) else {
        return Err(Problem::spanned(
            provider_name,
            format!(
                "{path}.provider: provider `{}` is not defined ({})",
                provider_name.value,
                name_list(providers.keys())
            ),
        ));
    };
    let upstream_value = upstream(raw, provider, path)?;
    let upstream_model = ctx.text(
        upstream_value,
        &format!("{path}.{}", upstream_key(provider)),
    )?;
    let price = price(raw, provider, &upstream_model, model_is_free, path)?;
    let price_source = price_source(raw, &upstream_model);
    let additional_model_request_fields = match &raw.value.additional_model_request_fields {
        None => None,
        Some(fields) if !matches!(provider.kind, ProviderKind::Bedrock(_)) => {
            return Err(Problem::spanned(
                fields,
                format!("{path}.additional_model_request_fields: only bedrock targets take model request fields"),
            ))
        }
        Some(fields) if !fields.value.is_object() => {
            return Err(Problem::spanned(
                fields,
                format!("{path}.additional_model_request_fields: must be a map"),
            ))
        }
        Some(fields) => Some(fields.value.clone()),
    };
    Ok(Target {
        additional_model_request_fields,
        id: TargetId::new(&provider.name, &upstream_model),
        provider: Arc::clone(provider),
        upstream_model,
        price,
        price_source,
        limits: limits(raw.value.limits.as_ref(), &format!("{path}.limits"))?,
        tier: tier(raw, provider, path)?,
    })
}

/// `tier:` is an Azure deployment property; other kinds have no such choice. Azure targets
/// default to standard so that the policy can always say which tier served.
fn tier(
    raw: &Spanned<RawTarget>,
    provider: &Provider,
    path: &str,
) -> Result<Option<Tier>, Problem> {
    let written = raw.value.tier.as_ref();
    match (&provider.kind, written) {
        (ProviderKind::Azure(_), None) => Ok(Some(Tier::Standard)),
        (ProviderKind::Azure(_), Some(tier)) => Ok(Some(match tier.value {
            RawTier::Provisioned => Tier::Provisioned,
            RawTier::Standard => Tier::Standard,
        })),
        (_, None) => Ok(None),
        (kind, Some(tier)) => Err(Problem::spanned(
            tier,
            format!(
                "{path}.tier: only azure targets have a tier (provider {} is of kind {})",
                provider.name,
                kind.label()
            ),
        )),
    }
}

/// Azure targets name a deployment (the name is the customer's own); the others a model id.
fn upstream_key(provider: &Provider) -> &'static str {
    provider.kind.unit().upstream_model_field()
}

fn upstream<'r>(
    raw: &'r Spanned<RawTarget>,
    provider: &Provider,
    path: &str,
) -> Result<&'r Spanned<String>, Problem> {
    let expected = upstream_key(provider);
    let (right, wrong_key, wrong) = match expected {
        "deployment" => (&raw.value.deployment, "model", &raw.value.model),
        _ => (&raw.value.model, "deployment", &raw.value.deployment),
    };
    if let Some(wrong) = wrong {
        return Err(Problem::spanned(
            wrong,
            format!(
                "{path}: {} targets name a `{expected}`, not a `{wrong_key}` (provider {} is of kind {})",
                provider.kind.label(),
                provider.name,
                provider.kind.label()
            ),
        ));
    }
    right.as_ref().ok_or_else(|| {
        Problem::spanned(
            raw,
            format!(
                "{path}: missing `{expected}:` (the upstream's name for the model on provider {})",
                provider.name
            ),
        )
    })
}

/// The target's own price, else the built-in table's, else free if the model says so.
fn price(
    raw: &Spanned<RawTarget>,
    provider: &Provider,
    upstream_model: &str,
    model_is_free: bool,
    path: &str,
) -> Result<Price, Problem> {
    if let Some(price) = &raw.value.price {
        return match &price.value {
            RawPrice::Free => Ok(Price::Free),
            RawPrice::PerMillion(table) => Ok(Price::PerMillion {
                input: usd(&table.input, path, "input")?,
                output: usd(&table.output, path, "output")?,
                cached_input: match &table.cached_input {
                    Some(cached) => Some(usd(cached, path, "cached_input")?),
                    None => None,
                },
                cache_write: match &table.cache_write {
                    Some(write) => Some(usd(write, path, "cache_write")?),
                    None => None,
                },
                cache_write_1h: match &table.cache_write_1h {
                    Some(write) => Some(usd(write, path, "cache_write_1h")?),
                    None => None,
                },
            }),
        };
    }
    let known = prices::lookup(upstream_model).map_err(|err| Problem::spanned(raw, err))?;
    match known {
        Some(price) => Ok(price),
        None if model_is_free => Ok(Price::Free),
        None => {
            let azure_hint = match provider.kind {
                ProviderKind::Azure(_) => " (an Azure deployment name is your own, so give the price of the model deployed under it)",
                _ => "",
            };
            Err(Problem::spanned(
                raw,
                format!(
                    "{path}: no price is known for `{upstream_model}` on provider {}{azure_hint}; add `price: {{ input: <USD per 1M input tokens>, output: <USD per 1M output tokens> }}` to the target, or `price: free`",
                    provider.name
                ),
            ))
        }
    }
}

/// Where [`price`] found the target's price (it has already succeeded).
fn price_source(raw: &Spanned<RawTarget>, upstream_model: &str) -> PriceSource {
    if raw.value.price.is_some() {
        return PriceSource::Configured;
    }
    match prices::lookup_entry(upstream_model) {
        Ok(Some((entry, _))) => PriceSource::Table { entry },
        Ok(None) | Err(_) => PriceSource::FreeModel,
    }
}

fn usd(value: &Spanned<f64>, path: &str, field: &str) -> Result<f64, Problem> {
    // Costs are computed from the price in integer nano-dollars (docs/spend.md, "Units").
    let representable = crate::metering::NanoUsd::from_usd_f64(value.value).is_some();
    match representable && value.value >= 0.0 {
        true => Ok(value.value),
        false => Err(Problem::spanned(
            value,
            format!("{path}.price.{field} must be a number of USD per million tokens, 0 or more"),
        )),
    }
}

fn fallbacks(
    raw: &[Spanned<String>],
    model: &str,
    names: &BTreeSet<String>,
    path: &str,
) -> Result<Vec<String>, Problem> {
    let mut fallbacks: Vec<String> = Vec::with_capacity(raw.len());
    for fallback in raw {
        let name = &fallback.value;
        let problem = if name == model {
            Some("a model cannot fall back to itself".to_owned())
        } else if !names.contains(name) {
            Some(format!(
                "model `{name}` is not defined ({})",
                name_list(names.iter())
            ))
        } else if fallbacks.contains(name) {
            Some(format!("`{name}` is listed twice"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Problem::spanned(
                fallback,
                format!("{path}.fallbacks: {problem}"),
            ));
        }
        fallbacks.push(name.clone());
    }
    Ok(fallbacks)
}

fn max_output_tokens(raw: Option<&Spanned<i64>>, path: &str) -> Result<Option<u32>, Problem> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match u32::try_from(raw.value) {
        Ok(tokens) if tokens > 0 => Ok(Some(tokens)),
        _ => Err(Problem::spanned(
            raw,
            format!(
                "{path}.max_output_tokens must be a whole number from 1 to {}",
                u32::MAX
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::testing::{compile_yaml, error_of};
    use crate::config::{ConfigError, Policy};

    const PROVIDERS: &str = "version: 1\nproviders:\n  openai: {kind: openai, api_key: k}\n  azure: {kind: azure, endpoint: 'https://c.openai.azure.com', api_key: k, api_version: v1}\n  aws: {kind: bedrock, region: us-east-1}\nmodels:\n";

    fn models(yaml: &str) -> Result<Policy, ConfigError> {
        compile_yaml(&format!("{PROVIDERS}{yaml}"), &[])
    }

    /// The error for a `models:` section; its first line is line 7 of the file.
    fn models_error(yaml: &str) -> String {
        error_of(&format!("{PROVIDERS}{yaml}"), &[])
    }

    fn target_of(policy: &Policy, model: &str, index: usize) -> Option<Arc<Target>> {
        policy.models.get(model)?.targets.get(index).cloned()
    }

    #[test]
    fn a_model_with_targets_strategy_and_options() -> Result<(), ConfigError> {
        let policy = models(concat!(
            "  fast:\n",
            "    strategy: latency\n",
            "    max_output_tokens: 2048\n",
            "    first_byte_timeout: 90s\n",
            "    resume_streams: true\n",
            "    fallbacks: [cheap]\n",
            "    targets:\n",
            "      - {provider: azure, deployment: prod-4o, price: {input: 2.5, output: 10, cached_input: 1.25}, limits: {rpm: 600, tpm: 400000}}\n",
            "      - {provider: openai, model: gpt-4o}\n",
            "      - {provider: aws, model: us.anthropic.claude-sonnet-4-5-20250929-v1:0}\n",
            "  cheap:\n",
            "    targets: [{provider: openai, model: gpt-4o-mini}]\n",
        ))?;
        let fast = policy.models.get("fast").cloned();
        let fast = fast.as_deref();
        assert_eq!(fast.map(|m| m.strategy), Some(Strategy::Latency));
        assert_eq!(fast.and_then(|m| m.max_output_tokens), Some(2048));
        assert_eq!(
            fast.and_then(|m| m.first_byte_timeout),
            Some(Duration::from_secs(90))
        );
        assert_eq!(fast.map(|m| m.resume_streams), Some(true));
        let cheap = policy.models.get("cheap");
        assert_eq!(cheap.map(|m| m.resume_streams), Some(false));
        assert_eq!(
            fast.map(|m| m.fallbacks.clone()),
            Some(vec!["cheap".to_owned()])
        );
        let ids: Vec<String> = fast
            .map(|m| m.targets.iter().map(|t| t.id.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(
            ids,
            [
                "azure/prod-4o",
                "openai/gpt-4o",
                "aws/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
            ]
        );

        let azure = target_of(&policy, "fast", 0);
        assert_eq!(
            azure.as_ref().map(|t| t.upstream_model.as_str()),
            Some("prod-4o")
        );
        assert_eq!(
            azure.as_ref().map(|t| t.price),
            Some(Price::PerMillion {
                input: 2.5,
                output: 10.0,
                cached_input: Some(1.25),
                cache_write: None,
                cache_write_1h: None,
            })
        );
        assert_eq!(
            azure.and_then(|t| t.limits),
            Some(crate::config::Limits {
                rpm: Some(600),
                tpm: Some(400_000)
            })
        );
        let table = target_of(&policy, "fast", 1).map(|t| t.price.per_million());
        assert_eq!(
            table,
            Some((2.5, 10.0)),
            "gpt-4o is priced from the built-in table"
        );
        let profile = target_of(&policy, "fast", 2).map(|t| t.price.per_million());
        assert_eq!(
            profile,
            Some((3.3, 16.5)),
            "an inference profile is priced as its base model"
        );
        assert_eq!(
            target_of(&policy, "fast", 2).map(|t| t.price_source.clone()),
            Some(PriceSource::Table {
                entry: "anthropic.claude-sonnet-4-5-20250929-v1:0".to_owned()
            }),
            "--check names the entry that priced it"
        );
        assert_eq!(
            target_of(&policy, "fast", 1).map(|t| t.price_source.clone()),
            Some(PriceSource::Table {
                entry: "gpt-4o".to_owned()
            })
        );
        let cheap = policy.models.get("cheap").map(|m| m.strategy);
        assert_eq!(cheap, Some(Strategy::Priority), "priority is the default");
        Ok(())
    }

    #[test]
    fn an_unknown_provider_is_named_with_the_defined_ones() {
        let err =
            models_error("  m:\n    targets:\n      - provider: azur\n        deployment: d\n");
        assert_eq!(err, "routes.yaml:9:19: models.m.targets[0].provider: provider `azur` is not defined (defined: aws, azure, openai)");
    }

    #[test]
    fn azure_targets_have_a_tier_defaulting_to_standard() -> Result<(), ConfigError> {
        let policy = models("  m:\n    targets:\n      - {provider: azure, deployment: ptu, tier: provisioned, price: free}\n      - {provider: azure, deployment: paygo, price: free}\n      - {provider: openai, model: gpt-4o}\n")?;
        let tiers: Vec<_> = policy.models["m"].targets.iter().map(|t| t.tier).collect();
        assert_eq!(
            tiers,
            vec![Some(Tier::Provisioned), Some(Tier::Standard), None]
        );
        let err = models_error(
            "  m:\n    targets:\n      - {provider: openai, model: gpt-4o, tier: provisioned}\n",
        );
        assert!(err.contains("only azure targets have a tier"), "{err}");
        let err = models_error("  m:\n    targets:\n      - {provider: azure, deployment: d, tier: ptu, price: free}\n");
        assert!(err.contains("ptu"), "{err}");
        Ok(())
    }

    #[test]
    fn a_price_may_give_the_1h_cache_write_rate() -> Result<(), ConfigError> {
        let policy = models("  m:\n    targets:\n      - {provider: openai, model: x, price: {input: 3, output: 15, cache_write: 3.75, cache_write_1h: 6}}\n")?;
        assert_eq!(
            policy.models["m"].targets[0].price,
            Price::PerMillion {
                input: 3.0,
                output: 15.0,
                cached_input: None,
                cache_write: Some(3.75),
                cache_write_1h: Some(6.0),
            }
        );
        let err = models_error("  m:\n    targets:\n      - {provider: openai, model: x, price: {input: 3, output: 15, cache_write_1h: -1}}\n");
        assert!(err.contains("cache_write_1h"), "{err}");
        Ok(())
    }

    #[test]
    fn azure_targets_use_deployment_and_the_others_model() {
        let err = models_error("  m:\n    targets:\n      - {provider: azure, model: gpt-4o}\n");
        assert!(err.starts_with("routes.yaml:9:34: models.m.targets[0]: azure targets name a `deployment`, not a `model`"), "{err}");
        let err =
            models_error("  m:\n    targets:\n      - {provider: openai, deployment: gpt-4o}\n");
        assert!(err.starts_with("routes.yaml:9:40: models.m.targets[0]: openai targets name a `model`, not a `deployment`"), "{err}");
        let err = models_error("  m:\n    targets:\n      - {provider: aws}\n");
        assert!(
            err.starts_with("routes.yaml:9:9: models.m.targets[0]: missing `model:`"),
            "{err}"
        );
    }

    #[test]
    fn targets_are_required_and_unique() {
        let err = models_error("  m:\n    strategy: cost\n");
        assert!(
            err.starts_with("routes.yaml:7:3: models.m: missing `targets:`"),
            "{err}"
        );
        let err = models_error("  m:\n    targets: []\n");
        assert!(
            err.starts_with(
                "routes.yaml:8:14: models.m.targets: a model needs at least one target"
            ),
            "{err}"
        );
        let err = models_error("  m:\n    targets:\n      - {provider: openai, model: gpt-4o}\n      - {provider: openai, model: gpt-4o, price: free}\n");
        assert!(err.starts_with("routes.yaml:10:9: models.m.targets[1]: same provider and upstream model as targets[0] (openai/gpt-4o)"), "{err}");
    }

    #[test]
    fn an_unpriced_target_is_an_error_that_says_how_to_price_it() {
        let err =
            models_error("  m:\n    targets:\n      - {provider: azure, deployment: my-prod}\n");
        assert!(err.starts_with("routes.yaml:9:9: models.m.targets[0]: no price is known for `my-prod` on provider azure (an Azure deployment name is your own"), "{err}");
        assert!(err.contains("add `price: { input: <USD per 1M input tokens>, output: <USD per 1M output tokens> }` to the target, or `price: free`"), "{err}");
    }

    #[test]
    fn an_azure_deployment_named_like_a_known_model_takes_its_price() -> Result<(), ConfigError> {
        let policy = models("  m:\n    targets: [{provider: azure, deployment: gpt-4o-mini}]\n")?;
        assert_eq!(
            target_of(&policy, "m", 0).map(|t| t.price.per_million()),
            Some((0.15, 0.6))
        );
        Ok(())
    }

    #[test]
    fn model_level_free_covers_only_unpriced_targets() -> Result<(), ConfigError> {
        let policy = models("  local:\n    price: free\n    targets:\n      - {provider: openai, model: llama-local}\n      - {provider: openai, model: gpt-4o-mini}\n      - {provider: aws, model: x.y, price: {input: 1, output: 2}}\n")?;
        assert_eq!(
            target_of(&policy, "local", 0).map(|t| t.price),
            Some(Price::Free)
        );
        assert_eq!(
            target_of(&policy, "local", 1).map(|t| t.price.per_million()),
            Some((0.15, 0.6))
        );
        assert_eq!(
            target_of(&policy, "local", 2).map(|t| t.price.per_million()),
            Some((1.0, 2.0))
        );
        let err = models_error("  m:\n    price: {input: 1, output: 2}\n    targets: [{provider: openai, model: gpt-4o}]\n");
        assert!(err.starts_with("routes.yaml:8:12: "), "{err}");
        let err = models_error(
            "  m:\n    price: cheap\n    targets: [{provider: openai, model: gpt-4o}]\n",
        );
        assert!(
            err.starts_with("routes.yaml:8:12: models.m.price: a model's price can only be `free`"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn target_price_free_and_bad_prices() -> Result<(), ConfigError> {
        let policy = models("  m:\n    targets: [{provider: openai, model: mine, price: free}]\n")?;
        assert_eq!(
            target_of(&policy, "m", 0).map(|t| t.price),
            Some(Price::Free)
        );
        let err = models_error(
            "  m:\n    targets: [{provider: openai, model: mine, price: {input: -1, output: 2}}]\n",
        );
        assert!(err.starts_with("routes.yaml:8:62: models.m.targets[0].price.input must be a number of USD per million tokens"), "{err}");
        Ok(())
    }

    #[test]
    fn fallbacks_must_name_other_defined_models() {
        let base = "    targets: [{provider: openai, model: gpt-4o}]\n";
        let err = models_error(&format!("  m:\n{base}    fallbacks: [n]\n"));
        assert_eq!(
            err,
            "routes.yaml:9:17: models.m.fallbacks: model `n` is not defined (defined: m)"
        );
        let err = models_error(&format!("  m:\n{base}    fallbacks: [m]\n"));
        assert_eq!(
            err,
            "routes.yaml:9:17: models.m.fallbacks: a model cannot fall back to itself"
        );
        let err = models_error(&format!("  m:\n{base}    fallbacks: [n, n]\n  n:\n{base}"));
        assert_eq!(
            err,
            "routes.yaml:9:20: models.m.fallbacks: `n` is listed twice"
        );
        // A fallback may be defined further down, and cycles between models are allowed:
        // attempts are bounded per request anyway.
        let ok = models_error(&format!(
            "  m:\n{base}    fallbacks: [n]\n  n:\n{base}    fallbacks: [m]\n"
        ));
        assert_eq!(ok, "<compiled without error>");
    }

    #[test]
    fn bad_model_options_point_at_themselves() {
        let base = "    targets: [{provider: openai, model: gpt-4o}]\n";
        let err = models_error(&format!("  m:\n{base}    max_output_tokens: 0\n"));
        assert!(
            err.starts_with("routes.yaml:9:24: models.m.max_output_tokens must be a whole number"),
            "{err}"
        );
        let err = models_error(&format!("  m:\n{base}    first_byte_timeout: soon\n"));
        assert!(
            err.starts_with(
                "routes.yaml:9:25: models.m.first_byte_timeout: `soon` is not a duration"
            ),
            "{err}"
        );
        let err = models_error(&format!("  m:\n{base}    strategy: fastest\n"));
        assert!(err.starts_with("routes.yaml:9:15: unknown variant `fastest`, expected one of priority, latency, cost, balanced"), "{err}");
        let err = models_error(
            "  m:\n    targets: [{provider: openai, model: gpt-4o, limits: {rpm: 0}}]\n",
        );
        assert!(
            err.contains("models.m.targets[0].limits.rpm must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn a_model_whose_providers_are_all_disabled_is_a_warning() -> Result<(), ConfigError> {
        let yaml = "version: 1\nproviders:\n  openai: {kind: openai, api_key: '${OPENAI_API_KEY:-}'}\nmodels:\n  m:\n    targets: [{provider: openai, model: gpt-4o}]\n";
        let policy = compile_yaml(yaml, &[])?;
        assert!(policy.warnings.contains(&"model m: every target's provider is disabled, so requests for it fail until one is enabled".to_owned()));
        assert!(policy
            .models
            .get("m")
            .and_then(|m| m.targets.first())
            .is_some_and(|t| t.disabled_reason().is_some()));
        Ok(())
    }

    #[test]
    fn additional_model_request_fields_only_on_bedrock_targets() -> Result<(), ConfigError> {
        let policy = models("  m:\n    targets:\n      - { provider: aws, model: anthropic.claude-3-haiku-20240307-v1:0, additional_model_request_fields: { top_k: 50, thinking: { type: enabled } } }\n")?;
        let target = target_of(&policy, "m", 0).expect("target");
        assert_eq!(
            target.additional_model_request_fields,
            Some(serde_json::json!({"top_k": 50, "thinking": {"type": "enabled"}}))
        );
        let err = models_error("  m:\n    targets:\n      - { provider: openai, model: x, price: free, additional_model_request_fields: { top_k: 1 } }\n");
        assert!(err.contains("only bedrock targets"), "{err}");
        Ok(())
    }
}
