//! `loadtest bench --idle-streams 10000`: how much memory an open but quiet stream costs the
//! proxy. A simulator sends each stream's first event and then nothing for an hour; the
//! load generator opens N streams through Switchyard, waits for every first byte, reads the
//! proxy's resident memory, then closes them all and reads it again. Bounded in time: the
//! opening has a deadline, and every stream is closed by the run itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Client;
use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use crate::proxy_process::Launch;

use super::machine::Machine;
use super::pinning::Layout;
use super::procstat;
use super::report::mib;
use super::upstreams::{idle_policy, SimProcess, SimSpec, SwitchyardProcess};
use super::{metrics_text, Mode, Settings, BENCH_KEY};

/// Streams being opened at once (each is a new connection to the proxy and from it).
const OPENING_AT_ONCE: usize = 256;
/// The whole opening must be done within this.
const OPEN_DEADLINE: Duration = Duration::from_secs(180);
/// Closing every stream must be done within this.
const CLOSE_DEADLINE: Duration = Duration::from_secs(60);
/// Time for the proxy to settle before memory is read.
const SETTLE: Duration = Duration::from_secs(2);
/// Streams opened and closed before the baseline is read (pools and buffers warm).
const WARM_STREAMS: usize = 64;
/// Descriptors kept for everything but the streams' sockets.
const SPARE_DESCRIPTORS: u64 = 1024;

/// The idle-streams result, as printed and as written by `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct IdleReport {
    pub machine: Machine,
    pub layout: Option<Layout>,
    /// Streams asked for (`--idle-streams`).
    pub requested: usize,
    /// Streams whose first byte arrived: held open at once.
    pub opened: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    /// The proxy's open-file limit, when the run raised it.
    pub proxy_nofile: Option<u64>,
    pub open_seconds: f64,
    pub first_byte_p50_ms: f64,
    pub first_byte_p99_ms: f64,
    pub rss_before_kib: u64,
    pub rss_held_kib: u64,
    pub rss_after_close_kib: u64,
    /// Held again by a second wave of as many streams: about `rss_held_kib` when the memory
    /// the first wave freed is reused rather than leaked.
    pub rss_second_wave_kib: u64,
    /// Streams of the second wave that failed (counted as errors too).
    pub second_wave_failed: usize,
    pub peak_rss_kib: u64,
    /// (held − before) / opened.
    pub bytes_per_stream: f64,
    /// `switchyard_client_connections` while the streams were held.
    pub client_connections_held: f64,
    pub notes: Vec<String>,
}

impl IdleReport {
    pub fn errors(&self) -> usize {
        self.failed
            + self.requested.saturating_sub(self.opened + self.failed)
            + self.second_wave_failed
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Idle streams: {} requested\n\n- date: {}; {} cores, {}; {}; proxy open-file limit {}\n\n",
            self.requested,
            self.machine.date,
            self.machine.cores,
            self.machine.cpu_model,
            self.layout
                .as_ref()
                .map_or_else(|| "unpinned".to_owned(), Layout::describe),
            self.proxy_nofile
                .map_or_else(|| "as inherited".to_owned(), |limit| limit.to_string()),
        );
        out.push_str(
            "| streams held | failed | opened in | first byte p50 | p99 | RSS before | held | after close | second wave held | VmHWM | per idle stream |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        out.push_str(&format!(
            "| {} | {} | {:.1} s | {:.2} ms | {:.2} ms | {} | {} | {} | {} | {} | {:.1} KiB |\n",
            self.opened,
            self.failed,
            self.open_seconds,
            self.first_byte_p50_ms,
            self.first_byte_p99_ms,
            mib(self.rss_before_kib),
            mib(self.rss_held_kib),
            mib(self.rss_after_close_kib),
            mib(self.rss_second_wave_kib),
            mib(self.peak_rss_kib),
            self.bytes_per_stream / 1024.0,
        ));
        if let Some(error) = &self.first_error {
            out.push_str(&format!("\n- first error: {error}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("- {note}\n"));
        }
        out
    }
}

/// Opens `streams` idle streams through Switchyard, reads its memory, closes them.
pub async fn run(settings: &Settings, streams: usize) -> anyhow::Result<IdleReport> {
    let mut notes = Vec::new();
    let layout = settings.pin()?;
    let proxy_nofile = raise_descriptor_limit(streams, &mut notes);
    let rest_cpus = layout.as_ref().map(|layout| layout.rest.as_slice());
    let spec = SimSpec {
        name: "idle-sim".to_owned(),
        ttft: Duration::ZERO,
        // The first event at once, the next one after the run is long over.
        inter_token: Duration::from_secs(3600),
        tokens: 2,
    };
    let sim = SimProcess::start(&settings.loadtest, &spec, rest_cpus).await?;
    let launch = Launch {
        nofile: proxy_nofile,
        cpus: layout.as_ref().map(|layout| layout.proxy.clone()),
        ..Launch::default()
    };
    let connections = streams + WARM_STREAMS + 256;
    let switchyard = SwitchyardProcess::start(
        &settings.switchyard,
        &idle_policy(&sim.base_url(), connections),
        &launch,
    )
    .await?;
    let pid = switchyard.pid();
    println!(
        "idle:       {streams} streams through {}",
        switchyard.base_url()
    );

    let client = Client::builder()
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .build()
        .context("building the idle-stream client")?;
    let url = format!("{}/chat/completions", switchyard.base_url());
    let warm = hold_streams(&client, &url, WARM_STREAMS).await?;
    warm.close().await;
    tokio::time::sleep(SETTLE).await;
    let before = procstat::memory(pid)?;

    let started = Instant::now();
    let held = hold_streams(&client, &url, streams).await?;
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let during = procstat::memory(pid)?;
    let metrics = crate::http_client()?
        .get(switchyard.metrics_url())
        .send()
        .await
        .context("reading the proxy's metrics")?
        .text()
        .await
        .context("reading the proxy's metrics")?;
    let opened = held.opened;
    let (failed, first_error) = (held.failed, held.first_error.clone());
    let (p50, p99) = (
        held.first_byte.value_at_quantile(0.5) as f64 / 1000.0,
        held.first_byte.value_at_quantile(0.99) as f64 / 1000.0,
    );
    if !held.close().await {
        notes.push(format!(
            "not every stream was closed within {}s",
            CLOSE_DEADLINE.as_secs()
        ));
    }
    tokio::time::sleep(SETTLE).await;
    let after = procstat::memory(pid)?;
    // A second wave: memory that stays resident after the close is either reused here or
    // leaked (then this wave adds as much again).
    let again = hold_streams(&client, &url, streams).await?;
    tokio::time::sleep(SETTLE).await;
    let second_wave = procstat::memory(pid)?;
    let second_opened = again.opened;
    if again.failed > 0 {
        notes.push(format!(
            "second wave: {} of {streams} streams failed (first: {})",
            again.failed,
            again.first_error.as_deref().unwrap_or("-")
        ));
    }
    again.close().await;
    let grown = during.rss_kib.saturating_sub(before.rss_kib) as f64 * 1024.0;
    Ok(IdleReport {
        machine: Machine::detect(),
        layout,
        requested: streams,
        opened,
        failed,
        first_error,
        proxy_nofile,
        open_seconds,
        first_byte_p50_ms: p50,
        first_byte_p99_ms: p99,
        rss_before_kib: before.rss_kib,
        rss_held_kib: during.rss_kib,
        rss_after_close_kib: after.rss_kib,
        rss_second_wave_kib: second_wave.rss_kib,
        second_wave_failed: streams.saturating_sub(second_opened),
        peak_rss_kib: second_wave.peak_kib,
        bytes_per_stream: if opened > 0 {
            grown / opened as f64
        } else {
            0.0
        },
        client_connections_held: metrics_text::sum(&metrics, "switchyard_client_connections", &[]),
        notes,
    })
}

/// Raises this process's open-file limit (soft and hard, which needs privilege for the
/// hard one) so that the streams' sockets fit here, in the simulator (a child: it inherits
/// it) and in the proxy (two per stream); returns the limit to give the proxy, `None` when
/// it could not be raised (the proxy then lowers its connection bound, and a note says so).
fn raise_descriptor_limit(streams: usize, notes: &mut Vec<String>) -> Option<u64> {
    let wanted = 2 * streams as u64 + SPARE_DESCRIPTORS;
    let current = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    if current.is_some_and(|(soft, hard)| soft >= wanted && hard >= wanted) {
        // Enough already; the proxy raises its soft limit to the hard one by itself.
        return None;
    }
    match rlimit::setrlimit(rlimit::Resource::NOFILE, wanted, wanted) {
        Ok(()) => Some(wanted),
        Err(error) => {
            let raised = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
            notes.push(format!(
                "the open-file limit could not be raised to {wanted} ({error}); it is {raised}, \
                 so the proxy may hold fewer streams than asked"
            ));
            None
        }
    }
}

/// Streams open and waiting, until [`Held::close`].
struct Held {
    opened: usize,
    failed: usize,
    first_error: Option<String>,
    /// Request sent → first body byte of the opened streams (µs).
    first_byte: Histogram<u64>,
    close: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Held {
    /// Closes every stream (drops its response, so the connection goes) and waits for the
    /// tasks; `false` if that took longer than [`CLOSE_DEADLINE`] (they are aborted then).
    async fn close(mut self) -> bool {
        let _ = self.close.send(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        let done = tokio::time::timeout(CLOSE_DEADLINE, all).await.is_ok();
        self.tasks.abort_all();
        done
    }
}

/// Opens `count` streams ([`OPENING_AT_ONCE`] at a time) and returns once each has either
/// delivered its first byte or failed, or at [`OPEN_DEADLINE`].
async fn hold_streams(client: &Client, url: &str, count: usize) -> anyhow::Result<Held> {
    let auth = HeaderValue::from_str(&format!("Bearer {BENCH_KEY}"))
        .context("building the authorization header")?;
    let (close, closed) = watch::channel(false);
    let (opened_tx, mut opened_rx) = mpsc::channel::<Result<Duration, String>>(1024);
    let gate = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let (client, url, auth) = (client.clone(), url.to_owned(), auth.clone());
        let (gate, opened_tx, mut closed) = (Arc::clone(&gate), opened_tx.clone(), closed.clone());
        tasks.spawn(async move {
            let Ok(permit) = gate.acquire_owned().await else {
                return;
            };
            let sent = Instant::now();
            let opening = async {
                let mut response = client
                    .post(&url)
                    .header(AUTHORIZATION, auth)
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(Mode::Stream.body())
                    .send()
                    .await
                    .map_err(|error| format!("transport: {error:#}"))?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status().as_u16()));
                }
                match response.chunk().await {
                    Ok(Some(chunk)) if !chunk.is_empty() => Ok((response, sent.elapsed())),
                    Ok(_) => Err("the stream ended before its first byte".to_owned()),
                    Err(error) => Err(format!("transport: {error:#}")),
                }
            };
            let outcome = tokio::time::timeout(OPEN_DEADLINE, opening)
                .await
                .unwrap_or_else(|_| Err("no first byte before the deadline".to_owned()));
            drop(permit);
            match outcome {
                Ok((response, first_byte)) => {
                    let _ = opened_tx.send(Ok(first_byte)).await;
                    // Idle until the run closes every stream.
                    let _ = closed.wait_for(|closed| *closed).await;
                    drop(response);
                }
                Err(error) => {
                    let _ = opened_tx.send(Err(error)).await;
                }
            }
        });
    }
    drop(opened_tx);
    let mut held = Held {
        opened: 0,
        failed: 0,
        first_error: None,
        first_byte: Histogram::new_with_bounds(1, 600_000_000, 3)
            .context("creating a latency histogram")?,
        close,
        tasks,
    };
    let deadline = tokio::time::Instant::now() + OPEN_DEADLINE + Duration::from_secs(5);
    while held.opened + held.failed < count {
        match tokio::time::timeout_at(deadline, opened_rx.recv()).await {
            Ok(Some(Ok(first_byte))) => {
                held.opened += 1;
                held.first_byte
                    .saturating_record(u64::try_from(first_byte.as_micros()).unwrap_or(u64::MAX));
            }
            Ok(Some(Err(error))) => {
                held.failed += 1;
                held.first_error.get_or_insert(error);
            }
            Ok(None) | Err(_) => break,
        }
        if (held.opened + held.failed).is_multiple_of(1000) {
            print!("{}… ", held.opened + held.failed);
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
    }
    if count >= 1000 {
        println!();
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_stream_and_errors_add_up() {
        let report = IdleReport {
            machine: Machine {
                cores: 2,
                cpu_model: "cpu".to_owned(),
                kernel: "6".to_owned(),
                date: "today".to_owned(),
            },
            layout: None,
            requested: 10,
            opened: 8,
            failed: 1,
            first_error: Some("HTTP 503".to_owned()),
            proxy_nofile: Some(2044),
            open_seconds: 1.0,
            first_byte_p50_ms: 1.0,
            first_byte_p99_ms: 2.0,
            rss_before_kib: 1024,
            rss_held_kib: 2048,
            rss_after_close_kib: 1100,
            rss_second_wave_kib: 2060,
            second_wave_failed: 0,
            peak_rss_kib: 2100,
            bytes_per_stream: 131_072.0,
            client_connections_held: 8.0,
            notes: vec![],
        };
        // One failed, one never answered.
        assert_eq!(report.errors(), 2);
        let text = report.markdown();
        assert!(text.contains("| 8 | 1 | 1.0 s |"), "{text}");
        assert!(text.contains("| 128.0 KiB |"), "{text}");
        assert!(text.contains("first error: HTTP 503"));
    }
}
