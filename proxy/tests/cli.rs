//! The `switchyard` binary's `--check`: the default policy passes and is printed; a broken
//! file fails with its `file:line:col:` position; a plain client key is refused unechoed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn check(config: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--config")
        .arg(config)
        .arg("--check")
        .output()
        .expect("running switchyard --check");
    println!("exit: {:?}", output.status.code());
    println!("stdout:\n{}", String::from_utf8_lossy(&output.stdout));
    println!("stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// stdout and stderr together.
fn all_output(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes `yaml` to a temp file unique to this process and test.
fn temp_config(name: &str, yaml: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("switchyard-cli-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, yaml).expect("writing a temp config");
    path
}

/// The names under the top-level `models:` mapping of a routes file.
fn model_names(yaml: &str) -> Vec<String> {
    yaml.lines()
        .skip_while(|line| !line.starts_with("models:"))
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' ') || line.starts_with('#'))
        .filter_map(|line| {
            let name = line.strip_prefix("  ")?.split(':').next()?;
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            plain.then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn check_accepts_the_default_routes_yaml_and_prints_the_policy() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../routes.yaml");
    let output = check(&path);
    assert_eq!(
        output.status.code(),
        Some(0),
        "--check on routes.yaml must pass"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let yaml = std::fs::read_to_string(&path).expect("reading routes.yaml");
    let models = model_names(&yaml);
    assert!(!models.is_empty(), "routes.yaml defines models");
    for model in models {
        assert!(
            stdout.contains(&model),
            "the printed policy names model {model}"
        );
    }
}

const VALID_HEAD: &str = "version: 1
server:
  listen: 127.0.0.1:18080
";

const VALID_TAIL: &str = "providers:
  up: { kind: openai, base_url: \"http://127.0.0.1:9/v1\", api_key: upstream-secret }
models:
  chat: { targets: [ { provider: up, model: m, price: { input: 1.0, output: 2.0 } } ] }
";

#[test]
fn check_reports_the_position_of_an_error() {
    println!("line 4 holds a duration that is not one");
    let yaml = format!("{VALID_HEAD}  request_timeout: soon\n{VALID_TAIL}");
    let path = temp_config("broken", &yaml);
    let output = check(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(1));
    let text = all_output(&output);
    let prefix = format!("{}:4:", path.display());
    let position = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no `{prefix}<col>:` position in:\n{text}"));
    let after = &text[position + prefix.len()..];
    let column: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert!(
        !column.is_empty() && after[column.len()..].starts_with(':'),
        "file:line:col: expected in:\n{text}"
    );
}

#[test]
fn check_refuses_a_plain_client_key_without_echoing_it() {
    let secret = "sk-plain-cli-secret-4242";
    let yaml = format!("{VALID_HEAD}{VALID_TAIL}teams:\n  alpha: {{ keys: [\"{secret}\"] }}\n");
    let path = temp_config("plain-key", &yaml);
    let output = check(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a plain key is a config error"
    );
    let text = all_output(&output);
    assert!(
        !text.contains(secret),
        "the error must not echo the key:\n{text}"
    );
    assert!(
        text.contains("sha256"),
        "the error tells how to hash the key:\n{text}"
    );
}
