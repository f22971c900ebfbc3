//! Bedrock credentials from the AWS default chain (here: the environment), resolved by the
//! proxy's background refresher rather than given in routes.yaml. One test per process,
//! because it sets environment variables the spawned proxy inherits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loadtest::{BedrockSim, BedrockSimConfig};
use serde_json::json;
use switchyard_e2e::{policy, post_json, Proxy, ALPHA_KEY};

const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";

#[tokio::test]
async fn default_chain_credentials_are_resolved_in_the_background() {
    let c = BedrockSimConfig::new("bedrock-env");
    println!("the proxy inherits AWS_* variables; the provider names no keys (default chain)");
    // This file holds one test, and the variables are set before any other thread reads
    // the environment (setting them while another thread reads it is not safe).
    std::env::set_var("AWS_ACCESS_KEY_ID", &c.access_key_id);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &c.secret_access_key);
    std::env::set_var("AWS_SESSION_TOKEN", "env-session-token");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let sim = BedrockSim::start(c.clone()).await.unwrap();
    let providers = format!(
        "  aws-env: {{ kind: bedrock, region: {}, endpoint: \"{}\" }}\n",
        c.region,
        sim.endpoint()
    );
    let models =
        format!("  claude: {{ targets: [ {{ provider: aws-env, model: \"{HAIKU}\" }} ] }}\n");
    let proxy = Proxy::start(&policy("", &providers, &models, "[claude]")).await;
    let url = proxy.url("/chat/completions");
    let body = json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]});
    let mut last = None;
    for _ in 0..50 {
        let reply = post_json(&url, Some(ALPHA_KEY), &body).await;
        if reply.status == 200 {
            assert_eq!(
                reply.json()["choices"][0]["message"]["content"],
                "bedrock-env says: hi"
            );
            assert_eq!(sim.stats().signature_failures, 0);
            return;
        }
        last = Some(reply.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the default chain's credentials never became usable: {last:?}\n{}",
        proxy.log()
    );
}
