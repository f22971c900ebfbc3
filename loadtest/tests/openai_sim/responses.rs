//! `POST /v1/responses` on the wire: the response object, the event stream with its
//! sequence numbers, the stateless refusals, the `store` count, and every fault kind.

use std::time::Duration;

use anyhow::Context;
use loadtest::{answer_text, Fault, SimConfig};
use serde_json::{json, Value};

use crate::support::{
    assert_error_shape, client, client_with_timeout, eventually, post, post_json, read_body, start,
    start_default,
};

const PATH: &str = "/responses";

fn ask(text: &str) -> Value {
    json!({"model": "gpt-test", "input": text, "store": false})
}

fn streamed(text: &str) -> Value {
    let mut body = ask(text);
    body["stream"] = json!(true);
    body
}

/// The `(event name, data)` of every complete SSE event.
fn events(bytes: &[u8]) -> anyhow::Result<Vec<(String, Value)>> {
    String::from_utf8_lossy(bytes)
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let name = block
                .lines()
                .find_map(|line| line.strip_prefix("event: "))
                .context("event line")?;
            let data = block
                .lines()
                .find_map(|line| line.strip_prefix("data: "))
                .context("data line")?;
            let data: Value = serde_json::from_str(data).with_context(|| format!("data {data}"))?;
            Ok((name.to_owned(), data))
        })
        .collect()
}

fn deltas(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .filter_map(|(_, data)| data["delta"].as_str())
        .collect()
}

#[tokio::test]
async fn a_plain_answer_is_a_response_object() -> anyhow::Result<()> {
    let sim = start(SimConfig {
        name: "resp".into(),
        api_key: Some("k".into()),
        ..SimConfig::default()
    })
    .await?;
    let response = client()?
        .post(format!("{}{PATH}", sim.base_url()))
        .bearer_auth("k")
        .json(&ask("hello"))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-sim-name"], "resp");
    let body: Value = response.json().await?;
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        answer_text("resp", 8)
    );
    assert_eq!(body["usage"]["output_tokens"], 8);
    let unauthorized = client()?
        .post(format!("{}{PATH}", sim.base_url()))
        .json(&ask("hello"))
        .send()
        .await?;
    assert_eq!(unauthorized.status(), 401);

    let stats = sim.stats();
    assert_eq!((stats.responses_requests, stats.served_ok), (2, 1));
    assert_eq!((stats.prompt_tokens, stats.completion_tokens), (5, 8));
    assert_eq!(stats.store_requested, 0, "store: false was sent");
    assert_eq!(stats.chat_requests, 0);
    Ok(())
}

#[tokio::test]
async fn store_is_counted_and_previous_response_id_is_refused() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let (status, _) = post_json(&sim, PATH, &json!({"model": "m", "input": "x"})).await?;
    assert_eq!(status, 200);
    let (status, _) = post_json(
        &sim,
        PATH,
        &json!({"model": "m", "input": "x", "store": true}),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(sim.stats().store_requested, 2, "absent store means true");

    let chained = json!({"model": "m", "input": "x", "previous_response_id": "resp_1"});
    let (status, body) = post_json(&sim, PATH, &chained).await?;
    assert_eq!(status, 400);
    let error = assert_error_shape(&body)?;
    assert_eq!(error["code"], "previous_response_not_found");
    assert_eq!(error["param"], "previous_response_id");
    Ok(())
}

#[tokio::test]
async fn a_stream_numbers_its_events_from_zero_and_completes() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let response = post(&client()?, &sim, PATH, &streamed("hi")).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let received = read_body(response, Duration::from_secs(5)).await;
    assert!(received.error.is_none(), "{:?}", received.error);
    let events = events(&received.bytes)?;
    for (seq, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], seq as u64, "{name}");
        assert_eq!(data["type"], name.as_str());
    }
    assert_eq!(events[0].0, "response.created");
    let (last, completed) = events.last().context("events")?;
    assert_eq!(last, "response.completed");
    assert_eq!(deltas(&events), answer_text("openai-sim", 8));
    assert_eq!(completed["response"]["usage"]["total_tokens"], 4 + 8);
    assert_eq!(sim.stats().stream_requests, 1);
    assert_eq!(sim.stats().served_ok, 1);
    Ok(())
}

#[tokio::test]
async fn a_dropped_stream_delivers_n_deltas_then_breaks() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::DropMidStream { after_chunks: 3 }]);
    let response = post(&client()?, &sim, PATH, &streamed("hi")).await?;
    assert_eq!(response.status(), 200);
    let received = read_body(response, Duration::from_secs(5)).await;
    assert!(received.error.is_some(), "the connection must break");
    let events = events(&received.bytes)?;
    assert_eq!(deltas(&events), "Hello from openai-sim");
    assert!(events.iter().all(|(name, _)| name != "response.completed"));
    assert_eq!(sim.stats().served_ok, 0);
    Ok(())
}

#[tokio::test]
async fn a_stalled_stream_ends_with_the_client() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::HangMidStream { after_chunks: 1 }]);
    let client = client_with_timeout(Duration::from_secs(10))?;
    let response = post(&client, &sim, PATH, &streamed("hi")).await?;
    let received = read_body(response, Duration::from_millis(300)).await;
    assert_eq!(received.error.as_deref(), Some("read timed out"));
    assert_eq!(deltas(&events(&received.bytes)?), "Hello");
    assert!(eventually(Duration::from_secs(5), || sim.in_flight() == 0).await);
    Ok(())
}

#[tokio::test]
async fn errors_garbage_and_wrong_shapes_apply_as_on_the_chat_path() -> anyhow::Result<()> {
    let sim = start_default().await?;
    sim.push_faults([Fault::RateLimit {
        retry_after_ms: 2000,
    }]);
    let limited = post(&client()?, &sim, PATH, &ask("hi")).await?;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");

    sim.push_faults([Fault::Status(503)]);
    let (status, body) = post_json(&sim, PATH, &ask("hi")).await?;
    assert_eq!(status, 503);
    assert_error_shape(&body)?;

    sim.push_faults([Fault::WrongShape]);
    let response = post(&client()?, &sim, PATH, &streamed("hi")).await?;
    let events = events(&read_body(response, Duration::from_secs(5)).await.bytes)?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "error");
    assert_eq!(events[0].1["error"]["code"], "server_error");

    sim.push_faults([Fault::Garbage]);
    let response = post(&client()?, &sim, PATH, &streamed("hi")).await?;
    let text = String::from_utf8_lossy(&read_body(response, Duration::from_secs(5)).await.bytes)
        .into_owned();
    assert!(text.contains("data: this is not json"), "{text}");

    sim.push_faults([Fault::DropMidStream { after_chunks: 0 }]);
    let response = post(&client()?, &sim, PATH, &ask("hi")).await?;
    let received = read_body(response, Duration::from_secs(5)).await;
    assert!(received.error.is_some(), "a non-stream answer is cut too");
    assert!(serde_json::from_slice::<Value>(&received.bytes).is_err());
    Ok(())
}
