//! The Anthropic Messages API through the real binary with the official Python SDK
//! (`tests/python/`, installed by `.ci/run`): plain and streamed answers, tools, extended
//! thinking replayed with its signature on Bedrock and Anthropic, cache markers, invisible
//! failover, the SDK's own exceptions for a budget refusal and a bad key, count_tokens, and
//! keys as `x-api-key` and as `Authorization: Bearer`, and the models list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loadtest::{AnthropicFault, BedrockFault};
use serde_json::{json, Value};
use switchyard_e2e::claude_fixtures::{
    anthropic_base_url, models, ClaudeSims, ANTHROPIC_KEY_A, ANTHROPIC_MODEL, BROKE_KEY,
};
use switchyard_e2e::python::{Auth, Scenario};
use switchyard_e2e::{Proxy, ALPHA_KEY};

/// A scenario as team `alpha` on `model`, with the key sent as `auth`.
fn scenario(proxy: &Proxy, script: &str, model: &str, auth: Auth) -> Scenario {
    Scenario::new(script, &anthropic_base_url(proxy), ALPHA_KEY, auth, model)
}

/// The text of a message's text blocks, joined.
fn text_of(message: &Value) -> String {
    message["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content: {message}"))
        .iter()
        .filter(|block| block["type"] == "text")
        .map(|block| block["text"].as_str().unwrap_or_default())
        .collect()
}

/// The blocks of a message of one type.
fn blocks<'a>(message: &'a Value, kind: &str) -> Vec<&'a Value> {
    message["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content: {message}"))
        .iter()
        .filter(|block| block["type"] == kind)
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn plain_answers_with_the_key_as_x_api_key_and_as_bearer_token() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    for (model, upstream) in [(models::ANTHROPIC, "anth-a"), (models::BEDROCK, "aws")] {
        for auth in [Auth::ApiKey, Auth::AuthToken] {
            println!("messages.create on {model} with the key as {auth:?}");
            let out = scenario(&proxy, "create.py", model, auth)
                .env("SCENARIO_PROMPT", "Hello there")
                .run()
                .await;
            let message = &out["message"];
            assert!(out["error"].is_null(), "{out}");
            assert_eq!(text_of(message), format!("{upstream} says: Hello there"));
            assert_eq!(message["type"], "message");
            assert_eq!(message["role"], "assistant");
            assert_eq!(
                message["model"], model,
                "the client's model name comes back"
            );
            assert_eq!(message["stop_reason"], "end_turn");
            assert!(message["id"].as_str().unwrap().starts_with("msg_"));
            assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
            assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
            assert_eq!(out["provider"], upstream);
        }
    }
    println!("the Anthropic upstream got its own key, never the team's");
    let stats = sims.anth_a.stats();
    assert_eq!(
        header(&stats.last_headers, "x-api-key"),
        Some(ANTHROPIC_KEY_A)
    );
    assert!(
        !stats
            .last_headers
            .iter()
            .any(|(_, value)| value.contains(ALPHA_KEY)),
        "{:?}",
        stats.last_headers
    );
    assert_eq!(stats.last_body.as_ref().unwrap()["model"], ANTHROPIC_MODEL);
    let native = sims.aws.stats();
    assert!(
        native.last_path.unwrap().ends_with("/invoke"),
        "InvokeModel, not Converse"
    );
    assert_eq!(
        native.last_body.unwrap()["anthropic_version"],
        "bedrock-2023-05-31"
    );
}

#[tokio::test]
async fn streamed_answers_parse_in_the_sdk_and_build_the_final_message() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    for (model, upstream) in [(models::ANTHROPIC, "anth-a"), (models::BEDROCK, "aws")] {
        println!("messages.create(stream=True) and messages.stream on {model}");
        let out = scenario(&proxy, "stream.py", model, Auth::ApiKey)
            .env("SCENARIO_PROMPT", "Stream me")
            .run()
            .await;
        assert!(out["error"].is_null(), "{out}");
        let kinds: Vec<&str> = out["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.first(), Some(&"message_start"), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"message_stop"), "{kinds:?}");
        let at = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
        assert!(at("content_block_start") < at("content_block_delta"));
        assert!(at("content_block_stop") < at("message_delta"), "{kinds:?}");
        let expected = format!("{upstream} says: Stream me");
        assert_eq!(out["text"], expected.as_str(), "text_stream");
        let last = &out["final"];
        assert_eq!(text_of(last), expected, "get_final_message()");
        assert_eq!(last["stop_reason"], "end_turn");
        assert_eq!(last["model"], model);
        assert!(last["usage"]["output_tokens"].as_u64().unwrap() > 0);
        assert!(last["usage"]["input_tokens"].as_u64().unwrap() > 0);
    }
    assert_eq!(sims.anth_a.stats().stream_requests, 2);
    assert!(sims
        .aws
        .stats()
        .last_path
        .unwrap()
        .ends_with("/invoke-with-response-stream"));
}

#[tokio::test]
async fn a_tool_use_round_trip_streamed_and_not() {
    let (_sims, proxy) = ClaudeSims::with_proxy().await;
    for model in [models::ANTHROPIC, models::BEDROCK] {
        for stream in ["0", "1"] {
            println!("get_weather round trip on {model}, stream={stream}");
            let out = scenario(&proxy, "tools.py", model, Auth::ApiKey)
                .env("SCENARIO_STREAM", stream)
                .run()
                .await;
            let first = &out["first"];
            assert_eq!(first["stop_reason"], "tool_use", "{first}");
            let calls = blocks(first, "tool_use");
            assert_eq!(calls.len(), 1, "{first}");
            assert_eq!(calls[0]["name"], "get_weather");
            assert_eq!(calls[0]["input"], json!({"city": "Paris"}));
            assert!(calls[0]["id"].as_str().unwrap().starts_with("toolu_"));
            let second = &out["second"];
            assert_eq!(second["stop_reason"], "end_turn", "{second}");
            assert!(
                text_of(second).ends_with("read the tool results: Sunny, 21 degrees in Paris"),
                "{second}"
            );
        }
    }
}

/// Runs the thinking scenario (turn 1 on `model`, turn 2 on `turn2`) and checks both turns.
/// Returns turn 1's thinking signature.
async fn thinking_round(proxy: &Proxy, model: &str, turn2: &str, stream: &str) -> String {
    println!("extended thinking + tools: turn 1 on {model}, replay on {turn2}, stream={stream}");
    let out = scenario(proxy, "thinking.py", model, Auth::AuthToken)
        .env("SCENARIO_STREAM", stream)
        .env("SWITCHYARD_MODEL_TURN2", turn2)
        .run()
        .await;
    assert!(out["error"].is_null(), "turn 2 was refused: {out}");
    let first = &out["first"];
    assert_eq!(first["content"][0]["type"], "thinking", "{first}");
    let signature = first["content"][0]["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!signature.is_empty(), "{first}");
    assert!(first["content"][0]["thinking"]
        .as_str()
        .unwrap()
        .contains("thinks about: Think first"));
    assert_eq!(first["stop_reason"], "tool_use");
    assert_eq!(
        out["replayed"][0], first["content"][0],
        "the replayed block is turn 1's"
    );
    let second = &out["second"];
    assert_eq!(second["stop_reason"], "end_turn", "{second}");
    assert_eq!(second["content"][0]["type"], "thinking", "{second}");
    assert!(text_of(second).ends_with("read the tool results: Rain, 12 degrees"));
    signature
}

/// The thinking block turn 2 carried to an upstream, from its recorded body.
fn replayed_thinking(body: &Value) -> Value {
    body["messages"][1]["content"][0].clone()
}

#[tokio::test]
async fn extended_thinking_with_tools_replays_its_signed_block_on_bedrock_and_anthropic() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    for stream in ["0", "1"] {
        let signature = thinking_round(&proxy, models::BEDROCK, models::BEDROCK, stream).await;
        let body = sims.aws.stats().last_body.unwrap();
        assert_eq!(replayed_thinking(&body)["signature"], signature.as_str());
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );

        let signature = thinking_round(&proxy, models::ANTHROPIC, models::ANTHROPIC, stream).await;
        let body = sims.anth_a.stats().last_body.unwrap();
        assert_eq!(replayed_thinking(&body)["signature"], signature.as_str());
    }
    println!("a conversation begun on Anthropic continues on Bedrock (and back)");
    let signature = thinking_round(&proxy, models::ANTHROPIC, models::BEDROCK, "1").await;
    let body = sims.aws.stats().last_body.unwrap();
    assert_eq!(replayed_thinking(&body)["signature"], signature.as_str());
    thinking_round(&proxy, models::BEDROCK, models::ANTHROPIC, "0").await;
    let stats = sims.anth_a.stats();
    assert_eq!(stats.validation_failures, 0);
    assert_eq!(sims.aws.stats().validation_failures, 0);
}

#[tokio::test]
async fn cache_control_arrives_as_the_upstreams_own_marker_and_cache_usage_comes_back() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    for model in [models::ANTHROPIC, models::BEDROCK] {
        println!("system, tool and message blocks marked with cache_control on {model}, twice");
        let out = scenario(&proxy, "cache.py", model, Auth::ApiKey)
            .run()
            .await;
        let body = if model == models::ANTHROPIC {
            sims.anth_a.stats().last_body.unwrap()
        } else {
            sims.aws.stats().last_body.unwrap()
        };
        assert_eq!(
            body["system"][0]["cache_control"],
            json!({"type": "ephemeral", "ttl": "1h"}),
            "{model}: {body}"
        );
        assert!(body["system"][1].get("cache_control").is_none());
        assert_eq!(
            body["tools"][0]["cache_control"],
            json!({"type": "ephemeral", "ttl": "1h"})
        );
        assert_eq!(
            body["messages"][0]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        let (first, second) = (&out["first"]["usage"], &out["second"]["usage"]);
        println!("usage: first {first}, second {second}");
        let written = first["cache_creation_input_tokens"].as_u64().unwrap();
        assert!(written > 0, "the first request writes the cache: {first}");
        assert!(
            first["cache_creation"]["ephemeral_1h_input_tokens"]
                .as_u64()
                .unwrap()
                > 0,
            "the 1h write is reported apart: {first}"
        );
        assert_eq!(
            second["cache_read_input_tokens"].as_u64().unwrap(),
            written,
            "the second reads what the first wrote: {second}"
        );
        assert_eq!(second["cache_creation_input_tokens"], 0);
    }
}

/// `create.py` on `model`; asserts it was served by `provider` after `attempts` attempts.
async fn served_by(proxy: &Proxy, model: &str, provider: &str, attempts: &str) {
    let out = scenario(proxy, "create.py", model, Auth::ApiKey)
        .env("SCENARIO_PROMPT", "Are you there?")
        .run()
        .await;
    assert!(out["error"].is_null(), "the client saw an error: {out}");
    assert_eq!(out["provider"], provider, "{out}");
    assert_eq!(out["attempts"], attempts, "{out}");
    assert_eq!(
        text_of(&out["message"]),
        format!("{provider} says: Are you there?")
    );
}

#[tokio::test]
async fn a_429_on_the_first_target_fails_over_with_no_client_visible_error() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    sims.anth_a.push_faults([AnthropicFault::RateLimit {
        retry_after_secs: 30,
    }]);
    served_by(&proxy, models::ANTHROPIC_PAIR, "anth-b", "2").await;
    assert_eq!(sims.anth_a.stats().served_ok, 0);

    println!("Bedrock throttles (429 ThrottlingException): Anthropic serves instead");
    sims.aws.push_faults([BedrockFault::Throttle]);
    served_by(&proxy, models::BEDROCK_THEN_ANTHROPIC, "anth-b", "2").await;
}

#[tokio::test]
async fn a_529_on_the_first_target_fails_over_with_no_client_visible_error() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    sims.anth_a.push_faults([AnthropicFault::Overloaded]);
    served_by(&proxy, models::ANTHROPIC_PAIR, "anth-b", "2").await;

    println!("and a streamed request whose first target is overloaded");
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    // stream.py makes two requests; both meet an overloaded anth-a first.
    sims.anth_a
        .push_faults([AnthropicFault::Overloaded, AnthropicFault::Overloaded]);
    let out = scenario(&proxy, "stream.py", models::ANTHROPIC_PAIR, Auth::ApiKey)
        .env("SCENARIO_PROMPT", "Still there?")
        .run()
        .await;
    assert!(out["error"].is_null(), "{out}");
    assert_eq!(out["text"], "anth-b says: Still there?");
    assert_eq!(text_of(&out["final"]), "anth-b says: Still there?");
    assert_eq!(sims.anth_b.stats().stream_requests, 2);
}

#[tokio::test]
async fn a_stream_whose_first_target_is_throttled_fails_over_before_its_first_byte() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    println!(
        "Bedrock throttles inside the event stream, before any content: anth-b streams instead"
    );
    // stream.py makes two streamed requests; each meets the throttled stream first.
    sims.aws.push_faults([
        BedrockFault::ThrottleBeforeContent,
        BedrockFault::ThrottleBeforeContent,
    ]);
    let out = scenario(
        &proxy,
        "stream.py",
        models::BEDROCK_THEN_ANTHROPIC,
        Auth::AuthToken,
    )
    .env("SCENARIO_PROMPT", "Keep going")
    .run()
    .await;
    assert!(out["error"].is_null(), "the client saw an error: {out}");
    assert_eq!(out["text"], "anth-b says: Keep going");
    assert_eq!(text_of(&out["final"]), "anth-b says: Keep going");
    assert_eq!(sims.anth_b.stats().stream_requests, 2);
}

#[tokio::test]
async fn the_models_list_is_in_anthropics_shape_for_the_sdk() {
    let (_sims, proxy) = ClaudeSims::with_proxy().await;
    let out = scenario(&proxy, "models.py", models::BEDROCK, Auth::ApiKey)
        .run()
        .await;
    assert!(out["error"].is_null(), "{out}");
    let ids: Vec<&str> = out["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| {
            assert_eq!(model["type"], "model", "{model}");
            assert!(model["created_at"].is_string(), "{model}");
            model["id"].as_str().unwrap()
        })
        .collect();
    for model in [models::ANTHROPIC, models::BEDROCK, models::ANTHROPIC_PAIR] {
        assert!(ids.contains(&model), "{model} in {ids:?}");
    }
    assert_eq!(out["retrieved"]["id"], models::BEDROCK);
    assert_eq!(out["retrieved"]["type"], "model");
}

#[tokio::test]
async fn a_budget_refusal_and_a_bad_key_are_the_sdks_own_exceptions() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    println!("team broke has a budget of 0 USD");
    let out = Scenario::new(
        "create.py",
        &anthropic_base_url(&proxy),
        BROKE_KEY,
        Auth::ApiKey,
        models::ANTHROPIC,
    )
    .run()
    .await;
    let error = &out["error"];
    assert_eq!(error["exception"], "RateLimitError", "{out}");
    assert_eq!(error["status"], 429);
    assert_eq!(error["body_type"], "error");
    assert_eq!(error["error_type"], "rate_limit_error");
    assert!(
        error["message"].as_str().unwrap().contains("budget"),
        "the message says why: {error}"
    );
    assert!(
        error["request_id"].is_string(),
        "request-id is echoed: {error}"
    );

    for auth in [Auth::ApiKey, Auth::AuthToken] {
        println!("a key no team holds, as {auth:?}");
        let out = Scenario::new(
            "create.py",
            &anthropic_base_url(&proxy),
            "sk-not-a-team-key",
            auth,
            models::ANTHROPIC,
        )
        .run()
        .await;
        let error = &out["error"];
        assert_eq!(error["exception"], "AuthenticationError", "{out}");
        assert_eq!(error["status"], 401);
        assert_eq!(error["body_type"], "error");
        assert_eq!(error["error_type"], "authentication_error");
        assert!(!error["message"]
            .as_str()
            .unwrap()
            .contains("sk-not-a-team-key"));
        assert!(
            error["request_id"].is_string(),
            "request-id is echoed: {error}"
        );
    }
    assert_eq!(
        sims.anth_a.stats().requests,
        0,
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn count_tokens_is_the_upstreams_count_or_a_marked_estimate() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    println!("the Anthropic simulator's own count, asked directly, is the reference");
    let direct = Scenario::new(
        "count_tokens.py",
        &sims.anth_a.base_url(),
        ANTHROPIC_KEY_A,
        Auth::ApiKey,
        ANTHROPIC_MODEL,
    )
    .run()
    .await;
    let expected = direct["input_tokens"].as_u64().unwrap();
    assert!(expected > 0);

    for (model, auth) in [
        (models::ANTHROPIC, Auth::ApiKey),
        (models::BEDROCK, Auth::AuthToken),
    ] {
        println!("client.messages.count_tokens on {model}");
        let out = scenario(&proxy, "count_tokens.py", model, auth).run().await;
        assert!(out["error"].is_null(), "{out}");
        assert_eq!(out["input_tokens"], expected, "{model}: {out}");
        assert!(out["estimated"].is_null(), "an upstream count: {out}");
    }
    assert_eq!(sims.anth_a.stats().count_tokens_requests, 2);
    assert!(sims
        .aws
        .stats()
        .last_path
        .unwrap()
        .ends_with("/count-tokens"));

    println!("an OpenAI-compatible target has no count: an estimate, marked");
    let out = scenario(&proxy, "count_tokens.py", models::OPENAI, Auth::ApiKey)
        .run()
        .await;
    assert!(out["error"].is_null(), "{out}");
    assert!(out["input_tokens"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(out["estimated"], "true");
}

#[tokio::test]
async fn the_scenarios_hold_against_the_anthropic_simulator_itself() {
    // The control: the same scripts straight at the simulator, so a failure through the proxy
    // is the proxy's, not the script's.
    let sims = ClaudeSims::start().await;
    let direct = |script: &str| {
        Scenario::new(
            script,
            &sims.anth_a.base_url(),
            ANTHROPIC_KEY_A,
            Auth::ApiKey,
            ANTHROPIC_MODEL,
        )
    };
    let out = direct("create.py").run().await;
    assert_eq!(text_of(&out["message"]), "anth-a says: Hello");
    let out = direct("stream.py").run().await;
    assert_eq!(out["text"], "anth-a says: Tell me about streams");
    let out = direct("tools.py").env("SCENARIO_STREAM", "1").run().await;
    assert_eq!(out["second"]["stop_reason"], "end_turn");
    let out = direct("thinking.py")
        .env("SCENARIO_STREAM", "1")
        .run()
        .await;
    assert!(out["error"].is_null(), "{out}");
    let out = direct("cache.py").run().await;
    assert!(
        out["second"]["usage"]["cache_read_input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let out = Scenario::new(
        "create.py",
        &sims.anth_a.base_url(),
        "sk-wrong",
        Auth::ApiKey,
        ANTHROPIC_MODEL,
    )
    .run()
    .await;
    assert_eq!(out["error"]["exception"], "AuthenticationError");
}

#[tokio::test]
async fn a_stream_failing_after_its_first_byte_ends_with_an_error_event_the_sdk_raises() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    for model in [models::ANTHROPIC, models::BEDROCK] {
        println!("{model}: the upstream fails after some content has reached the client");
        if model == models::ANTHROPIC {
            sims.anth_a
                .push_faults([AnthropicFault::StreamError { after_events: 4 }]);
        } else {
            sims.aws.push_faults([BedrockFault::ThrottleMidStream]);
        }
        let out = scenario(&proxy, "stream.py", model, Auth::ApiKey)
            .run()
            .await;
        let error = &out["error"];
        assert!(!error.is_null(), "the failure reached the client: {out}");
        // Mid-stream, the SDK raises the generic class: the HTTP status was already 200.
        assert_eq!(error["exception"], "APIStatusError", "{out}");
        assert_eq!(error["body_type"], "error", "{out}");
        assert!(
            matches!(
                error["error_type"].as_str(),
                Some("overloaded_error" | "rate_limit_error" | "api_error")
            ),
            "{out}"
        );
        let kinds: Vec<&str> = out["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.first(), Some(&"message_start"), "{out}");
        assert!(!kinds.contains(&"message_stop"), "{out}");
    }
}
