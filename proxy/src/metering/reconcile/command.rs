//! `switchyard spend --reconcile FILE`: reads the export, queries the ledger for the same
//! period, and renders the reconciliation.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use super::{
    candidates, metered_days, parse_mappings, providers, read_export, reconcile, render,
    ExportFormat, OutputFormat, ReconcileError,
};
use crate::config::Policy;
use crate::metering::ledger::Store;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub file: PathBuf,
    /// `None`: told apart by the export's header.
    pub format: Option<ExportFormat>,
    /// The period, Unix milliseconds, and as written (for the JSON answer).
    pub from_ms: i64,
    pub to_ms: i64,
    pub from: String,
    pub to: String,
    /// `BILLED_KEY=PROVIDER/MODEL` overrides.
    pub mappings: Vec<String>,
    pub output: OutputFormat,
}

pub async fn run(policy: &Policy, request: &Request) -> Result<String, ReconcileError> {
    let open = || {
        File::open(&request.file)
            .map_err(|e| ReconcileError::Csv(format!("{}: {e}", request.file.display())))
    };
    let format = match request.format {
        Some(format) => format,
        None => detect(open()?)?,
    };
    let overrides = parse_mappings(&request.mappings)?;
    // Billed lines are whole days: those of the days the period touches.
    let first_day = day_of_ms(request.from_ms);
    let end_day = day_of_ms(request.to_ms.saturating_add(DAY_MS - 1));
    let billed: Vec<_> = read_export(format, BufReader::new(open()?))?
        .into_iter()
        .filter(|line| Some(line.day) >= first_day && Some(line.day) < end_day)
        .collect();
    let store = Store::open(policy.ledger.url.expose()).await?;
    let metered = metered_days(
        &store,
        request.from_ms,
        request.to_ms,
        &providers(policy, format),
    )
    .await?;
    let lines = reconcile(&billed, &metered, &candidates(policy, format), &overrides);
    render(&lines, format, &request.from, &request.to, request.output)
}

const DAY_MS: i64 = 86_400_000;

fn day_of_ms(ms: i64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.date_naive())
}

/// Tells an export's kind from its header: CUR's `line_item_…` columns, Azure's `MeterName`.
fn detect(file: File) -> Result<ExportFormat, ReconcileError> {
    let mut header = String::new();
    BufReader::new(file)
        .read_line(&mut header)
        .map_err(|e| ReconcileError::Csv(e.to_string()))?;
    let header = header.to_ascii_lowercase();
    if header.contains("line_item_") || header.contains("lineitem/") {
        Ok(ExportFormat::AwsCur)
    } else if header.contains("metername") {
        Ok(ExportFormat::Azure)
    } else {
        Err(ReconcileError::Csv(
            "cannot tell the export's kind from its header: pass --provider-format aws-cur|azure"
                .to_owned(),
        ))
    }
}
