//! The outbox's flags, flattened into `serve`'s (same names, environment and defaults).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use super::OutboxConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct OutboxArgs {
    /// Where the host keeps its durable outbox (spool.db: undelivered records, task state,
    /// last good manifests). Default: $XDG_STATE_HOME/nthlayer-host/<instance-id>, else
    /// ~/.local/state/nthlayer-host/<instance-id>. Give each host its own.
    #[arg(long, env = "NTHLAYER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Undelivered bytes the spool may hold before it counts as full (then heartbeats are
    /// dropped and new cycles of tasks with undelivered records are refused; no record is).
    #[arg(long, default_value_t = 536_870_912)]
    pub spool_max_bytes: u64,
    /// Age of the oldest undelivered entry beyond which the spool counts as full.
    #[arg(long, default_value_t = 86_400)]
    pub spool_max_age_seconds: u64,
    /// Seconds an entry core cannot take now (no answer, 5xx, 429) is retried, from its first
    /// failure (kept across restarts), before it is set aside (`outbox list`; docs/OUTBOX.md).
    #[arg(long, default_value_t = 86_400)]
    pub delivery_retry_seconds: u64,
    /// Requests to core the sender keeps in flight at once, across tasks (a task's records go
    /// out concurrently only where their order does not matter: docs/OUTBOX.md).
    #[arg(long, env = "NTHLAYER_DELIVERY_CONCURRENCY", default_value_t = super::sender::DEFAULT_CONCURRENCY)]
    pub delivery_concurrency: usize,
}

impl OutboxArgs {
    /// `--state-dir`, or the default under the XDG state directory, per instance id.
    pub fn dir(&self, instance_id: &str) -> Result<PathBuf> {
        state_dir(self.state_dir.as_deref(), instance_id)
    }

    pub fn config(&self, instance_id: &str) -> Result<OutboxConfig> {
        Ok(OutboxConfig {
            dir: self.dir(instance_id)?,
            max_bytes: self.spool_max_bytes,
            max_age: Duration::from_secs(self.spool_max_age_seconds),
            retry_window: Duration::from_secs(self.delivery_retry_seconds),
        })
    }
}

/// `dir`, else the XDG default for `instance_id`: `serve` and `outbox` find the same spool.
pub fn state_dir(dir: Option<&Path>, instance_id: &str) -> Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/state"),
            None => bail!("no --state-dir given and neither XDG_STATE_HOME nor HOME is set"),
        },
    };
    // The instance id names a directory: nothing in it may climb out.
    let name: String =
        instance_id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let name = if name.chars().all(|c| c == '.') { format!("_{name}") } else { name };
    Ok(base.join("nthlayer-host").join(name))
}
