//! Hostile and slow clients (issue 15, items 2, 5 and 6), through the real binary with short
//! configured timeouts: slowloris headers, silent and idle kept-alive connections are
//! closed; a slow upload gets 408 with no upstream contacted; an oversized header block
//! gets 431; pipelined requests are both served; a saturated client listener under a low
//! descriptor limit leaves `/healthz` answering and serves again once the idle sockets time out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::Value;
use switchyard_e2e::slow_client::{self, models_request, post_request};
use switchyard_e2e::{
    get, http_client, one_sim_routes, post_json, start_sim, Proxy, ALPHA_KEY, UPSTREAM_KEY_A,
};
use tokio::net::TcpStream;

/// Short bounds, so that each behaviour shows within a couple of seconds.
const SERVER: &str = "header_read_timeout: 1s\nkeepalive_idle_timeout: 1s\nbody_read_timeout: 1s\nmax_header_bytes: 16KiB";
/// How long any of the clients below waits before calling the connection "never closed".
const BOUND: Duration = Duration::from_secs(6);

const CHAT: &str = r#"{"model":"chat","messages":[{"role":"user","content":"hello"}]}"#;

fn json_of(text: &str) -> Value {
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not a JSON body ({e}): {text}"))
}

#[tokio::test]
async fn slow_silent_and_idle_connections_are_closed() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let proxy = Proxy::start(&one_sim_routes(&sim.base_url(), SERVER)).await;
    let addr = proxy.addr();

    let header = format!(
        "GET /v1/models HTTP/1.1\r\nhost: proxy\r\nx-slow: {}\r\n\r\n",
        "a".repeat(200)
    );
    let (slowloris, silent, idle) = tokio::join!(
        slow_client::slowloris(addr, header.as_bytes(), Duration::from_millis(100), BOUND),
        slow_client::silent(addr, BOUND),
        async {
            let mut stream = slow_client::connect(addr).await;
            tokio::io::AsyncWriteExt::write_all(&mut stream, models_request(ALPHA_KEY).as_bytes())
                .await
                .unwrap();
            slow_client::read_until_closed(&mut stream, BOUND).await
        },
    );
    println!(
        "slowloris: {slowloris:?}\nsilent: {silent:?}\nidle: {}",
        idle.text()
    );
    assert!(
        slowloris.closed_after.is_some(),
        "a header sent a byte at a time was never cut"
    );
    assert!(
        slowloris.received.is_empty(),
        "no answer is owed to an unfinished header"
    );
    assert!(
        silent.closed_after.is_some(),
        "a connection that sends nothing stayed open"
    );
    assert_eq!(idle.status(), Some(200), "{}", idle.text());
    assert!(
        idle.closed_after.is_some(),
        "an idle kept-alive connection stayed open"
    );
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains("switchyard_client_timeouts_total{phase=\"header\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_upload_gets_408_and_never_reaches_the_upstream() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let proxy = Proxy::start(&one_sim_routes(&sim.base_url(), SERVER)).await;
    let addr = proxy.addr();
    let chat_head = post_request("/v1/chat/completions", ALPHA_KEY, "", "keep-alive").replace(
        "content-length: 0",
        &format!("content-length: {}", CHAT.len()),
    );
    let messages_body =
        r#"{"model":"chat","max_tokens":8,"messages":[{"role":"user","content":"hello"}]}"#;
    let messages_head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: proxy\r\nx-api-key: {ALPHA_KEY}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        messages_body.len()
    );
    let pace = Duration::from_millis(300);
    let (chat, messages) = tokio::join!(
        slow_client::slow_body(addr, &chat_head, CHAT.as_bytes(), pace, BOUND),
        slow_client::slow_body(addr, &messages_head, messages_body.as_bytes(), pace, BOUND),
    );
    println!("chat: {}\nmessages: {}", chat.text(), messages.text());
    assert_eq!(chat.status(), Some(408), "{}", chat.text());
    let error = json_of(&chat.text());
    assert_eq!(error["error"]["code"], "client_timeout", "{error}");
    assert_eq!(messages.status(), Some(408), "{}", messages.text());
    let error = json_of(&messages.text());
    assert_eq!(error["type"], "error", "Anthropic's error shape: {error}");
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    assert_eq!(
        sim.stats().requests,
        0,
        "a client that never finished its body reached the upstream"
    );

    // The same request sent at once is served: the bound is on the client, not the route.
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &serde_json::from_str(CHAT).unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn an_oversized_header_block_gets_431() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let proxy = Proxy::start(&one_sim_routes(&sim.base_url(), SERVER)).await;
    let addr = proxy.addr();
    let over_limit = format!(
        "GET /v1/models HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {ALPHA_KEY}\r\nx-padding: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let megabyte = format!(
        "GET /v1/models HTTP/1.1\r\nhost: proxy\r\nx-padding: {}\r\n\r\n",
        "a".repeat(1_000_000)
    );
    for (name, request) in [("20 KiB", over_limit), ("1 MB", megabyte)] {
        let outcome = slow_client::exchange(addr, request.as_bytes(), BOUND).await;
        assert_eq!(outcome.status(), Some(431), "{name}: {}", outcome.text());
        let error = json_of(&outcome.text());
        assert_eq!(
            error["error"]["code"], "request_header_too_large",
            "{name}: {error}"
        );
        assert!(
            outcome.closed_after.is_some(),
            "{name}: the connection stayed open"
        );
    }
    // Under the limit it is served.
    let normal = slow_client::exchange(
        addr,
        format!("GET /v1/models HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {ALPHA_KEY}\r\nx-padding: {}\r\nconnection: close\r\n\r\n", "a".repeat(8 * 1024)).as_bytes(),
        BOUND,
    )
    .await;
    assert_eq!(normal.status(), Some(200), "{}", normal.text());
}

#[tokio::test]
async fn two_pipelined_requests_are_both_served_in_order() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let proxy = Proxy::start(&one_sim_routes(&sim.base_url(), SERVER)).await;
    let pipelined = format!(
        "{}{}",
        post_request("/v1/chat/completions", ALPHA_KEY, CHAT, "keep-alive"),
        post_request("/v1/chat/completions", "sk-wrong-key", CHAT, "close"),
    );
    let outcome = slow_client::exchange(proxy.addr(), pipelined.as_bytes(), BOUND).await;
    println!("{}", outcome.text());
    // The first is served, then the second (its wrong key makes its answer tell them apart).
    assert_eq!(outcome.statuses(), [200, 401], "{}", outcome.text());
    assert!(
        outcome.closed_after.is_some(),
        "`connection: close` on the second is honoured"
    );
    assert_eq!(sim.stats().chat_requests, 1);
}

#[tokio::test]
async fn a_saturated_client_listener_leaves_the_admin_port_answering() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    // 256 descriptors: before issue 15, 300 idle sockets made accept fail with EMFILE and
    // starved /healthz. Now at most 40 client connections are held, each for 2 s at most.
    let server = "header_read_timeout: 2s\nmax_client_connections: 40";
    let proxy = Proxy::start_with_nofile(&one_sim_routes(&sim.base_url(), server), 256).await;
    let addr = proxy.addr();
    let mut idle = Vec::new();
    for _ in 0..300 {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => idle.push(stream),
            other => panic!("connecting an idle socket failed: {other:?}"),
        }
    }
    let health = get(&proxy.admin("/healthz"), None).await;
    assert_eq!(health.status, 200, "{}", health.body);

    // Past the bound a connection is answered 503 (or closed) at once, not left waiting.
    let refused = slow_client::exchange(
        addr,
        models_request(ALPHA_KEY).as_bytes(),
        Duration::from_secs(2),
    )
    .await;
    assert!(
        refused.closed_after.is_some(),
        "a connection past the bound was left open"
    );
    if let Some(status) = refused.status() {
        assert_eq!(status, 503, "{}", refused.text());
        assert_eq!(
            json_of(&refused.text())["error"]["code"],
            "too_many_connections"
        );
    }
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    let refused_total: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("switchyard_client_connections_refused_total "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_default();
    assert!(
        refused_total >= 200.0,
        "refused {refused_total}:\n{metrics}"
    );

    // The held sockets time out (header_read_timeout); a normal request is served again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(3),
            http_client()
                .post(proxy.url("/chat/completions"))
                .bearer_auth(ALPHA_KEY)
                .header("content-type", "application/json")
                .body(CHAT)
                .send(),
        )
        .await;
        if let Ok(Ok(response)) = attempt {
            if response.status() == 200 {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no chat request was served after the idle sockets timed out"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(idle);
    assert!(
        proxy.log().contains("descriptor_limit=256"),
        "{}",
        proxy.log()
    );
}
