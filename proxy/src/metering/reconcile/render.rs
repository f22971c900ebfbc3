//! The reconciliation as a table (with a total), CSV, or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::{ExportFormat, ReconcileError, Reconciled};
use crate::metering::money::NanoUsd;

/// Output format of `switchyard spend --reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

const COLUMNS: [&str; 7] = [
    "day",
    "target",
    "requests",
    "metered_usd",
    "billed_usd",
    "difference_usd",
    "difference_pct",
];

/// The JSON answer.
#[derive(Debug, Serialize)]
struct Report<'a> {
    format: &'static str,
    from: &'a str,
    to: &'a str,
    lines: Vec<Line>,
    total: Total,
}

#[derive(Debug, Serialize)]
struct Line {
    day: String,
    target: String,
    requests: i64,
    metered_usd: f64,
    billed_usd: f64,
    difference_usd: f64,
}

#[derive(Debug, Serialize)]
struct Total {
    requests: i64,
    metered_usd: f64,
    billed_usd: f64,
    difference_usd: f64,
}

/// Renders the lines; `from` and `to` are the period as given on the command line.
pub fn render(
    lines: &[Reconciled],
    export: ExportFormat,
    from: &str,
    to: &str,
    format: OutputFormat,
) -> Result<String, ReconcileError> {
    let requests: i64 = lines.iter().map(|l| l.requests).sum();
    let metered: NanoUsd = lines.iter().map(|l| l.metered).sum();
    let billed: NanoUsd = lines.iter().map(|l| l.billed).sum();
    match format {
        OutputFormat::Json => {
            let report = Report {
                format: export.label(),
                from,
                to,
                lines: lines
                    .iter()
                    .map(|l| Line {
                        day: l.day.to_string(),
                        target: l.target.clone(),
                        requests: l.requests,
                        metered_usd: l.metered.as_usd_f64(),
                        billed_usd: l.billed.as_usd_f64(),
                        difference_usd: l.difference().as_usd_f64(),
                    })
                    .collect(),
                total: Total {
                    requests,
                    metered_usd: metered.as_usd_f64(),
                    billed_usd: billed.as_usd_f64(),
                    difference_usd: (billed - metered).as_usd_f64(),
                },
            };
            serde_json::to_string_pretty(&report)
                .map(|json| json + "\n")
                .map_err(|e| ReconcileError::Csv(e.to_string()))
        }
        OutputFormat::Csv => {
            let mut out = csv::Writer::from_writer(Vec::new());
            out.write_record(COLUMNS)?;
            for line in lines {
                out.write_record(cells(line))?;
            }
            let bytes = out
                .into_inner()
                .map_err(|e| ReconcileError::Csv(e.to_string()))?;
            String::from_utf8(bytes).map_err(|e| ReconcileError::Csv(e.to_string()))
        }
        OutputFormat::Table => {
            let mut rows: Vec<[String; 7]> = lines.iter().map(cells).collect();
            rows.push([
                "(total)".to_owned(),
                String::new(),
                requests.to_string(),
                metered.to_fixed(),
                billed.to_fixed(),
                (billed - metered).to_fixed(),
                percent(billed - metered, metered),
            ]);
            Ok(table(&rows))
        }
    }
}

fn cells(line: &Reconciled) -> [String; 7] {
    [
        line.day.to_string(),
        line.target.clone(),
        line.requests.to_string(),
        line.metered.to_fixed(),
        line.billed.to_fixed(),
        line.difference().to_fixed(),
        percent(line.difference(), line.metered),
    ]
}

/// The difference as a percentage of what was metered (empty when nothing was).
fn percent(difference: NanoUsd, metered: NanoUsd) -> String {
    if metered == NanoUsd::ZERO {
        return String::new();
    }
    // Display only: a ratio, not money.
    let ratio = difference.nanos() as f64 / metered.nanos() as f64 * 100.0;
    format!("{ratio:+.2}")
}

fn table(rows: &[[String; 7]]) -> String {
    let mut widths = COLUMNS.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let header = COLUMNS.map(str::to_owned);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            // Numbers right-aligned, names left-aligned.
            let _ = if i >= 2 {
                write!(out, "{sep}{cell:>w$}")
            } else {
                write!(out, "{sep}{cell:<w$}")
            };
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn lines() -> Vec<Reconciled> {
        let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        vec![
            Reconciled {
                day,
                target: "east/claude, v1".to_owned(),
                requests: 3,
                metered: NanoUsd::from_nanos(2_000_000_000),
                billed: NanoUsd::from_nanos(2_100_000_001),
            },
            Reconciled {
                day,
                target: "(unmapped) Llama3".to_owned(),
                requests: 0,
                metered: NanoUsd::ZERO,
                billed: NanoUsd::from_nanos(5),
            },
        ]
    }

    #[test]
    fn table_csv_and_json_carry_exact_amounts() {
        let table = render(
            &lines(),
            ExportFormat::AwsCur,
            "a",
            "b",
            OutputFormat::Table,
        )
        .unwrap();
        let total: Vec<&str> = table.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(
            total,
            [
                "(total)",
                "3",
                "2.000000000",
                "2.100000006",
                "0.100000006",
                "+5.00"
            ],
            "{table}"
        );
        let csv = render(&lines(), ExportFormat::AwsCur, "a", "b", OutputFormat::Csv).unwrap();
        assert_eq!(csv.lines().next(), Some(COLUMNS.join(",").as_str()));
        assert!(
            csv.contains(
                "2026-11-03,\"east/claude, v1\",3,2.000000000,2.100000001,0.100000001,+5.00"
            ),
            "{csv}"
        );
        assert!(csv.contains("(unmapped) Llama3,0,0.000000000,0.000000005,0.000000005,\n"));
        let json = render(&lines(), ExportFormat::Azure, "a", "b", OutputFormat::Json).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["format"], "azure");
        assert_eq!(value["lines"][0]["billed_usd"], 2.100000001);
        assert_eq!(value["total"]["difference_usd"], 0.100000006);
        assert_eq!(value["total"]["requests"], 3);
    }
}
