//! Entra credential paths of `auth: entra` Azure providers beyond the client secret
//! (`azure.rs`), through the real binary against the Azure simulator's fake identity
//! endpoints: workload identity (a federated token file exchanged at the fake authority),
//! managed identity through the App Service / Container Apps endpoint (`IDENTITY_ENDPOINT` +
//! `IDENTITY_HEADER`) with a failing endpoint named by `/readyz`, and the VM IMDS endpoint
//! (azure_identity calls the fixed `169.254.169.254`, reached here through an HTTP proxy),
//! and the Azure CLI credential (a stand-in `az` on `PATH`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use loadtest::{AzureDeployment, AzureSim, AzureSimConfig};
use serde_json::{json, Value};
use switchyard_e2e::{get, policy, post_json, Proxy, ALPHA_KEY};

async fn azure(name: &str, config: AzureSimConfig) -> AzureSim {
    AzureSim::start(AzureSimConfig {
        name: name.into(),
        deployments: vec![AzureDeployment::new("gpt4o", "gpt-4o-2024-08-06")],
        ..config
    })
    .await
    .unwrap()
}

/// Provider `az` with `entra:` as given, and model `chat` on it.
fn routes(sim: &AzureSim, entra: &str) -> String {
    let providers = format!(
        "  az:\n    kind: azure\n    endpoint: \"{}\"\n    api_version: 2024-10-21\n    auth: entra\n    entra: {entra}\n",
        sim.endpoint()
    );
    let models = "  chat: { targets: [ { provider: az, deployment: gpt4o, price: free } ] }\n";
    policy("", &providers, models, "[chat]")
}

fn ask() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
}

/// Polls until a request succeeds; returns the bearer the deployment saw.
async fn first_bearer(proxy: &Proxy, sim: &AzureSim) -> String {
    let url = proxy.url("/chat/completions");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = post_json(&url, Some(ALPHA_KEY), &ask()).await;
        if reply.status == 200 {
            break;
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
    sim.stats("gpt4o")
        .last_headers
        .into_iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v)
        .expect("an authorization header")
}

#[tokio::test]
async fn workload_identity_exchanges_the_federated_token_file() {
    const FEDERATED: &str = "eyJhbGciOiJSUzI1NiJ9.federated-sa-token.sig";
    let sim = azure(
        "az-wi",
        AzureSimConfig {
            federated_token: Some(FEDERATED.into()),
            ..AzureSimConfig::default()
        },
    )
    .await;
    let dir = switchyard_e2e::scratch_dir("switchyard-wi");
    let token_file = dir.join("azure-identity-token");
    std::fs::write(&token_file, FEDERATED).unwrap();
    println!("AKS workload identity: the token file is the client assertion at the authority");
    let entra = format!(
        "{{ credential: workload_identity, tenant_id: contoso, client_id: app-wi, federated_token_file: \"{}\", authority_host: \"{}\" }}",
        token_file.display(),
        sim.endpoint()
    );
    let proxy = Proxy::start_with_env(&routes(&sim, &entra), &[]).await;
    let bearer = first_bearer(&proxy, &sim).await;
    assert!(bearer.starts_with("Bearer entra-token-"), "{bearer}");
    assert!(
        !proxy.log().contains(FEDERATED),
        "the federated token leaked"
    );

    println!("a token file the authority does not accept: no token, a clear 5xx, the reason in /admin/routes");
    std::fs::write(&token_file, "not-the-federated-token").unwrap();
    let wrong = Proxy::start_with_env(&routes(&sim, &entra), &[]).await;
    let reply = post_json(&wrong.url("/chat/completions"), Some(ALPHA_KEY), &ask()).await;
    assert!(reply.status >= 500, "{} {}", reply.status, reply.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let routes = get(&wrong.admin("/admin/routes"), None).await.json();
        if let Some(error) = routes["credentials"][0]["last_error"].as_str() {
            assert!(error.contains("AADSTS7000215"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "no refresh error reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn app_service_managed_identity_and_its_failure_on_readyz() {
    const IDENTITY_HEADER: &str = "app-service-identity-header-9d1";
    let sim = azure(
        "az-mi",
        AzureSimConfig {
            identity_header: Some(IDENTITY_HEADER.into()),
            token_lifetime: Duration::from_secs(4),
            ..AzureSimConfig::default()
        },
    )
    .await;
    println!("App Service / Container Apps: IDENTITY_ENDPOINT + IDENTITY_HEADER");
    let endpoint = sim.identity_endpoint();
    let proxy = Proxy::start_with_env(
        &routes(
            &sim,
            "{ credential: managed_identity, client_id: mi-client-1 }",
        ),
        &[
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", IDENTITY_HEADER),
        ],
    )
    .await;
    let bearer = first_bearer(&proxy, &sim).await;
    assert!(
        bearer.starts_with("Bearer mi-app-service-token-"),
        "{bearer}"
    );

    println!("4-second tokens are renewed in the background");
    let before = sim.token_requests();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.token_requests() < before + 2 {
        assert!(Instant::now() < deadline, "no renewal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let renewed = first_bearer(&proxy, &sim).await;
    assert_ne!(renewed, bearer);

    println!("the endpoint fails: counted, and /readyz names the degraded provider");
    sim.set_token_endpoint_failing(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let readyz = get(&proxy.admin("/readyz"), None).await.json();
        let found = readyz["degraded_providers"]
            .as_array()
            .and_then(|all| all.iter().find(|d| d["provider"] == "az").cloned());
        if let Some(entry) = found {
            break entry;
        }
        assert!(Instant::now() < deadline, "never degraded: {readyz}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(entry["credential"], "managed_identity");
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    assert!(
        metrics.contains("switchyard_credential_refresh_failures_total{provider=\"az\"}"),
        "{metrics}"
    );
    assert!(
        !proxy.log().contains(IDENTITY_HEADER),
        "the identity header leaked"
    );
    assert!(!get(&proxy.admin("/readyz"), None)
        .await
        .body
        .contains("mi-app-service-token"));
}

#[tokio::test]
async fn vm_imds_managed_identity_through_an_http_proxy() {
    let sim = azure("az-imds", AzureSimConfig::default()).await;
    println!("azure_identity asks http://169.254.169.254; HTTP_PROXY routes that to the simulator");
    let proxy_url = sim.endpoint();
    let proxy = Proxy::start_with_env(
        &routes(&sim, "{ credential: managed_identity }"),
        &[
            ("HTTP_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
            ("NO_PROXY", "127.0.0.1,localhost"),
            ("no_proxy", "127.0.0.1,localhost"),
        ],
    )
    .await;
    let bearer = first_bearer(&proxy, &sim).await;
    assert!(bearer.starts_with("Bearer mi-imds-token-"), "{bearer}");
}

#[tokio::test]
async fn azure_cli_credential_runs_az_from_the_path() {
    let sim = azure("az-cli", AzureSimConfig::default()).await;
    let dir = switchyard_e2e::scratch_dir("switchyard-az-cli");
    let args_file = dir.join("args");
    println!(
        "a stand-in `az` on PATH answers `az account get-access-token` as Azure CLI 2.54+ does"
    );
    let script = format!(
        "#!/bin/sh\necho \"$@\" > '{}'\nnow=$(date +%s)\n\
         printf '{{\"accessToken\":\"cli-token-%s\",\"expiresOn\":\"2099-01-01 00:00:00.000000\",\"expires_on\":%s,\"subscription\":\"sub\",\"tenant\":\"contoso\",\"tokenType\":\"Bearer\"}}' \"$now\" \"$((now + 3600))\"\n",
        args_file.display()
    );
    let az = dir.join("az");
    std::fs::write(&az, script).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let proxy = Proxy::start_with_env(
        &routes(&sim, "{ credential: azure_cli }"),
        &[("PATH", &path)],
    )
    .await;
    let bearer = first_bearer(&proxy, &sim).await;
    assert!(bearer.starts_with("Bearer cli-token-"), "{bearer}");
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(
        args.contains("account get-access-token")
            && args.contains("https://cognitiveservices.azure.com/.default"),
        "{args}"
    );
}
