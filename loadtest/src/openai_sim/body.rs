//! Response bodies fed by a task through a channel, so each chunk leaves as soon
//! as it is produced, and so a body can be cut off (connection aborted) or
//! stalled on purpose.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::stream;
use tokio::sync::mpsc;

use super::state::SimState;

/// Small: the producer should run at most a few chunks ahead of the socket.
const CHANNEL_CAPACITY: usize = 8;

/// Time given to hyper to flush what was sent before an abort: hyper drops its
/// write buffer when a body fails, and the point of a mid-stream drop is that the
/// client sees the partial data first.
const FLUSH_BEFORE_ABORT: Duration = Duration::from_millis(25);

type Frame = Result<Bytes, io::Error>;

/// The producing end. Every wait also ends when the simulator shuts down.
pub(crate) struct BodySender {
    tx: mpsc::Sender<Frame>,
    sim: Arc<SimState>,
}

/// Why the producer should stop.
#[derive(Debug)]
pub(crate) struct Gone;

pub(crate) fn channel_body(sim: Arc<SimState>) -> (BodySender, Body) {
    let (tx, mut rx) = mpsc::channel::<Frame>(CHANNEL_CAPACITY);
    let frames = stream::poll_fn(move |cx| rx.poll_recv(cx));
    (BodySender { tx, sim }, Body::from_stream(frames))
}

impl BodySender {
    /// Queues bytes; `Err(Gone)` when the client left or the sim is stopping.
    pub(crate) async fn send(&self, bytes: impl Into<Bytes>) -> Result<(), Gone> {
        match self
            .sim
            .unless_shutdown(self.tx.send(Ok(bytes.into())))
            .await
        {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) | None => Err(Gone),
        }
    }

    /// Sleeps before the next chunk; `Err(Gone)` if the client left or the sim stops meanwhile.
    pub(crate) async fn pause(&self, delay: Duration) -> Result<(), Gone> {
        if delay.is_zero() {
            return Ok(());
        }
        let sleep = tokio::time::sleep(delay);
        match self
            .sim
            .unless_shutdown(async {
                tokio::select! {
                    () = sleep => true,
                    () = self.tx.closed() => false,
                }
            })
            .await
        {
            Some(true) => Ok(()),
            Some(false) | None => Err(Gone),
        }
    }

    /// Ends the body with an error, which makes hyper close the connection
    /// without a proper end (no final chunk, short of `content-length`).
    pub(crate) async fn abort(self) {
        let _ = self.pause(FLUSH_BEFORE_ABORT).await;
        let error = io::Error::new(io::ErrorKind::ConnectionAborted, "simulated upstream drop");
        let _ = self.tx.send(Err(error)).await;
    }

    /// Sends nothing more until the client goes away or the sim stops, then aborts.
    pub(crate) async fn stall(self) {
        let _ = self.sim.unless_shutdown(self.tx.closed()).await;
        self.cut();
    }

    /// Aborts at once, without waiting for a flush: for producers stopped by
    /// shutdown, whose body must not end cleanly (a truncated answer would look
    /// complete). Does nothing if the client is already gone.
    pub(crate) fn cut(self) {
        let error = io::Error::new(io::ErrorKind::ConnectionAborted, "simulator stopped");
        let _ = self.tx.try_send(Err(error));
    }
}
