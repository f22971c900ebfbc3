//! The `loadtest` binary: one subcommand per tool (`sim`, `demo`, `bench`). Argument parsing
//! and logging setup only; the work lives in `cli::*` and the library.
//!
//! Run a simulator: `cargo run -p loadtest -- sim openai --port 0 --ttft 50ms --inter-token 10ms --tokens 16`
//! Run the overhead benchmark: `cargo run --release -p loadtest -- bench`

mod cli;
mod scenario;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    about = "Provider simulators, load generator and demo for Switchyard"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a provider simulator until Ctrl-C.
    #[command(subcommand)]
    Sim(cli::sim::SimCommand),
    /// Start simulated providers and the proxy, send traffic, print what was served where.
    Demo(cli::demo::DemoArgs),
    /// Run a routing scenario (or `all`) against simulators and print what the router did.
    Scenario(cli::scenario::ScenarioArgs),
    /// Measure the proxy's overhead: direct vs nginx vs switchyard against one simulator.
    Bench(cli::bench::BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match Cli::parse().command {
        Command::Sim(command) => cli::sim::run(command).await,
        Command::Demo(args) => cli::demo::run(args).await,
        Command::Scenario(args) => cli::scenario::run(args).await,
        Command::Bench(args) => cli::bench::run(args).await,
    }
}
