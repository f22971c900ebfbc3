//! The audit trail end to end (issue 14, part 2): a failed-over request lands in the ledger
//! with its attempt chain, the policy version that routed it and the client's
//! `x-request-id`; `GET /admin/requests` pages through every row exactly once behind the
//! admin token; `switchyard audit` prints the same rows as CSV and JSON lines. On the
//! SQLite ledger, and on PostgreSQL (required in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use loadtest::Fault;
use serde_json::{json, Value};
use switchyard_e2e::proxy::switchyard_command;
use switchyard_e2e::services::{drop_postgres, fresh_postgres};
use switchyard_e2e::{get, post, Proxy, Sims, ALPHA_KEY};

const ADMIN_TOKEN: &str = "audit-admin-token";
/// Requests sent after the failed-over one, each with its own client request id.
const MORE: usize = 6;
const RANGE: &str = "from=2000-01-01&to=2100-01-01";

fn hello() -> String {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

/// `GET /admin/requests?{query}` with the admin token.
async fn requests(proxy: &Proxy, query: &str) -> switchyard_e2e::Reply {
    get(
        &proxy.admin(&format!("/admin/requests?{query}")),
        Some(ADMIN_TOKEN),
    )
    .await
}

/// Every row of team alpha, once the ledger holds `n` (bounded wait: entries are written
/// within `ledger.flush_interval`).
async fn all_rows(proxy: &Proxy, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = requests(proxy, &format!("team=alpha&{RANGE}&limit=1000")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let rows = reply.json()["requests"].as_array().unwrap().clone();
        if rows.len() >= n || Instant::now() > deadline {
            assert_eq!(rows.len(), n, "{rows:?}");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `switchyard audit` on the proxy's config with `args`; its stdout.
fn audit_cli(proxy: &Proxy, args: &[&str]) -> String {
    let output = switchyard_command()
        .arg("audit")
        .arg("--config")
        .arg(proxy.config_path())
        .args([
            "--team",
            "alpha",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
        ])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "switchyard audit {args:?}: {stderr}"
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The whole scenario on the ledger `ledger_yaml` sets up (the default SQLite file when
/// empty).
async fn audit_trail(ledger_yaml: &str) {
    let sims = Sims::start().await;
    let routes = sims
        .routes(&format!("admin_token: {ADMIN_TOKEN}"))
        .replacen("providers:\n", &format!("{ledger_yaml}providers:\n"), 1);
    let proxy = Proxy::start(&routes).await;
    let url = proxy.url("/chat/completions");

    println!("sim-a answers 500: the request fails over to sim-b, the client asks for the route");
    sims.a.push_faults([Fault::Status(500)]);
    let failover = post(
        &url,
        Some(ALPHA_KEY),
        hello(),
        &[
            ("x-request-id", "client-failover-1"),
            ("x-switchyard-debug", "1"),
        ],
    )
    .await;
    assert_eq!(failover.status, 200, "{}", failover.body);
    assert_eq!(failover.header("x-switchyard-attempts"), Some("2"));
    let route = failover.header("x-switchyard-route").unwrap().to_owned();
    assert_eq!(route, "sim-a/up-a=server_error, sim-b/up-b=ok");

    println!("{MORE} more requests with their own ids, one without any, one with an unsafe one");
    for i in 0..MORE {
        let id = format!("client-{i}");
        let reply = post(&url, Some(ALPHA_KEY), hello(), &[("x-request-id", &id)]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let anonymous = post(&url, Some(ALPHA_KEY), hello(), &[]).await;
    assert_eq!(anonymous.status, 200);
    let ours = anonymous.header("x-request-id").unwrap().to_owned();
    let unsafe_id = post(&url, Some(ALPHA_KEY), hello(), &[("x-request-id", "a b=c")]).await;
    assert_eq!(unsafe_id.status, 200);
    let replaced = unsafe_id.header("x-request-id").unwrap().to_owned();
    assert_ne!(
        replaced, "a b=c",
        "an id that could forge log fields is replaced"
    );
    let total = MORE + 3;

    println!("/admin/requests needs the admin token and refuses bad parameters");
    let refused = get(&proxy.admin(&format!("/admin/requests?{RANGE}")), None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let bad = requests(&proxy, "from=2000-01-01&to=2100-01-01&limit=5000").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.json()["error"].as_str().unwrap().contains("limit"),
        "{}",
        bad.body
    );
    let missing = requests(&proxy, "team=alpha").await;
    assert_eq!(missing.status, 400, "{}", missing.body);

    println!("the failed-over request's row: attempt chain, policy version, client id");
    let rows = all_rows(&proxy, total).await;
    let version = get(&proxy.admin("/admin/routes"), Some(ADMIN_TOKEN))
        .await
        .json()["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = rows
        .iter()
        .find(|r| r["client_request_id"] == "client-failover-1")
        .unwrap_or_else(|| panic!("no row for client-failover-1: {rows:?}"));
    println!("{row}");
    assert_eq!(row["attempt_chain"], route.as_str());
    assert_eq!(row["request_id"], "client-failover-1");
    assert_eq!(row["policy_version"], version.as_str());
    assert_eq!(
        (row["provider"].as_str(), row["target"].as_str()),
        (Some("sim-b"), Some("sim-b/up-b"))
    );
    assert_eq!(
        (row["attempts"].as_i64(), row["api"].as_str()),
        (Some(2), Some("chat"))
    );
    assert_eq!(
        (row["status"].as_str(), row["team"].as_str()),
        (Some("200"), Some("alpha"))
    );
    let cost: f64 = row["cost_usd"].as_str().unwrap().parse().unwrap();
    assert!(
        cost > 0.0 && row["cost_usd"].as_str().unwrap().len() == 11,
        "{row}"
    );
    assert!(row["time"].as_str().unwrap().ends_with('Z'), "{row}");
    let plain = rows
        .iter()
        .find(|r| r["client_request_id"] == "client-0")
        .unwrap();
    let served = format!("{}=ok", plain["target"].as_str().unwrap());
    assert_eq!(
        plain["attempt_chain"],
        served.as_str(),
        "recorded without the debug header"
    );
    let anonymous_row = rows
        .iter()
        .find(|r| r["request_id"] == ours.as_str())
        .unwrap();
    assert_eq!(anonymous_row["client_request_id"], Value::Null);

    println!("pages of 3 follow next_cursor and return every row exactly once");
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..total {
        let query = match &cursor {
            Some(c) => format!("team=alpha&{RANGE}&limit=3&cursor={c}"),
            None => format!("team=alpha&{RANGE}&limit=3"),
        };
        let page = requests(&proxy, &query).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        paged.extend(page["requests"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, rows, "the pages, in order, are the whole range");
    let ids: BTreeSet<&str> = paged
        .iter()
        .map(|r| r["entry_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), total);
    let other = requests(&proxy, &format!("team=alpha&model=embed&{RANGE}"))
        .await
        .json();
    assert_eq!(other["requests"], json!([]));

    println!("switchyard audit on the same ledger: JSON lines equal the endpoint's records");
    let jsonl = audit_cli(&proxy, &["--format", "jsonl"]);
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, rows);
    let limited = audit_cli(&proxy, &["--format", "jsonl", "--limit", "2"]);
    assert_eq!(limited.lines().count(), 2);

    println!(
        "and CSV, the chain quoted:\n{}",
        audit_cli(&proxy, &["--limit", "3"])
    );
    let csv = audit_cli(&proxy, &["--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), total);
    let failed_over = records
        .iter()
        .find(|r| &r[column("client_request_id")] == "client-failover-1")
        .unwrap();
    assert_eq!(&failed_over[column("attempt_chain")], route.as_str());
    assert_eq!(&failed_over[column("policy_version")], version.as_str());
    assert_eq!(
        &failed_over[column("cost_usd")],
        row["cost_usd"].as_str().unwrap()
    );
    let none = audit_cli(&proxy, &["--model", "embed"]);
    assert_eq!(none.lines().count(), 1, "only the header: {none}");
}

#[tokio::test]
async fn the_audit_trail_on_sqlite() {
    audit_trail("").await;
}

#[tokio::test]
async fn the_audit_trail_on_postgres() {
    let Some(url) = fresh_postgres("the_audit_trail_on_postgres").await else {
        return;
    };
    audit_trail(&format!("ledger:\n  url: \"{url}\"\n")).await;
    drop_postgres(&url).await;
}

#[tokio::test]
async fn rows_past_ledger_retention_are_deleted_by_the_background_sweep() {
    use sqlx::Connection;
    let sims = Sims::start().await;
    let dir = switchyard_e2e::scratch_dir("sy-audit-retention");
    let url = format!("sqlite://{}/ledger.db", dir.display());
    let routes = |ledger_extra: &str| {
        sims.routes(&format!("admin_token: {ADMIN_TOKEN}"))
            .replacen(
                "providers:\n",
                &format!("ledger:\n  url: \"{url}\"\n{ledger_extra}providers:\n"),
                1,
            )
    };

    println!("a first start creates the ledger; rows 10 days and 1 hour old are added to it");
    drop(Proxy::start(&routes("")).await);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut ledger = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (id, age_ms) in [
        ("old-1", 864_000_000),
        ("old-2", 864_000_001),
        ("old-3", 900_000_000),
        ("recent", 3_600_000),
    ] {
        sqlx::query(
            "INSERT INTO switchyard_ledger (entry_id, request_id, at_ms, team, key_id, model, \
             provider, target, input_tokens, output_tokens, cached_tokens, cost_nano_usd, \
             latency_ms, attempts, status, usage_estimated) \
             VALUES ($1, $1, $2, 'alpha', 'k', 'chat', 'sim-a', 'sim-a/up-a', 1, 1, 0, 1, 1, 1, \
             '200', 0)",
        )
        .bind(id)
        .bind(now_ms - age_ms)
        .execute(&mut ledger)
        .await
        .unwrap();
    }
    ledger.close().await.unwrap();

    println!("restarted with ledger.retention: 2d, the sweep at startup deletes the old rows");
    let proxy = Proxy::start(&routes("  retention: 2d\n")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let counter = "switchyard_ledger_retention_deleted_total 3";
    loop {
        let metrics = get(&proxy.admin("/metrics"), None).await.body;
        if metrics.contains(counter) {
            break;
        }
        assert!(Instant::now() < deadline, "no `{counter}` in:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = requests(&proxy, RANGE).await.json();
    let ids: Vec<&str> = left["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["entry_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["recent"]);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}
