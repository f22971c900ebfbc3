//! The compiled, validated routing policy: the immutable snapshot every request reads.
//!
//! Built only by `compile.rs` from the raw serde mirror of `routes.yaml`; invalid
//! states (a model without targets, a team key that is not a SHA-256) cannot be
//! represented here. Live statistics are not part of it: they live in
//! `routing::stats`, keyed by [`TargetId`], so that they survive a reload.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use crate::providers::anthropic::config as anthropic;
pub use crate::providers::azure::config::{self as azure, AzureAuth};
pub use crate::providers::azure::entra::config::{EntraCredential, EntraSettings};
pub use crate::providers::bedrock::config::{self as bedrock, AwsAssumeRole, AwsStaticCredentials};
pub use crate::providers::openai::config as openai;
use crate::upstream::scrub::Scrubber;

/// A credential or other value that must never be printed. `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The active policy. One `Arc<Policy>` is loaded per request and kept for all its attempts.
#[derive(Debug)]
pub struct Policy {
    /// Short content hash of the file as read (hex), reported by `/admin/reload`.
    pub version: String,
    /// The file the policy was read from.
    pub source: PathBuf,
    pub loaded_at: SystemTime,
    pub server: ServerSettings,
    pub ledger: LedgerSettings,
    /// `responses:` — retention and cache of the stored Responses conversations.
    pub responses: crate::conversations::ConversationSettings,
    /// `telemetry:` — OTLP trace export (read at start; a reload does not restart it).
    pub telemetry: crate::telemetry::TelemetrySettings,
    pub providers: BTreeMap<String, Arc<Provider>>,
    /// Client-facing model names (the keys under `models:`).
    pub models: BTreeMap<String, Arc<Model>>,
    pub teams: BTreeMap<String, Arc<Team>>,
    /// SHA-256 of a full client key → the key's owner.
    pub keys: HashMap<[u8; 32], KeyOwner>,
    /// Non-fatal findings (e.g. a provider disabled for missing credentials), logged once at load.
    pub warnings: Vec<String>,
    /// Takes every secret this policy configures out of upstream text (`upstream/scrub.rs`).
    pub scrubber: Scrubber,
}

/// `server:` — listeners and request bounds.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: String,
    pub admin_listen: String,
    /// `None` when no token is configured (admin endpoints are then open on the admin listener).
    pub admin_token: Option<Secret>,
    /// Bound on the whole request, all attempts included.
    pub request_timeout: Duration,
    pub max_request_bytes: usize,
    /// Bound on an upstream answer read whole (non-streaming); streams are relayed as they come.
    pub max_response_bytes: usize,
    /// Bound on establishing one upstream connection.
    pub connect_timeout: Duration,
    /// Bound on waiting for an upstream's response headers (and, for streams, its first event).
    pub first_byte_timeout: Duration,
    /// Upper bound on upstream attempts for one request, fallbacks included.
    pub max_attempts: usize,
    /// No event from a streaming upstream for this long is a stall (docs/streams.md).
    pub stream_idle_timeout: Duration,
    /// How client connections are served: timeouts, limits, shutdown.
    pub client: ClientSettings,
    /// TLS on the client listener, when configured.
    pub tls: Option<TlsSettings>,
}

/// The client side of `server:` (docs/operations.md, "Client connections").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// From a connection's start (or a kept-alive request's first byte) to its complete
    /// request header; also bounds the TLS handshake.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub keepalive_idle_timeout: Duration,
    /// The whole request body, from the end of the header (answered 408).
    pub body_read_timeout: Duration,
    /// Open client connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// Largest request header block (answered 431).
    pub max_header_bytes: usize,
    /// How long `SIGTERM` waits for requests in flight before the process stops.
    pub shutdown_grace: Duration,
}

/// `server.tls:`: the files (relative paths resolved against the config's directory) and
/// the certificate loaded from them when the policy was compiled.
#[derive(Clone)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub certificate: Arc<rustls::sign::CertifiedKey>,
}

impl fmt::Debug for TlsSettings {
    /// The paths only: the key stays out of every output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// `ledger:` — where spend is recorded.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// `sqlite://…` (relative paths already resolved against the config's directory) or `postgres://…`.
    pub url: Secret,
    pub flush_interval: Duration,
    /// How long a PostgreSQL budget reservation may take before the local book answers.
    pub reserve_timeout: Duration,
    /// `ledger.redis`: fleet-wide rate limits; `None` = per replica.
    pub redis: Option<Secret>,
    pub redis_prefix: String,
    /// Entries the ledger buffer holds before it counts them as over its bound.
    pub buffer_entries: usize,
    /// `ledger.retention`: rows that started longer ago are deleted; `None` keeps them.
    pub retention: Option<Duration>,
}

/// One entry under `providers:`.
#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Why every target on this provider is unusable (e.g. its credentials are missing), if so.
    pub disabled: Option<String>,
    /// Where the endpoint serves (Bedrock's region, or `region:` as written), if known.
    pub region: Option<String>,
    /// `aws`, `azure`, `openai` by kind unless `cloud:` says otherwise (e.g. `on-prem`).
    pub cloud: String,
}

/// A provider's kind with its compiled settings; each kind's settings live in its unit
/// (`providers/<kind>/config.rs`), listed in `providers/registry.rs`.
#[derive(Debug)]
pub enum ProviderKind {
    /// Any OpenAI-compatible endpoint.
    OpenAi(openai::Settings),
    Azure(azure::Settings),
    Bedrock(bedrock::Settings),
    /// Anthropic's Messages API.
    Anthropic(anthropic::Settings),
}

/// The `host[:port]…` of a plain `http://` URL whose host is `127.0.0.1`, `[::1]` or
/// `localhost`: the only authority that may skip TLS (simulators and tests).
pub fn loopback_http_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "127.0.0.1" | "[::1]" | "localhost").then_some(rest)
}

/// Routing strategy of a model (docs/routing.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Priority,
    Latency,
    Cost,
    Balanced,
}

impl Strategy {
    pub fn label(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Latency => "latency",
            Strategy::Cost => "cost",
            Strategy::Balanced => "balanced",
        }
    }
}

/// One entry under `models:`: a name clients send, and where it can be served.
#[derive(Debug)]
pub struct Model {
    pub name: String,
    pub strategy: Strategy,
    /// Never empty (compile rejects a model without targets).
    pub targets: Vec<Arc<Target>>,
    /// Other model names to try, in order, when every target is out of capacity.
    pub fallbacks: Vec<String>,
    /// Used for budget reservations when a request gives no max tokens.
    pub max_output_tokens: Option<u32>,
    /// Overrides `server.first_byte_timeout` for this model (e.g. slow reasoning models).
    pub first_byte_timeout: Option<Duration>,
    /// How the router ranks and protects this model's targets.
    pub routing: RoutingSettings,
    /// Data residency: where this model may be served.
    pub placement: Placement,
    /// Continue a stream that broke after its first byte on the next target (docs/streams.md).
    pub resume_streams: bool,
    /// What Responses clients may ask of this model's targets.
    pub responses: ResponsesOptions,
}

/// A model's Responses options (`builtin_tools`, `sticky_reasoning`; docs/configuration.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponsesOptions {
    /// `builtin_tools: allow`: built-in tools (web search, file search, …) may go to this
    /// model's `responses: native` targets; otherwise they are a 400 naming the tool.
    pub builtin_tools: bool,
    /// `sticky_reasoning: true`: a turn replaying encrypted reasoning is tried on targets of
    /// the provider that produced it first, keeping the reasoning, before any other.
    pub sticky_reasoning: bool,
}

/// Allow-lists of regions and clouds (`None` = any). A provider with no known region is
/// outside every region list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub regions: Option<BTreeSet<String>>,
    pub clouds: Option<BTreeSet<String>>,
}

impl Placement {
    /// Why `provider` is outside this placement, if it is.
    pub fn excludes(&self, provider: &Provider) -> Option<String> {
        if let Some(clouds) = &self.clouds {
            if !clouds.contains(&provider.cloud) {
                return Some(format!("cloud `{}` is not in {clouds:?}", provider.cloud));
            }
        }
        if let Some(regions) = &self.regions {
            match &provider.region {
                Some(region) if regions.contains(region) => {}
                Some(region) => return Some(format!("region `{region}` is not in {regions:?}")),
                None => return Some(format!("region unknown (not in {regions:?})")),
            }
        }
        None
    }
}

/// Per-model routing knobs (`max_ttft`, `weights`, `health`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RoutingSettings {
    /// An SLO on time to first token: prefer the cheapest target expected to meet it.
    pub max_ttft: Option<Duration>,
    /// Weights of the `balanced` strategy.
    pub weights: Weights,
    pub health: HealthSettings,
    /// Streams only: when the first target has not produced a first event by then, start
    /// the next one too and keep whichever answers first.
    pub hedge_after: Option<HedgeAfter>,
}

/// When a stream is hedged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeAfter {
    /// The first target's observed 95th percentile time to first token.
    P95,
    After(Duration),
}

/// `balanced` strategy weights; each figure is normalised to the best candidate's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub latency: f64,
    pub cost: f64,
    pub headroom: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            latency: 1.0,
            cost: 1.0,
            headroom: 1.0,
        }
    }
}

/// Cool-down and circuit-breaker thresholds of a model's targets (docs/routing.md defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    /// Consecutive failed attempts that open a target's circuit.
    pub failures: u32,
    /// How long an open circuit refuses traffic before one probe is let through.
    pub open_for: Duration,
    /// First cool-down after a capacity error without `retry-after`; doubles in a row.
    pub cooldown_initial: Duration,
    pub cooldown_max: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
            cooldown_initial: Duration::from_secs(1),
            cooldown_max: Duration::from_secs(60),
        }
    }
}

/// Identity of a target (provider + deployment/model); live statistics are keyed by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(pub String);

impl TargetId {
    pub fn new(provider: &str, upstream_model: &str) -> Self {
        Self(format!("{provider}/{upstream_model}"))
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One place a model can be served: a provider and the upstream's name for the model.
#[derive(Debug)]
pub struct Target {
    pub id: TargetId,
    pub provider: Arc<Provider>,
    /// The upstream's model id, or the Azure deployment name.
    pub upstream_model: String,
    pub price: Price,
    /// Where `price` came from (shown by `--check`).
    pub price_source: PriceSource,
    pub limits: Option<Limits>,
    /// Azure deployment SKU as written (`tier:`); `None` for other kinds (and means standard).
    pub tier: Option<Tier>,
    /// Bedrock only: Converse `additionalModelRequestFields` sent with every request.
    pub additional_model_request_fields: Option<serde_json::Value>,
}

/// Where a target's price came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceSource {
    /// `price:` on the target in routes.yaml.
    Configured,
    /// The built-in table's entry `entry`: the upstream id itself, or the base model an
    /// id maps to (a Bedrock cross-region inference profile without an entry of its own).
    Table { entry: String },
    /// No price is known and the model is marked free.
    FreeModel,
}

impl fmt::Display for PriceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PriceSource::Configured => f.write_str("configured in routes.yaml"),
            PriceSource::Table { entry } => write!(f, "built-in table entry {entry}"),
            PriceSource::FreeModel => f.write_str("model marked free"),
        }
    }
}

/// Azure deployment capacity: prepaid provisioned throughput (PTU) or pay-as-you-go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Provisioned,
    Standard,
}

impl Tier {
    pub fn label(self) -> &'static str {
        match self {
            Tier::Provisioned => "provisioned",
            Tier::Standard => "standard",
        }
    }
}

impl Target {
    /// Why this target cannot be used at all under this policy, if so.
    pub fn disabled_reason(&self) -> Option<&str> {
        self.provider.disabled.as_deref()
    }
}

/// USD per million tokens, or explicitly free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Price {
    PerMillion {
        input: f64,
        output: f64,
        /// Price of cached prompt tokens; `None` = same as `input`.
        cached_input: Option<f64>,
        /// Price of prompt tokens written to a cache (Anthropic: 1.25× input, the 5-minute
        /// cache); `None` = same as `input`.
        cache_write: Option<f64>,
        /// Price of prompt tokens written to Anthropic's 1-hour cache (2× input), a subset of
        /// the cache writes; `None` = `cache_write`'s rate.
        cache_write_1h: Option<f64>,
    },
    Free,
}

impl Price {
    /// (input, output) in USD per million tokens.
    pub fn per_million(&self) -> (f64, f64) {
        match *self {
            Price::PerMillion { input, output, .. } => (input, output),
            Price::Free => (0.0, 0.0),
        }
    }
}

/// Known quota (`limits: { rpm, tpm }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    Daily,
    Weekly,
    Monthly,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// The budget, exact to the nano-dollar (docs/spend.md, "Units").
    pub usd: crate::metering::NanoUsd,
    pub period: BudgetPeriod,
}

/// One entry under `teams:`.
#[derive(Debug)]
pub struct Team {
    pub name: String,
    /// Allow-list of model names; `None` = every model.
    pub models: Option<BTreeSet<String>>,
    pub budget: Option<Budget>,
    pub alert_at: Option<f64>,
    pub limits: Option<Limits>,
    /// Data residency for every request of the team.
    pub placement: Placement,
    /// Every answer carries `x-switchyard-route`, as if each request asked for it.
    pub debug: bool,
}

impl Team {
    pub fn may_use(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|allowed| allowed.contains(model))
    }
}

/// Who a client key belongs to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub team: Arc<Team>,
    /// A non-secret id of the key: `team#<first 8 hex chars of its hash>`.
    pub key_id: String,
}
