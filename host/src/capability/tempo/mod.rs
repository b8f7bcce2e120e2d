//! `tempo`: TraceQL metrics and search against Grafana Tempo, when the operator names one.

pub mod client;
pub mod config;
mod import;

pub use client::TempoClient;
pub use config::TempoArgs;

use super::{Shared, Unit};

pub struct Tempo;

impl Unit for Tempo {
    type Config = TempoArgs;
    /// None without `--tempo-endpoint`: tempo calls answer unavailable("not configured").
    type Backend = Option<TempoClient>;

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
