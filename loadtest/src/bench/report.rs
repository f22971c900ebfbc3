//! The benchmark's results: one row per path, mode and latency measure, the overhead of each
//! proxy over the direct call, and the Markdown / JSON renderings of it all.

use std::cmp::Reverse;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::load::PhaseResult;
use super::machine::Machine;
use super::pinning::Layout;
use super::procstat::Memory;
use super::{Mode, Settings, Target};

/// Which interval a row's latencies measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    /// Request sent → first body byte (streams: the first SSE frame).
    FirstByte,
    /// Request sent → last body byte.
    Total,
}

impl Latency {
    pub fn name(self) -> &'static str {
        match self {
            Latency::FirstByte => "first byte",
            Latency::Total => "total",
        }
    }
}

/// One line of the table. Latencies in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub path: Target,
    pub mode: Mode,
    /// Closed-loop clients (connections) of the phase.
    pub concurrency: usize,
    pub latency: Latency,
    /// Successful requests measured.
    pub requests: u64,
    pub errors: u64,
    /// Successful requests per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Body chunks the client received per response: how finely the path framed the bytes.
    pub chunks_per_response: f64,
    /// This row's p50 minus the direct call's (same mode and measure); `None` for direct.
    pub overhead_p50_ms: Option<f64>,
    pub overhead_p99_ms: Option<f64>,
    /// CPU time (user + system) the proxy under test spent over the measured phase, per
    /// successful request, in µs; `None` for the direct path.
    pub proxy_cpu_us: Option<f64>,
}

impl Row {
    /// Chat phases give a "total" row; stream phases a "first byte" and a "total" row.
    /// `proxy_cpu` is the proxy's CPU time over the measured phase.
    pub fn from_phase(
        path: Target,
        mode: Mode,
        concurrency: usize,
        phase: &PhaseResult,
        proxy_cpu: Option<std::time::Duration>,
    ) -> Vec<Row> {
        let proxy_cpu_us = proxy_cpu.filter(|_| phase.ok > 0).map(|cpu| {
            let per_request = cpu.as_secs_f64() * 1e6 / phase.ok as f64;
            (per_request * 10.0).round() / 10.0
        });
        let row = |latency, histogram: &Histogram<u64>| Row {
            path,
            mode,
            concurrency,
            latency,
            requests: phase.ok,
            errors: phase.errors(),
            throughput: (phase.throughput() * 10.0).round() / 10.0,
            p50_ms: millis(histogram.value_at_quantile(0.50)),
            p90_ms: millis(histogram.value_at_quantile(0.90)),
            p99_ms: millis(histogram.value_at_quantile(0.99)),
            max_ms: millis(histogram.max()),
            chunks_per_response: phase.chunks_per_response(),
            overhead_p50_ms: None,
            overhead_p99_ms: None,
            proxy_cpu_us,
        };
        match mode {
            Mode::Chat => vec![row(Latency::Total, &phase.total)],
            Mode::Stream => vec![
                row(Latency::FirstByte, &phase.first_byte),
                row(Latency::Total, &phase.total),
            ],
        }
    }
}

/// Histogram values are microseconds.
fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// A whole run, as printed and as written by `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub nginx: Option<String>,
    /// The CPUs of a pinned run (`--proxy-cpus`); `None`: everything shared every core.
    pub layout: Option<Layout>,
    pub rows: Vec<Row>,
    /// Switchyard next to nginx per mode and connection count: the issue 13 targets.
    pub side_by_side: Vec<SideBySide>,
    /// Each proxy's resident memory at the end of the run, and its peak.
    pub memory: Vec<ProxyMemory>,
    pub notes: Vec<String>,
}

/// A proxy's memory: nginx's is summed over its master and workers.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyMemory {
    pub path: Target,
    /// `VmHWM`: the peak resident size over the run, KiB.
    pub peak_rss_kib: u64,
    /// `VmRSS` at the end of the run, KiB.
    pub end_rss_kib: u64,
}

impl ProxyMemory {
    pub fn new(path: Target, memory: Memory) -> Self {
        Self {
            path,
            peak_rss_kib: memory.peak_kib,
            end_rss_kib: memory.rss_kib,
        }
    }
}

/// One mode at one connection count: Switchyard's figures, nginx's, and their ratios.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideBySide {
    pub mode: Mode,
    pub concurrency: usize,
    pub nginx_throughput: Option<f64>,
    pub switchyard_throughput: Option<f64>,
    /// Switchyard's throughput / nginx's.
    pub throughput_ratio: Option<f64>,
    /// p50 (request → last byte) minus the direct call's.
    pub nginx_added_p50_ms: Option<f64>,
    pub switchyard_added_p50_ms: Option<f64>,
    /// Streams: p99 of the time to the first byte minus the direct call's.
    pub switchyard_added_ttft_p99_ms: Option<f64>,
    pub nginx_cpu_us: Option<f64>,
    pub switchyard_cpu_us: Option<f64>,
    /// Switchyard's CPU per request / nginx's.
    pub cpu_ratio: Option<f64>,
}

impl SideBySide {
    /// One entry per (mode, concurrency) that has a Switchyard row, in the rows' order.
    pub fn from_rows(rows: &[Row]) -> Vec<SideBySide> {
        let find = |path, mode, concurrency, latency| {
            rows.iter().find(|row| {
                row.path == path
                    && row.mode == mode
                    && row.concurrency == concurrency
                    && row.latency == latency
            })
        };
        rows.iter()
            .filter(|row| row.path == Target::Switchyard && row.latency == Latency::Total)
            .map(|switchyard| {
                let (mode, concurrency) = (switchyard.mode, switchyard.concurrency);
                let nginx = find(Target::Nginx, mode, concurrency, Latency::Total);
                let ttft = find(Target::Switchyard, mode, concurrency, Latency::FirstByte)
                    .filter(|_| mode == Mode::Stream);
                SideBySide {
                    mode,
                    concurrency,
                    nginx_throughput: nginx.map(|row| row.throughput),
                    switchyard_throughput: Some(switchyard.throughput),
                    throughput_ratio: nginx
                        .and_then(|row| ratio(switchyard.throughput, row.throughput)),
                    nginx_added_p50_ms: nginx.and_then(|row| row.overhead_p50_ms),
                    switchyard_added_p50_ms: switchyard.overhead_p50_ms,
                    switchyard_added_ttft_p99_ms: ttft.and_then(|row| row.overhead_p99_ms),
                    nginx_cpu_us: nginx.and_then(|row| row.proxy_cpu_us),
                    switchyard_cpu_us: switchyard.proxy_cpu_us,
                    cpu_ratio: switchyard
                        .proxy_cpu_us
                        .and_then(|own| ratio(own, nginx.and_then(|row| row.proxy_cpu_us)?)),
                }
            })
            .collect()
    }
}

/// `a / b` to two decimals, when `b` is positive.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| (a / b * 100.0).round() / 100.0)
}

impl Report {
    /// Orders the rows (mode, measure, then path as given) and fills in the overheads.
    /// Orders the rows (mode, connections from most to fewest, measure, then path as
    /// given), fills in the overheads and the side-by-side comparison.
    pub fn new(
        settings: Settings,
        machine: Machine,
        nginx: Option<String>,
        layout: Option<Layout>,
        mut rows: Vec<Row>,
        memory: Vec<ProxyMemory>,
        notes: Vec<String>,
    ) -> Self {
        rows.sort_by_key(|row| (row.mode.name(), Reverse(row.concurrency), row.latency));
        let baseline: Vec<(Mode, usize, Latency, f64, f64)> = rows
            .iter()
            .filter(|row| row.path == Target::Direct)
            .map(|row| {
                (
                    row.mode,
                    row.concurrency,
                    row.latency,
                    row.p50_ms,
                    row.p99_ms,
                )
            })
            .collect();
        for row in rows.iter_mut().filter(|row| row.path != Target::Direct) {
            if let Some((_, _, _, p50, p99)) =
                baseline.iter().find(|(mode, conns, latency, _, _)| {
                    *mode == row.mode && *conns == row.concurrency && *latency == row.latency
                })
            {
                row.overhead_p50_ms = Some(round_micros(row.p50_ms - p50));
                row.overhead_p99_ms = Some(round_micros(row.p99_ms - p99));
            }
        }
        let side_by_side = SideBySide::from_rows(&rows);
        Self {
            machine,
            settings,
            nginx,
            layout,
            rows,
            side_by_side,
            memory,
            notes,
        }
    }

    /// The Markdown table with the machine and settings above it and the notes below.
    pub fn markdown(&self) -> String {
        let (m, s) = (&self.machine, &self.settings);
        let mut out = String::new();
        let _ = writeln!(out, "## Switchyard overhead benchmark\n");
        let _ = writeln!(
            out,
            "- date: {}; machine: {} cores, {}, Linux {}",
            m.date, m.cores, m.cpu_model, m.kernel
        );
        let amount = match s.duration {
            Some(duration) => format!("{:.1} s", duration.as_secs_f64()),
            None => format!("{} requests", s.requests),
        };
        let clients: Vec<String> = s.concurrency.iter().map(usize::to_string).collect();
        let _ = writeln!(
            out,
            "- load: {} closed-loop clients on HTTP/1.1 keep-alive connections; {amount} measured \
             per path, mode and client count after {} warm-up requests; timeout {} ms",
            clients.join(" and "),
            s.warmup,
            s.timeout.as_millis()
        );
        let _ = writeln!(
            out,
            "- upstream: simulator with ttft {} ms, {} tokens, inter-token {} ms",
            ms2(s.ttft.as_secs_f64() * 1000.0),
            s.tokens,
            ms2(s.inter_token.as_secs_f64() * 1000.0)
        );
        let _ = writeln!(
            out,
            "- switchyard: {}; nginx: {}",
            s.switchyard.display(),
            self.nginx.as_deref().unwrap_or("not installed")
        );
        match &self.layout {
            Some(layout) => {
                let _ = writeln!(
                    out,
                    "- pinned: {} (nginx: one worker per proxy CPU)\n",
                    layout.describe()
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "- the load generator, switchyard, nginx and the simulator all share these {} \
                     cores, so every figure includes contention between them\n",
                    m.cores
                );
            }
        }
        out.push_str(&self.table());
        let _ = writeln!(out, "\n{}", self.chunks_line());
        if !self.side_by_side.is_empty() {
            let _ = writeln!(out, "\n### Side by side\n");
            out.push_str(&self.side_by_side_table());
        }
        if !self.memory.is_empty() {
            let parts: Vec<String> = self
                .memory
                .iter()
                .map(|memory| {
                    format!(
                        "{} peak {} / end {}",
                        memory.path.name(),
                        mib(memory.peak_rss_kib),
                        mib(memory.end_rss_kib)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "\nResident memory (VmHWM / VmRSS): {}.",
                parts.join("; ")
            );
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }

    /// Switchyard next to nginx: throughput, added latency, CPU per request and the ratios.
    pub fn side_by_side_table(&self) -> String {
        let mut out = String::from(
            "| mode | conns | nginx req/s | Switchyard req/s | req/s ×nginx | nginx Δp50 ms | Switchyard Δp50 ms | Switchyard TTFT Δp99 ms | nginx CPU µs/req | Switchyard CPU µs/req | CPU ×nginx |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        let opt = |value: Option<f64>, digits: usize| match value {
            Some(value) => format!("{value:.digits$}"),
            None => "—".to_owned(),
        };
        for entry in &self.side_by_side {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                entry.mode.name(),
                entry.concurrency,
                opt(entry.nginx_throughput, 0),
                opt(entry.switchyard_throughput, 0),
                opt(entry.throughput_ratio, 2),
                delta(entry.nginx_added_p50_ms),
                delta(entry.switchyard_added_p50_ms),
                delta(entry.switchyard_added_ttft_p99_ms),
                opt(entry.nginx_cpu_us, 1),
                opt(entry.switchyard_cpu_us, 1),
                opt(entry.cpu_ratio, 2),
            );
        }
        out
    }

    /// `Body chunks per response: direct chat 1.0, …`: how each path framed its bytes.
    pub fn chunks_line(&self) -> String {
        let parts: Vec<String> = self
            .rows
            .iter()
            .filter(|row| row.latency == Latency::Total)
            .map(|row| {
                format!(
                    "{} {} ×{} {:.1}",
                    row.path.name(),
                    row.mode.name(),
                    row.concurrency,
                    row.chunks_per_response
                )
            })
            .collect();
        format!(
            "Body chunks per response, as the client received them: {}.",
            parts.join(", ")
        )
    }

    /// Just the table. Latencies in ms; Δ columns are the path's value minus direct's.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| path | mode | conns | latency | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | Δp50 ms | Δp99 ms | CPU µs/req |\n\
             | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                row.path.name(),
                row.mode.name(),
                row.concurrency,
                row.latency.name(),
                row.requests,
                row.errors,
                row.throughput,
                ms2(row.p50_ms),
                ms2(row.p90_ms),
                ms2(row.p99_ms),
                ms2(row.max_ms),
                delta(row.overhead_p50_ms),
                delta(row.overhead_p99_ms),
                row.proxy_cpu_us
                    .map_or_else(|| "—".to_owned(), |cpu| format!("{cpu:.1}")),
            );
        }
        out
    }
}

/// KiB as `12.3 MiB`.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Milliseconds rounded to whole microseconds (what the histograms resolve).
fn round_micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Milliseconds with two decimals.
pub fn ms2(value: f64) -> String {
    format!("{value:.2}")
}

/// A signed difference in ms, or `—` where there is none (the direct rows).
pub fn delta(value: Option<f64>) -> String {
    match value {
        Some(value) => format!("{value:+.2}"),
        None => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn row(path: Target, mode: Mode, latency: Latency, p50_ms: f64, p99_ms: f64) -> Row {
        Row {
            path,
            mode,
            concurrency: 32,
            latency,
            requests: 1000,
            errors: 0,
            throughput: 2500.4,
            p50_ms,
            p90_ms: p50_ms * 1.5,
            p99_ms,
            max_ms: p99_ms * 2.0,
            chunks_per_response: 1.0,
            overhead_p50_ms: None,
            overhead_p99_ms: None,
            proxy_cpu_us: match path {
                Target::Direct => None,
                Target::Nginx => Some(30.0),
                Target::Switchyard => Some(75.0),
            },
        }
    }

    fn settings() -> Settings {
        Settings {
            concurrency: vec![32],
            requests: 20_000,
            duration: None,
            warmup: 1000,
            ttft: Duration::ZERO,
            tokens: 16,
            inter_token: Duration::ZERO,
            timeout: Duration::from_secs(30),
            switchyard: PathBuf::from("target/release/switchyard"),
            loadtest: PathBuf::from("target/release/loadtest"),
            proxy_cpus: None,
        }
    }

    fn machine() -> Machine {
        Machine {
            cores: 2,
            cpu_model: "AMD EPYC".to_owned(),
            kernel: "6.1.0".to_owned(),
            date: "2026-11-28 01:00 UTC".to_owned(),
        }
    }

    fn report() -> Report {
        let rows = vec![
            row(Target::Direct, Mode::Chat, Latency::Total, 1.0, 3.0),
            row(Target::Nginx, Mode::Chat, Latency::Total, 1.25, 3.5),
            row(Target::Switchyard, Mode::Chat, Latency::Total, 1.5, 4.126),
            row(Target::Direct, Mode::Stream, Latency::FirstByte, 0.5, 1.0),
            row(Target::Direct, Mode::Stream, Latency::Total, 2.0, 5.0),
            row(
                Target::Switchyard,
                Mode::Stream,
                Latency::FirstByte,
                0.75,
                1.5,
            ),
            row(Target::Switchyard, Mode::Stream, Latency::Total, 2.5, 6.0),
        ];
        Report::new(
            settings(),
            machine(),
            Some("nginx/1.22.1".to_owned()),
            None,
            rows,
            vec![ProxyMemory::new(
                Target::Switchyard,
                Memory {
                    rss_kib: 20_480,
                    peak_kib: 30_720,
                },
            )],
            vec![],
        )
    }

    #[test]
    fn milliseconds_have_two_decimals_and_deltas_a_sign() {
        assert_eq!(ms2(1.0), "1.00");
        assert_eq!(ms2(0.126), "0.13");
        assert_eq!(delta(Some(0.25)), "+0.25");
        assert_eq!(delta(Some(-0.1)), "-0.10");
        assert_eq!(delta(None), "—");
    }

    #[test]
    fn overheads_are_relative_to_direct_in_the_same_mode_and_measure() {
        let report = report();
        let find = |path, mode, latency| {
            report
                .rows
                .iter()
                .find(|r| r.path == path && r.mode == mode && r.latency == latency)
                .cloned()
        };
        let switchyard = find(Target::Switchyard, Mode::Chat, Latency::Total);
        assert_eq!(
            switchyard.as_ref().and_then(|r| r.overhead_p50_ms),
            Some(0.5)
        );
        let p99 = switchyard
            .and_then(|r| r.overhead_p99_ms)
            .unwrap_or_default();
        assert!((p99 - 1.126).abs() < 1e-9, "{p99}");
        let first_byte = find(Target::Switchyard, Mode::Stream, Latency::FirstByte);
        assert_eq!(first_byte.and_then(|r| r.overhead_p50_ms), Some(0.25));
        let direct = find(Target::Direct, Mode::Chat, Latency::Total);
        assert_eq!(direct.and_then(|r| r.overhead_p50_ms), None);
    }

    #[test]
    fn the_table_groups_by_mode_and_measure() {
        let table = report().table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2 + 7);
        assert!(
            lines[0].starts_with("| path | mode | conns | latency | requests | errors | req/s |")
        );
        assert_eq!(
            lines[2],
            "| direct | chat | 32 | total | 1000 | 0 | 2500 | 1.00 | 1.50 | 3.00 | 6.00 | — | — | — |"
        );
        assert_eq!(
            lines[4],
            "| switchyard | chat | 32 | total | 1000 | 0 | 2500 | 1.50 | 2.25 | 4.13 | 8.25 | +0.50 | +1.13 | 75.0 |"
        );
        assert!(lines[5].starts_with("| direct | stream | 32 | first byte |"));
        assert!(lines[7].starts_with("| direct | stream | 32 | total |"));
    }

    #[test]
    fn the_markdown_says_what_was_measured_and_where() {
        let text = report().markdown();
        assert!(text.contains("2 cores, AMD EPYC"));
        assert!(text.contains("32 closed-loop clients"));
        assert!(text.contains(
            "20000 requests measured per path, mode and client count after 1000 warm-up"
        ));
        assert!(text.contains("ttft 0.00 ms, 16 tokens"));
        assert!(text.contains("nginx: nginx/1.22.1"));
        assert!(text.contains("share these 2 cores"));
        assert!(text.contains("them: direct chat ×32 1.0, nginx chat ×32 1.0,"));
        assert!(text.contains("switchyard peak 30.0 MiB / end 20.0 MiB"));
        assert!(text.contains("### Side by side"));
    }

    #[test]
    fn side_by_side_puts_switchyard_next_to_nginx_with_ratios() {
        let report = report();
        let chat = report
            .side_by_side
            .iter()
            .find(|entry| entry.mode == Mode::Chat)
            .cloned();
        let chat = chat.as_ref();
        assert_eq!(chat.map(|e| e.concurrency), Some(32));
        assert_eq!(chat.and_then(|e| e.cpu_ratio), Some(2.5));
        assert_eq!(chat.and_then(|e| e.throughput_ratio), Some(1.0));
        assert_eq!(chat.and_then(|e| e.nginx_added_p50_ms), Some(0.25));
        assert_eq!(chat.and_then(|e| e.switchyard_added_p50_ms), Some(0.5));
        assert_eq!(chat.and_then(|e| e.switchyard_added_ttft_p99_ms), None);
        // No nginx stream rows: the stream entry has Switchyard's figures only.
        let stream = report
            .side_by_side
            .iter()
            .find(|entry| entry.mode == Mode::Stream)
            .cloned();
        let stream = stream.as_ref();
        assert_eq!(
            stream.and_then(|e| e.switchyard_added_ttft_p99_ms),
            Some(0.5)
        );
        assert_eq!(stream.and_then(|e| e.cpu_ratio), None);
        assert_eq!(stream.and_then(|e| e.nginx_throughput), None);
        let table = report.side_by_side_table();
        assert!(
            table.contains(
                "| chat | 32 | 2500 | 2500 | 1.00 | +0.25 | +0.50 | — | 30.0 | 75.0 | 2.50 |"
            ),
            "{table}"
        );
    }

    #[test]
    fn a_pinned_run_says_where_everything_ran() -> anyhow::Result<()> {
        let mut report = report();
        report.layout = Some(Layout::from_allowed(&[0, 1], 1)?);
        let text = report.markdown();
        assert!(text
            .contains("pinned: proxy under test on CPU 1; load generator and simulators on CPU 0"));
        assert!(!text.contains("share these"));
        Ok(())
    }

    #[test]
    fn rows_come_from_histograms_in_milliseconds() -> anyhow::Result<()> {
        let mut total = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
        for micros in 1..=1000 {
            total.record(micros)?;
        }
        let phase = PhaseResult {
            ok: 1000,
            status_errors: 1,
            transport_errors: 0,
            incomplete: 2,
            body_chunks: 20_000,
            first_error: None,
            elapsed: Duration::from_secs(2),
            first_byte: total.clone(),
            total,
            hit_time_limit: false,
        };
        let rows = Row::from_phase(
            Target::Nginx,
            Mode::Stream,
            32,
            &phase,
            Some(Duration::from_millis(35)),
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].proxy_cpu_us, Some(35.0));
        assert_eq!(rows[1].concurrency, 32);
        assert_eq!(rows[0].latency, Latency::FirstByte);
        assert_eq!(rows[1].errors, 3);
        assert_eq!(rows[1].throughput, 500.0);
        assert_eq!(ms2(rows[1].p50_ms), "0.50");
        assert_eq!(ms2(rows[1].max_ms), "1.00");
        assert_eq!(rows[1].chunks_per_response, 20.0);
        Ok(())
    }
}
