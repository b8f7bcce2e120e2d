//! `arbiter`: respond's one outward side effect (autonomy reductions), off unless the
//! operator names an arbiter.

pub mod client;
pub mod config;
mod import;

pub use client::ArbiterClient;
pub use config::ArbiterArgs;

use super::{Shared, Unit};

pub struct Arbiter;

impl Unit for Arbiter {
    type Config = ArbiterArgs;
    /// None without `--arbiter-url`: respond's autonomy reduction stays inside the host.
    type Backend = Option<ArbiterClient>;

    /// The arbiter keeps the reference's own timeouts (3 attempts of 10 s), not the shared one.
    fn build(cfg: &ArbiterArgs, _: &Shared) -> anyhow::Result<Option<ArbiterClient>> {
        cfg.arbiter_url.as_deref().map(ArbiterClient::new).transpose()
    }

    fn offline(_: &ArbiterArgs) -> ArbiterArgs {
        ArbiterArgs { arbiter_url: None }
    }
}

#[cfg(test)]
mod tests;
