//! The Azure simulator on the wire: both URL forms, `api-version`, `api-key` and bearer
//! auth, deployment lookup, quota headers and 429s, content-filter answers, the
//! filter-only first stream chunk, and the fake Entra token endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loadtest::azure_sim::{FILTER_COMPLETION, FILTER_PROMPT};
use loadtest::{AzureDeployment, AzureSim, AzureSimConfig, CapturesRequests, Fault};
use serde_json::{json, Value};

const KEY: &str = "az-key";

async fn sim() -> AzureSim {
    AzureSim::start(AzureSimConfig {
        api_key: Some(KEY.into()),
        entra_client_secret: Some("s3".into()),
        deployments: vec![
            AzureDeployment::new("chat", "gpt-4o-2024-08-06").with_rpm(1),
            AzureDeployment::new("emb", "text-embedding-3-small"),
        ],
        ..AzureSimConfig::default()
    })
    .await
    .unwrap()
}

fn client() -> reqwest::Client {
    loadtest::http_client().unwrap()
}

fn hello(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

async fn send(
    request: reqwest::RequestBuilder,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let response = request
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn deployments_form_needs_api_version_and_the_key() {
    let sim = sim().await;
    let url = format!(
        "{}/openai/deployments/chat/chat/completions",
        sim.endpoint()
    );
    let (status, _, body) = send(client().post(&url).header("api-key", KEY), &hello("hi")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("MissingApiVersionParameter"));
    let versioned = format!("{url}?api-version=2024-10-21");
    let (status, _, _) = send(
        client().post(&versioned).header("api-key", "nope"),
        &hello("hi"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(sim.auth_failures(), 1);

    println!("with both: an OpenAI answer with Azure's model and filter annotations");
    let (status, headers, body) = send(
        client().post(&versioned).header("api-key", KEY),
        &hello("hi"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["model"], "gpt-4o-2024-08-06");
    assert!(answer["prompt_filter_results"].is_array());
    assert!(answer["choices"][0]["content_filter_results"].is_object());
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert!(
        headers.get("x-ratelimit-limit-requests").is_none(),
        "Azure sends remaining only"
    );

    println!("the quota of 1 RPM is spent: 429 with retry-after-ms, Azure's error shape");
    let (status, headers, body) = send(
        client().post(&versioned).header("api-key", KEY),
        &hello("hi"),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.get("retry-after-ms").is_some());
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "429"
    );
}

#[tokio::test]
async fn v1_form_takes_the_deployment_from_the_body_and_the_key_as_bearer() {
    let sim = sim().await;
    let url = format!("{}/openai/v1/embeddings", sim.endpoint());
    let body = json!({"model": "emb", "input": "x"});
    let (status, _, text) = send(client().post(&url).bearer_auth(KEY), &body).await;
    assert_eq!(status, 200, "{text}");
    let unknown = json!({"model": "nope", "input": "x"});
    let (status, _, text) = send(client().post(&url).bearer_auth(KEY), &unknown).await;
    assert_eq!(status, 404);
    assert!(text.contains("DeploymentNotFound"));
}

#[tokio::test]
async fn content_filter_triggers_and_the_filter_only_first_chunk() {
    let sim = sim().await;
    let url = format!("{}/openai/v1/chat/completions", sim.endpoint());
    let mut refused = hello(FILTER_PROMPT);
    refused["model"] = json!("chat");
    let (status, _, body) = send(client().post(&url).header("api-key", KEY), &refused).await;
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "content_filter");
    assert_eq!(
        error["error"]["innererror"]["code"],
        "ResponsibleAIPolicyViolation"
    );

    let mut streamed = hello(FILTER_COMPLETION);
    streamed["model"] = json!("chat");
    streamed["stream"] = json!(true);
    let (status, _, body) = send(client().post(&url).header("api-key", KEY), &streamed).await;
    assert_eq!(status, 200, "{body}");
    let events: Vec<&str> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    let first: Value = serde_json::from_str(events[0]).unwrap();
    assert_eq!(first["choices"], json!([]));
    assert_eq!(first["id"], "");
    assert!(first["prompt_filter_results"].is_array());
    assert!(body.contains("\"finish_reason\":\"content_filter\""));
    assert_eq!(events.last(), Some(&"[DONE]"));
}

#[tokio::test]
async fn faults_apply_per_deployment_and_entra_tokens_are_issued_and_accepted() {
    let sim = sim().await;
    sim.push_faults("emb", [Fault::Status(503)]);
    let url = format!(
        "{}/openai/deployments/emb/embeddings?api-version=2024-10-21",
        sim.endpoint()
    );
    let body = json!({"input": "x"});
    let (status, _, _) = send(client().post(&url).header("api-key", KEY), &body).await;
    assert_eq!(status, 503);

    let token_url = format!("{}/tenant/oauth2/v2.0/token", sim.endpoint());
    let form = "grant_type=client_credentials&client_id=c&client_secret=s3&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default";
    let response = client().post(&token_url).body(form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    let (status, _, text) = send(client().post(&url).bearer_auth(&access), &body).await;
    assert_eq!(status, 200, "{text}");
    let bad = client()
        .post(&token_url)
        .body("grant_type=client_credentials&client_secret=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    assert_eq!(sim.token_requests(), 2);
}

#[tokio::test]
async fn captures_inference_bodies_of_both_url_forms_but_not_token_requests() {
    let sim = sim().await;
    let deployments = format!(
        "{}/openai/deployments/chat/chat/completions?api-version=2024-10-21",
        sim.endpoint()
    );
    send(
        client().post(&deployments).header("api-key", KEY),
        &hello("one"),
    )
    .await;
    let v1 = format!("{}/openai/v1/embeddings", sim.endpoint());
    let embed = json!({"model": "emb", "input": "two"});
    send(client().post(&v1).header("api-key", KEY), &embed).await;
    let token_url = format!("{}/tenant/oauth2/v2.0/token", sim.endpoint());
    client()
        .post(&token_url)
        .body("grant_type=client_credentials&client_secret=s3")
        .send()
        .await
        .unwrap();

    let captured = sim.captured();
    let paths: Vec<&str> = captured.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/openai/deployments/chat/chat/completions",
            "/openai/v1/embeddings"
        ],
        "the token request (a secret) is not captured"
    );
    assert_eq!(
        captured[0].body,
        hello("one"),
        "as sent, before the sim sets `model`"
    );
    assert_eq!(sim.captured_bodies("/embeddings"), [embed]);

    let root = sim.endpoint();
    let over_http: loadtest::CapturedRequests = client()
        .get(format!("{root}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http.requests, captured);
    let reset = client()
        .post(format!("{root}/_sim/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status().as_u16(), 200);
    assert!(sim.captured().is_empty());
}
