//! Live figures per target, keyed by [`TargetId`] outside the policy snapshot so they survive
//! a reload: cool-downs after capacity errors, in-flight counts, latency averages.
//!
//! Time is `tokio::time::Instant`, so tests drive it with a paused clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Limits, TargetId};
use crate::upstream::RateLimitSnapshot;

/// First cool-down after a capacity error that gave no `retry-after`; doubles each time in a row.
const BASE_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest cool-down an upstream's `retry-after` may impose (a bogus header must not park a target).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Time over which an upstream's rate-limit figures refill (OpenAI and Azure count per minute).
const RATE_LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// Weight of the newest sample in the latency averages.
const EWMA_ALPHA: f64 = 0.3;

#[derive(Debug, Default)]
pub struct LiveStats {
    targets: RwLock<HashMap<TargetId, Arc<TargetLive>>>,
}

#[derive(Debug, Default)]
pub struct TargetLive {
    inflight: AtomicI64,
    state: Mutex<TargetState>,
}

#[derive(Debug, Default, Clone)]
struct TargetState {
    cooldown_until: Option<Instant>,
    capacity_errors_in_row: u32,
    ttft_ms: Option<f64>,
    ms_per_output_token: Option<f64>,
    successes: u64,
    capacity_errors: u64,
    other_errors: u64,
    /// The last `x-ratelimit-*` figures the upstream sent, and when.
    rate_limits: Option<(RateLimitSnapshot, Instant)>,
}

/// Whether a target may be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Ready,
    CoolingDown { remaining: Duration },
}

/// A read-only copy of one target's figures, for `/admin/routes`.
#[derive(Debug, Clone, Default)]
pub struct TargetSnapshot {
    pub inflight: i64,
    pub cooling_down_for: Option<Duration>,
    pub ttft_ms: Option<f64>,
    pub ms_per_output_token: Option<f64>,
    pub successes: u64,
    pub capacity_errors: u64,
    pub other_errors: u64,
    /// The last rate-limit figures the upstream sent, and how long ago.
    pub rate_limits: Option<(RateLimitSnapshot, Duration)>,
}

impl TargetSnapshot {
    /// Live capacity headroom in 0..=1 from the last rate-limit headers (configured `limits`
    /// stand in for limit headers the upstream does not send); `None` when unknown.
    /// The figure decays toward 1 as it ages: quota windows refill within a minute, so an old
    /// "exhausted" must not keep a target looking full (wire-formats §7).
    pub fn headroom(&self, limits: Option<&Limits>) -> Option<f64> {
        let (snapshot, age) = self.rate_limits.as_ref()?;
        let seen = snapshot.headroom(limits.and_then(|l| l.rpm), limits.and_then(|l| l.tpm))?;
        let refilled = (age.as_secs_f64() / RATE_LIMIT_WINDOW.as_secs_f64()).min(1.0);
        Some(seen + (1.0 - seen) * refilled)
    }

    /// Share of finished attempts that failed (capacity or otherwise).
    pub fn error_rate(&self) -> f64 {
        let total = self.successes + self.capacity_errors + self.other_errors;
        if total == 0 {
            0.0
        } else {
            (self.capacity_errors + self.other_errors) as f64 / total as f64
        }
    }
}

impl TargetLive {
    fn with_state<R>(&self, f: impl FnOnce(&mut TargetState) -> R) -> R {
        // A panic while holding this lock cannot leave the plain-data state inconsistent.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }
}

/// Decrements the target's in-flight count when the attempt ends, however it ends.
#[derive(Debug)]
pub struct InflightGuard(Arc<TargetLive>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LiveStats {
    pub fn new() -> Self {
        Self::default()
    }

    fn target(&self, id: &TargetId) -> Arc<TargetLive> {
        if let Some(live) = self
            .targets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            return live.clone();
        }
        self.targets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.clone())
            .or_default()
            .clone()
    }

    pub fn availability(&self, id: &TargetId, now: Instant) -> Availability {
        let until = self.target(id).with_state(|s| s.cooldown_until);
        match until {
            Some(until) if until > now => Availability::CoolingDown {
                remaining: until - now,
            },
            _ => Availability::Ready,
        }
    }

    /// Marks an attempt as started; the guard marks it ended.
    pub fn start_attempt(&self, id: &TargetId) -> InflightGuard {
        let live = self.target(id);
        live.inflight.fetch_add(1, Ordering::Relaxed);
        InflightGuard(live)
    }

    /// A capacity error (429/503/529, throttling, refused connection): cool the target down
    /// for the upstream's `retry-after`, else for an exponential backoff. Returns the cool-down.
    pub fn record_capacity_error(
        &self,
        id: &TargetId,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Duration {
        self.target(id).with_state(|s| {
            s.capacity_errors += 1;
            s.capacity_errors_in_row = s.capacity_errors_in_row.saturating_add(1);
            let cooldown = match retry_after {
                Some(wait) => wait.min(MAX_RETRY_AFTER),
                None => {
                    let doublings = s.capacity_errors_in_row.saturating_sub(1).min(16);
                    (BASE_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
                }
            };
            s.cooldown_until = Some(now + cooldown);
            cooldown
        })
    }

    /// Any other failed attempt (5xx, garbage, timeout).
    pub fn record_error(&self, id: &TargetId) {
        self.target(id).with_state(|s| s.other_errors += 1);
    }

    /// A successful attempt with its observed latencies.
    pub fn record_success(
        &self,
        id: &TargetId,
        ttft: Duration,
        generation: Duration,
        output_tokens: u64,
    ) {
        self.target(id).with_state(|s| {
            s.successes += 1;
            s.capacity_errors_in_row = 0;
            s.cooldown_until = None;
            s.ttft_ms = Some(ewma(s.ttft_ms, ttft.as_secs_f64() * 1000.0));
            if output_tokens > 0 {
                let per_token = generation.as_secs_f64() * 1000.0 / output_tokens as f64;
                s.ms_per_output_token = Some(ewma(s.ms_per_output_token, per_token));
            }
        });
    }

    /// The rate-limit headers of any upstream answer (success or 429), as live headroom.
    pub fn record_rate_limits(&self, id: &TargetId, snapshot: RateLimitSnapshot, now: Instant) {
        self.target(id)
            .with_state(|s| s.rate_limits = Some((snapshot, now)));
    }

    pub fn snapshot(&self, id: &TargetId, now: Instant) -> TargetSnapshot {
        let live = self.target(id);
        let inflight = live.inflight.load(Ordering::Relaxed);
        live.with_state(|s| TargetSnapshot {
            inflight,
            cooling_down_for: s.cooldown_until.filter(|u| *u > now).map(|u| u - now),
            ttft_ms: s.ttft_ms,
            ms_per_output_token: s.ms_per_output_token,
            successes: s.successes,
            capacity_errors: s.capacity_errors,
            other_errors: s.other_errors,
            rate_limits: s
                .rate_limits
                .map(|(snapshot, at)| (snapshot, now.saturating_duration_since(at))),
        })
    }
}

fn ewma(previous: Option<f64>, sample: f64) -> f64 {
    match previous {
        Some(avg) => avg + EWMA_ALPHA * (sample - avg),
        None => sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> TargetId {
        TargetId::new("p", "m")
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_sets_the_cooldown() {
        let stats = LiveStats::new();
        let now = Instant::now();
        stats.record_capacity_error(&id(), Some(Duration::from_secs(3)), now);
        assert_eq!(
            stats.availability(&id(), now),
            Availability::CoolingDown {
                remaining: Duration::from_secs(3)
            }
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(
            stats.availability(&id(), Instant::now()),
            Availability::Ready
        );
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_without_retry_after_and_resets_on_success() {
        let stats = LiveStats::new();
        let now = Instant::now();
        let waits: Vec<_> = (0..8)
            .map(|_| stats.record_capacity_error(&id(), None, now).as_secs())
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        stats.record_success(&id(), Duration::from_millis(10), Duration::ZERO, 0);
        assert_eq!(stats.availability(&id(), now), Availability::Ready);
        assert_eq!(stats.record_capacity_error(&id(), None, now).as_secs(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_retry_after_is_capped() {
        let stats = LiveStats::new();
        let wait =
            stats.record_capacity_error(&id(), Some(Duration::from_secs(86_400)), Instant::now());
        assert_eq!(wait, MAX_RETRY_AFTER);
    }

    #[test]
    fn rate_limits_become_headroom() {
        let stats = LiveStats::new();
        let now = Instant::now();
        assert_eq!(stats.snapshot(&id(), now).headroom(None), None);
        let seen = RateLimitSnapshot {
            remaining_requests: Some(45),
            remaining_tokens: Some(90_000),
            limit_requests: None,
            limit_tokens: None,
            utilization_bp: None,
        };
        stats.record_rate_limits(&id(), seen, now);
        let limits = Limits {
            rpm: Some(60),
            tpm: Some(100_000),
        };
        let snapshot = stats.snapshot(&id(), now);
        assert_eq!(snapshot.headroom(Some(&limits)), Some(0.75));
        assert_eq!(snapshot.rate_limits.map(|(s, _)| s), Some(seen));
        let later = stats.snapshot(&id(), now + Duration::from_secs(30));
        assert_eq!(later.headroom(Some(&limits)), Some(0.875));
        let stale = stats.snapshot(&id(), now + Duration::from_secs(600));
        assert_eq!(stale.headroom(Some(&limits)), Some(1.0));
    }

    #[test]
    fn inflight_guard_counts_down() {
        let stats = LiveStats::new();
        let guard = stats.start_attempt(&id());
        assert_eq!(stats.snapshot(&id(), Instant::now()).inflight, 1);
        drop(guard);
        assert_eq!(stats.snapshot(&id(), Instant::now()).inflight, 0);
    }
}
