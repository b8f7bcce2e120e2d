//! `core`: nthlayer-core, mediated. The client also serves the host itself (state,
//! heartbeats, the outbox's sender), so it stays free of wasm types.

pub mod config;
mod footprint;
mod import;
pub mod shard;

use crate::backend::core::CoreClient;
pub use config::CoreArgs;

use std::time::Duration;

use crate::backend::retry::RetryPolicy;
use std::sync::Arc;

use wasmtime::component::LinkerInstance;

use super::Services;
use super::{Ctx, Room, Shared, Unit, View};

/// A cycle's core calls: the client, where one-shot records go, the outbox (its last good
/// manifests), the wake bus, and in a scheduled cycle the effects held for its commit.
pub struct State {
    pub client: CoreClient,
    /// Where one-shot records go (`records`), the outbox and the wake bus.
    pub services: Arc<Services>,
    pub held: crate::outbox::Held,
    /// Records, outcomes and cases made (held or sent).
    pub emitted: u32,
}

pub struct Core;

impl Unit for Core {
    type Config = CoreArgs;
    type Backend = CoreClient;
    type State = State;

    fn state(services: &Arc<Services>, _: &Ctx) -> State {
        State { client: services.backends.core.clone(), services: services.clone(), held: Default::default(), emitted: 0 }
    }

    fn link<T: Send + 'static>(
        inst: &mut LinkerInstance<'_, T>,
        get: fn(&mut T) -> View<'_, State>,
    ) -> wasmtime::Result<()> {
        crate::bindings::latest::nthlayer::worker::core::add_to_linker_instance::<T, Room<State>>(inst, get)
    }

    fn build(cfg: &CoreArgs, shared: &Shared) -> anyhow::Result<CoreClient> {
        let mut retry = RetryPolicy::default();
        if let Some(ms) = cfg.backoff_ms {
            retry.first_delay = Duration::from_millis(ms);
        }
        Ok(CoreClient::new(&cfg.core_url, retry, shared.http_timeout)?.with_deployment_id(&cfg.deployment_id))
    }

    /// Core's discard port: calls fail at once as unreachable.
    fn offline(cfg: &CoreArgs) -> CoreArgs {
        CoreArgs { core_url: OFFLINE_URL.into(), ..cfg.clone() }
    }
}

/// Where an offline host points core (the discard port: nothing listens).
pub const OFFLINE_URL: &str = "http://127.0.0.1:9";

#[cfg(test)]
mod tests;
