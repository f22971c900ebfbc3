//! Money in integers end to end (issue 16, parts 3 and 4): a ledger written with the float
//! schema (versions 1–3) is migrated in place by the real binary and reports the same
//! totals to the nano-dollar; `switchyard spend --reconcile` sets an Azure cost export the
//! test writes against the ledger the test filled through the proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loadtest::proxy_process::switchyard_binary;
use loadtest::{AzureDeployment, AzureSim, AzureSimConfig};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use switchyard_e2e::{get, key_hash, post_json, Proxy, ALPHA_KEY};

const AZURE_KEY: &str = "azure-money-key-41c9";

fn temp_dir(name: &str) -> PathBuf {
    let dir = switchyard_e2e::scratch_dir(&format!("sy-money-{name}"));
    dir
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/ledger.db", dir.display())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A decimal USD string (`0.000315`) as integer nano-dollars, exactly.
fn nanos(text: &str) -> i64 {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    assert!(fraction.len() <= 9, "more than nano-dollars: {text}");
    let value = whole.parse::<i64>().unwrap() * 1_000_000_000
        + format!("{fraction:0<9}").parse::<i64>().unwrap();
    if negative {
        -value
    } else {
        value
    }
}

/// A JSON number of USD as nano-dollars (the proxy prints them from integers).
fn json_nanos(value: &Value) -> i64 {
    (value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
        * 1e9)
        .round() as i64
}

/// Runs `switchyard spend` with `args` against `config`; returns stdout.
fn spend_cli(config: &Path, args: &[&str]) -> String {
    let output = Command::new(switchyard_binary().unwrap())
        .args(["spend", "--config"])
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "switchyard spend {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `/admin/spend?team=alpha` once the ledger holds `requests` entries (bounded wait).
async fn spend_when(proxy: &Proxy, requests: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spend = get(&proxy.admin("/admin/spend?team=alpha"), None)
            .await
            .json();
        if spend["requests"].as_i64() == Some(requests) || Instant::now() > deadline {
            return spend;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The float costs the old ledger holds (none of them exact in binary; their float sum is
/// 0.6626634289000001).
const OLD_COSTS: [f64; 7] = [
    0.1,
    0.2,
    0.000_315,
    0.012_345_678_9,
    0.3,
    0.05,
    0.000_002_75,
];

/// Writes a ledger exactly as schema versions 1–3 left one: `cost_usd DOUBLE PRECISION`,
/// migrations 1, 2 and 3 recorded, with [`OLD_COSTS`] booked to team alpha today.
async fn float_schema_ledger(url: &str) {
    let options = url
        .parse::<SqliteConnectOptions>()
        .unwrap()
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    for statement in [
        "CREATE TABLE switchyard_migrations (version BIGINT PRIMARY KEY)",
        "CREATE TABLE switchyard_ledger (entry_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, \
         at_ms BIGINT NOT NULL, team TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL, \
         provider TEXT NOT NULL, target TEXT NOT NULL, input_tokens BIGINT NOT NULL, \
         output_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL, \
         cost_usd DOUBLE PRECISION NOT NULL, latency_ms BIGINT NOT NULL, ttft_ms BIGINT, \
         attempts BIGINT NOT NULL, status TEXT NOT NULL, usage_estimated BOOLEAN NOT NULL)",
        "CREATE INDEX switchyard_ledger_team_at ON switchyard_ledger (team, at_ms)",
        "CREATE INDEX switchyard_ledger_at ON switchyard_ledger (at_ms)",
        "ALTER TABLE switchyard_ledger ADD COLUMN api TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE switchyard_ledger ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0",
        "INSERT INTO switchyard_migrations (version) VALUES (1), (2), (3)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    // At the start of today (UTC), so the daily budget's period holds them all.
    let today = now_ms() / 86_400_000 * 86_400_000;
    for (i, cost) in OLD_COSTS.iter().enumerate() {
        sqlx::query(
            "INSERT INTO switchyard_ledger VALUES ($1, 'r', $2, 'alpha', 'alpha#old', 'chat', \
             'az', 'az/gpt-4o', 10, 5, 0, $3, 12, NULL, 1, '200', 0, 'chat', 1)",
        )
        .bind(format!("old-{i}"))
        .bind(today + i as i64)
        .bind(*cost)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

fn azure_sim_config(deployments: &[(&str, &str)]) -> AzureSimConfig {
    AzureSimConfig {
        name: "az-money".into(),
        api_key: Some(AZURE_KEY.into()),
        deployments: deployments
            .iter()
            .map(|(name, model)| AzureDeployment::new(*name, *model))
            .collect(),
        ..AzureSimConfig::default()
    }
}

/// Team alpha (with `team_extra`) calling models `chat` (deployment `gpt-4o`) and `mini`
/// (deployment `gpt-4o-mini`) on one Azure resource, with list-like prices.
fn routes(endpoint: &str, ledger_url: &str, team_extra: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 10s
ledger:
  url: "{ledger_url}"
  flush_interval: 100ms
providers:
  az: {{ kind: azure, endpoint: "{endpoint}", api_key: {AZURE_KEY}, api_version: 2024-10-21 }}
models:
  chat:
    targets: [ {{ provider: az, deployment: gpt-4o, price: {{ input: 2.5, output: 10.0 }} }} ]
  mini:
    targets: [ {{ provider: az, deployment: gpt-4o-mini, price: {{ input: 0.165, output: 0.66 }} }} ]
teams:
  alpha:
    keys: ["{key}"]
{team_extra}"#,
        key = key_hash(ALPHA_KEY),
    )
}

async fn chat(proxy: &Proxy, model: &str, content: &str) -> (u16, Option<i64>) {
    let body = json!({"model": model, "max_tokens": 16,
                      "messages": [{"role": "user", "content": content}]});
    let reply = post_json(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &body).await;
    (
        reply.status,
        reply.header("x-switchyard-cost-usd").map(nanos),
    )
}

#[tokio::test]
async fn a_float_schema_ledger_is_migrated_by_the_binary_to_the_nano_dollar() {
    let dir = temp_dir("migrate");
    let url = sqlite_url(&dir);
    float_schema_ledger(&url).await;
    let old_nanos: i64 = OLD_COSTS.iter().map(|c| (c * 1e9).round() as i64).sum();
    // What the float ledger reported, to the nano-dollar: the migration keeps it.
    let float_sum: f64 = OLD_COSTS.iter().sum();
    assert_eq!((float_sum * 1e9).round() as i64, old_nanos);
    assert_eq!(old_nanos, 662_663_429);
    let sim = AzureSim::start(azure_sim_config(&[("gpt-4o", "gpt-4o-2024-08-06")]))
        .await
        .unwrap();
    // What the old ledger holds plus one request's maximum (docs/spend.md, "The reservation
    // bound"): "hello there" is 11 bytes + 8 per message + 8 reply priming = 27 prompt
    // tokens at 2.5 USD per million, and its 16-token cap at 10: exactly one more request
    // may be admitted, and once it has spent, the next one's maximum no longer fits.
    let one_request = 27 * 2_500 + 16 * 10_000;
    let budget = old_nanos + one_request;
    let budget_usd = format!("{}.{:09}", budget / 1_000_000_000, budget % 1_000_000_000);
    let proxy = Proxy::start(&routes(
        &sim.endpoint(),
        &url,
        &format!("    budget: {{ usd: {budget_usd}, period: daily }}\n"),
    ))
    .await;

    println!("the migrated ledger reports the old rows' nano-dollars exactly");
    let spend = spend_when(&proxy, OLD_COSTS.len() as i64).await;
    assert_eq!(json_nanos(&spend["spent_usd"]), old_nanos, "{spend}");
    assert_eq!(
        spend["cache_write_tokens"],
        OLD_COSTS.len() as i64,
        "{spend}"
    );

    println!("the budget book was loaded from the migrated rows: one request, then refused");
    let (status, cost) = chat(&proxy, "chat", "hello there").await;
    assert_eq!(status, 200);
    let cost = cost.expect("a cost header");
    let spend = spend_when(&proxy, OLD_COSTS.len() as i64 + 1).await;
    assert_eq!(json_nanos(&spend["spent_usd"]), old_nanos + cost, "{spend}");
    let (status, _) = chat(&proxy, "chat", "hello again").await;
    assert_eq!(status, 429, "the budget is spent");
    drop(proxy);

    println!("`switchyard spend` prints the exact total; the schema is integers now");
    let config = dir.join("report.yaml");
    std::fs::write(&config, format!("version: 1\nledger:\n  url: \"{url}\"\n")).unwrap();
    let csv = spend_cli(
        &config,
        &[
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--format",
            "csv",
        ],
    );
    let line = csv.lines().nth(1).unwrap_or_default();
    let total = old_nanos + cost;
    let expected = format!("{}.{:09}", total / 1_000_000_000, total % 1_000_000_000);
    assert!(line.ends_with(&format!(",{expected}")), "{csv}");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let columns: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM pragma_table_info('switchyard_ledger')")
            .fetch_all(&pool)
            .await
            .unwrap();
    let columns: Vec<&str> = columns.iter().map(|(c,)| c.as_str()).collect();
    assert!(columns.contains(&"cost_nano_usd"), "{columns:?}");
    assert!(!columns.contains(&"cost_usd"), "{columns:?}");
    let (sum,): (i64,) = sqlx::query_as("SELECT SUM(cost_nano_usd) FROM switchyard_ledger")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sum, total);
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn spend_reconcile_sets_an_azure_export_against_the_ledger() {
    let dir = temp_dir("reconcile");
    let url = sqlite_url(&dir);
    let sim = AzureSim::start(azure_sim_config(&[
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ]))
    .await
    .unwrap();
    let proxy = Proxy::start(&routes(&sim.endpoint(), &url, "")).await;

    println!("five requests to each model, their costs as the proxy answered them");
    let (mut chat_nanos, mut mini_nanos) = (0, 0);
    for i in 0..5 {
        let (status, cost) = chat(&proxy, "chat", &format!("question {i}")).await;
        assert_eq!(status, 200);
        chat_nanos += cost.unwrap();
        let (status, cost) = chat(&proxy, "mini", &format!("small question {i}")).await;
        assert_eq!(status, 200);
        mini_nanos += cost.unwrap();
    }
    spend_when(&proxy, 10).await;
    drop(proxy);

    println!("an export billing gpt-4o exactly, gpt-4o-mini 1,000 nano-dollars more, and a model the proxy never served");
    let today = chrono_free_today();
    let (month, day, year) = (&today[5..7], &today[8..10], &today[..4]);
    let date = format!("{month}/{day}/{year}");
    let account =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/contoso";
    let usd = |n: i64| format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000);
    let chat_in = chat_nanos / 3;
    let mini_in = mini_nanos / 2;
    let export = format!(
        "Date,MeterCategory,MeterSubCategory,MeterName,ChargeType,ResourceId,CostInBillingCurrency,BillingCurrency\n\
{date},Cognitive Services,Azure OpenAI,gpt-4o-0806 Inp glbl Tokens,Usage,{account},{},USD\n\
{date},Cognitive Services,Azure OpenAI,gpt-4o-0806 Outp glbl Tokens,Usage,{account},{},USD\n\
{date},Cognitive Services,Azure OpenAI,gpt-4o-mini-0718 Inp glbl Tokens,Usage,{account},{},USD\n\
{date},Cognitive Services,Azure OpenAI,gpt-4o-mini-0718 Outp glbl Tokens,Usage,{account},{},USD\n\
{date},Cognitive Services,Azure OpenAI,o3-pro Inp glbl Tokens,Usage,{account},0.25,USD\n\
{date},Cognitive Services,Speech,S1 Audio,Usage,{account},9.99,USD\n\
{date},Cognitive Services,Azure OpenAI,gpt-4o-0806 Inp glbl Tokens,Tax,{account},1.00,USD\n",
        usd(chat_in),
        usd(chat_nanos - chat_in),
        usd(mini_in),
        usd(mini_nanos - mini_in + 1_000),
    );
    let export_path = dir.join("azure-export.csv");
    std::fs::write(&export_path, export).unwrap();
    let config = dir.join("report.yaml");
    std::fs::write(
        &config,
        routes(&sim.endpoint(), &url, "")
            .replace("{LISTEN}", "1")
            .replace("{ADMIN}", "2"),
    )
    .unwrap();
    let export_arg = export_path.to_str().unwrap();
    let period = ["--from", "2000-01-01", "--to", "2100-01-01"];

    let json: Value = serde_json::from_str(&spend_cli(
        &config,
        &[
            &["--reconcile", export_arg, "--format", "json"][..],
            &period[..],
        ]
        .concat(),
    ))
    .unwrap();
    assert_eq!(json["format"], "azure", "told from the header: {json}");
    let lines = json["lines"].as_array().unwrap();
    let line = |target: &str| {
        lines
            .iter()
            .find(|l| l["target"] == target)
            .unwrap_or_else(|| panic!("no line for {target}: {json}"))
    };
    let chat_line = line("az/gpt-4o");
    assert_eq!(chat_line["day"], today);
    assert_eq!(chat_line["requests"], 5);
    assert_eq!(json_nanos(&chat_line["metered_usd"]), chat_nanos);
    assert_eq!(json_nanos(&chat_line["billed_usd"]), chat_nanos);
    assert_eq!(json_nanos(&chat_line["difference_usd"]), 0);
    let mini_line = line("az/gpt-4o-mini");
    assert_eq!(json_nanos(&mini_line["metered_usd"]), mini_nanos);
    assert_eq!(json_nanos(&mini_line["difference_usd"]), 1_000);
    let unmapped = line("(unmapped) o3-pro Inp glbl Tokens");
    assert_eq!(json_nanos(&unmapped["billed_usd"]), 250_000_000);
    assert_eq!(
        lines.len(),
        3,
        "Speech and tax lines are not model usage: {json}"
    );
    assert_eq!(
        json_nanos(&json["total"]["difference_usd"]),
        1_000 + 250_000_000
    );

    println!("--map assigns the unknown meter; the table and CSV carry the same figures");
    let table = spend_cli(
        &config,
        &[
            &[
                "--reconcile",
                export_arg,
                "--provider-format",
                "azure",
                "--map",
                "o3-pro Inp glbl Tokens=az/gpt-4o",
            ][..],
            &period[..],
        ]
        .concat(),
    );
    assert!(!table.contains("(unmapped)"), "{table}");
    let total: Vec<&str> = table.lines().last().unwrap().split_whitespace().collect();
    assert_eq!(
        total[..5],
        [
            "(total)".to_owned(),
            "10".to_owned(),
            usd(chat_nanos + mini_nanos),
            usd(chat_nanos + mini_nanos + 1_000 + 250_000_000),
            usd(1_000 + 250_000_000)
        ],
        "{table}"
    );
    let csv = spend_cli(
        &config,
        &[
            &["--reconcile", export_arg, "--format", "csv"][..],
            &period[..],
        ]
        .concat(),
    );
    assert!(
        csv.contains(&format!(
            "{today},az/gpt-4o-mini,5,{},{},0.000001000,",
            usd(mini_nanos),
            usd(mini_nanos + 1_000)
        )),
        "{csv}"
    );

    println!("an export in another currency is refused, not mixed in");
    std::fs::write(
        &export_path,
        format!(
            "Date,MeterName,CostInBillingCurrency,BillingCurrency\n{date},gpt-4o Inp,1.0,EUR\n"
        ),
    )
    .unwrap();
    let output = Command::new(switchyard_binary().unwrap())
        .args(["spend", "--config"])
        .arg(&config)
        .args([&["--reconcile", export_arg][..], &period[..]].concat())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("EUR"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Today's UTC date as `YYYY-MM-DD`, from the Unix clock (the tests do not use chrono).
fn chrono_free_today() -> String {
    let days = now_ms().div_euclid(86_400_000);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
