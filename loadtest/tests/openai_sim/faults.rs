//! Each scripted fault kind, the queue/sticky semantics, and that hangs and
//! stalls end with the client (no leak) and never block other requests.

use std::time::Duration;

use loadtest::Fault;
use serde_json::Value;

use crate::support::{
    assert_error_shape, chat_body, chunks, client, client_with_timeout, eventually, post,
    post_json, read_body, start_default, stream_body,
};

#[tokio::test]
async fn rate_limit_fault_sends_retry_headers() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::RateLimit {
        retry_after_ms: 1500,
    }]);
    let response = post(&client()?, &sim, "/chat/completions", &chat_body("hi")).await?;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after-ms"], "1500");
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await?;
    assert_eq!(assert_error_shape(&body)?["code"], "rate_limit_exceeded");
    Ok(())
}

#[tokio::test]
async fn status_and_client_error_faults_use_the_error_shape() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let cases = [
        (Fault::Status(500), 500, "server_error"),
        (Fault::Status(503), 503, "server_error"),
        (Fault::Status(529), 529, "server_error"),
        (Fault::ClientError(400), 400, "invalid_request_error"),
        (Fault::ClientError(403), 403, "permission_denied"),
        (Fault::ClientError(404), 404, "invalid_request_error"),
        (Fault::ClientError(422), 422, "invalid_request_error"),
    ];
    for (fault, status, kind) in cases {
        sim.push_faults([fault]);
        let (got, body) = post_json(&sim, "/chat/completions", &chat_body("hi")).await?;
        assert_eq!(got, status);
        assert_eq!(assert_error_shape(&body)?["type"], kind);
    }
    Ok(())
}

#[tokio::test]
async fn queued_faults_are_consumed_one_per_request_sticky_until_cleared() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::Status(500), Fault::Status(502)]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            post_json(&sim, "/chat/completions", &chat_body("hi"))
                .await?
                .0,
        );
    }
    assert_eq!(statuses, [500, 502, 200]);

    sim.set_sticky_fault(Some(Fault::Status(503)));
    for _ in 0..2 {
        assert_eq!(
            post_json(
                &sim,
                "/embeddings",
                &serde_json::json!({"model": "e", "input": "x"})
            )
            .await?
            .0,
            503
        );
    }
    sim.set_sticky_fault(None);
    assert_eq!(
        post_json(&sim, "/chat/completions", &chat_body("hi"))
            .await?
            .0,
        200
    );
    let stats = sim.stats();
    assert_eq!(stats.requests, 6, "faulted requests count");
    assert_eq!(stats.served_ok, 2, "only complete answers");
    Ok(())
}

#[tokio::test]
async fn drop_mid_stream_truncates_without_done() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::DropMidStream { after_chunks: 2 }]);
    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("hi", true),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let received = read_body(response, Duration::from_secs(5)).await;
    assert!(
        received.error.is_some(),
        "the body ends with an error, not cleanly"
    );
    let data = received.data();
    assert!(!data.iter().any(|d| d == "[DONE]"));
    let chunks = chunks(&data)?;
    assert_eq!(chunks.len(), 3, "role + 2 content chunks");
    assert_eq!(chunks[2]["choices"][0]["delta"]["content"], " from");
    let stats = sim.stats();
    assert_eq!(
        (stats.served_ok, stats.completion_tokens),
        (0, 0),
        "nothing to meter"
    );
    Ok(())
}

#[tokio::test]
async fn drop_on_a_non_stream_request_truncates_the_body() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::DropMidStream { after_chunks: 0 }]);
    let response = post(&client()?, &sim, "/chat/completions", &chat_body("hi")).await?;
    assert_eq!(response.status(), 200);
    let received = read_body(response, Duration::from_secs(5)).await;
    assert!(received.error.is_some(), "short of content-length");
    assert!(!received.bytes.is_empty(), "part of the body arrived");
    assert!(serde_json::from_slice::<Value>(&received.bytes).is_err());
    Ok(())
}

#[tokio::test]
async fn hang_times_out_on_the_client_without_blocking_others_or_leaking() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::Hang]);
    let impatient = client_with_timeout(Duration::from_millis(300))?;
    let body = chat_body("hi");
    let hung = post(&impatient, &sim, "/chat/completions", &body);
    let other = async {
        // Give the hanging request a head start so it takes the fault.
        tokio::time::sleep(Duration::from_millis(50)).await;
        post_json(&sim, "/chat/completions", &chat_body("hi")).await
    };
    let (hung, other) = tokio::join!(hung, other);
    let error = hung.err().map(|e| format!("{e:?}")).unwrap_or_default();
    assert!(
        error.contains("TimedOut") || error.contains("timed out"),
        "client timeout: {error}"
    );
    assert_eq!(other?.0, 200, "a hang does not block other requests");
    assert!(
        eventually(Duration::from_secs(3), || sim.in_flight() == 0).await,
        "the hanging handler ends with its connection"
    );
    Ok(())
}

#[tokio::test]
async fn hang_mid_stream_stalls_after_chunks_and_ends_with_the_client() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::HangMidStream { after_chunks: 1 }]);
    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("hi", false),
    )
    .await?;
    let received = read_body(response, Duration::from_millis(300)).await;
    assert_eq!(received.error.as_deref(), Some("read timed out"));
    let chunks = chunks(&received.data())?;
    assert_eq!(chunks.len(), 2, "role + 1 content chunk, then silence");
    assert!(
        eventually(Duration::from_secs(3), || sim.in_flight() == 0).await,
        "the stalled producer stops once the client is gone"
    );
    Ok(())
}

#[tokio::test]
async fn garbage_is_not_json() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::Garbage, Fault::Garbage]);
    let response = post(&client()?, &sim, "/chat/completions", &chat_body("hi")).await?;
    assert_eq!(response.status(), 200);
    assert!(serde_json::from_slice::<Value>(&response.bytes().await?).is_err());

    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("hi", false),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let data = read_body(response, Duration::from_secs(5)).await.data();
    let payloads: Vec<&String> = data.iter().filter(|d| *d != "[DONE]").collect();
    assert!(!payloads.is_empty());
    assert!(payloads
        .iter()
        .all(|d| serde_json::from_str::<Value>(d).is_err()));
    assert_eq!(sim.stats().served_ok, 0);
    Ok(())
}

#[tokio::test]
async fn wrong_shape_is_an_error_object_in_a_200() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::WrongShape, Fault::WrongShape]);
    let response = post(&client()?, &sim, "/chat/completions", &chat_body("hi")).await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body.get("choices").is_none());

    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("hi", false),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let received = read_body(response, Duration::from_secs(5)).await;
    assert!(received.error.is_none(), "the stream ends cleanly");
    let data = received.data();
    assert_eq!(data.len(), 1, "one event and no [DONE]: {data:?}");
    let event: Value = serde_json::from_str(&data[0])?;
    assert!(event["error"]["message"].is_string(), "{event}");
    assert_eq!(sim.stats().served_ok, 0);
    Ok(())
}

#[tokio::test]
async fn shutdown_ends_hangs_and_stops_listening() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.set_sticky_fault(Some(Fault::Hang));
    let addr = sim.addr();
    let url = format!("{}/chat/completions", sim.base_url());
    let pending = tokio::spawn(async move {
        let client = client()?;
        client
            .post(url)
            .json(&chat_body("hi"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(anyhow::Error::from)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.shutdown();
    // The hang resolves (503) well before the 10 s client timeout.
    let status = tokio::time::timeout(Duration::from_secs(3), pending).await???;
    assert_eq!(status, 503);
    let refused = async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    };
    assert!(refused.await, "listener closed after shutdown");
    Ok(())
}

#[tokio::test]
async fn shutdown_mid_stream_aborts_instead_of_ending_cleanly() -> anyhow::Result<()> {
    let sim = crate::support::start(loadtest::SimConfig {
        inter_token: Duration::from_millis(200),
        ..loadtest::SimConfig::default()
    })
    .await?;
    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("hi", false),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.shutdown();
    let received = read_body(response, Duration::from_secs(3)).await;
    assert!(
        received.error.is_some(),
        "a cut stream must not look complete"
    );
    assert!(!received.data().iter().any(|d| d == "[DONE]"));
    Ok(())
}
