//! `prometheus`: instant, range and batched (instant, per-time, range) PromQL queries.

pub mod config;
mod batch;
mod import;

use crate::backend::prometheus::PrometheusClient;
pub use config::PrometheusArgs;

use std::sync::Arc;

use wasmtime::component::LinkerInstance;

use super::Services;
use super::{Ctx, Room, Shared, Unit, View};

/// A cycle's Prometheus calls: the client.
pub struct State {
    pub client: PrometheusClient,
}

pub struct Prometheus;

impl Unit for Prometheus {
    type Config = PrometheusArgs;
    type Backend = PrometheusClient;
    type State = State;

    fn state(services: &Arc<Services>, _: &Ctx) -> State {
        State { client: services.backends.prometheus.clone() }
    }

    fn link<T: Send + 'static>(
        inst: &mut LinkerInstance<'_, T>,
        get: fn(&mut T) -> View<'_, State>,
    ) -> wasmtime::Result<()> {
        crate::bindings::latest::nthlayer::worker::prometheus::add_to_linker_instance::<T, Room<State>>(inst, get)
    }

    fn build(cfg: &PrometheusArgs, shared: &Shared) -> anyhow::Result<PrometheusClient> {
        let client = PrometheusClient::new(&cfg.prometheus_url, shared.http_timeout)?;
        Ok(match &cfg.auth {
            Some(a) => client.with_basic_auth(&a.user, &a.password),
            None => client,
        })
    }

    /// No URL: queries answer "not configured".
    fn offline(cfg: &PrometheusArgs) -> PrometheusArgs {
        PrometheusArgs { prometheus_url: String::new(), ..cfg.clone() }
    }
}

#[cfg(test)]
mod tests;
