//! Team rate limits (`limits: { rpm, tpm }`) in fixed one-minute windows aligned to the UTC
//! minute: in Redis when configured, so every replica counts against one window, else in
//! this process. A request is admitted while the window has room (requests below `rpm`,
//! tokens below `tpm`); it is charged its prompt estimate up front and the rest of its
//! tokens when it ends. Redis trouble falls back to the local windows (and is counted).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use crate::config::Limits;

const WINDOW_MS: i64 = 60_000;
/// Bound on one Redis round trip on the request path.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
}

impl LimitKind {
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Requests => "rpm",
            LimitKind::Tokens => "tpm",
        }
    }
}

/// A refusal: which limit, and how long until the window turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub kind: LimitKind,
    pub retry_after: Duration,
}

/// The window a millisecond instant falls in, and the time left in it.
pub fn window_of(now_ms: i64) -> (i64, Duration) {
    let window = now_ms.div_euclid(WINDOW_MS);
    let left = (window + 1) * WINDOW_MS - now_ms;
    (window, Duration::from_millis(left.max(1) as u64))
}

/// Counts of one team in one window.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    window: i64,
    requests: u64,
    tokens: i64,
}

/// In-process windows, one per team.
#[derive(Debug, Default)]
pub struct LocalWindows {
    teams: Mutex<HashMap<String, Counts>>,
}

impl LocalWindows {
    /// Admits and charges `tokens`, or says which limit is spent.
    pub fn admit(
        &self,
        team: &str,
        limits: Limits,
        tokens: u64,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        let (window, left) = window_of(now_ms);
        let mut teams = self.teams.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = teams.entry(team.to_owned()).or_default();
        if counts.window != window {
            *counts = Counts {
                window,
                ..Counts::default()
            };
        }
        check(limits, counts.requests, counts.tokens, left)?;
        counts.requests += 1;
        counts.tokens += tokens as i64;
        Ok(())
    }

    /// Adds tokens learned at the end of a request (may be negative: the estimate was high).
    pub fn charge(&self, team: &str, tokens: i64, now_ms: i64) {
        let (window, _) = window_of(now_ms);
        let mut teams = self.teams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counts) = teams.get_mut(team) {
            if counts.window == window {
                counts.tokens += tokens;
            }
        }
    }
}

fn check(limits: Limits, requests: u64, tokens: i64, left: Duration) -> Result<(), Refusal> {
    if limits.rpm.is_some_and(|rpm| requests >= rpm) {
        return Err(Refusal {
            kind: LimitKind::Requests,
            retry_after: left,
        });
    }
    if limits.tpm.is_some_and(|tpm| tokens >= tpm as i64) {
        return Err(Refusal {
            kind: LimitKind::Tokens,
            retry_after: left,
        });
    }
    Ok(())
}

/// Check-and-charge in one step: KEYS = requests key, tokens key; ARGV = rpm (0 = none),
/// tpm (0 = none), tokens to charge, key lifetime in ms. Returns 0 (admitted), 1 (rpm) or 2 (tpm).
const ADMIT_SCRIPT: &str = r"
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
if rpm > 0 and requests >= rpm then return 1 end
if tpm > 0 and tokens >= tpm then return 2 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('INCRBY', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0
";

/// Fleet-wide windows in Redis.
#[derive(Clone)]
pub struct RedisWindows {
    connection: ConnectionManager,
    script: Script,
    prefix: String,
}

fn keys(prefix: &str, team: &str, window: i64) -> (String, String) {
    (
        format!("{prefix}:{team}:{window}:requests"),
        format!("{prefix}:{team}:{window}:tokens"),
    )
}

impl RedisWindows {
    /// Connects (the manager reconnects by itself after a failure). `prefix` namespaces keys.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisWindows, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(1))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisWindows {
            connection,
            script: Script::new(ADMIT_SCRIPT),
            prefix: prefix.to_owned(),
        })
    }

    pub async fn admit(
        &self,
        team: &str,
        limits: Limits,
        tokens: u64,
        now_ms: i64,
    ) -> Result<Result<(), Refusal>, redis::RedisError> {
        let (window, left) = window_of(now_ms);
        let (requests_key, tokens_key) = keys(&self.prefix, team, window);
        let mut connection = self.connection.clone();
        let verdict: i64 = self
            .script
            .key(requests_key)
            .key(tokens_key)
            .arg(limits.rpm.unwrap_or(0))
            .arg(limits.tpm.unwrap_or(0))
            .arg(tokens)
            .arg(2 * WINDOW_MS)
            .invoke_async(&mut connection)
            .await?;
        Ok(match verdict {
            1 => Err(Refusal {
                kind: LimitKind::Requests,
                retry_after: left,
            }),
            2 => Err(Refusal {
                kind: LimitKind::Tokens,
                retry_after: left,
            }),
            _ => Ok(()),
        })
    }

    pub async fn charge(
        &self,
        team: &str,
        tokens: i64,
        now_ms: i64,
    ) -> Result<(), redis::RedisError> {
        let (window, _) = window_of(now_ms);
        let (_, tokens_key) = keys(&self.prefix, team, window);
        let mut connection = self.connection.clone();
        redis::pipe()
            .incr(&tokens_key, tokens)
            .ignore()
            .pexpire(&tokens_key, 2 * WINDOW_MS)
            .ignore()
            .query_async::<()>(&mut connection)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::test_services::service_url;

    const LIMITS: Limits = Limits {
        rpm: Some(2),
        tpm: Some(100),
    };

    #[test]
    fn windows_align_to_the_minute() {
        assert_eq!(window_of(60_000), (1, Duration::from_secs(60)));
        assert_eq!(window_of(119_500), (1, Duration::from_millis(500)));
    }

    #[test]
    fn local_rpm_refuses_until_the_window_turns() {
        let windows = LocalWindows::default();
        assert!(windows.admit("t", LIMITS, 1, 1_000).is_ok());
        assert!(windows.admit("t", LIMITS, 1, 2_000).is_ok());
        let refusal = windows.admit("t", LIMITS, 1, 30_000).unwrap_err();
        assert_eq!(refusal.kind, LimitKind::Requests);
        assert_eq!(refusal.retry_after, Duration::from_secs(30));
        assert!(windows.admit("other", LIMITS, 1, 30_000).is_ok());
        assert!(
            windows.admit("t", LIMITS, 1, 60_000).is_ok(),
            "a new window"
        );
    }

    #[test]
    fn local_tpm_counts_tokens_learned_at_the_end() {
        let windows = LocalWindows::default();
        let limits = Limits {
            rpm: None,
            tpm: Some(100),
        };
        assert!(windows.admit("t", limits, 10, 0).is_ok());
        windows.charge("t", 95, 10);
        assert_eq!(
            windows.admit("t", limits, 10, 20).unwrap_err().kind,
            LimitKind::Tokens
        );
    }

    #[tokio::test]
    async fn redis_windows_are_shared() {
        let Some(url) = service_url("SWITCHYARD_TEST_REDIS", "redis_windows_are_shared") else {
            return;
        };
        let prefix = format!("sy-test-{}", uuid::Uuid::new_v4().simple());
        let a = RedisWindows::connect(&url, &prefix).await.unwrap();
        let b = RedisWindows::connect(&url, &prefix).await.unwrap();
        let now = 5_000;
        assert!(a.admit("t", LIMITS, 10, now).await.unwrap().is_ok());
        assert!(b.admit("t", LIMITS, 10, now).await.unwrap().is_ok());
        let refusal = a.admit("t", LIMITS, 10, now).await.unwrap().unwrap_err();
        assert_eq!(refusal.kind, LimitKind::Requests);
        let tokens = Limits {
            rpm: None,
            tpm: Some(100),
        };
        b.charge("u", 150, now).await.unwrap();
        let refusal = a.admit("u", tokens, 1, now).await.unwrap().unwrap_err();
        assert_eq!(refusal.kind, LimitKind::Tokens);
    }
}
