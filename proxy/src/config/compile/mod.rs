//! raw → [`Policy`]: every rule of `routes.yaml` (docs/configuration.md) is checked here, and every
//! failure carries the YAML position of the value at fault.
//!
//! Split by section: providers, models (targets, prices, fallbacks), teams (keys,
//! allow-lists, budgets). This file holds the entry point, `server:`, `ledger:` and the
//! helpers they share.

mod client;
mod models;
pub(crate) mod providers;
mod responses;
mod responses_options;
mod retention;
mod routing;
mod teams;
mod telemetry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use super::env::{self, EnvLookup, Expanded};
use super::error::Problem;
use super::policy::{LedgerSettings, Limits, Policy, Provider, Secret, ServerSettings};
use super::raw::{RawConfig, RawLedger, RawLimits, RawServer};
use super::units;
use crate::upstream::scrub::Scrubber;

const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_MAX_REQUEST_BYTES: u64 = 8 << 20;
/// Bound on a buffered (non-streaming) upstream answer (docs/configuration.md).
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 << 20;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
/// docs/streams.md: a streaming upstream silent for this long has stalled.
const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_ATTEMPTS: i64 = 5;
const MAX_ATTEMPTS_CEILING: i64 = 20;
const DEFAULT_LEDGER_URL: &str = "sqlite://switchyard.db";
const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(200);
const DEFAULT_BUFFER_ENTRIES: usize = 100_000;
/// Hex characters of the file's SHA-256 used as the policy version.
const VERSION_HEX_LEN: usize = 12;

/// What every section's compiler needs: the environment, the config's directory, and
/// the warnings collected so far.
pub(crate) struct Ctx<'a> {
    env: EnvLookup<'a>,
    base_dir: PathBuf,
    pub warnings: Vec<String>,
}

impl Ctx<'_> {
    /// Expands `${VAR}`s in a value (trimmed); `what` is the YAML path used in errors.
    pub fn expand(&self, value: &Spanned<String>, what: &str) -> Result<Expanded, Problem> {
        let mut expanded = env::expand(&value.value, self.env)
            .map_err(|err| Problem::spanned(value, format!("{what}: {err}")))?;
        expanded.value = expanded.value.trim().to_owned();
        Ok(expanded)
    }

    /// One variable of the environment the policy is compiled in.
    pub fn env_var(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    /// An expanded value that must not be empty.
    pub fn text(&self, value: &Spanned<String>, what: &str) -> Result<String, Problem> {
        let expanded = self.expand(value, what)?;
        match expanded.blank_cause() {
            _ if !expanded.value.is_empty() => Ok(expanded.value),
            Some(cause) => Err(Problem::spanned(
                value,
                format!("{what} is empty ({cause})"),
            )),
            None => Err(Problem::spanned(value, format!("{what} is empty"))),
        }
    }

    /// A duration that must be positive, or `default` when absent.
    pub fn duration_or(
        &self,
        value: Option<&Spanned<String>>,
        what: &str,
        default: Duration,
    ) -> Result<Duration, Problem> {
        value.map_or(Ok(default), |value| self.duration(value, what))
    }

    /// A duration that must be positive.
    pub fn duration(&self, value: &Spanned<String>, what: &str) -> Result<Duration, Problem> {
        let text = self.text(value, what)?;
        match units::parse_duration(&text) {
            Ok(duration) if duration.is_zero() => Err(Problem::spanned(
                value,
                format!("{what} must be longer than 0"),
            )),
            Ok(duration) => Ok(duration),
            Err(_) if value.value.contains("${") => Err(Problem::spanned(
                value,
                format!("{what}: the value from the environment is not a duration like 30s"),
            )),
            Err(err) => Err(Problem::spanned(value, format!("{what}: {err}"))),
        }
    }
}

/// Builds the policy; `text` is the file as read (its hash is the version).
pub(crate) fn compile(
    raw: RawConfig,
    text: &str,
    path: &Path,
    env: EnvLookup<'_>,
) -> Result<Policy, Problem> {
    if raw.version.value != 1 {
        let message = format!(
            "version: unsupported version {}; this proxy reads `version: 1`",
            raw.version.value
        );
        return Err(Problem::spanned(&raw.version, message));
    }
    let mut ctx = Ctx {
        env,
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        warnings: Vec::new(),
    };
    let server = server(&mut ctx, raw.server.unwrap_or_default())?;
    let retention_at = location_of(raw.ledger.as_ref().and_then(|l| l.retention.as_ref()));
    let ledger = ledger(&ctx, raw.ledger.unwrap_or_default())?;
    let responses = responses::compile(&ctx, raw.responses.unwrap_or_default())?;
    let telemetry = telemetry::compile(&ctx, raw.telemetry.unwrap_or_default())?;
    let providers = providers::compile(&mut ctx, raw.providers)?;
    let models = models::compile(&mut ctx, raw.models, &providers)?;
    let (teams, keys) = teams::compile(&mut ctx, raw.teams, &models)?;
    retention_keeps_budget_periods(ledger.retention, teams.values().map(|t| &**t), retention_at)?;
    let scrubber = secret_scrubber(&server, &providers);
    Ok(Policy {
        version: version_hash(text),
        source: path.to_path_buf(),
        loaded_at: SystemTime::now(),
        server,
        ledger,
        responses,
        telemetry,
        providers,
        models,
        teams,
        keys,
        warnings: ctx.warnings,
        scrubber,
    })
}

/// One scrubber for every secret the policy holds: each provider's credentials and the admin
/// token. (Client keys are stored hashed and never sent upstream.)
fn secret_scrubber(
    server: &ServerSettings,
    providers: &BTreeMap<String, Arc<Provider>>,
) -> Scrubber {
    let mut secrets: Vec<String> = providers
        .values()
        .flat_map(|provider| provider.kind.unit().secrets())
        .collect();
    secrets.extend(
        server
            .admin_token
            .iter()
            .map(|token| token.expose().to_owned()),
    );
    Scrubber::new(secrets.iter().map(String::as_str))
}

fn version_hash(text: &str) -> String {
    let mut hex = hex::encode(Sha256::digest(text.as_bytes()));
    hex.truncate(VERSION_HEX_LEN);
    hex
}

fn server(ctx: &mut Ctx<'_>, raw: RawServer) -> Result<ServerSettings, Problem> {
    let listen = address(ctx, raw.listen.as_ref(), "server.listen", DEFAULT_LISTEN)?;
    let admin_listen = address(
        ctx,
        raw.admin_listen.as_ref(),
        "server.admin_listen",
        DEFAULT_ADMIN_LISTEN,
    )?;
    if admin_listen == listen {
        let message = format!("server.admin_listen must differ from server.listen ({listen}): the admin port is never shared with clients");
        // Both defaults differ, so at least one of the two was written.
        let at = raw.admin_listen.as_ref().or(raw.listen.as_ref());
        return Err(Problem::at(location_of(at), message));
    }
    let admin_token = match &raw.admin_token {
        Some(token) => Some(ctx.expand(token, "server.admin_token")?.value)
            .filter(|token| !token.is_empty())
            .map(Secret::new),
        None => None,
    };
    if admin_token.is_none() && !client::is_loopback(&admin_listen) {
        // Anyone who can reach it could reload the policy and read spend (issue 15, item 8).
        let message = format!(
            "server.admin_listen {admin_listen} is not a loopback address and no server.admin_token is set: set a token, or listen on 127.0.0.1"
        );
        return Err(Problem::at(location_of(raw.admin_listen.as_ref()), message));
    }
    Ok(ServerSettings {
        listen,
        admin_listen,
        admin_token,
        request_timeout: ctx.duration_or(
            raw.request_timeout.as_ref(),
            "server.request_timeout",
            DEFAULT_REQUEST_TIMEOUT,
        )?,
        max_request_bytes: byte_size(
            ctx,
            raw.max_request_bytes.as_ref(),
            "server.max_request_bytes",
            DEFAULT_MAX_REQUEST_BYTES,
        )?,
        max_response_bytes: byte_size(
            ctx,
            raw.max_response_bytes.as_ref(),
            "server.max_response_bytes",
            DEFAULT_MAX_RESPONSE_BYTES,
        )?,
        connect_timeout: ctx.duration_or(
            raw.connect_timeout.as_ref(),
            "server.connect_timeout",
            DEFAULT_CONNECT_TIMEOUT,
        )?,
        first_byte_timeout: ctx.duration_or(
            raw.first_byte_timeout.as_ref(),
            "server.first_byte_timeout",
            DEFAULT_FIRST_BYTE_TIMEOUT,
        )?,
        max_attempts: max_attempts(raw.max_attempts.as_ref())?,
        stream_idle_timeout: ctx.duration_or(
            raw.stream_idle_timeout.as_ref(),
            "server.stream_idle_timeout",
            DEFAULT_STREAM_IDLE_TIMEOUT,
        )?,
        client: client::client(ctx, &raw)?,
        tls: client::tls(ctx, raw.tls.as_ref())?,
    })
}

/// A listen address: `host:port` or `[v6]:port`, with a numeric port.
fn address(
    ctx: &Ctx<'_>,
    value: Option<&Spanned<String>>,
    what: &str,
    default: &str,
) -> Result<String, Problem> {
    let Some(value) = value else {
        return Ok(default.to_owned());
    };
    let text = ctx.text(value, what)?;
    let valid = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    match valid {
        true => Ok(text),
        false => Err(Problem::spanned(
            value,
            format!(
                "{what}: {} is not an address like 0.0.0.0:8080",
                shown(value, &text)
            ),
        )),
    }
}

/// A size setting (`8MiB`, `1048576`) of more than 0 bytes.
fn byte_size(
    ctx: &Ctx<'_>,
    value: Option<&Spanned<String>>,
    what: &str,
    default: u64,
) -> Result<usize, Problem> {
    let bytes = match value {
        Some(value) => {
            let text = ctx.text(value, what)?;
            let bytes = units::parse_size(&text).map_err(|err| {
                let err = match value.value.contains("${") {
                    true => "the value from the environment is not a size like 8MiB".to_owned(),
                    false => err,
                };
                Problem::spanned(value, format!("{what}: {err}"))
            })?;
            if bytes == 0 {
                return Err(Problem::spanned(
                    value,
                    format!("{what} must be more than 0"),
                ));
            }
            usize::try_from(bytes)
                .map_err(|_| Problem::spanned(value, format!("{what} is too large")))?
        }
        None => usize::try_from(default).unwrap_or(usize::MAX),
    };
    Ok(bytes)
}

fn max_attempts(value: Option<&Spanned<i64>>) -> Result<usize, Problem> {
    let attempts = value.map_or(DEFAULT_MAX_ATTEMPTS, |value| value.value);
    match (1..=MAX_ATTEMPTS_CEILING).contains(&attempts) {
        true => Ok(usize::try_from(attempts).unwrap_or(1)),
        false => Err(Problem::at(
            location_of(value),
            format!(
                "server.max_attempts must be between 1 and {MAX_ATTEMPTS_CEILING}, not {attempts}"
            ),
        )),
    }
}

fn ledger(ctx: &Ctx<'_>, raw: RawLedger) -> Result<LedgerSettings, Problem> {
    let url = match &raw.url {
        Some(value) => {
            let text = ctx.text(value, "ledger.url")?;
            ledger_url(&text, &ctx.base_dir)
                .map_err(|err| Problem::spanned(value, format!("ledger.url: {err}")))?
        }
        None => ledger_url(DEFAULT_LEDGER_URL, &ctx.base_dir)
            .map_err(|err| Problem::at(Location::UNKNOWN, err))?,
    };
    let redis = match &raw.redis {
        Some(value) => {
            let text = ctx.text(value, "ledger.redis")?;
            if !(text.starts_with("redis://") || text.starts_with("rediss://")) {
                return Err(Problem::spanned(
                    value,
                    "ledger.redis: expected redis://host:port",
                ));
            }
            Some(Secret::new(text))
        }
        None => None,
    };
    let redis_prefix = match &raw.redis_prefix {
        Some(value) => ctx.text(value, "ledger.redis_prefix")?,
        None => "switchyard".to_owned(),
    };
    let buffer_entries = match &raw.buffer_entries {
        Some(value) if value.value >= 1 => value.value as usize,
        Some(value) => {
            return Err(Problem::spanned(
                value,
                "ledger.buffer_entries must be 1 or more",
            ))
        }
        None => DEFAULT_BUFFER_ENTRIES,
    };
    Ok(LedgerSettings {
        url: Secret::new(url),
        flush_interval: ctx.duration_or(
            raw.flush_interval.as_ref(),
            "ledger.flush_interval",
            DEFAULT_FLUSH_INTERVAL,
        )?,
        reserve_timeout: ctx.duration_or(
            raw.reserve_timeout.as_ref(),
            "ledger.reserve_timeout",
            crate::metering::spend::RESERVE_TIMEOUT,
        )?,
        redis,
        redis_prefix,
        buffer_entries,
        retention: match &raw.retention {
            Some(value) => retention::parse(ctx, value, "ledger.retention", "keep every row")?,
            None => None,
        },
    })
}

/// `ledger.retention` must keep every row a budget still counts: a budget's spend is read
/// back from the ledger (at startup, and per period on PostgreSQL; docs/spend.md), so the
/// retention is at least the longest budget period in use plus a day.
fn retention_keeps_budget_periods<'t>(
    retention: Option<Duration>,
    teams: impl Iterator<Item = &'t super::policy::Team>,
    at: Location,
) -> Result<(), Problem> {
    let Some(retention) = retention else {
        return Ok(());
    };
    let longest = teams
        .filter_map(|team| team.budget.map(|budget| (budget.period, &team.name)))
        .map(|(period, team)| match period {
            super::policy::BudgetPeriod::Daily => (1u64, "daily", team),
            super::policy::BudgetPeriod::Weekly => (7, "weekly", team),
            super::policy::BudgetPeriod::Monthly => (31, "monthly", team),
        })
        .max_by_key(|(days, _, _)| *days);
    match longest {
        Some((days, period, team)) if retention < Duration::from_secs((days + 1) * 86_400) => {
            Err(Problem::at(
                at,
                format!(
                    "ledger.retention must be at least {}d: team `{team}` has a {period} budget, \
                     whose spend is counted from the ledger's rows",
                    days + 1
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Resolves a relative `sqlite://` path against the config's directory, so that the
/// ledger does not move when the proxy is started from another working directory.
/// The message of an error never contains the URL (it may hold a password).
fn ledger_url(url: &str, base_dir: &Path) -> Result<String, String> {
    if url.starts_with("sqlite::memory:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        return Ok(url.to_owned());
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err("expected sqlite://<file>, sqlite::memory: or postgres://…".to_owned());
    };
    let (file, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    if file.is_empty() {
        return Err("sqlite:// needs a file path, e.g. sqlite://switchyard.db".to_owned());
    }
    let file = Path::new(file);
    let resolved = match file.is_absolute() {
        true => file.to_path_buf(),
        false => {
            let joined = base_dir.join(file);
            std::path::absolute(&joined).unwrap_or(joined)
        }
    };
    Ok(format!("sqlite://{}{query}", resolved.display()))
}

/// `limits: { rpm, tpm }`; each must be at least 1, and an empty mapping means no limits.
pub(crate) fn limits(raw: Option<&RawLimits>, what: &str) -> Result<Option<Limits>, Problem> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let positive = |value: Option<&Spanned<i64>>, field: &str| -> Result<Option<u64>, Problem> {
        let Some(value) = value else {
            return Ok(None);
        };
        match u64::try_from(value.value) {
            Ok(count) if count > 0 => Ok(Some(count)),
            _ => Err(Problem::spanned(
                value,
                format!("{what}.{field} must be at least 1 (leave it out for no limit)"),
            )),
        }
    };
    let limits = Limits {
        rpm: positive(raw.rpm.as_ref(), "rpm")?,
        tpm: positive(raw.tpm.as_ref(), "tpm")?,
    };
    Ok((limits.rpm.is_some() || limits.tpm.is_some()).then_some(limits))
}

/// How an invalid value is named in an error: quoted as written, unless it came from the
/// environment, where it may be a secret put in the wrong variable.
pub(crate) fn shown(raw: &Spanned<String>, expanded: &str) -> String {
    match raw.value.contains("${") {
        true => "the value from the environment".to_owned(),
        false => format!("`{expanded}`"),
    }
}

/// Where a value that may be absent was written; unknown when it was not.
pub(crate) fn location_of<T>(value: Option<&Spanned<T>>) -> Location {
    value.map_or(Location::UNKNOWN, |value| value.referenced)
}

/// The names defined in a section, for "not defined (defined: …)" messages.
pub(crate) fn name_list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    match names.is_empty() {
        true => "none are defined".to_owned(),
        false => format!("defined: {}", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::testing::{compile_yaml, env_from, error_of};
    use crate::config::{compile_str, ConfigError};

    #[test]
    fn version_is_the_first_12_hex_of_the_file_sha256() -> Result<(), ConfigError> {
        let text = "version: 1\n";
        let policy = compile_yaml(text, &[])?;
        // printf 'version: 1\n' | sha256sum
        let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text));
        assert_eq!(policy.version, expected[..12]);
        let other = compile_yaml("version: 1\n# changed\n", &[])?;
        assert_ne!(policy.version, other.version);
        Ok(())
    }

    #[test]
    fn server_defaults() -> Result<(), ConfigError> {
        let policy = compile_yaml("version: 1\nserver:\n", &[])?;
        let server = policy.server;
        assert_eq!(server.listen, "0.0.0.0:8080");
        assert_eq!(server.admin_listen, "127.0.0.1:9090");
        assert!(server.admin_token.is_none());
        assert_eq!(server.request_timeout, Duration::from_secs(120));
        assert_eq!(server.max_request_bytes, 8 * 1024 * 1024);
        assert_eq!(server.connect_timeout, Duration::from_secs(5));
        assert_eq!(server.first_byte_timeout, Duration::from_secs(60));
        assert_eq!(server.max_attempts, 5);
        assert_eq!(server.stream_idle_timeout, Duration::from_secs(30));
        assert_eq!(policy.ledger.flush_interval, Duration::from_millis(200));
        Ok(())
    }

    #[test]
    fn server_values_are_parsed() -> Result<(), ConfigError> {
        let yaml = "version: 1\nserver:\n  listen: 127.0.0.1:18080\n  admin_listen: '[::1]:19090'\n  admin_token: ${TOKEN}\n  request_timeout: 2m\n  max_request_bytes: 1048576\n  connect_timeout: 500ms\n  first_byte_timeout: 1h\n  max_attempts: 20\n  stream_idle_timeout: 300ms\n";
        let server = compile_yaml(yaml, &[("TOKEN", "s3cret")])?.server;
        assert_eq!(server.listen, "127.0.0.1:18080");
        assert_eq!(server.admin_listen, "[::1]:19090");
        assert_eq!(
            server.admin_token.as_ref().map(|t| t.expose()),
            Some("s3cret")
        );
        assert_eq!(server.request_timeout, Duration::from_secs(120));
        assert_eq!(server.max_request_bytes, 1 << 20);
        assert_eq!(server.connect_timeout, Duration::from_millis(500));
        assert_eq!(server.first_byte_timeout, Duration::from_secs(3600));
        assert_eq!(server.max_attempts, 20);
        assert_eq!(server.stream_idle_timeout, Duration::from_millis(300));
        Ok(())
    }

    #[test]
    fn an_admin_token_that_expands_to_empty_means_no_token() -> Result<(), ConfigError> {
        let yaml = "version: 1\nserver:\n  admin_token: ${SWITCHYARD_ADMIN_TOKEN:-}\n";
        assert!(compile_yaml(yaml, &[])?.server.admin_token.is_none());
        Ok(())
    }

    #[test]
    fn bad_server_values_point_at_themselves() {
        let cases = [
            (
                "  request_timeout: 30\n",
                "routes.yaml:3:20: server.request_timeout: `30` needs a unit",
            ),
            (
                "  connect_timeout: 0s\n",
                "routes.yaml:3:20: server.connect_timeout must be longer than 0",
            ),
            (
                "  max_request_bytes: 8 MB/s\n",
                "routes.yaml:3:22: server.max_request_bytes: `8 MB/s` is not a size",
            ),
            (
                "  max_request_bytes: 0\n",
                "routes.yaml:3:22: server.max_request_bytes must be more than 0",
            ),
            (
                "  max_attempts: 0\n",
                "routes.yaml:3:17: server.max_attempts must be between 1 and 20, not 0",
            ),
            (
                "  max_attempts: 21\n",
                "routes.yaml:3:17: server.max_attempts must be between 1 and 20",
            ),
            (
                "  listen: 8080\n",
                "routes.yaml:3:11: server.listen: `8080` is not an address",
            ),
            (
                "  admin_listen: 0.0.0.0:8080\n",
                "routes.yaml:3:17: server.admin_listen must differ from server.listen",
            ),
        ];
        for (server, expected) in cases {
            let err = error_of(&format!("version: 1\nserver:\n{server}"), &[]);
            assert!(err.starts_with(expected), "{server:?} gave {err}");
        }
    }

    #[test]
    fn values_from_the_environment_are_not_quoted_in_errors() {
        let err = error_of(
            "version: 1\nserver:\n  listen: ${LISTEN}\n",
            &[("LISTEN", "hunter2")],
        );
        assert!(err.contains("the value from the environment"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_missing_variable_is_an_error_at_the_value() {
        let err = error_of("version: 1\nserver:\n  admin_token: ${ADMIN}\n", &[]);
        assert!(
            err.starts_with(
                "routes.yaml:3:16: server.admin_token: environment variable ADMIN is not set"
            ),
            "{err}"
        );
    }

    fn ledger_url(yaml_url: &str, config: &str) -> Result<String, ConfigError> {
        let yaml = format!("version: 1\nledger:\n  url: {yaml_url}\n");
        let policy = compile_str(&yaml, Path::new(config), &env_from(&[]))?;
        Ok(policy.ledger.url.expose().to_owned())
    }

    #[test]
    fn relative_sqlite_paths_follow_the_config_file() -> Result<(), ConfigError> {
        let at = "/etc/switchyard/routes.yaml";
        assert_eq!(
            ledger_url("sqlite://spend.db", at)?,
            "sqlite:///etc/switchyard/spend.db"
        );
        assert_eq!(
            ledger_url("sqlite://data/spend.db?mode=rwc", at)?,
            "sqlite:///etc/switchyard/data/spend.db?mode=rwc"
        );
        assert_eq!(
            ledger_url("sqlite:///var/lib/spend.db", at)?,
            "sqlite:///var/lib/spend.db"
        );
        assert_eq!(ledger_url("'sqlite::memory:'", at)?, "sqlite::memory:");
        assert_eq!(
            ledger_url("postgres://u:p@db/spend", at)?,
            "postgres://u:p@db/spend"
        );
        let policy = compile_str("version: 1\n", Path::new(at), &env_from(&[]))?;
        assert_eq!(
            policy.ledger.url.expose(),
            "sqlite:///etc/switchyard/switchyard.db"
        );
        Ok(())
    }

    #[test]
    fn unknown_ledger_schemes_are_refused_without_echoing_the_url() {
        let err = error_of("version: 1\nledger:\n  url: mysql://u:pw@db/x\n", &[]);
        assert!(
            err.starts_with("routes.yaml:3:8: ledger.url: expected sqlite://"),
            "{err}"
        );
        assert!(!err.contains("pw"), "{err}");
    }
}
