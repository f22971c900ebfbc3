//! The conversation state the proxy keeps for the Responses API (issue 11), end to end through
//! the real binary: a stored turn survives a restart on the SQLite ledger file and is shared
//! by two proxies on one PostgreSQL; another team's id and an expired one are 404; `responses:
//! native` OpenAI and Azure targets answer plain and streamed, are sent `store: false`, and
//! the proxy stores and meters the turn once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loadtest::{AzureDeployment, AzureSim, AzureSimConfig};
use serde_json::{json, Value};
use sqlx::Connection;
use switchyard_e2e::responses::{assembled, create, create_stream, output_text};
use switchyard_e2e::{
    body_mentions, get, key_hash, service_url, start_sim, CapturesRequests, Proxy, Reply,
    ALPHA_KEY, UPSTREAM_KEY_A,
};

const BETA_KEY: &str = "sk-beta-e2e-7c41aa09e2";
const AZURE_KEY: &str = "azure-state-key-51c0";
const DEPLOYMENT: &str = "gpt4o-state";

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}

/// A fresh directory for a SQLite ledger file; `sqlite://…/ledger.db`.
fn sqlite_ledger(test: &str) -> (PathBuf, String) {
    let dir = switchyard_e2e::scratch_dir(&format!("sy-{test}"));
    let url = format!("sqlite://{}/ledger.db", dir.display());
    (dir, url)
}

/// `routes.yaml`: model `chat` on `provider_yaml`'s `up` provider (`target` its target
/// fields), teams `alpha` and `beta`, the ledger at `ledger_url`, `responses.retention`.
fn routes(ledger_url: &str, retention: &str, provider_yaml: &str, target: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 10s
  first_byte_timeout: 2s
ledger:
  url: "{ledger_url}"
responses:
  retention: {retention}
providers:
{provider_yaml}models:
  chat: {{ targets: [ {{ provider: up, {target}, price: {{ input: 1.0, output: 2.0 }} }} ] }}
teams:
  alpha: {{ keys: ["{alpha}"], models: [chat] }}
  beta: {{ keys: ["{beta}"], models: [chat] }}
"#,
        alpha = key_hash(ALPHA_KEY),
        beta = key_hash(BETA_KEY),
    )
}

fn openai_provider(base_url: &str, native: bool) -> String {
    let native = if native { ", responses: native" } else { "" };
    format!(
        "  up: {{ kind: openai, base_url: \"{base_url}\", api_key: {UPSTREAM_KEY_A}{native} }}\n"
    )
}

async fn turn(proxy: &Proxy, key: &str, input: &str, previous: Option<&str>) -> Reply {
    let mut body = json!({"model": "chat", "input": input});
    if let Some(previous) = previous {
        body["previous_response_id"] = json!(previous);
    }
    create(proxy, key, &body).await
}

/// A first turn that must succeed: its response.
async fn first_turn(proxy: &Proxy, input: &str) -> Value {
    let reply = turn(proxy, ALPHA_KEY, input, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn id_of(response: &Value) -> &str {
    response["id"].as_str().unwrap()
}

async fn stored(proxy: &Proxy, key: &str, id: &str) -> Reply {
    get(&proxy.url(&format!("/responses/{id}")), Some(key)).await
}

fn assert_previous_not_found(reply: &Reply) {
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.error()["code"], "previous_response_not_found");
    assert_eq!(reply.error()["param"], "previous_response_id");
}

/// The last inference request body the upstream received.
fn last_upstream_body(sim: &impl CapturesRequests) -> Value {
    sim.captured()
        .last()
        .expect("the upstream got a request")
        .body
        .clone()
}

/// Turn 2's upstream request carries turn 1's input and output and turn 2's input.
fn assert_carries_turn_one(body: &Value, first: &Value) {
    let answer = output_text(first);
    assert!(!answer.is_empty(), "{first}");
    for said in ["first question", answer.as_str(), "second question"] {
        assert!(
            body_mentions(body, said),
            "{said:?} missing upstream: {body}"
        );
    }
}

#[tokio::test]
async fn a_stored_conversation_survives_a_restart_on_the_sqlite_file() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let (dir, ledger) = sqlite_ledger("resp-restart");
    let yaml = routes(
        &ledger,
        "30d",
        &openai_provider(&sim.base_url(), false),
        "model: up-a",
    );
    let proxy = Proxy::start(&yaml).await;
    let first = first_turn(&proxy, "first question").await;
    drop(proxy);

    let proxy = Proxy::start(&yaml).await;
    let second = turn(&proxy, ALPHA_KEY, "second question", Some(id_of(&first))).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.json()["previous_response_id"], first["id"]);
    assert_carries_turn_one(&last_upstream_body(&sim), &first);
    let got = stored(&proxy, ALPHA_KEY, id_of(&first)).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(output_text(&got.json()), output_text(&first));
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh database on `SWITCHYARD_TEST_POSTGRES`'s server (`None` outside CI when unset).
async fn fresh_postgres(test: &str) -> Option<(String, String)> {
    let base = service_url("SWITCHYARD_TEST_POSTGRES", test)?;
    let name = format!("sy_e2e_resp_{}", unique());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some((base.clone(), format!("{prefix}/{name}")))
}

async fn drop_postgres(base: &str, url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut admin) = sqlx::PgConnection::connect(base).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}

#[tokio::test]
async fn two_proxies_on_one_postgres_share_a_conversation() {
    let Some((base, ledger)) =
        fresh_postgres("two_proxies_on_one_postgres_share_a_conversation").await
    else {
        return;
    };
    let sim_a = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let sim_b = start_sim("sim-b", UPSTREAM_KEY_A).await;
    let proxy_a = Proxy::start(&routes(
        &ledger,
        "30d",
        &openai_provider(&sim_a.base_url(), false),
        "model: up-a",
    ))
    .await;
    let proxy_b = Proxy::start(&routes(
        &ledger,
        "30d",
        &openai_provider(&sim_b.base_url(), false),
        "model: up-b",
    ))
    .await;
    let first = first_turn(&proxy_a, "first question").await;
    let second = turn(&proxy_b, ALPHA_KEY, "second question", Some(id_of(&first))).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_carries_turn_one(&last_upstream_body(&sim_b), &first);
    assert_eq!(
        sim_b.captured().len(),
        1,
        "proxy B's upstream got turn 2 only"
    );
    // And back: proxy A continues proxy B's turn.
    let second = second.json();
    let third = turn(&proxy_a, ALPHA_KEY, "third question", Some(id_of(&second))).await;
    assert_eq!(third.status, 200, "{}", third.body);
    let seen = last_upstream_body(&sim_a);
    for said in ["first question", "second question", "third question"] {
        assert!(
            body_mentions(&seen, said),
            "{said:?} missing upstream: {seen}"
        );
    }
    assert!(body_mentions(&seen, &output_text(&second)), "{seen}");
    drop(proxy_a);
    drop(proxy_b);
    drop_postgres(&base, &ledger).await;
}

#[tokio::test]
async fn another_teams_response_id_is_not_found() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let (dir, ledger) = sqlite_ledger("resp-teams");
    let proxy = Proxy::start(&routes(
        &ledger,
        "30d",
        &openai_provider(&sim.base_url(), false),
        "model: up-a",
    ))
    .await;
    let first = first_turn(&proxy, "first question").await;
    let requests_before = sim.captured().len();
    let theirs = turn(&proxy, BETA_KEY, "second question", Some(id_of(&first))).await;
    assert_previous_not_found(&theirs);
    assert_eq!(
        sim.captured().len(),
        requests_before,
        "nothing went upstream"
    );
    let got = stored(&proxy, BETA_KEY, id_of(&first)).await;
    assert_eq!(got.status, 404, "{}", got.body);
    assert_eq!(got.error()["code"], "not_found");
    // The owner still can.
    assert_eq!(stored(&proxy, ALPHA_KEY, id_of(&first)).await.status, 200);
    let mine = turn(&proxy, ALPHA_KEY, "second question", Some(id_of(&first))).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_expired_response_cannot_be_continued_or_read() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let (dir, ledger) = sqlite_ledger("resp-retention");
    let proxy = Proxy::start(&routes(
        &ledger,
        "1s",
        &openai_provider(&sim.base_url(), false),
        "model: up-a",
    ))
    .await;
    let first = first_turn(&proxy, "first question").await;
    let id = id_of(&first);
    // Stored with a 1 s lifetime (so the 404 below is expiry, not a turn never stored).
    let mut db = sqlx::SqliteConnection::connect(&ledger).await.unwrap();
    let (lifetime,): (i64,) =
        sqlx::query_as("SELECT expires_at - created_at FROM switchyard_responses WHERE id = $1")
            .bind(id)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(lifetime, 1);
    // Bounded: 1 s of retention counted in whole seconds from created_at; 10 s at most.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = stored(&proxy, ALPHA_KEY, id).await;
        if got.status == 404 {
            assert_eq!(got.error()["code"], "not_found");
            break;
        }
        assert_eq!(got.status, 200, "{}", got.body);
        assert!(Instant::now() < deadline, "still readable after 10 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_previous_not_found(&turn(&proxy, ALPHA_KEY, "second question", Some(id)).await);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/admin/spend?team=alpha` once it counts `requests` requests, or after 5 s.
async fn spend_after(proxy: &Proxy, requests: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let spend = get(&proxy.admin("/admin/spend?team=alpha"), None)
            .await
            .json();
        if spend["requests"].as_u64() == Some(requests) || Instant::now() > deadline {
            return spend;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Plain and streamed turns on a native target, the second continuing the first: intact
/// answers, `store: false` upstream with the earlier turn expanded, both stored, two metered
/// requests. `upstream` is the body the target got last, `store_requested` its count of
/// requests without `store: false`, `responses_requests` its Responses requests.
async fn native_turns(proxy: &Proxy, upstream: impl Fn() -> (Value, u64, u64)) {
    let first = first_turn(proxy, "first question").await;
    assert_eq!(first["status"], "completed", "{first}");
    assert!(!output_text(&first).is_empty(), "{first}");
    let (body, store_requested, responses) = upstream();
    assert_eq!(responses, 1);
    assert_eq!(body["store"], false, "{body}");
    assert!(body.get("previous_response_id").is_none(), "{body}");

    let (reply, events) = create_stream(
        proxy,
        ALPHA_KEY,
        &json!({"model": "chat", "input": "second question",
                "previous_response_id": id_of(&first)}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let second = assembled(&events);
    assert_eq!(second["status"], "completed", "{second}");
    assert!(!output_text(&second).is_empty(), "{second}");
    let (body, store_requested_after, responses) = upstream();
    assert_eq!(responses, 2);
    assert_eq!(body["store"], false, "{body}");
    assert!(body.get("previous_response_id").is_none(), "{body}");
    assert_carries_turn_one(&body, &first);
    assert_eq!((store_requested, store_requested_after), (0, 0));

    for response in [&first, &second] {
        let got = stored(proxy, ALPHA_KEY, id_of(response)).await;
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(output_text(&got.json()), output_text(response));
    }
    let spend = spend_after(proxy, 2).await;
    assert_eq!(
        spend["requests"], 2,
        "one metered request per turn: {spend}"
    );
    // Nothing more arrives later (a second metering would).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(spend_after(proxy, 2).await["requests"], 2);
}

#[tokio::test]
async fn a_native_openai_target_is_sent_store_false_and_the_proxy_stores() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let (dir, ledger) = sqlite_ledger("resp-native-openai");
    let proxy = Proxy::start(&routes(
        &ledger,
        "30d",
        &openai_provider(&sim.base_url(), true),
        "model: up-a",
    ))
    .await;
    native_turns(&proxy, || {
        let stats = sim.stats();
        (
            last_upstream_body(&sim),
            stats.store_requested,
            stats.responses_requests,
        )
    })
    .await;
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_native_azure_target_is_sent_store_false_and_the_proxy_stores() {
    let sim = AzureSim::start(AzureSimConfig {
        name: "azure-state".to_owned(),
        api_key: Some(AZURE_KEY.to_owned()),
        deployments: vec![AzureDeployment::new(DEPLOYMENT, "gpt-4o-2024-08-06")],
        ..AzureSimConfig::default()
    })
    .await
    .expect("starting the Azure simulator");
    let (dir, ledger) = sqlite_ledger("resp-native-azure");
    let provider = format!(
        "  up: {{ kind: azure, endpoint: \"{}\", api_key: {AZURE_KEY}, api_version: 2024-10-21, responses: native }}\n",
        sim.endpoint()
    );
    let proxy = Proxy::start(&routes(
        &ledger,
        "30d",
        &provider,
        &format!("deployment: {DEPLOYMENT}"),
    ))
    .await;
    native_turns(&proxy, || {
        let stats = sim.stats(DEPLOYMENT);
        (
            last_upstream_body(&sim),
            stats.store_requested,
            stats.responses_requests,
        )
    })
    .await;
    let paths: Vec<String> = sim.captured().into_iter().map(|c| c.path).collect();
    assert!(
        paths.iter().all(|p| p == "/openai/v1/responses"),
        "{paths:?}"
    );
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}
