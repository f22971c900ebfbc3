//! `entra:` of an azure provider with `auth: entra`: the credential type and its fields,
//! as written and compiled. The proxy picks the credential from config (azure_identity no
//! longer has a default chain).

use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::config::{loopback_http_host, Problem, Secret, SectionCtx};

const DEFAULT_SCOPE: &str = "https://cognitiveservices.azure.com/.default";
const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// `entra:` as written; [`compile`] checks which fields each credential allows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEntra {
    pub credential: Option<Spanned<RawEntraCredential>>,
    pub tenant_id: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    pub client_secret: Option<Spanned<String>>,
    pub federated_token_file: Option<Spanned<String>>,
    pub authority_host: Option<Spanned<String>>,
    pub scope: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawEntraCredential {
    ClientSecret,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
}

/// `auth: entra` with its optional `entra:` block: which identity gets the access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraSettings {
    pub credential: EntraCredential,
    /// Token scope; default `https://cognitiveservices.azure.com/.default`.
    pub scope: String,
    /// Microsoft Entra authority, without a trailing slash; default
    /// `https://login.microsoftonline.com` (sovereign clouds and tests override it). Always
    /// `https://`, except plain `http://` on a loopback host (see [`loopback_http_host`]).
    pub authority_host: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraCredential {
    /// An app registration's client secret (OAuth2 client credentials).
    ClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
    },
    /// AKS workload identity: a federated token file exchanged for an access token.
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// The VM / App Service / Container Apps identity; `client_id` picks a user-assigned one.
    ManagedIdentity { client_id: Option<String> },
    /// `az account get-access-token` (development machines).
    AzureCli,
}

impl EntraCredential {
    pub fn label(&self) -> &'static str {
        match self {
            EntraCredential::ClientSecret { .. } => "client_secret",
            EntraCredential::WorkloadIdentity { .. } => "workload_identity",
            EntraCredential::ManagedIdentity { .. } => "managed_identity",
            EntraCredential::AzureCli => "azure_cli",
        }
    }
}

/// Compiles `entra:` (absent: the managed identity); `path` is the provider's.
pub(crate) fn compile(
    cx: &mut SectionCtx<'_>,
    raw: Option<&Spanned<RawEntra>>,
) -> Result<EntraSettings, Problem> {
    let Some(block) = raw else {
        return Ok(EntraSettings {
            credential: EntraCredential::ManagedIdentity { client_id: None },
            scope: DEFAULT_SCOPE.to_owned(),
            authority_host: DEFAULT_AUTHORITY.to_owned(),
        });
    };
    let raw = &block.value;
    let path = format!("{}.entra", cx.path());
    let kind = raw
        .credential
        .as_ref()
        .map_or(RawEntraCredential::ManagedIdentity, |c| c.value);
    let mut field = |value: &Option<Spanned<String>>, name: &str| -> Result<String, Problem> {
        let value = value.as_ref().ok_or_else(|| {
            Problem::spanned(
                block,
                format!("{path}: missing `{name}` (needed by this credential)"),
            )
        })?;
        let setting = cx.setting_at(value, &path, name)?;
        Ok(cx.take(setting))
    };
    let (credential, allowed): (EntraCredential, &[&str]) = match kind {
        RawEntraCredential::ClientSecret => (
            EntraCredential::ClientSecret {
                tenant_id: field(&raw.tenant_id, "tenant_id")?,
                client_id: field(&raw.client_id, "client_id")?,
                client_secret: Secret::new(field(&raw.client_secret, "client_secret")?),
            },
            &["tenant_id", "client_id", "client_secret"],
        ),
        RawEntraCredential::WorkloadIdentity => (
            EntraCredential::WorkloadIdentity {
                tenant_id: field(&raw.tenant_id, "tenant_id")?,
                client_id: field(&raw.client_id, "client_id")?,
                token_file: PathBuf::from(field(
                    &raw.federated_token_file,
                    "federated_token_file",
                )?),
            },
            &["tenant_id", "client_id", "federated_token_file"],
        ),
        RawEntraCredential::ManagedIdentity => {
            let client_id = match &raw.client_id {
                Some(_) => Some(field(&raw.client_id, "client_id")?),
                None => None,
            };
            (
                EntraCredential::ManagedIdentity { client_id },
                &["client_id"],
            )
        }
        RawEntraCredential::AzureCli => (EntraCredential::AzureCli, &[]),
    };
    only_fields(raw, &path, credential.label(), allowed)?;
    let scope = match &raw.scope {
        Some(value) => {
            let setting = cx.setting_at(value, &path, "scope")?;
            cx.take(setting)
        }
        None => DEFAULT_SCOPE.to_owned(),
    };
    let authority_host = match &raw.authority_host {
        Some(value) => {
            let setting = cx.url_setting_at(value, &path, "authority_host")?;
            let url = cx.take(setting);
            // azure_identity takes only https authorities; plain http is kept for simulators.
            if url.starts_with("http://") && loopback_http_host(&url).is_none() {
                return Err(Problem::spanned(
                    value,
                    format!("{path}: `authority_host` must be https:// (plain http:// only on 127.0.0.1, [::1] or localhost)"),
                ));
            }
            url
        }
        None => DEFAULT_AUTHORITY.to_owned(),
    };
    Ok(EntraSettings {
        credential,
        scope,
        authority_host,
    })
}

/// Rejects identity fields the chosen credential does not use (a likely mistake).
fn only_fields(
    raw: &RawEntra,
    path: &str,
    credential: &str,
    allowed: &[&str],
) -> Result<(), Problem> {
    let at = |value: &Option<Spanned<String>>| value.as_ref().map(|v| v.referenced);
    let present: [(&str, Option<Location>); 4] = [
        ("tenant_id", at(&raw.tenant_id)),
        ("client_id", at(&raw.client_id)),
        ("client_secret", at(&raw.client_secret)),
        ("federated_token_file", at(&raw.federated_token_file)),
    ];
    for (field, location) in present {
        if let Some(location) = location.filter(|_| !allowed.contains(&field)) {
            return Err(Problem::at(
                location,
                format!("{path}: `{field}` is not used by `credential: {credential}`"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{compile_yaml, error_of};
    use crate::config::{azure, AzureAuth, EntraCredential, ProviderKind};

    const BASE: &str = "version: 1\nproviders:\n  az:\n    kind: azure\n    endpoint: https://c.openai.azure.com\n    api_version: v1\n    auth: entra\n";

    #[test]
    fn client_secret_with_overrides() {
        let yaml = format!("{BASE}    entra:\n      credential: client_secret\n      tenant_id: t\n      client_id: c\n      client_secret: ${{AZ_SECRET}}\n      authority_host: http://127.0.0.1:9/\n      scope: https://ai.azure.com/.default\n");
        let policy = compile_yaml(&yaml, &[("AZ_SECRET", "s3")]).unwrap();
        let ProviderKind::Azure(azure::Settings {
            auth: AzureAuth::Entra(settings),
            ..
        }) = &policy.providers["az"].kind
        else {
            panic!("not entra");
        };
        assert!(
            matches!(&settings.credential, EntraCredential::ClientSecret { client_secret, .. } if client_secret.expose() == "s3")
        );
        assert_eq!(settings.authority_host, "http://127.0.0.1:9");
        assert_eq!(settings.scope, "https://ai.azure.com/.default");
    }

    #[test]
    fn missing_and_foreign_fields_are_errors_and_an_empty_secret_disables() {
        let err = error_of(
            &format!("{BASE}    entra: {{credential: client_secret, tenant_id: t}}\n"),
            &[],
        );
        assert!(err.contains("missing `client_id`"), "{err}");
        let err = error_of(
            &format!("{BASE}    entra: {{credential: azure_cli, tenant_id: t}}\n"),
            &[],
        );
        assert!(
            err.contains("`tenant_id` is not used by `credential: azure_cli`"),
            "{err}"
        );
        let err = error_of(
            &format!("{BASE}    entra: {{credential: azure_cli, authority_host: 'http://login.example.com'}}\n"),
            &[],
        );
        assert!(err.contains("must be https://"), "{err}");
        let err = error_of(&format!("{BASE}    entra: {{credential: password}}\n"), &[]);
        assert!(err.contains("password"), "{err}");
        let err = error_of(&format!("{BASE}    entra: {{tenant: t}}\n"), &[]);
        assert!(err.contains("unknown field `tenant`"), "{err}");
        let yaml = format!("{BASE}    entra: {{credential: client_secret, tenant_id: t, client_id: c, client_secret: '${{NOPE:-}}'}}\n");
        let policy = compile_yaml(&yaml, &[]).unwrap();
        assert!(policy.providers["az"].disabled.is_some());
    }

    #[test]
    fn an_entra_block_needs_auth_entra() {
        let yaml = "version: 1\nproviders:\n  az: {kind: azure, endpoint: 'https://c.openai.azure.com', api_version: v1, api_key: k, entra: {credential: azure_cli}}\n";
        assert!(error_of(yaml, &[]).contains("only used with `auth: entra`"));
    }
}
