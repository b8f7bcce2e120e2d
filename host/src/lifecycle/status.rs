//! One place that knows how the host is doing. The scheduler records cycles here, and reads
//! of the registry (serving versions, rejected files) and the LLM service (usage) come
//! through here too; heartbeats — and later `/metrics` and an admin API — only read it.
//! Writers never know who reads: a change pokes [`HostStatus::changed`]. The HTTP surface
//! (ops/) reads it too: the status page, `/ready` and the gauges of `/metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::backend::llm::LlmService;
use crate::lifecycle::registry::Registry;

/// Per-task counters, reported in heartbeats.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TaskStats {
    pub ok: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    pub last_duration_ms: u64,
    /// Guest CPU of the last successful cycle (runtime/cpu.rs: host calls never count).
    pub last_cpu_ms: u64,
    pub version: String,
    /// When the last cycle ended and whether it committed, and when the next is planned
    /// (RFC 3339): the admin API's and `status`'s "last run / outcome / next run".
    pub last_run_at: Option<String>,
    pub last_ok: Option<bool>,
    pub next_run_at: Option<String>,
    /// The module the task belongs to. Not in heartbeats (the reference's shape).
    #[serde(skip)]
    pub module: String,
    /// The last few cycles, newest last, for the status page.
    #[serde(skip)]
    pub recent: VecDeque<Recent>,
}

/// One finished cycle as the status page shows it.
#[derive(Debug, Clone)]
pub struct Recent {
    /// RFC 3339, when it ended.
    pub at: String,
    pub ok: bool,
    pub ms: u64,
    pub cpu_ms: u64,
}

/// Cycles kept per task in [`TaskStats::recent`].
pub const RECENT: usize = 5;

impl TaskStats {
    /// Adds a finished cycle to the short history.
    pub fn push_recent(&mut self, ok: bool, ms: u64, cpu_ms: u64) {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.recent.push_back(Recent { at, ok, ms, cpu_ms });
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }
}

pub struct HostStatus {
    registry: Arc<Registry>,
    llm: LlmService,
    tasks: Mutex<BTreeMap<String, TaskStats>>,
    /// The spool's backlog (outbox/), null without one.
    outbox: Mutex<Value>,
    /// This replica's leadership (ha/), null without HA.
    ha: Mutex<Value>,
    changed: Notify,
    started: Instant,
    /// Start-up is done: config read, modules loaded, the spool open (serve sets it).
    ready: AtomicBool,
}

impl HostStatus {
    pub fn new(registry: Arc<Registry>, llm: LlmService) -> Arc<Self> {
        Arc::new(HostStatus {
            registry,
            llm,
            tasks: Mutex::default(),
            outbox: Mutex::new(Value::Null),
            ha: Mutex::new(Value::Null),
            changed: Notify::new(),
            started: Instant::now(),
            ready: AtomicBool::new(false),
        })
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Why the host is not ready yet, if it is not: start-up unfinished, or modules still
    /// compiling in the background (their tasks are not running).
    pub fn not_ready(&self) -> Option<String> {
        if !self.ready.load(Ordering::Relaxed) {
            return Some("starting: modules loading or the spool not open yet".into());
        }
        match self.registry.compiling() {
            Value::Object(m) if !m.is_empty() => {
                Some(format!("compiling in the background: {}", m.keys().cloned().collect::<Vec<_>>().join(", ")))
            }
            _ => None,
        }
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn llm(&self) -> &LlmService {
        &self.llm
    }

    /// Every task's counters and recent cycles.
    pub fn task_stats(&self) -> BTreeMap<String, TaskStats> {
        self.tasks.lock().expect("status lock").clone()
    }

    /// The spool's last report (outbox/mod.rs's `report`), null without a spool.
    pub fn outbox(&self) -> Value {
        self.outbox.lock().expect("status lock").clone()
    }

    /// Updates one task's counters. Readers are told by [`HostStatus::touch`] once the
    /// cycle is over (state persisted), so a heartbeat never runs ahead of core's state.
    pub fn record_task(&self, task: &str, update: impl FnOnce(&mut TaskStats)) {
        update(self.tasks.lock().expect("status lock").entry(task.to_string()).or_default());
    }

    /// Something readers should see changed (a cycle, a swap, a rejected file).
    pub fn touch(&self) {
        self.changed.notify_one();
    }

    /// Resolves after the next [`HostStatus::touch`] (or at once if one is pending).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// The spool's condition; a change of the backlog wakes the heartbeat.
    pub fn set_outbox(&self, report: Value) {
        let mut o = self.outbox.lock().expect("status lock");
        if *o != report {
            *o = report;
            drop(o);
            self.touch();
        }
    }

    /// This replica's leadership; a change wakes the heartbeat.
    pub fn set_ha(&self, report: Value) {
        let mut h = self.ha.lock().expect("status lock");
        if *h != report {
            *h = report;
            drop(h);
            self.touch();
        }
    }

    pub fn tasks(&self) -> Value {
        json!(*self.tasks.lock().expect("status lock"))
    }

    /// The heartbeat's `state`: the reference's `modules` (scheduled task names) plus ours.
    pub fn snapshot(&self) -> Value {
        let modules: Vec<String> = self
            .registry
            .all()
            .iter()
            .flat_map(|(_, s)| {
                s.current()
                    .meta
                    .tasks
                    .iter()
                    .filter(|t| t.interval_seconds > 0)
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut snapshot = json!({
            "modules": modules,
            "host": {"name": "nthlayer-host", "version": env!("CARGO_PKG_VERSION")},
            "components": self.registry.versions(),
            "rejected": self.registry.rejected(),
            "compiling": self.registry.compiling(),
            "tasks": self.tasks(),
            "llm": self.llm.metrics(),
            "outbox": self.outbox.lock().expect("status lock").clone(),
        });
        // Only with HA: without it the heartbeat stays as it was.
        let ha = self.ha.lock().expect("status lock").clone();
        if !ha.is_null() {
            snapshot["ha"] = ha;
        }
        snapshot
    }
}

/// The sender tells the status how the spool's backlog changed.
impl crate::outbox::sender::BacklogWatch for HostStatus {
    fn backlog(&self, report: Value) {
        self.set_outbox(report);
    }
}
