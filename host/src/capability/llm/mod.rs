//! `llm`: structured calls through the operator-controlled LLM service (the nthlayer-llm
//! crate does routing, wire formats, retries and budgets).

pub mod config;
mod import;

use crate::backend::llm::LlmService;
pub use config::LlmArgs;

use std::sync::Arc;

use wasmtime::component::LinkerInstance;

use super::Services;
use super::{Ctx, Room, Shared, Unit, View};

/// The stub answers every call with canned responses: fine for tests and demos, never for
/// production, where it would feed made-up judgments into real decisions. Said once, at
/// start-up, by every command that reaches an LLM.
pub const STUB_WARNING: &str =
    "NTHLAYER_LLM_STUB=canned is set: every LLM call answers with a canned response; never use it in production";

/// A cycle's LLM calls: the service and the call counter the operator's
/// `max_calls_per_cycle` is checked against.
pub struct State {
    pub service: LlmService,
    pub cycle: std::sync::Arc<nthlayer_llm::CycleBudget>,
}

pub struct Llm;

impl Unit for Llm {
    type Config = LlmArgs;
    type Backend = LlmService;
    type State = State;

    fn state(services: &Arc<Services>, _: &Ctx) -> State {
        State { service: services.backends.llm.for_cycle(), cycle: Default::default() }
    }

    fn link<T: Send + 'static>(
        inst: &mut LinkerInstance<'_, T>,
        get: fn(&mut T) -> View<'_, State>,
    ) -> wasmtime::Result<()> {
        crate::bindings::latest::nthlayer::worker::llm::add_to_linker_instance::<T, Room<State>>(inst, get)
    }

    fn build(cfg: &LlmArgs, _: &Shared) -> anyhow::Result<LlmService> {
        if cfg.provider.as_ref().is_some_and(|p| p.stub) {
            tracing::warn!("{STUB_WARNING}");
        }
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
