//! `kind: anthropic` under the conformance list: the Anthropic Messages simulator, which
//! a Chat client reaches through the proxy's Chat → Messages translation.

use loadtest::{AnthropicFault, AnthropicSim, AnthropicSimConfig};
use serde_json::Value;

use super::{CacheReport, SeenImage, SeenToolExchange, Trouble, Tuning, Upstream, SLOW_PACE};

const NAME: &str = "anthropic-primary";
const MODEL: &str = "claude-haiku-4-5-20251001";
/// Stream events before the first text delta: `message_start`, `content_block_start`, `ping`.
const EVENTS_BEFORE_CONTENT: usize = 3;

pub struct Anthropic {
    sim: AnthropicSim,
}

impl Upstream for Anthropic {
    const KIND: &'static str = "anthropic";
    const CACHE: CacheReport = CacheReport {
        read: 64,
        write: 32,
    };

    async fn start(tuning: Tuning) -> Self {
        let mut config = AnthropicSimConfig::new(NAME);
        if tuning.cache {
            config.cache_read_tokens = Self::CACHE.read;
            config.cache_write_tokens = Self::CACHE.write;
        }
        if tuning.slow {
            // The answer echoes the prompt in pieces of about three words, so a long prompt
            // makes a long stream (the case asks with 200 words: about 70 deltas).
            config.inter_event = SLOW_PACE;
        }
        let sim = AnthropicSim::start(config)
            .await
            .expect("starting the Anthropic simulator");
        Anthropic { sim }
    }

    fn provider_yaml(&self, name: &str) -> String {
        format!(
            "  {name}: {{ kind: anthropic, base_url: \"{}\", api_key: \"{}\" }}\n",
            self.sim.base_url(),
            self.sim.config().api_key
        )
    }

    fn target_yaml(&self) -> String {
        format!("model: {MODEL}")
    }

    fn inject(&self, trouble: Trouble) {
        let fault = match trouble {
            Trouble::RateLimited => AnthropicFault::RateLimit {
                retry_after_secs: 1,
            },
            Trouble::ServerError => AnthropicFault::ApiError,
            Trouble::Garbage => AnthropicFault::Garbage,
            Trouble::WrongShape => AnthropicFault::WrongShape,
            Trouble::DropAfter(events) => AnthropicFault::StreamCut {
                after_events: EVENTS_BEFORE_CONTENT + events,
            },
            Trouble::StallAfter(events) => AnthropicFault::StreamStall {
                after_events: EVENTS_BEFORE_CONTENT + events,
            },
        };
        self.sim.push_faults([fault]);
    }

    fn model_requests(&self) -> u64 {
        self.sim.stats().message_requests
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
        let call = blocks.iter().find(|b| b["type"] == "tool_use")?;
        let result = blocks.iter().find(|b| b["type"] == "tool_result")?;
        let text = match &result["content"] {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            _ => String::new(),
        };
        Some(SeenToolExchange {
            call_id: call["id"].as_str()?.to_owned(),
            result_id: result["tool_use_id"].as_str()?.to_owned(),
            result: text,
        })
    }

    fn seen_image(&self) -> Option<SeenImage> {
        let body = self.sim.stats().last_body?;
        let source = body["messages"][0]["content"]
            .as_array()?
            .iter()
            .find(|b| b["type"] == "image")?
            .get("source")?;
        Some(SeenImage {
            format: source["media_type"]
                .as_str()?
                .strip_prefix("image/")?
                .to_owned(),
            base64: source["data"].as_str()?.to_owned(),
        })
    }
}
