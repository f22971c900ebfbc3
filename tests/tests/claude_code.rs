//! The request sequence Claude Code sends to a gateway (`ANTHROPIC_BASE_URL` +
//! `ANTHROPIC_AUTH_TOKEN`), recorded in `tests/fixtures/claude_code/` (see its README),
//! replayed through the real binary to an Anthropic target and to Claude on Bedrock: every
//! streamed answer must be a well-formed Anthropic stream, the second turn's signed thinking
//! block must be accepted, the betas must reach the upstream, and count_tokens be answered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::Value;
use switchyard_e2e::anthropic_stream::{check_stream, sse_events};
use switchyard_e2e::claude_fixtures::{
    anthropic_base_url, models, ClaudeSims, ANTHROPIC_KEY_A, ANTHROPIC_KEY_B, ANTHROPIC_MODEL,
    BEDROCK_MODEL,
};
use switchyard_e2e::{http_client, within, Proxy, Reply, ALPHA_KEY};

/// One recorded request.
struct Recorded {
    name: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_count(&self) -> bool {
        self.path.starts_with("/v1/messages/count_tokens")
    }
}

fn fixture() -> Vec<Recorded> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/claude_code/requests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a fixture line is JSON");
            assert_eq!(value["method"], "POST");
            Recorded {
                name: value["name"].as_str().unwrap().to_owned(),
                path: value["path"].as_str().unwrap().to_owned(),
                headers: value["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pair| {
                        (
                            pair[0].as_str().unwrap().to_owned(),
                            pair[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect(),
                body: value["body"].clone(),
            }
        })
        .collect()
}

/// The betas of a recorded request, in order.
fn betas(recorded: &Recorded) -> Vec<String> {
    recorded
        .header("anthropic-beta")
        .unwrap_or_default()
        .split(',')
        .map(|beta| beta.trim().to_owned())
        .filter(|beta| !beta.is_empty())
        .collect()
}

/// Sends a recorded request to `root` with its recorded headers (the team key in place of the
/// recorded token) and `extra` ones, and `model` in place of the recorded model.
async fn replay(
    root: &str,
    recorded: &Recorded,
    model: &str,
    key: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut body = recorded.body.clone();
    body["model"] = Value::String(model.to_owned());
    let mut request = http_client()
        .post(format!("{root}{}", recorded.path))
        .body(body.to_string());
    for (name, value) in &recorded.headers {
        let value = value.replace("{TEAM_KEY}", key);
        request = request.header(name.as_str(), value);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = within(request.send()).await.expect("sending a request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = within(response.text()).await.expect("reading the body");
    Reply {
        status,
        headers,
        body,
    }
}

#[test]
fn the_fixture_holds_what_claude_code_sends() {
    let recorded = fixture();
    let turns: Vec<&Recorded> = recorded.iter().filter(|r| !r.is_count()).collect();
    assert!(turns.len() >= 2, "two turns of a tool loop");
    assert!(
        recorded.iter().any(Recorded::is_count),
        "count_tokens calls"
    );
    for r in &recorded {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer {TEAM_KEY}"),
            "{}",
            r.name
        );
        assert_eq!(
            r.header("anthropic-version"),
            Some("2023-06-01"),
            "{}",
            r.name
        );
        assert_eq!(r.header("x-app"), Some("cli"), "{}", r.name);
        assert!(
            betas(r).contains(&"claude-code-20250219".to_owned()),
            "{}",
            r.name
        );
    }
    for turn in &turns {
        let body = &turn.body;
        assert_eq!(body["stream"], true, "{}", turn.name);
        assert!(!body["tools"].as_array().unwrap().is_empty());
        assert_eq!(body["thinking"]["type"], "enabled");
        assert!(body["metadata"]["user_id"].is_string());
        assert!(betas(turn).contains(&"interleaved-thinking-2025-05-14".to_owned()));
        let system = body["system"].as_array().unwrap();
        assert!(system
            .iter()
            .any(|block| block["cache_control"].is_object()));
    }
    let second = &turns[1].body;
    let assistant = &second["messages"][1];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"][0]["type"], "thinking");
    assert!(assistant["content"][0]["signature"].is_string());
    let last = second["messages"].as_array().unwrap().last().unwrap();
    let last_block = last["content"].as_array().unwrap().last().unwrap();
    assert_eq!(last_block["type"], "tool_result");
    assert!(
        last_block["cache_control"].is_object(),
        "cache_control on the last message"
    );
}

/// Replays the whole sequence on `model`; `upstream_body` reads the body the upstream last
/// received. Returns the bodies the upstream received for the streamed turns.
async fn replay_sequence(
    proxy: &Proxy,
    sims: &ClaudeSims,
    model: &str,
    upstream_body: &dyn Fn(&ClaudeSims) -> Value,
) -> Vec<Value> {
    let root = anthropic_base_url(proxy);
    let mut sent_bodies = Vec::new();
    for recorded in fixture() {
        println!("{} on {model}", recorded.name);
        let reply = replay(&root, &recorded, model, ALPHA_KEY, &[]).await;
        assert_eq!(reply.status, 200, "{}: {}", recorded.name, reply.body);
        if recorded.is_count() {
            let count = reply.json();
            let counted = count["input_tokens"].as_u64().unwrap_or(0);
            assert!(counted > 0, "{}: {count}", recorded.name);
            assert!(
                reply.header("x-switchyard-estimated").is_none(),
                "an upstream count"
            );
            println!("  the same body counted by an Anthropic simulator directly");
            let direct = replay(
                &sims.anth_b.base_url(),
                &recorded,
                ANTHROPIC_MODEL,
                "",
                &[("x-api-key", ANTHROPIC_KEY_B)],
            )
            .await;
            assert_eq!(direct.status, 200, "{}", direct.body);
            assert_eq!(direct.json()["input_tokens"], counted, "{}", recorded.name);
            continue;
        }
        assert!(
            reply
                .header("content-type")
                .is_some_and(|value| value.starts_with("text/event-stream")),
            "{:?}",
            reply.headers
        );
        let events = sse_events(&reply.body).unwrap_or_else(|e| panic!("{}: {e}", recorded.name));
        let message = check_stream(&events).unwrap_or_else(|e| {
            panic!(
                "{}: not a well-formed Anthropic stream: {e}\n{}",
                recorded.name, reply.body
            )
        });
        println!(
            "  {} events: stop_reason {}, usage {}",
            events.len(),
            message["stop_reason"],
            message["usage"]
        );
        assert_eq!(message["model"], model, "the client's model name");
        assert_eq!(message["content"][0]["type"], "thinking", "{message}");
        assert!(matches!(
            message["stop_reason"].as_str(),
            Some("end_turn" | "tool_use")
        ));
        assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
        assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
        let sent = upstream_body(sims);
        assert_eq!(
            sent["metadata"], recorded.body["metadata"],
            "metadata reaches the upstream"
        );
        assert_eq!(
            sent["system"], recorded.body["system"],
            "system blocks unchanged"
        );
        assert_eq!(
            sent["messages"], recorded.body["messages"],
            "messages unchanged"
        );
        sent_bodies.push(sent);
    }
    sent_bodies
}

#[tokio::test]
async fn the_claude_code_sequence_is_served_by_an_anthropic_target() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    replay_sequence(&proxy, &sims, models::ANTHROPIC, &|sims| {
        sims.anth_a.stats().last_body.unwrap()
    })
    .await;
    let stats = sims.anth_a.stats();
    assert_eq!(stats.validation_failures, 0);
    assert_eq!(stats.stream_requests, 2);
    println!("every beta Claude Code sent reached Anthropic, with its anthropic-version");
    for recorded in fixture() {
        for beta in betas(&recorded) {
            assert!(
                stats.betas_seen.contains(&beta),
                "{beta}: {:?}",
                stats.betas_seen
            );
        }
    }
    assert_eq!(stats.last_version.as_deref(), Some("2023-06-01"));
    let key = stats
        .last_headers
        .iter()
        .find(|(name, _)| name == "x-api-key")
        .map(|(_, value)| value.as_str());
    assert_eq!(
        key,
        Some(ANTHROPIC_KEY_A),
        "the provider's key, not the team's"
    );
    assert!(
        !stats
            .last_headers
            .iter()
            .any(|(_, value)| value.contains(ALPHA_KEY)),
        "the team key stays at the proxy: {:?}",
        stats.last_headers
    );
}

#[tokio::test]
async fn the_claude_code_sequence_is_served_by_claude_on_bedrock() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    let sent = replay_sequence(&proxy, &sims, models::BEDROCK, &|sims| {
        sims.aws.stats().last_body.unwrap()
    })
    .await;
    println!("the native body carries the version and the betas Claude Code sent");
    for body in &sent {
        assert_eq!(body["anthropic_version"], "bedrock-2023-05-31");
        assert!(
            body.get("model").is_none() && body.get("stream").is_none(),
            "{body}"
        );
        let forwarded: Vec<&str> = body["anthropic_beta"]
            .as_array()
            .unwrap_or_else(|| panic!("no anthropic_beta: {body}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            forwarded.contains(&"interleaved-thinking-2025-05-14"),
            "{forwarded:?}"
        );
    }
    let stats = sims.aws.stats();
    assert_eq!(stats.validation_failures, 0);
    let path = stats.last_path.unwrap();
    assert!(
        path.contains(&BEDROCK_MODEL.replace(':', "%3A")) || path.contains(BEDROCK_MODEL),
        "{path}"
    );
    assert_eq!(sims.anth_a.stats().requests, 0, "nothing went to Anthropic");
}

#[tokio::test]
async fn the_claude_code_sequence_survives_a_throttled_first_target() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    println!("Bedrock throttles the first stream before any content: Anthropic serves the session");
    sims.aws
        .push_faults([loadtest::BedrockFault::ThrottleBeforeContent]);
    replay_sequence(&proxy, &sims, models::BEDROCK_THEN_ANTHROPIC, &|sims| {
        sims.anth_b.stats().last_body.unwrap()
    })
    .await;
    assert_eq!(sims.anth_b.stats().stream_requests, 2);
    assert_eq!(sims.anth_b.stats().validation_failures, 0);
}
