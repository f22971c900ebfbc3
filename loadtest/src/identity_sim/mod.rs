//! Fake AWS identity endpoints for credential tests: an STS that answers `AssumeRole`
//! (SigV4-verified against the [`Keyring`], so a role chain from static source keys or from
//! earlier temporary credentials is checked) and `AssumeRoleWithWebIdentity` (IRSA), and the
//! ECS / EKS Pod Identity container credentials endpoint, and the EC2 instance metadata
//! service's credential paths (IMDSv2). Every credential it issues lives
//! for [`IdentitySimConfig::lifetime`] and is registered in the keyring the Bedrock simulator
//! verifies against. A failure switch makes every endpoint answer 503 (STS) or 500.
//!
//! The proxy reaches it through the AWS SDK's own overrides: `AWS_ENDPOINT_URL_STS` for STS,
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` (+ `AWS_CONTAINER_AUTHORIZATION_TOKEN`) for the
//! container endpoint, `AWS_EC2_METADATA_SERVICE_ENDPOINT` for IMDS.

mod container;
mod imds;
mod keyring;
mod sts;

pub use keyring::{KeyRefusal, Keyring, KnownKey};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::routing::{get, post, put};
use axum::Router;
use tokio::net::TcpListener;

use crate::serve::{lock, spawn_until_stopped};

/// What the fake identity provider trusts and hands out.
#[derive(Debug, Clone)]
pub struct IdentitySimConfig {
    /// The lifetime of every credential issued (short, to force refreshes in tests).
    pub lifetime: Duration,
    /// Filled with the issued credentials; give the Bedrock simulator a clone. Long-term
    /// source keys allowed to call `AssumeRole` are trusted here too.
    pub keyring: Keyring,
    /// The region STS signatures must be scoped to.
    pub region: String,
    /// The OIDC token `AssumeRoleWithWebIdentity` accepts (the content of the token file).
    pub web_identity_token: String,
    /// The `Authorization` value the container endpoint requires.
    pub container_token: String,
}

impl IdentitySimConfig {
    pub fn new(keyring: Keyring, lifetime: Duration) -> Self {
        Self {
            lifetime,
            keyring,
            region: "us-east-1".to_owned(),
            web_identity_token: "eyJhbGciOiJSUzI1NiJ9.sim-web-identity.sig".to_owned(),
            container_token: "sim-container-authorization".to_owned(),
        }
    }
}

/// One `AssumeRole` / `AssumeRoleWithWebIdentity` call the fake STS granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub action: String,
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    /// The access key id that signed an `AssumeRole` (none for web identity).
    pub caller: Option<String>,
    /// The access key id issued.
    pub issued: String,
}

/// What the simulator saw.
#[derive(Debug, Clone, Default)]
pub struct IdentityStats {
    pub grants: Vec<RoleGrant>,
    /// Credentials handed out by the container endpoint (access key ids, in order).
    pub container_issued: Vec<String>,
    /// Credentials handed out by the instance metadata service.
    pub imds_issued: Vec<String>,
    /// Requests refused (bad signature, token, or the failure switch).
    pub refused: u64,
}

pub(crate) struct IdentityState {
    config: IdentitySimConfig,
    failing: AtomicBool,
    counter: AtomicU64,
    stats: Mutex<IdentityStats>,
}

impl IdentityState {
    /// Mints temporary credentials valid for the configured lifetime and trusts them.
    fn issue(&self, prefix: &str) -> Issued {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let access_key_id = format!("ASIA{prefix}{n:08}");
        let now = SystemTime::now();
        let expires = now + self.config.lifetime;
        let issued = Issued {
            issued: now,
            secret_access_key: format!("sim/temporary/secret/{n}"),
            session_token: format!("sim-session-token-{prefix}-{n}"),
            access_key_id,
            expires,
        };
        self.config.keyring.trust(
            &issued.access_key_id,
            KnownKey {
                secret_access_key: issued.secret_access_key.clone(),
                session_token: Some(issued.session_token.clone()),
                expires: Some(expires),
            },
        );
        issued
    }

    fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    fn refused(&self) {
        lock(&self.stats).refused += 1;
    }
}

/// Temporary credentials as issued.
pub(crate) struct Issued {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expires: SystemTime,
    issued: SystemTime,
}

impl Issued {
    /// When it was issued, as IMDS's `LastUpdated`.
    fn issued_at(&self) -> String {
        aws_smithy_types::DateTime::from(self.issued)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default()
    }

    /// ISO 8601 (`2026-12-07T04:05:06Z`), as STS and the container endpoint write it.
    fn expiration(&self) -> String {
        aws_smithy_types::DateTime::from(self.expires)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default()
    }
}

/// A running identity simulator; dropping it stops the listener.
pub struct IdentitySim {
    addr: SocketAddr,
    state: Arc<IdentityState>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// The container endpoint's path.
const CONTAINER_PATH: &str = "/v2/credentials/sim-task";

impl IdentitySim {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: IdentitySimConfig) -> anyhow::Result<IdentitySim> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the identity simulator")?;
        let addr = listener
            .local_addr()
            .context("reading the simulator's address")?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let state = Arc::new(IdentityState {
            config,
            failing: AtomicBool::new(false),
            counter: AtomicU64::new(0),
            stats: Mutex::new(IdentityStats::default()),
        });
        let app = Router::new()
            .route("/", post(sts::handle))
            .route(CONTAINER_PATH, get(container::handle))
            .route("/latest/api/token", put(imds::token))
            .route(
                "/latest/meta-data/iam/security-credentials/",
                get(imds::role),
            )
            .route(
                "/latest/meta-data/iam/security-credentials/{role}",
                get(imds::credentials),
            )
            .with_state(Arc::clone(&state));
        spawn_until_stopped(listener, app, stopped, "identity simulator");
        Ok(IdentitySim { addr, state, stop })
    }

    /// `http://127.0.0.1:PORT`: the value for `AWS_ENDPOINT_URL_STS`.
    pub fn sts_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT`: the value for `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
    pub fn imds_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The value for `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn container_uri(&self) -> String {
        format!("http://{}{CONTAINER_PATH}", self.addr)
    }

    pub fn config(&self) -> &IdentitySimConfig {
        &self.state.config
    }

    /// While on, every endpoint fails (STS 503 `ServiceUnavailable`, container 500).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::Relaxed);
    }

    pub fn stats(&self) -> IdentityStats {
        lock(&self.state.stats).clone()
    }
}

impl Drop for IdentitySim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
