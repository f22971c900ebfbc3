//! What the Anthropic-dialect end-to-end tests share (the SDK scenarios and the Claude Code
//! replay): two Anthropic simulators, a Bedrock simulator serving Claude through InvokeModel,
//! an OpenAI simulator, and one `routes.yaml` naming a Claude model per path through them.

use loadtest::{AnthropicSim, AnthropicSimConfig, BedrockSim, BedrockSimConfig, OpenAiSim};

use crate::fixtures::{key_hash, start_sim, ALPHA_KEY, UPSTREAM_KEY_A};
use crate::proxy::Proxy;

/// The Anthropic API's model id every Anthropic target serves.
pub const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5-20250929";
/// The same model on Bedrock, through a cross-region inference profile.
pub const BEDROCK_MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
/// The key of team `broke`, whose budget is spent before it starts (0 USD).
pub const BROKE_KEY: &str = "sk-broke-e2e-5f0c2a";
/// What the two Anthropic simulators require as `x-api-key` (never what a client sends).
pub const ANTHROPIC_KEY_A: &str = "sk-ant-upstream-a";
pub const ANTHROPIC_KEY_B: &str = "sk-ant-upstream-b";

/// The upstreams: `anth-a` / `anth-b` (Anthropic API), `aws` (Bedrock; its Claude answers
/// as `aws`), `oai` (OpenAI-compatible, for paths without a native count).
pub struct ClaudeSims {
    pub anth_a: AnthropicSim,
    pub anth_b: AnthropicSim,
    pub aws: BedrockSim,
    pub oai: OpenAiSim,
}

/// The models of [`ClaudeSims::routes`]: one per way of reaching Claude.
pub mod models {
    /// `anth-a` only.
    pub const ANTHROPIC: &str = "claude-anthropic";
    /// Bedrock InvokeModel only.
    pub const BEDROCK: &str = "claude-bedrock";
    /// `anth-a` then `anth-b`, in that order.
    pub const ANTHROPIC_PAIR: &str = "claude-failover";
    /// Bedrock, then `anth-b`.
    pub const BEDROCK_THEN_ANTHROPIC: &str = "claude-bedrock-first";
    /// An OpenAI-compatible target: no upstream count_tokens.
    pub const OPENAI: &str = "gpt-compatible";
}

impl ClaudeSims {
    pub async fn start() -> ClaudeSims {
        let anthropic = |name: &str, key: &str| AnthropicSimConfig {
            api_key: key.to_owned(),
            ..AnthropicSimConfig::new(name)
        };
        ClaudeSims {
            anth_a: AnthropicSim::start(anthropic("anth-a", ANTHROPIC_KEY_A))
                .await
                .expect("starting anth-a"),
            anth_b: AnthropicSim::start(anthropic("anth-b", ANTHROPIC_KEY_B))
                .await
                .expect("starting anth-b"),
            aws: BedrockSim::start(BedrockSimConfig::new("aws"))
                .await
                .expect("starting the Bedrock simulator"),
            oai: start_sim("oai", UPSTREAM_KEY_A).await,
        }
    }

    /// The policy: team `alpha` ([`ALPHA_KEY`]) may use every model; team `broke`
    /// ([`BROKE_KEY`]) has a budget of 0 USD. Every target has an explicit price.
    pub fn routes(&self) -> String {
        let aws = self.aws.config();
        let alpha = key_hash(ALPHA_KEY);
        let broke = key_hash(BROKE_KEY);
        let price = "price: { input: 3.0, output: 15.0, cached_input: 0.3 }";
        format!(
            r#"version: 1
server:
  listen: 127.0.0.1:{{LISTEN}}
  admin_listen: 127.0.0.1:{{ADMIN}}
  request_timeout: 20s
  first_byte_timeout: 5s
providers:
  anth-a: {{ kind: anthropic, base_url: "{a}", api_key: {ANTHROPIC_KEY_A} }}
  anth-b: {{ kind: anthropic, base_url: "{b}", api_key: {ANTHROPIC_KEY_B} }}
  aws: {{ kind: bedrock, region: {region}, endpoint: "{endpoint}", access_key_id: {akid}, secret_access_key: "{secret}" }}
  oai: {{ kind: openai, base_url: "{oai}", api_key: {UPSTREAM_KEY_A} }}
models:
  {anthropic}:
    targets:
      - {{ provider: anth-a, model: {ANTHROPIC_MODEL}, {price} }}
  {bedrock}:
    targets:
      - {{ provider: aws, model: "{BEDROCK_MODEL}", {price} }}
  {pair}:
    strategy: priority
    targets:
      - {{ provider: anth-a, model: {ANTHROPIC_MODEL}, {price} }}
      - {{ provider: anth-b, model: {ANTHROPIC_MODEL}, {price} }}
  {mixed}:
    strategy: priority
    targets:
      - {{ provider: aws, model: "{BEDROCK_MODEL}", {price} }}
      - {{ provider: anth-b, model: {ANTHROPIC_MODEL}, {price} }}
  {openai}:
    targets:
      - {{ provider: oai, model: up-a, {price} }}
teams:
  alpha: {{ keys: ["{alpha}"] }}
  broke: {{ keys: ["{broke}"], budget: {{ usd: 0, period: monthly }} }}
"#,
            a = self.anth_a.base_url(),
            b = self.anth_b.base_url(),
            region = aws.region,
            endpoint = self.aws.endpoint(),
            akid = aws.access_key_id,
            secret = aws.secret_access_key,
            oai = self.oai.base_url(),
            anthropic = models::ANTHROPIC,
            bedrock = models::BEDROCK,
            pair = models::ANTHROPIC_PAIR,
            mixed = models::BEDROCK_THEN_ANTHROPIC,
            openai = models::OPENAI,
        )
    }

    /// The simulators and a proxy on [`routes`](Self::routes).
    pub async fn with_proxy() -> (ClaudeSims, Proxy) {
        let sims = ClaudeSims::start().await;
        let proxy = Proxy::start(&sims.routes()).await;
        (sims, proxy)
    }
}

/// The proxy's root URL, what Anthropic clients take as their base URL (they append
/// `/v1/messages`; Claude Code's `ANTHROPIC_BASE_URL`).
pub fn anthropic_base_url(proxy: &Proxy) -> String {
    proxy.base_url().trim_end_matches("/v1").to_owned()
}
