use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;

use super::*;
use crate::backend::retry::RetryPolicy;
use crate::lifecycle::registry::Registry;
use futures_util::future::BoxFuture;

/// Counts cycles and vetoes every one after the first `allow`.
struct Gatekeeper {
    allow: u32,
    before: AtomicU32,
    after: Mutex<Vec<CycleReport>>,
}

impl CycleHook for Gatekeeper {
    fn before<'a>(&'a self, cycle: &'a CycleInfo) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let n = self.before.fetch_add(1, Ordering::SeqCst) + 1;
            if n > self.allow {
                return Err(format!("no lease for {}", cycle.task));
            }
            Ok(())
        })
    }
    fn after<'a>(&'a self, report: &'a CycleReport) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.after.lock().unwrap().push(report.clone()) })
    }
}

/// A scheduler (two slots, core unreachable) and the swapper test component's slot.
async fn swapper() -> (Arc<Scheduler>, Arc<HostStatus>, Arc<ModuleSlot>) {
    let component = nthlayer_test_paths::components::SWAPPER_V1.built();
    let services = Arc::new(Services::offline().unwrap());
    let core = services.backends.core.with_retry(RetryPolicy::none());
    let config = LiveConfig::shared(Default::default());
    let env = RunEnv { runtime: crate::store::runtime(None).unwrap(), services, config };
    let module = env.runtime.load(&component, env.services.clone()).await.unwrap();
    let status = HostStatus::new(Arc::new(Registry::default()), Default::default());
    let sched = Scheduler::new(env, StateStore::new(core), status.clone(), 2);
    (sched, status, Arc::new(ModuleSlot::new(Serving::bare(module), 3)))
}

/// Hooks wrap every cycle; a failing before-hook skips the cycle (no run, no after-hook,
/// no counters); status records what ran. Core is unreachable here, so the after-hook
/// sees `state_saved: false`.
#[tokio::test]
async fn hooks_wrap_cycles_and_a_before_hook_can_skip_one() {
    let (sched, status, slot) = swapper().await;
    let hook = Arc::new(Gatekeeper { allow: 1, before: AtomicU32::new(0), after: Mutex::default() });
    sched.add_hook(hook.clone());
    let serving = slot.serving();

    let ran = sched.cycle(&slot, &serving, "swapper", Some(&json!({"n": 1}))).await;
    assert!(ran.ok);
    assert_eq!(ran.state.unwrap()["n"], 2);
    let vetoed = sched.cycle(&slot, &serving, "swapper", None).await;
    assert!(!vetoed.ok && vetoed.state.is_none(), "vetoed");

    assert_eq!(hook.before.load(Ordering::SeqCst), 2);
    let after = hook.after.lock().unwrap().clone();
    assert_eq!(after.len(), 1, "the vetoed cycle has no after-hook");
    assert!(after[0].ok && !after[0].state_saved && after[0].cycle.task == "swapper", "{after:?}");
    assert_eq!(status.tasks()["swapper"]["ok"], 1);
}

/// With a budget, a cycle is admitted and its measured cost (guest memory + held records)
/// becomes its task's estimate: the first cycle of a task is admitted as the whole budget,
/// the next by what the first one really used.
#[tokio::test]
async fn a_budget_learns_each_task_cost_from_its_cycles() {
    let (sched, _, slot) = swapper().await;
    sched.set_memory_budget(64);
    let budget = sched.memory.get().expect("a budget of 64 MiB is set");
    assert_eq!(budget.estimate("swapper"), 64 * 1024, "unknown: the whole budget");
    let ran = sched.cycle(&slot, &slot.serving(), "swapper", None).await;
    assert!(ran.ok);
    let learned = budget.estimate("swapper");
    // A guest has at least one 64 KiB page; this one is far below 64 MiB.
    assert!((64..64 * 1024).contains(&learned), "{learned} KiB");
    assert_eq!(budget.available(), 64 * 1024, "the cycle's place is given back");
}
