//! The lifecycle room's flags, flattened into `serve`'s (same names, environment and
//! defaults): which module files to watch and swap, and how tasks are scheduled.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::policy::limits::Limits;

/// Module files, hot swap and rollback (swap.rs, registry.rs).
#[derive(Debug, Clone, clap::Args)]
pub struct SwapArgs {
    /// Module components in addition to the built-in ones: files and globs (quoted globs
    /// are expanded by the host and watched for new files). A file providing a built-in's
    /// name replaces it. Also NTHLAYER_MODULES, space-separated.
    #[arg(long, num_args = 1.., env = "NTHLAYER_MODULES", value_delimiter = ' ')]
    pub modules: Vec<String>,
    /// Serve only `--modules`, not the built-in modules embedded in the binary.
    #[arg(long)]
    pub no_builtin: bool,
    /// Trust module files under this directory as built-in code: they get what they declare
    /// without `--grant` (repeatable; see docs/SANDBOX.md).
    #[arg(long = "trusted-dir", value_name = "DIR")]
    pub trusted_dirs: Vec<PathBuf>,
    /// How often module files are checked for changes (0 disables hot swap).
    #[arg(long, default_value_t = 500)]
    pub watch_interval_ms: u64,
    /// Roll a swapped-in version back when its first N cycles all fail.
    #[arg(long, default_value_t = 3)]
    pub rollback_after: u32,
}

/// `--failed-cycle-retry-seconds`' default, also `HostConfig::default`'s.
pub const FAILED_CYCLE_RETRY_SECONDS: u64 = 30;

/// On by default, sized for the built-ins at 1,000 services: the largest cycle
/// (observe.collect, ~12 MB of guest memory and held records) fits, two of the big ones do
/// not run together, and the host's peak stays within ~48 MB (docs/BENCH.md, "Memory"; 80 MB
/// without, when every first cycle starts at once). A task whose cost is not known yet runs
/// alone; a cycle waits at most 10 s for room, so a hung one delays the rest by no more than
/// that; only trusted modules are admitted through it, so no third-party module can hold it
/// (policy/memory.rs). 0 turns it off.
pub const DEFAULT_CYCLE_MEMORY_BUDGET_MIB: u64 = 16;

/// When tasks run and how many at once (scheduler.rs).
#[derive(Debug, Clone, clap::Args)]
pub struct SchedulerArgs {
    /// Override any task's interval: TASK=SECONDS (repeatable).
    #[arg(long = "interval", value_name = "TASK=SECONDS")]
    pub intervals: Vec<String>,
    /// Guests executing at once across all modules. A slot is held only while guest code
    /// runs (not while it waits in a host call or a WASI sleep) and is shared first-come
    /// first-served; a module's cycles in flight are capped by its `max_concurrent` limit.
    #[arg(long, default_value_t = 8)]
    pub max_concurrent_cycles: usize,
    /// Memory that cycles in flight may hold together, MiB (their guests' linear memory and
    /// held records, each task counted by its last cycle; policy/memory.rs). A task whose cost
    /// is not known yet, or above the budget, runs alone; a cycle waits at most 10 s for room.
    /// Trusted modules only (embedded, or under --trusted-dir). 0: no budget.
    #[arg(long, default_value_t = DEFAULT_CYCLE_MEMORY_BUDGET_MIB)]
    pub cycle_memory_budget_mib: u64,
    /// On SIGTERM/SIGINT, how long in-flight cycles may take to finish.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
    /// First-cycle jitter cap, milliseconds (spreads start-up load).
    #[arg(long, default_value_t = 500)]
    pub start_jitter_ms: u64,
    /// A cycle that failed (or was refused) runs again after this many seconds, doubling
    /// up to the task's interval, instead of waiting a whole interval.
    #[arg(long, default_value_t = FAILED_CYCLE_RETRY_SECONDS)]
    pub failed_cycle_retry_seconds: u64,
}

/// Expands `--modules` entries: plain paths as given, globs against the file system as it
/// is now (the watcher calls this on every poll, so files that appear later are found).
pub fn expand_modules(specs: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for spec in specs.iter().flat_map(|s| s.split_whitespace()) {
        if spec.contains(['*', '?', '[']) {
            for entry in glob::glob(spec).with_context(|| format!("--modules {spec:?}: bad glob"))? {
                files.push(entry?);
            }
        } else {
            files.push(PathBuf::from(spec));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_specs_expand_globs_and_keep_explicit_paths() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.wasm", "a.wasm", "notes.txt"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let glob = format!("{}/*.wasm", dir.path().display());
        let explicit = dir.path().join("a.wasm").display().to_string();
        let missing = "/nonexistent/x.wasm".to_string();
        let files = expand_modules(&[glob, explicit, missing.clone()]).unwrap();
        // Sorted, deduplicated; an explicit path is kept even if absent (the watcher reports it).
        assert_eq!(files, vec![PathBuf::from(&missing), dir.path().join("a.wasm"), dir.path().join("b.wasm")]);
    }
}

/// Configuration resolved from the flags (command/args.rs), shared by the scheduler.
/// Everything here may change while the host runs (a reload swaps a new one into
/// [`LiveConfig`]); what may not lives in the rooms that took it at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    pub intervals: BTreeMap<String, u64>,
    pub limits: BTreeMap<String, Limits>,
    pub module_config: Value,
    /// First retry delay after a cycle that did not commit.
    pub retry_first: std::time::Duration,
}

/// What `serve` runs with when no flag says otherwise and no module is configured: for
/// in-process runs (tests, the bench) that have no command line.
impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            intervals: BTreeMap::new(),
            limits: BTreeMap::new(),
            module_config: serde_json::json!({}),
            retry_first: std::time::Duration::from_secs(FAILED_CYCLE_RETRY_SECONDS),
        }
    }
}

impl HostConfig {
    pub fn interval_for(&self, task: &str, declared: u32) -> u64 {
        self.intervals.get(task).copied().unwrap_or(declared as u64)
    }

    pub fn limits_for(&self, module: &str) -> Limits {
        self.limits.get(module).or_else(|| self.limits.get("*")).cloned().unwrap_or_default()
    }
}

/// The running configuration's one swappable home: a reload replaces the whole value at
/// once (a reader sees all of the old file or all of the new, never a mix), and every reader
/// takes the value current when it reads. A cycle reads it once, at its start, so a running
/// cycle keeps what it started with; a task loop reads its interval once per turn.
#[derive(Debug)]
pub struct LiveConfig(arc_swap::ArcSwap<HostConfig>);

impl LiveConfig {
    pub fn shared(config: HostConfig) -> std::sync::Arc<Self> {
        std::sync::Arc::new(LiveConfig(arc_swap::ArcSwap::from_pointee(config)))
    }

    /// The configuration as it is now.
    pub fn current(&self) -> std::sync::Arc<HostConfig> {
        self.0.load_full()
    }

    /// Installs `config` for every later read; returns the one it replaced.
    pub fn replace(&self, config: HostConfig) -> std::sync::Arc<HostConfig> {
        self.0.swap(std::sync::Arc::new(config))
    }

    pub fn interval_for(&self, task: &str, declared: u32) -> u64 {
        self.0.load().interval_for(task, declared)
    }

    pub fn limits_for(&self, module: &str) -> Limits {
        self.0.load().limits_for(module)
    }

    /// The JSON every module's cycle gets as its `config`.
    pub fn module_config(&self) -> String {
        self.0.load().module_config.to_string()
    }

    pub fn retry_first(&self) -> std::time::Duration {
        self.0.load().retry_first
    }
}
