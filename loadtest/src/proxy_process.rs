//! Runs the real `switchyard` binary as a child process on a generated policy: used by the
//! demo, the benchmark and the end-to-end tests. Dropping a [`ProxyProcess`] kills it.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// How long a proxy may take to answer `/healthz` after it was spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a start is retried when one of its ports was taken in the meantime.
const START_ATTEMPTS: u32 = 3;

/// Random names tried for a fresh directory before giving up.
const FRESH_DIR_ATTEMPTS: usize = 8;

/// The environment's egress proxy settings, not inherited when a test sets the environment.
const EGRESS_PROXY_VARIABLES: [&str; 4] = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"];

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// How to start the proxy beyond its policy.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Added to the process's environment; cloud credential and egress proxy variables are
    /// then not inherited.
    pub env: Vec<(String, String)>,
    /// The open-file limit (soft and hard) set before it starts.
    pub nofile: Option<u64>,
    /// Run on these CPUs only.
    pub cpus: Option<Vec<usize>>,
}

/// A running proxy and its files.
pub struct ProxyProcess {
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
    Failed(anyhow::Error),
}

impl ProxyProcess {
    /// Writes `routes_yaml` (with `{LISTEN}` and `{ADMIN}` replaced by free ports) to a fresh
    /// temp dir, spawns `binary` on it and waits until `/healthz` answers 200.
    pub async fn start(binary: &Path, routes_yaml: &str) -> anyhow::Result<Self> {
        Self::start_with_env(binary, routes_yaml, &[]).await
    }

    /// [`Self::start`] with `env` added to the process's environment. Cloud credential
    /// variables the test process happens to have (`AWS_*`, `AZURE_*`, `IDENTITY_*`,
    /// `MSI_*`, `IMDS_*`) and egress proxy settings (`HTTP(S)_PROXY`, `ALL_PROXY`, `NO_PROXY`,
    /// either case) are not inherited, so credential and egress tests see only what they set.
    pub async fn start_with_env(
        binary: &Path,
        routes_yaml: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        Self::start_with(binary, routes_yaml, env, None).await
    }

    /// [`Self::start_with_env`] with the process's open-file limit (soft and hard) set to
    /// `nofile` before it starts: descriptor-exhaustion tests.
    pub async fn start_with(
        binary: &Path,
        routes_yaml: &str,
        env: &[(String, String)],
        nofile: Option<u64>,
    ) -> anyhow::Result<Self> {
        let launch = Launch {
            env: env.to_vec(),
            nofile,
            cpus: None,
        };
        Self::start_launch(binary, routes_yaml, &launch).await
    }

    /// [`Self::start_with`], and with `launch.cpus` the process runs on those CPUs only
    /// (the benchmark's pinned layout).
    pub async fn start_launch(
        binary: &Path,
        routes_yaml: &str,
        launch: &Launch,
    ) -> anyhow::Result<Self> {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let (port, admin_port) = (free_port()?, free_port()?);
            if port == admin_port {
                continue;
            }
            let ports = (port, admin_port);
            match Self::try_start(binary, routes_yaml, launch, ports).await {
                Ok(proxy) => return Ok(proxy),
                Err(StartError::PortTaken(log)) => last = log,
                Err(StartError::Failed(error)) => return Err(error),
            }
        }
        bail!("the proxy could not get free ports in {START_ATTEMPTS} attempts; last log:\n{last}")
    }

    /// One start on `ports`, in a directory of its own: a failed attempt is dropped, and its
    /// drop removes its directory, so a retry must not share it (a shared one was removed
    /// under the retry that was about to write its config there).
    async fn try_start(
        binary: &Path,
        yaml: &str,
        launch: &Launch,
        (port, admin_port): (u16, u16),
    ) -> Result<Self, StartError> {
        let (env, nofile) = (&launch.env, launch.nofile);
        let dir = fresh_dir("switchyard").map_err(StartError::Failed)?;
        let config_path = dir.join("routes.yaml");
        let log_path = dir.join("switchyard.log");
        let spawn = || -> anyhow::Result<Child> {
            write_atomically(&config_path, &substitute(yaml, port, admin_port))?;
            let log = File::create(&log_path).context("creating the proxy log file")?;
            let mut command = Command::new(binary);
            if !env.is_empty() {
                for (name, _) in std::env::vars_os() {
                    let inherited_setting = name.to_str().is_some_and(|name| {
                        ["AWS_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_"]
                            .iter()
                            .any(|prefix| name.starts_with(prefix))
                            || EGRESS_PROXY_VARIABLES.contains(&name.to_ascii_uppercase().as_str())
                    });
                    if inherited_setting {
                        command.env_remove(name);
                    }
                }
                command.envs(env.iter().map(|(k, v)| (k, v)));
            }
            if let Some(limit) = nofile {
                use std::os::unix::process::CommandExt;
                // SAFETY: only setrlimit, async-signal-safe, runs between fork and exec.
                unsafe {
                    command.pre_exec(move || {
                        rlimit::setrlimit(rlimit::Resource::NOFILE, limit, limit)
                    });
                }
            }
            if let Some(cpus) = &launch.cpus {
                crate::bench::pinning::pin_std_command(&mut command, cpus)?;
            }
            command
                .arg("--config")
                .arg(&config_path)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("spawning {}", binary.display()))
        };
        let child = spawn().map_err(StartError::Failed)?;
        let mut proxy = Self {
            child,
            dir,
            config_path,
            log_path,
            port,
            admin_port,
        };
        proxy.wait_healthy().await?;
        Ok(proxy)
    }

    async fn wait_healthy(&mut self) -> Result<(), StartError> {
        let client = crate::http_client().map_err(StartError::Failed)?;
        let url = format!("{}/healthz", self.admin_url());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                if log.to_lowercase().contains("address already in use") {
                    return Err(StartError::PortTaken(log));
                }
                return Err(StartError::Failed(anyhow::anyhow!(
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
        Err(StartError::Failed(anyhow::anyhow!(
            "the proxy did not answer {url} within {STARTUP_TIMEOUT:?}; its log:\n{}",
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

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
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

    /// Replaces the config file atomically (by rename), placeholders substituted.
    pub fn write_config(&self, yaml: &str) -> anyhow::Result<()> {
        write_atomically(
            &self.config_path,
            &substitute(yaml, self.port, self.admin_port),
        )
    }

    /// The child's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `bound` for the process to exit; its status, or `None` if it still runs.
    pub async fn wait_exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // A failing test: keep the files and show the log.
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

/// `{LISTEN}` → `127.0.0.1`'s port for clients, `{ADMIN}` → the admin port.
pub fn substitute(yaml: &str, port: u16, admin_port: u16) -> String {
    yaml.replace("{LISTEN}", &port.to_string())
        .replace("{ADMIN}", &admin_port.to_string())
}

/// How `routes.yaml` stores a client key: `sha256:<hex of the key's SHA-256>`.
pub fn key_hash(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A port that was free a moment ago (the OS picks it; a race with another process is
/// possible and handled by retrying the start).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// The `switchyard` binary: `$SWITCHYARD_BIN`, else the one built next to this executable
/// (`target/<profile>/switchyard`, also from `target/<profile>/deps/`).
pub fn switchyard_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SWITCHYARD_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the current executable")?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir.join("switchyard"))
}

/// A new directory under the temp dir that this call alone created, named
/// `{prefix}-{pid}-{random}`: created exclusively and never cleared first, so no two callers
/// (threads, or processes with the same id on a shared `/tmp`) ever share or remove each
/// other's directory.
pub fn fresh_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let root = std::env::temp_dir();
    for _ in 0..FRESH_DIR_ATTEMPTS {
        let name = format!(
            "{prefix}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let dir = root.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!(
        "no fresh directory name under {} in {FRESH_DIR_ATTEMPTS} tries",
        root.display()
    )
}

/// Writes next to `path` and renames over it, so a watcher never reads half a file.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{n}"));
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))
}
