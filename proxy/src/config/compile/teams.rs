//! `teams:` — hashed client keys, model allow-lists, budgets and rate limits.
//!
//! A key is only ever stored as its SHA-256. A plain key in the file is refused, and
//! no message here ever repeats a key as written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::{limits, name_list, Ctx};
use crate::config::error::Problem;
use crate::config::policy::{Budget, BudgetPeriod, KeyOwner, Model, Team};
use crate::config::raw::{Entries, RawBudget, RawPeriod, RawTeam};

const KEY_PREFIX: &str = "sha256:";
/// Hex characters of a key's hash shown in its id (`team#1a2b3c4d`).
const KEY_ID_HEX_LEN: usize = 8;

type Teams = BTreeMap<String, Arc<Team>>;
type KeyHash = [u8; 32];
type Keys = HashMap<KeyHash, KeyOwner>;
/// A key's hash and the value it was written as (for positions).
type WrittenKey<'r> = (KeyHash, &'r Spanned<String>);

pub(super) fn compile(
    ctx: &mut Ctx<'_>,
    raw: Option<Entries<RawTeam>>,
    models: &BTreeMap<String, Arc<Model>>,
) -> Result<(Teams, Keys), Problem> {
    let mut teams = Teams::new();
    let mut keys = Keys::new();
    for (name, raw) in raw.map(|entries| entries.0).unwrap_or_default() {
        let path = format!("teams.{}", name.value);
        if name.value.trim().is_empty() {
            return Err(Problem::spanned(
                &name,
                "teams: a team name cannot be empty",
            ));
        }
        let hashes = key_hashes(ctx, raw.keys.as_deref().unwrap_or_default(), &path)?;
        if hashes.is_empty() {
            ctx.warnings.push(format!(
                "team {} has no keys, so no request can use it",
                name.value
            ));
        }
        let team = Arc::new(team(&name.value, &raw, models, &path)?);
        for (hash, written) in hashes {
            add_key(&mut keys, hash, &team, written, &path)?;
        }
        teams.insert(name.value, team);
    }
    if teams.is_empty() {
        ctx.warnings.push(
            "no teams are defined: every request will be refused with invalid_api_key".to_owned(),
        );
    }
    Ok((teams, keys))
}

fn team(
    name: &str,
    raw: &RawTeam,
    models: &BTreeMap<String, Arc<Model>>,
    path: &str,
) -> Result<Team, Problem> {
    let allowed = match &raw.models {
        Some(list) => Some(allow_list(list, models, path)?),
        None => None,
    };
    let budget = match &raw.budget {
        Some(budget) => Some(budget_of(budget, path)?),
        None => None,
    };
    let alert_at = match &raw.alert_at {
        Some(alert_at) => Some(alert_fraction(alert_at, budget.is_some(), path)?),
        None => None,
    };
    Ok(Team {
        name: name.to_owned(),
        models: allowed,
        budget,
        alert_at,
        limits: limits(raw.limits.as_ref(), &format!("{path}.limits"))?,
        placement: super::routing::placement(raw.regions.as_deref(), raw.clouds.as_deref(), path)?,
        debug: raw.debug.unwrap_or(false),
    })
}

/// Each key's hash, with where it was written (for duplicate errors).
fn key_hashes<'r>(
    ctx: &Ctx<'_>,
    raw: &'r [Spanned<String>],
    path: &str,
) -> Result<Vec<WrittenKey<'r>>, Problem> {
    raw.iter()
        .enumerate()
        .map(|(index, written)| {
            let what = format!("{path}.keys[{index}]");
            let value = ctx.text(written, &what)?;
            let hash = parse_key_hash(&value)
                .map_err(|err| Problem::spanned(written, format!("{what}: {err}")))?;
            Ok((hash, written))
        })
        .collect()
}

/// `sha256:<64 hex>` → the 32-byte hash. Errors describe the value, never repeat it.
fn parse_key_hash(value: &str) -> Result<KeyHash, String> {
    let Some(hex_part) = value.strip_prefix(KEY_PREFIX) else {
        return Err("keys are stored hashed, not in plain text: replace this key with the output of `printf %s 'THE-KEY' | sha256sum`, written as sha256:<hex>".to_owned());
    };
    let mut hash = [0u8; 32];
    match hex::decode_to_slice(hex_part, &mut hash) {
        Ok(()) => Ok(hash),
        Err(_) => Err(format!(
            "`sha256:` must be followed by 64 hex characters (found {} characters); hash the key with `printf %s 'THE-KEY' | sha256sum`",
            hex_part.chars().count()
        )),
    }
}

fn add_key(
    keys: &mut Keys,
    hash: KeyHash,
    team: &Arc<Team>,
    written: &Spanned<String>,
    path: &str,
) -> Result<(), Problem> {
    if let Some(owner) = keys.get(&hash) {
        let message = match owner.team.name == team.name {
            true => format!("{path}.keys: this key is listed twice"),
            false => format!(
                "{path}.keys: this key already belongs to team {}; a key can belong to one team only",
                owner.team.name
            ),
        };
        return Err(Problem::spanned(written, message));
    }
    let key_id = format!("{}#{}", team.name, hex::encode(&hash[..KEY_ID_HEX_LEN / 2]));
    keys.insert(
        hash,
        KeyOwner {
            team: Arc::clone(team),
            key_id,
        },
    );
    Ok(())
}

fn allow_list(
    list: &[Spanned<String>],
    models: &BTreeMap<String, Arc<Model>>,
    path: &str,
) -> Result<BTreeSet<String>, Problem> {
    list.iter()
        .map(|model| match models.contains_key(&model.value) {
            true => Ok(model.value.clone()),
            false => Err(Problem::spanned(
                model,
                format!(
                    "{path}.models: model `{}` is not defined ({})",
                    model.value,
                    name_list(models.keys())
                ),
            )),
        })
        .collect()
}

fn budget_of(raw: &RawBudget, path: &str) -> Result<Budget, Problem> {
    let usd = match crate::metering::NanoUsd::from_usd_f64(raw.usd.value) {
        Some(usd) if raw.usd.value >= 0.0 => usd,
        _ => {
            return Err(Problem::spanned(
                &raw.usd,
                format!("{path}.budget.usd must be a number of USD, 0 or more (at most 9 billion)"),
            ))
        }
    };
    let period = match raw.period {
        Some(RawPeriod::Daily) => BudgetPeriod::Daily,
        Some(RawPeriod::Weekly) => BudgetPeriod::Weekly,
        Some(RawPeriod::Monthly) | None => BudgetPeriod::Monthly,
    };
    Ok(Budget { usd, period })
}

fn alert_fraction(raw: &Spanned<f64>, has_budget: bool, path: &str) -> Result<f64, Problem> {
    if !has_budget {
        return Err(Problem::spanned(
            raw,
            format!("{path}.alert_at is a fraction of the budget, so it needs `budget:`"),
        ));
    }
    match raw.value > 0.0 && raw.value <= 1.0 {
        true => Ok(raw.value),
        false => Err(Problem::spanned(
            raw,
            format!("{path}.alert_at must be a fraction above 0 and at most 1 (e.g. 0.8 for 80%)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{compile_yaml, error_of};
    use crate::config::{ConfigError, Limits, Policy};

    /// sha256("password"), as in docs/configuration.md.
    const HASH: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    const OTHER: &str = "8edd8fc603d1de18ee8dcf261109b9486994e9fd6b674a0177e29b88128a7ef3";
    const HEAD: &str = "version: 1\nproviders:\n  openai: {kind: openai}\nmodels:\n  a: {targets: [{provider: openai, model: gpt-4o}]}\n  b: {targets: [{provider: openai, model: gpt-4o-mini}]}\nteams:\n";

    fn teams(yaml: &str) -> Result<Policy, ConfigError> {
        compile_yaml(&format!("{HEAD}{yaml}"), &[])
    }

    /// The error for a `teams:` section; its first line is line 8 of the file.
    fn teams_error(yaml: &str) -> String {
        error_of(&format!("{HEAD}{yaml}"), &[])
    }

    fn hash_bytes(hex_text: &str) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut bytes).unwrap_or_default();
        bytes
    }

    #[test]
    fn a_full_team() -> Result<(), ConfigError> {
        let policy = teams(&format!(
            "  search:\n    keys: [sha256:{HASH}, 'sha256:{}']\n    models: [a]\n    budget: {{usd: 500, period: weekly}}\n    alert_at: 0.8\n    limits: {{rpm: 1200, tpm: 2000000}}\n",
            OTHER.to_uppercase()
        ))?;
        let team = policy.teams.get("search").cloned();
        let team = team.as_deref();
        assert_eq!(team.map(|t| t.may_use("a")), Some(true));
        assert_eq!(team.map(|t| t.may_use("b")), Some(false));
        assert_eq!(
            team.and_then(|t| t.budget),
            Some(Budget {
                usd: crate::metering::NanoUsd::from_nanos(500_000_000_000),
                period: BudgetPeriod::Weekly
            })
        );
        assert_eq!(team.and_then(|t| t.alert_at), Some(0.8));
        assert_eq!(
            team.and_then(|t| t.limits),
            Some(Limits {
                rpm: Some(1200),
                tpm: Some(2_000_000)
            })
        );

        let owner = policy.keys.get(&hash_bytes(HASH));
        assert_eq!(owner.map(|o| o.key_id.as_str()), Some("search#5e884898"));
        assert_eq!(owner.map(|o| o.team.name.as_str()), Some("search"));
        let upper = policy.keys.get(&hash_bytes(OTHER));
        assert_eq!(
            upper.map(|o| o.key_id.as_str()),
            Some("search#8edd8fc6"),
            "uppercase hex is accepted"
        );
        Ok(())
    }

    #[test]
    fn absent_allow_list_means_every_model_and_budget_period_defaults_to_monthly(
    ) -> Result<(), ConfigError> {
        let policy = teams(&format!(
            "  t:\n    keys: [sha256:{HASH}]\n    budget: {{usd: 10}}\n"
        ))?;
        let team = policy.teams.get("t").cloned();
        assert!(team
            .as_deref()
            .is_some_and(|t| t.may_use("a") && t.may_use("b")));
        assert_eq!(
            team.and_then(|t| t.budget).map(|b| b.period),
            Some(BudgetPeriod::Monthly)
        );
        Ok(())
    }

    #[test]
    fn a_plain_key_is_refused_with_instructions_and_never_echoed() {
        let err = teams_error("  t:\n    keys: [sk-live-abcdef0123456789]\n");
        assert!(
            err.starts_with(
                "routes.yaml:9:12: teams.t.keys[0]: keys are stored hashed, not in plain text"
            ),
            "{err}"
        );
        assert!(err.contains("printf %s 'THE-KEY' | sha256sum"), "{err}");
        assert!(err.contains("sha256:<hex>"), "{err}");
        assert!(!err.contains("abcdef0123456789"), "{err}");
    }

    #[test]
    fn a_plain_key_from_the_environment_is_not_echoed_either() {
        let yaml = format!("{HEAD}  t:\n    keys: ['${{TEAM_KEY}}']\n");
        let err = error_of(&yaml, &[("TEAM_KEY", "sk-from-env-123")]);
        assert!(err.contains("keys are stored hashed"), "{err}");
        assert!(!err.contains("sk-from-env-123"), "{err}");
    }

    #[test]
    fn a_malformed_hash_is_refused() {
        let err = teams_error("  t:\n    keys: ['sha256:abc']\n");
        assert!(err.starts_with("routes.yaml:9:12: teams.t.keys[0]: `sha256:` must be followed by 64 hex characters (found 3 characters)"), "{err}");
        let not_hex = format!("  t:\n    keys: ['sha256:{}']\n", "z".repeat(64));
        assert!(teams_error(&not_hex).contains("64 hex characters (found 64 characters)"));
    }

    #[test]
    fn one_key_belongs_to_one_team() {
        let err = teams_error(&format!(
            "  a:\n    keys: [sha256:{HASH}]\n  b:\n    keys: [sha256:{}]\n",
            HASH.to_uppercase()
        ));
        assert_eq!(err, "routes.yaml:11:12: teams.b.keys: this key already belongs to team a; a key can belong to one team only");
        let twice = teams_error(&format!("  a:\n    keys: [sha256:{HASH}, sha256:{HASH}]\n"));
        assert!(
            twice.starts_with("routes.yaml:9:85: teams.a.keys: this key is listed twice"),
            "{twice}"
        );
    }

    #[test]
    fn allow_lists_name_defined_models() {
        let err = teams_error(&format!(
            "  t:\n    keys: [sha256:{HASH}]\n    models: [a, c]\n"
        ));
        assert_eq!(
            err,
            "routes.yaml:10:17: teams.t.models: model `c` is not defined (defined: a, b)"
        );
    }

    #[test]
    fn budget_and_alert_rules() {
        let key = format!("  t:\n    keys: [sha256:{HASH}]\n");
        let err = teams_error(&format!("{key}    budget: {{usd: -5}}\n"));
        assert!(
            err.starts_with("routes.yaml:10:19: teams.t.budget.usd must be a number of USD"),
            "{err}"
        );
        let err = teams_error(&format!("{key}    budget: {{usd: 5, period: yearly}}\n"));
        assert!(
            err.contains("unknown variant `yearly`, expected one of daily, weekly, monthly"),
            "{err}"
        );
        for bad in ["0", "1.5", "-0.2"] {
            let err = teams_error(&format!(
                "{key}    budget: {{usd: 5}}\n    alert_at: {bad}\n"
            ));
            assert!(
                err.starts_with(
                    "routes.yaml:11:15: teams.t.alert_at must be a fraction above 0 and at most 1"
                ),
                "{bad}: {err}"
            );
        }
        let err = teams_error(&format!("{key}    alert_at: 0.5\n"));
        assert!(err.starts_with("routes.yaml:10:15: teams.t.alert_at is a fraction of the budget, so it needs `budget:`"), "{err}");
        let err = teams_error(&format!("{key}    limits: {{rpm: -1}}\n"));
        assert!(
            err.contains("teams.t.limits.rpm must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn teams_without_keys_and_policies_without_teams_warn() -> Result<(), ConfigError> {
        let policy = teams("  idle: {}\n")?;
        assert!(policy
            .warnings
            .iter()
            .any(|w| w == "team idle has no keys, so no request can use it"));
        let none = compile_yaml("version: 1\n", &[])?;
        assert!(none
            .warnings
            .iter()
            .any(|w| w.starts_with("no teams are defined")));
        Ok(())
    }
}
