use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;

use super::*;
use crate::backend::retry::RetryPolicy;
use crate::lifecycle::registry::Registry;
use crate::policy::grants::Trust;
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
    scheduler_of(nthlayer_test_paths::components::SWAPPER_V1, None).await
}

/// As [`swapper`], for any test component, committing to a spool in `spool` if given.
async fn scheduler_of(
    component: nthlayer_test_paths::Component,
    spool: Option<&std::path::Path>,
) -> (Arc<Scheduler>, Arc<HostStatus>, Arc<ModuleSlot>) {
    let component = component.built();
    let services = Arc::new(Services::offline().unwrap());
    if let Some(dir) = spool {
        let outbox = crate::outbox::Outbox::open(crate::outbox::OutboxConfig::in_dir(dir)).unwrap();
        services.outbox.set(outbox).ok().expect("a fresh Services has no outbox");
    }
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

    let ran = sched.cycle(&slot, &serving, "swapper", Some(&json!({"n": 1}).into())).await;
    assert!(ran.ok);
    assert_eq!(ran.state.unwrap().to_value()["n"], 2);
    let vetoed = sched.cycle(&slot, &serving, "swapper", None).await;
    assert!(!vetoed.ok && vetoed.state.is_none(), "vetoed");

    assert_eq!(hook.before.load(Ordering::SeqCst), 2);
    let after = hook.after.lock().unwrap().clone();
    assert_eq!(after.len(), 1, "the vetoed cycle has no after-hook");
    assert!(after[0].ok && !after[0].state_saved && after[0].cycle.task == "swapper", "{after:?}");
    assert_eq!(status.tasks()["swapper"]["ok"], 1);
}

/// With a budget, a trusted module's cycle is admitted and its measured cost (guest memory +
/// held records) becomes its task's estimate: the first cycle of a task is admitted as the
/// whole budget, the next by what the first one really used. A module that is not trusted
/// never enters the budget: nothing is held for it, nothing learned.
#[tokio::test]
async fn a_budget_learns_each_trusted_task_cost_and_leaves_other_modules_out() {
    let (sched, _, slot) = swapper().await;
    sched.set_memory_budget(64);
    let budget = sched.memory.get().expect("a budget of 64 MiB is set");
    assert_eq!(budget.estimate("swapper"), 64 * 1024, "unknown: the whole budget");
    let ran = sched.cycle(&slot, &slot.serving(), "swapper", None).await;
    assert!(ran.ok);
    assert_eq!(budget.estimate("swapper"), 64 * 1024, "an untrusted module's cycle taught the budget");

    let s = slot.serving();
    let trusted = Serving {
        module: s.module.clone(),
        grants: s.grants.clone(),
        limits: s.limits.clone(),
        trust: Trust::Embedded,
    };
    let slot = Arc::new(ModuleSlot::new(trusted, 3));
    let ran = sched.cycle(&slot, &slot.serving(), "swapper", None).await;
    assert!(ran.ok);
    let learned = budget.estimate("swapper");
    // A guest has at least one 64 KiB page; this one is far below 64 MiB.
    assert!((64..64 * 1024).contains(&learned), "{learned} KiB");
    assert_eq!(budget.available(), 64 * 1024, "the cycle's place is given back");
}

/// The state a guest returns is what the spool keeps and what core is sent, byte for byte
/// (written into the packed row as text), and what comes back from either: after a restart
/// the next cycle starts from it.
#[tokio::test]
async fn a_state_round_trips_byte_for_byte_through_a_cycle_the_spool_and_core() {
    use crate::outbox::spool::{Spool, What};
    let dir = tempfile::tempdir().unwrap();
    let (sched, _, slot) = scheduler_of(nthlayer_test_paths::components::SWAPPER_V1, Some(dir.path())).await;
    let from = json!({"n": 41, "last_ms": 0, "max_gap_ms": 7, "versions": ["0.9.0"]}).into();
    let ran = sched.cycle(&slot, &slot.serving(), "swapper", Some(&from)).await;
    assert!(ran.ok);
    let state = ran.state.expect("the swapper returns a state");
    assert_eq!(state.to_value()["n"], 42, "the guest was given the state: {state}");

    let spool = Spool::open_shared(dir.path()).unwrap();
    assert_eq!(spool.local_state("swapper").unwrap().expect("kept locally").state.as_str(), state.as_str());
    let put = spool.head("swapper", 10).unwrap().into_iter().find(|e| e.what == What::State).expect("spooled for core");
    assert!(put.body.contains(&format!(r#""state":{state}}}"#)), "{}", put.body);
    // Core stores the row as JSON and serves it back with its component name.
    let mut served: Value = serde_json::from_str(&put.body).unwrap();
    served["component"] = json!("swapper");
    match crate::outbox::state::unpack(Some(&served)) {
        crate::outbox::state::Restored::Ours { state: restored, .. } => assert_eq!(restored.as_str(), state.as_str()),
        other => panic!("core's row did not restore: {other:?}"),
    }

    drop((sched, slot, spool));
    let (sched, _, slot) = scheduler_of(nthlayer_test_paths::components::SWAPPER_V1, Some(dir.path())).await;
    let outbox = sched.env.services.outbox.get().unwrap().clone();
    let restored = outbox.local_state("swapper").await.expect("the spool survived the restart").state;
    assert_eq!(restored, state);
    let next = sched.cycle(&slot, &slot.serving(), "swapper", Some(&restored)).await;
    assert_eq!(next.state.expect("a state").to_value()["n"], 43);
}

/// A guest's state that is not JSON fails its cycle with the parser's reason, recorded
/// against the task; the task keeps the state it had.
#[tokio::test]
async fn a_state_that_is_not_json_fails_the_cycle_of_the_task_that_returned_it() {
    let task = "hostile-badjson";
    let (sched, status, slot) = scheduler_of(nthlayer_test_paths::components::HOSTILE_BADJSON, None).await;
    let first = sched.cycle(&slot, &slot.serving(), task, None).await;
    assert!(first.ok, "its first cycle behaves");
    assert_eq!(first.state.as_ref().map(|s| s.as_str()), Some(r#"{"n":1}"#));
    let bad = sched.cycle(&slot, &slot.serving(), task, first.state.as_ref()).await;
    assert!(!bad.ok && bad.state.is_none(), "refused, no new state");
    let stats = &status.tasks()[task];
    let error = stats["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("state is not valid JSON: key must be a string"), "{stats}");
    assert_eq!((stats["ok"].as_u64(), stats["failed"].as_u64()), (Some(1), Some(1)), "{stats}");
}
