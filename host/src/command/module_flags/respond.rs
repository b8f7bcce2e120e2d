//! respond's flags: its interval and its `workers.respond.*` settings.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

#[derive(Debug, Clone, clap::Args)]
pub struct RespondArgs {
    #[arg(long)]
    pub respond_interval: Option<u64>,
    /// respond's `workers.respond.*` settings as a JSON object, e.g.
    /// {"fallback_threshold_seconds":60,"step_timeout_seconds":90,"arbiter_enabled":false}.
    /// The reference's worker mode has no way to set them (defaults only); see docs/PARITY.md.
    #[arg(long, env = "NTHLAYER_RESPOND_CONFIG")]
    pub respond_config: Option<String>,
}

impl RespondArgs {
    pub fn intervals(&self) -> Vec<(&'static str, Option<u64>)> {
        vec![("respond", self.respond_interval)]
    }

    /// `--respond-config` as the object respond reads (`{}` when absent).
    pub fn config(&self) -> Result<Value> {
        Ok(match &self.respond_config {
            None => json!({}),
            Some(j) => match serde_json::from_str(j).context("--respond-config: not JSON")? {
                Value::Object(o) => Value::Object(o),
                _ => bail!("--respond-config: expected a JSON object"),
            },
        })
    }
}
