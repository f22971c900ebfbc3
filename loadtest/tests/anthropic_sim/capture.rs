//! Request capture on the Anthropic and Bedrock simulators: the bodies they received, in
//! process and over `/_sim/requests`, cleared by `POST /_sim/reset`.

use loadtest::{BedrockSim, BedrockSimConfig, CapturedRequests, CapturesRequests};
use serde_json::{json, Value};

use crate::support::{bedrock_post, body, client, create, send, start};

async fn over_http(root: &str) -> anyhow::Result<Vec<Value>> {
    let captured: CapturedRequests = client()?
        .get(format!("{root}/_sim/requests"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(captured.requests.into_iter().map(|r| r.body).collect())
}

async fn reset(root: &str) -> anyhow::Result<()> {
    client()?
        .post(format!("{root}/_sim/reset"))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

#[tokio::test]
async fn anthropic_sim_captures_message_bodies() -> anyhow::Result<()> {
    let sim = start().await?;
    let (status, _) = create(&sim, &body("first turn")).await?;
    assert_eq!(status, 200);
    send(&sim, "/v1/messages/count_tokens", &body("counted")).await?;
    let captured = sim.captured();
    let paths: Vec<&str> = captured.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/v1/messages", "/v1/messages/count_tokens"]);
    assert_eq!(captured[0].body, body("first turn"));
    assert_eq!(sim.captured_bodies("/v1/messages"), [body("first turn")]);

    let root = sim.base_url();
    assert_eq!(
        over_http(&root).await?,
        [body("first turn"), body("counted")]
    );
    reset(&root).await?;
    assert!(sim.captured().is_empty());
    Ok(())
}

#[tokio::test]
async fn bedrock_sim_captures_model_request_bodies() -> anyhow::Result<()> {
    let sim = BedrockSim::start(BedrockSimConfig::new("capture")).await?;
    let converse = json!({"messages": [{"role": "user", "content": [{"text": "hello"}]}]});
    let response = bedrock_post(&sim, "/model/amazon.nova-lite-v1%3A0/converse", &converse).await?;
    assert_eq!(response.status(), 200);
    // Unsigned: refused, but it reached the simulator, so it is captured.
    client()?
        .post(format!("{}/model/m/converse", sim.endpoint()))
        .json(&json!({"unsigned": true}))
        .send()
        .await?;
    let captured = sim.captured();
    assert_eq!(captured.len(), 2);
    assert_eq!(captured[0].path, "/model/amazon.nova-lite-v1%3A0/converse");
    assert_eq!(captured[0].body, converse);
    assert_eq!(sim.last_captured_body(), Some(json!({"unsigned": true})));

    let root = sim.endpoint();
    assert_eq!(over_http(&root).await?.len(), 2);
    reset(&root).await?;
    assert!(over_http(&root).await?.is_empty());
    Ok(())
}
