//! Chat completions: the non-streamed object, the SSE stream rules, validation and pacing.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use loadtest::{answer_text, SimConfig};
use serde_json::{json, Value};

use crate::support::{
    assert_error_shape, chat_body, chunks, client, post, post_json, read_body, start,
    start_default, stream_body,
};

#[tokio::test]
async fn non_stream_answer_has_the_openai_shape_and_usage() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &chat_body("hello world!"),
    )
    .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-sim-name"], "openai-sim");
    assert_eq!(response.headers()["x-ratelimit-limit-requests"], "10000");
    assert!(response
        .headers()
        .contains_key("x-ratelimit-reset-requests"));
    let body: Value = response.json().await?;
    assert!(body["id"]
        .as_str()
        .context("id")?
        .starts_with("chatcmpl-sim-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    assert!(body["created"].is_u64());
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], answer_text("openai-sim", 8));
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    // "hello world!" = 12 chars → 3 tokens, + 3 for the one message.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14})
    );
    Ok(())
}

#[tokio::test]
async fn cached_prompt_tokens_are_reported_in_usage() -> anyhow::Result<()> {
    let sim = start(SimConfig {
        cached_prompt_tokens: 4,
        ..SimConfig::default()
    })
    .await?;
    // "hello world!" = 12 chars → 3 tokens, + 3 for the one message; 4 of them cached.
    let (status, answer) = post_json(&sim, "/chat/completions", &chat_body("hello world!")).await?;
    assert_eq!(status, 200);
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14,
               "prompt_tokens_details": {"cached_tokens": 4}})
    );
    Ok(())
}

#[tokio::test]
async fn max_tokens_caps_the_answer_with_finish_length() -> anyhow::Result<()> {
    let sim = start_default().await?;
    for field in ["max_completion_tokens", "max_tokens"] {
        let mut body = chat_body("hi");
        body[field] = json!(3);
        let (status, answer) = post_json(&sim, "/chat/completions", &body).await?;
        assert_eq!(status, 200);
        assert_eq!(
            answer["choices"][0]["message"]["content"],
            answer_text("openai-sim", 3)
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "length");
        assert_eq!(answer["usage"]["completion_tokens"], 3);
    }
    Ok(())
}

#[tokio::test]
async fn stream_with_usage_follows_the_sse_rules() -> anyhow::Result<()> {
    let sim = start(SimConfig {
        name: "s1".to_owned(),
        output_tokens: 5,
        ..SimConfig::default()
    })
    .await?;
    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("abcd", true),
    )
    .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let received = read_body(response, Duration::from_secs(5)).await;
    assert!(received.error.is_none(), "clean end: {:?}", received.error);
    let data = received.data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "rule 6");
    let chunks = chunks(&data)?;
    // role, 5 content, finish, usage
    assert_eq!(chunks.len(), 8);
    let id = &chunks[0]["id"];
    for chunk in &chunks {
        assert_eq!(&chunk["id"], id, "same id on every chunk");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-test");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "rule 1"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    let content: String = chunks[1..6]
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or("<missing>")
        })
        .collect();
    assert_eq!(content, answer_text("s1", 5), "rule 2");
    for chunk in &chunks[..6] {
        assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null, "rule 4");
    }
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}), "rule 4");
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    for chunk in &chunks[..7] {
        assert_eq!(
            chunk.get("usage"),
            Some(&Value::Null),
            "rule 5: usage null before the usage chunk"
        );
    }
    assert_eq!(chunks[7]["choices"], json!([]), "rule 5");
    assert_eq!(
        chunks[7]["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
    );
    Ok(())
}

#[tokio::test]
async fn stream_without_usage_option_omits_usage() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("hi", false),
    )
    .await?;
    let received = read_body(response, Duration::from_secs(5)).await;
    let data = received.data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks(&data)?;
    assert_eq!(
        chunks.len(),
        1 + 8 + 1,
        "role, content, finish; no usage chunk"
    );
    assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
    assert!(chunks.iter().all(|chunk| chunk["choices"] != json!([])));
    let stats = sim.stats();
    assert_eq!(
        (stats.stream_requests, stats.include_usage_requested),
        (1, 0)
    );
    Ok(())
}

#[tokio::test]
async fn invalid_requests_get_openai_style_400s() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            Some("model"),
        ),
        (json!({"model": "m", "messages": []}), Some("messages")),
        (json!({"model": "m"}), Some("messages")),
        (json!({"model": "m", "messages": "hi"}), Some("messages")),
        (json!([1, 2]), None),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                   "stream_options": {"include_usage": true}}),
            Some("stream_options"),
        ),
    ];
    for (body, param) in cases {
        let (status, answer) = post_json(&sim, "/chat/completions", &body).await?;
        assert_eq!(status, 400, "{body}");
        let error = assert_error_shape(&answer)?;
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["param"].as_str(), param, "{body}");
    }
    let response = client()?
        .post(format!("{}/chat/completions", sim.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    assert_error_shape(&response.json().await?)?;
    Ok(())
}

#[tokio::test]
async fn ttft_delays_the_headers() -> anyhow::Result<()> {
    let ttft = Duration::from_millis(150);
    let sim = start(SimConfig {
        ttft,
        ..SimConfig::default()
    })
    .await?;
    let started = Instant::now();
    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("hi", false),
    )
    .await?;
    assert!(started.elapsed() >= ttft, "headers only after ttft");
    assert_eq!(response.status(), 200);
    Ok(())
}

#[tokio::test]
async fn chunks_are_sent_as_produced_not_buffered() -> anyhow::Result<()> {
    let inter_token = Duration::from_millis(60);
    let sim = start(SimConfig {
        inter_token,
        output_tokens: 5,
        ..SimConfig::default()
    })
    .await?;
    let response = post(
        &client()?,
        &sim,
        "/chat/completions",
        &stream_body("hi", false),
    )
    .await?;
    let mut stream = response.bytes_stream();
    let mut arrivals = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await? {
        chunk?;
        arrivals.push(Instant::now());
    }
    let (first, last) = (
        arrivals.first().context("data")?,
        arrivals.last().context("data")?,
    );
    // Five paced chunks follow the role chunk: if the body were buffered, everything
    // would arrive in one read and this spread would be near zero.
    assert!(
        *last - *first >= inter_token * 4,
        "spread {:?}",
        *last - *first
    );
    Ok(())
}
