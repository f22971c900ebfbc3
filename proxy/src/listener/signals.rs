//! Signals, in place of pingora's watcher: `SIGTERM` (and `SIGQUIT`, as there is no socket
//! hand-over) drains requests in flight for up to `server.shutdown_grace` before pingora stops
//! the runtimes, with no fixed wait; `SIGINT`, also during a drain, stops at once.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::drain::{Drain, DrainOutcome};
use crate::state::AppState;

pub struct DrainingSignals {
    state: Arc<AppState>,
    drain: Arc<Drain>,
}

impl DrainingSignals {
    pub fn new(state: Arc<AppState>, drain: Arc<Drain>) -> Self {
        Self { state, drain }
    }
}

fn listen(kind: SignalKind, name: &str) -> Option<Signal> {
    signal(kind)
        .map_err(|error| tracing::error!(%error, "cannot listen for {name}"))
        .ok()
}

/// The next delivery; never, when the handler could not be installed.
async fn next(signal: &mut Option<Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[async_trait]
impl ShutdownSignalWatch for DrainingSignals {
    async fn recv(&self) -> ShutdownSignal {
        let mut terminate = listen(SignalKind::terminate(), "SIGTERM");
        let mut quit = listen(SignalKind::quit(), "SIGQUIT");
        let mut interrupt = listen(SignalKind::interrupt(), "SIGINT");
        tokio::select! {
            _ = next(&mut interrupt) => {
                tracing::info!("SIGINT: stopping now");
                return ShutdownSignal::FastShutdown;
            }
            _ = next(&mut terminate) => {}
            _ = next(&mut quit) => {}
        }
        let grace = self.state.policy().server.client.shutdown_grace;
        tracing::info!(
            in_flight = self.drain.in_flight(),
            grace_s = grace.as_secs_f64(),
            "shutting down: no new connections; draining requests in flight"
        );
        tokio::select! {
            outcome = self.drain.drain(grace) => match outcome {
                DrainOutcome::Drained => tracing::info!("drained: every request finished"),
                DrainOutcome::GraceEnded { still_running } => tracing::warn!(
                    still_running,
                    "the shutdown grace period ended; cutting the requests still running"
                ),
            },
            _ = next(&mut interrupt) => {
                tracing::info!("SIGINT during the drain: stopping now");
                return ShutdownSignal::FastShutdown;
            }
        }
        ShutdownSignal::GracefulTerminate
    }
}
