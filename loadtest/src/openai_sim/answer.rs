//! The answer to a valid chat request, decided before any byte is sent so that
//! the streamed and the non-streamed forms always agree (content, finish reason, usage).

use super::config::SimConfig;
use super::request::{ChatPlan, Reply};
use super::state::unix_now;
use super::tokens::{greeting_tokens, split_evenly, word_tokens};

/// Tool-call arguments are streamed in up to this many fragments (at least two,
/// docs/wire-formats.md §1.3 rule 3, so clients must concatenate).
const ARGUMENT_FRAGMENTS: usize = 4;

#[derive(Clone, Debug)]
pub(crate) enum AnswerBody {
    /// Content tokens, one per streamed chunk.
    Text(Vec<String>),
    /// One tool call; streamed as a header chunk then one chunk per fragment.
    ToolCall {
        id: String,
        name: String,
        fragments: Vec<String>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub body: AnswerBody,
    pub finish_reason: &'static str,
    pub prompt_tokens: u64,
    /// The part of `prompt_tokens` reported as read from the prompt cache.
    pub cached_tokens: u64,
}

impl Answer {
    /// `n` numbers the response (`chatcmpl-sim-<n>`) and its tool call (`call_<n>`).
    pub(crate) fn build(plan: &ChatPlan, config: &SimConfig, n: u64) -> Self {
        let text = |natural: Vec<String>| {
            let cap = plan
                .max_tokens
                .map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
            if natural.len() > cap {
                (
                    AnswerBody::Text(natural.into_iter().take(cap).collect()),
                    "length",
                )
            } else {
                (AnswerBody::Text(natural), "stop")
            }
        };
        let (body, finish_reason) = match &plan.reply {
            Reply::Greeting => text(greeting_tokens(&config.name, config.output_tokens)),
            Reply::ToolResult(content) => text(word_tokens(&format!("The tool said: {content}"))),
            Reply::Text(exact) => text(split_evenly(exact, config.output_tokens)),
            Reply::ToolCall(call) => (
                AnswerBody::ToolCall {
                    id: format!("call_{n}"),
                    name: call.name.clone(),
                    fragments: split_evenly(&call.arguments, ARGUMENT_FRAGMENTS),
                },
                "tool_calls",
            ),
        };
        Self {
            id: format!("chatcmpl-sim-{n}"),
            created: unix_now(),
            model: plan.model.clone(),
            body,
            finish_reason,
            prompt_tokens: plan.prompt_tokens,
            cached_tokens: config.cached_prompt_tokens.min(plan.prompt_tokens),
        }
    }

    /// Content-bearing stream chunks, which is also the completion token count.
    pub(crate) fn pieces(&self) -> usize {
        match &self.body {
            AnswerBody::Text(tokens) => tokens.len(),
            AnswerBody::ToolCall { fragments, .. } => 1 + fragments.len(),
        }
    }

    pub(crate) fn completion_tokens(&self) -> u64 {
        self.pieces() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai_sim::tools::PlannedCall;

    fn plan(reply: Reply, max_tokens: Option<u64>) -> ChatPlan {
        ChatPlan {
            model: "m".to_owned(),
            stream: false,
            include_usage: false,
            prompt_tokens: 5,
            max_tokens,
            reply,
        }
    }

    #[test]
    fn max_tokens_caps_with_finish_length() {
        let config = SimConfig::default();
        let capped = Answer::build(&plan(Reply::Greeting, Some(3)), &config, 1);
        assert_eq!((capped.pieces(), capped.finish_reason), (3, "length"));
        let full = Answer::build(&plan(Reply::Greeting, Some(8)), &config, 1);
        assert_eq!((full.pieces(), full.finish_reason), (8, "stop"));
    }

    #[test]
    fn cached_tokens_are_part_of_the_prompt() {
        let config = SimConfig {
            cached_prompt_tokens: 64,
            ..SimConfig::default()
        };
        // The prompt of `plan` is 5 tokens, so at most 5 can be cached.
        let answer = Answer::build(&plan(Reply::Greeting, None), &config, 1);
        assert_eq!(answer.cached_tokens, 5);
        let answer = Answer::build(&plan(Reply::Greeting, None), &SimConfig::default(), 1);
        assert_eq!(answer.cached_tokens, 0);
    }

    #[test]
    fn tool_call_arguments_come_in_several_fragments() -> anyhow::Result<()> {
        let call = PlannedCall {
            name: "f".to_owned(),
            arguments: r#"{"city":"sample"}"#.to_owned(),
        };
        let answer = Answer::build(&plan(Reply::ToolCall(call), None), &SimConfig::default(), 7);
        let AnswerBody::ToolCall { id, fragments, .. } = &answer.body else {
            anyhow::bail!("a tool call plan should give a tool call answer");
        };
        assert_eq!(id, "call_7");
        assert!(fragments.len() >= 2);
        assert_eq!(fragments.concat(), r#"{"city":"sample"}"#);
        assert_eq!(answer.finish_reason, "tool_calls");
        Ok(())
    }
}
