//! `llm`: structured calls through the operator-controlled LLM service (the nthlayer-llm
//! crate does routing, wire formats, retries and budgets).

pub mod client;
pub mod config;
mod import;

pub use client::LlmService;
pub use config::LlmArgs;

use super::{Shared, Unit};

pub struct Llm;

impl Unit for Llm {
    type Config = LlmArgs;
    type Backend = LlmService;

    fn build(cfg: &LlmArgs, _: &Shared) -> anyhow::Result<LlmService> {
        LlmService::new(&cfg.llm, cfg.provider.clone())
    }

    /// The per-module policies stay (they are checked before any call); the provider goes,
    /// so nothing can reach a model.
    fn offline(cfg: &LlmArgs) -> LlmArgs {
        LlmArgs { provider: None, ..cfg.clone() }
    }
}

#[cfg(test)]
mod tests;
