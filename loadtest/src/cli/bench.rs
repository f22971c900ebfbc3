//! `loadtest bench`: the overhead benchmark (direct vs nginx vs switchyard), or with
//! `--soak` / `--idle-streams` the long mixed run and the idle-streams run, printed as
//! Markdown and optionally written as JSON.
//!
//! Run: `cargo build --release --workspace && target/release/loadtest bench --pin --concurrency 32,1`

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use clap::Args;

use loadtest::bench::idle::{self, IdleReport};
use loadtest::bench::report::Report;
use loadtest::bench::soak::{self, SoakReport, SoakSettings};
use loadtest::bench::{self, Settings};
use loadtest::duration::parse_duration;
use loadtest::proxy_process::switchyard_binary;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Closed-loop clients (concurrent connections) per path; a list (`32,1`) measures every
    /// mode and path at each count. The soak uses the first.
    #[arg(long, value_delimiter = ',', default_value = "32")]
    concurrency: Vec<usize>,
    /// Pin the proxy under test (switchyard; nginx with one worker per CPU) to this many
    /// CPUs of its own, the load generator and the simulators to the others.
    #[arg(long)]
    proxy_cpus: Option<usize>,
    /// Short for `--proxy-cpus 1`.
    #[arg(long, conflicts_with = "proxy_cpus")]
    pin: bool,
    /// Instead of the overhead run: a mixed run of this length against switchyard (streams,
    /// failovers, reloads) reporting its memory over time, e.g. 10m.
    #[arg(long, value_parser = parse_duration)]
    soak: Option<Duration>,
    /// The soak's rate in requests per second (half of them streams).
    #[arg(long, default_value_t = 400.0)]
    soak_rate: f64,
    /// Instead of the overhead run: open this many streams that then stay quiet, and report
    /// the proxy's memory per open stream (with --soak: after it).
    #[arg(long)]
    idle_streams: Option<usize>,
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
    fn settings(&self, switchyard: PathBuf, loadtest: PathBuf) -> anyhow::Result<Settings> {
        ensure!(
            !self.concurrency.is_empty() && self.concurrency.iter().all(|&n| n > 0),
            "--concurrency must be at least 1"
        );
        ensure!(self.soak_rate > 0.0, "--soak-rate must be positive");
        ensure!(
            self.idle_streams != Some(0),
            "--idle-streams must be at least 1"
        );
        ensure!(
            self.duration.is_some() || self.requests > 0,
            "--requests must be at least 1"
        );
        Ok(Settings {
            concurrency: self.concurrency.clone(),
            requests: self.requests,
            duration: self.duration,
            warmup: self.warmup,
            ttft: self.ttft,
            tokens: self.tokens,
            inter_token: self.inter_token,
            timeout: self.timeout,
            switchyard,
            loadtest,
            proxy_cpus: if self.pin { Some(1) } else { self.proxy_cpus },
        })
    }
}

/// Everything one invocation measured, as written by `--json`: the overhead run's fields at
/// the top level (as before the soak and idle runs existed), the others under their names.
#[derive(serde::Serialize)]
struct Output {
    #[serde(flatten)]
    overhead: Option<Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    soak: Option<SoakReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_streams: Option<IdleReport>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let binary = switchyard_binary()?;
    if !binary.exists() {
        bail!(
            "no switchyard binary at {}: build it first with `cargo build --release --workspace` \
             (or point SWITCHYARD_BIN at one)",
            binary.display()
        );
    }
    if !binary.parent().is_some_and(|dir| dir.ends_with("release")) {
        println!(
            "warning: {} is not a release build; figures will not mean much \
             (build with `cargo build --release --workspace` and run target/release/loadtest)",
            binary.display()
        );
    }
    let loadtest = std::env::current_exe().context("locating the loadtest executable")?;
    let settings = args.settings(binary, loadtest)?;
    let mut output = Output {
        overhead: None,
        soak: None,
        idle_streams: None,
    };
    let mut errors = 0;
    if let Some(duration) = args.soak {
        let concurrency = settings.concurrency.first().copied().unwrap_or(32);
        let soak_settings = SoakSettings::new(duration, args.soak_rate, concurrency);
        let report = soak::run(&settings, soak_settings).await?;
        println!("\n{}", report.markdown());
        errors += report.errors();
        output.soak = Some(report);
    }
    if let Some(streams) = args.idle_streams {
        let report = idle::run(&settings, streams).await?;
        println!("\n{}", report.markdown());
        errors += report.errors() as u64;
        output.idle_streams = Some(report);
    }
    if output.soak.is_none() && output.idle_streams.is_none() {
        let report = bench::run(settings).await?;
        println!("\n{}", report.markdown());
        output.overhead = Some(report);
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&output).context("serialising the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    if errors > 0 {
        bail!("{errors} error(s): see the report above");
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
        let settings = args.settings(PathBuf::from("switchyard"), PathBuf::from("loadtest"))?;
        assert_eq!(settings.concurrency, vec![32]);
        assert_eq!(settings.proxy_cpus, None);
        assert_eq!(args.soak, None);
        assert_eq!(args.idle_streams, None);
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
        assert_eq!(args.concurrency, vec![8]);
        assert_eq!(args.json, Some(PathBuf::from("out.json")));
        Ok(())
    }

    #[test]
    fn pinning_soak_and_idle_streams_parse() -> anyhow::Result<()> {
        let args = parse(&["--pin", "--concurrency", "32,1"])?;
        let settings = args.settings(PathBuf::new(), PathBuf::new())?;
        assert_eq!(settings.proxy_cpus, Some(1));
        assert_eq!(settings.concurrency, vec![32, 1]);
        let args = parse(&[
            "--proxy-cpus",
            "2",
            "--soak",
            "10m",
            "--idle-streams",
            "10000",
        ])?;
        assert_eq!(
            args.settings(PathBuf::new(), PathBuf::new())?.proxy_cpus,
            Some(2)
        );
        assert_eq!(args.soak, Some(Duration::from_secs(600)));
        assert_eq!(args.idle_streams, Some(10_000));
        assert!(parse(&["--pin", "--proxy-cpus", "1"]).is_err());
        Ok(())
    }

    #[test]
    fn refuses_nonsense() -> anyhow::Result<()> {
        assert!(parse(&["--ttft", "20"]).is_err(), "a duration needs a unit");
        assert!(parse(&["--requests", "5", "--duration", "1s"]).is_err());
        let zero = parse(&["--concurrency", "0"])?;
        assert!(zero.settings(PathBuf::new(), PathBuf::new()).is_err());
        let some_zero = parse(&["--concurrency", "32,0"])?;
        assert!(some_zero.settings(PathBuf::new(), PathBuf::new()).is_err());
        let no_streams = parse(&["--idle-streams", "0"])?;
        assert!(no_streams.settings(PathBuf::new(), PathBuf::new()).is_err());
        Ok(())
    }
}
