//! The ledger's side of a reconciliation: requests and cost per UTC day and target.

use chrono::{DateTime, NaiveDate};

use super::MeteredDay;
use crate::metering::ledger::{LedgerError, Store};
use crate::metering::money::NanoUsd;

const DAY_MS: i64 = 86_400_000;

/// Spend per UTC day, provider and target for entries with `from_ms <= at < to_ms`, of the
/// providers named in `providers` only.
pub async fn metered_days(
    store: &Store,
    from_ms: i64,
    to_ms: i64,
    providers: &[String],
) -> Result<Vec<MeteredDay>, LedgerError> {
    type Row = (i64, String, String, i64, i64);
    // SQLite's SUM of integers is an integer; PostgreSQL's SUM(bigint) is numeric.
    let rows: Vec<Row> = match store {
        Store::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT at_ms / 86400000, provider, target, COUNT(*), SUM(cost_nano_usd) \
                 FROM switchyard_ledger WHERE at_ms >= $1 AND at_ms < $2 \
                 GROUP BY at_ms / 86400000, provider, target",
            )
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(pool)
            .await?
        }
        Store::Postgres(pool) => {
            sqlx::query_as(
                "SELECT at_ms / 86400000, provider, target, COUNT(*)::BIGINT, \
                 SUM(cost_nano_usd)::BIGINT FROM switchyard_ledger \
                 WHERE at_ms >= $1 AND at_ms < $2 GROUP BY at_ms / 86400000, provider, target",
            )
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .filter(|(_, provider, ..)| providers.contains(provider))
        .filter_map(|(day, provider, target, requests, cost)| {
            Some(MeteredDay {
                day: day_date(day)?,
                provider,
                target,
                requests,
                cost: NanoUsd::from_nanos(cost),
            })
        })
        .collect())
}

fn day_date(day: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(day.checked_mul(DAY_MS)?).map(|t| t.date_naive())
}
