//! The admin listener: metrics, health, readiness, reload, the routing table explained, spend
//! and the audit trail.
//! Separate from the client listener so it is never exposed with it.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::config::{Policy, Price};
use crate::providers::capabilities;
use crate::reload;
use crate::routing::score::LatencyBasis;
use crate::routing::{explain, rank, RankedTarget, RequestShape, SkipReason};
use crate::state::AppState;

pub struct AdminApp {
    state: Arc<AppState>,
}

impl AdminApp {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let header = session.req_header();
        let method = header.method.as_str().to_owned();
        let path = header.uri.path().to_owned();
        let query = header.uri.query().unwrap_or("").to_owned();
        let authorization = header
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Admin requests carry no body worth reading; drain it so keep-alive stays clean.
        let _ = session.drain_request_body().await;
        let policy = self.state.policy();
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => {
                refresh_target_gauges(&self.state, &policy);
                text(
                    200,
                    "text/plain; version=0.0.4",
                    self.state.metrics.render(),
                )
            }
            ("GET", "/healthz") => json_response(200, &json!({"status": "ok"})),
            ("GET", "/readyz") => {
                let degraded = degraded(&credentials(&self.state, &policy, Instant::now()));
                readiness(&policy, ledger_status(&self.state).await, degraded)
            }
            (_, "/admin/reload" | "/admin/routes" | "/admin/spend" | "/admin/requests")
                if !authorized(&policy, authorization.as_deref()) =>
            {
                json_response(
                    401,
                    &json!({"status": "error", "error": "missing or wrong admin token"}),
                )
            }
            ("POST", "/admin/reload") => match reload::reload_now(&self.state) {
                Ok(version) => json_response(200, &json!({"status": "ok", "version": version})),
                Err(error) => json_response(422, &json!({"status": "error", "error": error})),
            },
            ("GET", "/admin/routes") => json_response(200, &routes(&self.state, &policy)),
            ("GET", "/admin/spend") => spend(&self.state, &policy, &query).await,
            ("GET", "/admin/requests") => requests(&self.state, &query).await,
            _ => json_response(
                404,
                &json!({"status": "error", "error": format!("no admin endpoint {method} {path}")}),
            ),
        }
    }
}

/// Per-target gauges are computed from the live figures when scraped, for the targets of
/// the active policy only (a reload's removed targets disappear).
fn refresh_target_gauges(state: &AppState, policy: &Policy) {
    let metrics = &state.metrics;
    for gauge in [
        &metrics.target_headroom,
        &metrics.target_ttft,
        &metrics.target_output_token_seconds,
    ] {
        gauge.reset();
    }
    metrics.target_circuit_open.reset();
    let now = Instant::now();
    for model in policy.models.values() {
        for target in &model.targets {
            let live = state.stats.snapshot(target, now);
            let provider = target.provider.name.as_str();
            let labels = [provider, model.name.as_str(), target.id.0.as_str()];
            let open = !matches!(live.circuit, crate::routing::circuit::CircuitState::Closed);
            metrics
                .target_circuit_open
                .with_label_values(&[provider, model.name.as_str()])
                .set(i64::from(open));
            if let Some(headroom) = live.headroom {
                metrics
                    .target_headroom
                    .with_label_values(&labels)
                    .set(headroom);
            }
            if let Some(ttft) = live.streams.map(|s| s.ttft_ms) {
                metrics
                    .target_ttft
                    .with_label_values(&labels)
                    .set(ttft / 1000.0);
            }
            if let Some(per_token) = live.streams.and_then(|s| s.ms_per_output_token) {
                metrics
                    .target_output_token_seconds
                    .with_label_values(&labels)
                    .set(per_token / 1000.0);
            }
        }
    }
}

fn authorized(policy: &Policy, authorization: Option<&str>) -> bool {
    let Some(expected) = &policy.server.admin_token else {
        return true;
    };
    let presented = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .unwrap_or("");
    presented
        .as_bytes()
        .ct_eq(expected.expose().as_bytes())
        .into()
}

fn text(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_default()
}

fn json_response(status: u16, value: &Value) -> Response<Vec<u8>> {
    text(
        status,
        "application/json",
        serde_json::to_vec_pretty(value).unwrap_or_default(),
    )
}

/// Providers whose background-refreshed credentials are in trouble: the last refresh
/// failed (the last good credentials are used until they expire), or there are none.
fn degraded(credentials: &[Value]) -> Vec<Value> {
    credentials
        .iter()
        .filter(|status| !status["last_error"].is_null() || status["valid_for_s"].is_null())
        .map(|status| {
            let reason = match (&status["last_error"], &status["valid_for_s"]) {
                (Value::Null, _) => "no credentials resolved yet".to_owned(),
                (error, Value::Null) => format!("credentials expired or missing; last refresh error: {}", error.as_str().unwrap_or_default()),
                (error, _) => format!("credential refresh failing, last good credentials still in use; last error: {}", error.as_str().unwrap_or_default()),
            };
            json!({
                "provider": status["provider"],
                "credential": status["credential"],
                "valid_for_s": status["valid_for_s"],
                "reason": reason,
            })
        })
        .collect()
}

/// Ready when the policy is loaded and at least one model has a usable target; the body
/// says which providers are disabled and why, and which are degraded (credentials failing
/// to refresh; they do not make the proxy unready while another target can serve).
fn readiness(policy: &Policy, ledger: (bool, Value), degraded: Vec<Value>) -> Response<Vec<u8>> {
    let (ledger_ok, ledger) = ledger;
    let disabled: Vec<Value> = policy
        .providers
        .values()
        .filter_map(|p| {
            p.disabled
                .as_ref()
                .map(|reason| json!({"provider": p.name, "reason": reason}))
        })
        .collect();
    let usable = policy
        .models
        .values()
        .any(|m| m.targets.iter().any(|t| t.disabled_reason().is_none()));
    let reason = match (usable, ledger_ok) {
        (false, _) => json!("no model has a usable target"),
        (true, false) => json!("the ledger is not reachable"),
        (true, true) => Value::Null,
    };
    let ready = usable && ledger_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "policy_version": policy.version,
        "ledger": ledger,
        "disabled_providers": disabled,
        "degraded_providers": degraded,
        "reason": reason,
    });
    json_response(if ready { 200 } else { 503 }, &body)
}

/// Whether the ledger answers (pinged now), with its backend and buffer, for `/readyz`.
async fn ledger_status(state: &AppState) -> (bool, Value) {
    let Some(ledger) = &state.spend.ledger else {
        return (true, json!({"status": "not_configured"}));
    };
    let reachable = ledger.ping(std::time::Duration::from_secs(1)).await.is_ok();
    let status = json!({
        "backend": ledger.store().backend(),
        "reachable": reachable,
        "buffered_entries": ledger.buffered(),
    });
    (reachable, status)
}

/// `GET /admin/spend[?team=T][&period=current]`.
async fn spend(state: &AppState, policy: &Policy, query: &str) -> Response<Vec<u8>> {
    let mut team = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("team", value)) => team = Some(value.to_owned()),
            Some(("period", "current")) | None => {}
            Some(("period", other)) => {
                return json_response(
                    400,
                    &json!({"status": "error", "error": format!("unknown period `{other}`: only `current` is supported")}),
                )
            }
            Some(_) => {}
        }
    }
    if let Some(name) = &team {
        if !policy.teams.contains_key(name) {
            return json_response(
                404,
                &json!({"status": "error", "error": format!("no team `{name}` in the policy")}),
            );
        }
    }
    match crate::metering::spend_report::admin_spend(&state.spend, policy, team.as_deref()).await {
        Ok(body) => json_response(200, &body),
        Err(error) => json_response(503, &json!({"status": "error", "error": error.to_string()})),
    }
}

/// `GET /admin/requests`: a page of the audit trail (docs/http-api.md).
async fn requests(state: &AppState, query: &str) -> Response<Vec<u8>> {
    use crate::metering::audit::admin;
    let query = match admin::parse_query(query) {
        Ok(query) => query,
        Err(message) => {
            return json_response(400, &json!({"status": "error", "error": message}));
        }
    };
    let Some(ledger) = &state.spend.ledger else {
        return json_response(
            503,
            &json!({"status": "error", "error": "no ledger is configured"}),
        );
    };
    match admin::page(ledger, query).await {
        Ok(page) => match serde_json::to_value(&page) {
            Ok(body) => json_response(200, &body),
            Err(error) => {
                json_response(500, &json!({"status": "error", "error": error.to_string()}))
            }
        },
        Err(error) => json_response(503, &json!({"status": "error", "error": error.to_string()})),
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// The state of credentials refreshed in the background (Azure Entra tokens), per provider.
fn credentials(state: &AppState, policy: &Policy, now: Instant) -> Vec<Value> {
    policy
        .providers
        .values()
        .filter_map(|provider| {
            provider
                .kind
                .unit()
                .credential_status(&provider.name, &state.providers, now)
        })
        .collect()
}

/// The request size `/admin/routes` ranks for: a typical chat turn.
const EXPLAIN_SHAPE: RequestShape = RequestShape {
    prompt_tokens: 1000,
    max_output_tokens: None,
};

/// `GET /admin/routes`: the active policy and, per model, its targets in the order the
/// router would try them now (for a typical request), with every figure behind the order
/// and the reason any target is skipped. Near-equal leaders are spread per request, so the
/// live order may swap them.
fn routes(state: &AppState, policy: &Policy) -> Value {
    let now = Instant::now();
    let models: Vec<Value> = policy
        .models
        .values()
        .map(|model| {
            let ranked = rank(model, None, &state.stats, &EXPLAIN_SHAPE, now, None);
            let targets: Vec<Value> = ranked
                .iter()
                .enumerate()
                .map(|(position, r)| {
                    let mut view = target_view(r, position);
                    view["decision"] = json!(explain::decision(model.strategy, r, position));
                    view
                })
                .collect();
            json!({
                "name": model.name,
                "strategy": model.strategy.label(),
                "max_ttft_ms": model.routing.max_ttft.map(|d| d.as_millis() as u64),
                "fallbacks": model.fallbacks,
                "resume_streams": model.resume_streams,
                "targets": targets,
            })
        })
        .collect();
    let last_error = state
        .last_reload_error()
        .map(|e| json!({"message": e.message, "at": rfc3339(e.at)}));
    json!({
        "version": policy.version,
        "loaded_at": rfc3339(policy.loaded_at),
        "credentials": credentials(state, policy, now),
        "source": policy.source.display().to_string(),
        "last_error": last_error,
        "warnings": policy.warnings,
        "ranked_for": {"prompt_tokens": EXPLAIN_SHAPE.prompt_tokens, "output_tokens": EXPLAIN_SHAPE.expected_output_tokens()},
        "models": models,
    })
}

fn target_view(ranked: &RankedTarget, position: usize) -> Value {
    let target = &ranked.target;
    let live = &ranked.snapshot;
    let (input, output) = target.price.per_million();
    let retry_in = ranked.skipped.as_ref().and_then(SkipReason::retry_in);
    let figures = &ranked.figures;
    json!({
        "id": target.id.0,
        "provider": target.provider.name,
        "upstream_model": target.upstream_model,
        "rank": if ranked.skipped.is_none() { json!(position + 1) } else { Value::Null },
        "skipped": ranked.skipped.as_ref().map(ToString::to_string),
        "usable_again_in_ms": retry_in.map(|d| d.as_millis() as u64),
        "circuit": live.circuit.label(),
        "consecutive_failures": live.consecutive_failures,
        "score": ranked.score,
        "ttft_ms": live.streams.map(|s| s.ttft_ms),
        "ms_per_output_token": live.streams.and_then(|s| s.ms_per_output_token),
        "streams_measured": live.streams.map_or(0, |s| s.samples()),
        "expected_ttft_ms": ranked.figures.expected_ttft_ms,
        "expected_latency_ms": ranked.figures.expected_latency_ms,
        "expected_cost_usd": ranked.figures.expected_cost_usd,
        "latency_basis": figures.latency_basis.label(),
        "measured": {
            "ttft": figures.ttft_measured,
            "per_token": figures.per_token_measured,
            "latency": figures.latency_basis != LatencyBasis::Prior,
            "headroom": live.headroom.is_some(),
        },
        "price_source": target.price_source.to_string(),
        "prior_latency_ms": figures.prior_latency_ms,
        "noise_ms": figures.noise_ms,
        "standard_error_ms": figures.standard_error_ms,
        "whole_answer_ms": live.whole.map(|w| w.average_ms),
        "whole_answers_measured": live.whole.map_or(0, |w| w.samples()),
        "whole_answer_fit": live.whole.and_then(|w| w.fit).map(|f| json!({"base_ms": f.base_ms, "ms_per_token": f.ms_per_token})),
        "figures_fresh": live.fresh,
        "inflight": live.inflight,
        "requests_last_minute": live.window.started,
        "error_rate": live.window.error_rate(),
        "capacity_error_rate": live.window.capacity_error_rate(),
        "provisioned_full_last_minute": live.window.provisioned_full,
        "headroom": live.headroom,
        "rate_limits": live.rate_limits.map(|r| json!({
            "limit_requests": r.limit_requests,
            "remaining_requests": r.remaining_requests,
            "limit_tokens": r.limit_tokens,
            "remaining_tokens": r.remaining_tokens,
            "utilization_pct": r.utilization_pct,
        })),
        "limits": target.limits.map(|l| json!({"rpm": l.rpm, "tpm": l.tpm})),
        "tier": target.tier.map(|tier| tier.label()),
        // Conversations replaying signed or redacted thinking skip targets that cannot.
        "replays_thinking": capabilities::replays_thinking(target),
        "price": if target.price == Price::Free { json!("free") } else { json!({"input": input, "output": output}) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_providers_are_those_whose_refresh_fails_or_that_have_no_credentials() {
        let statuses = [
            json!({"provider": "ok", "credential": "assume_role", "valid_for_s": 600, "last_error": null}),
            json!({"provider": "stale", "credential": "assume_role", "valid_for_s": 30, "last_error": "STS is failing"}),
            json!({"provider": "gone", "credential": "managed_identity", "valid_for_s": null, "last_error": "refused"}),
            json!({"provider": "new", "credential": "AWS default chain", "valid_for_s": null, "last_error": null}),
        ];
        let degraded = degraded(&statuses);
        let names: Vec<&str> = degraded
            .iter()
            .filter_map(|d| d["provider"].as_str())
            .collect();
        assert_eq!(names, ["stale", "gone", "new"]);
        let reason = |i: usize| {
            degraded[i]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert!(
            reason(0).contains("last good credentials still in use")
                && reason(0).contains("STS is failing")
        );
        assert!(reason(1).starts_with("credentials expired or missing"));
        assert_eq!(reason(2), "no credentials resolved yet");
        assert_eq!(degraded[0]["valid_for_s"], 30);
    }
}
