//! Every AWS credential path of a Bedrock provider, through the real binary against the
//! Bedrock simulator and the fake identity endpoints (`loadtest::identity_sim`): Bedrock API
//! keys (`api_key:` and `AWS_BEARER_TOKEN_BEDROCK`), `assume_role` chained on static keys
//! (external id, session name), web identity (IRSA token file), the container credentials
//! endpoint (ECS / EKS Pod Identity); and the background refresh: short-lived credentials
//! renewed while a long stream is in flight, a failing STS (last good credentials used until
//! they expire, failures counted, `/readyz` naming the provider), and recovery.
//!
//! Each proxy gets its environment from the test (`Proxy::start_with_env`), so the tests
//! share one process. Waits are bounded polls; lifetimes are a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use loadtest::identity_sim::KnownKey;
use loadtest::{BedrockSim, BedrockSimConfig, IdentitySim, IdentitySimConfig, Keyring};
use serde_json::{json, Value};
use switchyard_e2e::{get, policy, post_json, post_stream, Proxy, ALPHA_KEY};

const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const ROLE: &str = "arn:aws:iam::123456789012:role/switchyard-bedrock";
const SOURCE_KEY: &str = "AKIASOURCEKEY0001";
const SOURCE_SECRET: &str = "source/secret/never-logged";
const EXTERNAL_ID: &str = "ext-id-never-logged-5f2";

/// A Bedrock simulator that believes in `keyring` (and `api_keys`).
async fn bedrock(name: &str, keyring: &Keyring, api_keys: &[&str]) -> BedrockSim {
    let config = BedrockSimConfig {
        keyring: keyring.clone(),
        api_keys: api_keys.iter().map(|k| (*k).to_owned()).collect(),
        ..BedrockSimConfig::new(name)
    };
    BedrockSim::start(config).await.unwrap()
}

/// Long-term source keys the fake account trusts to call `AssumeRole`.
fn trust_source_keys(keyring: &Keyring) {
    keyring.trust(
        SOURCE_KEY,
        KnownKey {
            secret_access_key: SOURCE_SECRET.to_owned(),
            session_token: None,
            expires: None,
        },
    );
}

/// One provider `aws` (the given credential lines) and model `claude` on it.
fn routes(sim: &BedrockSim, credential_lines: &str) -> String {
    let providers = format!(
        "  aws:\n    kind: bedrock\n    region: us-east-1\n    endpoint: \"{}\"\n{credential_lines}",
        sim.endpoint()
    );
    let models = format!("  claude: {{ targets: [ {{ provider: aws, model: \"{HAIKU}\" }} ] }}\n");
    policy("", &providers, &models, "[claude]")
}

fn ask(text: &str) -> Value {
    json!({"model": "claude", "messages": [{"role": "user", "content": text}]})
}

/// Polls until a chat request succeeds (credentials are resolved in the background).
async fn first_answer(proxy: &Proxy) -> Value {
    let url = proxy.url("/chat/completions");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = post_json(&url, Some(ALPHA_KEY), &ask("hi")).await;
        if reply.status == 200 {
            return reply.json();
        }
        assert!(
            Instant::now() < deadline,
            "no answer within 15 s: {} {}\n{}",
            reply.status,
            reply.body,
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 100 ms until it holds, failing after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_no_secret(proxy: &Proxy, secrets: &[&str]) {
    let log = proxy.log();
    for secret in secrets {
        assert!(!log.contains(secret), "`{secret}` leaked into the log");
    }
}

#[tokio::test]
async fn bedrock_api_keys_are_sent_as_bearer_tokens_without_a_signature() {
    let keyring = Keyring::default();
    let sim = bedrock(
        "bedrock-key",
        &keyring,
        &["ABSKconfigured-key-1", "ABSKenv-key-2"],
    )
    .await;
    let providers = format!(
        "  by-config: {{ kind: bedrock, region: us-east-1, endpoint: \"{0}\", api_key: \"${{BEDROCK_KEY}}\" }}\n  \
         by-env: {{ kind: bedrock, region: us-east-1, endpoint: \"{0}\" }}\n  \
         wrong: {{ kind: bedrock, region: us-east-1, endpoint: \"{0}\", api_key: ABSKnot-a-known-key }}\n",
        sim.endpoint()
    );
    let models = format!(
        "  a: {{ targets: [ {{ provider: by-config, model: \"{HAIKU}\" }} ] }}\n  \
         b: {{ targets: [ {{ provider: by-env, model: \"{HAIKU}\" }} ] }}\n  \
         c: {{ targets: [ {{ provider: wrong, model: \"{HAIKU}\" }} ] }}\n"
    );
    println!("api_key in routes.yaml for one provider; AWS_BEARER_TOKEN_BEDROCK for the default-chain one");
    let proxy = Proxy::start_with_env(
        &policy("", &providers, &models, "[a, b, c]"),
        &[
            ("BEDROCK_KEY", "ABSKconfigured-key-1"),
            ("AWS_BEARER_TOKEN_BEDROCK", "ABSKenv-key-2"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    )
    .await;
    let url = proxy.url("/chat/completions");
    for model in ["a", "b"] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let reply = post_json(&url, Some(ALPHA_KEY), &body).await;
        assert_eq!(reply.status, 200, "{model}: {}", reply.body);
        assert_eq!(
            reply.json()["choices"][0]["message"]["content"],
            "bedrock-key says: hi"
        );
    }
    assert_eq!(
        sim.stats().callers,
        vec!["bearer:ABSKconfigured-key-1", "bearer:ABSKenv-key-2"]
    );

    println!(
        "a key Bedrock does not know: the upstream's 403 is the client's 502, the key not echoed"
    );
    let body = json!({"model": "c", "messages": [{"role": "user", "content": "hi"}]});
    let reply = post_json(&url, Some(ALPHA_KEY), &body).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(
        !reply.body.contains("ABSKnot-a-known-key"),
        "{}",
        reply.body
    );
    assert_eq!(sim.stats().signature_failures, 1);

    let routes = get(&proxy.admin("/admin/routes"), None).await.body;
    for key in [
        "ABSKconfigured-key-1",
        "ABSKenv-key-2",
        "ABSKnot-a-known-key",
    ] {
        assert!(!routes.contains(key), "{key} in /admin/routes");
    }
    assert_no_secret(
        &proxy,
        &[
            "ABSKconfigured-key-1",
            "ABSKenv-key-2",
            "ABSKnot-a-known-key",
        ],
    );
}

#[tokio::test]
async fn assume_role_is_chained_on_static_keys_with_external_id_and_session_name() {
    let keyring = Keyring::default();
    trust_source_keys(&keyring);
    let identity = IdentitySim::start(IdentitySimConfig::new(
        keyring.clone(),
        Duration::from_secs(300),
    ))
    .await
    .unwrap();
    let sim = bedrock("bedrock-role", &keyring, &[]).await;
    let lines = format!(
        "    access_key_id: {SOURCE_KEY}\n    secret_access_key: \"{SOURCE_SECRET}\"\n    \
         assume_role: {{ role_arn: \"{ROLE}\", external_id: \"{EXTERNAL_ID}\", session_name: gateway-7 }}\n"
    );
    println!("static source keys → STS AssumeRole (at the fake STS) → Bedrock signed with the role's keys");
    let proxy = Proxy::start_with_env(
        &routes(&sim, &lines),
        &[("AWS_ENDPOINT_URL_STS", &identity.sts_endpoint())],
    )
    .await;
    let answer = first_answer(&proxy).await;
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "bedrock-role says: hi"
    );
    let grants = identity.stats().grants;
    assert!(!grants.is_empty());
    let grant = &grants[0];
    assert_eq!(grant.action, "AssumeRole");
    assert_eq!(grant.role_arn, ROLE);
    assert_eq!(grant.session_name, "gateway-7");
    assert_eq!(grant.external_id.as_deref(), Some(EXTERNAL_ID));
    assert_eq!(
        grant.caller.as_deref(),
        Some(SOURCE_KEY),
        "signed by the source keys"
    );
    let callers = sim.stats().callers;
    assert!(
        callers
            .iter()
            .all(|c| grants.iter().any(|g| &g.issued == c)),
        "Bedrock saw only the role's keys: {callers:?} vs {grants:?}"
    );
    assert!(!callers.iter().any(|c| c == SOURCE_KEY));
    assert_eq!(sim.stats().signature_failures, 0);
    assert_no_secret(&proxy, &[SOURCE_SECRET, EXTERNAL_ID]);
}

#[tokio::test]
async fn web_identity_token_file_is_exchanged_at_sts() {
    let keyring = Keyring::default();
    let identity = IdentitySim::start(IdentitySimConfig::new(
        keyring.clone(),
        Duration::from_secs(300),
    ))
    .await
    .unwrap();
    let sim = bedrock("bedrock-irsa", &keyring, &[]).await;
    let dir = switchyard_e2e::scratch_dir("switchyard-irsa");
    let token_file = dir.join("token");
    std::fs::write(&token_file, &identity.config().web_identity_token).unwrap();
    println!("IRSA: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, the provider names no keys");
    let token_path = token_file.display().to_string();
    let proxy = Proxy::start_with_env(
        &routes(&sim, ""),
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token_path),
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_ROLE_SESSION_NAME", "irsa-session"),
            ("AWS_ENDPOINT_URL_STS", &identity.sts_endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/aws/config"),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws/credentials",
            ),
        ],
    )
    .await;
    first_answer(&proxy).await;
    let grants = identity.stats().grants;
    let grant = grants.first().expect("a web identity grant");
    assert_eq!(grant.action, "AssumeRoleWithWebIdentity");
    assert_eq!(
        (grant.role_arn.as_str(), grant.session_name.as_str()),
        (ROLE, "irsa-session")
    );
    assert_eq!(sim.stats().callers.first(), Some(&grant.issued));
    assert_no_secret(&proxy, &[&identity.config().web_identity_token]);
}

#[tokio::test]
async fn container_credentials_endpoint_serves_the_default_chain() {
    let keyring = Keyring::default();
    let identity = IdentitySim::start(IdentitySimConfig::new(
        keyring.clone(),
        Duration::from_secs(300),
    ))
    .await
    .unwrap();
    let sim = bedrock("bedrock-ecs", &keyring, &[]).await;
    println!(
        "ECS / EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI with its authorization token"
    );
    let uri = identity.container_uri();
    let proxy = Proxy::start_with_env(
        &routes(&sim, ""),
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                &identity.config().container_token,
            ),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/aws/config"),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws/credentials",
            ),
        ],
    )
    .await;
    first_answer(&proxy).await;
    let issued = identity.stats().container_issued;
    assert!(!issued.is_empty());
    assert_eq!(sim.stats().callers.first(), Some(&issued[0]));
    assert_eq!(identity.stats().refused, 0);
    assert_no_secret(&proxy, &[&identity.config().container_token]);
}

/// A prompt whose answer streams in about 24 frames.
fn long_prompt() -> String {
    (1..=20)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn short_lived_role_credentials_are_refreshed_under_a_long_stream() {
    let keyring = Keyring::default();
    trust_source_keys(&keyring);
    println!("the fake STS issues 4-second credentials: the proxy renews them every ~2 s");
    let identity = IdentitySim::start(IdentitySimConfig::new(
        keyring.clone(),
        Duration::from_secs(4),
    ))
    .await
    .unwrap();
    let sim = BedrockSim::start(BedrockSimConfig {
        keyring: keyring.clone(),
        latency: Duration::from_millis(250),
        ..BedrockSimConfig::new("bedrock-long")
    })
    .await
    .unwrap();
    let lines = format!(
        "    access_key_id: {SOURCE_KEY}\n    secret_access_key: \"{SOURCE_SECRET}\"\n    \
         assume_role: {{ role_arn: \"{ROLE}\" }}\n"
    );
    let proxy = Proxy::start_with_env(
        &routes(&sim, &lines),
        &[("AWS_ENDPOINT_URL_STS", &identity.sts_endpoint())],
    )
    .await;
    first_answer(&proxy).await;

    println!("a ~6 s stream, longer than the credentials it was signed with live");
    let started = Instant::now();
    let prompt = long_prompt();
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &json!({"model": "claude", "stream": true,
                "messages": [{"role": "user", "content": prompt}]}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.cut.is_none(), "the stream was cut: {:?}", reply.cut);
    let events = reply.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, format!("bedrock-long says: {prompt}"));
    assert!(
        took > Duration::from_secs(4),
        "the stream took only {took:?}"
    );
    let stream_signer = sim.stats().callers.last().cloned().unwrap();

    println!("the next request signs with credentials issued after the stream began");
    first_answer(&proxy).await;
    let callers = sim.stats().callers;
    let next_signer = callers.last().unwrap();
    assert_ne!(next_signer, &stream_signer, "{callers:?}");
    let grants = identity.stats().grants;
    assert!(grants.len() >= 3, "refreshed in the background: {grants:?}");
    assert!(grants.iter().any(|g| &g.issued == next_signer));
    assert_eq!(sim.stats().signature_failures, 0);
}

fn failures_of(metrics: &str, provider: &str) -> u64 {
    let prefix =
        format!("switchyard_credential_refresh_failures_total{{provider=\"{provider}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn degraded(readyz: &Value, provider: &str) -> Option<Value> {
    readyz["degraded_providers"]
        .as_array()?
        .iter()
        .find(|d| d["provider"] == provider)
        .cloned()
}

#[tokio::test]
async fn a_failing_sts_keeps_the_last_good_credentials_until_they_expire() {
    let keyring = Keyring::default();
    trust_source_keys(&keyring);
    println!("16-second credentials: the refresh is due after 8 s");
    let identity = IdentitySim::start(IdentitySimConfig::new(
        keyring.clone(),
        Duration::from_secs(16),
    ))
    .await
    .unwrap();
    let sim = bedrock("bedrock-fail", &keyring, &[]).await;
    let lines = format!(
        "    access_key_id: {SOURCE_KEY}\n    secret_access_key: \"{SOURCE_SECRET}\"\n    \
         assume_role: {{ role_arn: \"{ROLE}\" }}\n"
    );
    let proxy = Proxy::start_with_env(
        &routes(&sim, &lines),
        &[("AWS_ENDPOINT_URL_STS", &identity.sts_endpoint())],
    )
    .await;
    first_answer(&proxy).await;
    let good = sim.stats().callers[0].clone();
    let readyz = get(&proxy.admin("/readyz"), None).await.json();
    assert!(degraded(&readyz, "aws").is_none(), "{readyz}");

    println!("STS starts failing; the refresh fails and is counted");
    identity.set_failing(true);
    let metrics_url = proxy.admin("/metrics");
    eventually(
        "a counted refresh failure",
        Duration::from_secs(20),
        || async { failures_of(&get(&metrics_url, None).await.body, "aws") >= 1 },
    )
    .await;

    println!("the last good credentials still sign; /readyz names the degraded provider");
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &ask("still"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(sim.stats().callers.last(), Some(&good));
    let readyz = get(&proxy.admin("/readyz"), None).await;
    assert_eq!(
        readyz.status, 200,
        "one degraded provider does not make the proxy unready"
    );
    let entry = degraded(&readyz.json(), "aws").expect("aws is degraded");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("last good credentials still in use"),
        "{entry}"
    );

    println!("once they expire, requests fail fast with a 5xx instead of a wrong signature");
    let url = proxy.url("/chat/completions");
    eventually(
        "the credentials expire",
        Duration::from_secs(20),
        || async { post_json(&url, Some(ALPHA_KEY), &ask("late")).await.status != 200 },
    )
    .await;
    let entry = degraded(&get(&proxy.admin("/readyz"), None).await.json(), "aws").unwrap();
    assert!(entry["valid_for_s"].is_null(), "{entry}");

    println!("STS recovers: new credentials, requests succeed, the provider is no longer degraded");
    identity.set_failing(false);
    eventually("recovery", Duration::from_secs(70), || async {
        post_json(&url, Some(ALPHA_KEY), &ask("back")).await.status == 200
    })
    .await;
    assert_ne!(sim.stats().callers.last(), Some(&good));
    let readyz = get(&proxy.admin("/readyz"), None).await.json();
    assert!(degraded(&readyz, "aws").is_none(), "{readyz}");
    assert_no_secret(&proxy, &[SOURCE_SECRET]);
}

#[tokio::test]
async fn a_shared_profile_role_chain_assumes_its_role_at_sts() {
    let keyring = Keyring::default();
    trust_source_keys(&keyring);
    let identity = IdentitySim::start(IdentitySimConfig::new(
        keyring.clone(),
        Duration::from_secs(300),
    ))
    .await
    .unwrap();
    let sim = bedrock("bedrock-profile", &keyring, &[]).await;
    let dir = switchyard_e2e::scratch_dir("switchyard-profile");
    let config_file = dir.join("config");
    println!("~/.aws/config: [default] assumes a role with [profile source]'s keys");
    std::fs::write(
        &config_file,
        format!(
            "[profile source]\naws_access_key_id = {SOURCE_KEY}\naws_secret_access_key = {SOURCE_SECRET}\n\n\
             [default]\nrole_arn = {ROLE}\nsource_profile = source\nexternal_id = {EXTERNAL_ID}\nrole_session_name = profile-session\n"
        ),
    )
    .unwrap();
    let config_path = config_file.display().to_string();
    let proxy = Proxy::start_with_env(
        &routes(&sim, ""),
        &[
            ("AWS_CONFIG_FILE", &config_path),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws/credentials",
            ),
            ("AWS_ENDPOINT_URL_STS", &identity.sts_endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    )
    .await;
    first_answer(&proxy).await;
    let grants = identity.stats().grants;
    let grant = grants.first().expect("a grant");
    assert_eq!(grant.action, "AssumeRole");
    assert_eq!(grant.caller.as_deref(), Some(SOURCE_KEY));
    assert_eq!(grant.external_id.as_deref(), Some(EXTERNAL_ID));
    assert_eq!(grant.session_name, "profile-session");
    assert_eq!(sim.stats().callers.first(), Some(&grant.issued));
    assert_no_secret(&proxy, &[SOURCE_SECRET, EXTERNAL_ID]);
}

#[tokio::test]
async fn ec2_instance_role_credentials_come_from_imds() {
    let keyring = Keyring::default();
    let identity = IdentitySim::start(IdentitySimConfig::new(
        keyring.clone(),
        Duration::from_secs(300),
    ))
    .await
    .unwrap();
    let sim = bedrock("bedrock-ec2", &keyring, &[]).await;
    println!("EC2 instance role: IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT");
    let proxy = Proxy::start_with_env(
        &routes(&sim, ""),
        &[
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                &identity.imds_endpoint(),
            ),
            ("AWS_CONFIG_FILE", "/nonexistent/aws/config"),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws/credentials",
            ),
        ],
    )
    .await;
    first_answer(&proxy).await;
    let issued = identity.stats().imds_issued;
    assert!(!issued.is_empty());
    assert_eq!(sim.stats().callers.first(), Some(&issued[0]));
}
