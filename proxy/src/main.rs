//! The `switchyard` binary: parse arguments, load the policy, start the server. No logic.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use switchyard::metering::{audit, reconcile, service, spend_report};
use switchyard::{
    config, conversations, metrics::Metrics, server, state::AppState, telemetry::Telemetry,
    upstream::UpstreamClient,
};

/// How long the spans still queued at shutdown may take to export.
const TRACE_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Multi-cloud model routing proxy with an OpenAI-compatible API.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Print spend per team, model and provider from the ledger for a date range, or
    /// reconcile it with a provider's cost export (`--reconcile FILE`).
    Spend(SpendArgs),
    /// Print the audit trail: one record per request of a team in a date range (who, which
    /// model, where it ran and why there, what it cost), as CSV or JSON lines.
    Audit(AuditArgs),
}

#[derive(Debug, clap::Args)]
struct AuditArgs {
    /// The routing policy (its `ledger.url` is read).
    #[arg(long, short, default_value = "routes.yaml")]
    config: PathBuf,
    /// The team.
    #[arg(long)]
    team: String,
    /// Start (UTC, inclusive), `YYYY-MM-DD` or an RFC 3339 time.
    #[arg(long)]
    from: String,
    /// End (UTC, exclusive), `YYYY-MM-DD` or an RFC 3339 time.
    #[arg(long)]
    to: String,
    /// Only requests for this model (the name the client asked for).
    #[arg(long)]
    model: Option<String>,
    #[arg(long, value_enum, default_value = "csv")]
    format: AuditFormat,
    /// At most this many records (the oldest first).
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AuditFormat {
    Csv,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, clap::Args)]
struct SpendArgs {
    /// The routing policy (its `ledger.url` is read).
    #[arg(long, short, default_value = "routes.yaml")]
    config: PathBuf,
    /// First day (UTC, inclusive), `YYYY-MM-DD` or an RFC 3339 time.
    #[arg(long)]
    from: String,
    /// End (UTC, exclusive), `YYYY-MM-DD` or an RFC 3339 time.
    #[arg(long)]
    to: String,
    /// Only this team (not with --reconcile: the bill is not split by team).
    #[arg(long, conflicts_with = "reconcile")]
    team: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
    /// A provider's cost export (CSV) to reconcile with the ledger, per model and day.
    #[arg(long, value_name = "FILE")]
    reconcile: Option<PathBuf>,
    /// The export's kind; told from its header when absent.
    #[arg(long, value_enum, requires = "reconcile")]
    provider_format: Option<ProviderFormat>,
    /// Maps a billed model (usage type, model id or meter name) to a target:
    /// `BILLED_KEY=PROVIDER/MODEL`. Repeatable.
    #[arg(long = "map", value_name = "KEY=TARGET", requires = "reconcile")]
    mappings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    Csv,
    Table,
    /// With --reconcile only.
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProviderFormat {
    /// AWS Data Exports CUR 2.0 (Amazon Bedrock).
    AwsCur,
    /// Azure Cost Management cost and usage details (Azure OpenAI).
    Azure,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    // Whatever lines are still gathered leave when main returns, however it returns.
    let _flush_log = FlushLogOnExit;
    match args.command {
        Some(Command::Spend(spend)) => return spend_command(spend),
        Some(Command::Audit(audit)) => return audit_command(audit),
        None => {}
    }
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
    let telemetry = match &policy.telemetry.otlp {
        Some(settings) => match Telemetry::start(settings, metrics.telemetry.clone()) {
            Ok(telemetry) => Some(telemetry),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
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
        egress_proxy = client.through_egress_proxy(),
        "switchyard starting"
    );
    let (spend_runtime, spend) = match service::start(&policy, &metrics) {
        Ok(started) => started,
        Err(error) => {
            eprintln!("error: cannot open the ledger: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stored = conversations::service::start(&policy.responses, &spend, &metrics);
    let state = Arc::new(
        AppState::new(policy, args.config, metrics, client)
            .with_spend(spend)
            .with_conversations(stored.store)
            .with_tracing(
                telemetry
                    .as_ref()
                    .map(Telemetry::tracing)
                    .unwrap_or_default(),
            ),
    );
    spend_runtime.refresh_gauges(state.clone());
    spend_runtime.sweep_retention(state.clone());
    let (server, run) = match server::build(state.clone()) {
        Ok(built) => built,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    server.run(run);
    if let Some(sweeper) = stored.sweeper {
        spend_runtime.block_on(sweeper.stop());
    }
    spend_runtime.shutdown(&state.spend);
    if let Some(telemetry) = telemetry {
        telemetry.shutdown(TRACE_FLUSH);
    }
    ExitCode::SUCCESS
}

/// `switchyard spend`: the finance report, printed to stdout.
fn spend_command(args: SpendArgs) -> ExitCode {
    let run = || -> Result<String, String> {
        let policy = config::load(&args.config).map_err(|e| e.to_string())?;
        let from = spend_report::parse_date(&args.from)?;
        let to = spend_report::parse_date(&args.to)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        if let Some(file) = &args.reconcile {
            let request = reconcile::command::Request {
                file: file.clone(),
                format: args.provider_format.map(|f| match f {
                    ProviderFormat::AwsCur => reconcile::ExportFormat::AwsCur,
                    ProviderFormat::Azure => reconcile::ExportFormat::Azure,
                }),
                from_ms: from,
                to_ms: to,
                from: args.from.clone(),
                to: args.to.clone(),
                mappings: args.mappings.clone(),
                output: match args.format {
                    ReportFormat::Csv => reconcile::OutputFormat::Csv,
                    ReportFormat::Table => reconcile::OutputFormat::Table,
                    ReportFormat::Json => reconcile::OutputFormat::Json,
                },
            };
            return runtime
                .block_on(reconcile::command::run(&policy, &request))
                .map_err(|e| e.to_string());
        }
        if args.format == ReportFormat::Json {
            return Err("--format json is for --reconcile; the report is csv or table".to_owned());
        }
        let rows = runtime
            .block_on(async {
                let store =
                    switchyard::metering::ledger::Store::open(policy.ledger.url.expose()).await?;
                store.spend(from, to, args.team.as_deref()).await
            })
            .map_err(|e| e.to_string())?;
        let format = match args.format {
            ReportFormat::Csv => spend_report::ReportFormat::Csv,
            ReportFormat::Table | ReportFormat::Json => spend_report::ReportFormat::Table,
        };
        Ok(spend_report::render_report(&rows, format))
    };
    match run() {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `switchyard audit`: the audit trail, streamed to stdout.
fn audit_command(args: AuditArgs) -> ExitCode {
    let run = || -> Result<usize, String> {
        let policy = config::load(&args.config).map_err(|e| e.to_string())?;
        let from_ms = spend_report::parse_date(&args.from)?;
        let to_ms = spend_report::parse_date(&args.to)?;
        if from_ms >= to_ms {
            return Err("--from must be before --to".to_owned());
        }
        let query = switchyard::metering::ledger::audit::AuditQuery {
            team: Some(args.team.clone()),
            model: args.model.clone(),
            ..switchyard::metering::ledger::audit::AuditQuery::all(from_ms, to_ms, 0)
        };
        let format = match args.format {
            AuditFormat::Csv => audit::Format::Csv,
            AuditFormat::Jsonl => audit::Format::Jsonl,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let store = switchyard::metering::ledger::Store::open(policy.ledger.url.expose())
                .await
                .map_err(|e| e.to_string())?;
            audit::export(&store, query, args.limit, format, std::io::stdout().lock())
                .await
                .map_err(|e| e.to_string())
        })
    };
    match run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the log's gathered lines when dropped (docs/operations.md, "Logs").
struct FlushLogOnExit;

impl Drop for FlushLogOnExit {
    fn drop(&mut self) {
        switchyard::log_writer::flush();
    }
}

/// The log filter without `RUST_LOG`. The platform verifier's own ERROR for an untrusted
/// upstream certificate is off: the attempt's failure (logged by the proxy, with the same
/// cause) already says it once, in the proxy's fields.
const DEFAULT_LOG_FILTER: &str =
    "info,pingora_core=warn,aws_config=error,rustls_platform_verifier=off";

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(switchyard::log_writer::GatheringStderr);
    match format {
        // Every value quoted when it is not a plain token: no value can forge a field.
        LogFormat::Text => builder.fmt_fields(switchyard::logging::QuotedFields).init(),
        LogFormat::Json => builder.json().init(),
    }
}
