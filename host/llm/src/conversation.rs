//! One structured exchange with a provider, whatever its wire format: the client loop asks for
//! a body, reads a turn, and re-asks, without knowing which API it is talking to.

use serde_json::Value;

use crate::config::{LlmConfig, OpenAiMode};
use crate::error::LlmError;
use crate::exchange::Turn;
use crate::http::{Endpoint, Failure};
use crate::route::{Route, Wire};
use crate::{anthropic, openai};

pub(crate) struct Prompt<'a> {
    pub system: &'a str,
    pub user: &'a str,
    pub name: &'a str,
    pub schema: &'a Value,
    pub max_tokens: u32,
}

pub(crate) enum Conversation {
    Anthropic(anthropic::Conversation),
    OpenAi(openai::Conversation),
}

impl Conversation {
    pub fn open(
        cfg: &LlmConfig,
        route: &Route,
        p: &Prompt<'_>,
        structure: openai::Structure,
    ) -> Result<(Endpoint, Self), LlmError> {
        Ok(match route.wire {
            Wire::Anthropic => (
                anthropic::Conversation::endpoint(cfg)?,
                Self::Anthropic(anthropic::Conversation::new(route, p.system, p.user, p.name, p.schema, p.max_tokens)),
            ),
            Wire::OpenAi => (
                openai::Conversation::endpoint(cfg)?,
                Self::OpenAi(openai::Conversation::new(
                    route,
                    p.system,
                    p.user,
                    p.name,
                    p.schema,
                    p.max_tokens,
                    structure,
                )),
            ),
        })
    }

    pub fn body(&self) -> Value {
        match self {
            Self::Anthropic(c) => c.body(),
            Self::OpenAi(c) => c.body(),
        }
    }

    pub fn read(&self, reply: &Value) -> Result<Turn, LlmError> {
        match self {
            Self::Anthropic(c) => c.read(reply),
            Self::OpenAi(c) => c.read(reply),
        }
    }

    pub fn reask(&mut self, turn: Turn, error: &str) {
        match self {
            Self::Anthropic(c) => c.reask(turn, error),
            Self::OpenAi(c) => c.reask(turn, error),
        }
    }

    /// In `auto` mode, a tools refusal switches this exchange to `json_schema`; returns
    /// whether it did, so the caller repeats the request instead of failing.
    pub fn fall_back_to_json_schema(&mut self, mode: OpenAiMode, failure: &Failure) -> bool {
        match self {
            Self::OpenAi(c)
                if mode == OpenAiMode::Auto && c.structure == openai::Structure::Tools && failure.refuses_tools() =>
            {
                c.structure = openai::Structure::JsonSchema;
                true
            }
            _ => false,
        }
    }
}
