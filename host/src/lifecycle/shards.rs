//! Shard task instances (`--ha-shards TASK=N`, docs/HA.md "Shards"): the scheduler runs a
//! sharded task as N loops named `TASK#KofN`, each with its own state, election and spool
//! entries; the guest is told the task's own name and sees only its shard's services
//! (capability/core/shard.rs). Also what the scheduler asks its hooks for a cycle's
//! randomness (HA seeds it, runtime/seeded.rs).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::config::LiveConfig;
use super::hooks::{CycleHook, CycleInfo};
use super::registry::Serving;
pub use crate::capability::core::shard::base;
use crate::capability::core::shard::Shard;
use crate::runtime::seeded::Seed;
use crate::runtime::task_state::TaskState;

/// Task → shard count, set once by HA before any module starts; empty without it.
pub type ShardCounts = OnceLock<BTreeMap<String, u32>>;

/// The loops a task runs as: itself, or its N shard instances.
pub fn instances(counts: &ShardCounts, task: &str) -> Vec<String> {
    match counts.get().and_then(|c| c.get(task)).copied() {
        Some(n) if n > 1 => (1..=n).map(|k| Shard::name(task, k, n)).collect(),
        _ => vec![task.to_string()],
    }
}

/// The period of `task` (a shard instance has its task's), as its loop schedules it.
pub fn interval(config: &LiveConfig, serving: &Serving, task: &str) -> Duration {
    let task = base(task);
    let declared = serving.module.meta.tasks.iter().find(|t| t.name == task).map_or(0, |t| t.interval_seconds);
    crate::policy::shares::interval(config.interval_for(task, declared), serving.limits.min_interval_seconds)
}

/// The first seed a hook gives for the cycle; None (the real randomness) if none does.
pub fn seed(hooks: &[Arc<dyn CycleHook>], info: &CycleInfo, state: Option<&TaskState>) -> Option<Seed> {
    hooks.iter().find_map(|h| h.seed(info, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sharded_task_runs_as_its_instances_others_as_themselves() {
        let counts = ShardCounts::new();
        assert_eq!(instances(&counts, "measure"), ["measure"]);
        counts.set(BTreeMap::from([("measure".to_string(), 3), ("collect".to_string(), 1)])).unwrap();
        assert_eq!(instances(&counts, "measure"), ["measure#1of3", "measure#2of3", "measure#3of3"]);
        assert_eq!(instances(&counts, "collect"), ["collect"]);
        assert_eq!(instances(&counts, "drift"), ["drift"]);
    }

    /// The seed reaches the guest: a real component (spooler, whose record ids are the SDK's
    /// `hex8` over `wasi:random`) run twice from the same state with the same seed makes the
    /// same ids; another seed (another slot) makes others.
    #[tokio::test]
    async fn a_seeded_cycle_makes_the_same_record_ids_from_the_same_seed() {
        use crate::outbox::effects::Effect;
        use crate::policy::emissions::{Emission, EmitRights, Emits};
        use crate::policy::grants::{Capability, Grants, Trust};
        use crate::runtime::seeded;
        let env = crate::test_support::run_env();
        let built = nthlayer_test_paths::components::SPOOLER.built();
        let m = env.runtime.load(&built, env.services.clone()).await.unwrap();
        let probe = Emits::default().with(Emission::parse("assessment:spool_probe").unwrap().unwrap());
        let rights = EmitRights { granted: probe.clone(), declared: None, effective: probe };
        let grants = Grants::none().with(Capability::Core).emitting(rights);
        let serving = Serving { grants, trust: Trust::Embedded, ..Serving::bare(m) };
        let state = TaskState::from_value(&serde_json::json!({"n": 0}));
        let ids = |seed| {
            let (env, serving, state) = (&env, &serving, &state);
            async move {
                let out =
                    super::super::scheduler::run_with(env, serving, "spooler", Some(state), None, None, true, seed)
                        .await
                        .map_err(|e| e.to_string())?;
                let ids: Vec<String> = out
                    .held
                    .iter()
                    .filter_map(|e| match e {
                        Effect::Record(r) => Some(r.id.clone()),
                        _ => None,
                    })
                    .collect();
                Ok::<_, String>(ids)
            }
        };
        let slot = |s| Some(seeded::seed("spooler", Some(&state), s));
        let (a, b, c) = (ids(slot(7)).await, ids(slot(7)).await, ids(slot(8)).await);
        let a = a.expect("the spooler's cycle ran");
        assert_eq!(a.len(), 10, "{a:?}");
        assert_eq!(Ok(a.clone()), b, "same task, state and slot: the same ids");
        assert_ne!(Ok(a.clone()), c, "another slot: other ids");
        let unseeded = ids(None).await;
        assert_ne!(Ok(a), unseeded, "without a seed the randomness is the real one");
    }
}
