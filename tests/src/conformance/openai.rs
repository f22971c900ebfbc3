//! `kind: openai` under the conformance list: the OpenAI-compatible simulator.

use loadtest::{answer_text, Fault, OpenAiSim, SimConfig};

use super::{
    openai_image, openai_tool_exchange, CacheReport, SeenImage, SeenToolExchange, Trouble, Tuning,
    Upstream, SLOW_EVENTS, SLOW_PACE,
};
use crate::fixtures::UPSTREAM_KEY_A;

const NAME: &str = "openai-primary";
const OUTPUT_TOKENS: usize = 8;

pub struct OpenAi {
    sim: OpenAiSim,
}

impl Upstream for OpenAi {
    const KIND: &'static str = "openai";
    const CACHE: CacheReport = CacheReport { read: 64, write: 0 };

    async fn start(tuning: Tuning) -> Self {
        let mut config = SimConfig {
            name: NAME.to_owned(),
            api_key: Some(UPSTREAM_KEY_A.to_owned()),
            output_tokens: OUTPUT_TOKENS,
            ..SimConfig::default()
        };
        if tuning.cache {
            config.cached_prompt_tokens = Self::CACHE.read;
        }
        if tuning.slow {
            config.output_tokens = SLOW_EVENTS;
            config.inter_token = SLOW_PACE;
        }
        let sim = OpenAiSim::start(config)
            .await
            .expect("starting the OpenAI simulator");
        OpenAi { sim }
    }

    fn provider_yaml(&self, name: &str) -> String {
        format!(
            "  {name}: {{ kind: openai, base_url: \"{}\", api_key: {UPSTREAM_KEY_A} }}\n",
            self.sim.base_url()
        )
    }

    fn target_yaml(&self) -> String {
        "model: up-primary".to_owned()
    }

    fn inject(&self, trouble: Trouble) {
        self.sim.push_faults([openai_fault(trouble)]);
    }

    fn model_requests(&self) -> u64 {
        self.sim.stats().chat_requests
    }

    fn in_flight(&self) -> u64 {
        self.sim.in_flight()
    }

    fn expected_answer(&self, _prompt: &str) -> String {
        answer_text(NAME, OUTPUT_TOKENS)
    }

    fn seen_tool_exchange(&self) -> Option<SeenToolExchange> {
        openai_tool_exchange(&self.sim.stats().last_body?)
    }

    fn seen_image(&self) -> Option<SeenImage> {
        openai_image(&self.sim.stats().last_body?)
    }
}

/// The OpenAI simulator's fault for a [`Trouble`] (the Azure simulator shares them).
pub(super) fn openai_fault(trouble: Trouble) -> Fault {
    match trouble {
        Trouble::RateLimited => Fault::RateLimit {
            retry_after_ms: 1000,
        },
        Trouble::ServerError => Fault::Status(500),
        Trouble::Garbage => Fault::Garbage,
        Trouble::WrongShape => Fault::WrongShape,
        Trouble::DropAfter(after_chunks) => Fault::DropMidStream { after_chunks },
        Trouble::StallAfter(after_chunks) => Fault::HangMidStream { after_chunks },
    }
}
