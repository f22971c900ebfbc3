//! `loadtest sim <provider>`: run a simulator in the foreground until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use loadtest::duration::parse_duration;
use loadtest::{BedrockFault, BedrockSim, BedrockSimConfig, OpenAiSim, SimConfig};

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// An OpenAI-compatible upstream (chat completions, embeddings, models).
    /// Faults and stats: POST /_sim/faults, GET /_sim/stats, POST /_sim/reset.
    Openai(OpenAiArgs),
    /// A Bedrock Runtime upstream (Converse, ConverseStream, InvokeModel embeddings) that
    /// verifies SigV4 with the given key pair; use its URL as a bedrock provider's `endpoint`.
    Bedrock(BedrockArgs),
}

#[derive(Debug, Args)]
pub struct BedrockArgs {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to bind; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Name shown in answers.
    #[arg(long, default_value = "bedrock-sim")]
    name: String,
    /// The access key id requests must be signed with.
    #[arg(long, env = "SIM_AWS_ACCESS_KEY_ID", default_value = "AKIDSIMULATOR")]
    access_key_id: String,
    /// The secret access key requests must be signed with.
    #[arg(
        long,
        env = "SIM_AWS_SECRET_ACCESS_KEY",
        default_value = "sim/secret/key"
    )]
    secret_access_key: String,
    /// The region requests must be signed for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Delay before each answer and each stream frame, e.g. 20ms.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    latency: Duration,
    /// Answer the first N model requests with 429 ThrottlingException.
    #[arg(long, default_value_t = 0)]
    throttle_first: usize,
}

#[derive(Debug, Args)]
pub struct OpenAiArgs {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to bind; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Name shown in answers, system_fingerprint and the x-sim-name header.
    #[arg(long, default_value = "openai-sim")]
    name: String,
    /// Delay before the response headers and first chunk, e.g. 50ms.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    ttft: Duration,
    /// Delay between streamed content chunks, e.g. 10ms.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    inter_token: Duration,
    /// Content tokens per answer.
    #[arg(long, default_value_t = 8)]
    tokens: usize,
    /// Require `Authorization: Bearer <KEY>`.
    #[arg(long, env = "SIM_API_KEY")]
    api_key: Option<String>,
    /// Requests per minute before answering 429.
    #[arg(long)]
    rpm: Option<u64>,
    /// Do not send x-ratelimit-* headers.
    #[arg(long)]
    no_rate_limit_headers: bool,
}

pub async fn run(command: SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Openai(args) => run_openai(args).await,
        SimCommand::Bedrock(args) => run_bedrock(args).await,
    }
}

async fn run_bedrock(args: BedrockArgs) -> anyhow::Result<()> {
    let config = BedrockSimConfig {
        name: args.name,
        access_key_id: args.access_key_id,
        secret_access_key: args.secret_access_key,
        region: args.region,
        latency: args.latency,
    };
    let sim = BedrockSim::start_on(config, SocketAddr::new(args.host, args.port)).await?;
    sim.push_faults(std::iter::repeat_n(
        BedrockFault::Throttle,
        args.throttle_first,
    ));
    // Scripts wait for this exact line to learn the port.
    println!("{} listening on {}", sim.config().name, sim.endpoint());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("Ctrl-C received, stopping the simulator");
    drop(sim);
    Ok(())
}

async fn run_openai(args: OpenAiArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        name: args.name,
        ttft: args.ttft,
        inter_token: args.inter_token,
        output_tokens: args.tokens,
        api_key: args.api_key,
        rpm_limit: args.rpm,
        send_rate_limit_headers: !args.no_rate_limit_headers,
    };
    let sim = OpenAiSim::start_on(config, SocketAddr::new(args.host, args.port)).await?;
    // Scripts wait for this exact line to learn the port.
    println!("{} listening on {}", sim.config().name, sim.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("Ctrl-C received, stopping the simulator");
    sim.shutdown();
    Ok(())
}
