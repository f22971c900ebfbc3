//! `loadtest sim <provider>`: run a simulator in the foreground until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use loadtest::duration::parse_duration;
use loadtest::{
    AnthropicFault, AnthropicSim, AnthropicSimConfig, AzureDeployment, AzureSim, AzureSimConfig,
    BedrockFault, BedrockSim, BedrockSimConfig, OpenAiSim, SimConfig,
};

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// An OpenAI-compatible upstream (chat completions, the Responses API, embeddings, models).
    /// Faults and stats: POST /_sim/faults, GET /_sim/stats, POST /_sim/reset; the last
    /// request bodies: GET /_sim/requests (every simulator has it, cleared by POST /_sim/reset).
    Openai(OpenAiArgs),
    /// An Azure OpenAI resource: both URL forms, api-key or bearer auth, per-deployment
    /// quotas, content-filter triggers and a fake Entra token endpoint.
    Azure(AzureArgs),
    /// A Bedrock Runtime upstream (Converse, ConverseStream, InvokeModel embeddings) that
    /// verifies SigV4 with the given key pair; use its URL as a bedrock provider's `endpoint`.
    Bedrock(BedrockArgs),
    /// An Anthropic Messages API upstream (/v1/messages plain and streamed, count_tokens,
    /// models) requiring `x-api-key` and `anthropic-version`; use its URL as an anthropic
    /// provider's `endpoint`.
    Anthropic(AnthropicArgs),
}

#[derive(Debug, Args)]
pub struct AnthropicArgs {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to bind; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Name shown in answers and the x-sim-name header.
    #[arg(long, default_value = "anthropic-sim")]
    name: String,
    /// The key requests must carry in `x-api-key`.
    #[arg(long, env = "SIM_ANTHROPIC_API_KEY", default_value = "sk-ant-sim")]
    api_key: String,
    /// Delay before each answer's headers, e.g. 20ms.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    latency: Duration,
    /// Delay between stream events, e.g. 5ms.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    inter_event: Duration,
    /// Requests per minute before answering 429 (also the ratelimit headers' limit).
    #[arg(long, default_value_t = 4000)]
    rpm: u64,
    /// Answer the first N message requests with 529 overloaded_error.
    #[arg(long, default_value_t = 0)]
    overload_first: usize,
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
pub struct AzureArgs {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to bind; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "azure-sim")]
    name: String,
    /// Deployments as NAME=MODEL or NAME=MODEL:RPM, e.g. gpt-4o-prod=gpt-4o-2024-08-06:60.
    #[arg(long = "deployment", required = true, value_parser = parse_deployment)]
    deployments: Vec<AzureDeployment>,
    /// Require `api-key: <KEY>`.
    #[arg(long, env = "SIM_AZURE_API_KEY")]
    api_key: Option<String>,
    /// Also accept `Authorization: Bearer <TOKEN>` (an Entra token).
    #[arg(long)]
    bearer_token: Option<String>,
    /// Client secret the fake Entra endpoint (POST /{tenant}/oauth2/v2.0/token) accepts.
    #[arg(long)]
    entra_client_secret: Option<String>,
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    ttft: Duration,
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    inter_token: Duration,
    #[arg(long, default_value_t = 8)]
    tokens: usize,
}

fn parse_deployment(text: &str) -> Result<AzureDeployment, String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=MODEL[:RPM]"))?;
    let (model, rpm) = match rest.split_once(':') {
        Some((model, rpm)) => {
            let rpm = rpm
                .parse::<u64>()
                .map_err(|e| format!("rpm `{rpm}`: {e}"))?;
            (model, Some(rpm))
        }
        None => (rest, None),
    };
    let mut deployment = AzureDeployment::new(name, model);
    deployment.rpm = rpm;
    Ok(deployment)
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
        SimCommand::Azure(args) => run_azure(args).await,
        SimCommand::Bedrock(args) => run_bedrock(args).await,
        SimCommand::Anthropic(args) => run_anthropic(args).await,
    }
}

async fn run_anthropic(args: AnthropicArgs) -> anyhow::Result<()> {
    let mut config = AnthropicSimConfig::new(&args.name);
    config.api_key = args.api_key;
    config.latency = args.latency;
    config.inter_event = args.inter_event;
    config.quota.requests_per_minute = args.rpm;
    let sim = AnthropicSim::start_on(config, SocketAddr::new(args.host, args.port)).await?;
    sim.push_faults(std::iter::repeat_n(
        AnthropicFault::Overloaded,
        args.overload_first,
    ));
    announce_and_wait(&sim.config().name, &sim.base_url()).await?;
    drop(sim);
    Ok(())
}

async fn run_bedrock(args: BedrockArgs) -> anyhow::Result<()> {
    let config = BedrockSimConfig {
        access_key_id: args.access_key_id,
        secret_access_key: args.secret_access_key,
        region: args.region,
        latency: args.latency,
        ..BedrockSimConfig::new(&args.name)
    };
    let sim = BedrockSim::start_on(config, SocketAddr::new(args.host, args.port)).await?;
    sim.push_faults(std::iter::repeat_n(
        BedrockFault::Throttle,
        args.throttle_first,
    ));
    announce_and_wait(&sim.config().name, &sim.endpoint()).await?;
    drop(sim);
    Ok(())
}

async fn run_azure(args: AzureArgs) -> anyhow::Result<()> {
    let config = AzureSimConfig {
        name: args.name,
        api_key: args.api_key,
        bearer_token: args.bearer_token,
        entra_client_secret: args.entra_client_secret,
        deployments: args.deployments,
        ttft: args.ttft,
        inter_token: args.inter_token,
        output_tokens: args.tokens,
        ..AzureSimConfig::default()
    };
    let sim = AzureSim::start_on(config, SocketAddr::new(args.host, args.port)).await?;
    announce_and_wait(&sim.config().name, &sim.endpoint()).await?;
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
        ..SimConfig::default()
    };
    let sim = OpenAiSim::start_on(config, SocketAddr::new(args.host, args.port)).await?;
    announce_and_wait(&sim.config().name, &sim.base_url()).await?;
    sim.shutdown();
    Ok(())
}

/// Prints the line scripts wait for to learn the port, then waits for Ctrl-C.
async fn announce_and_wait(name: &str, url: &str) -> anyhow::Result<()> {
    // Scripts wait for this exact line to learn the port.
    println!("{name} listening on {url}");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("Ctrl-C received, stopping the simulator");
    Ok(())
}
