//! The answer to a valid Responses request: the chat brain's [`Answer`] (same text, tool
//! call and token counts) plus what only Responses has: the reasoning item, the item ids
//! and the status. Decided before any byte is sent, so the streamed and the non-streamed
//! forms always agree.

use super::request::{Brain, ResponsesPlan};
use crate::openai_sim::answer::{Answer, AnswerBody};
use crate::openai_sim::config::SimConfig;
use crate::openai_sim::state::unix_now;
use crate::openai_sim::tokens::word_tokens;

/// The reasoning item an answer starts with when the request asked for reasoning.
#[derive(Clone, Debug)]
pub(crate) struct ReasoningOutput {
    pub id: String,
    /// The summary's tokens (streamed one per delta); empty when no summary was asked for.
    pub summary: Vec<String>,
    /// Present when `include` asked for it; only this simulator accepts it back.
    pub encrypted_content: Option<String>,
    /// Reasoning tokens spent, summary or not (part of the output tokens).
    pub tokens: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct ResponsesAnswer {
    /// `resp_…`
    pub id: String,
    pub created_at: u64,
    pub base: Answer,
    pub reasoning: Option<ReasoningOutput>,
    /// The id of the item after the reasoning: `msg_…` for text, `fc_…` for a call.
    pub item_id: String,
}

impl ResponsesAnswer {
    /// `tag` makes the ids unique across simulators, `n` within one.
    pub(crate) fn build(plan: &ResponsesPlan, config: &SimConfig, tag: &str, n: u64) -> Self {
        let brain = Brain {
            name: &config.name,
            output_tokens: config.output_tokens,
        };
        let reasoning = plan.reasoning.map(|wanted| {
            let thought = word_tokens(&format!("{} considered the request.", config.name));
            let tokens = thought.len() as u64;
            ReasoningOutput {
                id: format!("rs_{tag}{n:08}"),
                encrypted_content: wanted.encrypted.then(|| {
                    format!(
                        "{}{}",
                        brain.encrypted_prefix(),
                        hex::encode(thought.concat())
                    )
                }),
                summary: if wanted.summary { thought } else { Vec::new() },
                tokens,
            }
        });
        let reasoning_tokens = reasoning.as_ref().map_or(0, |r| r.tokens);
        // `max_output_tokens` covers the reasoning too: the text gets what is left.
        let mut chat = plan.chat.clone();
        chat.max_tokens = chat
            .max_tokens
            .map(|max| max.saturating_sub(reasoning_tokens));
        let base = Answer::build(&chat, config, n);
        let item_id = match base.body {
            AnswerBody::Text(_) => format!("msg_{tag}{n:08}"),
            AnswerBody::ToolCall { .. } => format!("fc_{tag}{n:08}"),
        };
        Self {
            id: format!("resp_{tag}{n:08}"),
            created_at: unix_now(),
            base,
            reasoning,
            item_id,
        }
    }

    /// Cut short by `max_output_tokens`: the status is `incomplete`.
    pub(crate) fn incomplete(&self) -> bool {
        self.base.finish_reason == "length"
    }

    pub(crate) fn input_tokens(&self) -> u64 {
        self.base.prompt_tokens
    }

    pub(crate) fn reasoning_tokens(&self) -> u64 {
        self.reasoning.as_ref().map_or(0, |r| r.tokens)
    }

    /// Reasoning plus answer tokens.
    pub(crate) fn output_tokens(&self) -> u64 {
        self.reasoning_tokens() + self.base.completion_tokens()
    }

    /// Where the message or function call sits in `output` (after the reasoning item).
    pub(crate) fn item_index(&self) -> usize {
        usize::from(self.reasoning.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai_sim::request::{ChatPlan, Reply};
    use crate::openai_sim::responses::request::{ReasoningPlan, ResponsesRequest};

    fn plan(reasoning: Option<ReasoningPlan>, max_tokens: Option<u64>) -> ResponsesPlan {
        ResponsesPlan {
            chat: ChatPlan {
                model: "m".to_owned(),
                stream: false,
                include_usage: false,
                prompt_tokens: 5,
                max_tokens,
                reply: Reply::Greeting,
            },
            reasoning,
            store_requested: false,
            request: ResponsesRequest::default(),
        }
    }

    #[test]
    fn reasoning_counts_as_output_and_shares_the_cap() {
        let config = SimConfig::default();
        let plain = ResponsesAnswer::build(&plan(None, None), &config, "t", 3);
        assert_eq!(plain.id, "resp_t00000003");
        assert_eq!(plain.item_id, "msg_t00000003");
        assert_eq!((plain.output_tokens(), plain.item_index()), (8, 0));

        let wanted = ReasoningPlan {
            summary: true,
            encrypted: true,
        };
        let thinking = ResponsesAnswer::build(&plan(Some(wanted), None), &config, "t", 4);
        let reasoning = thinking.reasoning.clone().expect("a reasoning item");
        assert_eq!(
            reasoning.summary.concat(),
            "openai-sim considered the request."
        );
        assert!(reasoning
            .encrypted_content
            .is_some_and(|c| c.starts_with("enc_openai-sim:")));
        assert_eq!(thinking.output_tokens(), 8 + reasoning.tokens);
        assert_eq!(thinking.item_index(), 1);

        // 16 = 4 reasoning + 12 text at most: the 8-token greeting fits.
        let capped = ResponsesAnswer::build(&plan(Some(wanted), Some(16)), &config, "t", 5);
        assert!(!capped.incomplete());
        let cut = ResponsesAnswer::build(
            &plan(Some(wanted), Some(reasoning.tokens + 2)),
            &config,
            "t",
            6,
        );
        assert!(cut.incomplete());
        assert_eq!(cut.base.completion_tokens(), 2);
    }
}
