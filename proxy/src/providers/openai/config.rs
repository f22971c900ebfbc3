//! `kind: openai` in `routes.yaml`: any OpenAI-compatible endpoint. Its typed section
//! (fields, defaults, checks), its compiled [`Settings`], its `--check` line, and the
//! built-in prices of OpenAI's models (`prices.json`).

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::{Compiled, Problem, ProviderKind, Secret, SectionCtx};
use crate::providers::registry::{ProviderSection, Unit};
use crate::upstream::base_url::BaseUrl;
use crate::upstream::Classifier;

const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The section as written; field order is the order errors list them in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Section {
    pub base_url: Option<Spanned<String>>,
    pub api_key: Option<Spanned<String>>,
    /// Where the endpoint serves, for `regions:`.
    pub region: Option<Spanned<String>>,
    /// Which cloud it is, for `clouds:` (default `openai`).
    pub cloud: Option<Spanned<String>>,
    /// `native`: Responses clients' bodies go to `<base_url>/responses` as they are.
    pub responses: Option<Spanned<crate::providers::native_responses::ResponsesMode>>,
}

/// A compiled `kind: openai` provider.
#[derive(Debug)]
pub struct Settings {
    /// Without a trailing slash, e.g. `https://api.openai.com/v1`; may carry a query.
    pub base_url: BaseUrl,
    pub api_key: Option<Secret>,
    /// `responses: native`: serves Responses clients at `<base_url>/responses`.
    pub responses_native: bool,
}

impl ProviderSection for Section {
    const DEFAULT_CLOUD: &'static str = "openai";
    const PRICES: &'static str = include_str!("prices.json");

    fn cloud(&self) -> Option<&Spanned<String>> {
        self.cloud.as_ref()
    }

    fn compile(self, cx: &mut SectionCtx<'_>) -> Result<Compiled, Problem> {
        let base_url = cx.base_url_or(self.base_url.as_ref(), "base_url", DEFAULT_BASE_URL)?;
        let api_key = match &self.api_key {
            Some(value) => Some(cx.setting(value, "api_key")?),
            None => None,
        };
        let api_key = api_key.map(|key| Secret::new(cx.take(key)));
        Ok(Compiled {
            kind: ProviderKind::OpenAi(Settings {
                base_url,
                api_key,
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
        "openai"
    }

    fn describe(&self) -> String {
        let auth = match self.api_key {
            Some(_) => "api key",
            None => "none",
        };
        format!("base_url {}, auth: {auth}", self.base_url)
    }

    fn classifier(&self) -> Classifier {
        super::errors::classify
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.base_url.secrets();
        secrets.extend(self.api_key.iter().map(|key| key.expose().to_owned()));
        secrets
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{provider, provider_error};
    use crate::config::{ConfigError, ProviderKind, Secret};

    #[test]
    fn openai_defaults_and_trailing_slash() -> Result<(), ConfigError> {
        let default = provider("    kind: openai\n", &[])?;
        match &default.kind {
            ProviderKind::OpenAi(settings) => {
                assert_eq!(settings.base_url.to_string(), "https://api.openai.com/v1");
                assert!(settings.api_key.is_none());
            }
            other => unreachable!("{other:?}"),
        }
        assert_eq!(default.cloud, "openai");
        let local = provider(
            "    kind: openai\n    base_url: http://localhost:8000/v1/\n    api_key: ${K}\n    region: ${R:-}\n",
            &[("K", "sk-1")],
        )?;
        match &local.kind {
            ProviderKind::OpenAi(settings) => {
                assert_eq!(settings.base_url.to_string(), "http://localhost:8000/v1");
                assert_eq!(settings.api_key.as_ref().map(Secret::expose), Some("sk-1"));
            }
            other => unreachable!("{other:?}"),
        }
        assert!(local.disabled.is_none());
        assert!(local.region.is_none(), "a blank region means unknown");
        Ok(())
    }

    #[test]
    fn a_number_looking_key_is_kept_as_written() -> Result<(), ConfigError> {
        let p = provider("    kind: openai\n    api_key: 0x1F\n", &[])?;
        let key = match &p.kind {
            ProviderKind::OpenAi(settings) => settings.api_key.as_ref().map(Secret::expose),
            _ => None,
        };
        assert_eq!(key, Some("0x1F"));
        Ok(())
    }

    #[test]
    fn urls_must_be_http_or_https() {
        let err = provider_error("    kind: openai\n    base_url: api.openai.com/v1\n");
        assert!(err.starts_with("routes.yaml:5:15: providers.p.base_url: `api.openai.com/v1` is not an http:// or https:// URL"), "{err}");
    }

    #[test]
    fn fields_of_another_kind_are_refused() {
        let err = provider_error("    kind: openai\n    api_version: v1\n");
        assert_eq!(err, "routes.yaml:5:18: providers.p: `api_version` is not a field of a openai provider (its fields: kind, base_url, api_key, region, cloud, responses)");
        let err = provider_error(
            "    kind: openai\n    assume_role: { role_arn: 'arn:aws:iam::1:role/r' }\n",
        );
        assert!(
            err.contains("`assume_role` is not a field of a openai provider"),
            "{err}"
        );
    }

    #[test]
    fn the_describe_line_names_the_auth_not_the_key() -> Result<(), ConfigError> {
        let p = provider("    kind: openai\n    api_key: sk-live-1\n", &[])?;
        let line = p.kind.unit().describe();
        assert_eq!(line, "base_url https://api.openai.com/v1, auth: api key");
        Ok(())
    }
}
