//! Installing a reloaded configuration: the one place that knows every home a reload
//! changes, so a reload is one step — the new values, the new `--grant` and `--llm` lines,
//! and each loaded version's rights re-resolved under them.

use std::sync::Arc;

use anyhow::{anyhow, Result};

use crate::backend::llm::{LlmService, Policies};
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
    /// The LLM service every cycle snapshots its `--llm` policies from.
    pub llm: LlmService,
}

impl Live {
    /// Installs `config` and `grants`, then re-resolves every loaded version's grants and
    /// limits. Refuses (changing nothing) limits a loaded module could not start under.
    /// Returns each module whose rights changed, with what changed.
    pub fn apply(&self, mut config: HostConfig, grants: &GrantPolicy, llm: Policies) -> Result<Vec<(String, String)>> {
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
        self.llm.set_policies(llm);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The modules' knobs take the new file's values; the two that come from restart-only
    /// keys keep the running ones, as those keys do.
    #[test]
    fn module_config_changes_except_what_restart_only_keys_set() {
        let start = json!({"instance_id": "a", "tempo_configured": false, "expiry_threshold_days": 7});
        let live = Live {
            config: LiveConfig::shared(HostConfig { module_config: start, ..HostConfig::default() }),
            grants: GrantPolicy::default(),
            registry: Arc::new(Registry::default()),
            llm: LlmService::default(),
        };
        let next = json!({"instance_id": "b", "tempo_configured": true, "expiry_threshold_days": 9});
        let intervals = [("t".to_string(), 5)].into();
        live.apply(
            HostConfig { module_config: next, intervals, ..HostConfig::default() },
            &GrantPolicy::default(),
            Policies::default(),
        )
        .unwrap();
        let now: serde_json::Value = serde_json::from_str(&live.config.module_config()).unwrap();
        assert_eq!(now, json!({"instance_id": "a", "tempo_configured": false, "expiry_threshold_days": 9}));
        assert_eq!(live.config.interval_for("t", 60), 5);
    }

    /// `--grant` lines reach every clone of the policy (the watcher's) at once.
    #[test]
    fn adopted_grants_reach_every_clone() {
        let watcher = GrantPolicy::parse(&["m=core".into()]).unwrap();
        let live = Live {
            config: LiveConfig::shared(HostConfig::default()),
            grants: watcher.clone(),
            registry: Arc::new(Registry::default()),
            llm: LlmService::default(),
        };
        let trust = crate::policy::grants::Trust::Untrusted;
        assert_eq!(watcher.resolve("m", &[], None, &trust).names(), ["core"]);
        let grants = GrantPolicy::parse(&["m=prometheus".into()]).unwrap();
        live.apply(HostConfig::default(), &grants, Policies::default()).unwrap();
        assert_eq!(watcher.resolve("m", &[], None, &trust).names(), ["prometheus"]);
    }
}
