//! Azure OpenAI providers end to end: the real proxy against the Azure simulator, driven by
//! async-openai and raw HTTP. Chat, stream, tools, embeddings, both URL forms, content
//! filter, auth failure, 429 failover with the cool-down honoured, headroom and tier in
//! `/admin/routes`, and Entra tokens from a fake token endpoint refreshed in the background.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, CreateChatCompletionRequest,
    CreateChatCompletionStreamResponse, FinishReason,
};
use async_openai::types::embeddings::CreateEmbeddingRequest;
use futures_util::StreamExt;
use loadtest::azure_sim::{FILTER_COMPLETION, FILTER_PROMPT};
use loadtest::{answer_text, AzureDeployment, AzureSim, AzureSimConfig, Fault};
use serde_json::{json, Value};
use switchyard_e2e::{get, policy, post_json, post_stream, within, Proxy, ALPHA_KEY};

const EAST_KEY: &str = "azure-east-key-5d1f0c";
const WEST_KEY: &str = "azure-west-key-93ab7e";
const WRONG_KEY: &str = "azure-wrong-key-000000";
const ENTRA_SECRET: &str = "entra-client-secret-77c2";

/// `az-east` (PTU deployment `gpt4o-ptu` with a known quota, embeddings `emb`, a tiny
/// `gpt4o-tiny` of 2 RPM) and `az-west` (pay-as-you-go `gpt4o-paygo`).
struct Azure {
    east: AzureSim,
    west: AzureSim,
}

impl Azure {
    async fn start() -> Azure {
        let east = AzureSim::start(AzureSimConfig {
            name: "az-east".into(),
            api_key: Some(EAST_KEY.into()),
            deployments: vec![
                AzureDeployment::new("gpt4o-ptu", "gpt-4o-2024-08-06").with_rpm(100),
                AzureDeployment::new("gpt4o-tiny", "gpt-4o-2024-08-06").with_rpm(2),
                AzureDeployment::new("emb", "text-embedding-3-small"),
            ],
            ..AzureSimConfig::default()
        })
        .await
        .expect("starting az-east");
        let west = AzureSim::start(AzureSimConfig {
            name: "az-west".into(),
            api_key: Some(WEST_KEY.into()),
            deployments: vec![AzureDeployment::new("gpt4o-paygo", "gpt-4o-2024-08-06")],
            ..AzureSimConfig::default()
        })
        .await
        .expect("starting az-west");
        Azure { east, west }
    }

    fn routes(&self) -> String {
        let (east, west) = (self.east.endpoint(), self.west.endpoint());
        let providers = format!(
            r#"  az-east: {{ kind: azure, endpoint: "{east}", api_key: {EAST_KEY}, api_version: 2024-10-21 }}
  az-east-v1: {{ kind: azure, endpoint: "{east}", api_key: {EAST_KEY}, api_version: v1 }}
  az-west: {{ kind: azure, endpoint: "{west}", api_key: {WEST_KEY}, api_version: 2024-10-21 }}
  az-bad: {{ kind: azure, endpoint: "{east}", api_key: {WRONG_KEY}, api_version: 2024-10-21 }}
"#
        );
        let price = "price: { input: 1.0, output: 2.0 }";
        let models = format!(
            r#"  chat:
    targets:
      - {{ provider: az-east, deployment: gpt4o-ptu, tier: provisioned, {price}, limits: {{ rpm: 100, tpm: 100000 }} }}
      - {{ provider: az-west, deployment: gpt4o-paygo, tier: standard, {price} }}
  tiny:
    targets:
      - {{ provider: az-east, deployment: gpt4o-tiny, {price}, limits: {{ rpm: 2 }} }}
      - {{ provider: az-west, deployment: gpt4o-paygo, {price} }}
  chat-v1: {{ targets: [ {{ provider: az-east-v1, deployment: gpt4o-ptu, {price} }} ] }}
  embed: {{ targets: [ {{ provider: az-east, deployment: emb, price: {{ input: 0.02, output: 0 }} }} ] }}
  bad: {{ targets: [ {{ provider: az-bad, deployment: gpt4o-ptu, {price} }} ] }}
"#
        );
        policy("", &providers, &models, "[chat, tiny, chat-v1, embed, bad]")
    }
}

fn chat_request(body: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(body).expect("a valid chat request")
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

async fn routes_target(proxy: &Proxy, model: &str, id: &str) -> Value {
    let routes = get(&proxy.admin("/admin/routes"), None).await.json();
    routes["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == model)
        .and_then(|m| {
            m["targets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == id)
        })
        .cloned()
        .unwrap_or_else(|| panic!("no target {id} of {model} in {routes}"))
}

#[tokio::test]
async fn chat_tools_embeddings_and_the_v1_form_through_the_sdk() {
    let azure = Azure::start().await;
    let proxy = Proxy::start(&azure.routes()).await;
    let client = proxy.openai(ALPHA_KEY);

    println!("a chat completion on the PTU deployment, deployments URL form");
    let response = within(client.chat().create(chat_request(ask("chat", "hi"))))
        .await
        .expect("chat");
    assert_eq!(
        response.model, "chat",
        "the client's model name, not Azure's"
    );
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some(answer_text("az-east/gpt4o-ptu", 8).as_str())
    );
    let stats = azure.east.stats("gpt4o-ptu");
    let sent_key = stats.last_headers.iter().find(|(k, _)| k == "api-key");
    assert_eq!(sent_key.map(|(_, v)| v.as_str()), Some(EAST_KEY));

    println!("the raw answer keeps Azure's content-filter annotations");
    let raw = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &ask("chat", "hi"),
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.body);
    assert_eq!(raw.header("x-switchyard-provider"), Some("az-east"));
    let body = raw.json();
    assert_eq!(body["prompt_filter_results"][0]["prompt_index"], 0);
    assert_eq!(
        body["choices"][0]["content_filter_results"]["hate"]["filtered"],
        false
    );

    println!("tools: the model calls get_weather");
    let request = chat_request(json!({"model": "chat", "tools": weather_tool(),
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}));
    let response = within(client.chat().create(request))
        .await
        .expect("tool call");
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::ToolCalls)
    );
    let calls = response.choices[0]
        .message
        .tool_calls
        .clone()
        .expect("tool_calls");
    let ChatCompletionMessageToolCalls::Function(call) = &calls[0] else {
        panic!("expected a function call: {calls:?}");
    };
    assert_eq!(call.function.name, "get_weather");

    println!("embeddings through an Azure deployment");
    let request: CreateEmbeddingRequest =
        serde_json::from_value(json!({"model": "embed", "input": ["hello", "world"]})).unwrap();
    let response = within(client.embeddings().create(request))
        .await
        .expect("embeddings");
    assert_eq!(response.data.len(), 2);
    assert_eq!(response.model, "embed");
    assert_eq!(azure.east.stats("emb").embedding_requests, 1);

    println!("the v1 URL form: deployment as the body's model");
    let response = within(client.chat().create(chat_request(ask("chat-v1", "hi"))))
        .await
        .expect("v1 chat");
    assert_eq!(response.model, "chat-v1");
    assert_eq!(
        azure.east.stats("gpt4o-ptu").last_body.unwrap()["model"],
        "gpt4o-ptu"
    );

    println!("/admin/routes shows tiers and the live headroom from x-ratelimit-remaining-*");
    let ptu = routes_target(&proxy, "chat", "az-east/gpt4o-ptu").await;
    println!("{ptu}");
    assert_eq!(ptu["tier"], "provisioned");
    let headroom = ptu["headroom"].as_f64().expect("headroom after traffic");
    // The proxy always sends an output cap now (docs/spend.md), and Azure counts it against the
    // tokens-per-minute quota as it does `max_tokens`: a few requests use a visible share.
    assert!(headroom > 0.5 && headroom <= 1.0, "{headroom}");
    assert!(ptu["rate_limits"]["remaining_requests"].as_u64().unwrap() < 100);
    let paygo = routes_target(&proxy, "chat", "az-west/gpt4o-paygo").await;
    assert_eq!(paygo["tier"], "standard");
    assert!(paygo["headroom"].is_null(), "no traffic, no figure");

    println!("no Azure key shows in /admin/routes or in the log");
    let routes = get(&proxy.admin("/admin/routes"), None).await.body;
    let log = proxy.log();
    for key in [EAST_KEY, WEST_KEY, WRONG_KEY] {
        assert!(!routes.contains(key), "{key} in /admin/routes");
        assert!(!log.contains(key), "{key} in the log");
    }
}

#[tokio::test]
async fn streams_drop_the_filter_only_chunk_and_keep_consistent_ids() {
    let azure = Azure::start().await;
    let proxy = Proxy::start(&azure.routes()).await;
    let client = proxy.openai(ALPHA_KEY);

    println!("a stream through the SDK");
    let mut body = ask("chat", "hi");
    body["stream"] = json!(true);
    let mut stream = within(client.chat().create_stream(chat_request(body.clone())))
        .await
        .expect("stream starts");
    let mut chunks: Vec<CreateChatCompletionStreamResponse> = Vec::new();
    while let Some(item) = within(stream.next()).await {
        chunks.push(item.expect("a chunk"));
    }
    let text: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .collect();
    assert_eq!(text, answer_text("az-east/gpt4o-ptu", 8));
    for chunk in &chunks {
        assert!(
            !chunk.choices.is_empty(),
            "a choices-less chunk reached the client"
        );
        assert_eq!(chunk.model, "chat");
        assert_eq!(chunk.id, chunks[0].id, "one id for the whole stream");
        assert_ne!(chunk.created, 0);
    }

    println!("a streamed tool call arrives as OpenAI tool-call deltas");
    let tools = json!({"model": "chat", "stream": true, "tools": weather_tool(),
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}]});
    let events = post_stream(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &tools)
        .await
        .events();
    let chunks: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"));
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));

    println!("raw: the prompt filter results ride on the first real chunk");
    let reply = post_stream(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &body).await;
    let events = reply.events();
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert!(!first["choices"].as_array().unwrap().is_empty(), "{first}");
    assert_eq!(first["prompt_filter_results"][0]["prompt_index"], 0);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn content_filter_is_a_400_that_is_not_retried_and_filtered_completions_say_so() {
    let azure = Azure::start().await;
    let proxy = Proxy::start(&azure.routes()).await;
    let url = proxy.url("/chat/completions");

    println!("a prompt Azure's filter refuses: 400 content_filter, one attempt, no failover");
    let reply = post_json(
        &url,
        Some(ALPHA_KEY),
        &ask("chat", &format!("bad {FILTER_PROMPT}")),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let error = reply.error();
    assert_eq!(error["code"], "content_filter");
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], "prompt");
    assert_eq!(reply.header("x-switchyard-attempts"), Some("1"));
    assert_eq!(azure.west.requests()["gpt4o-paygo"], 0, "not failed over");

    println!("a completion filtered mid-way keeps finish_reason content_filter");
    let text = format!("tell me {FILTER_COMPLETION}");
    let reply = post_json(&url, Some(ALPHA_KEY), &ask("chat", &text)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["choices"][0]["finish_reason"],
        "content_filter"
    );
    let mut body = ask("chat", &text);
    body["stream"] = json!(true);
    let events = post_stream(&url, Some(ALPHA_KEY), &body).await.events();
    let finish: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| c["choices"][0].get("finish_reason").cloned())
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![json!("content_filter")], "{events:?}");
}

#[tokio::test]
async fn a_wrong_api_key_is_an_upstream_auth_failure_that_names_no_key() {
    let azure = Azure::start().await;
    let proxy = Proxy::start(&azure.routes()).await;
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &ask("bad", "hi"),
    )
    .await;
    println!("{} {}", reply.status, reply.body);
    assert_eq!(reply.status, 502);
    assert_eq!(reply.error()["code"], "upstream_auth_failed");
    assert!(!reply.body.contains(WRONG_KEY));
    assert_eq!(azure.east.auth_failures(), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_ms_fails_over_and_the_cooldown_is_honoured() {
    let azure = Azure::start().await;
    let proxy = Proxy::start(&azure.routes()).await;
    let url = proxy.url("/chat/completions");

    println!("the PTU deployment answers 429 with retry-after-ms 4000: spill to pay-as-you-go");
    azure.east.push_faults(
        "gpt4o-ptu",
        [Fault::RateLimit {
            retry_after_ms: 4000,
        }],
    );
    let reply = post_json(&url, Some(ALPHA_KEY), &ask("chat", "hi")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("az-west"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("2"));

    println!("while it cools down, requests go straight to az-west");
    let reply = post_json(&url, Some(ALPHA_KEY), &ask("chat", "hi")).await;
    assert_eq!(reply.header("x-switchyard-provider"), Some("az-west"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("1"));
    assert_eq!(azure.east.requests()["gpt4o-ptu"], 1);
    let ptu = routes_target(&proxy, "chat", "az-east/gpt4o-ptu").await;
    let left = ptu["usable_again_in_ms"].as_u64().expect("cooling down");
    assert!(left > 2000 && left <= 4000, "{left}");

    println!("a deployment's own quota (2 RPM) runs out: its 429 fails over too");
    for expected in ["az-east", "az-east", "az-west"] {
        let reply = post_json(&url, Some(ALPHA_KEY), &ask("tiny", "hi")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("x-switchyard-provider"), Some(expected));
    }
    let tiny = routes_target(&proxy, "tiny", "az-east/gpt4o-tiny").await;
    println!("{tiny}");
    assert_eq!(tiny["rate_limits"]["remaining_requests"], 0);
    let headroom = tiny["headroom"].as_f64().expect("headroom");
    assert!(
        headroom < 0.05,
        "exhausted quota, barely refilled: {headroom}"
    );
}

#[tokio::test]
async fn entra_tokens_come_from_the_token_endpoint_and_are_refreshed_in_the_background() {
    let sim = AzureSim::start(AzureSimConfig {
        name: "az-entra".into(),
        entra_client_secret: Some(ENTRA_SECRET.into()),
        // Short-lived tokens: the refresher renews them half way, every 2 s.
        token_lifetime: Duration::from_secs(4),
        deployments: vec![AzureDeployment::new("gpt4o", "gpt-4o-2024-08-06")],
        ..AzureSimConfig::default()
    })
    .await
    .unwrap();
    let endpoint = sim.endpoint();
    let providers = format!(
        r#"  az-entra:
    kind: azure
    endpoint: "{endpoint}"
    api_version: 2024-10-21
    auth: entra
    entra: {{ credential: client_secret, tenant_id: contoso, client_id: app-1, client_secret: {ENTRA_SECRET}, authority_host: "{endpoint}" }}
"#
    );
    let models =
        "  chat: { targets: [ { provider: az-entra, deployment: gpt4o, price: free } ] }\n";
    let proxy = Proxy::start(&policy("", &providers, models, "[chat]")).await;
    let url = proxy.url("/chat/completions");

    println!("the first token arrives in the background right after start");
    let mut reply = post_json(&url, Some(ALPHA_KEY), &ask("chat", "hi")).await;
    for _ in 0..20 {
        if reply.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        reply = post_json(&url, Some(ALPHA_KEY), &ask("chat", "hi")).await;
    }
    assert_eq!(reply.status, 200, "{}", reply.body);
    let bearer = sim
        .stats("gpt4o")
        .last_headers
        .into_iter()
        .find(|(k, _)| k == "authorization");
    assert!(bearer.is_some_and(|(_, v)| v.starts_with("Bearer entra-token-")));

    println!("tokens are renewed ahead of expiry; requests keep flowing without waiting");
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let reply = post_json(&url, Some(ALPHA_KEY), &ask("chat", "hi")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(started.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        sim.token_requests() >= 3,
        "{} token requests",
        sim.token_requests()
    );

    println!("a failing identity endpoint is counted; the current token still serves");
    sim.set_token_endpoint_failing(true);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let routes = get(&proxy.admin("/admin/routes"), None).await.json();
    let credential = &routes["credentials"][0];
    println!("{credential}");
    assert_eq!(credential["provider"], "az-entra");
    assert!(credential["last_error"]
        .as_str()
        .unwrap()
        .contains("AADSTS90033"));
    assert!(
        !routes.to_string().contains("entra-token-"),
        "a token in /admin/routes"
    );
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains("switchyard_credential_refresh_failures_total{provider=\"az-entra\"}"),
        "{metrics}"
    );
    assert!(
        !proxy.log().contains(ENTRA_SECRET),
        "the client secret leaked into the log"
    );
}
