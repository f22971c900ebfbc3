//! The client listener's accept loop, a pingora service of our own: each connection takes
//! one of `server.max_client_connections` places before anything else happens to it (a
//! connection past the bound is answered 503 and closed at once), gets its TLS handshake or
//! first bytes within `server.header_read_timeout`, then goes to the [`Gateway`]. The loop
//! stops, closing the port, as soon as a drain begins.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{Peek, Stream};
#[cfg(unix)]
use pingora::server::ListenFds;
use pingora::server::ShutdownWatch;
use pingora::services::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::buffered::BufferedClientStream;
use super::drain::Drain;
use crate::endpoint::ErrorDialect;
use crate::error::{ProxyError, RequestError};
use crate::gateway::Gateway;
use crate::state::AppState;

/// Length of the HTTP/2 prior-knowledge preface pingora peeks for on a plain connection.
const H2_PREFACE_LEN: usize = 24;
/// How long a refused connection is given to take its 503 before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);
/// Pause after `accept` failed for want of descriptors, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub struct ClientListener {
    listener: Option<std::net::TcpListener>,
    gateway: Arc<Gateway>,
    tls: Option<Arc<Acceptor>>,
    places: Arc<Semaphore>,
    max_connections: usize,
    drain: Arc<Drain>,
    state: Arc<AppState>,
}

impl ClientListener {
    /// `listener` is already bound (so a taken port fails the start, not a runtime later).
    pub fn new(
        listener: std::net::TcpListener,
        gateway: Arc<Gateway>,
        tls: Option<Acceptor>,
        max_connections: usize,
        drain: Arc<Drain>,
        state: Arc<AppState>,
    ) -> Self {
        Self {
            listener: Some(listener),
            gateway,
            tls: tls.map(Arc::new),
            places: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            drain,
            state,
        }
    }

    fn admit(&self, tcp: TcpStream, shutdown: &ShutdownWatch) {
        let permit = match self.places.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.state.metrics.client.connections_refused.inc();
                let plain = self.tls.is_none();
                tokio::spawn(refuse(tcp, plain, self.max_connections));
                return;
            }
        };
        let open = self.state.metrics.client.connections_open.clone();
        open.inc();
        let connection = Connection {
            open,
            timeouts: self.state.metrics.client.timeouts.clone(),
            gateway: self.gateway.clone(),
            tls: self.tls.clone(),
            header_read_timeout: self.state.policy().server.client.header_read_timeout,
            _place: permit,
        };
        let shutdown = shutdown.clone();
        tokio::spawn(async move { connection.serve(tcp, shutdown).await });
    }
}

#[async_trait]
impl Service for ClientListener {
    async fn start_service(
        &mut self,
        #[cfg(unix)] _fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
        {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "the client listener cannot run");
                return;
            }
        };
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = self.drain.begun() => break,
                changed = shutdown.changed() => match changed {
                    Ok(()) if !*shutdown.borrow() => continue,
                    _ => break,
                },
            };
            match accepted {
                Ok((tcp, _peer)) => self.admit(tcp, &shutdown),
                Err(error) => {
                    tracing::warn!(%error, "accepting a client connection failed");
                    if error.raw_os_error().is_some_and(is_out_of_descriptors) {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        }
        drop(listener);
        tracing::info!("client listener closed: no new connections");
    }

    fn name(&self) -> &str {
        "switchyard client"
    }
}

/// EMFILE (the process) or ENFILE (the system) on Linux and the BSDs.
fn is_out_of_descriptors(errno: i32) -> bool {
    errno == 24 || errno == 23
}

/// One admitted connection: it holds its place until it closes.
struct Connection {
    /// The open-connections gauge, decremented when the connection is dropped.
    open: prometheus::IntGauge,
    /// `switchyard_client_timeouts_total`, for a handshake or first bytes not in time.
    timeouts: prometheus::IntCounterVec,
    gateway: Arc<Gateway>,
    tls: Option<Arc<Acceptor>>,
    header_read_timeout: Duration,
    _place: OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl Connection {
    async fn serve(self, tcp: TcpStream, shutdown: ShutdownWatch) {
        let _ = tcp.set_nodelay(true);
        let mut stream = L4Stream::from(tcp);
        let bound = self.header_read_timeout;
        let stream: Stream = match &self.tls {
            Some(acceptor) => {
                match tokio::time::timeout(bound, acceptor.tls_handshake(stream)).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "client TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("client TLS handshake timed out");
                        self.timeouts.with_label_values(&["header"]).inc();
                        return;
                    }
                }
            }
            None => {
                // pingora reads this much (the h2c preface, or the start of an HTTP/1 request)
                // before it hands us a request; a client that sends nothing is closed here.
                let mut start = [0u8; H2_PREFACE_LEN];
                match tokio::time::timeout(bound, stream.try_peek(&mut start)).await {
                    Ok(Ok(_)) => Box::new(BufferedClientStream::new(stream)),
                    Ok(Err(_)) => return,
                    Err(_) => {
                        self.timeouts.with_label_values(&["header"]).inc();
                        return;
                    }
                }
            }
        };
        let _ = ServerApp::process_new(&self.gateway, stream, &shutdown).await;
    }
}

/// Answers a connection past the bound with a 503 (plain HTTP only) and closes it; the
/// place it would take is never held.
async fn refuse(mut tcp: TcpStream, plain: bool, limit: usize) {
    if plain {
        let error = ProxyError::from(RequestError::TooManyConnections { limit });
        let (status, body) = error.to_response().render(ErrorDialect::OpenAi);
        let head = format!(
            "HTTP/1.1 {status} Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = tcp.try_write(&[head.as_bytes(), &body].concat());
        let _ = tcp.shutdown().await;
        // Read what the client sent, so that closing does not reset the answer away.
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}
