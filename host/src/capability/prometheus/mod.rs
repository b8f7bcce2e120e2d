//! `prometheus`: instant, range and batched PromQL queries.

pub mod client;
pub mod config;
mod import;

pub use client::PrometheusClient;
pub use config::PrometheusArgs;

use super::{Shared, Unit};

pub struct Prometheus;

impl Unit for Prometheus {
    type Config = PrometheusArgs;
    type Backend = PrometheusClient;

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
