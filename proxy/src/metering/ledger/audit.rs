//! Reading the ledger back one row per request, for the audit trail (`switchyard audit`
//! and `GET /admin/requests`, docs/operations.md "Audit trail"): filtered by time, team and
//! model, in (start time, entry id) order, a page at a time after a keyset cursor, so that
//! pages never skip or repeat a row however deep they go.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{LedgerEntry, LedgerError, Store};
use crate::metering::money::NanoUsd;

/// Which rows to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Start times with `from_ms <= at < to_ms` (Unix milliseconds, UTC).
    pub from_ms: i64,
    pub to_ms: i64,
    pub team: Option<String>,
    /// The model name the client asked for.
    pub model: Option<String>,
    /// Only rows after this one (the last row of the previous page).
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl AuditQuery {
    /// Every team and model in `[from_ms, to_ms)`, the first `limit` rows.
    pub fn all(from_ms: i64, to_ms: i64, limit: usize) -> Self {
        Self {
            from_ms,
            to_ms,
            team: None,
            model: None,
            after: None,
            limit,
        }
    }
}

/// A position in the audit order: a row's start time and entry id (unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at_ms: i64,
    pub entry_id: String,
}

impl LedgerEntry {
    /// Where the next audit page starts, when this entry ends one.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            at_ms: self.at_ms,
            entry_id: self.entry_id.clone(),
        }
    }
}

const SELECT: &str = "SELECT entry_id, request_id, client_request_id, at_ms, team, key_id, api, \
    model, provider, target, attempt_chain, attempts, status, input_tokens, output_tokens, \
    cached_tokens, cache_write_tokens, cost_nano_usd, latency_ms, ttft_ms, policy_version, \
    resumed, usage_estimated FROM switchyard_ledger";

/// The keyset condition `(at_ms, entry_id) > ($5, $6)` spelled out, which both backends
/// serve from the `(team, at_ms)` and `(at_ms)` indexes.
const SQLITE_AUDIT: &str = "WHERE at_ms >= $1 AND at_ms < $2 AND ($3 IS NULL OR team = $3) \
    AND ($4 IS NULL OR model = $4) AND (at_ms > $5 OR (at_ms = $5 AND entry_id > $6)) \
    ORDER BY at_ms, entry_id LIMIT $7";
const POSTGRES_AUDIT: &str = "WHERE at_ms >= $1 AND at_ms < $2 \
    AND ($3::TEXT IS NULL OR team = $3) AND ($4::TEXT IS NULL OR model = $4) \
    AND (at_ms > $5 OR (at_ms = $5 AND entry_id > $6)) ORDER BY at_ms, entry_id LIMIT $7";

impl Store {
    /// The rows `query` selects, at most `query.limit`, in (start time, entry id) order.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<LedgerEntry>, LedgerError> {
        let (after_ms, after_id) = match &query.after {
            Some(cursor) => (cursor.at_ms, cursor.entry_id.clone()),
            // Before every row: `at_ms >= from_ms` already bounds the start.
            None => (i64::MIN, String::new()),
        };
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        // The same text per backend every time, so each connection prepares it once.
        match self {
            Store::Sqlite(pool) => {
                let sql = format!("{SELECT} {SQLITE_AUDIT}");
                let rows = sqlx::query(&sql)
                    .bind(query.from_ms)
                    .bind(query.to_ms)
                    .bind(query.team.as_deref())
                    .bind(query.model.as_deref())
                    .bind(after_ms)
                    .bind(after_id)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                Ok(rows.iter().map(audit_row).collect::<Result<_, _>>()?)
            }
            Store::Postgres(pool) => {
                let sql = format!("{SELECT} {POSTGRES_AUDIT}");
                let rows = sqlx::query(&sql)
                    .bind(query.from_ms)
                    .bind(query.to_ms)
                    .bind(query.team.as_deref())
                    .bind(query.model.as_deref())
                    .bind(after_ms)
                    .bind(after_id)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                Ok(rows.iter().map(audit_row).collect::<Result<_, _>>()?)
            }
        }
    }
}

/// Decodes one row of [`SELECT`], on either backend. A reservation is settled when its
/// entry is written, so an entry read back has none.
fn audit_row<R>(row: &R) -> Result<LedgerEntry, sqlx::Error>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(LedgerEntry {
        entry_id: row.try_get("entry_id")?,
        request_id: row.try_get("request_id")?,
        client_request_id: row.try_get("client_request_id")?,
        at_ms: row.try_get("at_ms")?,
        team: row.try_get("team")?,
        key_id: row.try_get("key_id")?,
        api: row.try_get("api")?,
        model: row.try_get("model")?,
        provider: row.try_get("provider")?,
        target: row.try_get("target")?,
        attempt_chain: row.try_get("attempt_chain")?,
        attempts: row.try_get("attempts")?,
        status: row.try_get("status")?,
        input_tokens: row.try_get("input_tokens")?,
        output_tokens: row.try_get("output_tokens")?,
        cached_tokens: row.try_get("cached_tokens")?,
        cache_write_tokens: row.try_get("cache_write_tokens")?,
        cost_usd: NanoUsd::from_nanos(row.try_get("cost_nano_usd")?),
        latency_ms: row.try_get("latency_ms")?,
        ttft_ms: row.try_get("ttft_ms")?,
        policy_version: row.try_get("policy_version")?,
        resumed: row.try_get("resumed")?,
        usage_estimated: row.try_get("usage_estimated")?,
        reservation_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::ledger::sqlite::tests::entry;

    /// Rows of two teams and two models, several sharing a start time.
    async fn filled() -> Store {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let mut entries = Vec::new();
        for i in 0..30 {
            let team = if i % 3 == 0 { "b" } else { "a" };
            let mut e = entry(&format!("id{i:02}"), team, 1_000 + (i / 4) as i64, 0.1);
            if i % 5 == 0 {
                e.model = "other".to_owned();
            }
            entries.push(e);
        }
        // Out of order, so the order read back is the query's.
        entries.reverse();
        store.insert(&entries).await.unwrap();
        store
    }

    #[tokio::test]
    async fn pages_follow_the_cursor_and_return_every_row_once() {
        let store = filled().await;
        let mut query = AuditQuery {
            team: Some("a".to_owned()),
            ..AuditQuery::all(0, 10_000, 3)
        };
        let mut seen = Vec::new();
        loop {
            let page = store.audit(&query).await.unwrap();
            assert!(page.len() <= 3);
            let Some(last) = page.last() else { break };
            query.after = Some(last.cursor());
            seen.extend(page.into_iter().map(|r| (r.at_ms, r.entry_id, r.team)));
        }
        assert_eq!(seen.len(), 20, "{seen:?}");
        assert!(seen
            .windows(2)
            .all(|w| (w[0].0, &w[0].1) < (w[1].0, &w[1].1)));
        assert!(seen.iter().all(|(_, _, team)| team == "a"));
    }

    #[tokio::test]
    async fn time_and_model_filters_apply() {
        let store = filled().await;
        let other = AuditQuery {
            model: Some("other".to_owned()),
            ..AuditQuery::all(0, 10_000, 100)
        };
        let rows = store.audit(&other).await.unwrap();
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().all(|r| r.model == "other"));
        // [1001, 1003): rows 4..12.
        let window = store.audit(&AuditQuery::all(1_001, 1_003, 100)).await;
        let ids: Vec<String> = window.unwrap().into_iter().map(|r| r.entry_id).collect();
        assert_eq!(ids.first().map(String::as_str), Some("id04"));
        assert_eq!(ids.len(), 8, "{ids:?}");
    }
}
