//! Request capture: the bodies the simulator received, in process and over `/_sim/requests`.

use loadtest::{CapturedRequests, CapturesRequests, CAPTURE_LIMIT};
use serde_json::json;

use crate::support::{chat_body, client, post, start_default};

#[tokio::test]
async fn captures_inference_bodies_in_order_and_resets() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let client = client()?;
    post(&client, &sim, "/chat/completions", &chat_body("first")).await?;
    post(
        &client,
        &sim,
        "/embeddings",
        &json!({"model": "e", "input": "second"}),
    )
    .await?;
    // Refused requests are captured too: the upstream did receive them.
    post(&client, &sim, "/chat/completions", &json!({"model": "m"})).await?;
    client
        .get(format!("{}/models", sim.base_url()))
        .send()
        .await?;

    let captured = sim.captured();
    let paths: Vec<&str> = captured.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/chat/completions"
        ],
        "only POSTs to the API, in arrival order"
    );
    assert_eq!(
        captured.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(captured[0].body, chat_body("first"));
    assert_eq!(captured[1].body["input"], "second");
    assert_eq!(sim.captured_bodies("/embeddings").len(), 1);
    assert_eq!(sim.last_captured_body(), Some(json!({"model": "m"})));

    let root = format!("http://{}", sim.addr());
    let over_http: CapturedRequests = client
        .get(format!("{root}/_sim/requests"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(over_http.requests, captured);

    client
        .post(format!("{root}/_sim/reset"))
        .send()
        .await?
        .error_for_status()?;
    assert!(sim.captured().is_empty(), "the reset clears the capture");
    post(&client, &sim, "/chat/completions", &chat_body("again")).await?;
    assert_eq!(sim.captured()[0].seq, 1);
    Ok(())
}

#[tokio::test]
async fn keeps_only_the_latest_requests() -> anyhow::Result<()> {
    let sim = start_default().await?;
    let client = client()?;
    for n in 0..CAPTURE_LIMIT + 2 {
        post(
            &client,
            &sim,
            "/chat/completions",
            &chat_body(&format!("n{n}")),
        )
        .await?;
    }
    let captured = sim.captured();
    assert_eq!(captured.len(), CAPTURE_LIMIT);
    assert_eq!(captured[0].body, chat_body("n2"));
    assert_eq!(captured[0].seq, 3);
    sim.clear_captured();
    assert!(sim.captured().is_empty());
    Ok(())
}
