//! Requests in flight and the drain that a graceful shutdown waits for: once it begins,
//! the client listener stops accepting, kept-alive connections close after their current
//! request, and the process stops as soon as nothing is in flight (or the grace ends).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug)]
pub struct Drain {
    draining: watch::Sender<bool>,
    in_flight: watch::Sender<usize>,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            draining: watch::Sender::new(false),
            in_flight: watch::Sender::new(0),
        }
    }
}

/// Held while a request is served; dropping it counts the request as done, here and for
/// the log (which gathers lines only while several are served: `log_writer.rs`).
#[derive(Debug)]
pub struct InFlight {
    drain: Arc<Drain>,
    _log: crate::log_writer::Serving,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.drain
            .in_flight
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// How a drain ended.
#[derive(Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every request in flight finished.
    Drained,
    /// The grace period ended first; this many were still running.
    GraceEnded { still_running: usize },
}

impl Drain {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.send_modify(|n| *n += 1);
        InFlight {
            drain: self.clone(),
            _log: crate::log_writer::serving(),
        }
    }

    pub fn in_flight(&self) -> usize {
        *self.in_flight.borrow()
    }

    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Resolves once the drain has begun (at once if it has).
    pub async fn begun(&self) {
        let mut draining = self.draining.subscribe();
        // The sender lives as long as `self`, so this cannot fail while awaited.
        let _ = draining.wait_for(|draining| *draining).await;
    }

    /// Begins the drain, then waits until nothing is in flight or `grace` has passed.
    pub async fn drain(&self, grace: Duration) -> DrainOutcome {
        self.draining.send_replace(true);
        let mut in_flight = self.in_flight.subscribe();
        let drained = tokio::time::timeout(grace, async {
            // The sender lives as long as `self`: waiting cannot fail.
            let _ = in_flight.wait_for(|n| *n == 0).await;
        })
        .await;
        match drained {
            Ok(()) => DrainOutcome::Drained,
            Err(_) => DrainOutcome::GraceEnded {
                still_running: self.in_flight(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Drain, DrainOutcome};

    #[tokio::test(start_paused = true)]
    async fn with_nothing_in_flight_the_drain_ends_at_once() {
        let drain = Drain::new();
        let started = tokio::time::Instant::now();
        assert_eq!(
            drain.drain(Duration::from_secs(30)).await,
            DrainOutcome::Drained
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(drain.is_draining());
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_waits_for_the_last_request_and_no_longer() {
        let drain = Drain::new();
        let first = drain.request();
        let second = drain.request();
        assert_eq!(drain.in_flight(), 2);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(first);
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(second);
        });
        let started = tokio::time::Instant::now();
        assert_eq!(
            drain.drain(Duration::from_secs(30)).await,
            DrainOutcome::Drained
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_period_bounds_the_drain() {
        let drain = Drain::new();
        let _stuck = drain.request();
        let outcome = drain.drain(Duration::from_secs(30)).await;
        assert_eq!(outcome, DrainOutcome::GraceEnded { still_running: 1 });
    }

    #[tokio::test(start_paused = true)]
    async fn begun_resolves_once_the_drain_starts() {
        let drain = Drain::new();
        let waiter = {
            let drain = drain.clone();
            tokio::spawn(async move { drain.begun().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drain.drain(Duration::from_secs(1)).await;
        waiter.await.expect("the waiter finishes");
    }
}
