//! `loadtest demo`: a credential-free tour. Starts two simulated OpenAI-compatible providers
//! and the real proxy on a demo policy, sends traffic, and prints what was served where.
//!
//! Run: `cargo run -p loadtest -- demo`

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use loadtest::proxy_process::{key_hash, switchyard_binary, ProxyProcess};
use loadtest::{http_client, OpenAiSim, SimConfig};

const DEMO_KEY: &str = "sk-demo";
const REQUESTS: usize = 24;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Requests per minute the first ("primary") provider accepts before it answers 429.
    #[arg(long, default_value_t = 8)]
    primary_rpm: u64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let binary = ensure_switchyard_built()?;
    let primary = OpenAiSim::start(SimConfig {
        name: "primary".to_owned(),
        ttft: Duration::from_millis(40),
        inter_token: Duration::from_millis(5),
        rpm_limit: Some(args.primary_rpm),
        api_key: Some("primary-upstream-key".to_owned()),
        ..SimConfig::default()
    })
    .await?;
    let secondary = OpenAiSim::start(SimConfig {
        name: "secondary".to_owned(),
        ttft: Duration::from_millis(60),
        inter_token: Duration::from_millis(5),
        api_key: Some("secondary-upstream-key".to_owned()),
        ..SimConfig::default()
    })
    .await?;
    let proxy = ProxyProcess::start(&binary, &demo_policy(&primary, &secondary)).await?;
    println!(
        "proxy:      {}  (admin {})",
        proxy.base_url(),
        proxy.admin_url()
    );
    println!(
        "primary:    {}  (accepts {} requests/minute, then 429; its x-ratelimit-remaining headers let the router move traffic before that)",
        primary.base_url(),
        args.primary_rpm
    );
    println!("secondary:  {}", secondary.base_url());
    println!(
        "\nSending {REQUESTS} chat requests for model `gpt-demo` (every third one streamed):\n"
    );
    println!("  #  kind    status  provider    attempts  cost (USD)");

    let client = http_client()?;
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = 0;
    for n in 1..=REQUESTS {
        let stream = n % 3 == 0;
        let body = json!({
            "model": "gpt-demo",
            "stream": stream,
            "messages": [{"role": "user", "content": format!("Demo request {n}")}],
        });
        let response = client
            .post(format!("{}/chat/completions", proxy.base_url()))
            .bearer_auth(DEMO_KEY)
            .json(&body)
            .send()
            .await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let (status, provider, attempts, cost) = (
            response.status().as_u16(),
            header("x-switchyard-provider"),
            header("x-switchyard-attempts"),
            header("x-switchyard-cost-usd"),
        );
        let text = response.text().await?;
        let complete = if stream {
            text.contains("data: [DONE]")
        } else {
            status == 200
        };
        if complete {
            *served.entry(provider.clone()).or_default() += 1;
        } else {
            errors += 1;
        }
        let kind = if stream { "stream" } else { "chat" };
        println!("{n:>3}  {kind:<6}  {status:<6}  {provider:<10}  {attempts:<8}  {cost}");
    }

    println!("\nServed per provider: {served:?}; client-visible errors: {errors}");
    println!("(as primary's x-ratelimit-remaining fell, the router ranked it below secondary: traffic moved before a 429)");
    println!(
        "Upstream requests seen: primary {} (of which 429: {}), secondary {}",
        primary.stats().requests,
        primary.stats().requests - primary.stats().served_ok,
        secondary.stats().requests
    );
    let routes: Value = client
        .get(format!("{}/admin/routes", proxy.admin_url()))
        .send()
        .await?
        .json()
        .await?;
    println!("\nGET /admin/routes (gpt-demo):");
    for target in routes["models"][0]["targets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "  {:<22} rank {:<4} skipped: {}",
            target["id"].as_str().unwrap_or("?"),
            target["rank"].to_string(),
            target["skipped"].as_str().unwrap_or("no")
        );
    }
    let metrics = client
        .get(format!("{}/metrics", proxy.admin_url()))
        .send()
        .await?
        .text()
        .await?;
    println!("\nFrom GET /metrics:");
    for line in metrics.lines().filter(|l| {
        l.starts_with("switchyard_failovers_total")
            || l.starts_with("switchyard_upstream_attempts_total")
            || l.starts_with("switchyard_spend_usd_total")
    }) {
        println!("  {line}");
    }
    Ok(())
}

fn demo_policy(primary: &OpenAiSim, secondary: &OpenAiSim) -> String {
    let key_hash = key_hash(DEMO_KEY);
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 10s
  first_byte_timeout: 2s
providers:
  primary: {{ kind: openai, base_url: "{primary}", api_key: primary-upstream-key }}
  secondary: {{ kind: openai, base_url: "{secondary}", api_key: secondary-upstream-key }}
models:
  gpt-demo:
    targets:
      - {{ provider: primary, model: demo-model, price: {{ input: 1.25, output: 10.0 }} }}
      - {{ provider: secondary, model: demo-model, price: {{ input: 2.5, output: 10.0 }} }}
teams:
  demo: {{ keys: ["{key_hash}"] }}
"#,
        primary = primary.base_url(),
        secondary = secondary.base_url(),
    )
}

/// The demo runs the real binary; build it when it is not there yet.
pub(crate) fn ensure_switchyard_built() -> anyhow::Result<std::path::PathBuf> {
    let binary = switchyard_binary()?;
    if !binary.exists() {
        println!("building the switchyard binary first…");
        let release = binary.parent().is_some_and(|d| d.ends_with("release"));
        let mut cargo = std::process::Command::new(
            std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()),
        );
        cargo.args(["build", "-p", "switchyard", "--bin", "switchyard"]);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().context("running cargo build")?;
        anyhow::ensure!(status.success(), "cargo build -p switchyard failed");
    }
    Ok(binary)
}
