//! `kind: bedrock` in `routes.yaml`: Amazon Bedrock in one region. Its typed section
//! (region, a Bedrock API key, static keys or the AWS default chain, `assume_role:`,
//! endpoint override),
//! its compiled [`Settings`] (resolved into live credentials by `credentials.rs`), its
//! `--check` line, and the built-in prices of Bedrock model ids (`prices.json`).

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::{shown, Compiled, Problem, ProviderKind, Secret, SectionCtx, Setting};
use crate::providers::registry::{ProviderSection, Unit};
use crate::upstream::base_url::BaseUrl;
use crate::upstream::Classifier;

/// The variable AWS SDKs read a Bedrock API key from; a provider on the default chain uses
/// it, as the SDKs do.
pub const BEARER_TOKEN_ENV: &str = "AWS_BEARER_TOKEN_BEDROCK";

/// Prefixes of Bedrock cross-region inference-profile ids (`us.anthropic.…`); a profile
/// is billed at its base model's price.
pub(crate) const INFERENCE_PROFILE_PREFIXES: &[&str] = &[
    "us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "global.",
];

/// The section as written; field order is the order errors list them in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Section {
    /// Required; also where the provider serves, for `regions:`.
    pub region: Option<Spanned<String>>,
    /// A Bedrock API key, sent as `Authorization: Bearer` instead of signing.
    pub api_key: Option<Spanned<String>>,
    pub access_key_id: Option<Spanned<String>>,
    pub secret_access_key: Option<Spanned<String>>,
    pub session_token: Option<Spanned<String>>,
    /// Override of `https://bedrock-runtime.{region}.amazonaws.com`.
    pub endpoint: Option<Spanned<String>>,
    /// Which cloud it is, for `clouds:` (default `aws`).
    pub cloud: Option<Spanned<String>>,
    /// A role assumed on top of the resolved credentials.
    pub assume_role: Option<Spanned<RawAssumeRole>>,
}

/// `assume_role:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAssumeRole {
    pub role_arn: Spanned<String>,
    pub external_id: Option<Spanned<String>>,
    pub session_name: Option<Spanned<String>>,
}

/// A compiled `kind: bedrock` provider.
#[derive(Debug)]
pub struct Settings {
    pub region: String,
    /// A Bedrock API key: requests carry it as a bearer token and are not signed.
    pub api_key: Option<BedrockApiKey>,
    /// Explicit credentials; `None` (without an API key) means the AWS default credential chain.
    pub credentials: Option<AwsStaticCredentials>,
    /// Override of `https://bedrock-runtime.{region}.amazonaws.com`, as written.
    pub endpoint: Option<BaseUrl>,
    /// Where requests go: the override, else the region's public endpoint (made here once).
    pub base_url: BaseUrl,
    /// A role assumed (via STS) with the credentials above or the default chain's.
    pub assume_role: Option<AwsAssumeRole>,
}

/// `assume_role:` of a bedrock provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsAssumeRole {
    pub role_arn: String,
    /// Treated as a secret: it is the confused-deputy guard of the role's trust policy.
    pub external_id: Option<Secret>,
    pub session_name: Option<String>,
}

/// A Bedrock API key and where it came from (for `--check`).
#[derive(Debug)]
pub struct BedrockApiKey {
    pub key: Secret,
    /// Read from `AWS_BEARER_TOKEN_BEDROCK` by a provider without credentials in routes.yaml.
    pub from_env: bool,
}

#[derive(Debug)]
pub struct AwsStaticCredentials {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl ProviderSection for Section {
    const DEFAULT_CLOUD: &'static str = "aws";
    const PRICES: &'static str = include_str!("prices.json");

    fn price_alias(model: &str) -> Option<&str> {
        INFERENCE_PROFILE_PREFIXES
            .iter()
            .find_map(|prefix| model.strip_prefix(prefix))
    }

    fn cloud(&self) -> Option<&Spanned<String>> {
        self.cloud.as_ref()
    }

    fn compile(self, cx: &mut SectionCtx<'_>) -> Result<Compiled, Problem> {
        let path = cx.path().to_owned();
        let region_value = cx.required(self.region.as_ref(), "region", "us-east-1")?;
        let region = cx.setting(region_value, "region")?;
        let region = cx.take(region);
        if !region.is_empty() && !is_aws_region(&region) {
            return Err(Problem::spanned(
                region_value,
                format!(
                    "{path}.region: {} is not an AWS region like us-east-1",
                    shown(region_value, &region)
                ),
            ));
        }
        let api_key = self.api_key(cx)?;
        let credentials = match api_key {
            Some(_) => None,
            None => self.static_credentials(cx)?,
        };
        // An override that comes out empty means "no override": `${BEDROCK_ENDPOINT:-}`.
        let endpoint = match &self.endpoint {
            Some(value) => match cx.url_setting(value, "endpoint")? {
                Setting::Value(_) => Some(cx.base_url(value, "endpoint")?),
                Setting::Blank(_) => None,
            },
            None => None,
        };
        let base_url = super::base_url(&region, endpoint.as_ref())
            .map_err(|reason| Problem::spanned(region_value, format!("{path}.region: {reason}")))?;
        let assume_role = match &self.assume_role {
            Some(role) => Some(assume_role(cx, &role.value)?),
            None => None,
        };
        if let (Some(_), Some(role)) = (&api_key, &self.assume_role) {
            return Err(Problem::spanned(
                role,
                format!("{path}: a Bedrock API key is not an IAM identity and cannot assume a role; remove `api_key` or `assume_role`"),
            ));
        }
        // No credentials in routes.yaml: a Bedrock API key in the environment wins over the
        // default chain, as in the AWS SDKs.
        let api_key = match api_key {
            None if credentials.is_none() && assume_role.is_none() && self.api_key.is_none() => cx
                .env_var(BEARER_TOKEN_ENV)
                .filter(|key| !key.trim().is_empty())
                .map(|key| BedrockApiKey {
                    key: Secret::new(key.trim()),
                    from_env: true,
                }),
            other => other,
        };
        let serves_in = Some(region.clone()).filter(|r| !r.is_empty());
        Ok(Compiled {
            kind: ProviderKind::Bedrock(Settings {
                region,
                api_key,
                credentials,
                endpoint,
                base_url,
                assume_role,
            }),
            region: serves_in,
        })
    }
}

impl Section {
    /// `api_key:`. Given and set, access keys must be absent or come out empty (a
    /// routes.yaml may offer both from the environment); empty from the environment, it
    /// gives way to access keys, or disables the provider when there are none.
    fn api_key(&self, cx: &mut SectionCtx<'_>) -> Result<Option<BedrockApiKey>, Problem> {
        let path = cx.path().to_owned();
        let Some(raw) = &self.api_key else {
            return Ok(None);
        };
        let keys = [
            (&self.access_key_id, "access_key_id"),
            (&self.secret_access_key, "secret_access_key"),
            (&self.session_token, "session_token"),
        ];
        match cx.setting(raw, "api_key")? {
            Setting::Value(key) => {
                for (given, name) in keys {
                    let Some(given) = given else { continue };
                    if let Setting::Value(_) = cx.setting(given, name)? {
                        return Err(Problem::spanned(
                            given,
                            format!("{path}: give either api_key (a Bedrock API key) or access keys, not both"),
                        ));
                    }
                }
                Ok(Some(BedrockApiKey {
                    key: Secret::new(key),
                    from_env: false,
                }))
            }
            blank @ Setting::Blank(_) => {
                if keys.iter().all(|(given, _)| given.is_none()) {
                    cx.take(blank);
                }
                Ok(None)
            }
        }
    }

    /// Static AWS keys come as a pair; without them the AWS default credential chain is used.
    fn static_credentials(
        &self,
        cx: &mut SectionCtx<'_>,
    ) -> Result<Option<AwsStaticCredentials>, Problem> {
        let path = cx.path().to_owned();
        let (id, secret) = match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => (id, secret),
            (None, None) => {
                return match &self.session_token {
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
        let access_key_id = cx.setting(id, "access_key_id")?;
        let access_key_id = cx.take(access_key_id);
        let secret_access_key = cx.setting(secret, "secret_access_key")?;
        let secret_access_key = cx.take(secret_access_key);
        // Long-term keys have no session token, so an empty one simply means none.
        let session_token = cx.text(self.session_token.as_ref(), "session_token")?;
        Ok(Some(AwsStaticCredentials {
            access_key_id: Secret::new(access_key_id),
            secret_access_key: Secret::new(secret_access_key),
            session_token: session_token.map(Secret::new),
        }))
    }
}

/// `assume_role: { role_arn, external_id?, session_name? }`.
fn assume_role(cx: &SectionCtx<'_>, raw: &RawAssumeRole) -> Result<AwsAssumeRole, Problem> {
    let path = format!("{}.assume_role", cx.path());
    let role_arn = match cx.setting_at(&raw.role_arn, &path, "role_arn")? {
        Setting::Value(arn) if arn.starts_with("arn:") && arn.contains(":role/") => arn,
        _ => {
            return Err(Problem::spanned(
                &raw.role_arn,
                format!("{path}.role_arn: {} is not an IAM role ARN like arn:aws:iam::123456789012:role/name", shown(&raw.role_arn, &raw.role_arn.value)),
            ));
        }
    };
    Ok(AwsAssumeRole {
        role_arn,
        external_id: cx
            .text_at(raw.external_id.as_ref(), &path, "external_id")?
            .map(Secret::new),
        session_name: cx.text_at(raw.session_name.as_ref(), &path, "session_name")?,
    })
}

impl Unit for Settings {
    fn label(&self) -> &'static str {
        "bedrock"
    }

    fn describe(&self) -> String {
        let credentials = match (&self.api_key, &self.credentials) {
            (Some(BedrockApiKey { from_env: true, .. }), _) => {
                "Bedrock API key from AWS_BEARER_TOKEN_BEDROCK (bearer, not signed)"
            }
            (Some(_), _) => "Bedrock API key (bearer, not signed)",
            (None, Some(_)) => "static keys",
            (None, None) => "AWS default chain",
        };
        let endpoint = self
            .endpoint
            .as_ref()
            .map_or_else(|| "default".to_owned(), BaseUrl::to_string);
        // The external id is a secret of the role's trust policy: say only that it is set.
        let role = match &self.assume_role {
            Some(role) => format!(
                ", assume_role {}{}",
                role.role_arn,
                if role.external_id.is_some() {
                    " (external id set)"
                } else {
                    ""
                }
            ),
            None => String::new(),
        };
        format!(
            "region {}, endpoint {endpoint}, credentials: {credentials}{role}",
            self.region
        )
    }

    fn classifier(&self) -> Classifier {
        super::errors::classify_answer
    }

    fn credential_status(
        &self,
        name: &str,
        runtime: &crate::providers::ProviderRuntime,
        _now: tokio::time::Instant,
    ) -> Option<serde_json::Value> {
        let (valid_for, last_error) =
            runtime
                .aws
                .status(name, self, std::time::SystemTime::now())?;
        let credential = match (&self.credentials, &self.assume_role) {
            (_, Some(_)) => "assume_role",
            (Some(_), None) => "static keys",
            (None, None) => "AWS default chain",
        };
        Some(serde_json::json!({
            "provider": name,
            "kind": "aws",
            "credential": credential,
            "valid_for_s": valid_for.map(|d| d.as_secs().min(u64::from(u32::MAX))),
            "last_error": last_error,
        }))
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.base_url.secrets();
        secrets.extend(
            self.api_key
                .iter()
                .map(|api_key| api_key.key.expose().to_owned()),
        );
        if let Some(credentials) = &self.credentials {
            secrets.push(credentials.secret_access_key.expose().to_owned());
            secrets.extend(
                credentials
                    .session_token
                    .iter()
                    .map(|t| t.expose().to_owned()),
            );
        }
        let external_id = self
            .assume_role
            .as_ref()
            .and_then(|role| role.external_id.as_ref());
        secrets.extend(external_id.map(|id| id.expose().to_owned()));
        secrets
    }
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
    use crate::config::testing::{provider, provider_error};
    use crate::config::{ConfigError, Provider};

    #[test]
    fn bedrock_default_chain_or_a_key_pair() -> Result<(), ConfigError> {
        let chain = provider(
            "    kind: bedrock\n    region: eu-central-1\n    endpoint: ${BEDROCK_ENDPOINT:-}\n",
            &[],
        )?;
        assert!(
            matches!(&chain.kind, ProviderKind::Bedrock(Settings { credentials: None, endpoint: None, region, .. }) if region == "eu-central-1")
        );
        assert!(chain.disabled.is_none());
        assert_eq!(
            (chain.region.as_deref(), chain.cloud.as_str()),
            (Some("eu-central-1"), "aws")
        );

        let keys = "    kind: bedrock\n    region: us-gov-west-1\n    access_key_id: ${AK}\n    secret_access_key: ${SK}\n    session_token: ${AWS_SESSION_TOKEN:-}\n    endpoint: http://127.0.0.1:4000/\n";
        let pair = provider(keys, &[("AK", "AKIA1"), ("SK", "secret")])?;
        match &pair.kind {
            ProviderKind::Bedrock(Settings {
                credentials: Some(creds),
                endpoint,
                ..
            }) => {
                assert_eq!(creds.access_key_id.expose(), "AKIA1");
                assert_eq!(creds.secret_access_key.expose(), "secret");
                assert!(
                    creds.session_token.is_none(),
                    "an unset session token means none"
                );
                assert_eq!(
                    endpoint.as_ref().map(BaseUrl::to_string).as_deref(),
                    Some("http://127.0.0.1:4000")
                );
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
        let half =
            provider_error("    kind: bedrock\n    region: us-east-1\n    access_key_id: AKIA\n");
        assert!(half.starts_with("routes.yaml:6:20: providers.p: give both access_key_id and secret_access_key, or neither"), "{half}");
        let token_only =
            provider_error("    kind: bedrock\n    region: us-east-1\n    session_token: t\n");
        assert!(
            token_only.contains("session_token needs access_key_id"),
            "{token_only}"
        );
        let region = provider_error("    kind: bedrock\n    region: US East\n");
        assert!(
            region.starts_with(
                "routes.yaml:5:13: providers.p.region: `US East` is not an AWS region"
            ),
            "{region}"
        );
        let missing = provider_error("    kind: bedrock\n");
        assert!(
            missing.starts_with("routes.yaml:3:3: providers.p: missing `region`"),
            "{missing}"
        );
    }

    #[test]
    fn fields_of_another_kind_are_refused() {
        let err = provider_error("    kind: bedrock\n    region: us-east-1\n    base_url: x\n");
        assert!(
            err.starts_with(
                "routes.yaml:6:15: providers.p: `base_url` is not a field of a bedrock provider"
            ),
            "{err}"
        );
        let err = provider_error(
            "    kind: bedrock\n    region: us-east-1\n    assume_role: { role_arn: 'arn:aws:iam::1:role/r', session: x }\n",
        );
        assert!(err.starts_with("routes.yaml:6:55: unknown field `session`, expected one of role_arn, external_id, session_name"), "{err}");
    }

    #[test]
    fn bedrock_assume_role_with_external_id() -> Result<(), ConfigError> {
        let yaml = "    kind: bedrock\n    region: us-east-1\n    assume_role: { role_arn: 'arn:aws:iam::123456789012:role/bedrock', external_id: '${EXT}', session_name: proxy }\n";
        let p = provider(yaml, &[("EXT", "ext-1")])?;
        match &p.kind {
            ProviderKind::Bedrock(Settings {
                assume_role: Some(role),
                ..
            }) => {
                assert_eq!(role.role_arn, "arn:aws:iam::123456789012:role/bedrock");
                assert_eq!(role.external_id.as_ref().map(Secret::expose), Some("ext-1"));
                assert_eq!(role.session_name.as_deref(), Some("proxy"));
                assert!(!format!("{role:?}").contains("ext-1"));
            }
            other => unreachable!("{other:?}"),
        }
        assert_eq!(p.kind.unit().describe(), "region us-east-1, endpoint default, credentials: AWS default chain, assume_role arn:aws:iam::123456789012:role/bedrock (external id set)");
        let err = provider_error(
            "    kind: bedrock\n    region: us-east-1\n    assume_role: { role_arn: not-an-arn }\n",
        );
        assert!(err.contains("assume_role.role_arn"), "{err}");
        Ok(())
    }

    fn api_key_of(p: &Provider) -> Option<(&str, bool)> {
        match &p.kind {
            ProviderKind::Bedrock(Settings { api_key, .. }) => {
                api_key.as_ref().map(|k| (k.key.expose(), k.from_env))
            }
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn a_bedrock_api_key_replaces_signing() -> Result<(), ConfigError> {
        let yaml = "    kind: bedrock\n    region: us-east-1\n    api_key: ${KEY}\n";
        let p = provider(yaml, &[("KEY", "ABSK-secret")])?;
        assert_eq!(api_key_of(&p), Some(("ABSK-secret", false)));
        let described = p.kind.unit().describe();
        assert!(
            described.contains("Bedrock API key (bearer, not signed)"),
            "{described}"
        );
        assert!(!described.contains("ABSK-secret") && !format!("{p:?}").contains("ABSK-secret"));
        let blank = provider(yaml, &[("KEY", "")])?;
        assert!(blank
            .disabled
            .as_deref()
            .is_some_and(|d| d.starts_with("api_key is empty")));
        Ok(())
    }

    #[test]
    fn the_shipped_form_offers_a_key_or_access_keys_from_the_environment() -> Result<(), ConfigError>
    {
        let yaml = "    kind: bedrock\n    region: us-east-1\n    api_key: ${AWS_BEARER_TOKEN_BEDROCK:-}\n    access_key_id: ${AK:-}\n    secret_access_key: ${SK:-}\n";
        let key_only = provider(yaml, &[("AWS_BEARER_TOKEN_BEDROCK", "ABSK-1")])?;
        assert_eq!(api_key_of(&key_only), Some(("ABSK-1", false)));
        assert!(key_only.disabled.is_none());
        let keys_only = provider(yaml, &[("AK", "AKIA"), ("SK", "s")])?;
        assert_eq!(api_key_of(&keys_only), None);
        assert!(keys_only.disabled.is_none());
        assert!(matches!(
            &keys_only.kind,
            ProviderKind::Bedrock(Settings {
                credentials: Some(_),
                ..
            })
        ));
        let neither = provider(yaml, &[])?;
        assert!(
            neither
                .disabled
                .as_deref()
                .is_some_and(|d| d.contains("access_key_id is empty")),
            "{:?}",
            neither.disabled
        );
        let both = compile_yaml_error(
            yaml,
            &[
                ("AWS_BEARER_TOKEN_BEDROCK", "ABSK-1"),
                ("AK", "AKIA"),
                ("SK", "s"),
            ],
        );
        assert!(
            both.contains("give either api_key (a Bedrock API key) or access keys, not both"),
            "{both}"
        );
        Ok(())
    }

    #[test]
    fn the_default_chain_takes_a_key_from_aws_bearer_token_bedrock() -> Result<(), ConfigError> {
        let yaml = "    kind: bedrock\n    region: us-east-1\n";
        let p = provider(yaml, &[(BEARER_TOKEN_ENV, "ABSK-env")])?;
        assert_eq!(api_key_of(&p), Some(("ABSK-env", true)));
        assert!(p
            .kind
            .unit()
            .describe()
            .contains("from AWS_BEARER_TOKEN_BEDROCK"));
        assert_eq!(api_key_of(&*provider(yaml, &[])?), None);
        // Explicit keys or a role are not overridden by the variable.
        let keys = "    kind: bedrock\n    region: us-east-1\n    access_key_id: AKIA\n    secret_access_key: s\n";
        assert_eq!(
            api_key_of(&*provider(keys, &[(BEARER_TOKEN_ENV, "ABSK-env")])?),
            None
        );
        let role = "    kind: bedrock\n    region: us-east-1\n    assume_role: { role_arn: 'arn:aws:iam::1:role/r' }\n";
        assert_eq!(
            api_key_of(&*provider(role, &[(BEARER_TOKEN_ENV, "ABSK-env")])?),
            None
        );
        let err = provider_error("    kind: bedrock\n    region: us-east-1\n    api_key: k\n    assume_role: { role_arn: 'arn:aws:iam::1:role/r' }\n");
        assert!(err.contains("cannot assume a role"), "{err}");
        Ok(())
    }

    fn compile_yaml_error(entry: &str, env: &[(&str, &str)]) -> String {
        crate::config::testing::error_of(&format!("version: 1\nproviders:\n  p:\n{entry}"), env)
    }

    #[test]
    fn inference_profiles_are_priced_as_their_base_model() {
        assert_eq!(
            Section::price_alias("us.anthropic.claude-3-haiku-20240307-v1:0"),
            Some("anthropic.claude-3-haiku-20240307-v1:0")
        );
        assert_eq!(Section::price_alias("gpt-4o"), None);
    }
}
