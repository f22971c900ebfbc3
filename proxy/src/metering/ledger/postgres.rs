//! The shared ledger: PostgreSQL, for several replicas. Besides the entries it holds the
//! fleet's budget state: per team and period the USD spent (updated in the same transaction
//! as the entries), and the reservations of requests in flight (with an expiry, so a replica
//! killed mid-request cannot hold budget forever). Every change to one team's budget state
//! runs under a transaction-scoped advisory lock on the team, so reservations are atomic
//! across replicas.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::{LedgerEntry, LedgerError};
use crate::metering::budget::{Period, Standing};
use crate::metering::money::NanoUsd;

/// Schema versions, applied in order under an advisory lock (replicas may start together).
const MIGRATIONS: &super::migrate::Migrations = &[
    (
        1,
        &[
            super::LEDGER_TABLE,
            super::LEDGER_INDEX_TEAM_AT,
            super::LEDGER_INDEX_AT,
            "CREATE TABLE IF NOT EXISTS switchyard_budget_accounts (
            team TEXT NOT NULL,
            period_start BIGINT NOT NULL,
            period_end BIGINT NOT NULL,
            spent_usd DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (team, period_start, period_end)
        )",
            "CREATE TABLE IF NOT EXISTS switchyard_budget_reservations (
            id TEXT PRIMARY KEY,
            team TEXT NOT NULL,
            amount_usd DOUBLE PRECISION NOT NULL,
            expires_ms BIGINT NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS switchyard_budget_reservations_team
            ON switchyard_budget_reservations (team, expires_ms)",
        ],
    ),
    (2, &[super::LEDGER_ADD_API]),
    (3, &[super::LEDGER_ADD_CACHE_WRITE]),
    (4, MONEY_AS_INTEGERS),
    (5, super::LEDGER_ADD_AUDIT),
    (6, crate::conversations::schema::MIGRATION_6),
    (7, &[super::LEDGER_ADD_RESUMED]),
];

/// Schema version 4: money in integer nano-dollars (docs/spend.md, "Units"), in place. Each
/// ledger row's float cost is rounded to the nearest nano-dollar; the budget accounts are
/// then recomputed from those rows (not rounded from their own float sums), so the accounts
/// and the ledger agree to the nano-dollar; live reservations are rounded up.
/// `BIGINT` rather than `NUMERIC`: the same type and arithmetic as SQLite, 8 bytes, and
/// ±9.2 billion USD of range, which no ledger total approaches.
const MONEY_AS_INTEGERS: &[&str] = &[
    "ALTER TABLE switchyard_ledger ALTER COLUMN cost_usd TYPE BIGINT \
     USING ROUND(cost_usd * 1000000000.0::DOUBLE PRECISION)::BIGINT",
    "ALTER TABLE switchyard_ledger RENAME COLUMN cost_usd TO cost_nano_usd",
    "ALTER TABLE switchyard_budget_accounts ALTER COLUMN spent_usd TYPE BIGINT USING 0",
    "ALTER TABLE switchyard_budget_accounts RENAME COLUMN spent_usd TO spent_nano_usd",
    "UPDATE switchyard_budget_accounts a SET spent_nano_usd = COALESCE((\
     SELECT SUM(l.cost_nano_usd) FROM switchyard_ledger l \
     WHERE l.team = a.team AND l.at_ms >= a.period_start AND l.at_ms < a.period_end), 0)::BIGINT",
    "ALTER TABLE switchyard_budget_reservations ALTER COLUMN amount_usd TYPE BIGINT \
     USING CEIL(amount_usd * 1000000000.0::DOUBLE PRECISION)::BIGINT",
    "ALTER TABLE switchyard_budget_reservations RENAME COLUMN amount_usd TO amount_nano_usd",
];

/// Key of the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x5357_4c45_4447_4552;

pub async fn open(url: &str) -> Result<PgPool, LedgerError> {
    let options = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

async fn migrate(pool: &PgPool) -> Result<(), LedgerError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    super::migrate::apply(&mut tx, MIGRATIONS).await?;
    tx.commit().await?;
    Ok(())
}

async fn lock_team(tx: &mut Transaction<'_, Postgres>, team: &str) -> Result<(), LedgerError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 5318))")
        .bind(team)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes entries and settles their budget effects in one transaction of three statements
/// whatever the batch size: the entries are inserted from arrays (one multi-row INSERT whose
/// text never changes, so each connection prepares it once, and no bind-parameter limit to
/// chunk around), each newly inserted entry's
/// cost is added to every budget account whose period contains it, and the entries'
/// reservations are removed.
pub async fn insert(pool: &PgPool, entries: &[LedgerEntry]) -> Result<(), LedgerError> {
    let mut tx = pool.begin().await?;
    // Locks in a fixed order, so two writers cannot deadlock.
    let teams: BTreeSet<&str> = entries.iter().map(|e| e.team.as_str()).collect();
    for team in teams {
        lock_team(&mut tx, team).await?;
    }
    let text = |f: fn(&LedgerEntry) -> &String| -> Vec<String> {
        entries.iter().map(|e| f(e).clone()).collect()
    };
    let int = |f: fn(&LedgerEntry) -> i64| -> Vec<i64> { entries.iter().map(f).collect() };
    sqlx::query(INSERT_BATCH)
        .bind(text(|e| &e.entry_id))
        .bind(text(|e| &e.request_id))
        .bind(int(|e| e.at_ms))
        .bind(text(|e| &e.team))
        .bind(text(|e| &e.key_id))
        .bind(text(|e| &e.model))
        .bind(text(|e| &e.provider))
        .bind(text(|e| &e.target))
        .bind(int(|e| e.input_tokens))
        .bind(int(|e| e.output_tokens))
        .bind(int(|e| e.cached_tokens))
        .bind(
            entries
                .iter()
                .map(|e| e.cost_usd.nanos())
                .collect::<Vec<i64>>(),
        )
        .bind(int(|e| e.latency_ms))
        .bind(
            entries
                .iter()
                .map(|e| e.ttft_ms)
                .collect::<Vec<Option<i64>>>(),
        )
        .bind(int(|e| e.attempts))
        .bind(text(|e| &e.status))
        .bind(
            entries
                .iter()
                .map(|e| e.usage_estimated)
                .collect::<Vec<bool>>(),
        )
        .bind(text(|e| &e.api))
        .bind(int(|e| e.cache_write_tokens))
        .bind(entries.iter().map(|e| e.resumed).collect::<Vec<bool>>())
        .bind(text(|e| &e.attempt_chain))
        .bind(text(|e| &e.policy_version))
        .bind(
            entries
                .iter()
                .map(|e| e.client_request_id.clone())
                .collect::<Vec<Option<String>>>(),
        )
        .execute(&mut *tx)
        .await?;
    let reservations: Vec<String> = entries
        .iter()
        .filter_map(|e| e.reservation_id.clone())
        .collect();
    if !reservations.is_empty() {
        sqlx::query("DELETE FROM switchyard_budget_reservations WHERE id = ANY($1)")
            .bind(reservations)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Inserts a batch from arrays, and books the cost of the rows actually inserted (a retried
/// batch inserts nothing and books nothing) on the accounts whose period contains them.
const INSERT_BATCH: &str = "WITH inserted AS (
    INSERT INTO switchyard_ledger (entry_id, request_id, at_ms, team, key_id, model, provider,
        target, input_tokens, output_tokens, cached_tokens, cost_nano_usd, latency_ms, ttft_ms,
        attempts, status, usage_estimated, api, cache_write_tokens, resumed, attempt_chain,
        policy_version, client_request_id)
    SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
        $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[],
        $12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::BIGINT[], $16::TEXT[],
        $17::BOOLEAN[], $18::TEXT[], $19::BIGINT[], $20::BOOLEAN[], $21::TEXT[], $22::TEXT[],
        $23::TEXT[])
    ON CONFLICT (entry_id) DO NOTHING
    RETURNING team, at_ms, cost_nano_usd
), per_account AS (
    SELECT a.team, a.period_start, a.period_end, SUM(i.cost_nano_usd) AS cost
    FROM switchyard_budget_accounts a
    JOIN inserted i ON i.team = a.team AND a.period_start <= i.at_ms AND a.period_end > i.at_ms
    GROUP BY a.team, a.period_start, a.period_end
)
UPDATE switchyard_budget_accounts a SET spent_nano_usd = (a.spent_nano_usd + p.cost)::BIGINT
FROM per_account p
WHERE a.team = p.team AND a.period_start = p.period_start AND a.period_end = p.period_end";

/// A reservation request against the fleet's budget state.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    pub id: String,
    pub team: String,
    pub period: Period,
    pub budget_usd: NanoUsd,
    pub amount_usd: NanoUsd,
    pub now_ms: i64,
    /// Reservations older than this are ignored (their replica died mid-request).
    pub expires_ms: i64,
}

/// Reserves atomically: returns the standing before it, and whether the reservation was made.
pub async fn reserve(pool: &PgPool, r: &ReserveRequest) -> Result<(Standing, bool), LedgerError> {
    let mut tx = pool.begin().await?;
    lock_team(&mut tx, &r.team).await?;
    let standing = standing_in(&mut tx, &r.team, r.period, r.now_ms).await?;
    let admitted = standing.admits(r.budget_usd, r.amount_usd);
    if admitted {
        sqlx::query(
            "INSERT INTO switchyard_budget_reservations (id, team, amount_nano_usd, expires_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.id)
        .bind(&r.team)
        .bind(r.amount_usd.nanos())
        .bind(r.expires_ms)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok((standing, admitted))
}

/// The fleet's standing of `team` for `period` (creating its account from the ledger when
/// this period is seen for the first time).
pub async fn standing(
    pool: &PgPool,
    team: &str,
    period: Period,
    now_ms: i64,
) -> Result<Standing, LedgerError> {
    let mut tx = pool.begin().await?;
    lock_team(&mut tx, team).await?;
    let standing = standing_in(&mut tx, team, period, now_ms).await?;
    tx.commit().await?;
    Ok(standing)
}

async fn standing_in(
    tx: &mut Transaction<'_, Postgres>,
    team: &str,
    period: Period,
    now_ms: i64,
) -> Result<Standing, LedgerError> {
    sqlx::query(
        "INSERT INTO switchyard_budget_accounts (team, period_start, period_end, spent_nano_usd) \
         SELECT $1, $2, $3, COALESCE(SUM(cost_nano_usd), 0)::BIGINT FROM switchyard_ledger \
         WHERE team = $1 AND at_ms >= $2 AND at_ms < $3 \
         ON CONFLICT DO NOTHING",
    )
    .bind(team)
    .bind(period.start_ms)
    .bind(period.end_ms)
    .execute(&mut **tx)
    .await?;
    let (spent, reserved): (i64, i64) = sqlx::query_as(
        "SELECT a.spent_nano_usd, COALESCE((SELECT SUM(amount_nano_usd) \
           FROM switchyard_budget_reservations r \
           WHERE r.team = $1 AND r.expires_ms > $4), 0)::BIGINT \
         FROM switchyard_budget_accounts a \
         WHERE a.team = $1 AND a.period_start = $2 AND a.period_end = $3",
    )
    .bind(team)
    .bind(period.start_ms)
    .bind(period.end_ms)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Standing {
        spent_usd: NanoUsd::from_nanos(spent),
        reserved_usd: NanoUsd::from_nanos(reserved),
    })
}

/// Releases a reservation without an entry (the request never reached an upstream).
pub async fn release(pool: &PgPool, id: &str) -> Result<(), LedgerError> {
    sqlx::query("DELETE FROM switchyard_budget_reservations WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::metering::ledger::Store;
    use crate::metering::test_services::service_url;

    /// A fresh database on the server named by `SWITCHYARD_TEST_POSTGRES`, or `None` when no
    /// server is configured outside CI (see [`service_url`]).
    pub async fn fresh_database(test: &str) -> Option<String> {
        let base = service_url("SWITCHYARD_TEST_POSTGRES", test)?;
        let name = format!("sy_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(&base).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let (prefix, _) = base.rsplit_once('/').unwrap();
        Some(format!("{prefix}/{name}"))
    }

    /// Drops a database made by [`fresh_database`] (best effort).
    pub async fn drop_database(url: &str) {
        let (Ok(base), Some((_, name))) = (
            std::env::var("SWITCHYARD_TEST_POSTGRES"),
            url.rsplit_once('/'),
        ) else {
            return;
        };
        if let Ok(admin) = PgPool::connect(&base).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }

    fn usd(usd: f64) -> NanoUsd {
        NanoUsd::from_usd_f64(usd).unwrap()
    }

    fn entry(id: &str, cost: f64, at_ms: i64, reservation: Option<&str>) -> LedgerEntry {
        LedgerEntry {
            entry_id: id.to_owned(),
            request_id: id.to_owned(),
            at_ms,
            team: "t".to_owned(),
            key_id: "t#1".to_owned(),
            model: "chat".to_owned(),
            api: "chat".to_owned(),
            provider: "p".to_owned(),
            target: "p/m".to_owned(),
            input_tokens: 3,
            output_tokens: 4,
            cached_tokens: 1,
            cache_write_tokens: 2,
            cost_usd: usd(cost),
            latency_ms: 5,
            ttft_ms: None,
            attempts: 1,
            status: "200".to_owned(),
            usage_estimated: false,
            resumed: false,
            attempt_chain: "p/m=ok".to_owned(),
            policy_version: "v".to_owned(),
            client_request_id: None,
            reservation_id: reservation.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn postgres_reservations_are_atomic_and_settle_with_entries() {
        let Some(url) = fresh_database("postgres_reservations").await else {
            return;
        };
        let store = Store::open(&url).await.unwrap();
        let _second_replica_migrates_too = Store::open(&url).await.unwrap();
        let Store::Postgres(pool) = &store else {
            panic!("expected postgres")
        };
        let period = Period {
            start_ms: 0,
            end_ms: 86_400_000,
        };
        store
            .insert(&[entry("old", 0.2, 1_000, None)])
            .await
            .unwrap();
        // 40 concurrent reservations of 0.25 against a budget of 1.0 with 0.2 spent.
        let mut tasks = Vec::new();
        for i in 0..40 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let request = ReserveRequest {
                    id: format!("r{i}"),
                    team: "t".to_owned(),
                    period,
                    budget_usd: usd(1.0),
                    amount_usd: usd(0.25),
                    now_ms: 2_000,
                    expires_ms: 100_000,
                };
                reserve(&pool, &request)
                    .await
                    .unwrap()
                    .1
                    .then_some(request.id)
            }));
        }
        let mut admitted = Vec::new();
        for task in tasks {
            admitted.extend(task.await.unwrap());
        }
        assert_eq!(
            admitted.len(),
            3,
            "0.2 + 3 × 0.25 fits in 1.0, a fourth would not"
        );
        let before = standing(pool, "t", period, 2_000).await.unwrap();
        assert_eq!(before.reserved_usd, usd(0.75));
        // Settling one: its entry lands, the reservation goes, spend moves.
        store
            .insert(&[
                entry("e1", 0.05, 3_000, Some(&admitted[0])),
                entry("e2", 0.05, 3_000, Some(&admitted[1])),
            ])
            .await
            .unwrap();
        // A retried batch (its first commit landed) changes nothing.
        store
            .insert(&[entry("e1", 0.05, 3_000, Some(&admitted[0]))])
            .await
            .unwrap();
        let after = standing(pool, "t", period, 2_000).await.unwrap();
        assert_eq!(after.spent_usd, usd(0.3), "{after:?}");
        assert_eq!(after.reserved_usd, usd(0.25), "{after:?}");
        // Expired reservations no longer count.
        let later = standing(pool, "t", period, 200_000).await.unwrap();
        assert_eq!(later.reserved_usd, NanoUsd::ZERO);
        let rows = store.spend(0, 86_400_000, None).await.unwrap();
        assert_eq!(rows[0].requests, 3);
        assert_eq!(rows[0].cached_tokens, 3);
        assert_eq!(rows[0].cache_write_tokens, 6);
        assert_eq!(rows[0].cost_usd, usd(0.3));
        release(pool, &admitted[2]).await.unwrap();
        let released = standing(pool, "t", period, 2_000).await.unwrap();
        assert_eq!(released.reserved_usd, NanoUsd::ZERO);
        pool.close().await;
        drop(store);
        drop_database(&url).await;
    }

    /// Float costs the way schema versions 1–3 stored them: awkward binary fractions, tiny
    /// and large, whose float sum drifts from the sum of the rounded nano-dollars.
    pub fn float_costs_for_tests() -> Vec<f64> {
        (0..60)
            .map(|i| match i % 4 {
                0 => 0.1,
                1 => 0.000_123_456_789 * f64::from(i),
                2 => 1e-10 * f64::from(i),
                _ => 12.345_678_901_234 + f64::from(i) / 7.0,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_float_ledger_is_migrated_in_place_to_the_nano_dollar() {
        let Some(url) = fresh_database("postgres_money_migration").await else {
            return;
        };
        let old = PgPool::connect(&url).await.unwrap();
        let mut tx = old.begin().await.unwrap();
        super::super::migrate::apply(&mut tx, &MIGRATIONS[..3])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let costs = float_costs_for_tests();
        for (i, cost) in costs.iter().enumerate() {
            // Two days, two teams.
            let (team, at_ms) = match i % 3 {
                0 => ("a", 1_000 + i as i64),
                1 => ("a", 86_400_000 + i as i64),
                _ => ("b", 2_000 + i as i64),
            };
            sqlx::query(
                "INSERT INTO switchyard_ledger (entry_id, request_id, at_ms, team, key_id, model, \
                 provider, target, input_tokens, output_tokens, cached_tokens, cost_usd, \
                 latency_ms, ttft_ms, attempts, status, usage_estimated) \
                 VALUES ($1, 'r', $2, $3, 'k', 'm', 'p', 'p/m', 1, 1, 0, $4, 1, NULL, 1, '200', false)",
            )
            .bind(format!("e{i}"))
            .bind(at_ms)
            .bind(team)
            .bind(*cost)
            .execute(&old)
            .await
            .unwrap();
        }
        // An account opened before the upgrade, with its float running sum, and a live
        // reservation.
        sqlx::query(
            "INSERT INTO switchyard_budget_accounts (team, period_start, period_end, spent_usd) \
             SELECT 'a', 0, 172800000, SUM(cost_usd) FROM switchyard_ledger WHERE team = 'a'",
        )
        .execute(&old)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO switchyard_budget_reservations (id, team, amount_usd, expires_ms) \
             VALUES ('r1', 'a', 0.3, 100000000)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;

        let expected = |pick: &dyn Fn(usize) -> bool| -> NanoUsd {
            costs
                .iter()
                .enumerate()
                .filter(|(i, _)| pick(*i))
                .map(|(_, c)| NanoUsd::from_usd_f64(*c).unwrap())
                .sum()
        };
        let store = Store::open(&url).await.unwrap();
        let Store::Postgres(pool) = &store else {
            panic!("expected postgres")
        };
        let rows = store.spend(0, 172_800_000, None).await.unwrap();
        let by_team = |team: &str| rows.iter().find(|r| r.team == team).unwrap().cost_usd;
        assert_eq!(by_team("a"), expected(&|i| i % 3 != 2));
        assert_eq!(by_team("b"), expected(&|i| i % 3 == 2));
        let days = store.spend_by_day(0).await.unwrap();
        let day = |team: &str, day: i64| {
            days.iter()
                .find(|(t, d, _)| t == team && *d == day)
                .map(|(_, _, c)| *c)
        };
        assert_eq!(day("a", 0), Some(expected(&|i| i % 3 == 0)));
        assert_eq!(day("a", 1), Some(expected(&|i| i % 3 == 1)));
        // The account agrees with the ledger exactly; the reservation is kept, rounded up.
        let period = Period {
            start_ms: 0,
            end_ms: 172_800_000,
        };
        let migrated = standing(pool, "a", period, 0).await.unwrap();
        assert_eq!(migrated.spent_usd, by_team("a"));
        assert!(
            migrated.reserved_usd >= usd(0.3) && migrated.reserved_usd <= usd(0.300_000_001),
            "{migrated:?}"
        );
        // New entries add in integers on top.
        let mut new = entry("new", 0.000_000_001, 5_000, Some("r1"));
        new.team = "a".to_owned();
        store.insert(&[new]).await.unwrap();
        let after = standing(pool, "a", period, 0).await.unwrap();
        assert_eq!(after.spent_usd, by_team("a") + NanoUsd::from_nanos(1));
        assert_eq!(after.reserved_usd, NanoUsd::ZERO);
        pool.close().await;
        drop(store);
        drop_database(&url).await;
    }

    #[tokio::test]
    async fn postgres_batches_of_every_size_are_written_whole_and_once() {
        use crate::metering::ledger::audit::AuditQuery;
        use crate::metering::ledger::sqlite::tests::{numbered_entries, BATCH_SIZES};
        let Some(url) = fresh_database("postgres_batch_sizes").await else {
            return;
        };
        let store = Store::open(&url).await.unwrap();
        for n in BATCH_SIZES {
            let mut entries = numbered_entries(n);
            // Each batch its own team, so the batches can be read back apart.
            let team = format!("team{n}");
            for e in &mut entries {
                e.team.clone_from(&team);
                e.entry_id = format!("{n}-{}", e.entry_id);
            }
            store.insert(&entries).await.unwrap();
            store.insert(&entries[..n / 2 + 1]).await.unwrap();
            let query = AuditQuery {
                team: Some(team),
                ..AuditQuery::all(0, i64::MAX, n + 1)
            };
            let read = store.audit(&query).await.unwrap();
            assert_eq!(read.len(), n, "batch of {n}");
            for (row, e) in read.iter().zip(&entries) {
                assert_eq!(row.entry_id, e.entry_id);
                assert_eq!(row.cost_usd, e.cost_usd);
                assert_eq!(row.ttft_ms, e.ttft_ms);
                assert_eq!(row.client_request_id, e.client_request_id);
                assert_eq!(row.attempt_chain, e.attempt_chain);
                assert_eq!(row.policy_version, e.policy_version);
            }
        }
        if let Store::Postgres(pool) = &store {
            pool.close().await;
        }
        drop(store);
        drop_database(&url).await;
    }

    #[tokio::test]
    async fn a_postgres_ledger_at_version_7_without_5_gains_the_audit_columns_and_sweeps() {
        use crate::metering::ledger::audit::AuditQuery;
        use crate::metering::ledger::retention::sweep;
        let Some(url) = fresh_database("postgres_version_5_late").await else {
            return;
        };
        let old = PgPool::connect(&url).await.unwrap();
        let mut tx = old.begin().await.unwrap();
        let without_5: Vec<_> = MIGRATIONS
            .iter()
            .filter(|(v, _)| *v != 5)
            .copied()
            .collect();
        super::super::migrate::apply(&mut tx, &without_5)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        sqlx::query(
            "INSERT INTO switchyard_ledger (entry_id, request_id, at_ms, team, key_id, model, \
             provider, target, input_tokens, output_tokens, cached_tokens, cost_nano_usd, \
             latency_ms, ttft_ms, attempts, status, usage_estimated, api, cache_write_tokens, \
             resumed) \
             VALUES ('old', 'r', 1, 't', 'k', 'm', 'p', 'p/m', 1, 1, 0, 7, 1, NULL, 1, '200', \
             false, 'chat', 0, true)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;

        let store = Store::open(&url).await.unwrap();
        let mut new = entry("new", 0.1, 5_000, None);
        new.client_request_id = Some("client-1".to_owned());
        store.insert(&[new.clone()]).await.unwrap();
        let rows = store.audit(&AuditQuery::all(0, 10_000, 10)).await.unwrap();
        let audit: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.entry_id.as_str(),
                    r.attempt_chain.as_str(),
                    r.client_request_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            audit,
            [("old", "", None), ("new", "p/m=ok", Some("client-1"))]
        );
        let deleted = prometheus::IntCounter::new("deleted", "rows").unwrap();
        let total = sweep(&store, 5_000, 1, Duration::ZERO, &deleted)
            .await
            .unwrap();
        assert_eq!((total, deleted.get()), (1, 1));
        let rows = store.audit(&AuditQuery::all(0, 10_000, 10)).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].entry_id, "new");
        if let Store::Postgres(pool) = &store {
            pool.close().await;
        }
        drop(store);
        drop_database(&url).await;
    }
}
