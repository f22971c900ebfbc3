//! What the simulators share: serving a router until told to stop, and their locks.

use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `app` on `listener` in the background until `stopped` turns true (the simulator
/// was dropped); `what` names the simulator in the warning if serving fails.
pub(crate) fn spawn_until_stopped(
    listener: TcpListener,
    app: Router,
    mut stopped: watch::Receiver<bool>,
    what: &'static str,
) {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(%error, "{what} stopped with an error");
        }
    });
}

/// A panic elsewhere cannot leave the simulators' simple maps half-updated, so poison is
/// harmless.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
