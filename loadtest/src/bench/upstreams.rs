//! The processes under load: the simulated upstreams (this binary's `sim openai`, each in
//! its own process so that its runtime does not share a scheduler with the load generator)
//! and the switchyard binary on a policy pointing at them. All are killed on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proxy_process::{key_hash, Launch, ProxyProcess};

use super::{BENCH_KEY, BENCH_MODEL};

/// How long the sim may take to print its address.
const SIM_STARTUP: Duration = Duration::from_secs(10);

/// How one simulator answers.
#[derive(Clone, Debug)]
pub struct SimSpec {
    /// Shown in its answers and the `x-sim-name` header.
    pub name: String,
    pub ttft: Duration,
    pub inter_token: Duration,
    pub tokens: usize,
}

/// `loadtest sim openai` as a child process.
pub struct SimProcess {
    child: Child,
    base_url: String,
    port: u16,
}

impl SimProcess {
    /// Starts `loadtest` (the executable at `exe`) as a sim on a free port; with `cpus`, it
    /// runs on those CPUs only.
    pub async fn start(exe: &Path, spec: &SimSpec, cpus: Option<&[usize]>) -> anyhow::Result<Self> {
        let mut command = Command::new(exe);
        command
            .args(sim_args(spec))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(cpus) = cpus {
            super::pinning::pin_tokio_command(&mut command, cpus)?;
        }
        let mut child = command.spawn().context("spawning the simulator")?;
        let stdout = child.stdout.take().context("the simulator's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(SIM_STARTUP, lines.next_line())
            .await
            .context("the simulator did not start in time")?
            .context("reading the simulator's output")?
            .context("the simulator exited before printing its address")?;
        let base_url = parse_listening_line(&line)?;
        let port = port_of(&base_url)?;
        // Keep draining stdout so the sim never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            base_url,
            port,
        })
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/_sim/faults`: where faults are scripted.
    pub fn faults_url(&self) -> String {
        format!("http://127.0.0.1:{}/_sim/faults", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Arguments for `loadtest sim openai` (durations in microseconds, which the parser takes).
pub fn sim_args(spec: &SimSpec) -> Vec<String> {
    vec![
        "sim".to_owned(),
        "openai".to_owned(),
        "--port".to_owned(),
        "0".to_owned(),
        "--name".to_owned(),
        spec.name.clone(),
        "--ttft".to_owned(),
        format!("{}us", spec.ttft.as_micros()),
        "--inter-token".to_owned(),
        format!("{}us", spec.inter_token.as_micros()),
        "--tokens".to_owned(),
        spec.tokens.to_string(),
        // Its default headers advertise 10,000 requests a minute, which a benchmark exceeds
        // within seconds; the proxy would then rightly hold back (headroom 0).
        "--no-rate-limit-headers".to_owned(),
    ]
}

/// `bench-sim listening on http://127.0.0.1:PORT/v1` → the URL.
fn parse_listening_line(line: &str) -> anyhow::Result<String> {
    match line.split_once(" listening on ") {
        Some((_, url)) if url.starts_with("http://") => Ok(url.trim().to_owned()),
        _ => bail!("unexpected first line from the simulator: {line:?}"),
    }
}

fn port_of(base_url: &str) -> anyhow::Result<u16> {
    let url: reqwest::Url = base_url.parse().context("parsing the simulator's URL")?;
    url.port().context("the simulator's URL has no port")
}

/// The real proxy on a generated policy.
pub struct SwitchyardProcess {
    proxy: ProxyProcess,
}

impl SwitchyardProcess {
    pub async fn start(binary: &Path, policy: &str, launch: &Launch) -> anyhow::Result<Self> {
        let proxy = ProxyProcess::start_launch(binary, policy, launch).await?;
        Ok(Self { proxy })
    }

    pub fn base_url(&self) -> String {
        self.proxy.base_url()
    }

    /// `http://127.0.0.1:ADMIN_PORT/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("{}/metrics", self.proxy.admin_url())
    }

    pub fn pid(&self) -> u32 {
        self.proxy.pid()
    }

    /// Replaces the watched `routes.yaml` (the proxy reloads it by itself).
    pub fn write_config(&self, policy: &str) -> anyhow::Result<()> {
        self.proxy.write_config(policy)
    }

    pub fn config_path(&self) -> PathBuf {
        self.proxy.config_path().to_owned()
    }
}

/// The `server:` settings of the measured runs besides the listeners.
const SERVER_TIMEOUTS: &str = "  request_timeout: 30s\n  first_byte_timeout: 10s\n";

/// One team, one model with one target: the sim. Priced, so that metering does its work.
pub fn policy(sim_base_url: &str) -> String {
    render_policy(SERVER_TIMEOUTS, &[("sim", sim_base_url)], 2.0, "")
}

/// The soak's policy: the flaky sim first (priority), the good one behind it, so that every
/// fault of the flaky one is a failover. `output_price` is what a reload changes. Short
/// cool-downs (docs/routing.md, "Cool-downs") bring the flaky target back within a second of
/// each burst, so failovers keep happening all through the run.
pub fn soak_policy(flaky_base_url: &str, good_base_url: &str, output_price: f64) -> String {
    render_policy(
        SERVER_TIMEOUTS,
        &[("flaky", flaky_base_url), ("good", good_base_url)],
        output_price,
        "    health: { cooldown: 100ms, max_cooldown: 1s }\n",
    )
}

/// The idle-streams policy: streams that wait an hour for their next event are neither
/// stalls nor timeouts, and `connections` client connections are allowed.
pub fn idle_policy(sim_base_url: &str, connections: usize) -> String {
    let server = format!(
        "  request_timeout: 1h\n  first_byte_timeout: 10s\n  stream_idle_timeout: 1h\n  \
         max_client_connections: {connections}\n"
    );
    render_policy(&server, &[("sim", sim_base_url)], 2.0, "")
}

/// `upstreams` are (provider name, base URL) in priority order; `server` are the `server:`
/// lines after the listeners, indented by two; `model` more lines of the model (by four).
fn render_policy(
    server: &str,
    upstreams: &[(&str, &str)],
    output_price: f64,
    model: &str,
) -> String {
    let key_hash = key_hash(BENCH_KEY);
    let mut providers = String::new();
    let mut targets = String::new();
    for (name, base_url) in upstreams {
        providers.push_str(&format!(
            "  {name}: {{ kind: openai, base_url: \"{base_url}\" }}\n"
        ));
        targets.push_str(&format!(
            "      - {{ provider: {name}, model: sim-model, price: {{ input: 1.0, output: {output_price:?} }} }}\n"
        ));
    }
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
{server}providers:
{providers}models:
  {BENCH_MODEL}:
    strategy: priority
{model}    targets:
{targets}teams:
  bench: {{ keys: ["{key_hash}"] }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sim_address() -> anyhow::Result<()> {
        let url = parse_listening_line("bench-sim listening on http://127.0.0.1:4321/v1")?;
        assert_eq!(url, "http://127.0.0.1:4321/v1");
        assert_eq!(port_of(&url)?, 4321);
        assert!(parse_listening_line("error: something").is_err());
        Ok(())
    }

    #[test]
    fn the_policy_names_the_sim_and_the_hashed_key() {
        let yaml = policy("http://127.0.0.1:9/v1");
        assert!(yaml.contains(r#"base_url: "http://127.0.0.1:9/v1""#));
        assert!(yaml.contains("bench-model:"));
        assert!(yaml.contains("{LISTEN}") && yaml.contains("{ADMIN}"));
        assert!(!yaml.contains(BENCH_KEY), "only the key's hash is written");
    }

    #[test]
    fn the_soak_policy_puts_the_flaky_sim_first_and_prices_what_a_reload_changes() {
        let yaml = soak_policy("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1", 2.5);
        let flaky = yaml.find("provider: flaky").unwrap_or(usize::MAX);
        let good = yaml.find("provider: good").unwrap_or(0);
        assert!(flaky < good, "{yaml}");
        assert!(yaml.contains("output: 2.5"));
        assert!(yaml.contains("    health: { cooldown: 100ms, max_cooldown: 1s }\n    targets:"));
        assert_ne!(
            yaml,
            soak_policy("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1", 2.0)
        );
    }

    #[test]
    fn the_idle_policy_lets_streams_wait_and_connections_pile_up() {
        let yaml = idle_policy("http://127.0.0.1:9/v1", 10_064);
        assert!(yaml.contains("  stream_idle_timeout: 1h\n"));
        assert!(yaml.contains("  request_timeout: 1h\n"));
        assert!(yaml.contains("  max_client_connections: 10064\n"));
        assert!(!yaml.contains("request_timeout: 30s"));
    }
}
