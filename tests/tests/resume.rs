//! Streams that survive their upstream (docs/streams.md), through the real binary: a stream
//! cut mid-way or stalled past `server.stream_idle_timeout` goes on at the next target, which
//! is sent the delivered text, and the client reads one answer; never mid tool call, and
//! without `resume_streams` the stream ends with the dialect's error event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionResponseStream, CreateChatCompletionRequest, CreateChatCompletionStreamResponse,
};
use futures_util::StreamExt;
use loadtest::{answer_text, AnthropicFault, AnthropicSim, AnthropicSimConfig, Fault, OpenAiSim};
use serde_json::{json, Value};
use sqlx::Connection;
use switchyard_e2e::anthropic_stream::{check_stream, sse_events};
use switchyard_e2e::{
    error_of, get, policy, post_stream, start_sim, within, Proxy, ALPHA_KEY, UPSTREAM_KEY_A,
    UPSTREAM_KEY_B,
};

const ANTHROPIC_KEY_A: &str = "sk-ant-resume-a";
const ANTHROPIC_KEY_B: &str = "sk-ant-resume-b";

/// A fresh directory for one test's ledger.
fn temp_dir() -> PathBuf {
    switchyard_e2e::scratch_dir("sy-resume")
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/ledger.db", dir.display())
}

/// `chat` over sim-a then sim-b (priority); `model_extra` holds more model settings (one per
/// line, indented by four), `server_extra` more `server:` settings. The ledger is in `dir`.
fn routes(
    a: &OpenAiSim,
    b: &OpenAiSim,
    model_extra: &str,
    server_extra: &str,
    dir: &Path,
) -> String {
    let yaml = policy(
        server_extra,
        &format!(
            "  sim-a: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n  sim-b: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_B} }}\n",
            a.base_url(),
            b.base_url()
        ),
        &format!(
            "  chat:\n{model_extra}    targets:\n      - {{ provider: sim-a, model: up-a, price: {{ input: 1.0, output: 2.0 }} }}\n      - {{ provider: sim-b, model: up-b, price: {{ input: 1.0, output: 2.0 }} }}\n"
        ),
        "[chat]",
    );
    with_ledger(&yaml, dir)
}

fn with_ledger(yaml: &str, dir: &Path) -> String {
    yaml.replacen(
        "providers:\n",
        &format!(
            "ledger:\n  url: \"{}\"\n  flush_interval: 50ms\nproviders:\n",
            sqlite_url(dir)
        ),
        1,
    )
}

const RESUME: &str = "    resume_streams: true\n";

fn chat_request(body: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(body).expect("a valid chat request")
}

fn streamed_hello() -> Value {
    json!({"model": "chat", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]})
}

/// Drains an SDK stream: the chunks, and the first error (after which it stops).
async fn drain(
    mut stream: ChatCompletionResponseStream,
) -> (Vec<CreateChatCompletionStreamResponse>, Option<String>) {
    let mut chunks = Vec::new();
    while let Some(item) = within(stream.next()).await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(error) => return (chunks, Some(error.to_string())),
        }
    }
    (chunks, None)
}

fn text_of(chunks: &[CreateChatCompletionStreamResponse]) -> String {
    chunks
        .iter()
        .flat_map(|chunk| &chunk.choices)
        .filter_map(|choice| choice.delta.content.as_deref())
        .collect()
}

/// The value of the metric line that starts with `prefix` (0 when absent), polled briefly:
/// the stream's accounting runs just after its last byte.
async fn metric(proxy: &Proxy, prefix: &str) -> f64 {
    let mut value = 0.0;
    for _ in 0..50 {
        let metrics = get(&proxy.admin("/metrics"), None).await.body;
        value = metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if value > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    value
}

/// The ledger's rows: (provider, attempts, output tokens, cost in nano-USD, resumed), once
/// `n` are written.
async fn ledger_rows(dir: &Path, n: usize) -> Vec<(String, i64, i64, i64, bool)> {
    let mut ledger = sqlx::SqliteConnection::connect(&sqlite_url(dir))
        .await
        .unwrap();
    for _ in 0..100 {
        let rows: Vec<(String, i64, i64, i64, bool)> = sqlx::query_as(
            "SELECT provider, attempts, output_tokens, cost_nano_usd, resumed FROM switchyard_ledger",
        )
        .fetch_all(&mut ledger)
        .await
        .unwrap();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the ledger never held {n} rows");
}

/// Every upstream request body a simulator saw last: its messages.
fn last_messages(sim: &OpenAiSim) -> Vec<Value> {
    sim.stats().last_body.expect("a request")["messages"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_stream_cut_at_its_fifth_event_goes_on_at_the_next_target_and_is_read_once() {
    let dir = temp_dir();
    let (a, b) = (
        start_sim("sim-a", UPSTREAM_KEY_A).await,
        start_sim("sim-b", UPSTREAM_KEY_B).await,
    );
    let proxy = Proxy::start(&routes(&a, &b, RESUME, "", &dir)).await;
    let client = proxy.openai(ALPHA_KEY);

    println!("sim-a sends its role chunk and five content chunks, then drops the connection");
    a.push_faults([Fault::DropMidStream { after_chunks: 5 }]);
    let stream = within(client.chat().create_stream(chat_request(streamed_hello())))
        .await
        .expect("the stream starts");
    let (chunks, error) = drain(stream).await;
    assert!(error.is_none(), "the SDK saw an error: {error:?}");

    let delivered = answer_text("sim-a", 5);
    let text = text_of(&chunks);
    println!("the client read: {text:?}");
    assert_eq!(text, format!("{delivered}{}", answer_text("sim-b", 8)));
    assert_eq!(
        text.matches(&delivered).count(),
        1,
        "the prefix exactly once"
    );
    let ids: std::collections::BTreeSet<_> = chunks.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), 1, "one answer id: {ids:?}");
    let roles = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter(|choice| choice.delta.role.is_some())
        .count();
    assert_eq!(roles, 1, "one role start");
    let finishes = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter(|choice| choice.finish_reason.is_some())
        .count();
    assert_eq!(finishes, 1, "one finish");
    let usages: Vec<_> = chunks.iter().filter_map(|c| c.usage.clone()).collect();
    assert_eq!(usages.len(), 1, "one final usage");
    assert_eq!(
        usages[0].completion_tokens,
        5 + 8,
        "the usage covers both attempts"
    );

    println!("sim-b was sent the original request plus the delivered text");
    let messages = last_messages(&b);
    println!("{messages:?}");
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0], json!({"role": "user", "content": "hi"}));
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": delivered})
    );
    assert_eq!(messages[2]["role"], "user");
    assert!(messages[2]["content"]
        .as_str()
        .unwrap()
        .contains("Continue it from exactly where it stopped"));

    let resumed = metric(
        &proxy,
        "switchyard_stream_resumes_total{from=\"sim-a\",model=\"chat\",outcome=\"resumed\",to=\"sim-b\"}",
    )
    .await;
    assert_eq!(resumed, 1.0);
    let rows = ledger_rows(&dir, 1).await;
    println!("ledger: {rows:?}");
    let (provider, attempts, output, cost, was_resumed) = rows[0].clone();
    assert_eq!(
        (provider.as_str(), attempts, was_resumed),
        ("sim-b", 2, true)
    );
    assert_eq!(output, 13, "both attempts' output");
    assert!(cost > 0);
    println!("the audit trail names both legs");
    let mut ledger = sqlx::SqliteConnection::connect(&sqlite_url(&dir))
        .await
        .unwrap();
    let (chain,): (String,) = sqlx::query_as("SELECT attempt_chain FROM switchyard_ledger")
        .fetch_one(&mut ledger)
        .await
        .unwrap();
    assert_eq!(chain, "sim-a/up-a=ok, sim-b/up-b=resumed");
    let log = proxy.log();
    assert!(log.contains("resumed_from"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Messages client through two Anthropic upstreams: the second gets the delivered text as
/// a prefill (the last, assistant message) and the client reads one strict Anthropic stream.
#[tokio::test]
async fn a_messages_stream_cut_mid_way_is_continued_from_a_prefill() {
    let dir = temp_dir();
    let start = |name: &'static str, key: &'static str| async move {
        AnthropicSim::start(AnthropicSimConfig {
            api_key: key.to_owned(),
            ..AnthropicSimConfig::new(name)
        })
        .await
        .unwrap()
    };
    let a = start("anth-a", ANTHROPIC_KEY_A).await;
    let b = start("anth-b", ANTHROPIC_KEY_B).await;
    let yaml = policy(
        "",
        &format!(
            "  anth-a: {{ kind: anthropic, base_url: \"{}\", api_key: {ANTHROPIC_KEY_A} }}\n  anth-b: {{ kind: anthropic, base_url: \"{}\", api_key: {ANTHROPIC_KEY_B} }}\n",
            a.base_url(),
            b.base_url()
        ),
        &format!(
            "  claude:\n{RESUME}    targets:\n      - {{ provider: anth-a, model: claude-sonnet-4-5, price: {{ input: 3.0, output: 15.0 }} }}\n      - {{ provider: anth-b, model: claude-sonnet-4-5, price: {{ input: 3.0, output: 15.0 }} }}\n"
        ),
        "[claude]",
    );
    let proxy = Proxy::start(&with_ledger(&yaml, &dir)).await;
    let body = json!({"model": "claude", "max_tokens": 200, "stream": true,
        "messages": [{"role": "user", "content": "Tell me about streams."}]});
    let send = || async {
        let reply = switchyard_e2e::http_client()
            .post(proxy.url("/messages"))
            .header("x-api-key", ALPHA_KEY)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        within(reply.text()).await.unwrap()
    };

    println!("anth-a answers whole once, for reference");
    let whole = check_stream(&sse_events(&send().await).unwrap()).unwrap();
    let whole_text = whole["content"][0]["text"].as_str().unwrap().to_owned();

    println!("then it sends five events (start, block start, three deltas) and is cut");
    a.push_faults([AnthropicFault::StreamCut { after_events: 5 }]);
    let raw = send().await;
    let events = sse_events(&raw).unwrap();
    let message = check_stream(&events).unwrap_or_else(|e| panic!("{e}\n{raw}"));
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    println!("{names:?}");
    assert_eq!(names.iter().filter(|n| **n == "message_start").count(), 1);
    assert_eq!(names.iter().filter(|n| **n == "message_delta").count(), 1);
    assert!(!names.contains(&"error"), "{raw}");

    let prefill = b.stats().last_body.expect("anth-b was asked")["messages"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    println!("anth-b's last message: {prefill}");
    assert_eq!(prefill["role"], "assistant");
    let delivered = prefill["content"].as_str().unwrap();
    assert!(!delivered.is_empty());
    assert!(
        whole_text.starts_with(delivered),
        "the prefill is what anth-a had delivered: {delivered:?} / {whole_text:?}"
    );
    let text: String = message["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect();
    println!("the client read: {text:?}");
    assert!(text.starts_with(delivered), "{text:?}");
    assert!(text.len() > delivered.len(), "the continuation follows");
    assert_eq!(
        text.matches(delivered).count(),
        1,
        "the prefix exactly once"
    );
    assert_eq!(
        message["content"].as_array().unwrap().len(),
        1,
        "one text block"
    );
    assert_eq!(message["stop_reason"], "end_turn");

    let rows = ledger_rows(&dir, 2).await;
    assert_eq!(
        rows.iter().filter(|r| r.4).count(),
        1,
        "the cut request's row says resumed: {rows:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout_and_resumes() {
    let dir = temp_dir();
    let (a, b) = (
        start_sim("sim-a", UPSTREAM_KEY_A).await,
        start_sim("sim-b", UPSTREAM_KEY_B).await,
    );
    let proxy = Proxy::start(&routes(&a, &b, RESUME, "stream_idle_timeout: 300ms", &dir)).await;

    println!("sim-a sends two chunks, then stalls; request_timeout is 10s, the idle timeout 300ms");
    a.push_faults([Fault::HangMidStream { after_chunks: 2 }]);
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed_hello(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = reply.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        text,
        format!("{}{}", answer_text("sim-a", 2), answer_text("sim-b", 8))
    );
    assert_eq!(
        metric(
            &proxy,
            "switchyard_stream_resumes_total{from=\"sim-a\",model=\"chat\",outcome=\"resumed\",to=\"sim-b\"}"
        )
        .await,
        1.0
    );
    println!("the stall counts as a timeout for sim-a: it cools down");
    let routes = get(&proxy.admin("/admin/routes"), None).await.json();
    let sim_a = routes["models"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["provider"] == "sim-a")
        .cloned()
        .unwrap();
    println!("{sim_a}");
    assert!(sim_a["skipped"].to_string().contains("cooling"), "{sim_a}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_resume_streams_a_stall_ends_with_the_timeout_error_event() {
    let dir = temp_dir();
    let (a, b) = (
        start_sim("sim-a", UPSTREAM_KEY_A).await,
        start_sim("sim-b", UPSTREAM_KEY_B).await,
    );
    let proxy = Proxy::start(&routes(&a, &b, "", "stream_idle_timeout: 300ms", &dir)).await;
    a.push_faults([Fault::HangMidStream { after_chunks: 2 }]);
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed_hello(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = reply.events();
    assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    let error = error_of(events.last().unwrap()).unwrap();
    println!("{error}");
    assert_eq!(error["code"], "upstream_timeout");
    assert!(error["message"].as_str().unwrap().contains("idle timeout"));
    assert_eq!(b.stats().chat_requests, 0, "not resumed");

    println!("a Messages client gets event: error with timeout_error (sim-a cools down after");
    println!("its stall, so the stream may come from sim-b: both stall)");
    a.push_faults([Fault::HangMidStream { after_chunks: 2 }]);
    b.push_faults([Fault::HangMidStream { after_chunks: 2 }]);
    let raw = switchyard_e2e::http_client()
        .post(proxy.url("/messages"))
        .header("x-api-key", ALPHA_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "chat", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let events = sse_events(&within(raw.text()).await.unwrap()).unwrap();
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error", "{events:?}");
    assert_eq!(data["error"]["type"], "timeout_error");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_stream_cut_during_a_tool_calls_arguments_is_not_resumed() {
    let dir = temp_dir();
    let (a, b) = (
        start_sim("sim-a", UPSTREAM_KEY_A).await,
        start_sim("sim-b", UPSTREAM_KEY_B).await,
    );
    let proxy = Proxy::start(&routes(&a, &b, RESUME, "", &dir)).await;
    let mut body = streamed_hello();
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
        "country": {"type": "string"}}, "required": ["city", "country"]}}}]);
    println!("sim-a streams a tool call and is cut after its first argument piece");
    a.push_faults([Fault::DropMidStream { after_chunks: 1 }]);
    let reply = post_stream(&proxy.url("/chat/completions"), Some(ALPHA_KEY), &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = reply.events();
    println!("{events:?}");
    assert!(
        events.iter().any(|e| e.contains("tool_calls")),
        "a tool call had started: {events:?}"
    );
    assert!(!events.iter().any(|e| e == "[DONE]"));
    error_of(events.last().unwrap()).unwrap_or_else(|why| panic!("{why}"));
    assert_eq!(b.stats().chat_requests, 0, "no replay of a tool call");
    assert_eq!(
        metric(
            &proxy,
            "switchyard_stream_resumes_total{from=\"sim-a\",model=\"chat\",outcome=\"tool_call\",to=\"none\"}"
        )
        .await,
        1.0
    );
    let rows = ledger_rows(&dir, 1).await;
    assert!(!rows[0].4, "not resumed: {rows:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_no_other_target_a_cut_stream_ends_with_the_error_event() {
    let dir = temp_dir();
    let a = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let yaml = policy(
        "",
        &format!(
            "  sim-a: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n",
            a.base_url()
        ),
        &format!("  chat:\n{RESUME}    targets:\n      - {{ provider: sim-a, model: up-a, price: free }}\n"),
        "[chat]",
    );
    let proxy = Proxy::start(&with_ledger(&yaml, &dir)).await;
    a.push_faults([Fault::DropMidStream { after_chunks: 3 }]);
    let reply = post_stream(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &streamed_hello(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = reply.events();
    assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    let error = error_of(events.last().unwrap()).unwrap();
    assert_eq!(error["code"], "upstream_error");
    assert_eq!(
        metric(
            &proxy,
            "switchyard_stream_resumes_total{from=\"sim-a\",model=\"chat\",outcome=\"no_target\",to=\"none\"}"
        )
        .await,
        1.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
