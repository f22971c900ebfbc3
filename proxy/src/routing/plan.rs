//! The attempt plan of one request: which targets to try, in which order, and why others
//! are skipped. Today every strategy walks the written order (the ranking strategies build
//! on this shape); fallback models' targets follow the model's own.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::stats::{Availability, LiveStats};
use crate::config::{Model, Policy, ProviderKind, Target, TargetId};

/// One step of a plan: a target, reached through `model` (the requested one or a fallback).
#[derive(Debug, Clone)]
pub struct PlannedAttempt {
    pub model: Arc<Model>,
    pub target: Arc<Target>,
}

/// Why a target is not in the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    Disabled(String),
    Unsupported(&'static str),
    CoolingDown(Duration),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Disabled(reason) => write!(f, "disabled: {reason}"),
            SkipReason::Unsupported(kind) => {
                write!(f, "provider kind `{kind}` is not served by this build yet")
            }
            SkipReason::CoolingDown(left) => {
                write!(
                    f,
                    "cooling down for {:.1}s after a capacity error",
                    left.as_secs_f64()
                )
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub attempts: Vec<PlannedAttempt>,
    pub skipped: Vec<(TargetId, SkipReason)>,
}

impl Plan {
    /// The soonest moment a cooling-down target becomes usable again, for `retry-after`.
    pub fn soonest_retry(&self) -> Option<Duration> {
        self.skipped
            .iter()
            .filter_map(|(_, reason)| match reason {
                SkipReason::CoolingDown(left) => Some(left),
                _ => None,
            })
            .min()
            .copied()
    }
}

/// Why a target cannot be tried now, if it cannot.
pub fn skip_reason(target: &Target, stats: &LiveStats, now: Instant) -> Option<SkipReason> {
    if let Some(reason) = target.disabled_reason() {
        return Some(SkipReason::Disabled(reason.to_owned()));
    }
    match target.provider.kind {
        ProviderKind::OpenAi { .. } | ProviderKind::Bedrock { .. } => {}
        ProviderKind::Azure { .. } => return Some(SkipReason::Unsupported("azure")),
    }
    match stats.availability(&target.id, now) {
        Availability::Ready => None,
        Availability::CoolingDown { remaining } => Some(SkipReason::CoolingDown(remaining)),
    }
}

/// Builds the plan for `model`: its targets, then each fallback model's, at most
/// `max_attempts` steps, each target once.
pub fn plan(policy: &Policy, model: &Arc<Model>, stats: &LiveStats, now: Instant) -> Plan {
    let mut result = Plan::default();
    let fallbacks = model
        .fallbacks
        .iter()
        .filter_map(|name| policy.models.get(name));
    for step_model in std::iter::once(model).chain(fallbacks) {
        for target in &step_model.targets {
            let seen = result.attempts.iter().any(|a| a.target.id == target.id)
                || result.skipped.iter().any(|(id, _)| *id == target.id);
            if seen {
                continue;
            }
            match skip_reason(target, stats, now) {
                Some(reason) => result.skipped.push((target.id.clone(), reason)),
                None => result.attempts.push(PlannedAttempt {
                    model: step_model.clone(),
                    target: target.clone(),
                }),
            }
        }
    }
    result.attempts.truncate(policy.server.max_attempts);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile_str;
    use std::path::Path;

    const POLICY: &str = r#"
version: 1
providers:
  a: { kind: openai, base_url: "http://127.0.0.1:1/v1", api_key: ka }
  b: { kind: openai, base_url: "http://127.0.0.1:2/v1", api_key: kb }
  off: { kind: openai, base_url: "http://127.0.0.1:3/v1", api_key: "${UNSET_KEY:-}" }
  bed: { kind: bedrock, region: us-east-1 }
models:
  main:
    targets:
      - { provider: off, model: m, price: free }
      - { provider: a, model: m, price: free }
      - { provider: bed, model: anthropic.claude-3-haiku-20240307-v1:0 }
      - { provider: b, model: m, price: free }
    fallbacks: [spare]
  spare:
    targets:
      - { provider: b, model: m, price: free }
      - { provider: b, model: spare, price: free }
"#;

    fn policy() -> Policy {
        compile_str(POLICY, Path::new("routes.yaml"), &|_| None).unwrap()
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.attempts
            .iter()
            .map(|a| a.target.id.0.as_str())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn written_order_then_fallbacks_each_target_once() {
        let policy = policy();
        let stats = LiveStats::new();
        let plan = plan(&policy, &policy.models["main"], &stats, Instant::now());
        assert_eq!(
            ids(&plan),
            vec![
                "a/m",
                "bed/anthropic.claude-3-haiku-20240307-v1:0",
                "b/m",
                "b/spare"
            ]
        );
        assert_eq!(plan.attempts[3].model.name, "spare");
        let skipped: Vec<_> = plan.skipped.iter().map(|(id, _)| id.0.as_str()).collect();
        assert_eq!(skipped, vec!["off/m"]);
        assert!(
            matches!(plan.skipped[0].1, SkipReason::Disabled(ref why) if why.contains("UNSET_KEY"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cooling_down_targets_are_skipped_until_the_cooldown_ends() {
        let policy = policy();
        let stats = LiveStats::new();
        let a = TargetId::new("a", "m");
        stats.record_capacity_error(&a, Some(Duration::from_secs(5)), Instant::now());
        let cooling = plan(&policy, &policy.models["main"], &stats, Instant::now());
        assert_eq!(
            ids(&cooling),
            vec![
                "bed/anthropic.claude-3-haiku-20240307-v1:0",
                "b/m",
                "b/spare"
            ]
        );
        assert_eq!(cooling.soonest_retry(), Some(Duration::from_secs(5)));
        tokio::time::advance(Duration::from_secs(5)).await;
        let recovered = plan(&policy, &policy.models["main"], &stats, Instant::now());
        assert_eq!(ids(&recovered).len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let mut policy = policy();
        policy.server.max_attempts = 1;
        let stats = LiveStats::new();
        let plan = plan(&policy, &policy.models["main"], &stats, Instant::now());
        assert_eq!(ids(&plan), vec!["a/m"]);
    }
}
