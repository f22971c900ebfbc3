//! The `switchyard` binary: parse arguments, load the policy, start the server. No logic.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchyard::{config, metrics::Metrics, server, state::AppState, upstream::UpstreamClient};

/// Multi-cloud model routing proxy with an OpenAI-compatible API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The routing policy.
    #[arg(long, short, default_value = "routes.yaml")]
    config: PathBuf,
    /// Validate the policy, print it as it will be served, and exit (1 on error).
    #[arg(long)]
    check: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    let policy = match config::load(&args.config) {
        Ok(policy) => policy,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        print!("{}", config::describe(&policy));
        return ExitCode::SUCCESS;
    }
    for warning in &policy.warnings {
        tracing::warn!("{warning}");
    }
    let metrics = match Metrics::new() {
        Ok(metrics) => metrics,
        Err(error) => {
            eprintln!("error: cannot register metrics: {error}");
            return ExitCode::FAILURE;
        }
    };
    let client = match UpstreamClient::new(policy.server.connect_timeout) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: cannot build the upstream HTTP client: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        listen = %policy.server.listen,
        admin_listen = %policy.server.admin_listen,
        version = %policy.version,
        "switchyard starting"
    );
    let state = Arc::new(AppState::new(policy, args.config, metrics, client));
    server::build(state).run_forever()
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,pingora_core=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
