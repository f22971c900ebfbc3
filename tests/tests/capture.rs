//! The simulators' request capture seen through the real binary: after a failover, each
//! upstream's captured body is what the proxy sent it (whole conversation, its own model
//! name, its own dialect), readable in process and over `GET /_sim/requests`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loadtest::{BedrockFault, Fault};
use serde_json::json;
use switchyard_e2e::claude_fixtures::{models, ClaudeSims};
use switchyard_e2e::messages::{ask, send};
use switchyard_e2e::{
    body_mentions, fetch_captured, post_json, CapturesRequests, Proxy, Sims, ALPHA_KEY,
};

#[tokio::test]
async fn both_upstreams_of_a_failover_received_the_whole_conversation() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    sims.a.push_faults([Fault::Status(503)]);
    let conversation = json!({"model": "chat", "messages": [
        {"role": "user", "content": "turn one"},
        {"role": "assistant", "content": "answer one"},
        {"role": "user", "content": "turn two"}]});
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &conversation,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-b"));

    for (sim, model) in [(&sims.a, "up-a"), (&sims.b, "up-b")] {
        let bodies = sim.captured_bodies("/v1/chat/completions");
        assert_eq!(bodies.len(), 1, "one attempt each");
        assert_eq!(bodies[0]["model"], model, "each target's own model name");
        for text in ["turn one", "answer one", "turn two"] {
            assert!(body_mentions(&bodies[0], text), "{model} lacks {text:?}");
        }
        assert_eq!(fetch_captured(sim.addr()).await, sim.captured());
    }
}

#[tokio::test]
async fn a_bedrock_to_anthropic_failover_sends_each_its_dialect() {
    let (sims, proxy) = ClaudeSims::with_proxy().await;
    sims.aws.push_faults([BedrockFault::Throttle]);
    let reply = send(&proxy, &ask(models::BEDROCK_THEN_ANTHROPIC, "capture me")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let to_bedrock = sims.aws.captured();
    assert_eq!(to_bedrock.len(), 1);
    assert!(
        to_bedrock[0].path.starts_with("/model/"),
        "{}",
        to_bedrock[0].path
    );
    assert!(
        to_bedrock[0].path.ends_with("/invoke"),
        "{}",
        to_bedrock[0].path
    );
    assert!(body_mentions(&to_bedrock[0].body, "capture me"));
    assert_eq!(
        to_bedrock[0].body["anthropic_version"],
        "bedrock-2023-05-31"
    );

    let to_anthropic = sims.anth_b.captured_bodies("/v1/messages");
    assert_eq!(to_anthropic.len(), 1);
    assert!(body_mentions(&to_anthropic[0], "capture me"));
    assert!(
        sims.anth_a.captured().is_empty(),
        "anth-a is not on this model"
    );
    assert_eq!(
        fetch_captured(sims.anth_b.addr()).await,
        sims.anth_b.captured()
    );
}
