//! The serde mirror of `routes.yaml`: exactly what may be written, nothing validated yet.
//!
//! Unknown fields are denied everywhere. Values that compile expands (`${VAR}`) or
//! parses (sizes, durations) are `Spanned<String>` so that its errors can point at
//! them. A provider's keys other than `kind` are buffered with their spans
//! ([`RawSection`]): serde's tagged enums would drop the spans, so compile reads them
//! into the kind's own typed section (`providers/<kind>/config.rs`) once `kind` is known.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::section::{Node, RawSection};
use crate::providers::registry::{self, Kind};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub version: Spanned<i64>,
    pub server: Option<RawServer>,
    pub ledger: Option<RawLedger>,
    pub responses: Option<RawResponses>,
    pub telemetry: Option<RawTelemetry>,
    pub providers: Option<Entries<RawProvider>>,
    pub models: Option<Entries<RawModel>>,
    pub teams: Option<Entries<RawTeam>>,
}

/// `server:`; sizes and durations are strings (a bare integer scalar reads as one too).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub admin_listen: Option<Spanned<String>>,
    pub admin_token: Option<Spanned<String>>,
    pub request_timeout: Option<Spanned<String>>,
    pub max_request_bytes: Option<Spanned<String>>,
    pub max_response_bytes: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub first_byte_timeout: Option<Spanned<String>>,
    pub max_attempts: Option<Spanned<i64>>,
    /// A stream with no upstream event for this long has stalled (docs/streams.md).
    pub stream_idle_timeout: Option<Spanned<String>>,
    /// The client side (compile/client.rs): timeouts, limits, shutdown and TLS.
    pub header_read_timeout: Option<Spanned<String>>,
    pub keepalive_idle_timeout: Option<Spanned<String>>,
    pub body_read_timeout: Option<Spanned<String>>,
    pub max_client_connections: Option<Spanned<i64>>,
    pub max_header_bytes: Option<Spanned<String>>,
    pub shutdown_grace: Option<Spanned<String>>,
    pub tls: Option<RawTls>,
}

/// `server.tls:` — the client listener's certificate chain and private key (PEM files).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub cert_file: Spanned<String>,
    pub key_file: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLedger {
    pub url: Option<Spanned<String>>,
    pub flush_interval: Option<Spanned<String>>,
    /// Bound on the PostgreSQL budget reservation before the local book answers (500ms).
    pub reserve_timeout: Option<Spanned<String>>,
    /// `redis://…`: rate limits shared by every replica (else counted per replica).
    pub redis: Option<Spanned<String>>,
    /// Namespace of the rate-limit keys in Redis (default `switchyard`).
    pub redis_prefix: Option<Spanned<String>>,
    /// Bound of the in-memory ledger buffer, in entries (default 100000).
    pub buffer_entries: Option<Spanned<i64>>,
    /// `90d`, a duration, or `keep` (the default): how long ledger rows are kept.
    pub retention: Option<Spanned<String>>,
}

/// `responses:` — the stored Responses conversations (compiled in `compile/responses.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResponses {
    /// `30d`, a duration, or `keep`.
    pub retention: Option<Spanned<String>>,
    pub cache_entries: Option<Spanned<i64>>,
}

/// `telemetry:` — OTLP trace export (compiled in `compile/telemetry.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    /// The collector's base URL; else `OTEL_EXPORTER_OTLP_ENDPOINT`; else no export.
    pub otlp_endpoint: Option<Spanned<String>>,
    /// `grpc` or `http` (OTLP/HTTP with protobuf); else `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub otlp_protocol: Option<Spanned<String>>,
    /// Fraction of new traces recorded, 0..1 (default 1).
    pub sample_ratio: Option<Spanned<f64>>,
    /// Ended spans queued for export at most (default 2048).
    pub max_queue_spans: Option<Spanned<i64>>,
}

/// A `kind:` word: one of the registry's kinds (`providers/registry.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawKind(pub &'static Kind);

/// Read as a unit enum variant (as a derived enum is), so that serde-saphyr puts an
/// unknown kind's error at the word itself.
impl<'de> Deserialize<'de> for RawKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum("RawKind", registry::names(), KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = RawKind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a provider kind")
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<RawKind, A::Error> {
        let (kind, variant) = data.variant_seed(KindName)?;
        de::VariantAccess::unit_variant(variant)?;
        Ok(kind)
    }

    /// The variant's name, checked against the registry.
    fn visit_str<E: de::Error>(self, word: &str) -> Result<RawKind, E> {
        registry::kind(word)
            .map(RawKind)
            .ok_or_else(|| E::unknown_variant(word, registry::names()))
    }
}

/// The variant identifier inside [`KindVisitor::visit_enum`].
struct KindName;

impl<'de> de::DeserializeSeed<'de> for KindName {
    type Value = RawKind;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawKind, D::Error> {
        deserializer.deserialize_identifier(KindVisitor)
    }
}

/// One provider: its `kind:` and the rest of its keys, read by that kind's own typed
/// section once the kind is known (see the module note).
#[derive(Debug)]
pub(crate) struct RawProvider {
    pub kind: Spanned<RawKind>,
    pub section: RawSection,
}

impl<'de> Deserialize<'de> for RawProvider {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ProviderVisitor)
    }
}

struct ProviderVisitor;

impl<'de> Visitor<'de> for ProviderVisitor {
    type Value = RawProvider;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a provider (a mapping with `kind:`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawProvider, A::Error> {
        let mut kind = None;
        let mut section = RawSection::default();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            match key.value.as_str() {
                "kind" => kind = Some(map.next_value::<Spanned<RawKind>>()?),
                _ => section
                    .entries
                    .push((key, map.next_value::<Spanned<Node>>()?)),
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        Ok(RawProvider { kind, section })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawStrategy {
    Priority,
    Latency,
    Cost,
    Balanced,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub strategy: Option<Spanned<RawStrategy>>,
    pub targets: Option<Spanned<Vec<Spanned<RawTarget>>>>,
    pub fallbacks: Option<Vec<Spanned<String>>>,
    pub max_output_tokens: Option<Spanned<i64>>,
    pub first_byte_timeout: Option<Spanned<String>>,
    /// Only the word `free` is meaningful here; compile says so otherwise.
    pub price: Option<Spanned<String>>,
    /// SLO on time to first token (a duration).
    pub max_ttft: Option<Spanned<String>>,
    pub weights: Option<RawWeights>,
    pub health: Option<RawHealth>,
    /// `p95` or a duration.
    pub hedge_after: Option<Spanned<String>>,
    /// Data residency: only targets whose provider is in one of these regions / clouds.
    pub regions: Option<Vec<Spanned<String>>>,
    pub clouds: Option<Vec<Spanned<String>>>,
    /// Continue a broken stream on the next target (docs/streams.md).
    pub resume_streams: Option<Spanned<bool>>,
    /// Responses: `allow` lets built-in tools through to `responses: native` targets.
    pub builtin_tools: Option<Spanned<String>>,
    /// Responses: keep a turn that replays encrypted reasoning on its provider's targets.
    pub sticky_reasoning: Option<Spanned<bool>>,
}

/// `weights:` of the balanced strategy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWeights {
    pub latency: Option<Spanned<f64>>,
    pub cost: Option<Spanned<f64>>,
    pub headroom: Option<Spanned<f64>>,
}

/// `health:` — cool-down and circuit-breaker thresholds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    pub failures: Option<Spanned<i64>>,
    pub open_for: Option<Spanned<String>>,
    pub cooldown: Option<Spanned<String>>,
    pub max_cooldown: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub provider: Spanned<String>,
    pub model: Option<Spanned<String>>,
    pub deployment: Option<Spanned<String>>,
    pub price: Option<Spanned<RawPrice>>,
    pub limits: Option<RawLimits>,
    /// azure: `provisioned` (PTU, prepaid) or `standard` (pay-as-you-go, the default).
    pub tier: Option<Spanned<RawTier>>,
    /// bedrock: model-native fields passed through as Converse `additionalModelRequestFields`.
    pub additional_model_request_fields: Option<Spanned<serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawTier {
    Provisioned,
    Standard,
}

/// A target's `price:` — the word `free`, or USD per million tokens.
#[derive(Debug)]
pub(crate) enum RawPrice {
    Free,
    PerMillion(Box<RawPriceTable>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPriceTable {
    pub input: Spanned<f64>,
    pub output: Spanned<f64>,
    pub cached_input: Option<Spanned<f64>>,
    pub cache_write: Option<Spanned<f64>>,
    pub cache_write_1h: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub rpm: Option<Spanned<i64>>,
    pub tpm: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTeam {
    pub keys: Option<Vec<Spanned<String>>>,
    pub models: Option<Vec<Spanned<String>>>,
    pub budget: Option<RawBudget>,
    pub alert_at: Option<Spanned<f64>>,
    pub limits: Option<RawLimits>,
    /// Data residency for every request of the team.
    pub regions: Option<Vec<Spanned<String>>>,
    pub clouds: Option<Vec<Spanned<String>>>,
    /// Every answer carries `x-switchyard-route` (the attempt chain).
    pub debug: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub usd: Spanned<f64>,
    /// Default: monthly.
    pub period: Option<RawPeriod>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawPeriod {
    Daily,
    Weekly,
    Monthly,
}

/// A YAML mapping kept in file order with the position of each key, so that
/// errors about a whole entry (a provider missing a field) can point at its name.
#[derive(Debug)]
pub(crate) struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

struct EntriesVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
    type Value = Entries<V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of names to entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Entries(entries))
    }
}

impl<'de> Deserialize<'de> for RawPrice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PriceVisitor)
    }
}

struct PriceVisitor;

impl<'de> Visitor<'de> for PriceVisitor {
    type Value = RawPrice;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No long quoted text: the loader masks long quotes as possible secrets.
        f.write_str("`free` or USD per million tokens as { input: 2.5, output: 10 }")
    }

    fn visit_str<E: de::Error>(self, word: &str) -> Result<RawPrice, E> {
        match word {
            "free" => Ok(RawPrice::Free),
            _ => Err(E::invalid_value(de::Unexpected::Str(word), &self)),
        }
    }

    // Delegating to the derived struct keeps `deny_unknown_fields` and the spans of its fields.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPrice, A::Error> {
        RawPriceTable::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(|table| RawPrice::PerMillion(Box::new(table)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RawConfig, String> {
        serde_saphyr::from_str_with_options(yaml, serde_saphyr::options! { with_snippet: false })
            .map_err(|err| err.render_with_formatter(&serde_saphyr::UserMessageFormatter))
    }

    #[test]
    fn minimal_file_is_just_a_version() {
        let raw = parse("version: 1\n");
        assert!(
            matches!(
                raw,
                Ok(RawConfig {
                    providers: None,
                    ..
                })
            ),
            "{raw:?}"
        );
    }

    #[test]
    fn entries_keep_file_order_and_key_positions() {
        let raw = parse("version: 1\nproviders:\n  zeta: {kind: openai}\n  alpha: {kind: bedrock, region: us-east-1}\n");
        let names: Vec<(String, u64)> = raw
            .ok()
            .and_then(|raw| raw.providers)
            .map(|entries| entries.0)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, _)| (name.value, name.referenced.line()))
            .collect();
        assert_eq!(names, vec![("zeta".into(), 3), ("alpha".into(), 4)]);
    }

    #[test]
    fn price_is_free_or_a_table_with_spans() {
        let raw = parse("version: 1\nmodels:\n  m:\n    targets:\n      - {provider: p, model: a, price: free}\n      - provider: p\n        model: b\n        price: {input: 1, output: 2.5}\n");
        let targets = raw
            .ok()
            .and_then(|raw| raw.models)
            .and_then(|models| models.0.into_iter().next())
            .and_then(|(_, model)| model.targets)
            .map(|targets| targets.value)
            .unwrap_or_default();
        assert!(matches!(
            targets
                .first()
                .and_then(|t| t.value.price.as_ref())
                .map(|p| &p.value),
            Some(RawPrice::Free)
        ));
        match targets
            .get(1)
            .and_then(|t| t.value.price.as_ref())
            .map(|p| &p.value)
        {
            Some(RawPrice::PerMillion(table)) => {
                assert_eq!((table.input.value, table.output.value), (1.0, 2.5));
                assert_eq!(table.output.referenced.line(), 8);
            }
            other => unreachable!("expected a price table, got {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_position() {
        let err = parse("version: 1\nserver:\n  listen: 0.0.0.0:8080\n  listne: x\n").err();
        let err = err.unwrap_or_default();
        assert!(err.contains("unknown field `listne`"), "{err}");
        assert!(err.contains("line 4, column 3"), "{err}");

        let nested = parse("version: 1\nmodels:\n  m:\n    targets:\n      - {provider: p, model: a, price: {input: 1, output: 2, cache: 1}}\n").err();
        assert!(nested.unwrap_or_default().contains("unknown field `cache`"));
    }

    #[test]
    fn a_bad_price_word_is_rejected() {
        let err = crate::config::testing::error_of(
            "version: 1\nmodels:\n  m:\n    targets:\n      - {provider: p, model: a, price: gratis}\n",
            &[],
        );
        assert_eq!(err, "routes.yaml:5:33: invalid value: string \"gratis\", expected `free` or USD per million tokens as { input: 2.5, output: 10 }");
    }
}
