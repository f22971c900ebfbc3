//! Scripted faults of the Anthropic simulator: errors before the answer, stream errors,
//! cuts and stalls, garbage and latency, and the quota's own 429.

use std::time::Duration;

use loadtest::{AnthropicFault, AnthropicSim, AnthropicSimConfig};
use serde_json::{json, Value};

use crate::support::{body, create, error_of, parse_sse, read_until_end, send, shape, start};

fn stream_body(text: &str) -> Value {
    let mut request = body(text);
    request["stream"] = json!(true);
    request
}

#[tokio::test]
async fn error_faults_answer_in_the_anthropic_error_shape() -> anyhow::Result<()> {
    let sim = start().await?;
    sim.push_faults([
        AnthropicFault::RateLimit {
            retry_after_secs: 7,
        },
        AnthropicFault::Overloaded,
        AnthropicFault::ApiError,
    ]);
    let response = send(&sim, "/v1/messages", &body("a")).await?;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert!(response.headers().contains_key("request-id"));
    assert_eq!(error_of(&response.json().await?).0, "rate_limit_error");
    let (status, error) = create(&sim, &body("b")).await?;
    assert_eq!(
        (status, error_of(&error).0.as_str()),
        (529, "overloaded_error")
    );
    let (status, error) = create(&sim, &body("c")).await?;
    assert_eq!((status, error_of(&error).0.as_str()), (500, "api_error"));
    let (status, _) = create(&sim, &body("d")).await?;
    assert_eq!(status, 200, "the queue is used up");
    let stats = sim.stats();
    assert_eq!((stats.message_requests, stats.served_ok), (4, 1));
    Ok(())
}

#[tokio::test]
async fn stream_error_event_after_n_events() -> anyhow::Result<()> {
    let sim = start().await?;
    sim.push_faults([AnthropicFault::StreamError { after_events: 3 }]);
    let response = send(&sim, "/v1/messages", &stream_body("hello")).await?;
    assert_eq!(response.status(), 200);
    let events = parse_sse(&response.text().await?)?;
    assert_eq!(shape(&events), ["message_start", "start0", "ping", "error"]);
    assert_eq!(
        events[3].data,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(sim.stats().served_ok, 0);
    Ok(())
}

#[tokio::test]
async fn stream_cut_closes_the_connection_after_n_events() -> anyhow::Result<()> {
    let sim = start().await?;
    sim.push_faults([AnthropicFault::StreamCut { after_events: 4 }]);
    let response = send(&sim, "/v1/messages", &stream_body("hello")).await?;
    let (text, error) = read_until_end(response, Duration::from_secs(10)).await;
    assert!(error.is_some_and(|e| e != "deadline"), "the body fails");
    assert_eq!(parse_sse(&text)?.len(), 4);
    // Non-stream: half a JSON body, then the cut.
    sim.push_faults([AnthropicFault::StreamCut { after_events: 0 }]);
    let response = send(&sim, "/v1/messages", &body("hello")).await?;
    assert_eq!(response.status(), 200);
    let (text, error) = read_until_end(response, Duration::from_secs(10)).await;
    assert!(error.is_some_and(|e| e != "deadline"));
    assert!(serde_json::from_str::<Value>(&text).is_err());
    Ok(())
}

#[tokio::test]
async fn stream_stall_holds_until_the_client_leaves_and_counts_a_cancel() -> anyhow::Result<()> {
    let sim = start().await?;
    sim.push_faults([AnthropicFault::StreamStall { after_events: 2 }]);
    let response = send(&sim, "/v1/messages", &stream_body("hello")).await?;
    let (text, error) = read_until_end(response, Duration::from_millis(300)).await;
    assert_eq!(error.as_deref(), Some("deadline"));
    assert_eq!(parse_sse(&text)?.len(), 2);
    // The response was dropped by read_until_end: the sim sees the client leave.
    let mut cancelled = 0;
    for _ in 0..100 {
        cancelled = sim.stats().cancelled_streams;
        if cancelled == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cancelled, 1);
    Ok(())
}

#[tokio::test]
async fn garbage_and_latency() -> anyhow::Result<()> {
    let sim = start().await?;
    sim.push_faults([AnthropicFault::Garbage, AnthropicFault::Garbage]);
    let response = send(&sim, "/v1/messages", &body("x")).await?;
    assert_eq!(response.status(), 200);
    assert!(serde_json::from_str::<Value>(&response.text().await?).is_err());
    let response = send(&sim, "/v1/messages", &stream_body("x")).await?;
    assert_eq!(response.status(), 200);
    assert!(parse_sse(&response.text().await?).is_err());

    // An hour of latency: no first byte within a short client timeout.
    sim.push_faults([AnthropicFault::Latency(Duration::from_secs(3600))]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()?;
    let result = impatient
        .post(format!("{}/v1/messages", sim.base_url()))
        .header("x-api-key", &sim.config().api_key)
        .header("anthropic-version", "2023-06-01")
        .json(&body("x"))
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert_eq!(create(&sim, &body("x")).await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn the_quota_answers_429_with_retry_after() -> anyhow::Result<()> {
    let mut config = AnthropicSimConfig::new("tight");
    config.quota.requests_per_minute = 2;
    let sim = AnthropicSim::start(config).await?;
    assert_eq!(create(&sim, &body("1")).await?.0, 200);
    let response = send(&sim, "/v1/messages", &body("2")).await?;
    assert_eq!(
        response.headers()["anthropic-ratelimit-requests-remaining"],
        "0"
    );
    let response = send(&sim, "/v1/messages", &body("3")).await?;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry));
    assert_eq!(error_of(&response.json().await?).0, "rate_limit_error");
    Ok(())
}
