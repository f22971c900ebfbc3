//! Embeddings, models, authentication, rate limiting, 404s, stats and the control API.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use loadtest::SimConfig;
use serde_json::{json, Value};

use crate::support::{
    assert_error_shape, chat_body, client, post, post_json, start, start_default,
};

fn vector(value: &Value) -> anyhow::Result<Vec<f32>> {
    value
        .as_array()
        .context("float embedding")?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32).context("number"))
        .collect()
}

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let body = json!({"model": "text-embedding-3-small", "input": ["hello", "world"]});
    let (status, first) = post_json(&sim, "/embeddings", &body).await?;
    assert_eq!(status, 200);
    assert_eq!(first["object"], "list");
    assert_eq!(first["model"], "text-embedding-3-small");
    assert_eq!(first["data"][1]["index"], 1);
    assert_eq!(first["data"][0]["object"], "embedding");
    let a = vector(&first["data"][0]["embedding"])?;
    assert_eq!(a.len(), 8, "default dimensions");
    let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_ne!(a, vector(&first["data"][1]["embedding"])?);
    // ceil(5/4) + ceil(5/4)
    assert_eq!(
        first["usage"],
        json!({"prompt_tokens": 4, "total_tokens": 4})
    );
    let (_, again) = post_json(&sim, "/embeddings", &body).await?;
    assert_eq!(first["data"], again["data"]);

    let (_, sized) = post_json(
        &sim,
        "/embeddings",
        &json!({"model": "e", "input": [1, 2, 3], "dimensions": 3}),
    )
    .await?;
    assert_eq!(vector(&sized["data"][0]["embedding"])?.len(), 3);
    assert_eq!(
        sized["usage"]["prompt_tokens"], 3,
        "token arrays count their tokens"
    );
    Ok(())
}

#[tokio::test]
async fn base64_embeddings_decode_to_the_float_ones() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let (_, floats) = post_json(
        &sim,
        "/embeddings",
        &json!({"model": "e", "input": "hi", "dimensions": 5}),
    )
    .await?;
    let (_, encoded) = post_json(
        &sim,
        "/embeddings",
        &json!({"model": "e", "input": "hi", "dimensions": 5, "encoding_format": "base64"}),
    )
    .await?;
    let text = encoded["data"][0]["embedding"]
        .as_str()
        .context("base64 string")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(decoded, vector(&floats["data"][0]["embedding"])?);
    Ok(())
}

#[tokio::test]
async fn invalid_embeddings_requests_get_400() -> anyhow::Result<()> {
    let sim = start_default().await?;
    for body in [
        json!({"input": "x"}),
        json!({"model": "e"}),
        json!({"model": "e", "input": []}),
        json!({"model": "e", "input": "x", "dimensions": 0}),
        json!({"model": "e", "input": "x", "encoding_format": "hex"}),
    ] {
        let (status, answer) = post_json(&sim, "/embeddings", &body).await?;
        assert_eq!(status, 400, "{body}");
        assert_error_shape(&answer)?;
    }
    Ok(())
}

#[tokio::test]
async fn models_list_and_retrieve() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let list: Value = client()?
        .get(format!("{}/models", sim.base_url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().context("data")?;
    assert!(!data.is_empty());
    for model in data {
        assert_eq!(model["object"], "model");
        assert_eq!(model["owned_by"], "sim");
        assert!(model["id"].is_string() && model["created"].is_u64());
    }
    let one: Value = client()?
        .get(format!("{}/models/gpt-x", sim.base_url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(one["id"], "gpt-x");
    Ok(())
}

#[tokio::test]
async fn api_key_is_required_when_configured() -> anyhow::Result<()> {
    let sim = start(SimConfig {
        api_key: Some("sk-sim".to_owned()),
        ..SimConfig::default()
    })
    .await?;
    let url = format!("{}/chat/completions", sim.base_url());
    let client = client()?;
    for auth in [None, Some("Bearer wrong"), Some("sk-sim")] {
        let mut request = client.post(&url).json(&chat_body("hi"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await?;
        assert_eq!(response.status(), 401, "{auth:?}");
        let body: Value = response.json().await?;
        assert_eq!(assert_error_shape(&body)?["code"], "invalid_api_key");
    }
    let response = client
        .post(&url)
        .bearer_auth("sk-sim")
        .json(&chat_body("hi"))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    Ok(())
}

#[tokio::test]
async fn rpm_limit_answers_429_with_retry_after() -> anyhow::Result<()> {
    let sim = start(SimConfig {
        rpm_limit: Some(2),
        ..SimConfig::default()
    })
    .await?;
    let client = client()?;
    let mut remaining = Vec::new();
    for _ in 0..2 {
        let response = post(&client, &sim, "/chat/completions", &chat_body("hi")).await?;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit-requests"], "2");
        remaining.push(
            response.headers()["x-ratelimit-remaining-requests"]
                .to_str()?
                .to_owned(),
        );
    }
    assert_eq!(remaining, ["1", "0"]);
    let response = post(&client, &sim, "/chat/completions", &chat_body("hi")).await?;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str()?.parse()?;
    assert!(
        (1..=60).contains(&retry_after),
        "seconds until the window ends: {retry_after}"
    );
    let retry_after_ms: u64 = response.headers()["retry-after-ms"].to_str()?.parse()?;
    assert!(retry_after_ms <= 60_000);
    assert!(response.headers()["x-ratelimit-reset-requests"]
        .to_str()?
        .ends_with('s'));
    let body: Value = response.json().await?;
    assert_eq!(assert_error_shape(&body)?["code"], "rate_limit_exceeded");
    sim.reset_stats();
    assert_eq!(
        post_json(&sim, "/chat/completions", &chat_body("hi"))
            .await?
            .0,
        200,
        "reset restarts the window"
    );
    Ok(())
}

#[tokio::test]
async fn rate_limit_headers_can_be_turned_off() -> anyhow::Result<()> {
    let sim = start(SimConfig {
        send_rate_limit_headers: false,
        ..SimConfig::default()
    })
    .await?;
    let response = post(&client()?, &sim, "/chat/completions", &chat_body("hi")).await?;
    assert!(!response
        .headers()
        .keys()
        .any(|name| name.as_str().starts_with("x-ratelimit")));
    Ok(())
}

#[tokio::test]
async fn unknown_paths_get_an_openai_style_404() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let response = client()?
        .get(format!("{}/nope", sim.base_url()))
        .send()
        .await?;
    assert_eq!(response.status(), 404);
    assert_error_shape(&response.json().await?)?;
    Ok(())
}

#[tokio::test]
async fn stats_count_requests_and_usage() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let client = client()?;
    client
        .post(format!("{}/chat/completions", sim.base_url()))
        .header("x-trace", "abc")
        .json(&chat_body("hello world!"))
        .send()
        .await?
        .error_for_status()?;
    let stream = crate::support::stream_body("hi", true);
    let response = post(&client, &sim, "/chat/completions", &stream).await?;
    let received = crate::support::read_body(response, Duration::from_secs(5)).await;
    assert!(received.error.is_none());
    post_json(&sim, "/embeddings", &json!({"model": "e", "input": "abcd"})).await?;
    post_json(&sim, "/chat/completions", &json!({"model": "m"})).await?;

    let stats = sim.stats();
    assert_eq!(stats.requests, 4);
    assert_eq!(
        (
            stats.chat_requests,
            stats.stream_requests,
            stats.embedding_requests
        ),
        (3, 1, 1)
    );
    assert_eq!(stats.served_ok, 3);
    assert_eq!(stats.include_usage_requested, 1);
    // chat: 6 + stream: ceil(2/4)+3 = 4 + embeddings: 1
    assert_eq!(stats.prompt_tokens, 6 + 4 + 1);
    assert_eq!(stats.completion_tokens, 16);
    assert_eq!(stats.last_body, Some(json!({"model": "m"})));

    sim.reset_stats();
    post(&client.clone(), &sim, "/chat/completions", &chat_body("x")).await?;
    let mut request = client
        .post(format!("{}/chat/completions", sim.base_url()))
        .json(&chat_body("y"));
    request = request.header("X-Trace", "abc");
    request.send().await?;
    let stats = sim.stats();
    assert_eq!(stats.requests, 2);
    assert!(stats
        .last_headers
        .contains(&("x-trace".to_owned(), "abc".to_owned())));
    assert_eq!(
        stats
            .last_body
            .as_ref()
            .map(|b| &b["messages"][0]["content"]),
        Some(&json!("y"))
    );
    Ok(())
}

#[tokio::test]
async fn control_api_scripts_faults_and_reports_stats() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let root = format!("http://{}", sim.addr());
    let client = client()?;
    let script = json!({"faults": [{"kind": "status", "status": 502},
                                   {"kind": "rate_limit", "retry_after_ms": 200}],
                        "sticky": null});
    let reply: Value = client
        .post(format!("{root}/_sim/faults"))
        .json(&script)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(reply["queued"].as_array().map(Vec::len), Some(2));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            post_json(&sim, "/chat/completions", &chat_body("hi"))
                .await?
                .0,
        );
    }
    assert_eq!(statuses, [502, 429, 200]);

    let sticky = json!({"sticky": {"kind": "client_error", "status": 422}});
    client
        .post(format!("{root}/_sim/faults"))
        .json(&sticky)
        .send()
        .await?
        .error_for_status()?;
    assert_eq!(
        post_json(&sim, "/chat/completions", &chat_body("hi"))
            .await?
            .0,
        422
    );
    client
        .post(format!("{root}/_sim/faults"))
        .json(&json!({"sticky": null}))
        .send()
        .await?
        .error_for_status()?;

    let typo = client
        .post(format!("{root}/_sim/faults"))
        .json(&json!({"faults": [{"kind": "hang", "x": 1}]}))
        .send()
        .await?;
    assert_eq!(typo.status(), 400, "unknown fields are refused");

    let stats: Value = client
        .get(format!("{root}/_sim/stats"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(stats["chat_requests"], 4);
    assert_eq!(stats["served_ok"], 1);
    client
        .post(format!("{root}/_sim/reset"))
        .send()
        .await?
        .error_for_status()?;
    assert_eq!(sim.stats().chat_requests, 0);
    Ok(())
}
