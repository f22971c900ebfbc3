//! Extended thinking: signed thinking blocks, their verification on replay, redacted
//! thinking, and the streamed thinking/signature deltas.

use anyhow::Context;
use loadtest::{AnthropicSim, AnthropicSimConfig};
use serde_json::{json, Value};

use crate::support::{accumulate, create, error_of, parse_sse, send, shape, start};

fn thinking_body(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 2048,
           "thinking": {"type": "enabled", "budget_tokens": 1024},
           "tools": [{"name": "get_weather", "input_schema": {"type": "object",
                      "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
           "messages": [{"role": "user", "content": text}]})
}

/// The first turn's request and answer, and a second turn replaying that answer.
async fn two_turns(sim: &AnthropicSim) -> anyhow::Result<(Value, Value)> {
    let first = thinking_body("weather in Paris? please redact something");
    let (status, answer) = create(sim, &first).await?;
    assert_eq!(status, 200, "{answer}");
    let call_id = answer["content"]
        .as_array()
        .context("content")?
        .iter()
        .find(|b| b["type"] == "tool_use")
        .context("tool_use")?["id"]
        .clone();
    let mut second = first.clone();
    second["messages"] = json!([
        first["messages"][0],
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "sunny"}]},
    ]);
    Ok((answer, second))
}

#[tokio::test]
async fn thinking_comes_first_signed_and_its_replay_is_accepted() -> anyhow::Result<()> {
    let sim = start().await?;
    let (answer, second) = two_turns(&sim).await?;
    let content = answer["content"].as_array().context("content")?;
    let kinds: Vec<&str> = content.iter().filter_map(|b| b["type"].as_str()).collect();
    assert_eq!(kinds, ["thinking", "redacted_thinking", "text", "tool_use"]);
    assert_eq!(
        content[0]["thinking"],
        "claude-sim thinks about: weather in Paris? please redact something"
    );
    assert_eq!(
        content[0]["signature"].as_str(),
        Some(
            sim.sign_thinking(content[0]["thinking"].as_str().context("text")?)
                .as_str()
        )
    );
    let (status, reply) = create(&sim, &second).await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["content"][0]["type"], "thinking");
    Ok(())
}

#[tokio::test]
async fn altered_missing_or_foreign_signatures_are_refused() -> anyhow::Result<()> {
    let sim = start().await?;
    let (_, second) = two_turns(&sim).await?;
    let mut altered = second.clone();
    altered["messages"][1]["content"][0]["thinking"] = json!("I changed my mind");
    let mut missing = second.clone();
    if let Some(block) = missing["messages"][1]["content"][0].as_object_mut() {
        block.remove("signature");
    }
    let mut redacted = second.clone();
    redacted["messages"][1]["content"][1]["data"] = json!("Zm9yZ2Vk");
    for (request, needle) in [
        (&altered, "thinking block signature invalid"),
        (&missing, "thinking block signature invalid"),
        (&redacted, "redacted_thinking block data invalid"),
    ] {
        let (status, error) = create(&sim, request).await?;
        assert_eq!(status, 400);
        let (kind, message) = error_of(&error);
        assert_eq!(kind, "invalid_request_error");
        assert!(message.contains(needle), "{message}");
    }
    // Dropping the thinking blocks from a tool loop with thinking on is refused as well.
    let mut dropped = second.clone();
    let kept: Vec<Value> = second["messages"][1]["content"]
        .as_array()
        .context("content")?
        .iter()
        .filter(|b| b["type"] != "thinking" && b["type"] != "redacted_thinking")
        .cloned()
        .collect();
    dropped["messages"][1]["content"] = json!(kept);
    let (status, error) = create(&sim, &dropped).await?;
    assert_eq!(status, 400);
    assert!(
        error_of(&error)
            .1
            .contains("Expected `thinking` or `redacted_thinking`"),
        "{error}"
    );

    // A simulator with another secret does not accept this one's signatures.
    let mut config = AnthropicSimConfig::new("other");
    config.thinking_secret = "another secret".to_owned();
    let other = AnthropicSim::start(config).await?;
    let (status, error) = create(&other, &second).await?;
    assert_eq!(status, 400);
    assert!(error_of(&error).1.contains("signature invalid"));
    Ok(())
}

#[tokio::test]
async fn streamed_thinking_has_thinking_and_signature_deltas() -> anyhow::Result<()> {
    let sim = start().await?;
    let request = thinking_body("just think");
    let (_, plain) = create(&sim, &request).await?;
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let events = parse_sse(&send(&sim, "/v1/messages", &streamed).await?.text().await?)?;
    assert_eq!(
        events[1].data["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let block0: Vec<&str> = events
        .iter()
        .filter(|e| e.name == "content_block_delta" && e.data["index"] == 0)
        .filter_map(|e| e.data["delta"]["type"].as_str())
        .collect();
    assert_eq!(block0.last(), Some(&"signature_delta"));
    assert!(block0[..block0.len() - 1]
        .iter()
        .all(|t| *t == "thinking_delta"));
    let names = shape(&events);
    assert_eq!(names[..3], ["message_start", "start0", "ping"]);
    assert!(names.contains(&"start1".to_owned()));
    let rebuilt = accumulate(&events)?;
    assert_eq!(rebuilt["content"], plain["content"]);
    Ok(())
}
