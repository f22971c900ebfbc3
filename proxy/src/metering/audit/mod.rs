//! The audit trail (docs/operations.md, "Audit trail"): who called which model, where it ran
//! and why there, what it cost — one record per request, read out of the ledger. Written as
//! CSV or JSON lines by `switchyard audit` ([`export`]), and served a page at a time by
//! `GET /admin/requests` ([`admin`]).

pub mod admin;

use std::io::Write;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use super::ledger::audit::{AuditQuery, Cursor};
use super::ledger::{LedgerEntry, LedgerError, Store};

/// One request of the audit trail, as CSV columns and JSON fields alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// When the request started, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The id the proxy logged and answered with (`x-request-id`).
    pub request_id: String,
    /// The client's own `x-request-id`, when it sent one the proxy kept.
    pub client_request_id: Option<String>,
    pub team: String,
    pub key_id: String,
    /// The client's API (`chat`, `messages`, `responses`, `embeddings`, …).
    pub api: String,
    pub model: String,
    pub provider: String,
    pub target: String,
    /// Every target tried and how it went, as `x-switchyard-route` shows it.
    pub attempt_chain: String,
    pub attempts: i64,
    pub status: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cache_write_tokens: i64,
    /// Exact, from the ledger's nano-dollars, 9 decimals (`0.000315000`).
    pub cost_usd: String,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    /// The policy version that routed it (`/admin/routes` `version`).
    pub policy_version: String,
    /// The stream broke and went on at another target.
    pub resumed: bool,
    pub usage_estimated: bool,
    pub entry_id: String,
}

/// The CSV header, in [`AuditRecord`]'s field order (a test keeps them in step).
pub const CSV_HEADER: [&str; 23] = [
    "time",
    "request_id",
    "client_request_id",
    "team",
    "key_id",
    "api",
    "model",
    "provider",
    "target",
    "attempt_chain",
    "attempts",
    "status",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "policy_version",
    "resumed",
    "usage_estimated",
    "entry_id",
];

impl From<&LedgerEntry> for AuditRecord {
    fn from(row: &LedgerEntry) -> Self {
        Self {
            time: rfc3339_ms(row.at_ms),
            request_id: row.request_id.clone(),
            client_request_id: row.client_request_id.clone(),
            team: row.team.clone(),
            key_id: row.key_id.clone(),
            api: row.api.clone(),
            model: row.model.clone(),
            provider: row.provider.clone(),
            target: row.target.clone(),
            attempt_chain: row.attempt_chain.clone(),
            attempts: row.attempts,
            status: row.status.clone(),
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cached_tokens: row.cached_tokens,
            cache_write_tokens: row.cache_write_tokens,
            cost_usd: row.cost_usd.to_fixed(),
            latency_ms: row.latency_ms,
            ttft_ms: row.ttft_ms,
            policy_version: row.policy_version.clone(),
            resumed: row.resumed,
            usage_estimated: row.usage_estimated,
            entry_id: row.entry_id.clone(),
        }
    }
}

/// `2026-12-07T13:52:14.123Z`.
fn rfc3339_ms(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms).map_or_else(
        || at_ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// An opaque page cursor: the last row's start time and entry id, base64url.
pub fn encode_cursor(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", cursor.at_ms, cursor.entry_id))
}

/// Reads back a cursor made by [`encode_cursor`].
pub fn decode_cursor(text: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at_ms, entry_id) = text.split_once(':')?;
    Some(Cursor {
        at_ms: at_ms.parse().ok()?,
        entry_id: entry_id.to_owned(),
    })
}

/// How `switchyard audit` writes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A header line, then one line per request.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot write the records: {0}")]
    Write(String),
}

/// Rows read per query while exporting.
const EXPORT_PAGE: usize = 1_000;

/// Writes the records `query` selects (all of them, or the first `limit`) to `out`, a page
/// of [`EXPORT_PAGE`] rows at a time; returns how many were written.
pub async fn export(
    store: &Store,
    mut query: AuditQuery,
    limit: Option<usize>,
    format: Format,
    out: impl Write,
) -> Result<usize, ExportError> {
    let mut sink = Sink::new(format, out)?;
    let mut written = 0;
    loop {
        let want = limit.map_or(EXPORT_PAGE, |limit| (limit - written).min(EXPORT_PAGE));
        if want == 0 {
            break;
        }
        query.limit = want;
        let rows = store.audit(&query).await?;
        for row in &rows {
            sink.write(&AuditRecord::from(row))?;
        }
        written += rows.len();
        match rows.last() {
            Some(last) if rows.len() == want => query.after = Some(last.cursor()),
            _ => break,
        }
    }
    sink.flush()?;
    Ok(written)
}

/// Where [`export`] writes, in its format.
enum Sink<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(std::io::BufWriter<W>),
}

fn write_error(error: impl std::fmt::Display) -> ExportError {
    ExportError::Write(error.to_string())
}

impl<W: Write> Sink<W> {
    /// A sink on `out`; CSV starts with its header (also when no row follows).
    fn new(format: Format, out: W) -> Result<Self, ExportError> {
        Ok(match format {
            Format::Csv => {
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(out);
                csv.write_record(CSV_HEADER).map_err(write_error)?;
                Sink::Csv(Box::new(csv))
            }
            Format::Jsonl => Sink::Jsonl(std::io::BufWriter::new(out)),
        })
    }

    fn write(&mut self, record: &AuditRecord) -> Result<(), ExportError> {
        match self {
            Sink::Csv(csv) => csv.serialize(record).map_err(write_error),
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, record).map_err(write_error)?;
                out.write_all(b"\n").map_err(write_error)
            }
        }
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        match self {
            Sink::Csv(csv) => csv.flush().map_err(write_error),
            Sink::Jsonl(out) => out.flush().map_err(write_error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::ledger::sqlite::tests::entry;

    async fn store_with(n: usize) -> Store {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let entries: Vec<_> = (0..n)
            .map(|i| {
                let mut e = entry(&format!("e{i:04}"), "t", 1_765_115_534_000 + i as i64, 0.0);
                e.cost_usd = crate::metering::NanoUsd::from_nanos(315_000 + i as i64);
                e.attempt_chain = "a/x=server_error, b/y=ok".to_owned();
                e
            })
            .collect();
        store.insert(&entries).await.unwrap();
        store
    }

    #[test]
    fn the_csv_header_follows_the_record_fields() {
        let row = AuditRecord {
            time: String::new(),
            request_id: String::new(),
            client_request_id: None,
            team: String::new(),
            key_id: String::new(),
            api: String::new(),
            model: String::new(),
            provider: String::new(),
            target: String::new(),
            attempt_chain: String::new(),
            attempts: 0,
            status: String::new(),
            input_tokens: 0,
            output_tokens: 0,
            cached_tokens: 0,
            cache_write_tokens: 0,
            cost_usd: String::new(),
            latency_ms: 0,
            ttft_ms: None,
            policy_version: String::new(),
            resumed: false,
            usage_estimated: false,
            entry_id: String::new(),
        };
        let value = serde_json::to_value(&row).unwrap();
        let fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, CSV_HEADER);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor {
            at_ms: 1_765_115_534_123,
            entry_id: "a:b-c".to_owned(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)), Some(cursor));
        for bad in ["", "!!", "bm8tY29sb24", "eDpl"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn csv_export_quotes_the_chain_and_writes_exact_costs() {
        let store = store_with(3).await;
        let mut out = Vec::new();
        let query = AuditQuery::all(0, i64::MAX, 0);
        let n = export(&store, query, None, Format::Csv, &mut out)
            .await
            .unwrap();
        assert_eq!(n, 3);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert!(
            lines[1].starts_with("2025-12-07T13:52:14.000Z,req-e0000,client-e0000,t,t#0000,chat,chat,sim-a,sim-a/up-a,\"a/x=server_error, b/y=ok\",1,200,10,5,0,3,0.000315000,12,3,0123456789ab,false,false,e0000"),
            "{text}"
        );
        assert_eq!(lines.len(), 4);
    }

    #[tokio::test]
    async fn jsonl_export_pages_through_everything_or_stops_at_the_limit() {
        let store = store_with(EXPORT_PAGE + 5).await;
        let mut out = Vec::new();
        let query = AuditQuery::all(0, i64::MAX, 0);
        let n = export(&store, query.clone(), None, Format::Jsonl, &mut out).await;
        assert_eq!(n.unwrap(), EXPORT_PAGE + 5);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), EXPORT_PAGE + 5);
        let ids: std::collections::BTreeSet<&str> = lines
            .iter()
            .map(|l| l["entry_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), EXPORT_PAGE + 5, "every row exactly once");
        assert_eq!(lines[0]["cost_usd"], "0.000315000");
        assert_eq!(lines[0]["client_request_id"], "client-e0000");
        assert_eq!(lines[0]["ttft_ms"], 3);

        let mut out = Vec::new();
        let n = export(&store, query, Some(7), Format::Jsonl, &mut out).await;
        assert_eq!(n.unwrap(), 7);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 7);
    }
}
