//! The provider kinds: one line per kind in [`KINDS`], naming its `kind:` word and the
//! typed config section that reads and compiles it; and [`Unit`], what the rest of the
//! proxy asks a compiled provider (its label, `/admin/routes` / `--check` description,
//! error classifier). Request and answer translation are dispatched in `providers/mod.rs`.
//!
//! # Adding a provider kind (say `anthropic`)
//!
//! 1. **One folder**, `providers/anthropic/`, declared in `providers/mod.rs`, with:
//!    - `config.rs`: `Section`, a `#[derive(Deserialize)] #[serde(deny_unknown_fields)]`
//!      struct of the kind's fields (each `Option<Spanned<String>>` or a nested block, so
//!      errors keep `file:line:col`; declare `region` and `cloud` too, they are common to
//!      every kind), implementing [`ProviderSection`]: `DEFAULT_CLOUD`, `cloud()`,
//!      `compile()` (expand and check each field with the [`SectionCtx`] helpers —
//!      `setting`, `url_setting`, `required`, `take`, `text` — which also disable the
//!      provider when a credential variable is unset), and optionally `PRICES` (a JSON
//!      table of the kind's model ids, like `bedrock/prices.json`) and `price_alias`.
//!      `Settings` is the compiled form; it implements [`Unit`] (`label`, `describe`,
//!      `classifier`, and `upstream_model_field` if targets name something else than a
//!      model).
//!    - `errors.rs`: `classify(status, headers, body)`, the kind's own error vocabulary
//!      first, then `upstream::classify::classify_status` for the generic HTTP rules.
//!      `upstream/` never imports a provider; the classifier is handed to each send.
//!    - the request builder and the answer/stream decoders (see `providers/mod.rs`),
//!      and credentials with their refresh if the kind needs any (as `azure/entra/` and
//!      `bedrock/credentials.rs` do).
//! 2. **One variant** `ProviderKind::Anthropic(anthropic::config::Settings)` in
//!    `config/policy.rs`, its arm in [`ProviderKind::unit`], and **one line** in [`KINDS`]:
//!    `Kind::new::<anthropic::config::Section>("anthropic")`. The closed `match`es of
//!    `providers/mod.rs` then name the new variant where the compiler asks: an arm in
//!    `build_requests`, one in `decode_answer`, and a `StreamDecoder` variant (with its
//!    framing in `StreamDecoder::framing`). A kind with refreshed credentials also starts its
//!    refresher beside the others in `server.rs` and publishes into `ProviderRuntime`.
//! 3. **Its simulator** in `loadtest/` (its API, its streaming, its rate-limit headers and
//!    faults), and the kind's cases in the end-to-end tests.

use std::sync::LazyLock;

use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;

use super::{anthropic, azure, bedrock, openai, ProviderRuntime};
use crate::config::{Compiled, Problem, ProviderKind, RawSection, SectionCtx};
use crate::upstream::Classifier;

/// Every provider kind, in the order `kind:` errors list them.
static KINDS: [Kind; 4] = [
    Kind::new::<openai::config::Section>("openai"),
    Kind::new::<azure::config::Section>("azure"),
    Kind::new::<bedrock::config::Section>("bedrock"),
    Kind::new::<anthropic::config::Section>("anthropic"),
];

/// A kind's typed section of `providers:`: read from the buffered YAML, then compiled.
pub(crate) trait ProviderSection: DeserializeOwned {
    /// The `cloud:` of a provider that gives none (for `clouds:` placement).
    const DEFAULT_CLOUD: &'static str;
    /// Built-in list prices of the kind's model ids, as JSON
    /// (`{"model-id": {"input": …, "output": …, "cached_input"?, "cache_write"?}}`; keys
    /// starting with `_` are notes), used when a target gives no `price:`.
    const PRICES: &'static str = "{}";

    /// The id whose built-in price applies to `model` when `model` itself has none
    /// (Bedrock's inference profiles are billed at their base model's price).
    fn price_alias(_model: &str) -> Option<&str> {
        None
    }

    /// `cloud:` as written.
    fn cloud(&self) -> Option<&Spanned<String>>;

    /// Checks and expands the section into the compiled provider kind.
    fn compile(self, cx: &mut SectionCtx<'_>) -> Result<Compiled, Problem>;
}

/// What the proxy asks a compiled provider, whatever its kind.
pub trait Unit {
    /// The `kind:` word as written in `routes.yaml`.
    fn label(&self) -> &'static str;
    /// One line for `--check` and `/admin/routes`: endpoint and how it authenticates,
    /// never a secret.
    fn describe(&self) -> String;
    /// How the kind's non-2xx answers are classified (fail over or return).
    fn classifier(&self) -> Classifier;
    /// What a target's upstream name is called for this kind (`model`, `deployment`).
    fn upstream_model_field(&self) -> &'static str {
        "model"
    }
    /// For `/admin/routes`: the state of credentials refreshed in the background for
    /// provider `name`, if this kind has any worth showing.
    fn credential_status(
        &self,
        _name: &str,
        _runtime: &ProviderRuntime,
        _now: tokio::time::Instant,
    ) -> Option<serde_json::Value> {
        None
    }
    /// Every credential the provider's settings hold (keys, secrets, credentials inside a
    /// URL), for the policy's scrubber of upstream text (`upstream/scrub.rs`).
    fn secrets(&self) -> Vec<String>;
}

impl ProviderKind {
    /// The kind's unit: the only `match` on the kind outside translation.
    pub fn unit(&self) -> &dyn Unit {
        match self {
            ProviderKind::OpenAi(settings) => settings,
            ProviderKind::Azure(settings) => settings,
            ProviderKind::Bedrock(settings) => settings,
            ProviderKind::Anthropic(settings) => settings,
        }
    }

    /// The `kind:` word as written in `routes.yaml`.
    pub fn label(&self) -> &'static str {
        self.unit().label()
    }
}

/// Reads and compiles one kind's section; also returns the provider's cloud.
type CompileFn = fn(&RawSection, &mut SectionCtx<'_>) -> Result<(Compiled, String), Problem>;

/// One registered kind.
pub(crate) struct Kind {
    pub name: &'static str,
    compile: CompileFn,
    /// The kind's built-in prices (see [`ProviderSection::PRICES`]).
    pub prices: &'static str,
    /// See [`ProviderSection::price_alias`].
    pub price_alias: fn(&str) -> Option<&str>,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Kind {
    const fn new<S: ProviderSection>(name: &'static str) -> Self {
        Self {
            name,
            compile: compile_section::<S>,
            prices: S::PRICES,
            price_alias: S::price_alias,
        }
    }

    /// Reads the section into the kind's struct and compiles it; also returns the
    /// provider's cloud.
    pub(crate) fn compile(
        &self,
        raw: &RawSection,
        cx: &mut SectionCtx<'_>,
    ) -> Result<(Compiled, String), Problem> {
        (self.compile)(raw, cx)
    }
}

fn compile_section<S: ProviderSection>(
    raw: &RawSection,
    cx: &mut SectionCtx<'_>,
) -> Result<(Compiled, String), Problem> {
    let section: S = raw.read().map_err(|error| cx.section_problem(error))?;
    let cloud = section.cloud().cloned();
    let compiled = section.compile(cx)?;
    let cloud = cx.text(cloud.as_ref(), "cloud")?;
    Ok((
        compiled,
        cloud.unwrap_or_else(|| S::DEFAULT_CLOUD.to_owned()),
    ))
}

/// The kind named `name`, if there is one.
pub(crate) fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|kind| kind.name == name)
}

/// The kinds' names, for "expected one of" messages.
pub(crate) fn names() -> &'static [&'static str] {
    static NAMES: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| KINDS.iter().map(|kind| kind.name).collect());
    NAMES.as_slice()
}

/// Every registered kind.
pub(crate) fn kinds() -> &'static [Kind] {
    &KINDS
}

/// How `kind`'s non-2xx answers are classified; handed to the upstream client per send.
pub fn classifier(kind: &ProviderKind) -> Classifier {
    kind.unit().classifier()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name_and_names_are_unique() {
        for name in names() {
            assert_eq!(kind(name).map(|k| k.name), Some(*name));
        }
        let mut sorted = names().to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), KINDS.len());
        assert!(kind("vertex").is_none());
    }
}
