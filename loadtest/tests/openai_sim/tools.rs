//! Tool calls: the planned call, its streamed fragments, and the tool-result round trip.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::support::{chunks, client, post, post_json, read_body, start_default};

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                               "metric": {"type": "boolean"}, "hint": {"type": "string"}},
                "required": ["city", "days", "metric"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    ])
}

fn tool_request() -> Value {
    json!({"model": "gpt-test", "tools": weather_tools(),
           "messages": [{"role": "user", "content": "Weather in Paris?"}]})
}

#[tokio::test]
async fn tool_call_then_tool_result_round_trip() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let (status, first) = post_json(&sim, "/chat/completions", &tool_request()).await?;
    assert_eq!(status, 200);
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    let call_id = call["id"].as_str().context("call id")?;
    assert!(call_id.starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(
        call["function"]["arguments"]
            .as_str()
            .context("arguments")?,
    )?;
    assert_eq!(
        arguments,
        json!({"city": "sample", "days": 1, "metric": true})
    );

    let mut follow_up = tool_request();
    follow_up["messages"] = json!([
        {"role": "user", "content": "Weather in Paris?"},
        choice["message"],
        {"role": "tool", "tool_call_id": call_id, "content": "{\"temp_c\":18}"}
    ]);
    let (status, second) = post_json(&sim, "/chat/completions", &follow_up).await?;
    assert_eq!(status, 200);
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "The tool said: {\"temp_c\":18}"
    );
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    Ok(())
}

#[tokio::test]
async fn tool_choice_names_a_tool_or_disables_tools() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let mut named = tool_request();
    named["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    let (_, answer) = post_json(&sim, "/chat/completions", &named).await?;
    let call = &answer["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_time");
    assert_eq!(call["function"]["arguments"], "{}");

    let mut none = tool_request();
    none["tool_choice"] = json!("none");
    let (_, answer) = post_json(&sim, "/chat/completions", &none).await?;
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert!(answer["choices"][0]["message"].get("tool_calls").is_none());
    Ok(())
}

#[tokio::test]
async fn streamed_tool_call_follows_rule_3() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let mut body = tool_request();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = post(&client()?, &sim, "/chat/completions", &body).await?;
    let received = read_body(response, Duration::from_secs(5)).await;
    let data = received.data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks(&data)?;
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    let header = calls.first().context("a tool call header")?;
    assert_eq!(header["index"], 0);
    assert!(header["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("call_")));
    assert_eq!(header["type"], "function");
    assert_eq!(header["function"]["name"], "get_weather");
    assert_eq!(header["function"]["arguments"], "");
    let fragments = &calls[1..];
    assert!(fragments.len() >= 2, "arguments come in several fragments");
    let mut arguments = String::new();
    for fragment in fragments {
        assert!(fragment.get("id").is_none() && fragment["function"].get("name").is_none());
        arguments.push_str(
            fragment["function"]["arguments"]
                .as_str()
                .context("fragment")?,
        );
    }
    let arguments: Value = serde_json::from_str(&arguments)?;
    assert_eq!(arguments["city"], "sample");
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("tool_calls"));
    let usage = &chunks.last().context("usage chunk")?["usage"];
    assert_eq!(
        usage["completion_tokens"].as_u64(),
        Some(calls.len() as u64)
    );
    Ok(())
}
