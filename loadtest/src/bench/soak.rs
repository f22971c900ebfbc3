//! `loadtest bench --soak 10m`: a long mixed run against Switchyard alone — streams and
//! non-streaming requests at a steady rate, a flaky first target that answers 500, 503 and
//! 429 in bursts (every one a failover to the good second target, invisible to clients), and
//! `routes.yaml` rewritten every few seconds (the proxy reloads it) — while the proxy's
//! resident memory is sampled. Flat memory after the warm-up and zero client errors is the
//! result sought (issue 13; docs/benchmarks.md).

use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::HeaderValue;
use serde::Serialize;

use crate::proxy_process::Launch;

use super::load::{self, LoadSpec, PhaseResult, Stop};
use super::machine::Machine;
use super::pinning::Layout;
use super::procstat;
use super::upstreams::{soak_policy, SimProcess, SwitchyardProcess};
use super::{metrics_text, report::mib, Mode, Settings, BENCH_KEY};

/// How the soak drives the proxy.
#[derive(Clone, Debug, Serialize)]
pub struct SoakSettings {
    #[serde(with = "super::millis")]
    pub duration: Duration,
    /// Requests per second in total, half of them streams.
    pub rate: f64,
    /// Clients in total, half of them streaming.
    pub concurrency: usize,
    /// How often the proxy's resident memory is read.
    #[serde(with = "super::millis")]
    pub sample_every: Duration,
    /// How often `routes.yaml` is rewritten (a price changes, so each one is a real reload).
    #[serde(with = "super::millis")]
    pub reload_every: Duration,
    /// How often a burst of faults is scripted on the flaky target.
    #[serde(with = "super::millis")]
    pub faults_every: Duration,
}

impl SoakSettings {
    pub fn new(duration: Duration, rate: f64, concurrency: usize) -> Self {
        Self {
            duration,
            rate,
            concurrency,
            sample_every: Duration::from_secs(2),
            reload_every: Duration::from_secs(10),
            faults_every: Duration::from_secs(1),
        }
    }

    /// Memory before this point is the warm-up (pools, caches and buffers growing to their
    /// working size): a fifth of the run, at most a minute.
    pub fn warm_up(&self) -> Duration {
        (self.duration / 5).min(Duration::from_secs(60))
    }
}

/// The faults of one burst on the flaky target: each is consumed by one request, which then
/// fails over to the good target. `clear` drops what the last burst left (while the target
/// was cooling down), so faults do not pile up and keep it cooled down for good.
const FAULT_BURST: &str = r#"{"clear":true,"faults":[{"kind":"status","status":500},{"kind":"rate_limit","retry_after_ms":200},{"kind":"status","status":503}]}"#;
const FAULTS_PER_BURST: u64 = 3;

/// One reading of the proxy's resident memory.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RssSample {
    pub at_s: f64,
    pub rss_kib: u64,
}

/// What clients of one kind saw.
#[derive(Clone, Debug, Serialize)]
pub struct ClientSummary {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl ClientSummary {
    fn from_phase(phase: &PhaseResult) -> Self {
        Self {
            ok: phase.ok,
            errors: phase.errors(),
            first_error: phase.first_error.clone(),
            p50_ms: phase.total.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: phase.total.value_at_quantile(0.99) as f64 / 1000.0,
        }
    }
}

/// The soak's result, as printed and as written by `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    pub machine: Machine,
    pub settings: SoakSettings,
    pub layout: Option<Layout>,
    pub samples: Vec<RssSample>,
    pub first_rss_kib: u64,
    /// The first sample at or after the warm-up.
    pub warm_rss_kib: u64,
    pub last_rss_kib: u64,
    /// The largest sample after the warm-up.
    pub max_rss_kib: u64,
    /// `VmHWM` at the end.
    pub peak_rss_kib: u64,
    /// (last − warm) / warm, in %.
    pub drift_pct: f64,
    /// (max − warm) / warm, in %.
    pub max_excursion_pct: f64,
    pub chat: ClientSummary,
    pub stream: ClientSummary,
    pub faults_scripted: u64,
    /// `switchyard_failovers_total` at the end.
    pub failovers: f64,
    pub reloads_ok: f64,
    pub reloads_error: f64,
    /// The proxy's CPU time over the run per successful request.
    pub cpu_us_per_request: f64,
}

impl SoakReport {
    /// Client errors and failed reloads; a soak passes when there are none.
    pub fn errors(&self) -> u64 {
        self.chat.errors + self.stream.errors + self.reloads_error as u64
    }

    pub fn markdown(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "## Soak: {:.0} s against Switchyard\n\n\
             - date: {}; {} cores, {}; {}\n\
             - load: {:.0} req/s (half streams) from {} clients; a burst of {FAULTS_PER_BURST} \
             faults (500, 429, 503) on the first target every {} ms; routes.yaml rewritten every \
             {} s; memory read every {} s; warm-up {} s\n\n",
            s.duration.as_secs_f64(),
            self.machine.date,
            self.machine.cores,
            self.machine.cpu_model,
            self.layout
                .as_ref()
                .map_or_else(|| "unpinned".to_owned(), Layout::describe),
            s.rate,
            s.concurrency,
            s.faults_every.as_millis(),
            s.reload_every.as_secs(),
            s.sample_every.as_secs(),
            s.warm_up().as_secs(),
        );
        out.push_str(
            "| RSS first | after warm-up | last | max after warm-up | VmHWM | drift | max excursion |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:+.1} % | {:+.1} % |\n\n",
            mib(self.first_rss_kib),
            mib(self.warm_rss_kib),
            mib(self.last_rss_kib),
            mib(self.max_rss_kib),
            mib(self.peak_rss_kib),
            self.drift_pct,
            self.max_excursion_pct,
        ));
        for (name, summary) in [("chat", &self.chat), ("stream", &self.stream)] {
            out.push_str(&format!(
                "- {name}: {} ok, {} errors, p50 {:.2} ms, p99 {:.2} ms{}\n",
                summary.ok,
                summary.errors,
                summary.p50_ms,
                summary.p99_ms,
                summary
                    .first_error
                    .as_deref()
                    .map(|error| format!(" (first error: {error})"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "- faults scripted {}, failovers {:.0}, reloads ok {:.0} / failed {:.0}; proxy CPU \
             {:.1} µs per request\n",
            self.faults_scripted,
            self.failovers,
            self.reloads_ok,
            self.reloads_error,
            self.cpu_us_per_request
        ));
        out
    }
}

/// Runs the soak. `settings` gives the binaries, the simulator's answers and the pinning.
pub async fn run(settings: &Settings, soak: SoakSettings) -> anyhow::Result<SoakReport> {
    let layout = settings.pin()?;
    let rest_cpus = layout.as_ref().map(|layout| layout.rest.as_slice());
    let good = SimProcess::start(
        &settings.loadtest,
        &settings.sim_spec("soak-good"),
        rest_cpus,
    )
    .await?;
    let flaky = SimProcess::start(
        &settings.loadtest,
        &settings.sim_spec("soak-flaky"),
        rest_cpus,
    )
    .await?;
    let launch = Launch {
        cpus: layout.as_ref().map(|layout| layout.proxy.clone()),
        ..Launch::default()
    };
    let policy = |price| soak_policy(&flaky.base_url(), &good.base_url(), price);
    let switchyard = SwitchyardProcess::start(&settings.switchyard, &policy(2.0), &launch).await?;
    let pid = switchyard.pid();
    println!(
        "soak:       {:.0} s against {}",
        soak.duration.as_secs_f64(),
        switchyard.base_url()
    );

    let clients = soak.concurrency.max(2);
    let pace = Duration::from_secs_f64(clients as f64 / soak.rate.max(1.0));
    let client = load::client(clients)?;
    let auth = HeaderValue::from_str(&format!("Bearer {BENCH_KEY}"))
        .context("building the authorization header")?;
    let spec = |mode: Mode, concurrency| -> anyhow::Result<LoadSpec> {
        Ok(LoadSpec {
            url: format!("{}/chat/completions", switchyard.base_url())
                .parse()
                .context("parsing the chat completions URL")?,
            body: mode.body(),
            auth: auth.clone(),
            mode,
            concurrency,
            timeout: settings.timeout,
            pace: Some(pace),
        })
    };
    let chat_spec = spec(Mode::Chat, clients / 2)?;
    let stream_spec = spec(Mode::Stream, clients - clients / 2)?;
    let control = crate::http_client()?;
    let cpu_before = procstat::cpu_time(pid)?;

    let started = Instant::now();
    let driver = async {
        let mut samples = vec![RssSample {
            at_s: 0.0,
            rss_kib: procstat::memory(pid)?.rss_kib,
        }];
        let mut faults_scripted = 0;
        let mut reloads = 0u64;
        let (mut next_sample, mut next_reload, mut next_faults) =
            (soak.sample_every, soak.reload_every, Duration::ZERO);
        let tick = Duration::from_millis(100);
        while started.elapsed() < soak.duration {
            let now = started.elapsed();
            if now >= next_faults {
                control
                    .post(flaky.faults_url())
                    .header("content-type", "application/json")
                    .body(FAULT_BURST)
                    .send()
                    .await
                    .context("scripting faults on the flaky sim")?
                    .error_for_status()
                    .context("scripting faults on the flaky sim")?;
                faults_scripted += FAULTS_PER_BURST;
                next_faults += soak.faults_every;
            }
            if now >= next_reload {
                reloads += 1;
                // Alternating prices: every rewrite is a different policy.
                let price = if reloads % 2 == 1 { 2.5 } else { 2.0 };
                switchyard.write_config(&policy(price))?;
                next_reload += soak.reload_every;
            }
            if now >= next_sample {
                samples.push(RssSample {
                    at_s: now.as_secs_f64(),
                    rss_kib: procstat::memory(pid)?.rss_kib,
                });
                next_sample += soak.sample_every;
            }
            tokio::time::sleep(tick).await;
        }
        anyhow::Ok((samples, faults_scripted))
    };
    let stop = Stop::Duration(soak.duration);
    let (chat, stream, driven) = tokio::join!(
        load::run(&client, &chat_spec, stop),
        load::run(&client, &stream_spec, stop),
        driver
    );
    let (chat, stream, (mut samples, faults_scripted)) = (chat?, stream?, driven?);
    let cpu = procstat::cpu_time(pid)?.saturating_sub(cpu_before);
    let end = procstat::memory(pid)?;
    samples.push(RssSample {
        at_s: started.elapsed().as_secs_f64(),
        rss_kib: end.rss_kib,
    });
    let metrics = control
        .get(switchyard.metrics_url())
        .send()
        .await
        .context("reading the proxy's metrics")?
        .text()
        .await
        .context("reading the proxy's metrics")?;
    let served = (chat.ok + stream.ok).max(1);
    let figures = RssFigures::from_samples(&samples, soak.warm_up().as_secs_f64());
    Ok(SoakReport {
        machine: Machine::detect(),
        layout,
        first_rss_kib: figures.first,
        warm_rss_kib: figures.warm,
        last_rss_kib: figures.last,
        max_rss_kib: figures.max,
        peak_rss_kib: end.peak_kib,
        drift_pct: percent(figures.last, figures.warm),
        max_excursion_pct: percent(figures.max, figures.warm),
        samples,
        chat: ClientSummary::from_phase(&chat),
        stream: ClientSummary::from_phase(&stream),
        faults_scripted,
        failovers: metrics_text::sum(&metrics, "switchyard_failovers_total", &[]),
        reloads_ok: metrics_text::sum(
            &metrics,
            "switchyard_config_reloads_total",
            &[r#"result="ok""#],
        ),
        reloads_error: metrics_text::sum(
            &metrics,
            "switchyard_config_reloads_total",
            &[r#"result="error""#],
        ),
        cpu_us_per_request: (cpu.as_secs_f64() * 1e6 / served as f64 * 10.0).round() / 10.0,
        settings: soak,
    })
}

/// The memory figures of a soak, KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RssFigures {
    pub first: u64,
    pub warm: u64,
    pub last: u64,
    pub max: u64,
}

impl RssFigures {
    /// `warm` is the first sample at or after `warm_up_s` (the last one if none is);
    /// `max` the largest from there on.
    pub fn from_samples(samples: &[RssSample], warm_up_s: f64) -> Self {
        let first = samples.first().map_or(0, |sample| sample.rss_kib);
        let last = samples.last().map_or(0, |sample| sample.rss_kib);
        let warm_index = samples
            .iter()
            .position(|sample| sample.at_s >= warm_up_s)
            .unwrap_or(samples.len().saturating_sub(1));
        let after = samples.get(warm_index..).unwrap_or_default();
        Self {
            first,
            warm: after.first().map_or(last, |sample| sample.rss_kib),
            last,
            max: after
                .iter()
                .map(|sample| sample.rss_kib)
                .max()
                .unwrap_or(last),
        }
    }
}

/// (value − base) / base in %, one decimal.
fn percent(value: u64, base: u64) -> f64 {
    if base == 0 {
        return 0.0;
    }
    ((value as f64 - base as f64) / base as f64 * 1000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_s: f64, rss_kib: u64) -> RssSample {
        RssSample { at_s, rss_kib }
    }

    #[test]
    fn memory_figures_start_after_the_warm_up() {
        let samples = [
            sample(0.0, 20_000),
            sample(2.0, 40_000),
            sample(4.0, 50_000),
            sample(6.0, 52_000),
            sample(8.0, 51_000),
        ];
        let figures = RssFigures::from_samples(&samples, 3.0);
        assert_eq!(
            figures,
            RssFigures {
                first: 20_000,
                warm: 50_000,
                last: 51_000,
                max: 52_000
            }
        );
        assert_eq!(percent(figures.last, figures.warm), 2.0);
        assert_eq!(percent(figures.max, figures.warm), 4.0);
        // A run shorter than its warm-up compares the last sample with itself.
        let short = RssFigures::from_samples(&samples[..2], 30.0);
        assert_eq!(short.warm, 40_000);
        assert_eq!(percent(short.last, short.warm), 0.0);
        assert_eq!(percent(5, 0), 0.0);
    }

    #[test]
    fn the_warm_up_is_a_fifth_of_the_run_and_at_most_a_minute() {
        let short = SoakSettings::new(Duration::from_secs(10), 100.0, 4);
        assert_eq!(short.warm_up(), Duration::from_secs(2));
        let long = SoakSettings::new(Duration::from_secs(600), 100.0, 4);
        assert_eq!(long.warm_up(), Duration::from_secs(60));
    }

    #[test]
    fn the_fault_burst_is_what_the_sim_takes() -> anyhow::Result<()> {
        let burst: serde_json::Value = serde_json::from_str(FAULT_BURST)?;
        let faults = burst["faults"].as_array().map_or(0, Vec::len);
        assert_eq!(faults as u64, FAULTS_PER_BURST);
        Ok(())
    }
}
