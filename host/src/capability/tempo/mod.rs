//! `tempo`: TraceQL metrics and search against Grafana Tempo, when the operator names one.

pub mod config;
mod import;

use crate::backend::tempo::TempoClient;
pub use config::TempoArgs;

use std::sync::Arc;

use wasmtime::component::LinkerInstance;

use super::Services;
use super::{Ctx, Room, Shared, Unit, View};

/// A cycle's Tempo calls: the client (None without `--tempo-endpoint`).
pub struct State {
    pub client: Option<TempoClient>,
}

pub struct Tempo;

impl Unit for Tempo {
    type Config = TempoArgs;
    /// None without `--tempo-endpoint`: tempo calls answer unavailable("not configured").
    type Backend = Option<TempoClient>;
    type State = State;

    fn state(services: &Arc<Services>, _: &Ctx) -> State {
        State { client: services.backends.tempo.clone() }
    }

    fn link<T: Send + 'static>(
        inst: &mut LinkerInstance<'_, T>,
        get: fn(&mut T) -> View<'_, State>,
    ) -> wasmtime::Result<()> {
        crate::bindings::latest::nthlayer::worker::tempo::add_to_linker_instance::<T, Room<State>>(inst, get)
    }

    fn build(cfg: &TempoArgs, shared: &Shared) -> anyhow::Result<Option<TempoClient>> {
        let Some(url) = &cfg.tempo_endpoint else { return Ok(None) };
        Ok(Some(TempoClient::with_org_id(url, shared.http_timeout, cfg.org_id.as_deref())?))
    }

    fn offline(cfg: &TempoArgs) -> TempoArgs {
        TempoArgs { tempo_endpoint: None, ..cfg.clone() }
    }
}

#[cfg(test)]
mod tests;
