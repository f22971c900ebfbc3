//! `SIGTERM` (issue 15, item 7), through the real binary: with nothing in flight the process
//! exits at once, not after a fixed wait; with a stream in flight it stops accepting, lets
//! the stream finish, writes the ledger and exits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use loadtest::{OpenAiSim, SimConfig};
use serde_json::json;
use sqlx::Connection;
use switchyard_e2e::{
    http_client, one_sim_routes, sse_data, start_sim, Proxy, ALPHA_KEY, UPSTREAM_KEY_A,
};

/// Far longer than any of the waits below: an exit within them is not the grace running out.
const GRACE: &str = "shutdown_grace: 60s";
/// A generous bound on "promptly": pingora's old fixed wait alone was 10 s, plus 5 s.
const PROMPTLY: Duration = Duration::from_secs(8);

#[tokio::test]
async fn with_nothing_in_flight_sigterm_exits_at_once() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let mut proxy = Proxy::start(&one_sim_routes(&sim.base_url(), GRACE)).await;
    proxy.signal("TERM");
    let status = proxy.wait_exit(PROMPTLY).await;
    let log = proxy.log();
    assert!(
        status.is_some(),
        "still running {PROMPTLY:?} after SIGTERM with nothing in flight:\n{log}"
    );
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    assert!(log.contains("drained: every request finished"), "{log}");
}

#[tokio::test]
async fn sigterm_lets_a_stream_finish_refuses_new_connections_and_flushes_the_ledger() {
    // 20 tokens 150 ms apart: a stream of about 3 s, still running when SIGTERM arrives.
    let sim = OpenAiSim::start(SimConfig {
        name: "sim-a".to_owned(),
        api_key: Some(UPSTREAM_KEY_A.to_owned()),
        inter_token: Duration::from_millis(150),
        output_tokens: 20,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = switchyard_e2e::scratch_dir("sy-shutdown");
    let ledger = format!("sqlite://{}/ledger.db", dir.display());
    let yaml = one_sim_routes(&sim.base_url(), GRACE).replace(
        "providers:\n",
        &format!("ledger:\n  url: \"{ledger}\"\n  flush_interval: 1h\nproviders:\n"),
    );
    let mut proxy = Proxy::start(&yaml).await;

    let mut response = http_client()
        .post(proxy.url("/chat/completions"))
        .bearer_auth(ALPHA_KEY)
        .header("x-request-id", "drained-stream-1")
        .json(
            &json!({"model": "chat", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hello"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = Vec::new();
    let first = response.chunk().await.unwrap().expect("a first chunk");
    body.extend_from_slice(&first);

    proxy.signal("TERM");
    // The listener closes: a new connection is refused while the stream still runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        if tokio::net::TcpStream::connect(proxy.addr()).await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "new connections were still accepted during the drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the stream stalled")
        .expect("the stream was cut during the drain")
    {
        body.extend_from_slice(&chunk);
    }
    let events = sse_data(&String::from_utf8_lossy(&body));
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );

    let status = proxy.wait_exit(PROMPTLY).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        proxy.log()
    );
    // flush_interval is an hour: the row is there because shutdown wrote the buffer.
    let mut db = sqlx::SqliteConnection::connect(&ledger).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM switchyard_ledger WHERE request_id = 'drained-stream-1' AND output_tokens > 0",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(rows, 1, "the drained stream's ledger row:\n{}", proxy.log());
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}
