//! `/v1/messages` plain and streamed, tools, cache accounting, count_tokens, models, auth and
//! validation.

use anyhow::Context;
use loadtest::anthropic_sim::text_tokens;
use serde_json::{json, Value};

use crate::support::{
    accumulate, body, client, create, error_of, message_text, parse_sse, send, shape, start,
};

#[tokio::test]
async fn plain_answer_has_the_message_shape_usage_and_headers() -> anyhow::Result<()> {
    let sim = start().await?;
    let response = send(&sim, "/v1/messages?beta=true", &body("hello there")).await?;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(headers["request-id"].to_str()?.starts_with("req_"));
    assert_eq!(headers["anthropic-ratelimit-requests-limit"], "4000");
    assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "3999");
    for name in ["tokens", "input-tokens", "output-tokens"] {
        assert!(headers.contains_key(format!("anthropic-ratelimit-{name}-remaining").as_str()));
        let reset = headers[format!("anthropic-ratelimit-{name}-reset").as_str()].to_str()?;
        assert!(reset.ends_with('Z') && reset.contains('T'), "{reset}");
    }
    let message: Value = response.json().await?;
    assert!(message["id"].as_str().context("id")?.starts_with("msg_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "claude-sim says: hello there"}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["stop_sequence"], Value::Null);
    let usage = &message["usage"];
    assert_eq!(usage["input_tokens"], text_tokens("hello there"));
    assert_eq!(
        usage["output_tokens"],
        text_tokens("claude-sim says: hello there")
    );
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(usage["cache_creation"]["ephemeral_5m_input_tokens"], 0);
    let stats = sim.stats();
    assert_eq!((stats.requests, stats.served_ok), (1, 1));
    assert_eq!(stats.last_path.as_deref(), Some("/v1/messages"));
    assert_eq!(stats.last_body, Some(body("hello there")));
    Ok(())
}

#[tokio::test]
async fn stream_events_come_in_order_and_add_up_to_the_plain_answer() -> anyhow::Result<()> {
    let sim = start().await?;
    let text = "tell me a slightly longer story about streams";
    let (_, plain) = create(&sim, &body(text)).await?;
    let mut streamed = body(text);
    streamed["stream"] = json!(true);
    let response = send(&sim, "/v1/messages", &streamed).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&response.text().await?)?;
    for event in &events {
        assert_eq!(event.data["type"], event.name.as_str());
    }
    let names = shape(&events);
    let deltas = names.iter().filter(|n| *n == "delta0").count();
    assert!(deltas >= 2, "text comes in pieces: {names:?}");
    let mut expected = vec!["message_start", "start0", "ping"];
    expected.extend(std::iter::repeat_n("delta0", deltas));
    expected.extend(["stop0", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let start = &events[0].data["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(
        start["usage"]["input_tokens"],
        plain["usage"]["input_tokens"]
    );
    assert_eq!(
        events[1].data["content_block"],
        json!({"type": "text", "text": ""})
    );
    let last_delta = &events[events.len() - 2].data;
    assert_eq!(
        last_delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    let rebuilt = accumulate(&events)?;
    assert_eq!(message_text(&rebuilt), message_text(&plain));
    assert_eq!(
        rebuilt["usage"]["output_tokens"],
        plain["usage"]["output_tokens"]
    );
    assert_eq!(rebuilt["stop_reason"], plain["stop_reason"]);
    assert_eq!(sim.stats().stream_requests, 1);
    Ok(())
}

#[tokio::test]
async fn stop_sequences_and_max_tokens_end_the_answer_early() -> anyhow::Result<()> {
    let sim = start().await?;
    let mut request = body("one two three");
    request["stop_sequences"] = json!(["two"]);
    let (_, message) = create(&sim, &request).await?;
    assert_eq!(message_text(&message), "claude-sim says: one ");
    assert_eq!(message["stop_reason"], "stop_sequence");
    assert_eq!(message["stop_sequence"], "two");
    let mut request = body("a long request that will not fit");
    request["max_tokens"] = json!(2);
    let (_, message) = create(&sim, &request).await?;
    assert_eq!(message["stop_reason"], "max_tokens");
    assert_eq!(message["usage"]["output_tokens"], 2);
    Ok(())
}

fn weather_tools() -> Value {
    json!([{"name": "get_weather", "description": "Weather of a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                             "required": ["city"]}}])
}

#[tokio::test]
async fn tool_use_round_trip() -> anyhow::Result<()> {
    let sim = start().await?;
    let mut request = body("What is the weather in Paris?");
    request["tools"] = weather_tools();
    let (status, first) = create(&sim, &request).await?;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["stop_reason"], "tool_use");
    let call = &first["content"][1];
    assert_eq!(call["type"], "tool_use");
    assert!(call["id"].as_str().context("id")?.starts_with("toolu_"));
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Paris"}));

    // The same call streamed: input_json_delta pieces rebuild the same input.
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let events = parse_sse(&send(&sim, "/v1/messages", &streamed).await?.text().await?)?;
    let rebuilt = accumulate(&events)?;
    assert_eq!(rebuilt["content"][1]["input"], call["input"]);
    assert_eq!(rebuilt["stop_reason"], "tool_use");
    let first_json = events
        .iter()
        .find(|e| e.data["delta"]["type"] == "input_json_delta")
        .context("json delta")?;
    assert_eq!(first_json.data["delta"]["partial_json"], "");

    // Second turn with the result.
    let mut second = request.clone();
    second["messages"] = json!([
        request["messages"][0],
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "18C and sunny"}]},
    ]);
    let (status, answer) = create(&sim, &second).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        message_text(&answer),
        "claude-sim read the tool results: 18C and sunny"
    );
    assert_eq!(answer["stop_reason"], "end_turn");

    // A result for an id that was never used is refused.
    second["messages"][2]["content"][0]["tool_use_id"] = json!("toolu_unknown");
    let (status, error) = create(&sim, &second).await?;
    assert_eq!(status, 400);
    let (kind, message) = error_of(&error);
    assert_eq!(kind, "invalid_request_error");
    assert!(
        message.contains("tool_use_id") && message.contains("toolu_unknown"),
        "{message}"
    );

    // A tool use left without its result is refused too.
    second["messages"][2] = json!({"role": "user", "content": "never mind"});
    let (status, error) = create(&sim, &second).await?;
    assert_eq!(status, 400);
    assert!(
        error_of(&error).1.contains("without `tool_result`"),
        "{error}"
    );

    // tool_choice forces the named tool even without a keyword.
    let mut forced = body("hello");
    forced["tools"] = weather_tools();
    forced["tool_choice"] = json!({"type": "tool", "name": "get_weather"});
    let (_, message) = create(&sim, &forced).await?;
    assert_eq!(message["stop_reason"], "tool_use");
    Ok(())
}

fn cached_request(user_prefix: &str) -> Value {
    json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100,
        "system": [{"type": "text", "text": "S".repeat(400), "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": user_prefix.repeat(200), "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "question"},
        ]}],
    })
}

#[tokio::test]
async fn cache_markers_write_then_read_with_the_ttl_split() -> anyhow::Result<()> {
    let sim = start().await?;
    let (_, first) = create(&sim, &cached_request("b")).await?;
    let usage = &first["usage"];
    assert_eq!(usage["cache_creation_input_tokens"], 150, "{usage}");
    assert_eq!(usage["cache_creation"]["ephemeral_1h_input_tokens"], 100);
    assert_eq!(usage["cache_creation"]["ephemeral_5m_input_tokens"], 50);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(usage["input_tokens"], 2);

    let (_, again) = create(&sim, &cached_request("b")).await?;
    let usage = &again["usage"];
    assert_eq!(usage["cache_read_input_tokens"], 150, "{usage}");
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["input_tokens"], 2);

    // Same system prefix, other user block: the 1h prefix is read, the rest written.
    let (_, other) = create(&sim, &cached_request("c")).await?;
    let usage = &other["usage"];
    assert_eq!(usage["cache_read_input_tokens"], 100, "{usage}");
    assert_eq!(usage["cache_creation"]["ephemeral_5m_input_tokens"], 50);
    assert_eq!(usage["cache_creation"]["ephemeral_1h_input_tokens"], 0);

    // Streams report the cache counts in message_start and message_delta.
    let mut streamed = cached_request("b");
    streamed["stream"] = json!(true);
    let events = parse_sse(&send(&sim, "/v1/messages", &streamed).await?.text().await?)?;
    assert_eq!(
        events[0].data["message"]["usage"]["cache_read_input_tokens"],
        150
    );
    let delta = events
        .iter()
        .find(|e| e.name == "message_delta")
        .context("delta")?;
    assert_eq!(delta.data["usage"]["cache_read_input_tokens"], 150);
    assert_eq!(sim.stats().cache_read_input_tokens, 400);
    Ok(())
}

#[tokio::test]
async fn count_tokens_counts_the_whole_prompt() -> anyhow::Result<()> {
    let sim = start().await?;
    let mut request = cached_request("b");
    request
        .as_object_mut()
        .context("object")?
        .remove("max_tokens");
    let response = send(&sim, "/v1/messages/count_tokens?beta=true", &request).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await?,
        json!({"input_tokens": 152})
    );
    // Same validation; max_tokens does not belong here.
    request["max_tokens"] = json!(10);
    let response = send(&sim, "/v1/messages/count_tokens", &request).await?;
    assert_eq!(response.status(), 400);
    assert!(error_of(&response.json().await?).1.contains("max_tokens"));
    assert_eq!(sim.stats().count_tokens_requests, 2);
    Ok(())
}

#[tokio::test]
async fn auth_version_and_betas() -> anyhow::Result<()> {
    let sim = start().await?;
    let url = format!("{}/v1/messages", sim.base_url());
    let response = client()?
        .post(&url)
        .header("x-api-key", "wrong")
        .header("anthropic-version", "2023-06-01")
        .json(&body("hi"))
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("request-id"));
    assert_eq!(error_of(&response.json().await?).0, "authentication_error");
    let response = client()?
        .post(&url)
        .header("x-api-key", &sim.config().api_key)
        .json(&body("hi"))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    assert!(error_of(&response.json().await?)
        .1
        .contains("anthropic-version"));
    let response = client()?
        .post(&url)
        .header("x-api-key", &sim.config().api_key)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .header("anthropic-beta", "context-1m-2025-08-07")
        .json(&body("hi"))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let stats = sim.stats();
    assert_eq!(stats.auth_failures, 1);
    assert_eq!(
        stats.betas_seen,
        [
            "claude-code-20250219",
            "interleaved-thinking-2025-05-14",
            "context-1m-2025-08-07"
        ]
    );
    assert_eq!(stats.last_version.as_deref(), Some("2023-06-01"));
    assert!(stats
        .last_headers
        .iter()
        .any(|(k, v)| k == "x-api-key" && v == "sk-ant-sim"));
    // Models need the key too.
    let models: Value = client()?
        .get(format!("{}/v1/models", sim.base_url()))
        .header("x-api-key", &sim.config().api_key)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(models["data"][0]["type"], "model");
    assert_eq!(models["has_more"], false);
    Ok(())
}

#[tokio::test]
async fn invalid_requests_name_the_field() -> anyhow::Result<()> {
    let sim = start().await?;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens: Field required",
        ),
        (
            json!({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
            "model: Field required",
        ),
        (
            json!({"model": "m", "max_tokens": 5}),
            "messages: Field required",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]}),
            "first message must use the \"user\" role",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}]}),
            "messages.1.role",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": ""}]}),
            "non-empty content",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]}),
            "messages.0.content.0",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "temperature": 2, "messages": [{"role": "user", "content": "x"}]}),
            "temperature",
        ),
        (
            json!({"model": "m", "max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 500}, "messages": [{"role": "user", "content": "x"}]}),
            "thinking.enabled.budget_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2000}, "messages": [{"role": "user", "content": "x"}]}),
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "tools": [{"name": "t"}], "messages": [{"role": "user", "content": "x"}]}),
            "tools.0.custom.input_schema: Field required",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "tool_choice": {"type": "any"}, "messages": [{"role": "user", "content": "x"}]}),
            "tool_choice",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "x"}]}),
            "anthropic_version: Extra inputs are not permitted",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]}]}),
            "not allowed in `user` messages",
        ),
    ];
    for (request, expected) in &cases {
        let (status, error) = create(&sim, request).await?;
        assert_eq!(status, 400, "{request}");
        let (kind, message) = error_of(&error);
        assert_eq!(kind, "invalid_request_error");
        assert!(message.contains(expected), "{request}: {message}");
    }
    assert_eq!(sim.stats().validation_failures, cases.len() as u64);
    // Consecutive same-role turns merge, as the API does.
    let merged = json!({"model": "m", "max_tokens": 50, "messages": [
        {"role": "user", "content": "one"}, {"role": "user", "content": "two"}]});
    assert_eq!(create(&sim, &merged).await?.0, 200);
    Ok(())
}
