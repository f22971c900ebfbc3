//! Loading `routes.yaml`: read → parse ([`raw`]) → validate and build ([`compile`]) → [`Policy`].
//!
//! Startup, `--check` and reload all go through [`load`]; it either returns a complete
//! policy or an error with the file position, never a half-built one. Nothing here
//! prints a secret: YAML errors are rendered without the source snippet, and values
//! that may be credentials are never quoted back.

pub mod policy;

mod compile;
mod describe;
mod env;
mod error;
mod prices;
mod raw;
mod section;
mod units;

#[cfg(test)]
pub(crate) mod testing;

use std::path::Path;

pub use describe::describe;
pub use error::ConfigError;
pub use policy::*;

pub(crate) use compile::providers::{Compiled, SectionCtx, Setting};
pub(crate) use compile::shown;
pub(crate) use error::Problem;
pub(crate) use section::RawSection;

use raw::RawConfig;

/// Reads and compiles the policy at `path`, taking `${VAR}`s from the process environment.
pub fn load(path: &Path) -> Result<Policy, ConfigError> {
    load_with_env(path, &|name| std::env::var(name).ok())
}

/// Like [`load`], with the environment given as a lookup function.
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Policy, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    compile_str(&text, path, env)
}

/// Compiles policy text. `path` names the file in errors, and relative `sqlite://`
/// ledger paths are resolved against its directory.
pub fn compile_str(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Policy, ConfigError> {
    let raw = parse(text).map_err(|problem| problem.into_error(path))?;
    compile::compile(raw, text, path, env).map_err(|problem| problem.into_error(path))
}

fn parse(text: &str) -> Result<RawConfig, Problem> {
    let is_blank = text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'));
    if is_blank {
        return Err(Problem::at(
            serde_saphyr::Location::UNKNOWN,
            "the file is empty; a policy starts with `version: 1`",
        ));
    }
    // No snippet: it would quote the file's lines, which may hold a secret.
    let options = serde_saphyr::options! { with_snippet: false };
    let mut raw: RawConfig =
        serde_saphyr::from_str_with_options(text, options).map_err(|err| syntax_problem(&err))?;
    for (_, provider) in raw
        .providers
        .iter_mut()
        .flat_map(|entries| entries.0.iter_mut())
    {
        provider.section.keep_scalar_text(text);
    }
    Ok(raw)
}

/// A serde-saphyr error as a one-line message plus its position.
fn syntax_problem(err: &serde_saphyr::Error) -> Problem {
    let err = err.without_snippet();
    let rendered = err.render_with_options(serde_saphyr::render_options! {
        formatter: &serde_saphyr::UserMessageFormatter,
        snippets: serde_saphyr::SnippetMode::Off,
    });
    let location = err.location().unwrap_or(serde_saphyr::Location::UNKNOWN);
    // The position is reported by `ConfigError` in `file:line:column` form instead.
    let suffix = format!(" at line {}, column {}", location.line(), location.column());
    let first_line = rendered.lines().next().unwrap_or_default();
    let message = first_line.strip_suffix(&suffix).unwrap_or(first_line);
    Problem::at(location, redact_long_quotes(message))
}

/// Serde quotes offending values (`invalid type: string "…"`); a long one may be a
/// credential written in the wrong place, so only its length is kept.
fn redact_long_quotes(message: &str) -> String {
    const LONGEST_SHOWN: usize = 24;
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..=open];
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else {
            break;
        };
        out.push_str(&rest[..=open]);
        let quoted = &after[..close];
        match quoted.chars().count() > LONGEST_SHOWN {
            true => out.push_str(&format!("<{} characters>", quoted.chars().count())),
            false => out.push_str(quoted),
        }
        out.push_str(quote);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::testing::{self, compile_yaml, error_of};
    use super::*;

    #[test]
    fn syntax_errors_carry_position_and_one_line() {
        let err = error_of(
            "version: 1\nproviders:\n  openai: {kind: openai, api_key: \"sk-secret\n",
            &[],
        );
        assert!(err.starts_with("routes.yaml:3:"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(!err.contains("sk-secret"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected_with_position() {
        let err = error_of(
            "version: 1\nserver:\n  listen: 0.0.0.0:8080\n  port: 8080\n",
            &[],
        );
        assert_eq!(
            err,
            "routes.yaml:4:3: unknown field `port`, expected one of listen, admin_listen, admin_token, request_timeout, max_request_bytes, connect_timeout, first_byte_timeout, max_attempts, header_read_timeout, keepalive_idle_timeout, body_read_timeout, max_client_connections, max_header_bytes, shutdown_grace, tls"
        );
    }

    #[test]
    fn long_quoted_values_are_not_echoed() {
        let err = error_of(
            "version: 1\nproviders:\n  p:\n    kind: sk-live-0123456789abcdef0123456789\n",
            &[],
        );
        assert!(
            err.starts_with("routes.yaml:4:11: unknown variant"),
            "{err}"
        );
        assert!(!err.contains("0123456789abcdef"), "{err}");
        assert!(err.contains("`<34 characters>`"), "{err}");
    }

    #[test]
    fn empty_file_says_so() {
        assert_eq!(
            error_of("# nothing yet\n\n", &[]),
            "routes.yaml: the file is empty; a policy starts with `version: 1`"
        );
    }

    #[test]
    fn unsupported_version_is_refused() {
        let err = error_of("version: 2\n", &[]);
        assert_eq!(
            err,
            "routes.yaml:1:10: version: unsupported version 2; this proxy reads `version: 1`"
        );
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = load_with_env(Path::new("/nonexistent/routes.yaml"), &|_| None);
        let message = err.err().map(|err| err.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("/nonexistent/routes.yaml: cannot read"),
            "{message}"
        );
    }

    #[test]
    fn minimal_policy_gets_every_default() {
        let policy = compile_yaml("version: 1\n", &[]);
        let Ok(policy) = policy else {
            unreachable!("{policy:?}");
        };
        assert_eq!(policy.server.listen, "0.0.0.0:8080");
        assert_eq!(policy.server.max_request_bytes, 8 << 20);
        assert_eq!(policy.version.len(), 12);
    }

    #[test]
    fn the_repository_routes_yaml_compiles_with_an_empty_environment() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../routes.yaml");
        let policy = load_with_env(&path, &|_| None);
        let policy = match policy {
            Ok(policy) => policy,
            Err(err) => unreachable!("{err}"),
        };
        assert!(policy.models.contains_key("gpt-4o-mini"));
        assert!(policy.models.contains_key("claude-sonnet"));
        // Claude for Claude Code and the Anthropic SDKs: Bedrock first, the Anthropic API next.
        let claude: Vec<String> = policy.models["claude-sonnet"]
            .targets
            .iter()
            .map(|target| target.id.to_string())
            .collect();
        assert_eq!(
            claude,
            vec![
                "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "anthropic/claude-sonnet-4-5"
            ]
        );
        assert_eq!(policy.keys.len(), 1);
        let disabled: Vec<&str> = policy
            .providers
            .values()
            .filter(|provider| provider.disabled.is_some())
            .map(|provider| provider.name.as_str())
            .collect();
        assert_eq!(
            disabled,
            vec!["anthropic", "azure", "bedrock", "openai"],
            "every provider lacks its keys"
        );
        assert!(!describe(&policy).is_empty());
    }

    /// The complete example in docs/configuration.md, verbatim except for its Bedrock placeholder.
    const CONTRACT_EXAMPLE: &str = r#"version: 1
server:
  listen: 0.0.0.0:8080
  admin_listen: 127.0.0.1:9090
  admin_token: ${SWITCHYARD_ADMIN_TOKEN:-}
  request_timeout: 120s          # whole request, all attempts
  max_request_bytes: 8MiB

ledger:
  url: sqlite://switchyard.db     # embedded default; postgres://… when several replicas share spend

providers:                        # where requests can go, and how to authenticate there
  aws-us-east-1:
    kind: bedrock
    region: us-east-1
    # credentials: AWS default chain (env, profile, web identity, ECS/EC2 roles) unless given:
    # access_key_id: ${AWS_ACCESS_KEY_ID}   secret_access_key: …   session_token: …
    # endpoint: https://vpce-….bedrock-runtime.us-east-1.vpce.amazonaws.com   (override)
  azure-eastus:
    kind: azure
    endpoint: https://contoso-east.openai.azure.com
    api_key: ${AZURE_OPENAI_KEY}  # or `auth: entra` to use azure_identity credentials
    api_version: 2024-10-21       # deployments URL form; `v1` selects /openai/v1/… (model in body)
  openai:
    kind: openai                  # any OpenAI-compatible endpoint (OpenAI, vLLM, Together, …)
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}

models:                           # the names clients send as "model"
  gpt-5.5:
    strategy: latency             # latency | cost | balanced | priority (default: priority)
    targets:
      - provider: azure-eastus
        deployment: gpt-55-prod   # Azure targets name a deployment (with api_version v1 it is sent as the body's model)
        price: { input: 1.25, output: 10.00 }      # USD per million tokens; cached_input optional
        limits: { rpm: 600, tpm: 400000 }          # known quota, used as capacity headroom
      - provider: aws-us-east-1
        model: anthropic.claude-3-5-haiku-20241022-v1:0
      - provider: openai
        model: gpt-5.5
    fallbacks: [gpt-5.4]          # other models to try when every target is out of capacity
  claude-sonnet:
    strategy: cost
    targets:
      - provider: aws-us-east-1
        model: us.anthropic.claude-sonnet-4-5-20250929-v1:0

teams:
  search:
    keys:
      - sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
    models: [gpt-5.5, claude-sonnet]            # allow-list; absent = all
    budget: { usd: 500, period: monthly }       # hard limit: requests are refused once spent
    alert_at: 0.8                               # fraction; exported as a metric for alerting
    limits: { rpm: 1200, tpm: 2000000 }
"#;

    const CONTRACT_ENV: &[(&str, &str)] =
        &[("AZURE_OPENAI_KEY", "az-key"), ("OPENAI_API_KEY", "oa-key")];

    #[test]
    fn design_example_needs_its_env_vars() {
        let err = error_of(CONTRACT_EXAMPLE, &[("AZURE_OPENAI_KEY", "az-key")]);
        assert!(err.starts_with("routes.yaml:27:14: providers.openai.api_key: environment variable OPENAI_API_KEY is not set"), "{err}");
    }

    /// The example is a sketch: `gpt-5.5` is not in the price table and `gpt-5.4` is
    /// not defined. Both are reported precisely; filling them in makes it compile.
    #[test]
    fn design_example_compiles_once_its_gaps_are_filled() -> Result<(), ConfigError> {
        let err = error_of(CONTRACT_EXAMPLE, CONTRACT_ENV);
        assert!(
            err.starts_with(
                "routes.yaml:39:9: models.gpt-5.5.targets[2]: no price is known for `gpt-5.5`"
            ),
            "{err}"
        );

        let priced = CONTRACT_EXAMPLE.replace(
            "        model: gpt-5.5\n",
            "        model: gpt-5.5\n        price: { input: 1.25, output: 10.00 }\n",
        );
        let err = error_of(&priced, CONTRACT_ENV);
        assert!(
            err.starts_with(
                "routes.yaml:42:17: models.gpt-5.5.fallbacks: model `gpt-5.4` is not defined"
            ),
            "{err}"
        );

        let complete = priced.replace(
            "  claude-sonnet:\n",
            "  gpt-5.4:\n    targets: [{ provider: openai, model: gpt-5-mini }]\n  claude-sonnet:\n",
        );
        let policy = testing::compile_yaml(&complete, CONTRACT_ENV)?;
        assert_eq!(policy.providers.len(), 3);
        assert!(policy.providers.values().all(|p| p.disabled.is_none()));
        let gpt = policy
            .models
            .get("gpt-5.5")
            .map(|m| (m.strategy, m.targets.len()));
        assert_eq!(gpt, Some((Strategy::Latency, 3)));
        let search = policy
            .teams
            .get("search")
            .map(|t| (t.may_use("gpt-5.5"), t.may_use("gpt-5.4")));
        assert_eq!(search, Some((true, false)));
        assert_eq!(
            policy.keys.values().next().map(|o| o.key_id.as_str()),
            Some("search#5e884898")
        );
        Ok(())
    }
}
