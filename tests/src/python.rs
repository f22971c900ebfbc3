//! Python scenarios driving the proxy with the official Anthropic SDK: finding the
//! interpreter (`.ci/run` makes the virtualenv) and running one script of `tests/python/`
//! with its settings in the environment, bounded in time, its one JSON stdout line returned.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

/// The longest one scenario may run (it makes a few SDK calls, each bounded by the SDK's timeout).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The variable `.ci/run` sets to the virtualenv's interpreter.
pub const PYTHON_VAR: &str = "SWITCHYARD_TEST_PYTHON";

const HOW_TO_INSTALL: &str = "run .ci/run or: python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt";

/// The repository's root (the parent of the `tests` crate).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// `tests/python/`, where the scenarios live.
pub fn scripts_dir() -> PathBuf {
    repo_root().join("tests").join("python")
}

/// The interpreter with the Anthropic SDK: `$SWITCHYARD_TEST_PYTHON`, else `<repo>/.venv/bin/python`.
/// Panics (the test fails, it does not skip) when it is missing or cannot import `anthropic`.
pub fn interpreter() -> PathBuf {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let python = std::env::var_os(PYTHON_VAR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv").join("bin").join("python"));
        if !python.exists() {
            return Err(format!(
                "no Python for the Anthropic SDK tests at {} (from ${PYTHON_VAR}, else <repo>/.venv/bin/python): {HOW_TO_INSTALL}",
                python.display()
            ));
        }
        let probe = std::process::Command::new(&python)
            .args(["-c", "import anthropic; print(anthropic.__version__)"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}: {HOW_TO_INSTALL}", python.display()))?;
        if !probe.status.success() {
            return Err(format!(
                "{} cannot import the anthropic SDK ({}): {HOW_TO_INSTALL}",
                python.display(),
                String::from_utf8_lossy(&probe.stderr).trim()
            ));
        }
        println!(
            "python: {} with anthropic {}",
            python.display(),
            String::from_utf8_lossy(&probe.stdout).trim()
        );
        Ok(python)
    });
    match checked {
        Ok(python) => python.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// How a scenario authenticates: the SDK's `api_key=` (sent as `x-api-key`) or
/// `auth_token=` (`Authorization: Bearer`, what Claude Code's `ANTHROPIC_AUTH_TOKEN` sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    ApiKey,
    AuthToken,
}

/// One run of a scenario script against a proxy.
#[derive(Clone, Debug)]
pub struct Scenario {
    script: String,
    env: Vec<(String, String)>,
}

impl Scenario {
    /// `script` is a file name in `tests/python/`; `base_url` the proxy's root (no `/v1`).
    pub fn new(script: &str, base_url: &str, key: &str, auth: Auth, model: &str) -> Scenario {
        let auth = match auth {
            Auth::ApiKey => "api_key",
            Auth::AuthToken => "auth_token",
        };
        Scenario {
            script: script.to_owned(),
            env: vec![
                ("SWITCHYARD_BASE_URL".to_owned(), base_url.to_owned()),
                ("SWITCHYARD_KEY".to_owned(), key.to_owned()),
                ("SWITCHYARD_AUTH".to_owned(), auth.to_owned()),
                ("SWITCHYARD_MODEL".to_owned(), model.to_owned()),
            ],
        }
    }

    /// Adds a setting the script reads (`SCENARIO_*`, `SWITCHYARD_MODEL_TURN2`).
    pub fn env(mut self, name: &str, value: &str) -> Scenario {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs the script and returns its JSON result line. Panics with its stderr when it
    /// exits non-zero, prints no JSON, or runs past [`SCRIPT_TIMEOUT`].
    pub async fn run(&self) -> Value {
        let python = interpreter();
        let mut command = Command::new(&python);
        command
            .arg(scripts_dir().join(&self.script))
            .current_dir(scripts_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The SDK reads these when its arguments leave them unset: the test decides alone.
        for var in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "ANTHROPIC_BASE_URL",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command.env("PYTHONDONTWRITEBYTECODE", "1");
        command.env("NO_PROXY", "127.0.0.1,localhost");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} {}: {e}", python.display(), self.script));
        let output = match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("running {}: {e}", self.script),
            Err(_) => panic!(
                "{} did not finish within {SCRIPT_TIMEOUT:?} (it was killed)",
                self.script
            ),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            panic!(
                "{} failed ({}):\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}",
                self.script, output.status
            );
        }
        let line = stdout.lines().rev().find(|line| !line.trim().is_empty());
        match line.map(serde_json::from_str::<Value>) {
            Some(Ok(value)) => {
                println!("{} → {value}", self.script);
                value
            }
            _ => panic!(
                "{} printed no JSON result:\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                self.script
            ),
        }
    }
}
