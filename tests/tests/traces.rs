//! OpenTelemetry traces end to end: the real binary exports to an in-process OTLP receiver
//! (gRPC and HTTP/protobuf) while the simulators make a request fail over; the client's
//! `traceparent` is continued, every upstream gets the attempt's, attributes follow the GenAI
//! conventions and carry no key or prompt text; and a collector that hangs neither slows nor
//! fails requests (its spans are dropped and counted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use loadtest::{
    AnthropicSim, AnthropicSimConfig, AzureDeployment, AzureSim, AzureSimConfig, BedrockSim,
    BedrockSimConfig, CapturesRequests, Fault,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{json, Value};
use switchyard_e2e::otlp::{render_tree, BlackHole, OtlpReceiver, ReceivedSpan};
use switchyard_e2e::{
    get, policy, post, post_stream_with, start_sim, Proxy, Sims, ALPHA_KEY, UPSTREAM_KEY_A,
    UPSTREAM_KEY_B,
};

/// The client's trace: its id and the client's own span id.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const PROMPT: &str = "a prompt the traces must never contain";

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{CLIENT_SPAN}-01")
}

/// `telemetry:` pointing at `endpoint` over `protocol`.
fn telemetry(endpoint: &str, protocol: &str, extra: &str) -> String {
    format!("telemetry:\n  otlp_endpoint: \"{endpoint}\"\n  otlp_protocol: {protocol}\n{extra}")
}

fn chat(stream: bool) -> Value {
    let mut body = json!({"model": "chat", "messages": [{"role": "user", "content": PROMPT}]});
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// The request's SERVER span and its CLIENT children in start order.
fn split(spans: &[ReceivedSpan]) -> (&ReceivedSpan, Vec<&ReceivedSpan>) {
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.kind() == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), 1, "one server span:\n{}", render_tree(spans));
    let server = servers[0];
    let mut attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.kind() == SpanKind::Client)
        .collect();
    attempts.sort_by_key(|s| s.span.start_time_unix_nano);
    (server, attempts)
}

/// No span attribute holds a key, a credential or the prompt.
fn assert_nothing_secret(spans: &[ReceivedSpan], secrets: &[&str]) {
    for span in spans {
        for text in span.attribute_texts() {
            for secret in secrets.iter().chain(&[PROMPT, "Bearer"]) {
                assert!(
                    !text.contains(secret),
                    "{secret:?} in {text:?} of {}",
                    span.span.name
                );
            }
        }
    }
}

/// The attempt span ids each upstream got as `traceparent`, checking the trace id.
fn sent_span_ids(captured: &[loadtest::CapturedRequest], trace_id: &str) -> Vec<String> {
    captured
        .iter()
        .map(|request| {
            let header = request
                .traceparent
                .as_deref()
                .unwrap_or_else(|| panic!("no traceparent sent to {}", request.path));
            let parts: Vec<&str> = header.split('-').collect();
            assert_eq!(parts.len(), 4, "{header}");
            assert_eq!(
                parts[1], trace_id,
                "the upstream's trace is the client's: {header}"
            );
            parts[2].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_failed_over_request_is_one_server_span_with_two_attempt_children_over_grpc() {
    let receiver = OtlpReceiver::grpc().await;
    let sims = Sims::start().await;
    let routes = format!(
        "{}{}",
        sims.routes(""),
        telemetry(&receiver.endpoint(), "grpc", "")
    );
    let proxy = Proxy::start(&routes).await;

    println!("sim-a answers 500; the client sends its own traceparent");
    sims.a.push_faults([Fault::Status(500)]);
    let parent = traceparent(TRACE_ID);
    let reply = post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        chat(false).to_string(),
        &[("traceparent", &parent), ("tracestate", "client=1")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("sim-b"));

    let spans = receiver.trace(TRACE_ID, 3).await;
    println!("{}", render_tree(&spans));
    assert_eq!(
        spans.len(),
        3,
        "server + two attempts:\n{}",
        render_tree(&spans)
    );
    let (server, attempts) = split(&spans);

    println!("the server span continues the client's trace");
    assert_eq!(server.parent_id(), CLIENT_SPAN);
    assert_eq!(server.service_name, "switchyard");
    assert_eq!(server.span.name, "POST /v1/chat/completions");
    assert_eq!(server.str_attr("gen_ai.operation.name"), Some("chat"));
    assert_eq!(server.str_attr("gen_ai.request.model"), Some("chat"));
    assert_eq!(server.str_attr("gen_ai.response.model"), Some("up-b"));
    assert_eq!(server.str_attr("gen_ai.provider.name"), Some("openai"));
    assert_eq!(server.str_attr("switchyard.provider"), Some("sim-b"));
    assert_eq!(server.str_attr("switchyard.team"), Some("alpha"));
    assert_eq!(server.str_attr("switchyard.api"), Some("chat"));
    assert_eq!(server.int_attr("switchyard.attempts"), Some(2));
    assert_eq!(server.int_attr("http.response.status_code"), Some(200));
    let usage = reply.json()["usage"].clone();
    assert_eq!(
        server.int_attr("gen_ai.usage.input_tokens"),
        usage["prompt_tokens"].as_i64()
    );
    assert_eq!(
        server.int_attr("gen_ai.usage.output_tokens"),
        usage["completion_tokens"].as_i64()
    );
    let cost: f64 = reply
        .header("x-switchyard-cost-usd")
        .unwrap()
        .parse()
        .unwrap();
    let traced_cost = server.float_attr("switchyard.cost_usd").unwrap();
    assert!((traced_cost - cost).abs() < 1e-9, "{traced_cost} vs {cost}");
    assert!(!server.is_error());

    println!("two sibling attempt spans: sim-a failed, sim-b answered");
    assert_eq!(attempts.len(), 2);
    for attempt in &attempts {
        assert_eq!(
            attempt.parent_id(),
            server.span_id(),
            "a child of the request"
        );
        assert_eq!(attempt.str_attr("gen_ai.operation.name"), Some("chat"));
        assert_eq!(attempt.str_attr("switchyard.model"), Some("chat"));
    }
    let (failed, served) = (attempts[0], attempts[1]);
    assert_eq!(failed.span.name, "chat up-a");
    assert_eq!(failed.str_attr("switchyard.target"), Some("sim-a/up-a"));
    assert_eq!(
        failed.str_attr("switchyard.attempt.outcome"),
        Some("server_error")
    );
    assert_eq!(failed.str_attr("switchyard.attempt.role"), Some("first"));
    assert!(failed.is_error());
    assert_eq!(served.str_attr("switchyard.target"), Some("sim-b/up-b"));
    assert_eq!(served.str_attr("switchyard.attempt.outcome"), Some("ok"));
    assert_eq!(served.str_attr("switchyard.attempt.role"), Some("failover"));
    assert_eq!(served.str_attr("gen_ai.request.model"), Some("up-b"));
    assert_eq!(served.str_attr("gen_ai.provider.name"), Some("openai"));
    assert_eq!(
        served.int_attr("gen_ai.usage.output_tokens"),
        usage["completion_tokens"].as_i64()
    );
    assert!(!served.is_error());
    assert_nothing_secret(&spans, &[ALPHA_KEY, UPSTREAM_KEY_A, UPSTREAM_KEY_B]);

    println!("each upstream got its own attempt span as traceparent, in the client's trace");
    assert_eq!(
        sent_span_ids(&sims.a.captured(), TRACE_ID),
        [failed.span_id()]
    );
    assert_eq!(
        sent_span_ids(&sims.b.captured(), TRACE_ID),
        [served.span_id()]
    );
    let tracestate = sims.b.captured()[0].tracestate.clone();
    assert_eq!(
        tracestate.as_deref(),
        Some("client=1"),
        "tracestate is carried on"
    );
}

#[tokio::test]
async fn a_stream_failed_over_to_bedrock_is_traced_over_http_and_stays_signed() {
    let receiver = OtlpReceiver::http().await;
    let sim_a = start_sim("sim-a", UPSTREAM_KEY_A).await;
    let bedrock = BedrockSim::start(BedrockSimConfig::new("bedrock"))
        .await
        .expect("starting the Bedrock simulator");
    let c = bedrock.config();
    let providers = format!(
        "  sim-a: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n  aws: {{ kind: bedrock, region: {}, endpoint: \"{}\", access_key_id: {}, secret_access_key: \"{}\" }}\n",
        sim_a.base_url(),
        c.region,
        bedrock.endpoint(),
        c.access_key_id,
        c.secret_access_key
    );
    let models = "  chat:\n    targets:\n      - { provider: sim-a, model: up-a, price: { input: 1.0, output: 2.0 } }\n      - { provider: aws, model: \"amazon.nova-lite-v1:0\", price: { input: 1.0, output: 2.0 } }\n";
    let routes = format!(
        "{}{}",
        policy("", &providers, models, "[chat]"),
        telemetry(&receiver.endpoint(), "http", "  sample_ratio: 0\n")
    );
    let proxy = Proxy::start(&routes).await;

    println!("sim-a answers 429; the stream goes to Bedrock, signed with SigV4 plus a traceparent");
    sim_a.push_faults([Fault::RateLimit {
        retry_after_ms: 1000,
    }]);
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent = traceparent(trace_id);
    let reply = post_stream_with(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &chat(true),
        &[("traceparent", &parent)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("aws"));
    assert!(
        reply.events().iter().any(|e| e == "[DONE]"),
        "{}",
        reply.body
    );
    let usage = reply
        .events()
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .find(|chunk| chunk["usage"].is_object())
        .expect("a usage chunk")["usage"]
        .clone();

    let spans = receiver.trace(trace_id, 3).await;
    println!("{}", render_tree(&spans));
    assert_eq!(
        spans.len(),
        3,
        "a sampled client parent is followed even at sample_ratio 0"
    );
    let (server, attempts) = split(&spans);
    assert_eq!(server.parent_id(), CLIENT_SPAN);
    assert_eq!(server.str_attr("gen_ai.provider.name"), Some("aws.bedrock"));
    assert_eq!(server.str_attr("switchyard.status"), Some("200"));
    let (limited, streamed) = (attempts[0], attempts[1]);
    assert_eq!(
        limited.str_attr("switchyard.attempt.outcome"),
        Some("capacity")
    );
    assert_eq!(streamed.str_attr("switchyard.attempt.outcome"), Some("ok"));
    assert_eq!(
        streamed.str_attr("gen_ai.provider.name"),
        Some("aws.bedrock")
    );
    assert!(streamed.attr("gen_ai.request.stream").is_some());
    assert_eq!(
        streamed.int_attr("gen_ai.usage.output_tokens"),
        usage["completion_tokens"].as_i64(),
        "the stream's span ends with the stream, tokens counted"
    );
    assert_eq!(
        server.int_attr("gen_ai.usage.input_tokens"),
        usage["prompt_tokens"].as_i64()
    );
    assert_nothing_secret(
        &spans,
        &[ALPHA_KEY, UPSTREAM_KEY_A, c.secret_access_key.as_str()],
    );
    assert_eq!(
        sent_span_ids(&bedrock.captured(), trace_id),
        [streamed.span_id()],
        "Bedrock verified the signature and got the traceparent"
    );

    println!("without a client parent, sample_ratio 0 records nothing");
    let before = receiver.spans().len();
    let plain = post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        chat(false).to_string(),
        &[],
    )
    .await;
    assert_eq!(plain.status, 200, "{}", plain.body);

    println!("a last sampled request, then SIGTERM: its spans are exported before the exit");
    let last_trace = "5b8efff798038103d269b633813fc60c";
    let last = post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        chat(false).to_string(),
        &[("traceparent", &traceparent(last_trace))],
    )
    .await;
    assert_eq!(last.status, 200, "{}", last.body);
    let mut proxy = proxy;
    proxy.signal("TERM");
    let status = proxy.wait_exit(std::time::Duration::from_secs(20)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_eq!(receiver.trace(last_trace, 2).await.len(), 2);
    assert_eq!(
        receiver.spans().len(),
        before + 2,
        "the unsampled request exported nothing"
    );
}

#[tokio::test]
async fn a_collector_that_hangs_neither_slows_nor_fails_requests() {
    requests_past_a_hanging_collector("http").await;
}

#[tokio::test]
async fn a_grpc_collector_that_hangs_neither_slows_nor_fails_requests() {
    requests_past_a_hanging_collector("grpc").await;
}

/// 30 requests through a proxy whose collector (over `protocol`) accepts connections and
/// never answers: every one is answered, and the spans with nowhere to go are counted.
async fn requests_past_a_hanging_collector(protocol: &str) {
    let hole = BlackHole::start().await;
    let sims = Sims::start().await;
    let routes = format!(
        "{}{}",
        sims.routes(""),
        telemetry(&hole.endpoint(), protocol, "  max_queue_spans: 4\n")
    );
    let proxy = Proxy::start(&routes).await;

    println!(
        "the {protocol} collector accepts and never answers; 30 requests go through all the same"
    );
    let url = proxy.url("/chat/completions");
    for n in 0..30 {
        let trace_id = format!("{n:032x}");
        let reply = post(
            &url,
            Some(ALPHA_KEY),
            chat(false).to_string(),
            &[("traceparent", &traceparent(&trace_id))],
        )
        .await;
        assert_eq!(reply.status, 200, "request {n}: {}", reply.body);
    }
    let metrics = get(&proxy.admin("/metrics"), None).await.body;
    let dropped = metric(
        &metrics,
        "switchyard_trace_spans_dropped_total{reason=\"queue_full\"}",
    );
    println!("spans dropped because the queue was full: {dropped}");
    // 60 spans: one batch of 4 waits on the collector, 4 more wait in the queue; the rest
    // (52 on a quick run) have nowhere to go. Half of them is the bound a slow run keeps.
    assert!(dropped >= 30.0, "{metrics}");
    assert_eq!(
        metric(&metrics, "switchyard_trace_spans_exported_total"),
        0.0
    );
}

/// The value of the sample `series` (name and labels exactly as exposed), 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_resumed_stream_is_traced_as_a_broken_leg_and_its_continuation() {
    let receiver = OtlpReceiver::grpc().await;
    let sims = Sims::start().await;
    let providers = format!(
        "  sim-a: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n  sim-b: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_B} }}\n",
        sims.a.base_url(),
        sims.b.base_url()
    );
    let models = "  chat:\n    resume_streams: true\n    targets:\n      - { provider: sim-a, model: up-a, price: { input: 1.0, output: 2.0 } }\n      - { provider: sim-b, model: up-b, price: { input: 1.0, output: 2.0 } }\n";
    let routes = format!(
        "{}{}",
        policy("", &providers, models, "[chat]"),
        telemetry(&receiver.endpoint(), "grpc", "")
    );
    let proxy = Proxy::start(&routes).await;

    println!("sim-a's stream is cut after 3 chunks; it goes on at sim-b");
    sims.a
        .push_faults([Fault::DropMidStream { after_chunks: 3 }]);
    let trace_id = "7d1f0b6c2a9e4f3b8c5d6e7f8091a2b3";
    let reply = post_stream_with(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        &chat(true),
        &[("traceparent", &traceparent(trace_id))],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.events().iter().any(|e| e == "[DONE]"),
        "{}",
        reply.body
    );

    let spans = receiver.trace(trace_id, 3).await;
    println!("{}", render_tree(&spans));
    assert_eq!(spans.len(), 3, "{}", render_tree(&spans));
    let (server, attempts) = split(&spans);
    let (broken, resumed) = (attempts[0], attempts[1]);
    for leg in [broken, resumed] {
        assert_eq!(leg.parent_id(), server.span_id(), "the legs are siblings");
    }
    assert_eq!(broken.str_attr("switchyard.target"), Some("sim-a/up-a"));
    assert_eq!(
        broken.str_attr("switchyard.attempt.outcome"),
        Some("broken")
    );
    assert!(broken.is_error());
    assert!(
        broken.int_attr("gen_ai.usage.output_tokens").unwrap_or(0) > 0,
        "what the broken leg delivered is counted"
    );
    assert_eq!(resumed.str_attr("switchyard.target"), Some("sim-b/up-b"));
    assert_eq!(resumed.str_attr("switchyard.attempt.role"), Some("resume"));
    assert_eq!(resumed.str_attr("switchyard.attempt.outcome"), Some("ok"));
    assert_eq!(server.int_attr("switchyard.attempts"), Some(2));
    assert_eq!(server.str_attr("switchyard.provider"), Some("sim-b"));
    assert!(!server.is_error(), "the client got a whole answer");
    assert_eq!(
        sent_span_ids(&sims.b.captured(), trace_id),
        [resumed.span_id()],
        "the continuation carried its own leg's traceparent"
    );
}

#[tokio::test]
async fn export_is_off_unless_configured_and_the_standard_variables_turn_it_on() {
    let receiver = OtlpReceiver::http().await;
    let sims = Sims::start().await;
    let trace_id = "1234567890abcdef1234567890abcdef";
    let ask = |proxy: &Proxy| {
        let url = proxy.url("/chat/completions");
        async move {
            let parent = traceparent(trace_id);
            let reply = post(
                &url,
                Some(ALPHA_KEY),
                chat(false).to_string(),
                &[("traceparent", &parent)],
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    };

    println!("no telemetry section and no OTEL_ variables: no trace, no traceparent upstream");
    let off = Proxy::start(&sims.routes("")).await;
    ask(&off).await;
    let sent = sims.a.captured();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].traceparent, None, "tracing off sends nothing");
    drop(off);

    println!("OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME turn it on (OTLP/HTTP by default)");
    let endpoint = receiver.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "switchyard-e2e"),
    ];
    let on = Proxy::start_with_env(&sims.routes(""), &env).await;
    ask(&on).await;
    let spans = receiver.trace(trace_id, 2).await;
    println!("{}", render_tree(&spans));
    assert_eq!(spans.len(), 2, "the request and its one attempt");
    assert!(spans.iter().all(|s| s.service_name == "switchyard-e2e"));
    let captured = sims.a.captured();
    let attempt = spans.iter().find(|s| s.kind() == SpanKind::Client).unwrap();
    assert_eq!(sent_span_ids(&captured[1..], trace_id), [attempt.span_id()]);
}

#[tokio::test]
async fn azure_and_anthropic_upstreams_get_the_attempts_traceparent() {
    let receiver = OtlpReceiver::http().await;
    let azure_key = "azure-trace-key-7c1d";
    let azure = AzureSim::start(AzureSimConfig {
        name: "azure".to_owned(),
        api_key: Some(azure_key.to_owned()),
        deployments: vec![AzureDeployment::new("gpt4o", "gpt-4o-2024-08-06")],
        ..AzureSimConfig::default()
    })
    .await
    .expect("starting the Azure simulator");
    let anthropic = AnthropicSim::start(AnthropicSimConfig::new("anthropic"))
        .await
        .expect("starting the Anthropic simulator");
    let anthropic_key = anthropic.config().api_key.clone();
    let providers = format!(
        "  az: {{ kind: azure, endpoint: \"{}\", api_key: {azure_key}, api_version: 2024-10-21 }}\n  ant: {{ kind: anthropic, base_url: \"{}\", api_key: \"{anthropic_key}\" }}\n",
        azure.endpoint(),
        anthropic.base_url()
    );
    let models = "  chat:\n    targets:\n      - { provider: az, deployment: gpt4o, price: { input: 1.0, output: 2.0 } }\n      - { provider: ant, model: claude-haiku-4-5-20251001, price: { input: 1.0, output: 2.0 } }\n";
    let routes = format!(
        "{}{}",
        policy("", &providers, models, "[chat]"),
        telemetry(&receiver.endpoint(), "http", "")
    );
    let proxy = Proxy::start(&routes).await;

    println!("Azure answers 429; Anthropic answers");
    azure.push_faults(
        "gpt4o",
        [Fault::RateLimit {
            retry_after_ms: 1000,
        }],
    );
    let trace_id = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let reply = post(
        &proxy.url("/chat/completions"),
        Some(ALPHA_KEY),
        chat(false).to_string(),
        &[("traceparent", &traceparent(trace_id))],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-switchyard-provider"), Some("ant"));

    let spans = receiver.trace(trace_id, 3).await;
    println!("{}", render_tree(&spans));
    let (server, attempts) = split(&spans);
    assert_eq!(attempts.len(), 2);
    let (on_azure, on_anthropic) = (attempts[0], attempts[1]);
    assert_eq!(
        on_azure.str_attr("gen_ai.provider.name"),
        Some("azure.ai.openai")
    );
    assert_eq!(on_azure.str_attr("gen_ai.request.model"), Some("gpt4o"));
    assert_eq!(
        on_azure.str_attr("switchyard.attempt.outcome"),
        Some("capacity")
    );
    assert_eq!(
        on_anthropic.str_attr("gen_ai.provider.name"),
        Some("anthropic")
    );
    assert_eq!(
        on_anthropic.str_attr("switchyard.attempt.outcome"),
        Some("ok")
    );
    assert_eq!(server.str_attr("gen_ai.provider.name"), Some("anthropic"));
    assert_nothing_secret(&spans, &[ALPHA_KEY, azure_key, anthropic_key.as_str()]);
    assert_eq!(
        sent_span_ids(&azure.captured(), trace_id),
        [on_azure.span_id()]
    );
    assert_eq!(
        sent_span_ids(&anthropic.captured(), trace_id),
        [on_anthropic.span_id()]
    );
}
