//! SIGHUP and `POST /-/reload`: re-read the config file the host started with.
//!
//! The file is read and checked as at start-up, and the answer says which effective values
//! differ from the running ones. They take effect at the next start: the flags' values are
//! spread through every room at start-up (backends, limits, intervals) and no room takes a
//! new one while running. What the admin API re-reads itself (the token file) applies at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use serde_json::{json, Value};

use super::layer::started_with;
use super::print::effective;

type Values = BTreeMap<String, Vec<String>>;

fn values(cmd: &clap::Command, argv: &[String]) -> Result<Values> {
    Ok(effective(cmd, argv.to_vec())?.into_iter().map(|e| (e.key, e.value)).collect())
}

/// A reload for this process, if it was started through [`super::layer::layer_process`].
pub fn reloader() -> Option<Arc<dyn Fn() -> Result<Value> + Send + Sync>> {
    let (cmd, argv) = started_with()?;
    let running = values(cmd, argv).ok()?;
    Some(Arc::new(move || {
        let now = values(cmd, argv)?;
        let changed: Vec<Value> = now
            .iter()
            .filter(|(k, v)| running.get(*k) != Some(v))
            .map(|(k, v)| json!({"key": k, "running": running.get(k), "in_file": v}))
            .collect();
        Ok(json!({
            "valid": true,
            "changed": changed,
            "note": if changed.is_empty() { "the file matches the running configuration" }
                    else { "changed values take effect at the next start" },
        }))
    }))
}
