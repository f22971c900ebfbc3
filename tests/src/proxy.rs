//! One `switchyard` process per test: its temp dir and config file, its two ports, its
//! log, and clients pointed at it. Dropping the [`Proxy`] kills the process.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::Client;

use crate::ports::free_port;

/// How long a proxy may take to answer `/healthz` after it was spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a start is retried when one of its ports was taken in the meantime.
const START_ATTEMPTS: u32 = 3;

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A running proxy.
pub struct Proxy {
    child: Child,
    dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    port: u16,
    admin_port: u16,
}

enum StartError {
    /// The process exited and its log says an address was in use: try other ports.
    PortTaken(String),
    Failed(String),
}

impl Proxy {
    /// Writes `routes_yaml` (with `{LISTEN}` and `{ADMIN}` replaced by free ports) to a
    /// fresh temp dir, spawns the binary on it and waits until `/healthz` answers 200.
    pub async fn start(routes_yaml: &str) -> Proxy {
        crate::install_crypto();
        let dir = fresh_dir();
        let mut last = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let (port, admin_port) = two_free_ports();
            match Self::try_start(&dir, routes_yaml, port, admin_port).await {
                Ok(proxy) => return proxy,
                Err(StartError::PortTaken(log)) => {
                    println!(
                        "proxy start attempt {attempt}: a port was taken, retrying with others"
                    );
                    last = log;
                }
                Err(StartError::Failed(message)) => panic!("{message}"),
            }
        }
        panic!(
            "the proxy could not get free ports in {START_ATTEMPTS} attempts; last log:\n{last}"
        );
    }

    async fn try_start(
        dir: &Path,
        yaml: &str,
        port: u16,
        admin_port: u16,
    ) -> Result<Proxy, StartError> {
        let config_path = dir.join("routes.yaml");
        let log_path = dir.join("switchyard.log");
        write_atomically(&config_path, &substitute(yaml, port, admin_port));
        let log = File::create(&log_path).expect("creating the proxy log file");
        let child = Command::new(binary())
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary().display()));
        let mut proxy = Proxy {
            child,
            dir: dir.to_owned(),
            config_path,
            log_path,
            port,
            admin_port,
        };
        proxy.wait_healthy().await?;
        println!(
            "proxy up: {} (admin {})",
            proxy.base_url(),
            proxy.admin_url()
        );
        Ok(proxy)
    }

    async fn wait_healthy(&mut self) -> Result<(), StartError> {
        let client = crate::http_client();
        let url = format!("{}/healthz", self.admin_url());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                let lower = log.to_lowercase();
                if lower.contains("address already in use") || lower.contains("addrinuse") {
                    return Err(StartError::PortTaken(log));
                }
                return Err(StartError::Failed(format!(
                    "the proxy exited ({status}) before becoming healthy; its log:\n{log}"
                )));
            }
            let probe = client
                .get(&url)
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if matches!(probe, Ok(ref response) if response.status() == 200) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(StartError::Failed(format!(
            "the proxy did not answer {url} with 200 within {STARTUP_TIMEOUT:?}; its log:\n{}",
            self.log()
        )))
    }

    /// `http://127.0.0.1:PORT/v1`, what an OpenAI SDK takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// `http://127.0.0.1:ADMIN_PORT`.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
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
        self.child.id()
    }

    /// Everything the proxy wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The config file the proxy was started with (and watches).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Replaces the config file (atomically, by rename) with `yaml`, placeholders
    /// substituted with this proxy's ports.
    pub fn write_config(&self, yaml: &str) {
        write_atomically(
            &self.config_path,
            &substitute(yaml, self.port, self.admin_port),
        );
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

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            println!(
                "keeping {} for inspection; proxy log:\n{}",
                self.dir.display(),
                self.log()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `SWITCHYARD_BIN`, else `switchyard` next to the test's `deps/` directory.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("locating the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    profile_dir.join(format!("switchyard{}", std::env::consts::EXE_SUFFIX))
}

fn fresh_dir() -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("switchyard-e2e-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("creating the proxy's temp dir");
    dir
}

fn two_free_ports() -> (u16, u16) {
    loop {
        let (a, b) = (free_port(), free_port());
        if a != b {
            return (a, b);
        }
    }
}

fn substitute(yaml: &str, port: u16, admin_port: u16) -> String {
    yaml.replace("{LISTEN}", &port.to_string())
        .replace("{ADMIN}", &admin_port.to_string())
}

/// Writes next to `path` and renames over it, so a watcher never reads half a file.
fn write_atomically(path: &Path, contents: &str) {
    let tmp = path.with_extension(format!("tmp{}", NEXT_DIR.fetch_add(1, Ordering::Relaxed)));
    fs::write(&tmp, contents).expect("writing the config file");
    fs::rename(&tmp, path).expect("renaming the config file into place");
}
