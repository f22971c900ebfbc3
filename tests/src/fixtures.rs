//! What most tests share: two simulated upstreams (`sim-a`, `sim-b`), the client key of
//! team `alpha`, and the `routes.yaml` that wires them together.

use loadtest::{OpenAiSim, SimConfig};

/// The client key of team `alpha` (only its hash is in `routes.yaml`).
pub const ALPHA_KEY: &str = "sk-alpha-e2e-0b5e7c1d9f";
/// What `sim-a` / `sim-b` require from the proxy; never what a client sends.
pub const UPSTREAM_KEY_A: &str = "upstream-key-a";
pub const UPSTREAM_KEY_B: &str = "upstream-key-b";

/// `sha256:<hex>` of a client key, the form `routes.yaml` stores keys in.
pub use loadtest::proxy_process::key_hash;

/// Starts a simulator named `name` that requires `Authorization: Bearer <api_key>`.
pub async fn start_sim(name: &str, api_key: &str) -> OpenAiSim {
    OpenAiSim::start(SimConfig {
        name: name.to_owned(),
        api_key: Some(api_key.to_owned()),
        ..SimConfig::default()
    })
    .await
    .expect("starting a simulator")
}

/// The two upstreams of the standard policy.
pub struct Sims {
    pub a: OpenAiSim,
    pub b: OpenAiSim,
}

impl Sims {
    pub async fn start() -> Sims {
        Sims {
            a: start_sim("sim-a", UPSTREAM_KEY_A).await,
            b: start_sim("sim-b", UPSTREAM_KEY_B).await,
        }
    }

    /// The standard policy over these simulators; see [`two_sim_routes`].
    pub fn routes(&self, server_extra: &str) -> String {
        two_sim_routes(&self.a.base_url(), &self.b.base_url(), server_extra)
    }
}

/// The standard policy: model `chat` tries `sim-a` (`up-a`) then `sim-b` (`up-b`) in
/// priority order, `embed` is served by `sim-a`, `other` exists but team `alpha`
/// (key [`ALPHA_KEY`]) may not use it. `server_extra` holds more `server:` settings,
/// one `key: value` per line, unindented.
pub fn two_sim_routes(a_url: &str, b_url: &str, server_extra: &str) -> String {
    policy(
        server_extra,
        &format!(
            r#"  sim-a: {{ kind: openai, base_url: "{a_url}", api_key: {UPSTREAM_KEY_A} }}
  sim-b: {{ kind: openai, base_url: "{b_url}", api_key: {UPSTREAM_KEY_B} }}
"#
        ),
        r#"  chat:
    targets:
      - { provider: sim-a, model: up-a, price: { input: 1.0, output: 2.0 } }
      - { provider: sim-b, model: up-b, price: { input: 1.0, output: 2.0 } }
  embed:
    targets:
      - { provider: sim-a, model: emb-a, price: { input: 0.02, output: 0 } }
  other: { targets: [ { provider: sim-b, model: x, price: free } ] }
"#,
        "[chat, embed]",
    )
}

/// Only `sim-a`: model `chat` has no second target to fail over to.
pub fn one_sim_routes(a_url: &str, server_extra: &str) -> String {
    policy(
        server_extra,
        &format!("  sim-a: {{ kind: openai, base_url: \"{a_url}\", api_key: {UPSTREAM_KEY_A} }}\n"),
        "  chat: { targets: [ { provider: sim-a, model: up-a, price: { input: 1.0, output: 2.0 } } ] }\n",
        "[chat]",
    )
}

/// A whole `routes.yaml` on the placeholder ports: `providers` and `models` are their
/// sections' bodies (indented by two spaces); team `alpha` holds [`ALPHA_KEY`] and may use
/// `team_models` (a YAML flow list).
pub fn policy(server_extra: &str, providers: &str, models: &str, team_models: &str) -> String {
    let extra: String = server_extra
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!("  {line}\n"))
        .collect();
    let alpha = key_hash(ALPHA_KEY);
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 10s
  first_byte_timeout: 2s
{extra}providers:
{providers}models:
{models}teams:
  alpha: {{ keys: ["{alpha}"], models: {team_models} }}
"#
    )
}
