//! The closed-loop load generator: `concurrency` tasks on one shared keep-alive client, each
//! sending its next request as soon as the previous one is done, recording latencies in
//! per-task HDR histograms that are merged at the end (no locks on the hot path).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Url};
use tokio::task::JoinSet;

use super::{Mode, PHASE_TIME_LIMIT};

/// Latencies are recorded in microseconds, up to this bound (larger values are clamped).
const MAX_MICROS: u64 = 120_000_000;
/// Significant figures kept by the histograms (0.1 % resolution).
const SIGFIG: u8 = 3;
/// The end of a complete stream (docs/wire-formats.md §1.3).
const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

/// What one phase sends, the same on every path.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub url: Url,
    pub body: Bytes,
    pub auth: HeaderValue,
    pub mode: Mode,
    pub concurrency: usize,
    pub timeout: Duration,
    /// Each client starts its requests at least this far apart (the soak's steady rate);
    /// `None`: the next as soon as the last is done.
    pub pace: Option<Duration>,
}

/// When a phase ends.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this many requests in total (over all clients).
    Requests(u64),
    /// When this much time has passed; requests in flight finish.
    Duration(Duration),
}

/// What a phase measured.
#[derive(Clone, Debug)]
pub struct PhaseResult {
    pub ok: u64,
    /// Non-2xx answers.
    pub status_errors: u64,
    /// Connection failures and timeouts.
    pub transport_errors: u64,
    /// Empty bodies, streams without `data: [DONE]`.
    pub incomplete: u64,
    /// Body chunks the client's HTTP stack handed over for all successful responses: for
    /// chunked encoding at least one per HTTP chunk, i.e. how finely the path framed its bytes.
    pub body_chunks: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Request sent → last byte read, successful requests only (µs).
    pub total: Histogram<u64>,
    /// Request sent → first body byte, successful requests only (µs).
    pub first_byte: Histogram<u64>,
    /// A `Stop::Requests` phase that ran into [`PHASE_TIME_LIMIT`].
    pub hit_time_limit: bool,
}

impl PhaseResult {
    fn empty() -> anyhow::Result<Self> {
        Ok(Self {
            ok: 0,
            status_errors: 0,
            transport_errors: 0,
            incomplete: 0,
            body_chunks: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            total: histogram()?,
            first_byte: histogram()?,
            hit_time_limit: false,
        })
    }

    pub fn errors(&self) -> u64 {
        self.status_errors + self.transport_errors + self.incomplete
    }

    /// Body chunks per successful response.
    pub fn chunks_per_response(&self) -> f64 {
        if self.ok > 0 {
            self.body_chunks as f64 / self.ok as f64
        } else {
            0.0
        }
    }

    /// Successful requests per second over the phase.
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }

    fn merge(&mut self, other: PhaseResult) -> anyhow::Result<()> {
        self.ok += other.ok;
        self.status_errors += other.status_errors;
        self.transport_errors += other.transport_errors;
        self.incomplete += other.incomplete;
        self.body_chunks += other.body_chunks;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.total.add(&other.total).context("merging histograms")?;
        self.first_byte
            .add(&other.first_byte)
            .context("merging histograms")?;
        Ok(())
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGFIG).context("creating a latency histogram")
}

/// One HTTP/1.1 keep-alive client for every path: a pool large enough that each of up to
/// `connections` closed-loop tasks keeps its connection, Nagle off, no proxy from the
/// environment.
pub fn client(connections: usize) -> anyhow::Result<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(connections.max(1) * 2)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .context("building the load client")
}

/// Runs one phase to its stop condition and returns the merged result.
pub async fn run(client: &Client, spec: &LoadSpec, stop: Stop) -> anyhow::Result<PhaseResult> {
    let started = Instant::now();
    let tickets = Arc::new(Tickets::new(stop, started));
    let mut tasks = JoinSet::new();
    for _ in 0..spec.concurrency.max(1) {
        let (client, spec, tickets) = (client.clone(), spec.clone(), Arc::clone(&tickets));
        tasks.spawn(async move { closed_loop(&client, &spec, &tickets).await });
    }
    let mut result = PhaseResult::empty()?;
    while let Some(joined) = tasks.join_next().await {
        result.merge(joined.context("a load task failed")??)?;
    }
    result.elapsed = started.elapsed();
    result.hit_time_limit = tickets.hit_time_limit();
    Ok(result)
}

/// Hands out the right to send one more request until the phase's stop condition.
struct Tickets {
    stop: Stop,
    started: Instant,
    issued: AtomicU64,
}

impl Tickets {
    fn new(stop: Stop, started: Instant) -> Self {
        Self {
            stop,
            started,
            issued: AtomicU64::new(0),
        }
    }

    fn take(&self) -> bool {
        let elapsed = self.started.elapsed();
        match self.stop {
            Stop::Requests(n) => {
                elapsed < PHASE_TIME_LIMIT && self.issued.fetch_add(1, Ordering::Relaxed) < n
            }
            Stop::Duration(limit) => elapsed < limit,
        }
    }

    fn hit_time_limit(&self) -> bool {
        matches!(self.stop, Stop::Requests(n) if self.issued.load(Ordering::Relaxed) < n)
    }
}

/// One client: request after request until the tickets run out.
async fn closed_loop(
    client: &Client,
    spec: &LoadSpec,
    tickets: &Tickets,
) -> anyhow::Result<PhaseResult> {
    let mut result = PhaseResult::empty()?;
    // The last bytes of a stream, to check that it ended with [DONE]; reused, so no
    // allocation per request once it has grown.
    let mut tail = Vec::with_capacity(64);
    while tickets.take() {
        let sent = Instant::now();
        match one_request(client, spec, &mut tail, sent).await {
            Ok((first_byte, chunks)) => {
                result.ok += 1;
                result.body_chunks += chunks;
                result.total.saturating_record(micros(sent.elapsed()));
                result.first_byte.saturating_record(micros(first_byte));
            }
            Err(error) => {
                match error {
                    RequestError::Status(_) => result.status_errors += 1,
                    RequestError::Transport(_) => result.transport_errors += 1,
                    RequestError::Incomplete(_) => result.incomplete += 1,
                }
                if result.first_error.is_none() {
                    result.first_error = Some(error.to_string());
                }
            }
        }
        if let Some(pace) = spec.pace {
            tokio::time::sleep_until((sent + pace).into()).await;
        }
    }
    Ok(result)
}

#[derive(Debug)]
enum RequestError {
    Status(u16),
    Transport(reqwest::Error),
    Incomplete(&'static str),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Status(status) => write!(f, "HTTP {status}"),
            RequestError::Transport(error) => write!(f, "transport: {error:#}"),
            RequestError::Incomplete(what) => write!(f, "incomplete: {what}"),
        }
    }
}

impl From<reqwest::Error> for RequestError {
    fn from(error: reqwest::Error) -> Self {
        RequestError::Transport(error)
    }
}

/// Sends one request and reads its body to the end; returns the time to the first body byte
/// and the number of body chunks.
async fn one_request(
    client: &Client,
    spec: &LoadSpec,
    tail: &mut Vec<u8>,
    sent: Instant,
) -> Result<(Duration, u64), RequestError> {
    let mut response = client
        .post(spec.url.clone())
        .header(AUTHORIZATION, spec.auth.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(spec.body.clone())
        .timeout(spec.timeout)
        .send()
        .await?;
    let status = response.status();
    let mut first_byte = None;
    let mut chunks = 0;
    tail.clear();
    while let Some(chunk) = response.chunk().await? {
        chunks += 1;
        if first_byte.is_none() && !chunk.is_empty() {
            first_byte = Some(sent.elapsed());
        }
        keep_tail(tail, &chunk);
    }
    if !status.is_success() {
        return Err(RequestError::Status(status.as_u16()));
    }
    let first_byte = first_byte.ok_or(RequestError::Incomplete("empty body"))?;
    if spec.mode == Mode::Stream && !tail.ends_with(DONE_FRAME) {
        return Err(RequestError::Incomplete("stream without data: [DONE]"));
    }
    Ok((first_byte, chunks))
}

/// Keeps the last 64 bytes seen (enough for the `[DONE]` frame across chunk boundaries).
fn keep_tail(tail: &mut Vec<u8>, chunk: &[u8]) {
    const KEEP: usize = 64;
    let chunk = &chunk[chunk.len().saturating_sub(KEEP)..];
    let overflow = (tail.len() + chunk.len()).saturating_sub(KEEP);
    tail.drain(..overflow.min(tail.len()));
    tail.extend_from_slice(chunk);
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_across_chunks() {
        let mut tail = Vec::new();
        keep_tail(&mut tail, &[b'x'; 100]);
        keep_tail(&mut tail, b"data: [DO");
        keep_tail(&mut tail, b"NE]\n\n");
        assert!(tail.ends_with(DONE_FRAME));
        assert!(tail.len() <= 64);
    }

    #[test]
    fn request_tickets_run_out() {
        let tickets = Tickets::new(Stop::Requests(3), Instant::now());
        let taken = (0..10).filter(|_| tickets.take()).count();
        assert_eq!(taken, 3);
        assert!(!tickets.hit_time_limit());
    }
}
