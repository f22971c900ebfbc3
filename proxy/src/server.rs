//! The pingora `Server`: the client listener (our own accept loop in front of the gateway),
//! the admin service and the background tasks, each on its own runtime as pingora arranges;
//! and the signal watcher that drains requests before pingora stops those runtimes.

use std::sync::Arc;

use pingora::listeners::tls::Acceptor;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::gateway::Gateway;
use crate::listener::accept::ClientListener;
use crate::listener::certificate::{self, PolicyCertificate};
use crate::listener::descriptors;
use crate::listener::drain::Drain;
use crate::listener::signals::DrainingSignals;
use crate::providers::azure::entra::EntraService;
use crate::providers::bedrock::credentials::CredentialRefresher;
use crate::reload::ReloadService;
use crate::state::AppState;

/// pingora's fixed wait after a shutdown signal: none, as [`DrainingSignals`] has already
/// waited for the requests in flight.
const GRACE_PERIOD_SECONDS: u64 = 0;
/// What the runtimes get to stop once drained (idle kept-alive connections are cut).
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 2;

/// Builds the server for the state's policy listeners, and the arguments to run it with.
/// Fails when the client port cannot be bound or TLS cannot be set up.
pub fn build(state: Arc<AppState>) -> Result<(Server, RunArgs), String> {
    let policy = state.policy();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(GRACE_PERIOD_SECONDS),
        graceful_shutdown_timeout_seconds: Some(SHUTDOWN_TIMEOUT_SECONDS),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let max_connections = max_client_connections(policy.server.client.max_connections);
    let listener = std::net::TcpListener::bind(&policy.server.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", policy.server.listen))?;
    let tls = match &policy.server.tls {
        Some(tls) => {
            let resolver = PolicyCertificate::new(state.clone(), tls.certificate.clone());
            let config = certificate::server_config(resolver)?;
            Some(Acceptor::from_server_config(Arc::new(config)))
        }
        None => None,
    };
    tracing::info!(
        listen = %policy.server.listen,
        tls = tls.is_some(),
        max_client_connections = max_connections,
        "client listener bound"
    );
    let drain = Drain::new();
    let gateway = Arc::new(Gateway::new(state.clone(), drain.clone()));
    let client = ClientListener::new(
        listener,
        gateway,
        tls,
        max_connections,
        drain.clone(),
        state.clone(),
    );
    let mut admin = Service::new("switchyard admin".to_owned(), AdminApp::new(state.clone()));
    admin.add_tcp(&policy.server.admin_listen);
    admin.threads = Some(1);

    server.add_service(client);
    server.add_service(admin);
    server.add_service(background_service(
        "azure entra tokens",
        EntraService::new(state.clone()),
    ));
    server.add_service(background_service(
        "aws credentials",
        CredentialRefresher::new(state.clone()),
    ));
    server.add_service(background_service(
        "policy reload",
        ReloadService::new(state.clone()),
    ));
    let run = RunArgs {
        shutdown_signal: Box::new(DrainingSignals::new(state, drain)),
    };
    Ok((server, run))
}

/// Raises the descriptor limit and keeps the connection bound under it, saying so.
fn max_client_connections(configured: usize) -> usize {
    match descriptors::raise_limit() {
        Ok(limit) => {
            let max = descriptors::effective_max_connections(configured, limit);
            tracing::info!(descriptor_limit = limit, "open-file descriptor limit");
            if max < configured {
                tracing::warn!(
                    configured,
                    used = max,
                    descriptor_limit = limit,
                    "server.max_client_connections is more than the descriptor limit carries; using less"
                );
            }
            max
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-file descriptor limit");
            configured
        }
    }
}
