//! Claude on the Bedrock simulator: native InvokeModel, InvokeModelWithResponseStream chunk
//! frames, CountTokens, Bedrock-style errors, and thinking signatures shared with the
//! Anthropic simulator.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use loadtest::{BedrockFault, BedrockSim, BedrockSimConfig};
use serde_json::{json, Value};

use crate::support::{
    accumulate, bedrock_post, chunk_events, create, decode_frames, message_text, send, shape, start,
};

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0";

fn native(text: &str) -> Value {
    json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512,
           "anthropic_beta": ["interleaved-thinking-2025-05-14"],
           "messages": [{"role": "user", "content": text}]})
}

async fn sim() -> anyhow::Result<BedrockSim> {
    BedrockSim::start(BedrockSimConfig::new("bedrock-claude")).await
}

#[tokio::test]
async fn invoke_answers_the_messages_json() -> anyhow::Result<()> {
    let sim = sim().await?;
    let response =
        bedrock_post(&sim, &format!("/model/{MODEL}/invoke"), &native("hi there")).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-amzn-bedrock-output-token-count"], "8");
    let message: Value = response.json().await?;
    assert!(message["id"]
        .as_str()
        .context("id")?
        .starts_with("msg_bdrk_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message_text(&message), "bedrock-claude says: hi there");
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], 2);
    assert_eq!(sim.stats().requests, 1);
    Ok(())
}

#[tokio::test]
async fn the_stream_is_chunk_frames_of_anthropic_events() -> anyhow::Result<()> {
    let sim = sim().await?;
    let text = "stream me a few words please";
    let plain: Value = bedrock_post(&sim, &format!("/model/{MODEL}/invoke"), &native(text))
        .await?
        .json()
        .await?;
    let response = bedrock_post(
        &sim,
        &format!("/model/{MODEL}/invoke-with-response-stream"),
        &native(text),
    )
    .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let frames = decode_frames(&response.bytes().await?)?;
    assert!(frames
        .iter()
        .all(|(kind, name, _)| kind == "event" && name == "chunk"));
    let events = chunk_events(&frames)?;
    let names = shape(&events);
    let deltas = names.iter().filter(|n| *n == "delta0").count();
    let mut expected = vec!["message_start", "start0"];
    expected.extend(std::iter::repeat_n("delta0", deltas));
    expected.extend(["stop0", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let metrics = &events.last().context("stop")?.data["amazon-bedrock-invocationMetrics"];
    assert_eq!(metrics["outputTokenCount"], plain["usage"]["output_tokens"]);
    let rebuilt = accumulate(&events)?;
    assert_eq!(message_text(&rebuilt), message_text(&plain));
    Ok(())
}

#[tokio::test]
async fn bedrock_rules_and_errors() -> anyhow::Result<()> {
    let sim = sim().await?;
    let path = format!("/model/{MODEL}/invoke");
    let mut with_model = native("x");
    with_model["model"] = json!("claude");
    with_model["stream"] = json!(true);
    let mut without_version = native("x");
    without_version
        .as_object_mut()
        .context("object")?
        .remove("anthropic_version");
    let mut no_max = native("x");
    no_max
        .as_object_mut()
        .context("object")?
        .remove("max_tokens");
    for (body, needle) in [
        (
            &with_model,
            "extraneous key [model] is not permitted#: extraneous key [stream]",
        ),
        (&without_version, "required key [anthropic_version]"),
        (&no_max, "max_tokens: Field required"),
    ] {
        let response = bedrock_post(&sim, &path, body).await?;
        assert_eq!(response.status(), 400);
        assert!(response.headers()["x-amzn-errortype"]
            .to_str()?
            .starts_with("ValidationException"));
        let error: Value = response.json().await?;
        assert!(
            error["message"]
                .as_str()
                .context("message")?
                .contains(needle),
            "{error}"
        );
    }
    assert_eq!(sim.stats().validation_failures, 3);
    sim.push_faults([BedrockFault::Throttle, BedrockFault::ThrottleMidStream]);
    let response = bedrock_post(&sim, &path, &native("x")).await?;
    assert_eq!(response.status(), 429);
    assert!(response.headers()["x-amzn-errortype"]
        .to_str()?
        .starts_with("ThrottlingException"));
    let response = bedrock_post(
        &sim,
        &format!("/model/{MODEL}/invoke-with-response-stream"),
        &native("one two three four five six seven eight nine"),
    )
    .await?;
    let frames = decode_frames(&response.bytes().await?)?;
    let (kind, name, _) = frames.last().context("frames")?;
    assert_eq!(
        (kind.as_str(), name.as_str()),
        ("exception", "throttlingException")
    );
    assert_eq!(chunk_events(&frames)?.len(), 4);
    // A stream cut after message_start and one more chunk: the body fails.
    sim.push_faults([BedrockFault::DropMidStream { after_chunks: 1 }]);
    let response = bedrock_post(
        &sim,
        &format!("/model/{MODEL}/invoke-with-response-stream"),
        &native("x"),
    )
    .await?;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err());
    // Embedding models still answer on /invoke.
    let response = bedrock_post(
        &sim,
        "/model/amazon.titan-embed-text-v2%3A0/invoke",
        &json!({"inputText": "hello", "dimensions": 4}),
    )
    .await?;
    assert_eq!(
        response.json::<Value>().await?["embedding"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    Ok(())
}

#[tokio::test]
async fn count_tokens_matches_the_anthropic_count() -> anyhow::Result<()> {
    let sim = sim().await?;
    let anthropic = start().await?;
    let body = native("count these words for me");
    let encoded = STANDARD.encode(serde_json::to_vec(&body)?);
    let response = bedrock_post(
        &sim,
        "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens",
        &json!({"input": {"invokeModel": {"body": encoded}}}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let count: Value = response.json().await?;
    let expected: Value = send(
        &anthropic,
        "/v1/messages/count_tokens",
        &json!({"model": "claude", "messages": body["messages"]}),
    )
    .await?
    .json()
    .await?;
    assert_eq!(count["inputTokens"], expected["input_tokens"]);
    Ok(())
}

#[tokio::test]
async fn a_thinking_block_from_bedrock_replays_on_the_anthropic_sim() -> anyhow::Result<()> {
    let sim = sim().await?;
    let anthropic = start().await?;
    let mut first = native("think about it");
    first["max_tokens"] = json!(4096);
    first["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let answer: Value = bedrock_post(&sim, &format!("/model/{MODEL}/invoke"), &first)
        .await?
        .json()
        .await?;
    assert_eq!(answer["content"][0]["type"], "thinking");
    let messages = json!([first["messages"][0],
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": "and then?"}]);
    let mut second = first.clone();
    second["messages"] = messages.clone();
    let response = bedrock_post(&sim, &format!("/model/{MODEL}/invoke"), &second).await?;
    assert_eq!(response.status(), 200, "Bedrock accepts its own block");
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048}, "messages": messages});
    let (status, reply) = create(&anthropic, &request).await?;
    assert_eq!(status, 200, "{reply}");
    Ok(())
}
