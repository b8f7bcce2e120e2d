//! `core`: nthlayer-core, mediated. The client also serves the host itself (state,
//! heartbeats, the outbox's sender), so it stays free of wasm types.

pub mod client;
pub mod config;
mod import;

pub use client::{CoreClient, VerdictFilter};
pub use config::CoreArgs;

use std::time::Duration;

use super::shared::retry::RetryPolicy;
use super::{Shared, Unit};

pub struct Core;

impl Unit for Core {
    type Config = CoreArgs;
    type Backend = CoreClient;

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
