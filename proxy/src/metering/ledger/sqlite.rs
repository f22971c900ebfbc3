//! The embedded ledger: one SQLite file in WAL mode, for a single replica.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool};

use super::{LedgerEntry, LedgerError};

/// Schema versions, applied in order at startup and recorded in `switchyard_migrations`.
const MIGRATIONS: &super::migrate::Migrations = &[
    (
        1,
        &[
            super::LEDGER_TABLE,
            super::LEDGER_INDEX_TEAM_AT,
            super::LEDGER_INDEX_AT,
        ],
    ),
    (2, &[super::LEDGER_ADD_API]),
    (3, &[super::LEDGER_ADD_CACHE_WRITE]),
    (4, MONEY_AS_INTEGERS),
    (5, super::LEDGER_ADD_AUDIT),
    (6, crate::conversations::schema::MIGRATION_6),
    (7, &[super::LEDGER_ADD_RESUMED]),
];

/// Schema version 4: costs in integer nano-dollars (docs/spend.md, "Units"). Each existing
/// row's float cost is rounded to the nearest nano-dollar, in place; the float column goes,
/// so nothing can read or add floats any more (SQLite ≥ 3.35 drops columns; sqlx bundles a
/// newer one).
const MONEY_AS_INTEGERS: &[&str] = &[
    "ALTER TABLE switchyard_ledger ADD COLUMN cost_nano_usd BIGINT NOT NULL DEFAULT 0",
    "UPDATE switchyard_ledger SET cost_nano_usd = CAST(ROUND(cost_usd * 1000000000.0) AS INTEGER)",
    "ALTER TABLE switchyard_ledger DROP COLUMN cost_usd",
];

pub async fn open(url: &str) -> Result<SqlitePool, LedgerError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    // Every connection to `sqlite::memory:` is its own database: keep exactly one.
    let connections = if url.contains(":memory:") { 1 } else { 4 };
    let pool = SqlitePoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

async fn migrate(pool: &SqlitePool) -> Result<(), LedgerError> {
    let mut tx = pool.begin().await?;
    super::migrate::apply(&mut tx, MIGRATIONS).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes `entries` in one transaction, as multi-row INSERTs of [`CHUNK`] rows and then of
/// the powers of two that make up the rest (a batch of 300: 128, 128, 32, 8, 4): eight
/// statement texts in all, each built once and prepared once per connection (sqlx caches
/// statements by their text), and never more bind parameters than SQLite allows.
pub async fn insert(pool: &SqlitePool, entries: &[LedgerEntry]) -> Result<(), LedgerError> {
    let mut tx = pool.begin().await?;
    let mut rest = entries;
    while !rest.is_empty() {
        let rows = chunk_rows(rest.len());
        let (chunk, after) = rest.split_at(rows);
        let mut query = sqlx::query(insert_sql(rows));
        for entry in chunk {
            query = bind_entry(query, entry);
        }
        query.execute(&mut *tx).await?;
        rest = after;
    }
    tx.commit().await?;
    Ok(())
}

/// Rows per full multi-row INSERT: 128 × 23 columns = 2,944 bind parameters, far under
/// SQLite's limit of 32,766.
pub const CHUNK: usize = 128;
// `insert_sql` keeps one statement per power of two up to the chunk.
const _: () = assert!(CHUNK.is_power_of_two());

/// The columns written, in the order [`bind_entry`] binds them.
const COLUMNS: [&str; 23] = [
    "entry_id",
    "request_id",
    "at_ms",
    "team",
    "key_id",
    "model",
    "provider",
    "target",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_nano_usd",
    "latency_ms",
    "ttft_ms",
    "attempts",
    "status",
    "usage_estimated",
    "api",
    "cache_write_tokens",
    "resumed",
    "attempt_chain",
    "policy_version",
    "client_request_id",
];

/// How many of `left` rows the next statement writes: a full chunk, else the largest power
/// of two that fits.
fn chunk_rows(left: usize) -> usize {
    if left >= CHUNK {
        CHUNK
    } else {
        1 << left.ilog2()
    }
}

/// The INSERT of `rows` rows (`rows` is [`CHUNK`] or a power of two below it), built once.
fn insert_sql(rows: usize) -> &'static str {
    const SIZES: usize = CHUNK.ilog2() as usize + 1;
    static SQL: [OnceLock<String>; SIZES] = [const { OnceLock::new() }; SIZES];
    let slot = rows.ilog2() as usize;
    SQL[slot].get_or_init(|| {
        let row = format!("({})", vec!["?"; COLUMNS.len()].join(", "));
        format!(
            "INSERT INTO switchyard_ledger ({}) VALUES {} ON CONFLICT (entry_id) DO NOTHING",
            COLUMNS.join(", "),
            vec![row; 1 << slot].join(", ")
        )
    })
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

fn bind_entry<'q>(query: Query<'q>, e: &'q LedgerEntry) -> Query<'q> {
    query
        .bind(&e.entry_id)
        .bind(&e.request_id)
        .bind(e.at_ms)
        .bind(&e.team)
        .bind(&e.key_id)
        .bind(&e.model)
        .bind(&e.provider)
        .bind(&e.target)
        .bind(e.input_tokens)
        .bind(e.output_tokens)
        .bind(e.cached_tokens)
        .bind(e.cost_usd.nanos())
        .bind(e.latency_ms)
        .bind(e.ttft_ms)
        .bind(e.attempts)
        .bind(&e.status)
        .bind(e.usage_estimated)
        .bind(&e.api)
        .bind(e.cache_write_tokens)
        .bind(e.resumed)
        .bind(&e.attempt_chain)
        .bind(&e.policy_version)
        .bind(&e.client_request_id)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::Store;
    use super::*;
    use crate::metering::NanoUsd;

    fn usd(usd: f64) -> NanoUsd {
        NanoUsd::from_usd_f64(usd).unwrap()
    }

    pub fn entry(id: &str, team: &str, at_ms: i64, cost: f64) -> LedgerEntry {
        LedgerEntry {
            entry_id: id.to_owned(),
            request_id: format!("req-{id}"),
            at_ms,
            team: team.to_owned(),
            key_id: format!("{team}#0000"),
            model: "chat".to_owned(),
            api: "chat".to_owned(),
            provider: "sim-a".to_owned(),
            target: "sim-a/up-a".to_owned(),
            input_tokens: 10,
            output_tokens: 5,
            cached_tokens: 0,
            cache_write_tokens: 3,
            cost_usd: usd(cost),
            latency_ms: 12,
            ttft_ms: Some(3),
            attempts: 1,
            status: "200".to_owned(),
            usage_estimated: false,
            resumed: false,
            attempt_chain: "sim-a/up-a=ok".to_owned(),
            policy_version: "0123456789ab".to_owned(),
            client_request_id: Some(format!("client-{id}")),
            reservation_id: None,
        }
    }

    #[tokio::test]
    async fn in_memory_ledger_keeps_its_schema() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store.insert(&[entry("a", "t", 1, 0.5)]).await.unwrap();
        assert_eq!(store.spend(0, 10, None).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn sqlite_file_migrates_twice_and_aggregates() {
        let dir = std::env::temp_dir().join(format!("sy-ledger-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/ledger.db", dir.display());
        let store = Store::open(&url).await.unwrap();
        let again = Store::open(&url).await.unwrap();
        store
            .insert(&[entry("a", "t", 1_000, 0.5), entry("b", "t", 2_000, 0.25)])
            .await
            .unwrap();
        // A retried batch does not count twice.
        again.insert(&[entry("b", "t", 2_000, 0.25)]).await.unwrap();
        let rows = store.spend(0, 10_000, Some("t")).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].requests, rows[0].input_tokens), (2, 20));
        assert_eq!(rows[0].cache_write_tokens, 6);
        assert_eq!(rows[0].cost_usd, usd(0.75));
        assert!(store.spend(0, 10_000, Some("x")).await.unwrap().is_empty());
        let days = store.spend_by_day(0).await.unwrap();
        assert_eq!(days, vec![("t".to_owned(), 0, usd(0.75))]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A ledger file in a fresh temp dir with only the migrations of `versions` applied:
    /// its dir, its URL and a one-connection pool on it.
    async fn old_ledger(versions: &[i64]) -> (std::path::PathBuf, String, SqlitePool) {
        let dir = std::env::temp_dir().join(format!("sy-ledger-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/ledger.db", dir.display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let old = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let mut tx = old.begin().await.unwrap();
        let applied: Vec<_> = MIGRATIONS
            .iter()
            .filter(|(version, _)| versions.contains(version))
            .copied()
            .collect();
        super::super::migrate::apply(&mut tx, &applied)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (dir, url, old)
    }

    #[tokio::test]
    async fn a_version_1_ledger_gains_the_cache_write_column() {
        // A ledger as the first schema left it, with one row.
        let (dir, url, old) = old_ledger(&[1]).await;
        sqlx::query(
            "INSERT INTO switchyard_ledger (entry_id, request_id, at_ms, team, key_id, model, \
             provider, target, input_tokens, output_tokens, cached_tokens, cost_usd, latency_ms, \
             ttft_ms, attempts, status, usage_estimated) \
             VALUES ('old', 'r', 1, 't', 'k', 'm', 'p', 'p/m', 1, 1, 0, 0.1, 1, NULL, 1, '200', 0)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;

        let store = Store::open(&url).await.unwrap();
        let mut new = entry("new", "t", 2, 0.2);
        new.cache_write_tokens = 1_024;
        new.resumed = true;
        store.insert(&[new]).await.unwrap();
        let Store::Sqlite(pool) = &store else {
            unreachable!("a sqlite url")
        };
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT entry_id, cache_write_tokens FROM switchyard_ledger ORDER BY entry_id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(rows, vec![("new".to_owned(), 1_024), ("old".to_owned(), 0)]);
        // Version 7: the resumed flag, false for rows written before it.
        let resumed: Vec<(String, bool)> =
            sqlx::query_as("SELECT entry_id, resumed FROM switchyard_ledger ORDER BY entry_id")
                .fetch_all(pool)
                .await
                .unwrap();
        assert_eq!(
            resumed,
            vec![("new".to_owned(), true), ("old".to_owned(), false)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_float_ledger_is_migrated_in_place_to_the_nano_dollar() {
        // A ledger as schema version 3 left it: costs in floats.
        let (dir, url, old) = old_ledger(&[1, 2, 3]).await;
        let costs = crate::metering::ledger::postgres::tests::float_costs_for_tests();
        for (i, cost) in costs.iter().enumerate() {
            let (team, at_ms) = match i % 3 {
                0 => ("a", 1_000 + i as i64),
                1 => ("a", 86_400_000 + i as i64),
                _ => ("b", 2_000 + i as i64),
            };
            sqlx::query(
                "INSERT INTO switchyard_ledger (entry_id, request_id, at_ms, team, key_id, model, \
                 provider, target, input_tokens, output_tokens, cached_tokens, cost_usd, \
                 latency_ms, ttft_ms, attempts, status, usage_estimated, api, cache_write_tokens) \
                 VALUES ($1, 'r', $2, $3, 'k', 'm', 'p', 'p/m', 1, 1, 0, $4, 1, NULL, 1, '200', 0, \
                 'chat', 2)",
            )
            .bind(format!("e{i}"))
            .bind(at_ms)
            .bind(team)
            .bind(*cost)
            .execute(&old)
            .await
            .unwrap();
        }
        let float_total: f64 = sqlx::query_scalar("SELECT SUM(cost_usd) FROM switchyard_ledger")
            .fetch_one(&old)
            .await
            .unwrap();
        old.close().await;

        let expected = |pick: &dyn Fn(usize) -> bool| -> NanoUsd {
            costs
                .iter()
                .enumerate()
                .filter(|(i, _)| pick(*i))
                .map(|(_, c)| usd(*c))
                .sum()
        };
        let store = Store::open(&url).await.unwrap();
        let rows = store.spend(0, 172_800_000, None).await.unwrap();
        let by_team = |team: &str| rows.iter().find(|r| r.team == team).unwrap().cost_usd;
        assert_eq!(by_team("a"), expected(&|i| i % 3 != 2));
        assert_eq!(by_team("b"), expected(&|i| i % 3 == 2));
        let total = by_team("a") + by_team("b");
        assert_eq!(total, expected(&|_| true));
        // The float sum agrees to within a nano-dollar per row, but not to the nano-dollar.
        assert!((total.as_usd_f64() - float_total).abs() < 60e-9);
        let days = store.spend_by_day(0).await.unwrap();
        assert!(days.contains(&("a".to_owned(), 0, expected(&|i| i % 3 == 0))));
        assert!(days.contains(&("a".to_owned(), 1, expected(&|i| i % 3 == 1))));
        assert_eq!(rows[0].cache_write_tokens, 2 * rows[0].requests);
        // Opening it again migrates nothing twice; new entries add in integers.
        drop(store);
        let store = Store::open(&url).await.unwrap();
        let mut new = entry("new", "b", 3_000, 0.000_000_001);
        new.cost_usd = NanoUsd::from_nanos(1);
        store.insert(&[new]).await.unwrap();
        let rows = store.spend(0, 172_800_000, Some("b")).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.cost_usd).sum::<NanoUsd>(),
            expected(&|i| i % 3 == 2) + NanoUsd::from_nanos(1)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn migrations_are_listed_in_version_order() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
    }

    #[tokio::test]
    async fn a_version_7_ledger_without_version_5_gains_the_audit_columns() {
        // A ledger migrated by a build that had versions 6 and 7 but not yet 5.
        let (dir, url, old) = old_ledger(&[1, 2, 3, 4, 6, 7]).await;
        sqlx::query(
            "INSERT INTO switchyard_ledger (entry_id, request_id, at_ms, team, key_id, model, \
             provider, target, input_tokens, output_tokens, cached_tokens, cost_nano_usd, \
             latency_ms, ttft_ms, attempts, status, usage_estimated, api, cache_write_tokens, \
             resumed) \
             VALUES ('old', 'r', 1, 't', 'k', 'm', 'p', 'p/m', 1, 1, 0, 7, 1, NULL, 1, '200', 0, \
             'chat', 0, 1)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;

        let store = Store::open(&url).await.unwrap();
        store.insert(&[entry("new", "t", 2, 0.2)]).await.unwrap();
        let Store::Sqlite(pool) = &store else {
            unreachable!("a sqlite url")
        };
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM switchyard_migrations ORDER BY version")
                .fetch_all(pool)
                .await
                .unwrap();
        assert_eq!(applied.len(), 7, "{applied:?}");
        type Audit = (String, String, String, Option<String>, bool);
        let rows: Vec<Audit> = sqlx::query_as(
            "SELECT entry_id, attempt_chain, policy_version, client_request_id, resumed \
             FROM switchyard_ledger ORDER BY entry_id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![
                (
                    "new".to_owned(),
                    "sim-a/up-a=ok".to_owned(),
                    "0123456789ab".to_owned(),
                    Some("client-new".to_owned()),
                    false
                ),
                ("old".to_owned(), String::new(), String::new(), None, true),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The batch sizes around a chunk's edges, and a large batch.
    pub const BATCH_SIZES: [usize; 5] = [1, CHUNK - 1, CHUNK, CHUNK + 1, 1000];

    /// `n` distinct entries, each field telling which one it is.
    pub fn numbered_entries(n: usize) -> Vec<LedgerEntry> {
        (0..n)
            .map(|i| {
                let mut e = entry(&format!("e{i:05}"), "t", i as i64, 0.0);
                e.cost_usd = NanoUsd::from_nanos(i as i64 + 1);
                e.input_tokens = i as i64;
                e.ttft_ms = (i % 2 == 0).then_some(i as i64);
                e.client_request_id = (i % 3 != 0).then(|| format!("c{i}"));
                e.attempt_chain = format!("p/m=server_error, q/n=ok #{i}");
                e
            })
            .collect()
    }

    #[tokio::test]
    async fn batches_around_the_chunk_size_are_written_whole_and_once() {
        for n in BATCH_SIZES {
            let store = Store::open("sqlite::memory:").await.unwrap();
            let entries = numbered_entries(n);
            store.insert(&entries).await.unwrap();
            // A retried batch (its first commit landed) adds nothing.
            store.insert(&entries).await.unwrap();
            let read = store
                .audit(&super::super::audit::AuditQuery::all(0, i64::MAX, n + 1))
                .await
                .unwrap();
            assert_eq!(read.len(), n, "batch of {n}");
            for (row, e) in read.iter().zip(&entries) {
                assert_eq!(row.entry_id, e.entry_id);
                assert_eq!(row.input_tokens, e.input_tokens);
                assert_eq!(row.cost_usd, e.cost_usd);
                assert_eq!(row.ttft_ms, e.ttft_ms);
                assert_eq!(row.client_request_id, e.client_request_id);
                assert_eq!(row.attempt_chain, e.attempt_chain);
            }
        }
    }

    #[test]
    fn a_batch_is_split_into_a_few_statement_shapes() {
        let split = |mut n: usize| {
            let mut sizes = Vec::new();
            while n > 0 {
                sizes.push(chunk_rows(n));
                n -= chunk_rows(n);
            }
            sizes
        };
        assert_eq!(split(1), [1]);
        assert_eq!(split(CHUNK - 1), [64, 32, 16, 8, 4, 2, 1]);
        assert_eq!(split(CHUNK), [CHUNK]);
        assert_eq!(split(CHUNK + 1), [CHUNK, 1]);
        assert_eq!(split(300), [CHUNK, CHUNK, 32, 8, 4]);
        // The same text every time, so the prepared statement is reused.
        assert!(std::ptr::eq(insert_sql(4), insert_sql(4)));
        assert_eq!(
            insert_sql(CHUNK).matches('?').count(),
            CHUNK * COLUMNS.len()
        );
    }
}
