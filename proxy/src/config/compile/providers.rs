//! `providers:` — per-kind fields, URLs, Azure API versions, and credentials that may be
//! missing from the environment (which disables the provider instead of failing).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

use super::{shown, Ctx};
use crate::config::error::Problem;
use crate::config::policy::{
    AwsAssumeRole, AwsStaticCredentials, AzureAuth, Provider, ProviderKind, Secret,
};
use crate::config::raw::{Entries, RawAssumeRole, RawAzureAuth, RawKind, RawProvider};

mod entra;

const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// A provider setting after expansion: its value, or why it came out empty.
enum Setting {
    Value(String),
    /// Emptied by an environment variable; the provider is disabled for this reason.
    Blank(String),
}

/// Collects why a provider is unusable while its settings are read.
#[derive(Default)]
struct Blanks(Vec<String>);

impl Blanks {
    /// The value of a setting, recording why it is unusable if it came out empty.
    fn take(&mut self, setting: Setting) -> String {
        match setting {
            Setting::Value(value) => value,
            Setting::Blank(reason) => {
                self.0.push(reason);
                String::new()
            }
        }
    }
}

pub(super) fn compile(
    ctx: &mut Ctx<'_>,
    raw: Option<Entries<RawProvider>>,
) -> Result<BTreeMap<String, Arc<Provider>>, Problem> {
    let mut providers = BTreeMap::new();
    for (name, raw) in raw.map(|entries| entries.0).unwrap_or_default() {
        check_name(&name)?;
        let path = format!("providers.{}", name.value);
        let mut blanks = Blanks::default();
        let kind = match raw.kind.value {
            RawKind::OpenAi => openai(ctx, &raw, &path, &mut blanks)?,
            RawKind::Azure => azure(ctx, &raw, &name, &path, &mut blanks)?,
            RawKind::Bedrock => bedrock(ctx, &raw, &name, &path, &mut blanks)?,
        };
        let (region, cloud) = placement(ctx, &raw, &kind, &path)?;
        let disabled = (!blanks.0.is_empty()).then(|| blanks.0.join("; "));
        if let Some(reason) = &disabled {
            ctx.warnings
                .push(format!("provider {} disabled: {reason}", name.value));
        }
        let provider = Provider {
            name: name.value.clone(),
            kind,
            disabled,
            region,
            cloud,
        };
        providers.insert(name.value, Arc::new(provider));
    }
    Ok(providers)
}

/// `/` separates provider and model in a target id, so a provider name cannot contain it.
fn check_name(name: &Spanned<String>) -> Result<(), Problem> {
    let bad = name.value.trim().is_empty() || name.value.contains('/');
    match bad {
        true => Err(Problem::spanned(
            name,
            format!("providers: `{}` is not a usable provider name (it must be non-empty and contain no `/`)", name.value),
        )),
        false => Ok(()),
    }
}

fn openai(
    ctx: &Ctx<'_>,
    raw: &RawProvider,
    path: &str,
    blanks: &mut Blanks,
) -> Result<ProviderKind, Problem> {
    only_fields(
        raw,
        path,
        "openai",
        &["base_url", "api_key", "region", "cloud"],
    )?;
    let base_url = match &raw.base_url {
        Some(value) => url_setting(ctx, value, path, "base_url")?,
        None => Setting::Value(DEFAULT_OPENAI_BASE_URL.to_owned()),
    };
    let base_url = blanks.take(base_url);
    let api_key = match &raw.api_key {
        Some(value) => Some(setting(ctx, value, path, "api_key")?),
        None => None,
    };
    let api_key = api_key.map(|key| Secret::new(blanks.take(key)));
    Ok(ProviderKind::OpenAi { base_url, api_key })
}

fn azure(
    ctx: &Ctx<'_>,
    raw: &RawProvider,
    name: &Spanned<String>,
    path: &str,
    blanks: &mut Blanks,
) -> Result<ProviderKind, Problem> {
    only_fields(
        raw,
        path,
        "azure",
        &[
            "endpoint",
            "api_key",
            "auth",
            "api_version",
            "entra",
            "region",
            "cloud",
        ],
    )?;
    let endpoint = required(
        name,
        raw.endpoint.as_ref(),
        path,
        "endpoint",
        "https://<resource>.openai.azure.com",
    )?;
    let endpoint = blanks.take(url_setting(ctx, endpoint, path, "endpoint")?);
    let auth = match (&raw.api_key, &raw.auth) {
        (Some(key), None) => AzureAuth::ApiKey(Secret::new(
            blanks.take(setting(ctx, key, path, "api_key")?),
        )),
        (None, Some(auth)) => match auth.value {
            RawAzureAuth::Entra => {
                AzureAuth::Entra(entra::compile(ctx, raw.entra.as_ref(), path, blanks)?)
            }
        },
        (Some(_), Some(auth)) => {
            return Err(Problem::spanned(
                auth,
                format!("{path}: give either `api_key` or `auth: entra`, not both"),
            ))
        }
        (None, None) => {
            return Err(Problem::spanned(
                name,
                format!("{path}: an azure provider needs `api_key: ${{…}}` or `auth: entra`"),
            ))
        }
    };
    if let (Some(block), AzureAuth::ApiKey(_)) = (&raw.entra, &auth) {
        return Err(Problem::spanned(
            block,
            format!("{path}.entra: only used with `auth: entra` (this provider uses api_key)"),
        ));
    }
    let version_value = required(
        name,
        raw.api_version.as_ref(),
        path,
        "api_version",
        "2024-10-21 (or v1)",
    )?;
    let api_version = blanks.take(setting(ctx, version_value, path, "api_version")?);
    if !api_version.is_empty() && !is_azure_api_version(&api_version) {
        return Err(Problem::spanned(
            version_value,
            format!("{path}.api_version: {} is neither `v1` nor a dated version like 2024-10-21 or 2025-04-01-preview", shown(version_value, &api_version)),
        ));
    }
    Ok(ProviderKind::Azure {
        endpoint,
        auth,
        api_version,
    })
}

fn bedrock(
    ctx: &Ctx<'_>,
    raw: &RawProvider,
    name: &Spanned<String>,
    path: &str,
    blanks: &mut Blanks,
) -> Result<ProviderKind, Problem> {
    only_fields(
        raw,
        path,
        "bedrock",
        &[
            "region",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "endpoint",
            "cloud",
            "assume_role",
        ],
    )?;
    let region_value = required(name, raw.region.as_ref(), path, "region", "us-east-1")?;
    let region = blanks.take(setting(ctx, region_value, path, "region")?);
    if !region.is_empty() && !is_aws_region(&region) {
        return Err(Problem::spanned(
            region_value,
            format!(
                "{path}.region: {} is not an AWS region like us-east-1",
                shown(region_value, &region)
            ),
        ));
    }
    let credentials = aws_credentials(ctx, raw, path, blanks)?;
    // An override that comes out empty means "no override": `${BEDROCK_ENDPOINT:-}`.
    let endpoint = match &raw.endpoint {
        Some(value) => match url_setting(ctx, value, path, "endpoint")? {
            Setting::Value(url) => Some(url),
            Setting::Blank(_) => None,
        },
        None => None,
    };
    let assume_role = match &raw.assume_role {
        Some(role) => Some(assume_role(ctx, &role.value, path)?),
        None => None,
    };
    Ok(ProviderKind::Bedrock {
        region,
        credentials,
        endpoint,
        assume_role,
    })
}

/// `assume_role: { role_arn, external_id?, session_name? }`.
fn assume_role(ctx: &Ctx<'_>, raw: &RawAssumeRole, path: &str) -> Result<AwsAssumeRole, Problem> {
    let path = format!("{path}.assume_role");
    let role_arn = match setting(ctx, &raw.role_arn, &path, "role_arn")? {
        Setting::Value(arn) if arn.starts_with("arn:") && arn.contains(":role/") => arn,
        _ => {
            return Err(Problem::spanned(
                &raw.role_arn,
                format!("{path}.role_arn: {} is not an IAM role ARN like arn:aws:iam::123456789012:role/name", shown(&raw.role_arn, &raw.role_arn.value)),
            ));
        }
    };
    let optional =
        |value: &Option<Spanned<String>>, field: &str| -> Result<Option<String>, Problem> {
            match value {
                Some(v) => match setting(ctx, v, &path, field)? {
                    Setting::Value(text) => Ok(Some(text)),
                    Setting::Blank(_) => Ok(None),
                },
                None => Ok(None),
            }
        };
    Ok(AwsAssumeRole {
        role_arn,
        external_id: optional(&raw.external_id, "external_id")?.map(Secret::new),
        session_name: optional(&raw.session_name, "session_name")?,
    })
}

/// Where a provider serves: Bedrock's region, else `region:` as written; and its cloud,
/// from `cloud:` or the kind.
fn placement(
    ctx: &Ctx<'_>,
    raw: &RawProvider,
    kind: &ProviderKind,
    path: &str,
) -> Result<(Option<String>, String), Problem> {
    let text = |value: &Spanned<String>, field: &str| -> Result<Option<String>, Problem> {
        Ok(match setting(ctx, value, path, field)? {
            Setting::Value(text) => Some(text),
            Setting::Blank(_) => None,
        })
    };
    let region = match (kind, &raw.region) {
        (ProviderKind::Bedrock { region, .. }, _) => Some(region.clone()).filter(|r| !r.is_empty()),
        (_, Some(value)) => text(value, "region")?,
        (_, None) => None,
    };
    let cloud = match &raw.cloud {
        Some(value) => text(value, "cloud")?,
        None => None,
    };
    let default_cloud = match kind {
        ProviderKind::OpenAi { .. } => "openai",
        ProviderKind::Azure { .. } => "azure",
        ProviderKind::Bedrock { .. } => "aws",
    };
    Ok((region, cloud.unwrap_or_else(|| default_cloud.to_owned())))
}

/// Static AWS keys come as a pair; without them the AWS default credential chain is used.
fn aws_credentials(
    ctx: &Ctx<'_>,
    raw: &RawProvider,
    path: &str,
    blanks: &mut Blanks,
) -> Result<Option<AwsStaticCredentials>, Problem> {
    let (id, secret) = match (&raw.access_key_id, &raw.secret_access_key) {
        (Some(id), Some(secret)) => (id, secret),
        (None, None) => {
            return match &raw.session_token {
                Some(token) => Err(Problem::spanned(
                    token,
                    format!("{path}: session_token needs access_key_id and secret_access_key"),
                )),
                None => Ok(None),
            }
        }
        (Some(given), None) | (None, Some(given)) => {
            return Err(Problem::spanned(
                given,
                format!("{path}: give both access_key_id and secret_access_key, or neither (to use the AWS default credential chain)"),
            ))
        }
    };
    let access_key_id = blanks.take(setting(ctx, id, path, "access_key_id")?);
    let secret_access_key = blanks.take(setting(ctx, secret, path, "secret_access_key")?);
    // Long-term keys have no session token, so an empty one simply means none.
    let session_token = match &raw.session_token {
        Some(token) => match setting(ctx, token, path, "session_token")? {
            Setting::Value(token) => Some(Secret::new(token)),
            Setting::Blank(_) => None,
        },
        None => None,
    };
    Ok(Some(AwsStaticCredentials {
        access_key_id: Secret::new(access_key_id),
        secret_access_key: Secret::new(secret_access_key),
        session_token,
    }))
}

/// A field every provider of a kind needs; its absence is reported at the provider's name.
fn required<'r>(
    name: &Spanned<String>,
    value: Option<&'r Spanned<String>>,
    path: &str,
    field: &str,
    example: &str,
) -> Result<&'r Spanned<String>, Problem> {
    value.ok_or_else(|| {
        Problem::spanned(
            name,
            format!("{path}: missing `{field}` (e.g. {field}: {example})"),
        )
    })
}

/// Expands a setting. Empty because of the environment → `Blank` (the provider is
/// disabled); empty as written → an error, since that is a typo rather than a deployment choice.
fn setting(
    ctx: &Ctx<'_>,
    value: &Spanned<String>,
    path: &str,
    field: &str,
) -> Result<Setting, Problem> {
    let what = format!("{path}.{field}");
    let expanded = ctx.expand(value, &what)?;
    if !expanded.value.is_empty() {
        return Ok(Setting::Value(expanded.value));
    }
    match expanded.blank_cause() {
        Some(cause) => Ok(Setting::Blank(format!("{field} is empty ({cause})"))),
        None => Err(Problem::spanned(
            value,
            format!("{what} is empty; give a value or remove it"),
        )),
    }
}

/// A setting that must be an http(s) URL; the trailing slash is dropped.
fn url_setting(
    ctx: &Ctx<'_>,
    value: &Spanned<String>,
    path: &str,
    field: &str,
) -> Result<Setting, Problem> {
    let url = match setting(ctx, value, path, field)? {
        Setting::Value(url) => url,
        blank => return Ok(blank),
    };
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match host {
        Some(host)
            if !host.is_empty() && !host.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(Setting::Value(url.trim_end_matches('/').to_owned()))
        }
        _ => Err(Problem::spanned(
            value,
            format!(
                "{path}.{field}: {} is not an http:// or https:// URL",
                shown(value, &url)
            ),
        )),
    }
}

/// Rejects fields that belong to another kind (the raw struct holds all kinds' fields).
fn only_fields(raw: &RawProvider, path: &str, kind: &str, allowed: &[&str]) -> Result<(), Problem> {
    let spanned = |value: &Option<Spanned<String>>| value.as_ref().map(|value| value.referenced);
    let present: [(&str, Option<Location>); 12] = [
        ("base_url", spanned(&raw.base_url)),
        ("api_key", spanned(&raw.api_key)),
        ("endpoint", spanned(&raw.endpoint)),
        ("auth", raw.auth.as_ref().map(|auth| auth.referenced)),
        ("api_version", spanned(&raw.api_version)),
        ("region", spanned(&raw.region)),
        ("access_key_id", spanned(&raw.access_key_id)),
        ("secret_access_key", spanned(&raw.secret_access_key)),
        ("session_token", spanned(&raw.session_token)),
        ("cloud", spanned(&raw.cloud)),
        ("entra", raw.entra.as_ref().map(|entra| entra.referenced)),
        (
            "assume_role",
            raw.assume_role.as_ref().map(|r| r.referenced),
        ),
    ];
    for (field, location) in present {
        if let Some(location) = location.filter(|_| !allowed.contains(&field)) {
            return Err(Problem::at(
                location,
                format!(
                    "{path}: `{field}` is not a field of a {kind} provider (its fields: kind, {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// `v1`, `YYYY-MM-DD` or `YYYY-MM-DD-preview`.
fn is_azure_api_version(version: &str) -> bool {
    if version == "v1" {
        return true;
    }
    let date = version.strip_suffix("-preview").unwrap_or(version);
    let parts: Vec<&str> = date.split('-').collect();
    let number = |part: &str, len: usize, max: u32| {
        part.len() == len
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u32>().is_ok_and(|n| n >= 1 && n <= max)
    };
    matches!(parts.as_slice(), [year, month, day]
        if number(year, 4, 9999) && number(month, 2, 12) && number(day, 2, 31))
}

/// `us-east-1`, `us-gov-west-1`, `ap-southeast-2`: lowercase words joined by `-`, ending in a number.
fn is_aws_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    match parts.split_last() {
        Some((last, words)) if words.len() >= 2 => {
            last.parse::<u32>().is_ok()
                && words
                    .iter()
                    .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{compile_yaml, error_of};
    use crate::config::ConfigError;

    fn provider(yaml: &str, env: &[(&str, &str)]) -> Result<Arc<Provider>, ConfigError> {
        let policy = compile_yaml(&format!("version: 1\nproviders:\n  p:\n{yaml}"), env)?;
        Ok(Arc::clone(
            policy.providers.get("p").expect("provider p is compiled"),
        ))
    }

    fn provider_error(yaml: &str, env: &[(&str, &str)]) -> String {
        error_of(&format!("version: 1\nproviders:\n  p:\n{yaml}"), env)
    }

    #[test]
    fn openai_defaults_and_trailing_slash() -> Result<(), ConfigError> {
        let default = provider("    kind: openai\n", &[])?;
        match &default.kind {
            ProviderKind::OpenAi { base_url, api_key } => {
                assert_eq!(base_url, "https://api.openai.com/v1");
                assert!(api_key.is_none());
            }
            other => unreachable!("{other:?}"),
        }
        let local = provider(
            "    kind: openai\n    base_url: http://localhost:8000/v1/\n    api_key: ${K}\n",
            &[("K", "sk-1")],
        )?;
        match &local.kind {
            ProviderKind::OpenAi { base_url, api_key } => {
                assert_eq!(base_url, "http://localhost:8000/v1");
                assert_eq!(api_key.as_ref().map(Secret::expose), Some("sk-1"));
            }
            other => unreachable!("{other:?}"),
        }
        assert!(local.disabled.is_none());
        Ok(())
    }

    #[test]
    fn a_credential_missing_from_the_environment_disables_the_provider() -> Result<(), ConfigError>
    {
        let yaml = "version: 1\nproviders:\n  openai:\n    kind: openai\n    api_key: ${OPENAI_API_KEY:-}\n";
        let policy = compile_yaml(yaml, &[])?;
        let reason = "api_key is empty (environment variable OPENAI_API_KEY is not set)";
        let disabled = policy
            .providers
            .get("openai")
            .and_then(|p| p.disabled.clone());
        assert_eq!(disabled.as_deref(), Some(reason));
        assert!(policy
            .warnings
            .contains(&format!("provider openai disabled: {reason}")));
        Ok(())
    }

    #[test]
    fn a_literally_empty_credential_is_an_error() {
        let err = provider_error("    kind: openai\n    api_key: ''\n", &[]);
        assert!(
            err.starts_with("routes.yaml:5:14: providers.p.api_key is empty"),
            "{err}"
        );
    }

    #[test]
    fn urls_must_be_http_or_https() {
        let err = provider_error("    kind: openai\n    base_url: api.openai.com/v1\n", &[]);
        assert!(err.starts_with("routes.yaml:5:15: providers.p.base_url: `api.openai.com/v1` is not an http:// or https:// URL"), "{err}");
        let err = provider_error(
            "    kind: azure\n    endpoint: https://\n    auth: entra\n    api_version: v1\n",
            &[],
        );
        assert!(err.contains("providers.p.endpoint"), "{err}");
    }

    #[test]
    fn fields_of_another_kind_are_refused() {
        let err = provider_error("    kind: openai\n    api_version: v1\n", &[]);
        assert_eq!(err, "routes.yaml:5:18: providers.p: `api_version` is not a field of a openai provider (its fields: kind, base_url, api_key, region, cloud)");
        let err = provider_error(
            "    kind: bedrock\n    region: us-east-1\n    api_key: x\n",
            &[],
        );
        assert!(
            err.starts_with(
                "routes.yaml:6:14: providers.p: `api_key` is not a field of a bedrock provider"
            ),
            "{err}"
        );
    }

    #[test]
    fn azure_with_key_or_entra() -> Result<(), ConfigError> {
        let keyed = provider("    kind: azure\n    endpoint: https://contoso.openai.azure.com/\n    api_key: ${AZ}\n    api_version: 2024-10-21\n", &[("AZ", "k")])?;
        match &keyed.kind {
            ProviderKind::Azure {
                endpoint,
                auth,
                api_version,
            } => {
                assert_eq!(endpoint, "https://contoso.openai.azure.com");
                assert!(matches!(auth, AzureAuth::ApiKey(key) if key.expose() == "k"));
                assert_eq!(api_version, "2024-10-21");
            }
            other => unreachable!("{other:?}"),
        }
        let entra = provider("    kind: azure\n    endpoint: https://c.openai.azure.com\n    auth: entra\n    api_version: v1\n", &[])?;
        assert!(
            matches!(&entra.kind, ProviderKind::Azure { auth: AzureAuth::Entra(settings), api_version, .. } if api_version == "v1" && settings.credential == crate::config::EntraCredential::ManagedIdentity { client_id: None })
        );
        Ok(())
    }

    #[test]
    fn azure_needs_exactly_one_auth_and_a_valid_api_version() {
        let base = "    kind: azure\n    endpoint: https://c.openai.azure.com\n";
        let neither = provider_error(&format!("{base}    api_version: v1\n"), &[]);
        assert!(neither.starts_with("routes.yaml:3:3: providers.p: an azure provider needs `api_key: ${…}` or `auth: entra`"), "{neither}");
        let both = provider_error(
            &format!("{base}    api_key: k\n    auth: entra\n    api_version: v1\n"),
            &[],
        );
        assert!(
            both.starts_with(
                "routes.yaml:7:11: providers.p: give either `api_key` or `auth: entra`"
            ),
            "{both}"
        );
        let missing = provider_error(&format!("{base}    auth: entra\n"), &[]);
        assert!(
            missing.starts_with("routes.yaml:3:3: providers.p: missing `api_version`"),
            "{missing}"
        );
        for good in ["2024-10-21", "2025-04-01-preview", "v1"] {
            let ok = provider_error(
                &format!("{base}    auth: entra\n    api_version: {good}\n"),
                &[],
            );
            assert_eq!(ok, "<compiled without error>", "{good}");
        }
        for bad in ["2024-13-01", "2024-10", "v2", "latest", "2024-10-21-beta"] {
            let err = provider_error(
                &format!("{base}    auth: entra\n    api_version: {bad}\n"),
                &[],
            );
            assert!(err.starts_with(&format!("routes.yaml:7:18: providers.p.api_version: `{bad}` is neither `v1` nor a dated version")), "{err}");
        }
    }

    #[test]
    fn bedrock_default_chain_or_a_key_pair() -> Result<(), ConfigError> {
        let chain = provider(
            "    kind: bedrock\n    region: eu-central-1\n    endpoint: ${BEDROCK_ENDPOINT:-}\n",
            &[],
        )?;
        assert!(
            matches!(&chain.kind, ProviderKind::Bedrock { credentials: None, endpoint: None, region, .. } if region == "eu-central-1")
        );
        assert!(chain.disabled.is_none());

        let keys = "    kind: bedrock\n    region: us-gov-west-1\n    access_key_id: ${AK}\n    secret_access_key: ${SK}\n    session_token: ${AWS_SESSION_TOKEN:-}\n    endpoint: http://127.0.0.1:4000/\n";
        let pair = provider(keys, &[("AK", "AKIA1"), ("SK", "secret")])?;
        match &pair.kind {
            ProviderKind::Bedrock {
                credentials: Some(creds),
                endpoint,
                ..
            } => {
                assert_eq!(creds.access_key_id.expose(), "AKIA1");
                assert_eq!(creds.secret_access_key.expose(), "secret");
                assert!(
                    creds.session_token.is_none(),
                    "an unset session token means none"
                );
                assert_eq!(endpoint.as_deref(), Some("http://127.0.0.1:4000"));
            }
            other => unreachable!("{other:?}"),
        }
        let blank = provider(keys, &[("AK", ""), ("SK", "")])?;
        assert_eq!(
            blank.disabled.as_deref(),
            Some("access_key_id is empty (environment variable AK is empty); secret_access_key is empty (environment variable SK is empty)")
        );
        Ok(())
    }

    #[test]
    fn bedrock_key_pairs_are_both_or_neither() {
        let half = provider_error(
            "    kind: bedrock\n    region: us-east-1\n    access_key_id: AKIA\n",
            &[],
        );
        assert!(half.starts_with("routes.yaml:6:20: providers.p: give both access_key_id and secret_access_key, or neither"), "{half}");
        let token_only = provider_error(
            "    kind: bedrock\n    region: us-east-1\n    session_token: t\n",
            &[],
        );
        assert!(
            token_only.contains("session_token needs access_key_id"),
            "{token_only}"
        );
        let region = provider_error("    kind: bedrock\n    region: US East\n", &[]);
        assert!(
            region.starts_with(
                "routes.yaml:5:13: providers.p.region: `US East` is not an AWS region"
            ),
            "{region}"
        );
        let missing = provider_error("    kind: bedrock\n", &[]);
        assert!(
            missing.starts_with("routes.yaml:3:3: providers.p: missing `region`"),
            "{missing}"
        );
    }

    #[test]
    fn unknown_kind_and_bad_names_are_refused() {
        let kind = provider_error("    kind: vertex\n", &[]);
        assert!(
            kind.starts_with("routes.yaml:4:11: unknown variant `vertex`"),
            "{kind}"
        );
        let name = error_of("version: 1\nproviders:\n  a/b: {kind: openai}\n", &[]);
        assert!(
            name.starts_with("routes.yaml:3:3: providers: `a/b` is not a usable provider name"),
            "{name}"
        );
    }

    #[test]
    fn secrets_never_reach_debug_output() -> Result<(), ConfigError> {
        let p = provider(
            "    kind: openai\n    api_key: ${K}\n",
            &[("K", "sk-very-secret")],
        )?;
        assert!(!format!("{p:?}").contains("sk-very-secret"));
        Ok(())
    }

    #[test]
    fn bedrock_assume_role_with_external_id() -> Result<(), ConfigError> {
        let yaml = "    kind: bedrock\n    region: us-east-1\n    assume_role: { role_arn: 'arn:aws:iam::123456789012:role/bedrock', external_id: '${EXT}', session_name: proxy }\n";
        let p = provider(yaml, &[("EXT", "ext-1")])?;
        match &p.kind {
            ProviderKind::Bedrock {
                assume_role: Some(role),
                ..
            } => {
                assert_eq!(role.role_arn, "arn:aws:iam::123456789012:role/bedrock");
                assert_eq!(role.external_id.as_ref().map(Secret::expose), Some("ext-1"));
                assert_eq!(role.session_name.as_deref(), Some("proxy"));
                assert!(!format!("{role:?}").contains("ext-1"));
            }
            other => unreachable!("{other:?}"),
        }
        let err = provider_error(
            "    kind: bedrock\n    region: us-east-1\n    assume_role: { role_arn: not-an-arn }\n",
            &[],
        );
        assert!(err.contains("assume_role.role_arn"), "{err}");
        let err = provider_error(
            "    kind: openai\n    assume_role: { role_arn: 'arn:aws:iam::1:role/r' }\n",
            &[],
        );
        assert!(
            err.contains("`assume_role` is not a field of a openai provider"),
            "{err}"
        );
        Ok(())
    }
}
