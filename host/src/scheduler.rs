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

use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bindings::CycleInput;
use crate::config::HostConfig;
use crate::heartbeat::Heartbeat;
use crate::registry::{ModuleSlot, Verdict};
use crate::runtime::cycle::{CycleError, CycleOutcome};
use crate::runtime::store::CycleCtx;
use crate::runtime::{LoadedModule, Runtime};
use crate::services::Services;
use crate::state::{Restored, StateStore};

/// Per-task counters, reported in heartbeats.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TaskStats {
    pub ok: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    pub last_duration_ms: u64,
    pub version: String,
}

/// What every cycle needs besides the module: the runtime, the backends, the configuration.
#[derive(Clone)]
pub struct RunEnv {
    pub runtime: Arc<Runtime>,
    pub services: Arc<Services>,
    pub config: Arc<HostConfig>,
}

pub struct Scheduler {
    pub env: RunEnv,
    pub state: StateStore,
    pub heartbeat: Arc<Heartbeat>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    permits: Arc<Semaphore>,
    stats: Mutex<BTreeMap<String, TaskStats>>,
    /// Latest state of each task, kept so a failed persist can be retried at shutdown.
    unsaved: Mutex<BTreeMap<String, (String, String, Value)>>,
    /// Tasks with a live loop: a swap starts loops only for tasks new in the new version.
    running: Mutex<HashSet<String>>,
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

/// Runs one cycle of `task` on `module` (also used by the CLI for on-demand tasks).
pub async fn run_once(
    env: &RunEnv,
    slot: &ModuleSlot,
    module: &LoadedModule,
    task: &str,
    state: Option<&Value>,
    args: Option<&Value>,
) -> Result<CycleOutcome, CycleError> {
    let (meta, services) = (&module.meta, env.services.clone());
    let cx = CycleCtx::new(&meta.name, &meta.version, task, services, slot.grants, slot.limits.clone());
    let input = CycleInput {
        task: task.to_string(),
        state: state.map(Value::to_string),
        config: env.config.module_config.to_string(),
        args: args.map(Value::to_string),
    };
    env.runtime.run_cycle(module, input, cx).await
}

impl Scheduler {
    pub fn new(env: RunEnv, state: StateStore, heartbeat: Arc<Heartbeat>, max_concurrent: usize) -> Arc<Self> {
        Arc::new(Scheduler {
            env,
            state,
            heartbeat,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            stats: Mutex::new(BTreeMap::new()),
            unsaved: Mutex::new(BTreeMap::new()),
            running: Mutex::new(HashSet::new()),
        })
    }

    pub fn stats(&self) -> Value {
        json!(*self.stats.lock().expect("stats lock"))
    }

    /// Starts a loop for every scheduled task (interval > 0) of the module in `slot` that
    /// has none yet.
    pub fn start_module(self: &Arc<Self>, slot: Arc<ModuleSlot>, jitter_cap: Duration) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let module = slot.current();
        for t in module.meta.tasks.iter().filter(|t| t.interval_seconds > 0) {
            if !self.running.lock().expect("running lock").insert(t.name.clone()) {
                continue;
            }
            let (me, slot, task) = (self.clone(), slot.clone(), t.name.clone());
            let jitter = Duration::from_millis(rand::random_range(0..=jitter_cap.as_millis() as u64));
            self.tracker.spawn(async move { me.task_loop(slot, task, jitter).await });
        }
    }

    async fn task_loop(self: Arc<Self>, slot: Arc<ModuleSlot>, task: String, jitter: Duration) {
        let _running = Running(&self, task.clone());
        let mut state = match self.state.restore_until_ok(&task, &self.shutdown).await {
            None => return,
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
        loop {
            if slot.retired() {
                tracing::info!(%task, "module unloaded; task stopped");
                return;
            }
            let module = slot.current();
            let Some(meta) = module.meta.tasks.iter().find(|t| t.name == task) else {
                tracing::info!(%task, module = %module.label(), "task no longer provided by the module; stopping it");
                return;
            };
            let interval = Duration::from_secs(self.env.config.interval_for(&task, meta.interval_seconds).max(1));
            self.env.services.wake.subscribe(&task, &meta.wake);
            let started = Instant::now();
            if let Some(new_state) = self.cycle(&slot, &module, &task, state.as_ref()).await {
                state = Some(new_state);
            }
            self.heartbeat.poke();
            // Next start on the grid; ticks missed while the cycle ran are skipped, not queued.
            // A woken cycle does not move the grid.
            while planned <= Instant::now() {
                planned += interval;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                due = wake.due(planned, started) => {
                    if let (crate::wake::Due::Woken, Some((by, at))) = (due, wake.cause()) {
                        let after_ms = at.elapsed().as_millis() as u64;
                        tracing::info!(%task, %by, after_ms, "woken by a submitted record");
                    }
                }
            }
        }
    }

    /// One cycle: run, record, persist. Returns the new state when the cycle returned one.
    async fn cycle(
        self: &Arc<Self>,
        slot: &Arc<ModuleSlot>,
        module: &Arc<LoadedModule>,
        task: &str,
        state: Option<&Value>,
    ) -> Option<Value> {
        let _permit = self.permits.acquire().await.ok()?;
        let started = std::time::Instant::now();
        let r = run_once(&self.env, slot, module, task, state, None).await;
        let elapsed = started.elapsed();
        let mut stats = self.stats.lock().expect("stats lock").entry(task.to_string()).or_default().clone();
        stats.last_duration_ms = elapsed.as_millis() as u64;
        stats.version = module.meta.version.clone();
        let ok = r.is_ok();
        let out = match r {
            Ok(out) => {
                stats.ok += 1;
                tracing::info!(%task, module = %module.label(), ms = stats.last_duration_ms, emitted = out.emitted, cpu_ms = out.cpu_ms, "cycle ok");
                if out.log_dropped > 0 {
                    tracing::warn!(%task, dropped = out.log_dropped, "module exceeded its log line limit; lines dropped");
                }
                out.state
            }
            Err(e) => {
                stats.failed += 1;
                stats.last_error = Some(e.to_string());
                tracing::error!(%task, module = %module.label(), error = %e, "cycle failed; previous state kept");
                None
            }
        };
        self.stats.lock().expect("stats lock").insert(task.to_string(), stats);
        match slot.record(module, ok) {
            Verdict::Nothing => {}
            Verdict::Promoted => {
                tracing::info!(module = %module.label(), "new version passed its first cycle; it is now the last good version")
            }
            Verdict::RolledBack { failed, restored, failures } => {
                tracing::error!(%failed, %restored, failures, "new version failed its first cycles; rolled back to the last good version");
                self.start_module(slot.clone(), Duration::ZERO);
            }
        }
        let new_state = out?;
        self.persist(&module.meta.name, &module.meta.version, task, &new_state).await;
        Some(new_state)
    }

    async fn persist(&self, module: &str, version: &str, task: &str, state: &Value) {
        match self.state.save(module, version, task, state).await {
            Ok(()) => {
                self.unsaved.lock().expect("unsaved lock").remove(task);
            }
            Err(e) => {
                tracing::warn!(%task, error = %e, "could not persist task state; will retry at the next cycle or shutdown");
                self.unsaved
                    .lock()
                    .expect("unsaved lock")
                    .insert(task.to_string(), (module.to_string(), version.to_string(), state.clone()));
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
