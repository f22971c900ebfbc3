//! `kind: anthropic` in `routes.yaml`: Anthropic's Messages API. Its typed section (fields,
//! defaults, checks), its compiled [`Settings`], its `--check` line, and the built-in prices
//! of Claude's model ids on the Anthropic API (`prices.json`).

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::{Compiled, Problem, ProviderKind, Secret, SectionCtx};
use crate::providers::registry::{ProviderSection, Unit};
use crate::upstream::base_url::BaseUrl;
use crate::upstream::Classifier;

/// The API root, as in Anthropic's SDKs: the proxy appends `/v1/messages`.
const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header sent when the section gives none.
const DEFAULT_VERSION: &str = "2023-06-01";

/// The section as written; field order is the order errors list them in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Section {
    pub base_url: Option<Spanned<String>>,
    /// Required: sent as `x-api-key`.
    pub api_key: Option<Spanned<String>>,
    pub anthropic_version: Option<Spanned<String>>,
    /// Where the endpoint serves, for `regions:`.
    pub region: Option<Spanned<String>>,
    /// Which cloud it is, for `clouds:` (default `anthropic`).
    pub cloud: Option<Spanned<String>>,
}

/// A compiled `kind: anthropic` provider.
#[derive(Debug)]
pub struct Settings {
    /// The API root without a trailing slash, e.g. `https://api.anthropic.com`.
    pub base_url: BaseUrl,
    pub api_key: Secret,
    /// The `anthropic-version` header of every request.
    pub version: String,
}

impl ProviderSection for Section {
    const DEFAULT_CLOUD: &'static str = "anthropic";
    const PRICES: &'static str = include_str!("prices.json");

    /// A dated model id (`claude-sonnet-4-5-20250929`) or a `-latest` alias is billed at its
    /// family's price (`claude-sonnet-4-5`).
    fn price_alias(model: &str) -> Option<&str> {
        if !model.starts_with("claude-") {
            return None;
        }
        if let Some(family) = model.strip_suffix("-latest") {
            return Some(family);
        }
        let (family, date) = model.rsplit_once('-')?;
        (date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit())).then_some(family)
    }

    fn cloud(&self) -> Option<&Spanned<String>> {
        self.cloud.as_ref()
    }

    fn compile(self, cx: &mut SectionCtx<'_>) -> Result<Compiled, Problem> {
        let base_url = cx.base_url_or(self.base_url.as_ref(), "base_url", DEFAULT_BASE_URL)?;
        let api_key = cx.required(self.api_key.as_ref(), "api_key", "${ANTHROPIC_API_KEY}")?;
        let api_key = cx.setting(api_key, "api_key")?;
        let api_key = Secret::new(cx.take(api_key));
        let version = cx
            .text(self.anthropic_version.as_ref(), "anthropic_version")?
            .unwrap_or_else(|| DEFAULT_VERSION.to_owned());
        Ok(Compiled {
            kind: ProviderKind::Anthropic(Settings {
                base_url,
                api_key,
                version,
            }),
            region: cx.text(self.region.as_ref(), "region")?,
        })
    }
}

impl Unit for Settings {
    fn label(&self) -> &'static str {
        "anthropic"
    }

    fn describe(&self) -> String {
        format!(
            "base_url {}, anthropic-version {}, auth: x-api-key",
            self.base_url, self.version
        )
    }

    fn classifier(&self) -> Classifier {
        super::errors::classify
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.base_url.secrets();
        secrets.push(self.api_key.expose().to_owned());
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{provider, provider_error};
    use crate::config::{ConfigError, ProviderKind};

    fn settings(p: &crate::config::Provider) -> &Settings {
        match &p.kind {
            ProviderKind::Anthropic(settings) => settings,
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_trailing_slash() -> Result<(), ConfigError> {
        let p = provider(
            "    kind: anthropic\n    api_key: ${K}\n",
            &[("K", "sk-ant-1")],
        )?;
        assert_eq!(
            settings(&p).base_url.to_string(),
            "https://api.anthropic.com"
        );
        assert_eq!(settings(&p).version, "2023-06-01");
        assert_eq!(settings(&p).api_key.expose(), "sk-ant-1");
        assert_eq!(p.cloud, "anthropic");
        assert!(p.disabled.is_none());
        let local = provider(
            "    kind: anthropic\n    base_url: http://localhost:9000/\n    api_key: k\n    anthropic_version: 2024-01-01\n",
            &[],
        )?;
        assert_eq!(
            settings(&local).base_url.to_string(),
            "http://localhost:9000"
        );
        assert_eq!(settings(&local).version, "2024-01-01");
        Ok(())
    }

    #[test]
    fn an_unset_key_disables_the_provider_and_a_missing_one_is_an_error() -> Result<(), ConfigError>
    {
        let p = provider(
            "    kind: anthropic\n    api_key: ${NOT_SET_ANYWHERE:-}\n",
            &[],
        )?;
        assert!(
            p.disabled.as_deref().is_some_and(|d| d.contains("api_key")),
            "{:?}",
            p.disabled
        );
        let err = provider_error("    kind: anthropic\n");
        assert!(err.contains("missing `api_key`"), "{err}");
        Ok(())
    }

    #[test]
    fn the_describe_line_names_the_auth_not_the_key() -> Result<(), ConfigError> {
        let p = provider("    kind: anthropic\n    api_key: sk-ant-live\n", &[])?;
        let line = p.kind.unit().describe();
        assert!(!line.contains("sk-ant-live"), "{line}");
        assert_eq!(
            line,
            "base_url https://api.anthropic.com, anthropic-version 2023-06-01, auth: x-api-key"
        );
        Ok(())
    }

    #[test]
    fn dated_ids_and_latest_aliases_are_priced_as_their_family() {
        assert_eq!(
            Section::price_alias("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            Section::price_alias("claude-3-5-haiku-latest"),
            Some("claude-3-5-haiku")
        );
        assert_eq!(Section::price_alias("claude-sonnet-4-5"), None);
        assert_eq!(Section::price_alias("gpt-4o-2024-08-06"), None);
    }
}
