//! `kind: azure` under the conformance list: one deployment of the Azure simulator.

use loadtest::{answer_text, AzureDeployment, AzureSim, AzureSimConfig};

use super::openai::openai_fault;
use super::{
    openai_image, openai_tool_exchange, CacheReport, SeenImage, SeenToolExchange, Trouble, Tuning,
    Upstream, SLOW_EVENTS, SLOW_PACE,
};

const NAME: &str = "azure-primary";
const DEPLOYMENT: &str = "gpt4o-conf";
const KEY: &str = "azure-conformance-key-4b9e";
const OUTPUT_TOKENS: usize = 8;

pub struct Azure {
    sim: AzureSim,
}

impl Upstream for Azure {
    const KIND: &'static str = "azure";
    const CACHE: CacheReport = CacheReport { read: 64, write: 0 };

    async fn start(tuning: Tuning) -> Self {
        let mut config = AzureSimConfig {
            name: NAME.to_owned(),
            api_key: Some(KEY.to_owned()),
            deployments: vec![AzureDeployment::new(DEPLOYMENT, "gpt-4o-2024-08-06")],
            output_tokens: OUTPUT_TOKENS,
            ..AzureSimConfig::default()
        };
        if tuning.cache {
            config.cached_prompt_tokens = Self::CACHE.read;
        }
        if tuning.slow {
            config.output_tokens = SLOW_EVENTS;
            config.inter_token = SLOW_PACE;
        }
        let sim = AzureSim::start(config)
            .await
            .expect("starting the Azure simulator");
        Azure { sim }
    }

    fn provider_yaml(&self, name: &str) -> String {
        format!(
            "  {name}: {{ kind: azure, endpoint: \"{}\", api_key: {KEY}, api_version: 2024-10-21 }}\n",
            self.sim.endpoint()
        )
    }

    fn target_yaml(&self) -> String {
        format!("deployment: {DEPLOYMENT}")
    }

    fn inject(&self, trouble: Trouble) {
        self.sim.push_faults(DEPLOYMENT, [openai_fault(trouble)]);
    }

    fn model_requests(&self) -> u64 {
        self.sim.stats(DEPLOYMENT).chat_requests
    }

    fn in_flight(&self) -> u64 {
        self.sim.in_flight(DEPLOYMENT)
    }

    fn expected_answer(&self, _prompt: &str) -> String {
        answer_text(&format!("{NAME}/{DEPLOYMENT}"), OUTPUT_TOKENS)
    }

    fn seen_tool_exchange(&self) -> Option<SeenToolExchange> {
        openai_tool_exchange(&self.sim.stats(DEPLOYMENT).last_body?)
    }

    fn seen_image(&self) -> Option<SeenImage> {
        openai_image(&self.sim.stats(DEPLOYMENT).last_body?)
    }
}
