//! The stored-response endpoints through the real binary (issue 11, the proxy-owned
//! conversation store): `GET`/`DELETE /v1/responses/{id}` and `input_items` over rows written
//! straight into the ledger's SQLite file, for the caller's team only; expired rows are 404
//! and swept; stored rows survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sqlx::Connection;
use switchyard_e2e::http::{http_client, within, Reply};
use switchyard_e2e::{get, key_hash, start_sim, Proxy, ALPHA_KEY, UPSTREAM_KEY_A};

const BETA_KEY: &str = "sk-beta-e2e-7c41aa09e2";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn routes(sim_url: &str, ledger_url: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
ledger:
  url: "{ledger_url}"
responses:
  retention: 30d
providers:
  sim-a: {{ kind: openai, base_url: "{sim_url}", api_key: {UPSTREAM_KEY_A} }}
models:
  chat: {{ targets: [ {{ provider: sim-a, model: up-a, price: free }} ] }}
teams:
  alpha: {{ keys: ["{alpha}"], models: [chat] }}
  beta: {{ keys: ["{beta}"], models: [chat] }}
"#,
        alpha = key_hash(ALPHA_KEY),
        beta = key_hash(BETA_KEY),
    )
}

/// A stored turn as the proxy writes it: `(id, team, created_at, expires_at, input items)`.
async fn insert(
    db: &mut sqlx::SqliteConnection,
    id: &str,
    team: &str,
    expires_at: i64,
    input_items: &Value,
) {
    let response = json!({"id": id, "object": "response", "status": "completed",
        "model": "chat", "output": [{"id": format!("msg_out_{id}"), "type": "message",
        "role": "assistant", "content": [{"type": "output_text", "text": "stored"}]}]});
    sqlx::query(
        "INSERT INTO switchyard_responses (id, team, model, provider, previous_response_id, \
         created_at, expires_at, input_items, output_items, response) \
         VALUES ($1, $2, 'chat', 'sim-a', NULL, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(team)
    .bind(expires_at - 30 * 86_400)
    .bind(expires_at)
    .bind(input_items.to_string())
    .bind(response["output"].to_string())
    .bind(response.to_string())
    .execute(&mut *db)
    .await
    .unwrap();
}

async fn delete(url: &str, key: &str) -> Reply {
    let response = within(http_client().delete(url).bearer_auth(key).send())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = within(response.text()).await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn assert_not_found(reply: &Reply, id: &str) {
    assert_eq!(reply.status, 404, "{}", reply.body);
    let error = reply.error();
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "not_found");
    assert_eq!(
        error["message"],
        format!("Response with id '{id}' not found.")
    );
}

async fn rows(db: &mut sqlx::SqliteConnection, id: &str) -> i64 {
    sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM switchyard_responses WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *db)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn stored_responses_are_served_to_their_team_only_and_expire() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let dir = switchyard_e2e::scratch_dir("sy-responses-store");
    let ledger_url = format!("sqlite://{}/ledger.db", dir.display());
    let yaml = routes(&sim.base_url(), &ledger_url);
    // The first start creates the schema (migration 6); rows are then written beside it.
    let proxy = Proxy::start(&yaml).await;
    let mut db = sqlx::SqliteConnection::connect(&ledger_url).await.unwrap();
    let items = json!([
        {"id": "msg_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"id": "fc_2", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"id": "fco_3", "type": "function_call_output", "call_id": "call_1", "output": "42"}
    ]);
    let later = now() + 86_400;
    insert(&mut db, "resp_alpha", "alpha", later, &items).await;
    insert(&mut db, "resp_beta", "beta", later, &items).await;
    insert(&mut db, "resp_expired", "alpha", now() - 60, &items).await;

    // GET: the stored object, to its own team only.
    let got = get(&proxy.url("/responses/resp_alpha"), Some(ALPHA_KEY)).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["output"][0]["content"][0]["text"], "stored");
    assert_eq!(got.json()["id"], "resp_alpha");
    assert_not_found(
        &get(&proxy.url("/responses/resp_beta"), Some(ALPHA_KEY)).await,
        "resp_beta",
    );
    assert_not_found(
        &get(&proxy.url("/responses/resp_alpha"), Some(BETA_KEY)).await,
        "resp_alpha",
    );
    assert_eq!(
        get(&proxy.url("/responses/resp_alpha"), None).await.status,
        401
    );
    // Expired: invisible through every endpoint.
    assert_not_found(
        &get(&proxy.url("/responses/resp_expired"), Some(ALPHA_KEY)).await,
        "resp_expired",
    );
    assert_not_found(
        &get(
            &proxy.url("/responses/resp_expired/input_items"),
            Some(ALPHA_KEY),
        )
        .await,
        "resp_expired",
    );

    // input_items: newest first by default, paged with limit/after/order.
    let page = get(
        &proxy.url("/responses/resp_alpha/input_items"),
        Some(ALPHA_KEY),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    assert_eq!(page["object"], "list");
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fco_3", "fc_2", "msg_1"]);
    assert_eq!(
        (page["first_id"].as_str(), page["last_id"].as_str()),
        (Some("fco_3"), Some("msg_1"))
    );
    assert_eq!(page["has_more"], false);
    let asc = get(
        &proxy.url("/responses/resp_alpha/input_items?order=asc&limit=1&after=msg_1"),
        Some(ALPHA_KEY),
    )
    .await
    .json();
    assert_eq!(asc["data"][0]["id"], "fc_2");
    assert_eq!(asc["has_more"], true);
    let bad = get(
        &proxy.url("/responses/resp_alpha/input_items?limit=0"),
        Some(ALPHA_KEY),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error()["param"], "limit");
    assert_not_found(
        &get(
            &proxy.url("/responses/resp_alpha/input_items"),
            Some(BETA_KEY),
        )
        .await,
        "resp_alpha",
    );

    // DELETE: another team's id is 404 and stays; the owner's answer is OpenAI's receipt.
    assert_not_found(
        &delete(&proxy.url("/responses/resp_alpha"), BETA_KEY).await,
        "resp_alpha",
    );
    assert_eq!(rows(&mut db, "resp_alpha").await, 1);
    let deleted = delete(&proxy.url("/responses/resp_alpha"), ALPHA_KEY).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        deleted.json(),
        json!({"id": "resp_alpha", "object": "response", "deleted": true})
    );
    assert_not_found(
        &get(&proxy.url("/responses/resp_alpha"), Some(ALPHA_KEY)).await,
        "resp_alpha",
    );
    assert_eq!(rows(&mut db, "resp_alpha").await, 0);

    // The retention sweep (its first run is at start-up, then every minute) deletes the
    // expired row: restart, so that a sweep runs after the row was written.
    drop(proxy);
    let proxy = Proxy::start(&yaml).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while rows(&mut db, "resp_expired").await > 0 {
        assert!(Instant::now() < deadline, "the expired row was not swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains("switchyard_responses_expired_total 1"),
        "{metrics}"
    );
    // Stored rows survive the restart.
    let kept = get(&proxy.url("/responses/resp_beta"), Some(BETA_KEY)).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(kept.json()["id"], "resp_beta");
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}
