//! `providers:` — the part every kind shares: names, dispatch on `kind:` through the
//! registry (`providers/registry.rs`), placement (`region:`/`cloud:`), and the toolkit a
//! unit's section compiler uses ([`SectionCtx`]): `${VAR}` expansion, URLs, required
//! fields, and credentials that may be missing from the environment (which disables the
//! provider instead of failing). Each kind's own fields are compiled in its unit
//! (`providers/<kind>/config.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

use super::{shown, Ctx};
use crate::config::error::Problem;
use crate::config::policy::{Provider, ProviderKind};
use crate::config::raw::{Entries, RawProvider};
use crate::config::section::SectionError;
use crate::upstream::base_url::{redact_url_text, BaseUrl};

/// A provider setting after expansion: its value, or why it came out empty.
pub(crate) enum Setting {
    Value(String),
    /// Emptied by an environment variable; the provider is disabled for this reason.
    Blank(String),
}

/// What a unit's section compiler returns: the compiled kind, and where it serves
/// (Bedrock's region, or `region:` as written), if known.
pub(crate) struct Compiled {
    pub kind: ProviderKind,
    pub region: Option<String>,
}

pub(super) fn compile(
    ctx: &mut Ctx<'_>,
    raw: Option<Entries<RawProvider>>,
) -> Result<BTreeMap<String, Arc<Provider>>, Problem> {
    let mut providers = BTreeMap::new();
    for (name, raw) in raw.map(|entries| entries.0).unwrap_or_default() {
        check_name(&name)?;
        let path = format!("providers.{}", name.value);
        let kind = raw.kind.value.0;
        let mut cx = SectionCtx {
            ctx,
            name: &name,
            path: &path,
            kind: kind.name,
            blanks: Vec::new(),
        };
        let (compiled, cloud) = kind.compile(&raw.section, &mut cx)?;
        let disabled = (!cx.blanks.is_empty()).then(|| cx.blanks.join("; "));
        if let Some(reason) = &disabled {
            ctx.warnings
                .push(format!("provider {} disabled: {reason}", name.value));
        }
        let provider = Provider {
            name: name.value.clone(),
            kind: compiled.kind,
            disabled,
            region: compiled.region,
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

/// One provider's section being compiled: its name and YAML path, the environment, and
/// the reasons collected so far why it is unusable.
pub(crate) struct SectionCtx<'a> {
    ctx: &'a Ctx<'a>,
    name: &'a Spanned<String>,
    path: &'a str,
    kind: &'static str,
    blanks: Vec<String>,
}

impl SectionCtx<'_> {
    /// `providers.<name>`, the prefix of every message about this provider.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The provider's name as written (errors about the whole entry point at it).
    pub fn name(&self) -> &Spanned<String> {
        self.name
    }

    /// A section that did not fit the kind's struct, as a positioned problem. A key of
    /// another kind names this kind's fields.
    pub fn section_problem(&self, error: SectionError) -> Problem {
        match error.foreign_field {
            Some(foreign) => Problem::at(
                foreign.at,
                format!(
                    "{}: `{}` is not a field of a {} provider (its fields: kind, {})",
                    self.path,
                    foreign.field,
                    self.kind,
                    foreign.fields.join(", ")
                ),
            ),
            None => Problem::at(
                error.location.unwrap_or(Location::UNKNOWN),
                crate::config::redact_long_quotes(&error.message),
            ),
        }
    }

    /// The value of a setting, recording why it is unusable if it came out empty.
    pub fn take(&mut self, setting: Setting) -> String {
        match setting {
            Setting::Value(value) => value,
            Setting::Blank(reason) => {
                self.blanks.push(reason);
                String::new()
            }
        }
    }

    /// A field every provider of a kind needs; its absence is reported at the provider's name.
    pub fn required<'r>(
        &self,
        value: Option<&'r Spanned<String>>,
        field: &str,
        example: &str,
    ) -> Result<&'r Spanned<String>, Problem> {
        value.ok_or_else(|| {
            Problem::spanned(
                self.name,
                format!("{}: missing `{field}` (e.g. {field}: {example})", self.path),
            )
        })
    }

    /// A variable of the environment the policy is compiled in (for settings a kind reads
    /// from the environment by convention, like `AWS_BEARER_TOKEN_BEDROCK`).
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.ctx.env_var(name)
    }

    /// [`Self::setting_at`] for a field of the section itself.
    pub fn setting(&self, value: &Spanned<String>, field: &str) -> Result<Setting, Problem> {
        self.setting_at(value, self.path, field)
    }

    /// Expands a setting at `path` (a nested block's path). Empty because of the
    /// environment → `Blank` (the provider is disabled); empty as written → an error,
    /// since that is a typo rather than a deployment choice.
    pub fn setting_at(
        &self,
        value: &Spanned<String>,
        path: &str,
        field: &str,
    ) -> Result<Setting, Problem> {
        let what = format!("{path}.{field}");
        let expanded = self.ctx.expand(value, &what)?;
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

    /// An optional text setting: `None` when it comes out empty from the environment.
    pub fn text(
        &self,
        value: Option<&Spanned<String>>,
        field: &str,
    ) -> Result<Option<String>, Problem> {
        self.text_at(value, self.path, field)
    }

    /// [`Self::text`] for a nested block's field.
    pub fn text_at(
        &self,
        value: Option<&Spanned<String>>,
        path: &str,
        field: &str,
    ) -> Result<Option<String>, Problem> {
        Ok(match value {
            Some(value) => match self.setting_at(value, path, field)? {
                Setting::Value(text) => Some(text),
                Setting::Blank(_) => None,
            },
            None => None,
        })
    }

    /// [`Self::url_setting_at`] for a field of the section itself.
    pub fn url_setting(&self, value: &Spanned<String>, field: &str) -> Result<Setting, Problem> {
        self.url_setting_at(value, self.path, field)
    }

    /// A setting that must be an http(s) URL; the trailing slash is dropped.
    pub fn url_setting_at(
        &self,
        value: &Spanned<String>,
        path: &str,
        field: &str,
    ) -> Result<Setting, Problem> {
        let url = match self.setting_at(value, path, field)? {
            Setting::Value(url) => url,
            blank => return Ok(blank),
        };
        let looks_like_http = url.starts_with("http://") || url.starts_with("https://");
        match BaseUrl::parse(&url) {
            Ok(_) if looks_like_http && !url.contains(char::is_whitespace) => {
                Ok(Setting::Value(url.trim_end_matches('/').to_owned()))
            }
            _ => Err(Problem::spanned(
                value,
                format!(
                    "{path}.{field}: {} is not an http:// or https:// URL",
                    shown_url(value, &url)
                ),
            )),
        }
    }

    /// [`Self::base_url`] when the field is given, else `default`.
    pub fn base_url_or(
        &mut self,
        value: Option<&Spanned<String>>,
        field: &str,
        default: &str,
    ) -> Result<BaseUrl, Problem> {
        match value {
            Some(value) => self.base_url(value, field),
            None => BaseUrl::parse(default).map_err(|reason| {
                Problem::spanned(self.name, format!("{}.{field}: {reason}", self.path))
            }),
        }
    }

    /// A provider's base URL (`base_url`, `endpoint`), parsed once here. Emptied by the
    /// environment, it disables the provider and stands as an unusable placeholder.
    pub fn base_url(&mut self, value: &Spanned<String>, field: &str) -> Result<BaseUrl, Problem> {
        let setting = self.url_setting(value, field)?;
        let text = self.take(setting);
        // A disabled provider is never planned: the placeholder is never sent to.
        let text = if text.is_empty() {
            "http://disabled.invalid".to_owned()
        } else {
            text
        };
        BaseUrl::parse(&text).map_err(|reason| {
            Problem::spanned(
                value,
                format!(
                    "{}.{field}: {}: {reason}",
                    self.path,
                    shown_url(value, &text)
                ),
            )
        })
    }
}

/// A URL setting as an error may show it: without user-info or query values.
fn shown_url(raw: &Spanned<String>, expanded: &str) -> String {
    match url::Url::parse(expanded) {
        Ok(_) if !raw.value.contains("${") => format!("`{}`", redact_url_text(expanded)),
        _ => shown(raw, expanded),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{compile_yaml, error_of, provider, provider_error};
    use crate::config::ConfigError;

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
        let err = provider_error("    kind: openai\n    api_key: ''\n");
        assert!(
            err.starts_with("routes.yaml:5:14: providers.p.api_key is empty"),
            "{err}"
        );
    }

    #[test]
    fn unknown_kind_and_bad_names_are_refused() {
        let kind = provider_error("    kind: vertex\n");
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
    fn kind_may_come_after_the_other_fields_and_cloud_overrides_the_default(
    ) -> Result<(), ConfigError> {
        let p = provider(
            "    base_url: http://127.0.0.1:9/v1\n    cloud: on-prem\n    region: ${R}\n    kind: openai\n",
            &[("R", "eu-west-1")],
        )?;
        assert_eq!(p.kind.label(), "openai");
        assert_eq!(
            (p.region.as_deref(), p.cloud.as_str()),
            (Some("eu-west-1"), "on-prem")
        );
        let err = provider_error("    base_url: http://127.0.0.1:9/v1\n");
        assert!(err.contains("missing field `kind`"), "{err}");
        Ok(())
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_refused_where_it_is() {
        let err = provider_error("    kind: openai\n    api_key: [a, b]\n");
        assert!(
            err.starts_with("routes.yaml:5:14: invalid type: sequence"),
            "{err}"
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
}
