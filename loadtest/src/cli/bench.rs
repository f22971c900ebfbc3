//! `loadtest bench`: the overhead benchmark (direct vs nginx vs switchyard), printed as a
//! Markdown table and optionally written as JSON.
//!
//! Run: `cargo build --release -p switchyard && cargo run --release -p loadtest -- bench`

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use clap::Args;

use loadtest::bench::{self, Settings};
use loadtest::duration::parse_duration;
use loadtest::proxy_process::switchyard_binary;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Closed-loop clients (concurrent connections) per path.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured requests per path and mode.
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Measure for this long per path and mode instead of a request count, e.g. 20s.
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    duration: Option<Duration>,
    /// Unrecorded requests per path and mode before measuring.
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// The simulated upstream's delay before the first byte, e.g. 20ms.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    ttft: Duration,
    /// Content tokens (stream chunks) per answer.
    #[arg(long, default_value_t = 16)]
    tokens: usize,
    /// The simulated upstream's delay between streamed chunks, e.g. 5ms.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    inter_token: Duration,
    /// Per-request timeout; slower requests count as errors.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl BenchArgs {
    fn settings(&self, switchyard: PathBuf) -> anyhow::Result<Settings> {
        ensure!(self.concurrency > 0, "--concurrency must be at least 1");
        ensure!(
            self.duration.is_some() || self.requests > 0,
            "--requests must be at least 1"
        );
        Ok(Settings {
            concurrency: self.concurrency,
            requests: self.requests,
            duration: self.duration,
            warmup: self.warmup,
            ttft: self.ttft,
            tokens: self.tokens,
            inter_token: self.inter_token,
            timeout: self.timeout,
            switchyard,
        })
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let binary = switchyard_binary()?;
    if !binary.exists() {
        bail!(
            "no switchyard binary at {}: build it first with `cargo build --release -p switchyard` \
             (or point SWITCHYARD_BIN at one)",
            binary.display()
        );
    }
    if !binary.parent().is_some_and(|dir| dir.ends_with("release")) {
        println!(
            "warning: {} is not a release build; figures will not mean much \
             (use `cargo run --release -p loadtest -- bench`)",
            binary.display()
        );
    }
    let settings = args.settings(binary)?;
    let report = bench::run(settings).await?;
    println!("\n{}", report.markdown());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn defaults_match_the_documented_run() -> anyhow::Result<()> {
        let args = parse(&[])?;
        let settings = args.settings(PathBuf::from("switchyard"))?;
        assert_eq!(settings.concurrency, 32);
        assert_eq!(settings.requests, 20_000);
        assert_eq!(settings.duration, None);
        assert_eq!(settings.warmup, 1_000);
        assert_eq!(settings.ttft, Duration::ZERO);
        assert_eq!(settings.tokens, 16);
        assert_eq!(settings.inter_token, Duration::ZERO);
        assert_eq!(settings.timeout, Duration::from_secs(30));
        assert_eq!(args.json, None);
        Ok(())
    }

    #[test]
    fn durations_and_options_parse() -> anyhow::Result<()> {
        let args = parse(&[
            "--duration",
            "10s",
            "--ttft",
            "20ms",
            "--inter-token",
            "1ms",
            "--concurrency",
            "8",
            "--json",
            "out.json",
        ])?;
        assert_eq!(args.duration, Some(Duration::from_secs(10)));
        assert_eq!(args.ttft, Duration::from_millis(20));
        assert_eq!(args.inter_token, Duration::from_millis(1));
        assert_eq!(args.concurrency, 8);
        assert_eq!(args.json, Some(PathBuf::from("out.json")));
        Ok(())
    }

    #[test]
    fn refuses_nonsense() -> anyhow::Result<()> {
        assert!(parse(&["--ttft", "20"]).is_err(), "a duration needs a unit");
        assert!(parse(&["--requests", "5", "--duration", "1s"]).is_err());
        let zero = parse(&["--concurrency", "0"])?;
        assert!(zero.settings(PathBuf::new()).is_err());
        Ok(())
    }
}
