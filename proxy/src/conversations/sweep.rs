//! The retention sweeper: a background task that deletes expired turns in batches, off the
//! request path. Expired turns are already invisible to reads (the queries and the cache check
//! the expiry); the sweeper only reclaims their space.

use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::store::now_secs;
use super::ConversationStore;

/// How often the sweeper looks for expired turns.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Rows deleted per statement, so that one sweep never holds a long write lock.
pub const SWEEP_BATCH: i64 = 1_000;

/// The running sweeper; [`Sweeper::stop`] ends it.
pub struct Sweeper {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Sweeper {
    /// Starts sweeping `store` on `runtime` every `interval` (the first sweep right away).
    pub fn start(store: ConversationStore, runtime: &Handle, interval: Duration) -> Sweeper {
        let (stop, stopped) = watch::channel(false);
        let task = runtime.spawn(run(store, interval, stopped));
        Sweeper { stop, task }
    }

    /// Stops the sweeper after the batch in progress, and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(store: ConversationStore, interval: Duration, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        match sweep(&store, &stopped).await {
            Ok(deleted) => {
                if deleted > 0 {
                    tracing::debug!(deleted, "expired stored responses deleted");
                }
                failing = false;
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(error = %error, "cannot delete expired stored responses; retrying next interval");
                }
                failing = true;
            }
        }
    }
}

/// Deletes every turn expired now, a batch at a time; stops early when asked to.
async fn sweep(
    store: &ConversationStore,
    stopped: &watch::Receiver<bool>,
) -> Result<u64, super::StoreError> {
    let now = now_secs();
    let mut total = 0;
    loop {
        let deleted = store.sweep_batch(now, SWEEP_BATCH).await?;
        total += deleted;
        if deleted < SWEEP_BATCH as u64 || *stopped.borrow() {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
