//! Installing a reloaded configuration: the one place that knows every home a reload
//! changes, so a reload is one step — the new values, the new `--grant` lines, and each
//! loaded version's rights re-resolved under them.

use std::sync::Arc;

use anyhow::{anyhow, Result};

use crate::lifecycle::config::{HostConfig, LiveConfig};
use crate::lifecycle::registry::{Registry, Serving};
use crate::policy::grants::GrantPolicy;

/// Module config keys that come from keys a reload does not apply (`host.instance-id`,
/// `host.tempo-endpoint`): they keep the value the host started with, as those keys do.
const STARTUP_MODULE_CONFIG: [&str; 2] = ["instance_id", "tempo_configured"];

/// The homes a reload writes into: the scheduler's and the watcher's.
pub struct Live {
    pub config: Arc<LiveConfig>,
    /// A clone of the watcher's policy: the `--grant` lines are shared by every clone.
    pub grants: GrantPolicy,
    pub registry: Arc<Registry>,
}

impl Live {
    /// Installs `config` and `grants`, then re-resolves every loaded version's grants and
    /// limits. Refuses (changing nothing) limits a loaded module could not start under.
    /// Returns each module whose rights changed, with what changed.
    pub fn apply(&self, mut config: HostConfig, grants: &GrantPolicy) -> Result<Vec<(String, String)>> {
        let running = self.config.current();
        for k in STARTUP_MODULE_CONFIG {
            match running.module_config.get(k) {
                Some(v) => config.module_config[k] = v.clone(),
                None => {
                    if let Some(m) = config.module_config.as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        for (name, slot) in self.registry.all() {
            let tasks = slot.current().meta.tasks.len();
            crate::policy::shares::admit(&name, tasks, &config.limits_for(&name))
                .map_err(|e| anyhow!("workers.{name}.limits: {e}; nothing applied"))?;
        }
        self.config.replace(config);
        self.grants.adopt(grants);
        let mut changes = Vec::new();
        for (name, slot) in self.registry.all() {
            let resolve = |s: &Serving| Serving {
                module: s.module.clone(),
                grants: self.grants.resolve(&name, &s.module.meta.needs, s.module.meta.emits.as_ref(), &s.trust),
                limits: self.config.limits_for(&name),
                trust: s.trust.clone(),
            };
            if let Some(change) = slot.reresolve(&resolve) {
                changes.push((name, change));
            }
        }
        Ok(changes)
    }
}
