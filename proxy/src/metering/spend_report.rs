//! Reading spend back out of the ledger: the `/admin/spend` JSON (docs/spend.md) and the
//! finance report of `switchyard spend` (CSV or a table).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::budget::{Period, Standing};
use super::ledger::{LedgerError, SpendRow};
use super::money::NanoUsd;
use super::spend::{now_ms, Spend};
use crate::config::{BudgetPeriod, Policy, Team};

/// `/admin/spend`: one team's object, or `{"teams": [...]}` for every team.
pub async fn admin_spend(
    spend: &Spend,
    policy: &Policy,
    team: Option<&str>,
) -> Result<Value, LedgerError> {
    match team {
        Some(name) => {
            let team = policy
                .teams
                .get(name)
                .ok_or_else(|| LedgerError::Query(format!("no team `{name}` in the policy")))?;
            team_spend(spend, team).await
        }
        None => {
            let mut teams = Vec::new();
            for team in policy.teams.values() {
                teams.push(team_spend(spend, team).await?);
            }
            Ok(json!({ "teams": teams }))
        }
    }
}

/// The period `/admin/spend` reports: the budget's current period, else the current month.
fn period_of(team: &Team) -> Period {
    let kind = team.budget.map_or(BudgetPeriod::Monthly, |b| b.period);
    Period::containing(kind, now_ms())
}

async fn team_spend(spend: &Spend, team: &Team) -> Result<Value, LedgerError> {
    let period = period_of(team);
    let rows = match &spend.ledger {
        Some(ledger) => {
            let name = team.name.clone();
            ledger
                .query(std::time::Duration::from_secs(5), move |store| async move {
                    store
                        .spend(period.start_ms, period.end_ms, Some(&name))
                        .await
                })
                .await?
        }
        None => Vec::new(),
    };
    let standing = match team.budget {
        Some(_) => spend.standing(&team.name, period).await?,
        None => Standing {
            spent_usd: NanoUsd::ZERO,
            reserved_usd: spend.book.standing(&team.name, period).reserved_usd,
        },
    };
    Ok(team_json(team, period, &rows, standing))
}

/// Builds one team's object from its ledger rows and budget standing. Amounts are added in
/// nano-dollars; they become JSON numbers (decimal USD) only here.
pub fn team_json(team: &Team, period: Period, rows: &[SpendRow], standing: Standing) -> Value {
    let spent: NanoUsd = rows.iter().map(|r| r.cost_usd).sum();
    let budget = team.budget.map(|b| b.usd);
    // Spend recorded but not yet flushed is in the standing; the larger figure is the truer one.
    let committed = spent.max(if budget.is_some() {
        standing.spent_usd
    } else {
        NanoUsd::ZERO
    });
    let by_model: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "model": r.model, "provider": r.provider, "spent_usd": r.cost_usd.as_usd_f64(),
                "requests": r.requests, "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens, "cached_tokens": r.cached_tokens,
                "cache_write_tokens": r.cache_write_tokens,
            })
        })
        .collect();
    let remaining = budget.map(|b| {
        b.minus_floor_zero(committed + standing.reserved_usd)
            .as_usd_f64()
    });
    json!({
        "team": team.name,
        "period": {"start": period.start_rfc3339(), "end": period.end_rfc3339()},
        "budget_usd": budget.map(NanoUsd::as_usd_f64),
        "alert_at": team.alert_at,
        "spent_usd": spent.as_usd_f64(),
        "reserved_usd": standing.reserved_usd.as_usd_f64(),
        "remaining_usd": remaining,
        "requests": rows.iter().map(|r| r.requests).sum::<i64>(),
        "input_tokens": rows.iter().map(|r| r.input_tokens).sum::<i64>(),
        "output_tokens": rows.iter().map(|r| r.output_tokens).sum::<i64>(),
        "cached_tokens": rows.iter().map(|r| r.cached_tokens).sum::<i64>(),
        "cache_write_tokens": rows.iter().map(|r| r.cache_write_tokens).sum::<i64>(),
        "by_model": by_model,
    })
}

/// Output format of `switchyard spend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Csv,
    Table,
}

const COLUMNS: [&str; 9] = [
    "team",
    "model",
    "provider",
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_usd",
];

/// The finance report: one line per team × model × provider, then a total per team.
pub fn render_report(rows: &[SpendRow], format: ReportFormat) -> String {
    let mut lines: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.team.clone(),
                r.model.clone(),
                r.provider.clone(),
                r.requests.to_string(),
                r.input_tokens.to_string(),
                r.output_tokens.to_string(),
                r.cached_tokens.to_string(),
                r.cache_write_tokens.to_string(),
                r.cost_usd.to_fixed(),
            ]
        })
        .collect();
    let mut totals: BTreeMap<&str, (i64, i64, i64, i64, i64, NanoUsd)> = BTreeMap::new();
    for r in rows {
        let t = totals.entry(r.team.as_str()).or_default();
        *t = (
            t.0 + r.requests,
            t.1 + r.input_tokens,
            t.2 + r.output_tokens,
            t.3 + r.cached_tokens,
            t.4 + r.cache_write_tokens,
            t.5 + r.cost_usd,
        );
    }
    if format == ReportFormat::Table {
        for (team, t) in &totals {
            lines.push([
                (*team).to_owned(),
                "(total)".to_owned(),
                String::new(),
                t.0.to_string(),
                t.1.to_string(),
                t.2.to_string(),
                t.3.to_string(),
                t.4.to_string(),
                t.5.to_fixed(),
            ]);
        }
    }
    let mut out = String::new();
    match format {
        ReportFormat::Csv => {
            out.push_str(&COLUMNS.join(","));
            out.push('\n');
            for line in &lines {
                let cells: Vec<String> = line.iter().map(|c| csv_cell(c)).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
        }
        ReportFormat::Table => {
            let mut widths = COLUMNS.map(str::len);
            for line in &lines {
                for (w, cell) in widths.iter_mut().zip(line) {
                    *w = (*w).max(cell.len());
                }
            }
            let header = COLUMNS.map(str::to_owned);
            for line in std::iter::once(&header).chain(&lines) {
                for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
                    let sep = if i == 0 { "" } else { "  " };
                    // Numbers right-aligned, names left-aligned.
                    let _ = if i >= 3 {
                        write!(out, "{sep}{cell:>w$}")
                    } else {
                        write!(out, "{sep}{cell:<w$}")
                    };
                }
                out.push('\n');
            }
        }
    }
    out
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

/// Parses `2026-11-01` (midnight UTC) or an RFC 3339 instant into Unix milliseconds.
pub fn parse_date(text: &str) -> Result<i64, String> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .ok_or_else(|| format!("invalid date `{text}`"));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("invalid date `{text}`: expected YYYY-MM-DD or an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(team: &str, model: &str, nanos: i64) -> SpendRow {
        SpendRow {
            team: team.to_owned(),
            model: model.to_owned(),
            provider: "p,1".to_owned(),
            requests: 2,
            input_tokens: 10,
            output_tokens: 4,
            cached_tokens: 0,
            cache_write_tokens: 3,
            cost_usd: NanoUsd::from_nanos(nanos),
        }
    }

    #[test]
    fn csv_quotes_and_table_totals() {
        let rows = [row("a", "m1", 500_000_000), row("a", "m2", 250_000_001)];
        let csv = render_report(&rows, ReportFormat::Csv);
        assert_eq!(
            csv.lines().next(),
            Some("team,model,provider,requests,input_tokens,output_tokens,cached_tokens,cache_write_tokens,cost_usd")
        );
        assert!(csv.contains("a,m1,\"p,1\",2,10,4,0,3,0.500000000"), "{csv}");
        let table = render_report(&rows, ReportFormat::Table);
        let total = table
            .lines()
            .find(|l| l.contains("(total)"))
            .unwrap_or_default();
        assert!(total.ends_with("  6  0.750000001"), "{table}");
    }

    #[test]
    fn dates_are_utc_midnight() {
        assert_eq!(parse_date("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_date("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_date("yesterday").is_err());
    }
}
