//! Where the PostgreSQL and Redis that some end-to-end tests need are, and what a test does when
//! they are not configured (skip visibly on a workstation, fail in CI); a fresh PostgreSQL
//! database per test.

use sqlx::Connection;

/// The URL in `var` (`SWITCHYARD_TEST_POSTGRES`, `SWITCHYARD_TEST_REDIS`), for the test `test`.
///
/// Unset (or empty) outside CI: prints `SKIPPED …` and returns `None`, so a workstation without
/// the services still runs the rest of the suite. Unset in CI (the `CI` variable set, as
/// `.ci/run` runs with `CI=true`): panics, because CI starts both services and a test that
/// silently skips there would prove nothing. A variable that is set but names a service that
/// does not answer is not handled here: the test's own connect (or assertions) fail it.
pub fn service_url(var: &str, test: &str) -> Option<String> {
    if let Some(url) = std::env::var(var).ok().filter(|url| !url.is_empty()) {
        return Some(url);
    }
    if in_ci() {
        panic!("{test} needs {var}: CI is set, so the service must be configured (.ci/run starts PostgreSQL and Redis and sets it)");
    }
    println!("SKIPPED {test}: {var} is not set (.ci/run sets it)");
    None
}

/// `CI` set to anything but empty, `0` or `false` (CI systems set `CI=true`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}

/// A fresh database on `SWITCHYARD_TEST_POSTGRES`'s server, or `None` when no server is
/// configured outside CI (see [`service_url`]).
pub async fn fresh_postgres(test: &str) -> Option<String> {
    let base = service_url("SWITCHYARD_TEST_POSTGRES", test)?;
    let name = format!("sy_e2e_{}", uuid_like());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connecting to SWITCHYARD_TEST_POSTGRES");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{name}"))
}

/// Drops a database made by [`fresh_postgres`] (best effort: a leftover is harmless).
pub async fn drop_postgres(url: &str) {
    let (Ok(base), Some((_, name))) = (
        std::env::var("SWITCHYARD_TEST_POSTGRES"),
        url.rsplit_once('/'),
    ) else {
        return;
    };
    if let Ok(mut admin) = sqlx::PgConnection::connect(&base).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}

/// A name unique to this process and moment, for test databases and key prefixes.
pub fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}
