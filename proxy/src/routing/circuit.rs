//! The circuit breaker of one target: closed → (N consecutive failures) → open for a while →
//! half-open, where one probe request at a time decides whether it closes again.
//!
//! Pure state plus an explicit `now`, so it is tested with plain instants.

use tokio::time::Instant;

use crate::config::HealthSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open {
        until: Instant,
    },
    /// Open time is over; `probing` while the one trial request is in flight.
    HalfOpen {
        probing: bool,
    },
}

impl CircuitState {
    pub fn label(&self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open { .. } => "open",
            CircuitState::HalfOpen { .. } => "half_open",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Circuit {
    state: CircuitState,
    consecutive_failures: u32,
}

impl Default for Circuit {
    fn default() -> Self {
        Self {
            state: CircuitState::Closed,
            consecutive_failures: 0,
        }
    }
}

impl Circuit {
    /// The state as of `now` (an open circuit whose time is over reads as half-open).
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.state {
            CircuitState::Open { until } if now >= until => {
                CircuitState::HalfOpen { probing: false }
            }
            state => state,
        }
    }

    /// Whether a request may be sent now, without taking the probe slot.
    pub fn allows(&self, now: Instant) -> bool {
        match self.state(now) {
            CircuitState::Closed | CircuitState::HalfOpen { probing: false } => true,
            CircuitState::Open { .. } | CircuitState::HalfOpen { probing: true } => false,
        }
    }

    /// Takes permission to send one request: always when closed; the single probe slot
    /// when half-open. Returns whether the request is the probe.
    pub fn try_acquire(&mut self, now: Instant) -> Option<bool> {
        match self.state(now) {
            CircuitState::Closed => Some(false),
            CircuitState::HalfOpen { probing: false } => {
                self.state = CircuitState::HalfOpen { probing: true };
                Some(true)
            }
            CircuitState::Open { .. } | CircuitState::HalfOpen { probing: true } => None,
        }
    }

    pub fn on_success(&mut self) {
        self.consecutive_failures = 0;
        self.state = CircuitState::Closed;
    }

    /// A failed attempt; returns true when this failure opened the circuit.
    pub fn on_failure(&mut self, now: Instant, settings: &HealthSettings) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let reopen = match self.state(now) {
            // The probe failed: straight back to open.
            CircuitState::HalfOpen { .. } => true,
            CircuitState::Closed => self.consecutive_failures >= settings.failures,
            CircuitState::Open { .. } => false,
        };
        if reopen {
            self.state = CircuitState::Open {
                until: now + settings.open_for,
            };
        }
        reopen
    }

    /// A probe that ended without a verdict (e.g. the client left): free the slot.
    pub fn release_probe(&mut self) {
        if self.state == (CircuitState::HalfOpen { probing: true }) {
            self.state = CircuitState::HalfOpen { probing: false };
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SETTINGS: HealthSettings = HealthSettings {
        failures: 3,
        open_for: Duration::from_secs(30),
        cooldown_initial: Duration::from_secs(1),
        cooldown_max: Duration::from_secs(60),
    };

    #[test]
    fn opens_after_consecutive_failures_only() {
        let now = Instant::now();
        let mut circuit = Circuit::default();
        circuit.on_failure(now, &SETTINGS);
        circuit.on_failure(now, &SETTINGS);
        circuit.on_success();
        circuit.on_failure(now, &SETTINGS);
        circuit.on_failure(now, &SETTINGS);
        assert!(circuit.allows(now), "a success in between resets the count");
        assert!(circuit.on_failure(now, &SETTINGS));
        assert_eq!(circuit.state(now).label(), "open");
        assert!(!circuit.allows(now + Duration::from_secs(29)));
    }

    #[test]
    fn half_open_lets_one_probe_through_at_a_time() {
        let now = Instant::now();
        let mut circuit = Circuit::default();
        for _ in 0..3 {
            circuit.on_failure(now, &SETTINGS);
        }
        let later = now + Duration::from_secs(30);
        assert_eq!(
            circuit.state(later),
            CircuitState::HalfOpen { probing: false }
        );
        assert_eq!(circuit.try_acquire(later), Some(true));
        assert_eq!(
            circuit.try_acquire(later),
            None,
            "a second request waits for the probe"
        );
        circuit.on_success();
        assert_eq!(circuit.try_acquire(later), Some(false));
    }

    #[test]
    fn failed_probe_reopens_and_released_probe_frees_the_slot() {
        let now = Instant::now();
        let mut circuit = Circuit::default();
        for _ in 0..3 {
            circuit.on_failure(now, &SETTINGS);
        }
        let later = now + Duration::from_secs(30);
        assert_eq!(circuit.try_acquire(later), Some(true));
        circuit.release_probe();
        assert_eq!(circuit.try_acquire(later), Some(true));
        assert!(circuit.on_failure(later, &SETTINGS));
        assert!(!circuit.allows(later + Duration::from_secs(29)));
        assert!(circuit.allows(later + Duration::from_secs(30)));
    }
}
