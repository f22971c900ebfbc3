//! The client listener's transport (issue 15, item 8), through the real binary: TLS with a
//! certificate generated here, HTTP/2 by ALPN (and HTTP/1.1 for clients that only speak it),
//! the certificate reloaded when its files change, and an admin listener off loopback
//! without a token refused at `--check` and at start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use loadtest::proxy_process::switchyard_binary;
use serde_json::json;
use switchyard_e2e::tls::SelfSigned;
use switchyard_e2e::{
    one_sim_routes, policy, post_json, start_sim, Proxy, ALPHA_KEY, UPSTREAM_KEY_A,
};

fn temp_dir(name: &str) -> std::path::PathBuf {
    switchyard_e2e::scratch_dir(&format!("sy-tls-{name}"))
}

/// Writes `certificate` into `dir`: the `server:` line serving TLS with it.
fn serve_tls(certificate: &SelfSigned, dir: &std::path::Path) -> String {
    let (cert, key) = certificate.write_to(dir);
    format!(
        "tls: {{ cert_file: \"{}\", key_file: \"{}\" }}",
        cert.display(),
        key.display()
    )
}

fn https_url(proxy: &Proxy, path: &str) -> String {
    format!("https://{}/v1{path}", proxy.addr())
}

#[tokio::test]
async fn tls_serves_http2_and_http1_and_reloads_a_renewed_certificate() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let dir = temp_dir("serve");
    let first = SelfSigned::generate();
    let proxy = Proxy::start(&one_sim_routes(&sim.base_url(), &serve_tls(&first, &dir))).await;

    let chat = json!({"model": "chat", "messages": [{"role": "user", "content": "hello"}]});
    let response = first
        .client()
        .post(https_url(&proxy, "/chat/completions"))
        .bearer_auth(ALPHA_KEY)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN should pick h2"
    );
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion", "{answer}");

    let response = first
        .http1_client()
        .get(https_url(&proxy, "/models"))
        .bearer_auth(ALPHA_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);

    // Plain HTTP on the TLS port is not served.
    let plain = switchyard_e2e::http_client()
        .get(format!("http://{}/v1/models", proxy.addr()))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // A renewed certificate in the same files is served to new connections, no restart.
    let renewed = SelfSigned::generate();
    renewed.write_to(&dir);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        let attempt = renewed
            .client()
            .get(https_url(&proxy, "/models"))
            .bearer_auth(ALPHA_KEY)
            .send()
            .await;
        if attempt.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was never served:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let old = first
        .client()
        .get(https_url(&proxy, "/models"))
        .send()
        .await;
    assert!(
        old.is_err(),
        "a client trusting only the old certificate still connected"
    );
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_open_admin_listener_without_a_token_is_refused_at_check_and_at_start() {
    let dir = temp_dir("admin");
    let config = dir.join("routes.yaml");
    std::fs::write(
        &config,
        "version: 1\nserver:\n  listen: 127.0.0.1:0\n  admin_listen: 0.0.0.0:0\n",
    )
    .unwrap();
    let binary = switchyard_binary().unwrap();
    for check in [true, false] {
        let mut command = std::process::Command::new(&binary);
        command.arg("--config").arg(&config);
        if check {
            command.arg("--check");
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the proxy started (check: {check}) with an open admin port and no token");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!status.success(), "check: {check}");
        assert!(
            stderr.contains("server.admin_listen 0.0.0.0:0 is not a loopback address and no server.admin_token is set"),
            "check: {check}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An `https://` upstream (here a second proxy serving TLS, HTTP/2 and HTTP/1.1 by ALPN, in
/// front of the simulator) is verified against the platform's trusted roots: reached when
/// its certificate is among them (`SSL_CERT_FILE`, which the platform verifier reads on
/// Linux), refused as a connection failure when it is not.
#[tokio::test]
async fn an_https_upstream_is_reached_only_when_its_certificate_is_trusted() {
    let sim = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let dir = temp_dir("upstream");
    let certificate = SelfSigned::generate();
    let tls = serve_tls(&certificate, &dir);
    let upstream = Proxy::start(&one_sim_routes(&sim.base_url(), &tls)).await;
    let cert = dir.join("cert.pem");
    let routes = policy(
        "",
        &format!(
            "  tls-up: {{ kind: openai, base_url: \"https://{}/v1\", api_key: {ALPHA_KEY} }}\n",
            upstream.addr()
        ),
        "  chat: { targets: [ { provider: tls-up, model: chat, price: { input: 1.0, output: 2.0 } } ] }\n",
        "[chat]",
    );
    let chat = json!({"model": "chat", "messages": [{"role": "user", "content": "hello"}]});

    let cert_file = cert.display().to_string();
    let trusting = Proxy::start_with_env(&routes, &[("SSL_CERT_FILE", &cert_file)]).await;
    let reply = post_json(&trusting.url("/chat/completions"), Some(ALPHA_KEY), &chat).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["object"], "chat.completion");
    assert_eq!(sim.stats().chat_requests, 1);

    println!("the same upstream, its certificate not trusted: refused, nothing sent");
    let wary = Proxy::start(&routes).await;
    let reply = post_json(&wary.url("/chat/completions"), Some(ALPHA_KEY), &chat).await;
    assert!(reply.status >= 500, "{} {}", reply.status, reply.body);
    assert_eq!(sim.stats().chat_requests, 1);
    // Reported once, by the proxy, with the cause.
    let log = wary.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("UnknownIssuer"))
        .collect();
    println!("{refusals:#?}");
    assert_eq!(refusals.len(), 1, "{log}");
    assert!(refusals[0].contains("WARN switchyard::handler"), "{log}");
    assert!(
        refusals[0].contains("could not connect to the upstream"),
        "{log}"
    );
}
