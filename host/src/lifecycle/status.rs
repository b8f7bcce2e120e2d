//! One place that knows how the host is doing. The scheduler records cycles here, and reads
//! of the registry (serving versions, rejected files) and the LLM service (usage) come
//! through here too; heartbeats — and later `/metrics` and an admin API — only read it.
//! Writers never know who reads: a change pokes [`HostStatus::changed`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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
        })
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
