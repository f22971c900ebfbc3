//! The `--check` report: the effective policy in plain text, with every default filled
//! in and no secret shown (credentials are named by kind only, passwords in URLs masked).

use super::policy::{
    Budget, BudgetPeriod, HedgeAfter, Limits, Model, Placement, Policy, Price, Provider,
    RoutingSettings, ServerSettings, Team,
};
use super::units::{format_duration, format_size};
use crate::conversations::Retention;
use crate::telemetry::settings::EndpointSource;

/// Renders the policy for a human; every line is safe to paste into a ticket.
pub fn describe(policy: &Policy) -> String {
    let mut lines = vec![format!(
        "policy {} ({})",
        policy.version,
        policy.source.display()
    )];
    server(policy, &mut lines);
    responses(policy, &mut lines);
    telemetry(policy, &mut lines);
    lines.push(String::new());
    lines.push("providers".to_owned());
    lines.extend(policy.providers.values().flat_map(|p| provider(p)));
    lines.push(String::new());
    lines.push("models".to_owned());
    lines.extend(policy.models.values().flat_map(|m| model(m)));
    lines.push(String::new());
    lines.push("teams".to_owned());
    for team in policy.teams.values() {
        let keys = policy
            .keys
            .values()
            .filter(|owner| owner.team.name == team.name)
            .count();
        lines.push(team_line(team, keys));
    }
    if !policy.warnings.is_empty() {
        lines.push(String::new());
        lines.push("warnings".to_owned());
        lines.extend(policy.warnings.iter().map(|w| format!("  - {w}")));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn server(policy: &Policy, lines: &mut Vec<String>) {
    let server = &policy.server;
    let token = match server.admin_token {
        Some(_) => "admin token required",
        None => "no admin token",
    };
    lines.extend([
        String::new(),
        "server".to_owned(),
        format!("  listen              {}", server.listen),
        format!("  admin_listen        {} ({token})", server.admin_listen),
        format!(
            "  request_timeout     {}",
            format_duration(server.request_timeout)
        ),
        format!(
            "  connect_timeout     {}",
            format_duration(server.connect_timeout)
        ),
        format!(
            "  first_byte_timeout  {}",
            format_duration(server.first_byte_timeout)
        ),
        format!(
            "  max_request_bytes   {}",
            format_size(server.max_request_bytes as u64)
        ),
        format!(
            "  max_response_bytes  {}",
            format_size(server.max_response_bytes as u64)
        ),
        format!("  max_attempts        {}", server.max_attempts),
        format!(
            "  stream_idle_timeout {}",
            format_duration(server.stream_idle_timeout)
        ),
    ]);
    client(server, lines);
    lines.extend([
        String::new(),
        "ledger".to_owned(),
        format!(
            "  url                 {}",
            redact_url(policy.ledger.url.expose())
        ),
        format!(
            "  flush_interval      {}",
            format_duration(policy.ledger.flush_interval)
        ),
    ]);
    lines.push(format!(
        "  retention           {}",
        match policy.ledger.retention {
            None => "keep (every row)".to_owned(),
            Some(duration) => days_or_duration(duration),
        }
    ));
    if let Some(redis) = &policy.ledger.redis {
        lines.push(format!(
            "  redis               {}",
            redact_url(redis.expose())
        ));
    }
}

/// A retention in days when whole (`30d`), else as a duration.
fn days_or_duration(duration: std::time::Duration) -> String {
    match duration.as_secs() {
        secs if secs % 86_400 == 0 && secs > 0 && duration.subsec_nanos() == 0 => {
            format!("{}d", secs / 86_400)
        }
        _ => format_duration(duration),
    }
}

/// `responses:`: retention (in days when whole) and the cache bound.
fn responses(policy: &Policy, lines: &mut Vec<String>) {
    let settings = &policy.responses;
    let retention = match settings.retention {
        Retention::Keep => "keep (until deleted)".to_owned(),
        Retention::For(duration) => days_or_duration(duration),
    };
    lines.extend([
        String::new(),
        "responses (stored conversations, in the ledger database)".to_owned(),
        format!("  retention           {retention}"),
        format!("  cache_entries       {}", settings.cache_entries),
    ]);
}

/// `telemetry:`: where traces go, or that they are off.
fn telemetry(policy: &Policy, lines: &mut Vec<String>) {
    lines.push(String::new());
    let Some(otlp) = &policy.telemetry.otlp else {
        lines.push(
            "telemetry: off (no telemetry.otlp_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)".to_owned(),
        );
        return;
    };
    let source = match otlp.source {
        EndpointSource::Config => "",
        EndpointSource::Environment => " (from OTEL_EXPORTER_OTLP_ENDPOINT)",
    };
    lines.extend([
        "telemetry (OTLP traces)".to_owned(),
        format!(
            "  otlp_endpoint       {}{source}",
            redact_url(&otlp.endpoint)
        ),
        format!("  otlp_protocol       {}", otlp.protocol.label()),
        format!("  sample_ratio        {}", otlp.sample_ratio),
        format!("  max_queue_spans     {}", otlp.max_queue_spans),
        format!("  service_name        {}", otlp.service_name),
    ]);
}

/// The client side: connection bounds, shutdown grace and TLS (paths only).
fn client(server: &ServerSettings, lines: &mut Vec<String>) {
    let client = &server.client;
    lines.extend([
        format!(
            "  header_read_timeout {}",
            format_duration(client.header_read_timeout)
        ),
        format!(
            "  keepalive_idle_timeout {}",
            format_duration(client.keepalive_idle_timeout)
        ),
        format!(
            "  body_read_timeout   {}",
            format_duration(client.body_read_timeout)
        ),
        format!(
            "  max_header_bytes    {}",
            format_size(client.max_header_bytes as u64)
        ),
        format!("  max_client_connections {}", client.max_connections),
        format!(
            "  shutdown_grace      {}",
            format_duration(client.shutdown_grace)
        ),
        match &server.tls {
            Some(tls) => format!(
                "  tls                 cert {}, key {} (HTTP/2 and HTTP/1.1)",
                tls.cert_file.display(),
                tls.key_file.display()
            ),
            None => "  tls                 off (plain HTTP/1.1 and h2c)".to_owned(),
        },
    ]);
}

fn provider(provider: &Provider) -> Vec<String> {
    // Each kind's own line (endpoint, auth) comes from its unit (`providers/<kind>/config.rs`).
    let details = provider.kind.unit().describe();
    let mut lines = vec![format!(
        "  {} ({}): {details}",
        provider.name,
        provider.kind.label()
    )];
    let region = provider.region.as_deref().unwrap_or("unknown");
    lines.push(format!("    cloud {}, region {region}", provider.cloud));
    if let Some(reason) = &provider.disabled {
        lines.push(format!("    DISABLED: {reason}"));
    }
    lines
}

fn placement(placement: &Placement) -> String {
    let list = |set: &Option<std::collections::BTreeSet<String>>| {
        set.as_ref().map_or_else(
            || "any".to_owned(),
            |s| s.iter().cloned().collect::<Vec<_>>().join(", "),
        )
    };
    format!(
        "regions {}, clouds {}",
        list(&placement.regions),
        list(&placement.clouds)
    )
}

fn routing(routing: &RoutingSettings) -> String {
    let max_ttft = routing
        .max_ttft
        .map_or_else(|| "none".to_owned(), format_duration);
    let hedge = match routing.hedge_after {
        None => "off".to_owned(),
        Some(HedgeAfter::P95) => "after p95".to_owned(),
        Some(HedgeAfter::After(delay)) => format!("after {}", format_duration(delay)),
    };
    let weights = routing.weights;
    let health = routing.health;
    format!(
        "max_ttft {max_ttft}; hedging {hedge}; weights latency {} cost {} headroom {}; circuit opens after {} failures for {}; cool-down {}..{}",
        weights.latency,
        weights.cost,
        weights.headroom,
        health.failures,
        format_duration(health.open_for),
        format_duration(health.cooldown_initial),
        format_duration(health.cooldown_max),
    )
}

fn model(model: &Model) -> Vec<String> {
    let fallbacks = match model.fallbacks.is_empty() {
        true => "none".to_owned(),
        false => model.fallbacks.join(", "),
    };
    let max_output = model
        .max_output_tokens
        .map_or_else(|| "default".to_owned(), |tokens| tokens.to_string());
    let first_byte = model
        .first_byte_timeout
        .map_or_else(|| "server default".to_owned(), format_duration);
    let mut lines = vec![format!(
        "  {}: strategy {}, fallbacks: {fallbacks}, max_output_tokens: {max_output}, first_byte_timeout: {first_byte}",
        model.name,
        model.strategy.label()
    )];
    lines.push(format!("    routing: {}", routing(&model.routing)));
    lines.push(format!("    placement: {}", placement(&model.placement)));
    if model.resume_streams {
        lines.push("    resume_streams: a broken stream continues on the next target".to_owned());
    }
    for (index, target) in model.targets.iter().enumerate() {
        let upstream_key = target.provider.kind.unit().upstream_model_field();
        let disabled = match target.disabled_reason() {
            Some(_) => " [provider disabled]",
            None => "",
        };
        let tier = target
            .tier
            .map(|tier| format!(", tier {}", tier.label()))
            .unwrap_or_default();
        let fields = match &target.additional_model_request_fields {
            Some(fields) => format!(", additional_model_request_fields {fields}"),
            None => String::new(),
        };
        lines.push(format!(
            "    {}. {}: {upstream_key} {}, price {} (source: {}), limits {}{tier}{fields}{disabled}",
            index + 1,
            target.id,
            target.upstream_model,
            price(&target.price),
            target.price_source,
            limits(target.limits.as_ref()),
        ));
    }
    lines
}

fn team_line(team: &Team, keys: usize) -> String {
    let models = match &team.models {
        Some(models) => models.iter().cloned().collect::<Vec<_>>().join(", "),
        None => "all".to_owned(),
    };
    let budget = team
        .budget
        .as_ref()
        .map_or_else(|| "none".to_owned(), budget);
    let alert = team.alert_at.map_or_else(
        || "none".to_owned(),
        |fraction| format!("{}%", fraction * 100.0),
    );
    format!(
        "  {}: models {models}; budget {budget}; alert_at {alert}; limits {}; keys {keys}; {}",
        team.name,
        limits(team.limits.as_ref()),
        placement(&team.placement)
    )
}

fn price(price: &Price) -> String {
    match price {
        Price::Free => "free".to_owned(),
        Price::PerMillion {
            input,
            output,
            cached_input,
            cache_write,
            cache_write_1h,
        } => {
            let cached = cached_input.map_or_else(String::new, |c| format!(" (cached input ${c})"));
            let write = cache_write.map_or_else(String::new, |w| format!(" (cache write ${w})"));
            let write_1h =
                cache_write_1h.map_or_else(String::new, |w| format!(" (1h cache write ${w})"));
            format!("${input} in / ${output} out per 1M tokens{cached}{write}{write_1h}")
        }
    }
}

fn limits(limits: Option<&Limits>) -> String {
    let Some(limits) = limits else {
        return "none".to_owned();
    };
    let parts: Vec<String> = [("rpm", limits.rpm), ("tpm", limits.tpm)]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| format!("{name} {value}")))
        .collect();
    parts.join(", ")
}

fn budget(budget: &Budget) -> String {
    let period = match budget.period {
        BudgetPeriod::Daily => "daily",
        BudgetPeriod::Weekly => "weekly",
        BudgetPeriod::Monthly => "monthly",
    };
    format!("${} {period}", budget.usd)
}

/// Masks the password of `scheme://user:password@host/…` and any `password=` query value.
fn redact_url(url: &str) -> String {
    let (before_query, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let mut out = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let authority = match authority.rsplit_once('@') {
                Some((user_info, host)) => match user_info.split_once(':') {
                    Some((user, _password)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => before_query.to_owned(),
    };
    if let Some(query) = query.strip_prefix('?') {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("password") => {
                    format!("{name}=***")
                }
                _ => param.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::compile_yaml;
    use crate::config::ConfigError;

    const POLICY: &str = r#"version: 1
server:
  admin_token: ${ADMIN}
ledger:
  url: postgres://spend:${PGPASSWORD}@db:5432/spend?sslmode=require&password=${PGPASSWORD}
providers:
  openai: {kind: openai, api_key: '${OPENAI_API_KEY:-}'}
  azure: {kind: azure, endpoint: 'https://c.openai.azure.com', api_key: '${AZ}', api_version: 2024-10-21}
  aws: {kind: bedrock, region: us-east-1, access_key_id: AKIAEXAMPLE, secret_access_key: '${AWS_SECRET}'}
models:
  chat:
    strategy: cost
    fallbacks: [local]
    max_output_tokens: 1024
    targets:
      - {provider: azure, deployment: prod, price: {input: 2.5, output: 10}, limits: {rpm: 600}}
      - {provider: aws, model: us.anthropic.claude-sonnet-4-5-20250929-v1:0}
  local:
    price: free
    targets: [{provider: openai, model: llama}]
teams:
  search:
    keys: [sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8]
    models: [chat]
    budget: {usd: 500, period: monthly}
    alert_at: 0.8
    limits: {rpm: 1200, tpm: 2000000}
"#;

    const SECRETS: &[(&str, &str)] = &[
        ("ADMIN", "admin-secret-1"),
        ("PGPASSWORD", "pg-secret-2"),
        ("AZ", "azure-secret-3"),
        ("AWS_SECRET", "aws-secret-4"),
    ];

    fn described() -> Result<String, ConfigError> {
        Ok(describe(&compile_yaml(POLICY, SECRETS)?))
    }

    #[test]
    fn never_shows_a_secret_or_a_key_hash() -> Result<(), ConfigError> {
        let text = described()?;
        for (_, secret) in SECRETS {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        assert!(!text.contains("AKIAEXAMPLE"), "{text}");
        assert!(!text.contains("5e884898"), "{text}");
        Ok(())
    }

    #[test]
    fn shows_where_traces_go_without_credentials() -> Result<(), ConfigError> {
        let yaml = "version: 1\ntelemetry:\n  otlp_endpoint: http://user:pw@otel:4317\n  otlp_protocol: grpc\n";
        let text = describe(&compile_yaml(yaml, &[])?);
        for line in [
            "telemetry (OTLP traces)",
            "  otlp_endpoint       http://user:***@otel:4317",
            "  otlp_protocol       grpc",
            "  sample_ratio        1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        let off = describe(&compile_yaml("version: 1\n", &[])?);
        assert!(off.contains("telemetry: off"), "{off}");
        Ok(())
    }

    #[test]
    fn shows_the_effective_policy() -> Result<(), ConfigError> {
        let text = described()?;
        let expected = [
            "  admin_listen        127.0.0.1:9090 (admin token required)",
            "  request_timeout     120s",
            "  max_request_bytes   8MiB",
            "  max_response_bytes  32MiB",
            "  stream_idle_timeout 30s",
            "  header_read_timeout 10s",
            "  body_read_timeout   60s",
            "  max_client_connections 4096",
            "  shutdown_grace      30s",
            "  tls                 off (plain HTTP/1.1 and h2c)",
            "  url                 postgres://spend:***@db:5432/spend?sslmode=require&password=***",
            "  flush_interval      200ms",
            "  aws (bedrock): region us-east-1, endpoint default, credentials: static keys",
            "  azure (azure): endpoint https://c.openai.azure.com, api_version 2024-10-21, auth: api key",
            "  openai (openai): base_url https://api.openai.com/v1, auth: api key",
            "    DISABLED: api_key is empty (environment variable OPENAI_API_KEY is not set)",
            "  chat: strategy cost, fallbacks: local, max_output_tokens: 1024, first_byte_timeout: server default",
            "    1. azure/prod: deployment prod, price $2.5 in / $10 out per 1M tokens (source: configured in routes.yaml), limits rpm 600, tier standard",
            "    2. aws/us.anthropic.claude-sonnet-4-5-20250929-v1:0: model us.anthropic.claude-sonnet-4-5-20250929-v1:0, price $3.3 in / $16.5 out per 1M tokens (cached input $0.33) (cache write $4.125) (1h cache write $6.6) (source: built-in table entry anthropic.claude-sonnet-4-5-20250929-v1:0), limits none",
            "    1. openai/llama: model llama, price free (source: model marked free), limits none [provider disabled]",
            "  search: models chat; budget $500 monthly; alert_at 80%; limits rpm 1200, tpm 2000000; keys 1; regions any, clouds any",
            "  - provider openai disabled: api_key is empty (environment variable OPENAI_API_KEY is not set)",
            "  - model local: every target's provider is disabled, so requests for it fail until one is enabled",
        ];
        for line in expected {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        Ok(())
    }

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(redact_url("postgres://u:p@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgresql://h/db?user=u&password=p"),
            "postgresql://h/db?user=u&password=***"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/s.db"),
            "sqlite:///var/lib/s.db"
        );
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
