//! The admin listener: metrics, health, readiness, reload and the routing table explained.
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

use crate::config::{Policy, Price, ProviderKind};
use crate::reload;
use crate::routing::plan::skip_reason;
use crate::routing::SkipReason;
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
        let authorization = header
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Admin requests carry no body worth reading; drain it so keep-alive stays clean.
        let _ = session.drain_request_body().await;
        let policy = self.state.policy();
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => text(
                200,
                "text/plain; version=0.0.4",
                self.state.metrics.render(),
            ),
            ("GET", "/healthz") => json_response(200, &json!({"status": "ok"})),
            ("GET", "/readyz") => readiness(&policy),
            (_, "/admin/reload" | "/admin/routes")
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
            _ => json_response(
                404,
                &json!({"status": "error", "error": format!("no admin endpoint {method} {path}")}),
            ),
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

/// Ready when the policy is loaded and at least one model has a usable target; the body
/// says which providers are disabled and why.
fn readiness(policy: &Policy) -> Response<Vec<u8>> {
    let disabled: Vec<Value> = policy
        .providers
        .values()
        .filter_map(|p| {
            p.disabled
                .as_ref()
                .map(|reason| json!({"provider": p.name, "reason": reason}))
        })
        .collect();
    let unsupported: Vec<Value> = policy
        .providers
        .values()
        .filter(|p| matches!(p.kind, ProviderKind::Azure { .. }))
        .map(|p| json!({"provider": p.name, "reason": SkipReason::Unsupported(p.kind.label()).to_string()}))
        .collect();
    let usable = policy.models.values().any(|m| {
        m.targets.iter().any(|t| {
            t.disabled_reason().is_none()
                && matches!(
                    t.provider.kind,
                    ProviderKind::OpenAi { .. } | ProviderKind::Bedrock { .. }
                )
        })
    });
    let body = json!({
        "status": if usable { "ready" } else { "not_ready" },
        "policy_version": policy.version,
        "ledger": "not configured in this build (spend is metered to metrics and the access log)",
        "disabled_providers": disabled,
        "unsupported_providers": unsupported,
        "reason": if usable { Value::Null } else { json!("no model has a usable target") },
    });
    json_response(if usable { 200 } else { 503 }, &body)
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// `GET /admin/routes`: the active policy and, per model, its targets in attempt order with
/// the live figures behind the order and the reason any target is skipped.
fn routes(state: &AppState, policy: &Policy) -> Value {
    let now = Instant::now();
    let models: Vec<Value> = policy
        .models
        .values()
        .map(|model| {
            let mut rank = 0;
            let targets: Vec<Value> = model
                .targets
                .iter()
                .map(|target| {
                    let skipped = skip_reason(target, &state.stats, now);
                    let live = state.stats.snapshot(&target.id, now);
                    let this_rank = if skipped.is_none() {
                        rank += 1;
                        json!(rank)
                    } else {
                        Value::Null
                    };
                    let (input, output) = target.price.per_million();
                    json!({
                        "id": target.id.0,
                        "provider": target.provider.name,
                        "upstream_model": target.upstream_model,
                        "rank": this_rank,
                        "skipped": skipped.as_ref().map(ToString::to_string),
                        "circuit": if live.cooling_down_for.is_some() { "open" } else { "closed" },
                        "cooldown_remaining_ms": live.cooling_down_for.map(|d| d.as_millis() as u64),
                        "inflight": live.inflight,
                        "ttft_ms": live.ttft_ms,
                        "ms_per_output_token": live.ms_per_output_token,
                        "error_rate": live.error_rate(),
                        "headroom": Value::Null,
                        "price": if target.price == Price::Free { json!("free") } else { json!({"input": input, "output": output}) },
                    })
                })
                .collect();
            json!({
                "name": model.name,
                "strategy": model.strategy.label(),
                "fallbacks": model.fallbacks,
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
        "source": policy.source.display().to_string(),
        "last_error": last_error,
        "warnings": policy.warnings,
        "models": models,
    })
}
