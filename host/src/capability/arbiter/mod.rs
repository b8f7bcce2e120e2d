//! `arbiter`: respond's one outward side effect (autonomy reductions), off unless the
//! operator names an arbiter.

pub mod config;
mod import;

use crate::backend::arbiter::ArbiterClient;
pub use config::ArbiterArgs;

use std::sync::Arc;

use wasmtime::component::LinkerInstance;

use super::Services;
use super::{Ctx, Room, Shared, Unit, View};

/// A cycle's arbiter calls: the client (None without `--arbiter-url`) and, in a scheduled
/// cycle, the reductions held for its commit. They go out in the task's own arbiter lane
/// (outbox/effects.rs), so they need no order relative to core's effects.
pub struct State {
    pub client: Option<ArbiterClient>,
    pub held: crate::outbox::Held,
}

pub struct Arbiter;

impl Unit for Arbiter {
    type Config = ArbiterArgs;
    /// None without `--arbiter-url`: respond's autonomy reduction stays inside the host.
    type Backend = Option<ArbiterClient>;
    type State = State;

    /// The arbiter keeps the reference's own timeouts (3 attempts of 10 s), not the shared one.
    fn state(services: &Arc<Services>, _: &Ctx) -> State {
        State { client: services.backends.arbiter.clone(), held: Default::default() }
    }

    fn link<T: Send + 'static>(
        inst: &mut LinkerInstance<'_, T>,
        get: fn(&mut T) -> View<'_, State>,
    ) -> wasmtime::Result<()> {
        crate::bindings::latest::nthlayer::worker::arbiter::add_to_linker_instance::<T, Room<State>>(inst, get)
    }

    fn build(cfg: &ArbiterArgs, _: &Shared) -> anyhow::Result<Option<ArbiterClient>> {
        cfg.arbiter_url.as_deref().map(ArbiterClient::new).transpose()
    }

    fn offline(_: &ArbiterArgs) -> ArbiterArgs {
        ArbiterArgs { arbiter_url: None }
    }
}

#[cfg(test)]
mod tests;
