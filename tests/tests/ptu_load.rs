//! Issue 12, part 2, under load, through the real binary: concurrent requests fill the
//! provisioned (PTU) deployment up to its quota, which its rate-limit headers report, and the
//! rest spill to pay-as-you-go of the same cloud, never to the other cloud and never as a
//! client-visible error; the PTU's 429s (capacity reached, expected) count neither into its
//! error rate nor towards its circuit (docs/routing.md#provisioned-capacity-first-in-every-strategy).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use futures_util::{stream, StreamExt};
use loadtest::{AzureDeployment, AzureSim, AzureSimConfig};
use serde_json::json;
use switchyard_e2e::{get, policy, post_json, start_sim, Proxy, ALPHA_KEY, UPSTREAM_KEY_A};

const EAST_KEY: &str = "azure-east-key-load";
const WEST_KEY: &str = "azure-west-key-load";
/// The PTU's requests per minute: the simulator's quota and its `x-ratelimit-*` headers.
const PTU_RPM: u64 = 12;
const REQUESTS: usize = 48;
const CONCURRENCY: usize = 8;

#[tokio::test]
async fn under_concurrent_load_the_ptu_is_filled_first_and_the_rest_spills_to_pay_as_you_go() {
    let azure = |name: &str, key: &str, deployment: AzureDeployment| {
        AzureSim::start(AzureSimConfig {
            name: name.into(),
            api_key: Some(key.into()),
            deployments: vec![deployment],
            ..AzureSimConfig::default()
        })
    };
    let east = azure(
        "az-east",
        EAST_KEY,
        AzureDeployment::new("ptu", "gpt-4o-2024-08-06").with_rpm(PTU_RPM),
    )
    .await
    .unwrap();
    let west = azure(
        "az-west",
        WEST_KEY,
        AzureDeployment::new("paygo", "gpt-4o-2024-08-06"),
    )
    .await
    .unwrap();
    let other = start_sim("other-cloud", UPSTREAM_KEY_A).await;
    let providers = format!(
        "  az-east: {{ kind: azure, endpoint: \"{}\", api_key: {EAST_KEY}, api_version: 2024-10-21 }}\n  az-west: {{ kind: azure, endpoint: \"{}\", api_key: {WEST_KEY}, api_version: 2024-10-21 }}\n  other: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n",
        east.endpoint(),
        west.endpoint(),
        other.base_url()
    );
    // `latency` with the other cloud cheapest: only the tiers put the PTU first.
    let models = "  chat:\n    strategy: latency\n    targets:\n      - { provider: other, model: up-a, price: { input: 0.1, output: 0.2 } }\n      - { provider: az-west, deployment: paygo, tier: standard, price: { input: 1, output: 2 } }\n      - { provider: az-east, deployment: ptu, tier: provisioned, price: { input: 5, output: 10 } }\n";
    let proxy = Proxy::start(&policy("", &providers, models, "[chat]")).await;

    println!("{REQUESTS} requests, {CONCURRENCY} at a time; the PTU takes {PTU_RPM} a minute");
    let url = proxy.url("/chat/completions");
    let body = json!({"model": "chat", "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}]});
    let replies: Vec<_> = stream::iter(0..REQUESTS)
        .map(|_| post_json(&url, Some(ALPHA_KEY), &body))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut served: HashMap<String, usize> = HashMap::new();
    for reply in &replies {
        assert_eq!(reply.status, 200, "a client saw an error: {}", reply.body);
        let provider = reply.header("x-switchyard-provider").unwrap().to_owned();
        *served.entry(provider).or_default() += 1;
    }
    println!("served: {served:?}; the PTU saw {:?}", east.requests());
    let ptu = served.get("az-east").copied().unwrap_or(0);
    let paygo = served.get("az-west").copied().unwrap_or(0);
    assert!(
        (PTU_RPM as usize / 2..=PTU_RPM as usize).contains(&ptu),
        "the PTU is filled first, up to its quota: {served:?}"
    );
    assert_eq!(ptu + paygo, REQUESTS, "the rest spilled to pay-as-you-go");
    assert_eq!(
        other.stats().chat_requests,
        0,
        "the other cloud was never needed"
    );

    let routes = get(&proxy.admin("/admin/routes"), None).await.json();
    let ptu_view = routes["models"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "az-east/ptu")
        .cloned()
        .unwrap();
    println!("{ptu_view}");
    assert_eq!(
        ptu_view["circuit"], "closed",
        "PTU 429s do not open its circuit"
    );
    assert_eq!(ptu_view["error_rate"], 0.0);
    assert_eq!(ptu_view["capacity_error_rate"], 0.0);
    assert!(ptu_view["decision"].is_string(), "{ptu_view}");
}
