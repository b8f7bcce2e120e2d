//! Runs every task of every loaded module on its interval.
//!
//! Differences from the reference's scheduler, on purpose (docs/PARITY.md):
//! - every task runs at start-up (after a small jitter) instead of only when the machine's
//!   uptime exceeds its interval;
//! - tasks run concurrently (bounded by `--max-concurrent-cycles`) instead of one after
//!   another, so a slow topology scan no longer delays collect;
//! - the period is measured start to start and a late tick is skipped, not queued, instead
//!   of interval + cycle duration.
//!
//! At most one cycle per task is in flight: each task is one loop.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lifecycle::hooks::{CycleHook, CycleInfo, CycleReport};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::bindings::CycleInput;
use crate::capability::Services;
use crate::lifecycle::config::LiveConfig;
use crate::lifecycle::registry::{ModuleSlot, Serving, SlotChange};
use crate::lifecycle::status::HostStatus;
pub use crate::lifecycle::status::TaskStats;
use crate::outbox::identity::{Recheck, Vetted};
use crate::outbox::state::{Restored, StateStore};
use crate::runtime::cycle::CycleError;
use crate::runtime::task_state::TaskState;
use crate::store::CycleCtx;
use crate::store::{CycleOutcome, Runtime, StoreData};

/// What a cycle left: whether it committed, and its new state if it returned one.
pub(crate) struct Ran {
    pub(crate) ok: bool,
    pub(crate) state: Option<TaskState>,
}

/// What every cycle needs besides the module: the runtime, the backends, the configuration.
#[derive(Clone)]
pub struct RunEnv {
    pub runtime: Arc<Runtime>,
    pub services: Arc<Services>,
    pub config: Arc<LiveConfig>,
}

pub struct Scheduler {
    pub env: RunEnv,
    pub state: StateStore,
    pub status: Arc<HostStatus>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// Execution slots (`--max-concurrent-cycles`): held only while guest code runs, taken
    /// back at every host call (see [`crate::policy::shares`]).
    slots: Arc<Semaphore>,
    /// Memory cycles in flight may hold together (`--cycle-memory-budget-mib`); unset: none.
    memory: std::sync::OnceLock<crate::policy::memory::MemoryBudget>,
    /// Each module's cap on its cycles in flight (its `max_concurrent` limit).
    shares: crate::policy::shares::Shares,
    hooks: Mutex<Vec<Arc<dyn CycleHook>>>,
    /// Latest state of each task, kept so a failed persist can be retried at shutdown.
    unsaved: Mutex<BTreeMap<String, (String, String, TaskState)>>,
    /// Tasks with a live loop: a swap starts loops only for tasks new in the new version.
    running: Mutex<HashSet<String>>,
    /// The operator's pause / run-now (lifecycle/control.rs), set by serve.
    pub control: std::sync::OnceLock<Arc<crate::lifecycle::control::TaskControl>>,
    /// `--ha-shards`: tasks run as several shard instances (lifecycle/shards.rs), set by HA.
    pub shards: super::shards::ShardCounts,
}

/// Removes a task from the running set when its loop ends, however it ends.
struct Running<'a>(&'a Scheduler, String);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // Before leaving the running set: a successor loop subscribes afresh.
        self.0.env.services.wake.unsubscribe(&self.1);
        self.0.running.lock().expect("running lock").remove(&self.1);
    }
}

/// Runs one cycle of `task` on a version, under that version's rights (also used by the CLI
/// for on-demand tasks).
pub async fn run_once(
    env: &RunEnv,
    serving: &Serving,
    task: &str,
    state: Option<&TaskState>,
    args: Option<&Value>,
) -> Result<CycleOutcome, CycleError> {
    run_with(env, serving, task, state, args, None, false, None).await
}

/// As [`run_once`], with the guest's execution held to one of `slots` while it runs; `hold`
/// keeps the cycle's records in its outcome for the outbox's commit instead of posting them;
/// `seed` replaces the guest's randomness (HA).
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_with(
    env: &RunEnv,
    serving: &Serving,
    task: &str,
    state: Option<&TaskState>,
    args: Option<&Value>,
    slots: Option<Arc<Semaphore>>,
    hold: bool,
    seed: Option<crate::runtime::seeded::Seed>,
) -> Result<CycleOutcome, CycleError> {
    let (module, services) = (&serving.module, env.services.clone());
    let meta = &module.meta;
    let record = services.record.clone();
    let mut cx =
        CycleCtx::new(&meta.name, &meta.version, task, services, serving.grants.clone(), serving.limits.clone());
    let recorder = record.as_ref().map(|_| Arc::new(crate::tape::Recorder::default()));
    cx.cx.tape = recorder.clone().map(crate::tape::Tape::Record);
    (cx.slots, cx.seed) = (slots, seed);
    if hold {
        cx = cx.holding();
    }
    let input = CycleInput {
        task: super::shards::base(task).to_string(),
        state: state.map(|s| s.as_str().to_string()),
        config: env.config.module_config(),
        args: args.map(Value::to_string),
    };
    let out =
        crate::telemetry::in_cycle(&meta.name, task, env.runtime.run_cycle(module, input, StoreData::new(cx))).await;
    if let (Some(to), Some(rec)) = (record, recorder) {
        rec.finish(&to, task, state.map(TaskState::to_value).as_ref(), args);
    }
    out
}

impl Scheduler {
    pub fn new(env: RunEnv, state: StateStore, status: Arc<HostStatus>, max_concurrent: usize) -> Arc<Self> {
        Arc::new(Scheduler {
            env,
            state,
            status,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            memory: Default::default(),
            shares: Default::default(),
            hooks: Mutex::new(Vec::new()),
            unsaved: Mutex::new(BTreeMap::new()),
            running: Mutex::new(HashSet::new()),
            control: Default::default(),
            shards: Default::default(),
        })
    }

    /// Admits later cycles against a memory budget of `mib` MiB (policy/memory.rs); 0 or a
    /// second call: nothing changes.
    pub fn set_memory_budget(&self, mib: u64) {
        if let Some(b) = crate::policy::memory::MemoryBudget::new(mib) {
            let _ = self.memory.set(b);
        }
    }

    /// Adds a hook around every later cycle (see [`CycleHook`]); hooks run in the order added.
    pub fn add_hook(&self, hook: Arc<dyn CycleHook>) {
        self.hooks.lock().expect("hooks lock").push(hook);
    }

    fn hooks(&self) -> Vec<Arc<dyn CycleHook>> {
        self.hooks.lock().expect("hooks lock").clone()
    }

    /// Starts a loop for every scheduled task (interval > 0) of the module in `slot` that
    /// has none yet.
    pub fn start_module(self: &Arc<Self>, slot: Arc<ModuleSlot>, jitter_cap: Duration) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let module = slot.current();
        let tasks = module.meta.tasks.iter().filter(|t| t.interval_seconds > 0);
        for name in tasks.flat_map(|t| super::shards::instances(&self.shards, &t.name)) {
            if !self.running.lock().expect("running lock").insert(name.clone()) {
                continue;
            }
            let (me, slot, task) = (self.clone(), slot.clone(), name);
            let jitter = Duration::from_millis(rand::random_range(0..=jitter_cap.as_millis() as u64));
            self.tracker.spawn(async move { me.task_loop(slot, task, jitter).await });
        }
    }

    async fn task_loop(self: Arc<Self>, slot: Arc<ModuleSlot>, task: String, jitter: Duration) {
        let _running = Running(&self, task.clone());
        // Local state counts only for the core it belongs to (outbox/identity.rs).
        let core = self.env.services.backends.core.clone();
        let outbox = self.env.services.outbox.get().cloned();
        let vetted = match &outbox {
            Some(o) => o.vet(&task, &core).await,
            None => Vetted::Nothing,
        };
        let mut recheck = Recheck::new(&vetted, &core);
        let from_spool = matches!(vetted, Vetted::Local(_) | Vetted::Unchecked(_));
        let restored = match vetted {
            Vetted::Local(l) | Vetted::Unchecked(l) => Some(Restored::Ours { state: l.state, version: l.version }),
            Vetted::Core(r) => Some(r),
            Vetted::Nothing => self.state.restore_until_ok(&task, &self.shutdown).await,
        };
        let mut state = match restored {
            None => return,
            Some(Restored::Ours { state, version }) if from_spool => {
                tracing::info!(%task, saved_by = %version, "restored task state from the local spool");
                Some(state)
            }
            Some(Restored::Ours { state, version }) => {
                tracing::info!(%task, saved_by = %version, "restored task state");
                Some(state)
            }
            Some(Restored::Nothing) => None,
        };
        tokio::select! {
            _ = self.shutdown.cancelled() => return,
            _ = tokio::time::sleep(jitter) => {}
        }
        // Starts follow a fixed grid from the first start: a late start (busy permits, a
        // slow host) does not push every later start back.
        let mut planned = Instant::now();
        let wake = self.env.services.wake.subscribe(&task, &[]);
        // After a failed (or refused) cycle the task runs again after this, doubling up to
        // its interval, instead of waiting a whole interval.
        let mut retry: Option<Duration> = None;
        loop {
            if crate::lifecycle::control::hold(&self.control, &task, &self.shutdown).await.stops() {
                return;
            }
            if slot.retired() {
                tracing::info!(%task, "module unloaded; task stopped");
                return;
            }
            let serving = slot.serving();
            let module = &serving.module;
            let Some(meta) = module.meta.tasks.iter().find(|t| t.name == super::shards::base(&task)) else {
                tracing::info!(%task, module = %module.label(), "task no longer provided by the module; stopping it");
                return;
            };
            let interval = crate::policy::shares::interval(
                self.env.config.interval_for(&meta.name, meta.interval_seconds),
                serving.limits.min_interval_seconds,
            );
            self.env.services.wake.subscribe(&task, &meta.wake);
            if let Some(o) = &outbox {
                if let Some(theirs) = recheck.again(o, &task, &core).await {
                    state = theirs;
                }
            }
            let started = Instant::now();
            let ran = self
                .cycle(&slot, &serving, &task, state.as_ref())
                .instrument(crate::telemetry::cycle_span(&module.meta.name, &module.meta.version, &task))
                .await;
            if let Some(new_state) = ran.state {
                state = Some(new_state);
            }
            self.status.touch();
            // Next start on the grid; ticks missed while the cycle ran are skipped, not queued.
            // A woken cycle does not move the grid.
            while planned <= Instant::now() {
                planned += interval;
            }
            retry =
                if ran.ok { None } else { Some(retry.map_or(self.env.config.retry_first(), |r| r * 2).min(interval)) };
            let next = match retry {
                Some(r) if Instant::now() + r < planned => {
                    tracing::info!(%task, retry_in_s = r.as_secs(), "cycle did not commit; retrying before its next interval");
                    Instant::now() + r
                }
                _ => planned,
            };
            self.status.record_task(&task, |s| s.next_run_at = Some(crate::lifecycle::control::at(next)));
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                due = wake.due(next, started) => {
                    if let (crate::wake::Due::Woken, Some((by, at))) = (due, wake.cause()) {
                        let after_ms = at.elapsed().as_millis() as u64;
                        tracing::info!(%task, %by, after_ms, "woken by a submitted record");
                    }
                }
            }
        }
    }

    /// One cycle: run, commit (outbox) or persist, record. Returns whether it committed and
    /// its new state. Crate-visible so swap.rs's tests can drive probation cycle by cycle.
    pub(crate) async fn cycle(
        self: &Arc<Self>,
        slot: &Arc<ModuleSlot>,
        serving: &Serving,
        task: &str,
        state: Option<&TaskState>,
    ) -> Ran {
        let module = &serving.module;
        let _share = self.shares.acquire(&module.meta.name, serving.limits.max_concurrent).await;
        // Only trusted modules share the budget (policy/memory.rs, "who is admitted").
        let budget = self.memory.get().filter(|_| serving.trust.trusted());
        let _memory = match budget {
            Some(budget) => {
                let admitted = budget.admit(task, crate::policy::memory::PATIENCE).await;
                if admitted.over_budget() {
                    tracing::info!(%task, waited_s = crate::policy::memory::PATIENCE.as_secs(), estimate_kb = admitted.kib,
                        "no room in the cycle memory budget; running over it");
                }
                Some(admitted)
            }
            None => None,
        };
        let info = CycleInfo {
            module: module.meta.name.clone(),
            version: module.meta.version.clone(),
            task: task.to_string(),
            interval: super::shards::interval(&self.env.config, serving, task),
        };
        let hooks = self.hooks();
        let handed = match super::hooks::ready(&hooks, &info).await {
            Ok(handed) => handed,
            Err(reason) => {
                tracing::info!(%task, module = %module.label(), %reason, "cycle skipped by a before-cycle hook");
                return Ran { ok: false, state: None };
            }
        };
        let state = handed.as_ref().or(state);
        let seed = super::shards::seed(&hooks, &info, state);
        let started = std::time::Instant::now();
        let outbox = self.env.services.outbox.get().cloned();
        let slots = Some(self.slots.clone());
        let r = run_with(&self.env, serving, task, state, None, slots, outbox.is_some(), seed).await;
        let class = r.as_ref().err().map(CycleError::class); // None and failed: the commit
        let r = r.map_err(|e| e.to_string());
        // All or nothing: the records and the new state go to the spool in one transaction.
        let r = match (r, &outbox) {
            (Ok(mut out), Some(o)) => {
                let held = std::mem::take(&mut out.held);
                let meta = &module.meta;
                match super::hooks::fenced(&hooks, &info, out.state.as_ref()).await {
                    Ok(()) => o.commit(task, &meta.name, &meta.version, out.state.as_ref(), held).await.map(|()| out),
                    Err(e) => Err(e),
                }
            }
            (r, _) => r,
        };
        let elapsed = started.elapsed();
        if let (Ok(out), Some(budget)) = (&r, budget) {
            budget.observed(task, out.memory_bytes);
        }
        let (ok, error, emitted, cpu_ms) = match &r {
            Ok(out) => (true, None, out.emitted, Some(out.cpu_ms)),
            Err(e) => (false, Some(e.clone()), 0, None),
        };
        crate::telemetry::cycle(&module.meta.name, task, ok, class, elapsed, cpu_ms);
        self.status.record_task(task, |stats| {
            stats.last_duration_ms = elapsed.as_millis() as u64;
            stats.version = module.meta.version.clone();
            (stats.last_run_at, stats.last_ok) = (Some(crate::lifecycle::control::now()), Some(ok));
            stats.module.clone_from(&module.meta.name);
            stats.push_recent(ok, elapsed.as_millis() as u64, cpu_ms.unwrap_or(0));
            if let Some(cpu) = cpu_ms {
                stats.last_cpu_ms = cpu;
            }
            if ok {
                stats.ok += 1;
            } else {
                stats.failed += 1;
                stats.last_error = error.clone();
            }
        });
        let out = match r {
            Ok(out) => {
                tracing::info!(%task, module = %module.label(), ms = elapsed.as_millis() as u64, emitted = out.emitted,
                    cpu_ms = out.cpu_ms, memory_kb = out.memory_bytes >> 10, "cycle ok");
                if out.log_dropped > 0 {
                    tracing::warn!(%task, dropped = out.log_dropped, "module exceeded its log line limit; lines dropped");
                }
                out.state
            }
            Err(e) => {
                tracing::error!(%task, module = %module.label(), error = %e, "cycle failed; previous state kept, none of its records delivered");
                None
            }
        };
        match slot.record(module, ok) {
            SlotChange::Nothing => {}
            SlotChange::Promoted => {
                tracing::info!(module = %module.label(), "new version passed its first cycle; it is now the last good version")
            }
            SlotChange::RolledBack { failed, restored, failures } => {
                tracing::error!(%failed, %restored, failures, "new version failed its first cycles; rolled back to the last good version");
                self.start_module(slot.clone(), Duration::ZERO);
            }
        }
        let state_saved = match (&out, &outbox) {
            (Some(_), Some(_)) => true,
            (Some(new_state), None) => self.persist(&module.meta.name, &module.meta.version, task, new_state).await,
            (None, _) => false,
        };
        let report = CycleReport { cycle: info, ok, error, emitted, state_saved, duration: elapsed };
        for h in &hooks {
            h.after(&report).await;
        }
        crate::runtime::heap::settle();
        Ran { ok, state: out }
    }

    /// Saves a task's state in core; true when saved.
    async fn persist(&self, module: &str, version: &str, task: &str, state: &TaskState) -> bool {
        match self.state.save(module, version, task, state).await {
            Ok(()) => {
                self.unsaved.lock().expect("unsaved lock").remove(task);
                true
            }
            Err(e) => {
                tracing::warn!(%task, error = %e, "could not persist task state; will retry at the next cycle or shutdown");
                self.unsaved
                    .lock()
                    .expect("unsaved lock")
                    .insert(task.to_string(), (module.to_string(), version.to_string(), state.clone()));
                false
            }
        }
    }

    /// Stops scheduling, lets in-flight cycles finish within `grace`, then retries any state
    /// that could not be persisted (one attempt each, bounded).
    pub async fn stop(&self, grace: Duration) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait()).await.is_err() {
            tracing::warn!(grace = ?grace, "in-flight cycles did not finish within the grace period; abandoning them (their state is not committed)");
        }
        let pending: Vec<_> = std::mem::take(&mut *self.unsaved.lock().expect("unsaved lock")).into_iter().collect();
        let store = self.state.impatient();
        for (task, (module, version, state)) in pending {
            match tokio::time::timeout(Duration::from_secs(2), store.save(&module, &version, &task, &state)).await {
                Ok(Ok(())) => tracing::info!(%task, "persisted state at shutdown"),
                _ => {
                    tracing::warn!(%task, "state not persisted at shutdown (core unreachable); the last persisted state stands")
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
