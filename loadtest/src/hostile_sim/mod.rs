//! A deliberately hostile upstream (docs/security.md): it answers whatever it is sent in the
//! way its URL's first path segment names, so one simulator serves any provider kind
//! (`base_url`/`endpoint` = [`HostileSim::url`] of a [`Behaviour`]):
//!
//! - `redirect-307`, `redirect-302`: a redirect whose `Location` points at a second listener
//!   (the "thief") that records every request it receives;
//! - `error-200`: a 200 whose JSON body is an OpenAI-style `{"error": …}`;
//! - `huge-body`: a 200 chat completion of ~50 MB, streamed without a `content-length` and
//!   produced piece by piece (the simulator never holds it);
//! - `echo-credentials`: a 400 whose error message repeats the request's URL and credential
//!   headers (`authorization`, `api-key`, `x-api-key`, `x-amz-security-token`);
//! - `absurd-headers`: a valid chat completion under ninety junk headers, a 16 KiB header
//!   value and nonsensical rate-limit and `retry-after` values.
//!
//! Run alone with `loadtest sim hostile`.

mod respond;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::serve::{lock, spawn_until_stopped};

/// How the simulator answers a request, chosen by the first segment of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Redirect307,
    Redirect302,
    ErrorIn200,
    HugeBody,
    EchoCredentials,
    AbsurdHeaders,
}

impl Behaviour {
    pub const ALL: [Behaviour; 6] = [
        Behaviour::Redirect307,
        Behaviour::Redirect302,
        Behaviour::ErrorIn200,
        Behaviour::HugeBody,
        Behaviour::EchoCredentials,
        Behaviour::AbsurdHeaders,
    ];

    /// The path segment that selects it.
    pub fn segment(self) -> &'static str {
        match self {
            Behaviour::Redirect307 => "redirect-307",
            Behaviour::Redirect302 => "redirect-302",
            Behaviour::ErrorIn200 => "error-200",
            Behaviour::HugeBody => "huge-body",
            Behaviour::EchoCredentials => "echo-credentials",
            Behaviour::AbsurdHeaders => "absurd-headers",
        }
    }

    fn of(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.segment() == segment)
    }
}

/// One request as a listener received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Log {
    hostile: Vec<Received>,
    thief: Vec<Received>,
}

#[derive(Clone)]
struct Shared {
    log: Arc<Mutex<Log>>,
    thief: SocketAddr,
    huge_body_bytes: usize,
}

/// The running simulator; dropping it stops both listeners.
pub struct HostileSim {
    addr: SocketAddr,
    shared: Shared,
    _stop: watch::Sender<bool>,
}

/// Size of the `huge-body` answer unless [`HostileSim::start_with`] says otherwise.
pub const DEFAULT_HUGE_BODY_BYTES: usize = 50 * 1024 * 1024;

impl HostileSim {
    /// Both listeners on free loopback ports.
    pub async fn start() -> anyhow::Result<HostileSim> {
        Self::start_with(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            DEFAULT_HUGE_BODY_BYTES,
        )
        .await
    }

    /// The hostile listener on `addr`, the thief on a free port of the same host;
    /// `huge-body` answers carry `huge_body_bytes` of content.
    pub async fn start_with(addr: SocketAddr, huge_body_bytes: usize) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the hostile simulator to {addr}"))?;
        let addr = listener.local_addr()?;
        let thief_listener = TcpListener::bind(SocketAddr::new(addr.ip(), 0))
            .await
            .context("binding the redirect target")?;
        let shared = Shared {
            log: Arc::default(),
            thief: thief_listener.local_addr()?,
            huge_body_bytes,
        };
        let (stop, stopped) = watch::channel(false);
        let hostile = Router::new().fallback(hostile).with_state(shared.clone());
        let thief = Router::new().fallback(thief).with_state(shared.clone());
        spawn_until_stopped(listener, hostile, stopped.clone(), "hostile simulator");
        spawn_until_stopped(thief_listener, thief, stopped, "redirect target");
        Ok(HostileSim {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// `http://127.0.0.1:PORT/<behaviour>`: a `base_url` or `endpoint` that behaves so.
    pub fn url(&self, behaviour: Behaviour) -> String {
        format!("http://{}/{}", self.addr, behaviour.segment())
    }

    /// Where the redirects point.
    pub fn thief_url(&self) -> String {
        format!("http://{}", self.shared.thief)
    }

    /// Every request the redirect target received (nothing, if no redirect was followed).
    pub fn stolen(&self) -> Vec<Received> {
        lock(&self.shared.log).thief.clone()
    }

    /// Every request the hostile listener received.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.log).hostile.clone()
    }
}

fn record(request: &Request) -> Received {
    Received {
        method: request.method().to_string(),
        uri: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.to_string(), value)
            })
            .collect(),
    }
}

async fn hostile(State(shared): State<Shared>, request: Request) -> Response {
    let received = record(&request);
    lock(&shared.log).hostile.push(received.clone());
    let path = request.uri().path().trim_start_matches('/');
    let (segment, rest) = path.split_once('/').unwrap_or((path, ""));
    match Behaviour::of(segment) {
        Some(behaviour) => respond::answer(behaviour, &received, rest, &shared),
        None => respond::not_found(segment),
    }
}

async fn thief(State(shared): State<Shared>, request: Request) -> Response {
    lock(&shared.log).thief.push(record(&request));
    respond::stolen_answer()
}
