//! The simulators' native Responses API read by the official OpenAI Python SDK with no
//! proxy between (`tests/python/responses_sim.py`): the shapes the proxy's `responses:
//! native` path forwards are those the SDK's `responses.create`, `responses.parse` and
//! `responses.stream()` helper parse, on the OpenAI simulator and on the Azure one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loadtest::{answer_text, AzureDeployment, AzureSim, AzureSimConfig, OpenAiSim, SimConfig};
use serde_json::{json, Value};
use switchyard_e2e::python::{Auth, Scenario};
use switchyard_e2e::CapturesRequests;

const KEY: &str = "sk-sim-responses";

fn scenario(base_url: &str, model: &str) -> Scenario {
    Scenario::new("responses_sim.py", base_url, KEY, Auth::ApiKey, model)
}

/// What every run must show, whichever simulator `name` answered.
fn assert_sdk_read_everything(out: &Value, name: &str) {
    let greeting = answer_text(name, 8);
    let plain = &out["plain"];
    assert_eq!(plain["status"], "completed", "{out}");
    assert_eq!(plain["output_text"], greeting);
    assert!(plain["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(plain["usage"]["output_tokens"], 8);
    assert_eq!(plain["usage"]["input_tokens_details"]["cached_tokens"], 0);

    let stream = &out["stream"];
    assert_eq!(stream["status"], "completed");
    assert_eq!(stream["output_text"], greeting);
    let events = stream["events"].as_array().unwrap();
    assert_eq!(events[0]["type"], "response.created");
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    for (seq, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], seq as u64, "{event}");
    }
    let deltas = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .count();
    assert_eq!(deltas, 8);

    let tools = &out["tools"];
    assert_eq!(tools["name"], "get_weather");
    assert_eq!(tools["arguments"], json!({"city": "sample"}));
    assert_eq!(tools["parsed_arguments"], json!({"city": "sample"}));
    assert_eq!(tools["answer"], "The tool said: 18C and sunny");

    assert_eq!(out["parsed"], json!({"city": "sample", "temp": 1.0}));
    assert_eq!(out["parsed_stream"], out["parsed"]);

    let reasoning = &out["reasoning"];
    assert_eq!(reasoning["type"], "reasoning");
    assert_eq!(
        reasoning["summary"],
        json!([format!("{name} considered the request.")])
    );
    assert!(reasoning["encrypted_content"]
        .as_str()
        .unwrap()
        .starts_with(&format!("enc_{name}:")));
    let kinds = reasoning["events"].as_array().unwrap();
    assert!(kinds.contains(&json!("response.reasoning_summary_text.delta")));
    let reasoning_tokens = reasoning["reasoning_tokens"].as_u64().unwrap();
    assert!(reasoning_tokens > 0);
    assert_eq!(
        reasoning["output_tokens"].as_u64(),
        Some(reasoning_tokens + 8)
    );
    assert_eq!(reasoning["replayed_status"], "completed");

    assert_eq!(
        out["previous"],
        json!({"exception": "BadRequestError", "status": 400, "code": "previous_response_not_found"})
    );
}

#[tokio::test]
async fn the_openai_sdk_reads_the_openai_simulators_responses() {
    let sim = OpenAiSim::start(SimConfig {
        name: "py-sim".into(),
        api_key: Some(KEY.into()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let out = scenario(&sim.base_url(), "gpt-test").run().await;
    assert_sdk_read_everything(&out, "py-sim");
    let stats = sim.stats();
    assert_eq!(
        stats.store_requested, 1,
        "only the last request left store out"
    );
    let parsed = sim
        .captured_bodies("/v1/responses")
        .into_iter()
        .find(|body| body["text"]["format"]["type"] == "json_schema")
        .expect("responses.parse sent a json_schema format");
    assert_eq!(parsed["text"]["format"]["name"], "Weather");
}

#[tokio::test]
async fn the_openai_sdk_reads_the_azure_simulators_responses() {
    let sim = AzureSim::start(AzureSimConfig {
        api_key: Some(KEY.into()),
        deployments: vec![AzureDeployment::new("gpt-5-prod", "gpt-5-2025-08-07")],
        ..AzureSimConfig::default()
    })
    .await
    .unwrap();
    let base_url = format!("{}/openai/v1", sim.endpoint());
    let out = scenario(&base_url, "gpt-5-prod").run().await;
    assert_sdk_read_everything(&out, "azure-sim/gpt-5-prod");
    assert_eq!(sim.stats("gpt-5-prod").store_requested, 1);
    assert!(sim
        .captured()
        .iter()
        .all(|request| request.path == "/openai/v1/responses"));
}
