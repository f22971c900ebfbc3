//! The built-in price table: list prices of well-known upstream models, gathered from
//! each provider kind's own table (`providers/<kind>/prices.json`, through the registry).
//!
//! Used only when a target gives no `price:` of its own. Keyed by the upstream's model
//! id (OpenAI model name, Bedrock model id); an Azure deployment name matches only if
//! it happens to equal a key.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::policy::Price;

use crate::providers::registry;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    input: f64,
    output: f64,
    #[serde(default)]
    cached_input: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    cache_write_1h: Option<f64>,
}

type Table = HashMap<String, Price>;

/// The table's price for an upstream model id: the exact id, else the id a kind maps it
/// to (a Bedrock inference profile's base model). `Err` only if an embedded table is corrupt.
pub(crate) fn lookup(upstream_model: &str) -> Result<Option<Price>, String> {
    let table = table()?;
    if let Some(price) = table.get(upstream_model) {
        return Ok(Some(*price));
    }
    let base = registry::kinds()
        .iter()
        .find_map(|kind| (kind.price_alias)(upstream_model));
    Ok(base.and_then(|id| table.get(id)).copied())
}

/// Parsed once per process; the embedded JSON cannot change while it runs.
fn table() -> Result<&'static Table, String> {
    static TABLE: OnceLock<Result<Table, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut table = Table::new();
            for kind in registry::kinds() {
                let part = parse(kind.prices).map_err(|err| format!("{}: {err}", kind.name))?;
                table.extend(part);
            }
            Ok(table)
        })
        .as_ref()
        .map_err(|err| format!("the built-in price table is invalid: {err}"))
}

/// Keys starting with `_` are notes (`_source`, `_as_of`), not models.
fn parse(json: &str) -> Result<Table, String> {
    let raw: HashMap<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|err| err.to_string())?;
    raw.into_iter()
        .filter(|(key, _)| !key.starts_with('_'))
        .map(|(key, value)| {
            let entry: Entry =
                serde_json::from_value(value).map_err(|err| format!("{key}: {err}"))?;
            let price = Price::PerMillion {
                input: entry.input,
                output: entry.output,
                cached_input: entry.cached_input,
                cache_write: entry.cache_write,
                cache_write_1h: entry.cache_write_1h,
            };
            Ok((key, price))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_million(model: &str) -> Option<(f64, f64)> {
        lookup(model)
            .ok()
            .flatten()
            .map(|price| price.per_million())
    }

    #[test]
    fn embedded_table_parses_and_has_its_notes() {
        let table = table().map(|table| table.len()).unwrap_or(0);
        assert_eq!(table, 35, "one entry per model the tables promise");
        for kind in registry::kinds().iter().filter(|kind| kind.prices != "{}") {
            let raw: HashMap<String, serde_json::Value> =
                serde_json::from_str(kind.prices).unwrap_or_default();
            assert!(
                raw.contains_key("_source") && raw.contains_key("_as_of"),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn every_entry_is_a_sane_price() {
        for (model, price) in table().into_iter().flatten() {
            let (input, output) = price.per_million();
            assert!(input.is_finite() && input > 0.0, "{model}");
            assert!(output.is_finite() && output >= 0.0, "{model}");
        }
    }

    #[test]
    fn exact_ids_are_found() {
        assert_eq!(per_million("gpt-4o-mini"), Some((0.15, 0.6)));
        assert_eq!(per_million("gpt-5"), Some((1.25, 10.0)));
        assert_eq!(per_million("text-embedding-3-small"), Some((0.02, 0.0)));
        assert_eq!(
            per_million("anthropic.claude-sonnet-4-5-20250929-v1:0"),
            Some((3.0, 15.0))
        );
    }

    #[test]
    fn inference_profiles_fall_back_to_the_base_model() {
        let base = per_million("anthropic.claude-sonnet-4-5-20250929-v1:0");
        for prefix in ["us.", "eu.", "apac.", "global."] {
            let id = format!("{prefix}anthropic.claude-sonnet-4-5-20250929-v1:0");
            assert_eq!(per_million(&id), base, "{id}");
        }
    }

    #[test]
    fn unknown_ids_and_notes_have_no_price() {
        assert_eq!(per_million("my-azure-deployment"), None);
        assert_eq!(per_million("_source"), None);
        assert_eq!(per_million("xx.gpt-4o"), None);
    }

    #[test]
    fn anthropic_ids_dated_or_not_have_the_familys_price_with_both_cache_writes() {
        assert_eq!(per_million("claude-sonnet-4-5"), Some((3.0, 15.0)));
        assert_eq!(per_million("claude-sonnet-4-5-20250929"), Some((3.0, 15.0)));
        assert_eq!(per_million("claude-3-5-haiku-latest"), Some((0.8, 4.0)));
        assert_eq!(per_million("claude-unknown-20250101"), None);
        let writes = |model| match lookup(model).ok().flatten() {
            Some(Price::PerMillion {
                cache_write,
                cache_write_1h,
                ..
            }) => (cache_write, cache_write_1h),
            _ => (None, None),
        };
        assert_eq!(
            writes("claude-opus-4-1-20250805"),
            (Some(18.75), Some(30.0))
        );
        assert_eq!(
            writes("global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
            (Some(3.75), Some(6.0))
        );
    }

    #[test]
    fn cached_input_is_carried() {
        let price = lookup("gpt-4o").ok().flatten();
        let cached = match price {
            Some(Price::PerMillion { cached_input, .. }) => cached_input,
            _ => None,
        };
        assert_eq!(cached, Some(1.25));
    }
}
