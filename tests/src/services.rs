//! Where the PostgreSQL and Redis that some end-to-end tests need are, and what a test does when
//! they are not configured (skip visibly on a workstation, fail in CI).

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
