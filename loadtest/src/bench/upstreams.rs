//! The processes under load: the simulated upstream (this binary's `sim openai`, in its own
//! process so that its runtime does not share a scheduler with the load generator) and the
//! switchyard binary on a one-model policy pointing at it. Both are killed on drop.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proxy_process::{key_hash, ProxyProcess};

use super::{Settings, BENCH_KEY, BENCH_MODEL};

/// How long the sim may take to print its address.
const SIM_STARTUP: Duration = Duration::from_secs(10);

/// `loadtest sim openai` as a child process.
pub struct SimProcess {
    child: Child,
    base_url: String,
    port: u16,
}

impl SimProcess {
    /// Starts the sim on a free port with the benchmark's latency and answer length.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the loadtest executable")?;
        let mut child = Command::new(exe)
            .args(sim_args(settings))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawning the simulator")?;
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

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Arguments for `loadtest sim openai` (durations in microseconds, which the parser takes).
pub fn sim_args(settings: &Settings) -> Vec<String> {
    vec![
        "sim".to_owned(),
        "openai".to_owned(),
        "--port".to_owned(),
        "0".to_owned(),
        "--name".to_owned(),
        "bench-sim".to_owned(),
        "--ttft".to_owned(),
        format!("{}us", settings.ttft.as_micros()),
        "--inter-token".to_owned(),
        format!("{}us", settings.inter_token.as_micros()),
        "--tokens".to_owned(),
        settings.tokens.to_string(),
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

/// The real proxy on [`policy`].
pub struct SwitchyardProcess {
    proxy: ProxyProcess,
}

impl SwitchyardProcess {
    pub async fn start(binary: &Path, sim: &SimProcess) -> anyhow::Result<Self> {
        let proxy = ProxyProcess::start(binary, &policy(&sim.base_url())).await?;
        Ok(Self { proxy })
    }

    pub fn base_url(&self) -> String {
        self.proxy.base_url()
    }
}

/// One team, one model with one target: the sim. Priced, so that metering does its work.
pub fn policy(sim_base_url: &str) -> String {
    let key_hash = key_hash(BENCH_KEY);
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 30s
  first_byte_timeout: 10s
providers:
  sim: {{ kind: openai, base_url: "{sim_base_url}" }}
models:
  {BENCH_MODEL}:
    targets:
      - {{ provider: sim, model: sim-model, price: {{ input: 1.0, output: 2.0 }} }}
teams:
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
}
