//! One `switchyard` process per test (loadtest's [`ProxyProcess`]) with the test-side
//! conveniences: panics instead of errors, URL helpers, an async-openai client, and a
//! warning when the binary is older than the proxy's sources.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_openai::config::OpenAIConfig;
use async_openai::Client;
use loadtest::proxy_process::{switchyard_binary, ProxyProcess};

/// A running proxy; dropping it kills the process (and keeps its files if the test failed).
pub struct Proxy {
    process: ProxyProcess,
}

impl Proxy {
    /// Writes `routes_yaml` (with `{LISTEN}` and `{ADMIN}` replaced by free ports) to a
    /// fresh temp dir, spawns the binary on it and waits until `/healthz` answers 200.
    pub async fn start(routes_yaml: &str) -> Proxy {
        Self::start_with_env(routes_yaml, &[]).await
    }

    /// [`Self::start`] with `env` added to the proxy's environment (and no cloud credential or
    /// egress proxy variables of the test process inherited): credential and egress tests.
    pub async fn start_with_env(routes_yaml: &str, env: &[(&str, &str)]) -> Proxy {
        Self::start_with(routes_yaml, env, None).await
    }

    /// [`Self::start`] with the process's open-file limit set to `nofile` (soft and hard).
    pub async fn start_with_nofile(routes_yaml: &str, nofile: u64) -> Proxy {
        Self::start_with(routes_yaml, &[], Some(nofile)).await
    }

    async fn start_with(routes_yaml: &str, env: &[(&str, &str)], nofile: Option<u64>) -> Proxy {
        crate::install_crypto();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let process = ProxyProcess::start_with(&binary(), routes_yaml, &env, nofile)
            .await
            .unwrap_or_else(|e| panic!("starting the proxy: {e:#}"));
        println!(
            "proxy up: {} (admin {})",
            process.base_url(),
            process.admin_url()
        );
        Proxy { process }
    }

    /// `http://127.0.0.1:PORT/v1`, what an OpenAI SDK takes as its base URL.
    pub fn base_url(&self) -> String {
        self.process.base_url()
    }

    /// `http://127.0.0.1:ADMIN_PORT`.
    pub fn admin_url(&self) -> String {
        self.process.admin_url()
    }

    /// `127.0.0.1:PORT` of the client listener, for raw TCP clients.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.process.port()))
    }

    /// Sends the process `signal` (e.g. `"TERM"`).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `bound` for the process to exit: its status, or `None` if it still runs.
    pub async fn wait_exit(
        &mut self,
        bound: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        self.process.wait_exit(bound).await
    }

    /// `base_url()` + `path`, e.g. `proxy.url("/chat/completions")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// `admin_url()` + `path`, e.g. `proxy.admin("/metrics")`.
    pub fn admin(&self, path: &str) -> String {
        format!("{}{path}", self.admin_url())
    }

    /// The process id, e.g. to send it a signal.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the proxy wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The log once `ready` holds for it, waiting up to 5 s (lines written after the answer
    /// that caused them, such as access lines gathered under concurrency); the log as it is
    /// when the wait ends either way, for the caller's assertion to show.
    pub async fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let mut log = self.log();
        for _ in 0..50 {
            if ready(&log) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            log = self.log();
        }
        log
    }

    /// The config file the proxy was started with (and watches).
    pub fn config_path(&self) -> &Path {
        self.process.config_path()
    }

    /// Replaces the config file (atomically, by rename) with `yaml`, placeholders
    /// substituted with this proxy's ports.
    pub fn write_config(&self, yaml: &str) {
        self.process
            .write_config(yaml)
            .expect("rewriting the config file");
    }

    /// An async-openai client pointed at this proxy with `key` as its API key.
    pub fn openai(&self, key: &str) -> Client<OpenAIConfig> {
        crate::install_crypto();
        let config = OpenAIConfig::new()
            .with_api_base(self.base_url())
            .with_api_key(key);
        Client::with_config(config).with_http_client(crate::http_client())
    }
}

/// The binary under test as a command, for its subcommands (`spend`, `audit`).
pub fn switchyard_command() -> std::process::Command {
    std::process::Command::new(binary())
}

/// The binary under test. Only `cargo test --workspace` (or `cargo build -p switchyard`)
/// rebuilds it, so a binary older than the proxy's sources gets a warning in the output.
fn binary() -> PathBuf {
    let binary = switchyard_binary().expect("locating the switchyard binary");
    let built = fs::metadata(&binary).and_then(|meta| meta.modified()).unwrap_or_else(|_| {
        panic!(
            "no proxy binary at {}: run `cargo build -p switchyard` (or `cargo test --workspace`), or set SWITCHYARD_BIN",
            binary.display()
        )
    });
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proxy/src");
    if newest_change(&sources).is_some_and(|newest| newest > built) {
        println!(
            "warning: {} is older than {}; run `cargo build -p switchyard` to test the current code",
            binary.display(),
            sources.display()
        );
    }
    binary
}

/// The latest modification time of any file under `dir`.
fn newest_change(dir: &Path) -> Option<SystemTime> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                newest_change(&entry.path())
            } else {
                meta.modified().ok()
            }
        })
        .max()
}
