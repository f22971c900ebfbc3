//! `kind: azure` in `routes.yaml`: an Azure OpenAI resource. Its typed section (endpoint,
//! `api_key` or `auth: entra` with its `entra:` block, `api_version`), its compiled
//! [`Settings`], and its `--check` line.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::entra::config::{self as entra, EntraCredential, EntraSettings, RawEntra};
use crate::config::{shown, Compiled, Problem, ProviderKind, Secret, SectionCtx};
use crate::providers::registry::{ProviderSection, Unit};
use crate::providers::ProviderRuntime;
use crate::upstream::base_url::BaseUrl;
use crate::upstream::Classifier;

/// The section as written; field order is the order errors list them in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Section {
    /// Required: `https://<resource>.openai.azure.com`.
    pub endpoint: Option<Spanned<String>>,
    pub api_key: Option<Spanned<String>>,
    pub auth: Option<Spanned<RawAuth>>,
    pub api_version: Option<Spanned<String>>,
    /// With `auth: entra`: which identity gets the token (default: managed identity).
    pub entra: Option<Spanned<RawEntra>>,
    /// Where the endpoint serves, for `regions:`.
    pub region: Option<Spanned<String>>,
    /// Which cloud it is, for `clouds:` (default `azure`).
    pub cloud: Option<Spanned<String>>,
    /// `native`: Responses clients' bodies go to `/openai/v1/responses` as they are.
    pub responses: Option<Spanned<crate::providers::native_responses::ResponsesMode>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawAuth {
    Entra,
}

/// A compiled `kind: azure` provider.
#[derive(Debug)]
pub struct Settings {
    /// Without a trailing slash, e.g. `https://contoso-east.openai.azure.com`.
    pub endpoint: BaseUrl,
    pub auth: AzureAuth,
    /// A dated version (`2024-10-21`) selects the deployments URL form; `v1` the v1 form.
    pub api_version: String,
    /// `responses: native`: serves Responses clients at `/openai/v1/responses`.
    pub responses_native: bool,
}

#[derive(Debug)]
pub enum AzureAuth {
    ApiKey(Secret),
    Entra(EntraSettings),
}

impl ProviderSection for Section {
    const DEFAULT_CLOUD: &'static str = "azure";

    fn cloud(&self) -> Option<&Spanned<String>> {
        self.cloud.as_ref()
    }

    fn compile(self, cx: &mut SectionCtx<'_>) -> Result<Compiled, Problem> {
        let path = cx.path().to_owned();
        let endpoint = cx.required(
            self.endpoint.as_ref(),
            "endpoint",
            "https://<resource>.openai.azure.com",
        )?;
        let endpoint = cx.base_url(endpoint, "endpoint")?;
        let auth = match (&self.api_key, &self.auth) {
            (Some(key), None) => {
                let key = cx.setting(key, "api_key")?;
                AzureAuth::ApiKey(Secret::new(cx.take(key)))
            }
            (None, Some(auth)) => match auth.value {
                RawAuth::Entra => AzureAuth::Entra(entra::compile(cx, self.entra.as_ref())?),
            },
            (Some(_), Some(auth)) => {
                return Err(Problem::spanned(
                    auth,
                    format!("{path}: give either `api_key` or `auth: entra`, not both"),
                ))
            }
            (None, None) => {
                return Err(Problem::spanned(
                    cx.name(),
                    format!("{path}: an azure provider needs `api_key: ${{…}}` or `auth: entra`"),
                ))
            }
        };
        if let (Some(block), AzureAuth::ApiKey(_)) = (&self.entra, &auth) {
            return Err(Problem::spanned(
                block,
                format!("{path}.entra: only used with `auth: entra` (this provider uses api_key)"),
            ));
        }
        let version_value = cx.required(
            self.api_version.as_ref(),
            "api_version",
            "2024-10-21 (or v1)",
        )?;
        let api_version = cx.setting(version_value, "api_version")?;
        let api_version = cx.take(api_version);
        if !api_version.is_empty() && !is_api_version(&api_version) {
            return Err(Problem::spanned(
                version_value,
                format!("{path}.api_version: {} is neither `v1` nor a dated version like 2024-10-21 or 2025-04-01-preview", shown(version_value, &api_version)),
            ));
        }
        Ok(Compiled {
            kind: ProviderKind::Azure(Settings {
                endpoint,
                auth,
                api_version,
                responses_native: crate::providers::native_responses::is_native(
                    self.responses.as_ref(),
                ),
            }),
            region: cx.text(self.region.as_ref(), "region")?,
        })
    }
}

impl Unit for Settings {
    fn label(&self) -> &'static str {
        "azure"
    }

    fn describe(&self) -> String {
        let auth = match &self.auth {
            AzureAuth::ApiKey(_) => "api key",
            AzureAuth::Entra(settings) => match settings.credential {
                EntraCredential::ClientSecret { .. } => "entra (client_secret)",
                EntraCredential::WorkloadIdentity { .. } => "entra (workload_identity)",
                EntraCredential::ManagedIdentity { .. } => "entra (managed_identity)",
                EntraCredential::AzureCli => "entra (azure_cli)",
            },
        };
        format!(
            "endpoint {}, api_version {}, auth: {auth}",
            self.endpoint, self.api_version
        )
    }

    fn classifier(&self) -> Classifier {
        super::errors::classify
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.endpoint.secrets();
        match &self.auth {
            AzureAuth::ApiKey(key) => secrets.push(key.expose().to_owned()),
            AzureAuth::Entra(settings) => {
                if let EntraCredential::ClientSecret { client_secret, .. } = &settings.credential {
                    secrets.push(client_secret.expose().to_owned());
                }
            }
        }
        secrets
    }

    /// A target names a deployment of the resource, not a model.
    fn upstream_model_field(&self) -> &'static str {
        "deployment"
    }

    /// The Entra token cache of an `auth: entra` provider.
    fn credential_status(
        &self,
        name: &str,
        runtime: &ProviderRuntime,
        now: tokio::time::Instant,
    ) -> Option<serde_json::Value> {
        let AzureAuth::Entra(settings) = &self.auth else {
            return None;
        };
        let status = runtime.entra.status(name, now);
        Some(serde_json::json!({
            "provider": name,
            "kind": "entra",
            "credential": settings.credential.label(),
            "valid_for_s": status.valid_for.map(|d| d.as_secs()),
            "last_error": status.last_error,
        }))
    }
}

/// `v1`, `YYYY-MM-DD` or `YYYY-MM-DD-preview`.
fn is_api_version(version: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{provider, provider_error};
    use crate::config::ConfigError;

    #[test]
    fn azure_with_key_or_entra() -> Result<(), ConfigError> {
        let keyed = provider("    kind: azure\n    endpoint: https://contoso.openai.azure.com/\n    api_key: ${AZ}\n    api_version: 2024-10-21\n", &[("AZ", "k")])?;
        match &keyed.kind {
            ProviderKind::Azure(Settings {
                endpoint,
                auth,
                api_version,
                ..
            }) => {
                assert_eq!(endpoint.to_string(), "https://contoso.openai.azure.com");
                assert!(matches!(auth, AzureAuth::ApiKey(key) if key.expose() == "k"));
                assert_eq!(api_version, "2024-10-21");
            }
            other => unreachable!("{other:?}"),
        }
        assert_eq!(keyed.cloud, "azure");
        let entra = provider("    kind: azure\n    endpoint: https://c.openai.azure.com\n    auth: entra\n    api_version: v1\n", &[])?;
        assert!(
            matches!(&entra.kind, ProviderKind::Azure(Settings { auth: AzureAuth::Entra(settings), api_version, .. }) if api_version == "v1" && settings.credential == EntraCredential::ManagedIdentity { client_id: None })
        );
        assert_eq!(
            entra.kind.unit().describe(),
            "endpoint https://c.openai.azure.com, api_version v1, auth: entra (managed_identity)"
        );
        Ok(())
    }

    #[test]
    fn urls_must_be_http_or_https() {
        let err = provider_error(
            "    kind: azure\n    endpoint: https://\n    auth: entra\n    api_version: v1\n",
        );
        assert!(err.contains("providers.p.endpoint"), "{err}");
    }

    #[test]
    fn azure_needs_exactly_one_auth_and_a_valid_api_version() {
        let base = "    kind: azure\n    endpoint: https://c.openai.azure.com\n";
        let neither = provider_error(&format!("{base}    api_version: v1\n"));
        assert!(neither.starts_with("routes.yaml:3:3: providers.p: an azure provider needs `api_key: ${…}` or `auth: entra`"), "{neither}");
        let both = provider_error(&format!(
            "{base}    api_key: k\n    auth: entra\n    api_version: v1\n"
        ));
        assert!(
            both.starts_with(
                "routes.yaml:7:11: providers.p: give either `api_key` or `auth: entra`"
            ),
            "{both}"
        );
        let missing = provider_error(&format!("{base}    auth: entra\n"));
        assert!(
            missing.starts_with("routes.yaml:3:3: providers.p: missing `api_version`"),
            "{missing}"
        );
        for good in ["2024-10-21", "2025-04-01-preview", "v1"] {
            let ok = provider_error(&format!("{base}    auth: entra\n    api_version: {good}\n"));
            assert_eq!(ok, "<compiled without error>", "{good}");
        }
        for bad in ["2024-13-01", "2024-10", "v2", "latest", "2024-10-21-beta"] {
            let err = provider_error(&format!("{base}    auth: entra\n    api_version: {bad}\n"));
            assert!(err.starts_with(&format!("routes.yaml:7:18: providers.p.api_version: `{bad}` is neither `v1` nor a dated version")), "{err}");
        }
    }

    #[test]
    fn an_unknown_auth_is_refused_where_it_is_written() {
        let err = provider_error("    kind: azure\n    endpoint: https://c.openai.azure.com\n    auth: password\n    api_version: v1\n");
        assert!(
            err.starts_with("routes.yaml:6:11: unknown variant `password`, expected one of entra"),
            "{err}"
        );
    }
}
