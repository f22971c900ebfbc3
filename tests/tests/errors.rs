//! Requests the proxy must refuse, each with the OpenAI error shape and the documented
//! status, `code` and `type`; upstream client errors passed back without retrying; and
//! no secret in the proxy's log after a run full of failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_openai::error::OpenAIError;
use async_openai::types::chat::CreateChatCompletionRequest;
use loadtest::Fault;
use serde_json::{json, Value};
use switchyard_e2e::{
    get, post, post_json, post_stream, within, Proxy, Reply, Sims, ALPHA_KEY, UPSTREAM_KEY_A,
    UPSTREAM_KEY_B,
};

/// A key nobody was given (and a secret all the same: it could be a typo of a real one).
const WRONG_KEY: &str = "sk-wrong-e2e-5d1f0a9c";

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// One refusal the proxy must make.
struct Case {
    what: &'static str,
    path: &'static str,
    key: Option<&'static str>,
    body: String,
    status: u16,
    /// `error.code`; `None` when the contract does not name one.
    code: Option<&'static str>,
    kind: Option<&'static str>,
    param: Option<&'static str>,
}

/// Checks one reply against its case; returns what is wrong with it.
fn mismatches(case: &Case, reply: &Reply) -> Vec<String> {
    let mut wrong = Vec::new();
    if reply.status != case.status {
        wrong.push(format!("status {} (want {})", reply.status, case.status));
    }
    let error = match switchyard_e2e::error_of(&reply.body) {
        Ok(error) => error,
        Err(why) => {
            wrong.push(why);
            return wrong;
        }
    };
    if !error["message"].is_string() {
        wrong.push(format!("error.message is not a string: {error}"));
    }
    let expect = |field: &str, want: Option<&str>, wrong: &mut Vec<String>| {
        if let Some(want) = want {
            if error[field] != want {
                wrong.push(format!("error.{field} = {} (want {want:?})", error[field]));
            }
        }
    };
    expect("code", case.code, &mut wrong);
    expect("type", case.kind, &mut wrong);
    expect("param", case.param, &mut wrong);
    wrong
}

fn cases() -> Vec<Case> {
    let chat = "/chat/completions";
    let ok = hello("chat").to_string();
    vec![
        Case {
            what: "no key",
            path: chat,
            key: None,
            body: ok.clone(),
            status: 401,
            code: Some("invalid_api_key"),
            kind: Some("authentication_error"),
            param: None,
        },
        Case {
            what: "unknown key",
            path: chat,
            key: Some(WRONG_KEY),
            body: ok.clone(),
            status: 401,
            code: Some("invalid_api_key"),
            kind: Some("authentication_error"),
            param: None,
        },
        Case {
            what: "unknown model",
            path: chat,
            key: Some(ALPHA_KEY),
            body: hello("no-such-model").to_string(),
            status: 404,
            code: Some("model_not_found"),
            kind: Some("invalid_request_error"),
            param: None,
        },
        Case {
            what: "model outside the allow-list",
            path: chat,
            key: Some(ALPHA_KEY),
            body: hello("other").to_string(),
            status: 403,
            code: Some("model_not_allowed"),
            kind: Some("permission_error"),
            param: None,
        },
        Case {
            what: "malformed JSON",
            path: chat,
            key: Some(ALPHA_KEY),
            body: r#"{"model": "chat", "messages": ["#.to_owned(),
            status: 400,
            code: Some("invalid_request"),
            kind: Some("invalid_request_error"),
            param: None,
        },
        Case {
            what: "messages of the wrong type",
            path: chat,
            key: Some(ALPHA_KEY),
            body: json!({"model": "chat", "messages": "hi"}).to_string(),
            status: 400,
            code: Some("invalid_request"),
            kind: Some("invalid_request_error"),
            param: Some("messages"),
        },
        Case {
            what: "missing messages",
            path: chat,
            key: Some(ALPHA_KEY),
            body: json!({"model": "chat"}).to_string(),
            status: 400,
            code: Some("invalid_request"),
            kind: Some("invalid_request_error"),
            param: None,
        },
        Case {
            what: "unknown path",
            path: "/no/such/path",
            key: Some(ALPHA_KEY),
            body: ok,
            status: 404,
            code: None,
            kind: None,
            param: None,
        },
    ]
}

#[tokio::test]
async fn bad_requests_get_openai_errors_and_the_proxy_keeps_serving() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;

    let mut failures = Vec::new();
    for case in cases() {
        let reply = post(&proxy.url(case.path), case.key, case.body.clone(), &[]).await;
        println!("{}: {} {}", case.what, reply.status, reply.body.trim());
        let wrong = mismatches(&case, &reply);
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.what, wrong.join("; ")));
        }
        if reply.header("x-request-id").is_none_or(str::is_empty) {
            failures.push(format!(
                "{}: no x-request-id on an error response",
                case.what
            ));
        }
    }
    assert_eq!(
        sims.a.stats().requests + sims.b.stats().requests,
        0,
        "refusals never reach an upstream"
    );

    println!("after all that, a normal request is served");
    let reply = post_json(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &hello("chat"),
    )
    .await;
    if reply.status != 200 {
        failures.push(format!(
            "normal request afterwards: {} {}",
            reply.status, reply.body
        ));
    }
    assert!(
        failures.is_empty(),
        "wrong refusals:\n  {}",
        failures.join("\n  ")
    );
}

#[tokio::test]
async fn the_sdk_sees_a_bad_key_as_an_api_error() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let client = proxy.openai(WRONG_KEY);

    let request: CreateChatCompletionRequest = serde_json::from_value(hello("chat")).unwrap();
    let error = within(client.chat().create(request))
        .await
        .expect_err("a wrong key is refused");
    println!("the SDK says: {error}");
    let OpenAIError::ApiError(response) = error else {
        panic!("expected OpenAIError::ApiError, got {error:?}");
    };
    assert_eq!(response.status_code.as_u16(), 401);
    assert_eq!(response.api_error.code.as_deref(), Some("invalid_api_key"));
    assert_eq!(
        response.api_error.r#type.as_deref(),
        Some("authentication_error")
    );
}

#[tokio::test]
async fn a_body_over_max_request_bytes_is_413() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("max_request_bytes: 1KiB")).await;
    let url = proxy.url("/chat/completions");

    println!("a 4 KiB prompt against a 1 KiB limit");
    let big = json!({"model": "chat", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let reply = post_json(&url, Some(ALPHA_KEY), &big).await;
    println!("{} {}", reply.status, reply.body);
    assert_eq!(reply.status, 413);
    let error = reply.error();
    assert_eq!(error["code"], "request_too_large");
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(sims.a.stats().requests, 0);

    println!("a small request still fits");
    let reply = post_json(&url, Some(ALPHA_KEY), &hello("chat")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn an_upstream_400_is_returned_and_not_retried() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let url = proxy.url("/chat/completions");

    println!("sim-a rejects the request with 400");
    sims.a.push_faults([Fault::ClientError(400)]);
    let reply = post_json(&url, Some(ALPHA_KEY), &hello("chat")).await;
    println!("{} {}", reply.status, reply.body);
    assert_eq!(reply.status, 400);
    let error = reply.error();
    assert!(error["message"].is_string());
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-a"));
    assert_eq!(reply.header("x-switchyard-attempts"), Some("1"));
    assert_eq!(
        sims.b.stats().requests,
        0,
        "a client error is not retried elsewhere"
    );

    println!("the next request is served normally, by sim-a (a 400 is not a capacity problem)");
    let reply = post_json(&url, Some(ALPHA_KEY), &hello("chat")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-a"));
}

#[tokio::test]
async fn no_secret_reaches_the_log_metrics_or_admin_after_failures() {
    let sims = Sims::start().await;
    let proxy = Proxy::start(&sims.routes("")).await;
    let url = proxy.url("/chat/completions");

    println!("a run full of failures: bad keys, 429, 500, 400, a broken stream, a dead end");
    let _ = post_json(&url, Some(WRONG_KEY), &hello("chat")).await;
    let _ = post_json(&url, None, &hello("chat")).await;
    sims.a.push_faults([Fault::RateLimit {
        retry_after_ms: 100,
    }]);
    let _ = post_json(&url, Some(ALPHA_KEY), &hello("chat")).await;
    sims.b.push_faults([Fault::Status(500)]);
    let _ = post_json(&url, Some(ALPHA_KEY), &hello("chat")).await;
    sims.a.set_sticky_fault(Some(Fault::ClientError(400)));
    sims.b.set_sticky_fault(Some(Fault::ClientError(400)));
    let _ = post_json(&url, Some(ALPHA_KEY), &hello("chat")).await;
    sims.a
        .set_sticky_fault(Some(Fault::DropMidStream { after_chunks: 1 }));
    sims.b.set_sticky_fault(Some(Fault::Status(503)));
    let mut streamed = hello("chat");
    streamed["stream"] = json!(true);
    let _ = post_stream(&url, Some(ALPHA_KEY), &streamed).await;
    let _ = post_json(&url, Some(ALPHA_KEY), &hello("other")).await;
    let _ = post(&url, Some(ALPHA_KEY), "{not json".to_owned(), &[]).await;

    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    let routes = get(&proxy.admin("/admin/routes"), None).await.body;
    let log = proxy.log();
    println!(
        "log: {} bytes, metrics: {} bytes, routes: {} bytes",
        log.len(),
        metrics.len(),
        routes.len()
    );
    for (place, text) in [
        ("log", &log),
        ("/metrics", &metrics),
        ("/admin/routes", &routes),
    ] {
        for secret in [UPSTREAM_KEY_A, UPSTREAM_KEY_B, ALPHA_KEY, WRONG_KEY] {
            assert!(
                !text.contains(secret),
                "{place} contains the secret {secret:?}:\n{text}"
            );
        }
    }
}
