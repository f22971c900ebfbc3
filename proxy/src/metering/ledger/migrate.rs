//! Schema migrations, the same loop for SQLite and PostgreSQL: each version's statements
//! run once, recorded in `switchyard_migrations`, inside the caller's transaction. Each
//! version is looked up on its own, not compared with the highest applied, so a version
//! numbered below one already applied (5, added after 6 and 7) is still applied.

use sqlx::{Database, Executor, IntoArguments, Transaction};

/// Versioned lists of statements, applied in order.
pub(crate) type Migrations = [(i64, &'static [&'static str])];

pub(crate) async fn apply<DB>(
    tx: &mut Transaction<'_, DB>,
    migrations: &Migrations,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
{
    sqlx::query("CREATE TABLE IF NOT EXISTS switchyard_migrations (version BIGINT PRIMARY KEY)")
        .execute(&mut **tx)
        .await?;
    for (version, statements) in migrations {
        let applied: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM switchyard_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut **tx)
                .await?;
        if applied.is_some() {
            continue;
        }
        for statement in *statements {
            sqlx::query(statement).execute(&mut **tx).await?;
        }
        sqlx::query("INSERT INTO switchyard_migrations (version) VALUES ($1)")
            .bind(*version)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
