//! nginx as the baseline: a plain HTTP/1.1 reverse proxy with upstream keep-alive and no
//! buffering, started from a generated config in a temp dir and stopped on drop.

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::proxy_process::free_port;

/// How long nginx may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful stop may take before the master is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `nginx version: nginx/1.22.1` when nginx is on PATH, else `None`.
pub fn installed_version() -> Option<String> {
    let output = Command::new("nginx").arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&output.stderr);
    let version = text
        .trim()
        .strip_prefix("nginx version: ")
        .unwrap_or(text.trim());
    Some(version.to_owned())
}

/// The whole nginx.conf: paths are relative to the prefix (`-p`), the temp dir. With
/// `cpus`, one worker per CPU, each bound to its own; else one worker per core.
pub fn config(upstream_port: u16, listen_port: u16, cpus: Option<&[usize]>) -> String {
    let workers = match cpus {
        Some(cpus) => format!(
            "worker_processes {};\nworker_cpu_affinity {};",
            cpus.len(),
            cpus.iter()
                .map(|&cpu| affinity_mask(cpu))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        None => "worker_processes auto;".to_owned(),
    };
    format!(
        r#"daemon off;
{workers}
error_log error.log warn;
pid nginx.pid;
events {{}}
http {{
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    upstream sim {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{listen_port};
        location / {{
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"#
    )
}

/// nginx's CPU mask for one CPU: `1` followed by `cpu` zeros (CPU 0 is the rightmost bit).
fn affinity_mask(cpu: usize) -> String {
    format!("1{}", "0".repeat(cpu))
}

/// A running nginx master (and its workers).
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    /// Writes the config for `upstream_port` into a fresh temp dir and starts nginx on it;
    /// with `cpus`, the master and its workers run on those CPUs only, one worker per CPU.
    pub async fn start(upstream_port: u16, cpus: Option<&[usize]>) -> anyhow::Result<Self> {
        let dir = crate::proxy_process::fresh_dir("switchyard-bench-nginx")?;
        fs::create_dir(dir.join("tmp")).with_context(|| format!("creating {}", dir.display()))?;
        let port = free_port()?;
        let conf = dir.join("nginx.conf");
        fs::write(&conf, config(upstream_port, port, cpus)).context("writing nginx.conf")?;
        let mut command = Command::new("nginx");
        if let Some(cpus) = cpus {
            super::pinning::pin_std_command(&mut command, cpus)?;
        }
        let child = command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning nginx")?;
        let mut nginx = Self { child, dir, port };
        nginx.wait_listening().await?;
        Ok(nginx)
    }

    async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                let log = fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                bail!("nginx exited ({status}) before listening; error.log:\n{log}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "nginx did not listen on port {} within {STARTUP_TIMEOUT:?}",
            self.port
        )
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The master and its workers: what the proxy's CPU time and memory are summed over.
    pub fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        pids.extend(super::procstat::children(master));
        pids
    }
}

impl Drop for Nginx {
    /// SIGTERM lets the master stop its workers (a SIGKILL would orphan them, still
    /// listening); kill only if that does not work in time.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_proxies_to_the_sim_with_keepalive_and_no_buffering() {
        let conf = config(4000, 5000, None);
        for line in [
            "daemon off;",
            "worker_processes auto;",
            "error_log error.log warn;",
            "pid nginx.pid;",
            "access_log off;",
            "server 127.0.0.1:4000;",
            "keepalive 64;",
            "listen 127.0.0.1:5000;",
            "proxy_pass http://sim;",
            "proxy_http_version 1.1;",
            r#"proxy_set_header Connection "";"#,
            "proxy_buffering off;",
        ] {
            assert!(conf.contains(line), "missing {line:?} in:\n{conf}");
        }
        assert_eq!(conf.matches('{').count(), conf.matches('}').count());
    }

    #[test]
    fn pinned_nginx_has_one_worker_per_cpu_bound_to_it() {
        let conf = config(4000, 5000, Some(&[1]));
        assert!(
            conf.contains("worker_processes 1;\nworker_cpu_affinity 10;\n"),
            "{conf}"
        );
        let two = config(4000, 5000, Some(&[2, 3]));
        assert!(
            two.contains("worker_processes 2;\nworker_cpu_affinity 100 1000;\n"),
            "{two}"
        );
        assert!(!two.contains("auto"));
    }
}
