//! Unit tests of the attempt loop against scripted upstreams on tokio's paused clock:
//! failover and cool-downs, hedging, refusals, deadlines and half-open probes, asserted on
//! what the client gets, which upstreams were called (and cancelled), the metrics and the
//! targets' live state.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::{sleep, Instant};

use super::{serve, serve_planned};
use crate::config::testing::compile_yaml;
use crate::config::{Placement, Target, Team};
use crate::metrics::Metrics;
use crate::providers::testing::chat_operation;
use crate::providers::Operation;
use crate::relay::{Reply, RequestRecord};
use crate::routing::circuit::CircuitState;
use crate::routing::{self, AttemptPermit, Availability, Plan};
use crate::state::AppState;
use crate::telemetry::testing::{attr, SpanLog};
use crate::telemetry::RequestSpan;
use crate::upstream::scripted::{Answer, Fate, ScriptedUpstream};
use crate::upstream::Transport;

/// The upstream hosts of the providers below.
const A: &str = "127.0.0.1:9001";
const B: &str = "127.0.0.1:9002";
const C: &str = "127.0.0.1:9003";
const ROCK: &str = "127.0.0.1:9004";

const PROVIDERS: &str = r#"providers:
  a: { kind: openai, base_url: "http://127.0.0.1:9001/v1" }
  b: { kind: openai, base_url: "http://127.0.0.1:9002/v1" }
  c: { kind: openai, base_url: "http://127.0.0.1:9003/v1" }
  rock:
    kind: bedrock
    region: us-east-1
    access_key_id: AKIDEXAMPLE
    secret_access_key: example-secret
    endpoint: "http://127.0.0.1:9004"
"#;

/// `m` on `providers` in that order, with `extra` model settings (indented four spaces).
fn model(name: &str, providers: &[&str], extra: &str) -> String {
    let mut text = format!("  {name}:\n    strategy: priority\n{extra}    targets:\n");
    for provider in providers {
        let upstream = if *provider == "rock" {
            "anthropic.claude-3-haiku".to_owned()
        } else {
            format!("{name}-{provider}")
        };
        text.push_str(&format!(
            "      - {{ provider: {provider}, model: {upstream}, price: {{ input: 1, output: 2 }} }}\n"
        ));
    }
    text
}

struct Harness {
    state: Arc<AppState>,
    upstream: Arc<ScriptedUpstream>,
    started: Instant,
}

/// What the client got, with the request's account.
#[derive(Debug)]
struct Outcome {
    status: u16,
    provider: String,
    attempts: usize,
    /// `x-switchyard-route` (every request here asks for it).
    route: String,
    headers: Vec<(&'static str, String)>,
    /// The answer, the whole stream, or the error body.
    body: String,
}

impl Outcome {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Harness {
    /// [`Self::new`] with trace export on, into the returned log.
    fn traced(server: &str, models: &[String]) -> (Self, SpanLog) {
        let log = SpanLog::default();
        let mut harness = Self::new(server, models);
        let state = Arc::get_mut(&mut harness.state).unwrap();
        state.tracing = log.tracing();
        (harness, log)
    }

    /// A policy with `server` settings (indented two spaces) and `models`.
    fn new(server: &str, models: &[String]) -> Self {
        let yaml = format!(
            "version: 1\nserver:\n{server}{PROVIDERS}models:\n{}",
            models.concat()
        );
        let policy = compile_yaml(&yaml, &[]).unwrap();
        // The team is built by hand below; any other warning (a disabled provider) is a bug.
        let unexpected = policy
            .warnings
            .iter()
            .filter(|w| !w.starts_with("no teams"));
        assert_eq!(unexpected.count(), 0, "{:?}", policy.warnings);
        let upstream = ScriptedUpstream::new();
        let state = AppState::new(
            policy,
            "routes.yaml".into(),
            Metrics::new().unwrap(),
            Transport::Scripted(upstream.clone()),
        );
        Self {
            state: Arc::new(state),
            upstream,
            started: Instant::now(),
        }
    }

    /// Time since the harness was built, on the paused clock.
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn target(&self, model: &str, provider: &str) -> Arc<Target> {
        self.state.policy().models[model]
            .targets
            .iter()
            .find(|t| t.provider.name == provider)
            .unwrap()
            .clone()
    }

    fn availability(&self, model: &str, provider: &str) -> Availability {
        self.state
            .stats
            .availability(&self.target(model, provider).id, Instant::now())
    }

    fn circuit(&self, model: &str, provider: &str) -> CircuitState {
        self.state
            .stats
            .snapshot(&self.target(model, provider), Instant::now())
            .circuit
    }

    /// Takes a permit on a target as another request would.
    fn permit(&self, model: &str, provider: &str) -> Result<AttemptPermit, Availability> {
        let target = self.target(model, provider);
        let health = self.state.policy().models[model].routing.health;
        self.state
            .stats
            .try_start(&target, health, 0, Instant::now())
    }

    fn failovers(&self, model: &str, from: &str, to: &str, reason: &str) -> u64 {
        self.state
            .metrics
            .failovers
            .with_label_values(&[model, from, to, reason])
            .get()
    }

    fn attempts_metric(&self, provider: &str, outcome: &str) -> u64 {
        self.state
            .metrics
            .upstream_attempts
            .with_label_values(&[provider, outcome])
            .get()
    }

    fn hedges(&self, model: &str, winner: &str) -> u64 {
        self.state
            .metrics
            .hedges
            .with_label_values(&[model, winner])
            .get()
    }

    /// The plan the attempt loop would make for `body` now.
    fn plan(&self, body: &Value) -> Plan {
        let operation = chat_operation(body.clone());
        let policy = self.state.policy();
        let model = policy.models[operation.client_model()].clone();
        let shape = super::request_shape(&operation, None);
        let now = Instant::now();
        let rng = &mut rand::rng();
        routing::plan(
            &policy,
            &model,
            Some(&team()),
            &self.state.stats,
            &shape,
            now,
            rng,
        )
    }

    /// Serves `body` through the attempt loop, reading a stream to its end.
    async fn request(&self, body: Value) -> Outcome {
        self.request_planned(body, None).await
    }

    /// Like [`Self::request`], on `plan` (made earlier) when given.
    async fn request_planned(&self, body: Value, plan: Option<Plan>) -> Outcome {
        self.serve_operation(chat_operation(body), plan).await
    }

    /// Serves an Anthropic Messages client's `body`.
    async fn request_messages(&self, body: Value) -> Outcome {
        let text = body.to_string();
        let wire: crate::dialects::messages::MessagesRequest = serde_json::from_str(&text).unwrap();
        wire.validate().unwrap();
        let generation = crate::providers::Generation {
            request: crate::dialects::messages::decode_request(wire).unwrap(),
            body: text.into(),
            betas: Vec::new(),
            responses: None,
        };
        self.serve_operation(Operation::Generate(Box::new(generation)), None)
            .await
    }

    async fn serve_operation(&self, operation: Operation, plan: Option<Plan>) -> Outcome {
        let policy = self.state.policy();
        let model = policy.models[operation.client_model()].clone();
        let team = team();
        let mut record = RequestRecord::new(self.state.clone(), "req-1".to_owned(), Instant::now());
        record.model = model.name.clone();
        record.team = team.name.clone();
        record.debug = true;
        let no_headers = http::HeaderMap::new();
        let path = "/v1/chat/completions";
        record.trace = RequestSpan::start(&self.state.tracing, &no_headers, "POST", path);
        let served = match plan {
            None => serve(&policy, &model, &team, operation, record).await,
            Some(plan) => {
                let shape = super::request_shape(&operation, None);
                serve_planned(&policy, &model, &team, operation, record, &shape, plan).await
            }
        };
        match served {
            Ok(Reply::Full {
                status,
                headers,
                body,
            }) => outcome(status, headers, String::from_utf8(body.to_vec()).unwrap()),
            Ok(Reply::Stream {
                headers,
                mut stream,
            }) => {
                let mut text = String::new();
                while let Some(chunk) = stream.next_chunk().await {
                    text.push_str(std::str::from_utf8(&chunk).unwrap());
                }
                outcome(200, headers, text)
            }
            Err((error, record)) => {
                let response = error.to_response();
                Outcome {
                    status: response.status,
                    provider: record.provider().to_owned(),
                    attempts: record.attempts,
                    route: record.route_header().unwrap_or_default(),
                    headers: response.headers,
                    body: serde_json::to_string(&response.body).unwrap(),
                }
            }
        }
    }
}

/// The team every request here comes from.
fn team() -> Team {
    Team {
        name: "t".to_owned(),
        models: None,
        budget: None,
        alert_at: None,
        limits: None,
        placement: Placement::default(),
        debug: true,
    }
}

fn outcome(status: u16, headers: Vec<(&'static str, String)>, body: String) -> Outcome {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Outcome {
        status,
        provider: find("x-switchyard-provider"),
        attempts: find("x-switchyard-attempts").parse().unwrap(),
        route: find("x-switchyard-route"),
        body,
        headers,
    }
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn streamed(model: &str) -> Value {
    let mut body = chat(model);
    body["stream"] = json!(true);
    body
}

/// An OpenAI chat answer saying `text`.
fn answer(text: &str) -> Answer {
    Answer::json(
        200,
        &json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "upstream",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        }),
    )
}

/// One SSE chunk carrying `text`.
fn sse_delta(text: &str) -> String {
    let chunk = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "upstream",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
    });
    format!("data: {chunk}\n\n")
}

const SSE_DONE: &str = "data: [DONE]\n\n";

fn error_body(message: &str) -> Value {
    json!({"error": {"message": message, "type": "server_error"}})
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const SERVER: &str = "  request_timeout: 30s\n  first_byte_timeout: 10s\n";

#[tokio::test(start_paused = true)]
async fn capacity_error_fails_over_and_cools_the_first_target_down() {
    let h = Harness::new(SERVER, &[model("m", &["a", "b"], "")]);
    println!("a answers 429 with retry-after: 7; b answers");
    h.upstream.script(
        A,
        Answer::json(429, &error_body("slow down")).header("retry-after", "7"),
    );
    h.upstream.script(B, answer("from b"));

    let out = h.request(chat("m")).await;
    println!(
        "client got {} from {} after {} attempt(s): {}",
        out.status, out.provider, out.attempts, out.route
    );

    assert_eq!(out.status, 200);
    assert_eq!(out.provider, "b");
    assert_eq!(out.attempts, 2);
    assert_eq!(out.route, "a/m-a=capacity, b/m-b=ok");
    let answer: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "from b");
    assert_eq!(answer["model"], "m", "the client's model name is restored");
    assert_eq!(h.upstream.calls_to(B)[0].json()["model"], "m-b");
    assert_eq!(h.failovers("m", "a", "b", "capacity"), 1);
    assert_eq!(h.attempts_metric("a", "capacity"), 1);
    assert_eq!(h.attempts_metric("b", "ok"), 1);
    println!("a cools down for exactly the retry-after, then is usable again");
    assert_eq!(
        h.availability("m", "a"),
        Availability::CoolingDown { remaining: secs(7) }
    );
    assert_eq!(h.availability("m", "b"), Availability::Ready);
    sleep(secs(7)).await;
    assert_eq!(h.availability("m", "a"), Availability::Ready);
    assert_eq!(h.upstream.unused(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_that_answers_first_wins_and_the_primary_is_cancelled() {
    let h = Harness::new(
        SERVER,
        &[model("m", &["a", "b"], "    hedge_after: 200ms\n")],
    );
    println!("a sends its headers at once but its first event only after 2s; b streams at once");
    h.upstream.script(
        A,
        Answer::stream()
            .piece(secs(2), sse_delta("from a"))
            .piece(ms(10), SSE_DONE),
    );
    h.upstream.script(
        B,
        Answer::stream()
            .piece(ms(50), sse_delta("from b"))
            .piece(ms(10), SSE_DONE),
    );

    let out = h.request(streamed("m")).await;
    println!(
        "client got {} from {} after {} attempt(s)",
        out.status, out.provider, out.attempts
    );

    assert_eq!(out.status, 200);
    assert_eq!(out.provider, "b");
    assert_eq!(out.attempts, 2, "both targets were sent the request");
    assert_eq!(out.route, "a/m-a=cancelled, b/m-b=ok");
    assert!(out.body.contains("from b"), "{}", out.body);
    assert!(!out.body.contains("from a"), "{}", out.body);
    assert!(out.body.ends_with(SSE_DONE));
    let (a, b) = (h.upstream.calls_to(A), h.upstream.calls_to(B));
    assert_eq!((a.len(), b.len()), (1, 1));
    println!("b was started when the hedge delay ran out; a was cancelled once b answered");
    assert_eq!(a[0].at - h.started, Duration::ZERO);
    assert_eq!(b[0].at - h.started, ms(200));
    assert_eq!(a[0].fate(), Fate::Cancelled);
    assert_eq!(b[0].fate(), Fate::Delivered);
    assert_eq!(h.hedges("m", "hedge"), 1);
    assert_eq!(h.hedges("m", "primary"), 0);
    println!("the cancelled primary got no verdict and holds nothing");
    let snapshot = h.state.stats.snapshot(&h.target("m", "a"), Instant::now());
    assert_eq!(snapshot.inflight, 0);
    assert_eq!(snapshot.availability, Availability::Ready);
    assert_eq!(snapshot.consecutive_failures, 0);
    assert_eq!(
        h.attempts_metric("a", "capacity") + h.attempts_metric("a", "timeout"),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_a_capacity_error_returns_the_capacity_error() {
    let h = Harness::new(SERVER, &[model("m", &["a", "rock"], "")]);
    println!("a answers 429 (retry-after: 7); rock (Bedrock) cannot express n = 2");
    h.upstream.script(
        A,
        Answer::json(429, &error_body("slow down")).header("retry-after", "7"),
    );
    let mut body = chat("m");
    body["n"] = json!(2);

    let out = h.request(body).await;
    println!("client got {}: {}", out.status, out.body);

    assert_eq!(out.status, 503, "the capacity error, not the refusal's 400");
    assert_eq!(out.header("retry-after"), Some("7"));
    assert_eq!(out.header("retry-after-ms"), Some("7000"));
    assert!(out.body.contains("upstream_unavailable"), "{}", out.body);
    assert_eq!(out.attempts, 1, "the refusal sent nothing: no attempt");
    assert_eq!(
        out.route,
        "a/m-a=capacity, rock/anthropic.claude-3-haiku=refused(n)"
    );
    assert_eq!(h.upstream.calls().len(), 1);
    assert!(h.upstream.calls_to(ROCK).is_empty());
    assert_eq!(h.failovers("m", "a", "rock", "capacity"), 0);
    println!("rock was never tried: no attempt, no verdict on it");
    assert_eq!(h.availability("m", "rock"), Availability::Ready);
    let rock = h
        .state
        .stats
        .snapshot(&h.target("m", "rock"), Instant::now());
    assert_eq!((rock.inflight, rock.consecutive_failures), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_refusal_alone_is_a_400_naming_the_field() {
    let h = Harness::new(SERVER, &[model("m", &["rock"], "")]);
    println!("the only target cannot express n = 2");
    let mut body = chat("m");
    body["n"] = json!(2);

    let out = h.request(body).await;
    println!("client got {}: {}", out.status, out.body);

    assert_eq!(out.status, 400);
    let error: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(error["error"]["param"], "n");
    assert_eq!(out.attempts, 0);
    assert!(h.upstream.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn replayed_thinking_skips_openai_format_targets_and_is_a_400_when_none_is_left() {
    let h = Harness::new(SERVER, &[model("m", &["a", "b"], "")]);
    println!("a Messages conversation replaying signed thinking; a and b are OpenAI-format");
    let body = json!({"model": "m", "max_tokens": 2048,
        "messages": [
            {"role": "user", "content": "Is 7 prime?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "no divisors", "signature": "EqQB"},
                {"type": "text", "text": "Yes."}]},
            {"role": "user", "content": "And 9?"}]});

    let out = h.request_messages(body).await;
    println!("client got {}: {}", out.status, out.body);

    assert_eq!(out.status, 400);
    let error: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(error["error"]["param"], "thinking");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages[1].content[0]"),
        "{error}"
    );
    assert_eq!(out.attempts, 0, "nothing was sent");
    assert!(h.upstream.calls().is_empty());
    assert_eq!(
        out.route,
        "a/m-a=refused(thinking), b/m-b=refused(thinking)"
    );
    println!("neither target got a verdict: both stay ready");
    assert_eq!(h.availability("m", "a"), Availability::Ready);
    assert_eq!(h.availability("m", "b"), Availability::Ready);
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_ends_an_attempt_and_no_other_starts() {
    let server = "  request_timeout: 10s\n  first_byte_timeout: 6s\n";
    let h = Harness::new(server, &[model("m", &["a", "b", "c"], "")]);
    println!("a never sends headers (first-byte timeout at 6s); b would answer at 6s + 30s");
    h.upstream.script(A, Answer::hang());
    h.upstream.script(B, answer("too late").after(secs(30)));
    // c has no script: a call to it fails the test.

    let out = h.request(chat("m")).await;
    println!(
        "client got {} after {:?}: {}",
        out.status,
        h.elapsed(),
        out.body
    );

    assert_eq!(out.status, 504);
    assert!(out.body.contains("upstream_timeout"), "{}", out.body);
    assert_eq!(h.elapsed(), secs(10), "bounded by the request deadline");
    assert_eq!(out.attempts, 2);
    assert_eq!(out.route, "a/m-a=timeout, b/m-b=timeout");
    let calls = h.upstream.calls();
    assert_eq!(calls.len(), 2, "no attempt after the deadline");
    assert_eq!(
        (calls[0].host.as_str(), calls[0].at - h.started),
        (A, Duration::ZERO)
    );
    assert_eq!(
        (calls[1].host.as_str(), calls[1].at - h.started),
        (B, secs(6))
    );
    assert!(calls.iter().all(|c| c.fate() == Fate::Cancelled));
    assert_eq!(h.failovers("m", "a", "b", "timeout"), 1);
    assert_eq!(h.attempts_metric("a", "timeout"), 1);
    println!("a's own first-byte timeout counts as a capacity error against it");
    let a = h.state.stats.snapshot(&h.target("m", "a"), Instant::now());
    assert_eq!((a.window.capacity, a.consecutive_failures), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_ends_a_stream_waiting_for_its_first_event() {
    let server = "  request_timeout: 10s\n  first_byte_timeout: 6s\n";
    let h = Harness::new(server, &[model("m", &["a", "b", "c"], "")]);
    println!("a refuses the connection at 6s; b sends stream headers 1s later, its first event 15s after");
    h.upstream.script(A, Answer::refuse().after(secs(6)));
    h.upstream.script(
        B,
        Answer::stream()
            .after(secs(1))
            .piece(secs(15), sse_delta("too late")),
    );
    // c has no script: a call to it fails the test.

    let out = h.request(streamed("m")).await;
    println!("client got {} after {:?}", out.status, h.elapsed());

    assert_eq!(out.status, 504);
    assert_eq!(out.attempts, 2);
    assert_eq!(out.route, "a/m-a=capacity, b/m-b=timeout");
    println!("b's wait for its first event ended with the request, at 10s, not at 6s + 6s");
    assert_eq!(h.elapsed(), secs(10));
    assert_eq!(h.upstream.calls_to(A)[0].fate(), Fate::Failed);
    assert_eq!(h.upstream.calls_to(B)[0].fate(), Fate::Cancelled);
    assert!(h.upstream.calls_to(C).is_empty());
}

/// Opens `provider`'s circuit (one failure opens it) and waits until it is half-open.
async fn half_open(h: &Harness, model: &str, provider: &str) {
    h.permit(model, provider).unwrap().failed(Instant::now());
    assert!(matches!(
        h.circuit(model, provider),
        CircuitState::Open { .. }
    ));
    sleep(secs(5)).await;
    assert_eq!(
        h.circuit(model, provider),
        CircuitState::HalfOpen { probing: false }
    );
}

const ONE_FAILURE_OPENS: &str = "    health: { failures: 1, open_for: 5s }\n";

#[tokio::test(start_paused = true)]
async fn a_half_open_target_whose_probe_is_taken_meanwhile_is_skipped() {
    let h = Harness::new(SERVER, &[model("m", &["a", "b", "c"], ONE_FAILURE_OPENS)]);
    half_open(&h, "m", "b").await;
    println!("b is half-open and in the plan; a fails after 100ms, while another request takes b's probe");
    h.upstream
        .script(A, Answer::json(500, &error_body("boom")).after(ms(100)));
    h.upstream.script(C, answer("from c"));

    let (out, probe) = tokio::join!(h.request(chat("m")), async {
        sleep(ms(50)).await;
        h.permit("m", "b").unwrap()
    });
    println!(
        "client got {} from {}: {}",
        out.status, out.provider, out.route
    );

    assert!(probe.is_probe());
    assert_eq!(out.status, 200);
    assert_eq!(out.provider, "c");
    assert_eq!(out.attempts, 2);
    assert_eq!(out.route, "a/m-a=server_error, c/m-c=ok");
    assert!(h.upstream.calls_to(B).is_empty());
    assert_eq!(h.failovers("m", "a", "c", "server_error"), 1);
    assert_eq!(h.availability("m", "b"), Availability::Probing);
    println!("the other request's probe ends without a verdict: b may be probed again");
    drop(probe);
    assert_eq!(h.availability("m", "b"), Availability::Ready);
}

#[tokio::test(start_paused = true)]
async fn a_taken_probe_on_the_last_target_leaves_the_earlier_failure() {
    let h = Harness::new(SERVER, &[model("m", &["a", "b"], ONE_FAILURE_OPENS)]);
    half_open(&h, "m", "b").await;
    println!("a fails after 100ms; meanwhile b's probe is taken; b is the last target");
    h.upstream
        .script(A, Answer::json(500, &error_body("boom")).after(ms(100)));

    let (out, _probe) = tokio::join!(h.request(chat("m")), async {
        sleep(ms(50)).await;
        h.permit("m", "b").unwrap()
    });
    println!("client got {}: {}", out.status, out.body);

    assert_eq!(out.status, 503);
    assert!(out.body.contains("HTTP 500: boom"), "{}", out.body);
    assert_eq!(
        out.header("retry-after"),
        None,
        "a server error gives no retry time"
    );
    assert_eq!(out.attempts, 1);
    assert_eq!(out.provider, "a");
    assert!(h.upstream.calls_to(B).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_only_target_probing_for_another_request_is_a_503_saying_so() {
    let h = Harness::new(SERVER, &[model("m", &["b"], ONE_FAILURE_OPENS)]);
    half_open(&h, "m", "b").await;
    let probe = h.permit("m", "b").unwrap();
    assert!(probe.is_probe());
    println!("b's probe is held by another request; a request for m arrives");

    let out = h.request(chat("m")).await;
    println!("client got {}: {}", out.status, out.body);

    assert_eq!(out.status, 503);
    assert!(
        out.body.contains("probe request is in flight"),
        "{}",
        out.body
    );
    assert_eq!(out.attempts, 0);
    assert!(h.upstream.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_probe_taken_between_planning_and_the_attempt_is_a_503_not_a_timeout() {
    let h = Harness::new(SERVER, &[model("m", &["b"], ONE_FAILURE_OPENS)]);
    half_open(&h, "m", "b").await;
    println!("the plan is made while b's probe is free; then another request takes it");
    let plan = h.plan(&chat("m"));
    assert_eq!(plan.attempts.len(), 1, "b is planned: {:?}", plan.skipped);
    let probe = h.permit("m", "b").unwrap();
    assert!(probe.is_probe());

    let out = h.request_planned(chat("m"), Some(plan)).await;
    println!("client got {}: {}", out.status, out.body);

    assert_eq!(out.status, 503, "{}", out.body);
    let error: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(error["error"]["code"], "upstream_unavailable", "{error}");
    assert!(
        out.body.contains("probe request is in flight"),
        "{}",
        out.body
    );
    assert!(!out.body.contains("0 attempt"), "{}", out.body);
    assert_eq!(out.header("retry-after"), None, "a probe's end is unknown");
    assert_eq!(out.attempts, 0);
    assert!(h.upstream.calls().is_empty());
    drop(probe);
}

#[tokio::test(start_paused = true)]
async fn a_circuit_opened_between_planning_and_the_attempt_says_when_to_retry() {
    let h = Harness::new(SERVER, &[model("m", &["b"], ONE_FAILURE_OPENS)]);
    let plan = h.plan(&chat("m"));
    assert_eq!(plan.attempts.len(), 1, "b is planned: {:?}", plan.skipped);
    println!("another request's failure opens b's circuit for 5s after planning");
    h.permit("m", "b").unwrap().failed(Instant::now());

    let out = h.request_planned(chat("m"), Some(plan)).await;
    println!("client got {}: {}", out.status, out.body);

    assert_eq!(out.status, 503, "{}", out.body);
    assert!(out.body.contains("circuit open"), "{}", out.body);
    assert_eq!(out.header("retry-after"), Some("5"));
    assert_eq!(out.attempts, 0);
    assert!(h.upstream.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_server_error_fails_over_without_a_cool_down() {
    let h = Harness::new(SERVER, &[model("m", &["a", "b"], "")]);
    println!("a answers 500; b answers");
    h.upstream.script(A, Answer::json(500, &error_body("boom")));
    h.upstream.script(B, answer("from b"));

    let out = h.request(chat("m")).await;
    println!(
        "client got {} from {}: {}",
        out.status, out.provider, out.route
    );

    assert_eq!((out.status, out.provider.as_str()), (200, "b"));
    assert_eq!(out.route, "a/m-a=server_error, b/m-b=ok");
    assert_eq!(h.failovers("m", "a", "b", "server_error"), 1);
    assert_eq!(h.attempts_metric("a", "error"), 1);
    println!("a is not cooling down, but its failure counts toward its circuit");
    assert_eq!(h.availability("m", "a"), Availability::Ready);
    let a = h.state.stats.snapshot(&h.target("m", "a"), Instant::now());
    assert_eq!(a.consecutive_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_error_is_returned_without_failover() {
    let h = Harness::new(SERVER, &[model("m", &["a", "b"], "")]);
    println!("a answers 400 naming `temperature`; b must not be asked");
    h.upstream.script(
        A,
        Answer::json(
            400,
            &json!({"error": {"message": "temperature too high", "param": "temperature", "code": "invalid_value"}}),
        ),
    );

    let out = h.request(chat("m")).await;
    println!("client got {}: {}", out.status, out.body);

    assert_eq!(out.status, 400);
    let error: Value = serde_json::from_str(&out.body).unwrap();
    assert_eq!(error["error"]["param"], "temperature");
    assert_eq!(error["error"]["code"], "invalid_value");
    assert_eq!(out.attempts, 1);
    assert_eq!(out.provider, "a");
    assert_eq!(out.route, "a/m-a=rejected");
    assert!(h.upstream.calls_to(B).is_empty());
    assert_eq!(h.failovers("m", "a", "b", "rejected"), 0);
    println!("a answered: healthy, no cool-down, no failure counted");
    assert_eq!(h.availability("m", "a"), Availability::Ready);
    let a = h.state.stats.snapshot(&h.target("m", "a"), Instant::now());
    assert_eq!(a.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_breaks_before_its_first_event_fails_over() {
    let h = Harness::new(SERVER, &[model("m", &["a", "b"], "")]);
    println!("a sends stream headers, then its connection is reset; b streams");
    h.upstream
        .script(A, Answer::stream().after(ms(20)).then_reset());
    h.upstream.script(
        B,
        Answer::stream()
            .piece(ms(10), sse_delta("from b"))
            .piece(ms(10), SSE_DONE),
    );

    let out = h.request(streamed("m")).await;
    println!(
        "client got {} from {}: {}",
        out.status, out.provider, out.route
    );

    assert_eq!((out.status, out.provider.as_str()), (200, "b"));
    assert_eq!(out.attempts, 2);
    assert_eq!(out.route, "a/m-a=capacity, b/m-b=ok");
    assert!(out.body.contains("from b") && out.body.ends_with(SSE_DONE));
    assert_eq!(h.upstream.calls_to(A)[0].fate(), Fate::Failed);
    assert_eq!(h.upstream.calls_to(B)[0].at - h.started, ms(20));
    assert_eq!(h.failovers("m", "a", "b", "capacity"), 1);
    assert!(matches!(
        h.availability("m", "a"),
        Availability::CoolingDown { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stream_whose_first_event_is_an_error_fails_over() {
    let h = Harness::new(SERVER, &[model("m", &["a", "b"], "")]);
    println!("a's first stream event is an error event; b streams");
    h.upstream.script(
        A,
        Answer::stream().piece(ms(10), format!("data: {}\n\n", error_body("overloaded"))),
    );
    h.upstream.script(
        B,
        Answer::stream()
            .piece(ms(10), sse_delta("from b"))
            .piece(ms(10), SSE_DONE),
    );

    let out = h.request(streamed("m")).await;

    assert_eq!((out.status, out.provider.as_str()), (200, "b"));
    assert_eq!(out.route, "a/m-a=server_error, b/m-b=ok");
    assert!(
        !out.body.contains("overloaded"),
        "nothing of a reached the client"
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_cut_short_by_the_request_deadline_gets_no_verdict() {
    let server = "  request_timeout: 10s\n  first_byte_timeout: 6s\n";
    let h = Harness::new(server, &[model("m", &["a", "b"], "")]);
    println!("a answers 500 at 5s; b gets the 5s left of the request (its own timeout is 6s)");
    h.upstream
        .script(A, Answer::json(500, &error_body("boom")).after(secs(5)));
    h.upstream.script(B, answer("from b").after(secs(8)));

    let out = h.request(chat("m")).await;
    println!(
        "client got {} after {:?}: {}",
        out.status,
        h.elapsed(),
        out.route
    );

    assert_eq!(out.status, 504);
    assert_eq!(h.elapsed(), secs(10));
    assert_eq!(out.route, "a/m-a=server_error, b/m-b=timeout");
    println!("b was not given its own 6s: no cool-down, no failure, nothing left in flight");
    let b = h.state.stats.snapshot(&h.target("m", "b"), Instant::now());
    assert_eq!(b.availability, Availability::Ready);
    assert_eq!((b.window.capacity, b.window.errors), (0, 0));
    assert_eq!((b.consecutive_failures, b.inflight), (0, 0));
    println!("a's own server error still counts against a");
    let a = h.state.stats.snapshot(&h.target("m", "a"), Instant::now());
    assert_eq!(a.consecutive_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_that_loses_still_counts_as_an_attempt() {
    let h = Harness::new(
        SERVER,
        &[model("m", &["a", "b"], "    hedge_after: 200ms\n")],
    );
    println!("a's first event comes at 300ms, after the hedge on b started (200ms); b's at 1s");
    h.upstream.script(
        A,
        Answer::stream()
            .piece(ms(300), sse_delta("from a"))
            .piece(ms(10), SSE_DONE),
    );
    h.upstream.script(
        B,
        Answer::stream()
            .piece(secs(1), sse_delta("from b"))
            .piece(ms(10), SSE_DONE),
    );

    let out = h.request(streamed("m")).await;
    println!(
        "client got {} from {}: {}",
        out.provider, out.attempts, out.route
    );

    assert_eq!((out.status, out.provider.as_str()), (200, "a"));
    assert!(out.body.contains("from a") && !out.body.contains("from b"));
    assert_eq!(h.hedges("m", "primary"), 1);
    assert_eq!(h.upstream.calls_to(B)[0].fate(), Fate::Cancelled);
    println!("two upstream requests were sent: two attempts, the cancelled one in the route");
    assert_eq!(out.attempts, 2);
    assert_eq!(out.route, "b/m-b=cancelled, a/m-a=ok");
}

#[tokio::test(start_paused = true)]
async fn a_failover_to_a_target_that_refuses_is_not_counted() {
    let h = Harness::new(SERVER, &[model("m", &["a", "rock", "b"], "")]);
    println!("a answers 429; rock cannot express n = 2; b answers");
    h.upstream
        .script(A, Answer::json(429, &error_body("slow down")));
    h.upstream.script(B, answer("from b"));
    let mut body = chat("m");
    body["n"] = json!(2);

    let out = h.request(body).await;
    println!(
        "client got {} from {}: {}",
        out.status, out.provider, out.route
    );

    assert_eq!((out.status, out.provider.as_str()), (200, "b"));
    assert_eq!(out.attempts, 2);
    println!("the request went from a to b; rock never saw it");
    assert_eq!(h.failovers("m", "a", "rock", "capacity"), 0);
    assert_eq!(h.failovers("m", "a", "b", "capacity"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_rejected_with_a_400_does_not_discard_the_primarys_answer() {
    let h = Harness::new(
        SERVER,
        &[model("m", &["a", "b"], "    hedge_after: 200ms\n")],
    );
    println!("a's first event comes at 1s; the hedge on b (200ms) answers 400 at 300ms");
    h.upstream.script(
        A,
        Answer::stream()
            .piece(secs(1), sse_delta("from a"))
            .piece(ms(10), SSE_DONE),
    );
    h.upstream.script(
        B,
        Answer::json(
            400,
            &json!({"error": {"message": "context too long for b"}}),
        )
        .after(ms(100)),
    );

    let out = h.request(streamed("m")).await;
    println!(
        "client got {} from {}: {}",
        out.status, out.provider, out.route
    );

    assert_eq!((out.status, out.provider.as_str()), (200, "a"));
    assert!(out.body.contains("from a") && out.body.ends_with(SSE_DONE));
    assert_eq!(out.attempts, 2);
    assert_eq!(h.hedges("m", "primary"), 1);
    assert_eq!(h.upstream.calls_to(A)[0].fate(), Fate::Delivered);
}

#[tokio::test(start_paused = true)]
async fn a_hedged_stream_is_traced_as_two_sibling_attempts() {
    let (h, log) = Harness::traced(
        SERVER,
        &[model("m", &["a", "b"], "    hedge_after: 200ms\n")],
    );
    println!("a answers at 300ms, after the hedge on b started (200ms); b would at 1s");
    h.upstream.script(
        A,
        Answer::stream()
            .piece(ms(300), sse_delta("from a"))
            .piece(ms(10), SSE_DONE),
    );
    h.upstream.script(
        B,
        Answer::stream()
            .piece(secs(1), sse_delta("from b"))
            .piece(ms(10), SSE_DONE),
    );
    let out = h.request(streamed("m")).await;
    assert_eq!((out.status, out.provider.as_str()), (200, "a"));

    let spans = log.spans();
    for span in &spans {
        println!("{} {:?} {:?}", span.name, span.span_kind, span.attributes);
    }
    assert_eq!(spans.len(), 3, "one request span, two attempt spans");
    let server = spans
        .iter()
        .find(|s| s.span_kind == opentelemetry::trace::SpanKind::Server)
        .unwrap();
    let attempt = |target: &str| {
        spans
            .iter()
            .find(|s| attr(s, "switchyard.target").as_deref() == Some(target))
            .unwrap()
    };
    let (primary, hedge) = (attempt("a/m-a"), attempt("b/m-b"));
    for child in [primary, hedge] {
        assert_eq!(child.span_kind, opentelemetry::trace::SpanKind::Client);
        assert_eq!(child.parent_span_id, server.span_context.span_id());
        assert_eq!(
            child.span_context.trace_id(),
            server.span_context.trace_id()
        );
    }
    assert_eq!(
        attr(primary, "switchyard.attempt.role").as_deref(),
        Some("first")
    );
    assert_eq!(
        attr(primary, "switchyard.attempt.outcome").as_deref(),
        Some("ok")
    );
    assert!(attr(primary, "gen_ai.usage.output_tokens").is_some());
    assert_eq!(
        attr(hedge, "switchyard.attempt.role").as_deref(),
        Some("hedge")
    );
    assert_eq!(
        attr(hedge, "switchyard.attempt.outcome").as_deref(),
        Some("cancelled")
    );
    assert_eq!(attr(server, "switchyard.attempts").as_deref(), Some("2"));
    assert_eq!(attr(server, "switchyard.provider").as_deref(), Some("a"));
    println!("each upstream was sent its own attempt's traceparent");
    for (host, span) in [(A, primary), (B, hedge)] {
        let sent = h.upstream.calls_to(host)[0].traceparent.clone().unwrap();
        assert!(
            sent.contains(&span.span_context.span_id().to_string()),
            "{sent}"
        );
    }
}
