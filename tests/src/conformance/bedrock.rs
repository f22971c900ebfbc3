//! `kind: bedrock` under the conformance list: the Bedrock simulator (Converse and
//! ConverseStream behind SigV4), asked for a Claude model ([`Bedrock`]) or for a model of
//! another family ([`BedrockConverse`], which every client dialect reaches through Converse).

use std::marker::PhantomData;

use loadtest::{BedrockFault, BedrockSim, BedrockSimConfig};
use serde_json::Value;

use super::{CacheReport, SeenImage, SeenToolExchange, Trouble, Tuning, Upstream, SLOW_PACE};

const NAME: &str = "bedrock-primary";

/// The Bedrock model id a target names.
pub trait BedrockModel: Send + Sync + 'static {
    const MODEL: &'static str;
}

/// Claude on Bedrock.
pub struct Claude;
impl BedrockModel for Claude {
    const MODEL: &'static str = "anthropic.claude-3-haiku-20240307-v1:0";
}

/// A model of another family (Amazon Nova): Converse only, no thinking signatures.
pub struct Nova;
impl BedrockModel for Nova {
    const MODEL: &'static str = "amazon.nova-lite-v1:0";
}

pub struct BedrockOf<M> {
    sim: BedrockSim,
    model: PhantomData<M>,
}

/// The conformance list's Bedrock entry: Claude.
pub type Bedrock = BedrockOf<Claude>;
/// Bedrock with a non-Claude model.
pub type BedrockConverse = BedrockOf<Nova>;

impl<M: BedrockModel> Upstream for BedrockOf<M> {
    const KIND: &'static str = "bedrock";
    const CACHE: CacheReport = CacheReport {
        read: 64,
        write: 32,
    };

    async fn start(tuning: Tuning) -> Self {
        let mut config = BedrockSimConfig::new(NAME);
        if tuning.cache {
            config.cache_read_tokens = Self::CACHE.read;
            config.cache_write_tokens = Self::CACHE.write;
        }
        if tuning.slow {
            config.latency = SLOW_PACE;
        }
        let sim = BedrockSim::start(config)
            .await
            .expect("starting the Bedrock simulator");
        BedrockOf {
            sim,
            model: PhantomData,
        }
    }

    fn provider_yaml(&self, name: &str) -> String {
        let c = self.sim.config();
        format!(
            "  {name}: {{ kind: bedrock, region: {}, endpoint: \"{}\", access_key_id: {}, secret_access_key: \"{}\" }}\n",
            c.region,
            self.sim.endpoint(),
            c.access_key_id,
            c.secret_access_key
        )
    }

    fn target_yaml(&self) -> String {
        format!("model: \"{}\"", M::MODEL)
    }

    fn inject(&self, trouble: Trouble) {
        let fault = match trouble {
            Trouble::RateLimited => BedrockFault::Throttle,
            Trouble::ServerError => BedrockFault::Internal,
            Trouble::Garbage => BedrockFault::Garbage,
            Trouble::WrongShape => BedrockFault::WrongShape,
            Trouble::DropAfter(after_chunks) => BedrockFault::DropMidStream { after_chunks },
            Trouble::StallAfter(after_chunks) => BedrockFault::StallMidStream { after_chunks },
        };
        self.sim.push_faults([fault]);
    }

    fn model_requests(&self) -> u64 {
        self.sim.stats().requests
    }

    fn in_flight(&self) -> u64 {
        self.sim.in_flight()
    }

    fn expected_answer(&self, prompt: &str) -> String {
        format!("{NAME} says: {prompt}")
    }

    fn seen_tool_exchange(&self) -> Option<SeenToolExchange> {
        let body = self.sim.stats().last_body?;
        let blocks: Vec<&Value> = body["messages"]
            .as_array()?
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .collect();
        let call = blocks.iter().find_map(|b| b.get("toolUse"))?;
        let result = blocks.iter().find_map(|b| b.get("toolResult"))?;
        let text = result["content"]
            .as_array()?
            .iter()
            .filter_map(|c| c["text"].as_str())
            .collect();
        Some(SeenToolExchange {
            call_id: call["toolUseId"].as_str()?.to_owned(),
            result_id: result["toolUseId"].as_str()?.to_owned(),
            result: text,
        })
    }

    fn seen_image(&self) -> Option<SeenImage> {
        let body = self.sim.stats().last_body?;
        let image = body["messages"][0]["content"]
            .as_array()?
            .iter()
            .find_map(|b| b.get("image"))?;
        Some(SeenImage {
            format: image["format"].as_str()?.to_owned(),
            base64: image["source"]["bytes"].as_str()?.to_owned(),
        })
    }
}
