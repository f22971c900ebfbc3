//! The shipped dashboard and alert rules, proven against a real Prometheus: `promtool` checks
//! the example scrape config and the rules, then a Prometheus started from that config scrapes
//! a proxy driven by the simulators (failovers, a budget refusal, streams, a stream cut
//! mid-way, a reload, a hedge) and every panel's and annotation's query of
//! `dashboards/switchyard-overview.json` (variables substituted as Grafana does for "All")
//! must be valid PromQL and return data (docs/operations.md#dashboards-and-alerts).
//!
//! Needs Debian's `prometheus` package (`prometheus` and `promtool` on the PATH): `.ci/run`
//! installs it. Without it the test is skipped on a workstation and fails in CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use loadtest::{Fault, OpenAiSim, SimConfig};
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_e2e::{
    get, key_hash, post, post_json, post_stream, Proxy, ALPHA_KEY, UPSTREAM_KEY_A, UPSTREAM_KEY_B,
};

const BETA_KEY: &str = "sk-beta-dashboards-1f3a";

/// Grafana's substitutions for the dashboard's variables with "All" selected (`allValue`
/// `.*`), and its interval macros at a 1 s scrape interval.
const SUBSTITUTIONS: &[(&str, &str)] = &[
    ("$__rate_interval", "1m"),
    ("$__interval", "5s"),
    ("$__range", "10m"),
    ("${DS_PROMETHEUS}", "prometheus"),
    ("$provider", ".*"),
    ("$model", ".*"),
    ("$team", ".*"),
    ("$api", ".*"),
];

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// `prometheus`/`promtool` from the PATH, or `None` (skip) outside CI.
fn prometheus_installed() -> bool {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return true;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    if in_ci {
        panic!("the dashboard check needs Debian's `prometheus` package (promtool, prometheus): .ci/run installs it");
    }
    println!("SKIPPED the dashboard check: promtool is not installed (apt-get install prometheus)");
    false
}

fn promtool(args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dashboards_dir())
        .output()
        .expect("running promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("promtool {}:\n{text}", args.join(" "));
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
}

/// A Prometheus process, killed on drop, with its data in a temp dir.
struct Prometheus {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    /// Starts Prometheus on the shipped example config, changed only where a test must: the
    /// scrape target (the proxy's admin listener), a 1 s scrape interval, and the rules path.
    fn start(admin_addr: &str) -> Prometheus {
        let dir = switchyard_e2e::scratch_dir("switchyard-prometheus");
        let shipped = std::fs::read_to_string(dashboards_dir().join("prometheus-scrape.yaml"))
            .expect("reading dashboards/prometheus-scrape.yaml");
        let rules = dashboards_dir().join("switchyard-alerts.yaml");
        let config = shipped
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
            .replace("127.0.0.1:9090", admin_addr)
            .replace(
                "- switchyard-alerts.yaml",
                &format!("- {}", rules.canonicalize().unwrap().display()),
            );
        assert!(
            config.contains(admin_addr),
            "the scrape target was replaced"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The instant query's answer, or the error Prometheus gave.
    async fn query(&self, expr: &str) -> Result<QueryData, String> {
        let reply = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: QueryReply = reply.json().await.map_err(|e| e.to_string())?;
        match (body.status.as_str(), body.data) {
            ("success", Some(data)) => Ok(data),
            _ => Err(format!(
                "{}: {}",
                body.error_type.unwrap_or_default(),
                body.error.unwrap_or_default()
            )),
        }
    }

    /// Waits (bounded) until `expr` returns data.
    async fn wait_for(&self, expr: &str) {
        for _ in 0..300 {
            if self.query(expr).await.is_ok_and(|d| d.has_data()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{expr} never returned data; prometheus log:\n{}",
            self.log()
        );
    }
}

#[derive(Deserialize)]
struct QueryReply {
    status: String,
    data: Option<QueryData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

impl QueryData {
    fn has_data(&self) -> bool {
        match self.result_type.as_str() {
            "scalar" | "string" => true,
            _ => self.result.as_array().is_some_and(|r| !r.is_empty()),
        }
    }
}

/// Every query of the dashboard: (where it is, the expression with variables substituted).
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dashboards_dir().join("switchyard-overview.json"))
        .expect("reading the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let substitute = |expr: &str| {
        SUBSTITUTIONS
            .iter()
            .fold(expr.to_owned(), |e, (from, to)| e.replace(from, to))
    };
    let mut queries = Vec::new();
    fn walk(panels: &Value, out: &mut Vec<(String, Value)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push((title.clone(), target["expr"].clone()));
            }
            walk(&panel["panels"], out);
        }
    }
    let mut raw = Vec::new();
    walk(&dashboard["panels"], &mut raw);
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if annotation["expr"].is_string() {
            raw.push((
                format!("annotation {}", annotation["name"]),
                annotation["expr"].clone(),
            ));
        }
    }
    for (title, expr) in raw {
        let expr = expr.as_str().unwrap_or_else(|| panic!("{title}: no expr"));
        queries.push((title, substitute(expr)));
    }
    assert!(queries.len() > 30, "the dashboard's queries were found");
    for (title, expr) in &queries {
        assert!(
            !expr.contains('$'),
            "{title}: unsubstituted variable in {expr}"
        );
    }
    // The variables' own queries must name a metric the proxy exports.
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(definition) = variable["definition"].as_str() {
            assert!(
                definition.starts_with("label_values(switchyard_requests_total"),
                "variable {}: {definition}",
                variable["name"]
            );
        }
    }
    queries
}

async fn sim(name: &str, key: &str) -> OpenAiSim {
    slow_sim(name, key, 0).await
}

/// A simulator whose first token takes `ttft_ms`.
async fn slow_sim(name: &str, key: &str, ttft_ms: u64) -> OpenAiSim {
    OpenAiSim::start(SimConfig {
        name: name.to_owned(),
        api_key: Some(key.to_owned()),
        ttft: Duration::from_millis(ttft_ms),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn routes(a: &OpenAiSim, b: &OpenAiSim, c: &OpenAiSim, reload_marker: &str) -> String {
    format!(
        r#"version: 1
# {reload_marker}
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 10s
  first_byte_timeout: 2s
ledger:
  url: "sqlite://ledger.db"
  flush_interval: 100ms
providers:
  sim-a: {{ kind: openai, base_url: "{a}", api_key: {UPSTREAM_KEY_A} }}
  sim-b: {{ kind: openai, base_url: "{b}", api_key: {UPSTREAM_KEY_B} }}
  sim-c: {{ kind: openai, base_url: "{c}", api_key: {UPSTREAM_KEY_A} }}
models:
  hedged:
    hedge_after: 200ms
    targets:
      - {{ provider: sim-c, model: up-c, price: {{ input: 1.0, output: 2.0 }} }}
      - {{ provider: sim-b, model: up-b, price: {{ input: 1.0, output: 2.0 }} }}
  chat:
    hedge_after: 300ms
    resume_streams: true
    targets:
      - {{ provider: sim-a, model: up-a, price: {{ input: 1.0, output: 2.0 }} }}
      - {{ provider: sim-b, model: up-b, price: {{ input: 1.0, output: 2.0 }} }}
teams:
  alpha: {{ keys: ["{alpha}"], models: [chat, hedged], budget: {{ usd: 100, period: daily }} }}
  beta: {{ keys: ["{beta}"], models: [chat], budget: {{ usd: 0.000001, period: daily }} }}
"#,
        a = a.base_url(),
        b = b.base_url(),
        c = c.base_url(),
        alpha = key_hash(ALPHA_KEY),
        beta = key_hash(BETA_KEY),
    )
}

fn chat(stream: bool) -> Value {
    json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// Traffic that makes every panel's series exist: plain answers and streams, a failover, a
/// stream cut mid-way (a stream error or a resume), a hedge, a budget refusal, a reload.
async fn drive(proxy: &Proxy, a: &OpenAiSim, b: &OpenAiSim) {
    let url = proxy.url("/chat/completions");
    for i in 0..6 {
        let reply = post_json(&url, Some(ALPHA_KEY), &chat(false)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let reply = post_stream(&url, Some(ALPHA_KEY), &chat(true)).await;
        assert_eq!(reply.status, 200, "stream {i}");
    }
    println!("a failover: sim-a answers 503 once");
    a.push_faults([Fault::Status(503)]);
    let reply = post_json(&url, Some(ALPHA_KEY), &chat(false)).await;
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-b"));
    println!("a hedge: sim-c takes 3s to its first token, after 200ms sim-b is asked too");
    let mut hedged = chat(true);
    hedged["model"] = json!("hedged");
    let reply = post_stream(&url, Some(ALPHA_KEY), &hedged).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-b"));
    println!("streams cut mid-way on both targets: a resume, then a stream error");
    a.push_faults([Fault::DropMidStream { after_chunks: 3 }]);
    let _ = post_stream(&url, Some(ALPHA_KEY), &chat(true)).await;
    a.push_faults([Fault::DropMidStream { after_chunks: 3 }]);
    b.push_faults([Fault::DropMidStream { after_chunks: 3 }]);
    let _ = post_stream(&url, Some(ALPHA_KEY), &chat(true)).await;
    println!("a budget: team beta's second request is refused");
    let _ = post_json(&url, Some(BETA_KEY), &chat(false)).await;
    let refused = post_json(&url, Some(BETA_KEY), &chat(false)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
}

#[tokio::test]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    if !prometheus_installed() {
        return;
    }
    promtool(&["check", "config", "prometheus-scrape.yaml"]);
    promtool(&["check", "rules", "switchyard-alerts.yaml"]);
    let queries = dashboard_queries();

    let (a, b) = (
        sim("sim-a", UPSTREAM_KEY_A).await,
        sim("sim-b", UPSTREAM_KEY_B).await,
    );
    let c = slow_sim("sim-c", UPSTREAM_KEY_A, 3000).await;
    let proxy = Proxy::start(&routes(&a, &b, &c, "first")).await;
    let admin_addr = proxy.admin_url().trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(&admin_addr);
    prometheus.wait_for("up{job=\"switchyard\"} == 1").await;

    drive(&proxy, &a, &b).await;
    println!("a reload (by endpoint, after a change) between scrapes");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Two reloads a few scrapes apart: the counter appears with the first, so only the second
    // is a change Prometheus can see (the reload annotation uses `changes()`).
    for marker in ["second", "third"] {
        proxy.write_config(&routes(&a, &b, &c, marker));
        let reload = post(&proxy.admin("/admin/reload"), None, "", &[]).await;
        assert_eq!(reload.status, 200, "{}", reload.body);
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    drive(&proxy, &a, &b).await;
    // Counters that first appeared in the second round need two samples for rate().
    prometheus
        .wait_for("count(switchyard_config_reloads_total offset 3s)")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = get(&proxy.admin("/metrics"), None).await.body;

    let mut failures = Vec::new();
    for (title, expr) in &queries {
        match prometheus.query(expr).await {
            Ok(data) if data.has_data() => println!("ok    {title}: {expr}"),
            Ok(_) => failures.push(format!("no data  {title}: {expr}")),
            Err(error) => failures.push(format!("invalid  {title}: {expr}: {error}")),
        }
    }
    // The alert rules' expressions are valid PromQL against the same data (promtool checked
    // their syntax; this checks that Prometheus evaluates them).
    let rules = prometheus.query("ALERTS").await;
    assert!(rules.is_ok(), "{rules:?}", rules = rules.err());
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}\n\nmetrics:\n{metrics}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
    println!("all {} dashboard queries returned data", queries.len());
}
