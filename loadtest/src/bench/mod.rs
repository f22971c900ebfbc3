//! The overhead benchmark behind `loadtest bench` (docs/benchmarks.md): one simulated
//! upstream, reached three ways — directly, through nginx as a plain reverse proxy, and
//! through the real switchyard binary — each driven by the same closed-loop load, in one run
//! on one machine.
//!
//! A run flows: `upstreams` (sim and switchyard as child processes) and `nginx` start →
//! for each mode (chat, stream) and each path, `load` sends warm-up requests and then the
//! measured ones → `report` turns the histograms into a Markdown table and optional JSON.
//!
//! Run: `cargo build --release -p switchyard && cargo run --release -p loadtest -- bench`

pub mod load;
pub mod machine;
pub mod nginx;
pub mod report;
pub mod upstreams;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use serde::Serialize;

use load::{LoadSpec, PhaseResult, Stop};
use nginx::Nginx;
use report::{Report, Row};
use upstreams::{SimProcess, SwitchyardProcess};

/// The model name clients send; the proxy maps it to the sim's `sim-model`.
pub const BENCH_MODEL: &str = "bench-model";
/// The client key for the benchmark team (the sim ignores it).
pub const BENCH_KEY: &str = "sk-bench";
/// A measured phase in `--requests` mode still stops after this long (bounded in time).
pub const PHASE_TIME_LIMIT: Duration = Duration::from_secs(300);

/// Everything that shapes a run; printed with the figures so they can be reproduced.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Closed-loop clients: each sends its next request as soon as the last one finished.
    pub concurrency: usize,
    /// Measured requests per path and mode (ignored when `duration` is set).
    pub requests: u64,
    /// Measure for this long per path and mode instead of a request count.
    #[serde(with = "millis_opt")]
    pub duration: Option<Duration>,
    /// Unrecorded requests per path and mode before measuring (connections opened, caches warm).
    pub warmup: u64,
    /// The sim's delay before the first byte.
    #[serde(with = "millis")]
    pub ttft: Duration,
    /// Content tokens (stream chunks) per answer.
    pub tokens: usize,
    /// The sim's delay between streamed chunks.
    #[serde(with = "millis")]
    pub inter_token: Duration,
    /// Per-request timeout; a request over it counts as an error.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// The switchyard binary that was measured.
    pub switchyard: PathBuf,
}

/// Where the load is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Direct,
    Nginx,
    Switchyard,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Nginx => "nginx",
            Target::Switchyard => "switchyard",
        }
    }
}

/// Non-streaming chat completions, or streamed ones (SSE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Chat,
    Stream,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Stream => "stream",
        }
    }

    /// The request body, the same bytes on every path. Streams ask for usage so that the
    /// sim sends the same frames whether or not the proxy (which always asks) is in between.
    pub fn body(self) -> Bytes {
        let stream = match self {
            Mode::Chat => "",
            Mode::Stream => r#","stream":true,"stream_options":{"include_usage":true}"#,
        };
        Bytes::from(format!(
            r#"{{"model":"{BENCH_MODEL}","messages":[{{"role":"user","content":"Benchmark request: answer briefly."}}]{stream}}}"#
        ))
    }
}

/// Runs the whole benchmark and returns its report. `notes` collects what the reader
/// should know (a skipped nginx, a debug build, errors seen).
pub async fn run(settings: Settings) -> anyhow::Result<Report> {
    let mut notes = Vec::new();
    let sim = SimProcess::start(&settings).await?;
    println!("sim:        {}", sim.base_url());
    let switchyard = SwitchyardProcess::start(&settings.switchyard, &sim).await?;
    println!("switchyard: {}", switchyard.base_url());
    let nginx_version = nginx::installed_version();
    let nginx = match nginx_version {
        Some(_) => Some(Nginx::start(sim.port()).await?),
        None => {
            println!("nginx not installed (apt-get install nginx) — skipped");
            notes.push(
                "nginx not installed (apt-get install nginx): its rows are missing".to_owned(),
            );
            None
        }
    };
    if let Some(nginx) = &nginx {
        println!("nginx:      {}", nginx.base_url());
    }

    let mut targets = vec![(Target::Direct, sim.base_url())];
    if let Some(nginx) = &nginx {
        targets.push((Target::Nginx, nginx.base_url()));
    }
    targets.push((Target::Switchyard, switchyard.base_url()));

    let client = load::client(&settings)?;
    let auth = HeaderValue::from_str(&format!("Bearer {BENCH_KEY}"))
        .context("building the authorization header")?;
    let mut rows = Vec::new();
    for mode in [Mode::Chat, Mode::Stream] {
        for (target, base_url) in &targets {
            let spec = LoadSpec {
                url: format!("{base_url}/chat/completions")
                    .parse()
                    .context("parsing the chat completions URL")?,
                body: mode.body(),
                auth: auth.clone(),
                mode,
                concurrency: settings.concurrency,
                timeout: settings.timeout,
            };
            print!("{:<10} {:<6} warming up… ", target.name(), mode.name());
            flush_stdout();
            let warm = load::run(&client, &spec, Stop::Requests(settings.warmup)).await?;
            print!("measuring… ");
            flush_stdout();
            let stop = match settings.duration {
                Some(duration) => Stop::Duration(duration),
                None => Stop::Requests(settings.requests),
            };
            let phase = load::run(&client, &spec, stop).await?;
            println!(
                "{} ok, {} errors in {:.1}s",
                phase.ok,
                phase.errors(),
                phase.elapsed.as_secs_f64()
            );
            note_errors(&mut notes, *target, mode, "warm-up", &warm);
            note_errors(&mut notes, *target, mode, "measured", &phase);
            if phase.hit_time_limit {
                notes.push(format!(
                    "{} {}: stopped at the {}s phase time limit before --requests were done",
                    target.name(),
                    mode.name(),
                    PHASE_TIME_LIMIT.as_secs()
                ));
            }
            rows.extend(Row::from_phase(*target, mode, &phase));
        }
    }
    drop(nginx);
    drop(switchyard);
    drop(sim);
    Ok(Report::new(
        settings,
        machine::Machine::detect(),
        nginx_version,
        rows,
        notes,
    ))
}

/// Progress lines are printed in pieces; show each piece as it happens.
fn flush_stdout() {
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

fn note_errors(
    notes: &mut Vec<String>,
    target: Target,
    mode: Mode,
    what: &str,
    phase: &PhaseResult,
) {
    if phase.errors() == 0 {
        return;
    }
    notes.push(format!(
        "{} {} ({what}): {} errors (status {}, transport {}, incomplete {}); first: {}",
        target.name(),
        mode.name(),
        phase.errors(),
        phase.status_errors,
        phase.transport_errors,
        phase.incomplete,
        phase.first_error.as_deref().unwrap_or("-"),
    ));
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64() * 1000.0)
    }
}

mod millis_opt {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_f64(value.as_secs_f64() * 1000.0),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_json_with_the_bench_model() -> anyhow::Result<()> {
        let chat: serde_json::Value = serde_json::from_slice(&Mode::Chat.body())?;
        assert_eq!(chat["model"], BENCH_MODEL);
        assert!(chat.get("stream").is_none());
        let stream: serde_json::Value = serde_json::from_slice(&Mode::Stream.body())?;
        assert_eq!(stream["stream"], true);
        assert_eq!(stream["stream_options"]["include_usage"], true);
        Ok(())
    }
}
