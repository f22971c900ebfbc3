//! The overhead benchmark behind `loadtest bench` (docs/benchmarks.md): one simulated
//! upstream, reached three ways — directly, through nginx as a plain reverse proxy, and
//! through the real switchyard binary — each driven by the same closed-loop load, in one run
//! on one machine.
//!
//! A run flows: `pinning` (optional: the proxy under test on its own CPUs) → `upstreams`
//! (sim and switchyard as child processes) and `nginx` start → for each mode (chat, stream),
//! each client count and each path, `load` sends warm-up requests and then the measured
//! ones while `procstat` reads the proxy's CPU time around them → `report` turns the
//! histograms into Markdown tables and optional JSON. `soak` and `idle` are the two other
//! runs: hours-long behaviour in minutes, and thousands of open streams.
//!
//! Run: `cargo build --release --workspace && target/release/loadtest bench --proxy-cpus 1`

pub mod idle;
pub mod load;
pub mod machine;
pub mod metrics_text;
pub mod nginx;
pub mod pinning;
pub mod procstat;
pub mod report;
pub mod soak;
pub mod upstreams;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use serde::Serialize;

use crate::proxy_process::Launch;
use load::{LoadSpec, PhaseResult, Stop};
use nginx::Nginx;
use pinning::Layout;
use report::{ProxyMemory, Report, Row};
use upstreams::{SimProcess, SimSpec, SwitchyardProcess};

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
    /// Every mode and path is measured at each of these counts (e.g. 32 and 1).
    pub concurrency: Vec<usize>,
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
    /// The `loadtest` executable that runs the simulators (`loadtest sim openai`).
    pub loadtest: PathBuf,
    /// Pin the proxy under test to this many CPUs of its own, the rest to the others.
    pub proxy_cpus: Option<usize>,
}

impl Settings {
    /// The simulator the measured paths reach.
    pub fn sim_spec(&self, name: &str) -> SimSpec {
        SimSpec {
            name: name.to_owned(),
            ttft: self.ttft,
            inter_token: self.inter_token,
            tokens: self.tokens,
        }
    }

    /// The pinned layout, if `proxy_cpus` asks for one; this process then moves onto the
    /// rest's CPUs at once. The layout is worked out once per process (afterwards this
    /// process may use only the rest's CPUs) and kept for later runs.
    pub fn pin(&self) -> anyhow::Result<Option<Layout>> {
        static LAYOUT: std::sync::Mutex<Option<Layout>> = std::sync::Mutex::new(None);
        let Some(proxy_cpus) = self.proxy_cpus else {
            return Ok(None);
        };
        let mut kept = LAYOUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let layout = match kept.as_ref() {
            Some(layout) if layout.proxy.len() == proxy_cpus => layout.clone(),
            Some(layout) => anyhow::bail!(
                "this process is already pinned for {} proxy CPU(s)",
                layout.proxy.len()
            ),
            None => Layout::split(proxy_cpus)?,
        };
        pinning::pin_this_process(&layout.rest)?;
        *kept = Some(layout.clone());
        println!("layout:     {}", layout.describe());
        Ok(Some(layout))
    }
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
    let layout = settings.pin()?;
    let rest_cpus = layout.as_ref().map(|layout| layout.rest.as_slice());
    let proxy_cpus = layout.as_ref().map(|layout| layout.proxy.as_slice());
    let sim = SimProcess::start(
        &settings.loadtest,
        &settings.sim_spec("bench-sim"),
        rest_cpus,
    )
    .await?;
    println!("sim:        {}", sim.base_url());
    let launch = Launch {
        cpus: proxy_cpus.map(<[usize]>::to_vec),
        ..Launch::default()
    };
    let switchyard = SwitchyardProcess::start(
        &settings.switchyard,
        &upstreams::policy(&sim.base_url()),
        &launch,
    )
    .await?;
    println!("switchyard: {}", switchyard.base_url());
    let nginx_version = nginx::installed_version();
    let nginx = match nginx_version {
        Some(_) => Some(Nginx::start(sim.port(), proxy_cpus).await?),
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

    // Each path with the processes whose CPU time is its cost (none for the direct call).
    let mut targets: Vec<(Target, String, Vec<u32>)> =
        vec![(Target::Direct, sim.base_url(), Vec::new())];
    if let Some(nginx) = &nginx {
        targets.push((Target::Nginx, nginx.base_url(), nginx.pids()));
    }
    targets.push((
        Target::Switchyard,
        switchyard.base_url(),
        vec![switchyard.pid()],
    ));

    let most_clients = settings.concurrency.iter().copied().max().unwrap_or(1);
    let client = load::client(most_clients)?;
    let auth = HeaderValue::from_str(&format!("Bearer {BENCH_KEY}"))
        .context("building the authorization header")?;
    let mut rows = Vec::new();
    for mode in [Mode::Chat, Mode::Stream] {
        for &concurrency in &settings.concurrency {
            for (target, base_url, pids) in &targets {
                let spec = LoadSpec {
                    url: format!("{base_url}/chat/completions")
                        .parse()
                        .context("parsing the chat completions URL")?,
                    body: mode.body(),
                    auth: auth.clone(),
                    mode,
                    concurrency,
                    timeout: settings.timeout,
                    pace: None,
                };
                print!(
                    "{:<10} {:<6} ×{concurrency:<3} warming up… ",
                    target.name(),
                    mode.name()
                );
                flush_stdout();
                let warm = load::run(&client, &spec, Stop::Requests(settings.warmup)).await?;
                print!("measuring… ");
                flush_stdout();
                let stop = match settings.duration {
                    Some(duration) => Stop::Duration(duration),
                    None => Stop::Requests(settings.requests),
                };
                // Sampled exactly around the measured phase, not the warm-up.
                let cpu_before = procstat::cpu_time_of(pids)?;
                let phase = load::run(&client, &spec, stop).await?;
                let cpu = (!pids.is_empty())
                    .then(|| procstat::cpu_time_of(pids))
                    .transpose()?
                    .map(|after| after.saturating_sub(cpu_before));
                println!(
                    "{} ok, {} errors in {:.1}s{}",
                    phase.ok,
                    phase.errors(),
                    phase.elapsed.as_secs_f64(),
                    cpu.map(|cpu| format!(", proxy CPU {:.2}s", cpu.as_secs_f64()))
                        .unwrap_or_default()
                );
                let what = format!("×{concurrency}");
                note_errors(&mut notes, *target, mode, &what, "warm-up", &warm);
                note_errors(&mut notes, *target, mode, &what, "measured", &phase);
                if phase.hit_time_limit {
                    notes.push(format!(
                        "{} {} {what}: stopped at the {}s phase time limit before --requests \
                         were done",
                        target.name(),
                        mode.name(),
                        PHASE_TIME_LIMIT.as_secs()
                    ));
                }
                rows.extend(Row::from_phase(*target, mode, concurrency, &phase, cpu));
            }
        }
    }
    let mut memory = Vec::new();
    for (target, _, pids) in &targets {
        if !pids.is_empty() {
            memory.push(ProxyMemory::new(*target, procstat::memory_of(pids)?));
        }
    }
    drop(nginx);
    drop(switchyard);
    drop(sim);
    Ok(Report::new(
        settings,
        machine::Machine::detect(),
        nginx_version,
        layout,
        rows,
        memory,
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
    clients: &str,
    what: &str,
    phase: &PhaseResult,
) {
    if phase.errors() == 0 {
        return;
    }
    notes.push(format!(
        "{} {} {clients} ({what}): {} errors (status {}, transport {}, incomplete {}); first: {}",
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
