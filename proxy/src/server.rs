//! The pingora `Server`: the client service (our gateway), the admin service and the reload
//! task, each on its own runtime as pingora arranges.

use std::sync::Arc;

use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::gateway::Gateway;
use crate::providers::azure::entra::EntraService;
use crate::providers::bedrock::credentials::CredentialRefresher;
use crate::reload::ReloadService;
use crate::state::AppState;

/// Seconds a SIGTERM waits for in-flight requests before the runtimes stop. pingora sleeps
/// this long unconditionally, so it is a bound, not a drain.
const GRACE_PERIOD_SECONDS: u64 = 10;
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;

/// Builds the server for the state's policy listeners. Blocks in `run_forever`.
pub fn build(state: Arc<AppState>) -> Server {
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

    let mut gateway = Service::new("switchyard client".to_owned(), Gateway::new(state.clone()));
    gateway.add_tcp(&policy.server.listen);
    let mut admin = Service::new("switchyard admin".to_owned(), AdminApp::new(state.clone()));
    admin.add_tcp(&policy.server.admin_listen);
    admin.threads = Some(1);

    server.add_service(gateway);
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
        ReloadService::new(state),
    ));
    server
}
