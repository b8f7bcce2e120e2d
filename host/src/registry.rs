//! The loaded modules, each behind a handle whose current version can be replaced while
//! cycles run: a cycle holds the `Arc<LoadedModule>` it started with, so it finishes on the
//! old version while the next cycle picks up the new one.
//!
//! A freshly swapped-in version is on probation: if its first `rollback_after` cycles all
//! fail, the slot puts the last good version back. One success ends probation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use crate::capabilities::Grants;
use crate::runtime::limits::Limits;
use crate::runtime::LoadedModule;

struct Probation {
    last_good: Arc<LoadedModule>,
    failures: u32,
}

pub struct ModuleSlot {
    current: ArcSwap<LoadedModule>,
    pub grants: Grants,
    pub limits: Limits,
    rollback_after: u32,
    probation: Mutex<Option<Probation>>,
    retired: AtomicBool,
}

/// What a cycle's outcome did to the slot.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Nothing,
    /// The probationary version succeeded and is now the last good one.
    Promoted,
    /// The probationary version failed its first cycles; `restored` serves again.
    RolledBack {
        failed: String,
        restored: String,
        failures: u32,
    },
}

impl ModuleSlot {
    pub fn new(module: Arc<LoadedModule>, grants: Grants, limits: Limits, rollback_after: u32) -> Self {
        ModuleSlot {
            current: ArcSwap::new(module),
            grants,
            limits,
            rollback_after: rollback_after.max(1),
            probation: Mutex::new(None),
            retired: AtomicBool::new(false),
        }
    }

    pub fn current(&self) -> Arc<LoadedModule> {
        self.current.load_full()
    }

    /// Installs a new version on probation; returns the one it replaced. If the replaced
    /// version was itself on probation, the last *good* version stays the fallback.
    pub fn swap(&self, module: Arc<LoadedModule>) -> Arc<LoadedModule> {
        let mut p = self.probation.lock().expect("probation lock");
        let old = self.current.swap(module);
        let last_good = match p.take() {
            Some(prev) => prev.last_good,
            None => old.clone(),
        };
        *p = Some(Probation { last_good, failures: 0 });
        old
    }

    /// Records a cycle's outcome on `ran` (the version the cycle ran on).
    pub fn record(&self, ran: &Arc<LoadedModule>, ok: bool) -> Verdict {
        let mut p = self.probation.lock().expect("probation lock");
        let Some(prob) = p.as_mut() else { return Verdict::Nothing };
        if !Arc::ptr_eq(ran, &self.current.load()) {
            return Verdict::Nothing; // a cycle that started before the swap says nothing
        }
        if ok {
            *p = None;
            return Verdict::Promoted;
        }
        prob.failures += 1;
        if prob.failures < self.rollback_after {
            return Verdict::Nothing;
        }
        let restored = prob.last_good.clone();
        let failures = prob.failures;
        let failed = self.current.swap(restored.clone());
        *p = None;
        Verdict::RolledBack { failed: failed.label(), restored: restored.label(), failures }
    }

    pub fn on_probation(&self) -> bool {
        self.probation.lock().expect("probation lock").is_some()
    }

    /// Marks the slot as unloaded: its task loops stop after their in-flight cycle.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    pub fn retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Registry {
    slots: RwLock<BTreeMap<String, Arc<ModuleSlot>>>,
    /// Files whose latest content was rejected, with the reason (cleared when a later
    /// version of the file loads or the file goes away). Reported in heartbeats.
    rejected: Mutex<BTreeMap<String, String>>,
}

impl Registry {
    pub fn insert(&self, name: &str, slot: Arc<ModuleSlot>) -> Option<Arc<ModuleSlot>> {
        self.slots.write().expect("registry lock").insert(name.to_string(), slot)
    }

    pub fn get(&self, name: &str) -> Option<Arc<ModuleSlot>> {
        self.slots.read().expect("registry lock").get(name).cloned()
    }

    pub fn remove(&self, name: &str) -> Option<Arc<ModuleSlot>> {
        self.slots.write().expect("registry lock").remove(name)
    }

    pub fn all(&self) -> Vec<(String, Arc<ModuleSlot>)> {
        self.slots.read().expect("registry lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn note_rejected(&self, file: &std::path::Path, reason: &str) {
        self.rejected.lock().expect("rejected lock").insert(file.display().to_string(), reason.to_string());
    }

    pub fn clear_rejected(&self, file: &std::path::Path) {
        self.rejected.lock().expect("rejected lock").remove(&file.display().to_string());
    }

    pub fn rejected(&self) -> Value {
        json!(*self.rejected.lock().expect("rejected lock"))
    }

    /// Which version of each module is serving: for heartbeats, logs and `check`.
    pub fn versions(&self) -> Value {
        Value::Array(
            self.all()
                .into_iter()
                .map(|(_, slot)| {
                    let m = slot.current();
                    json!({
                        "name": m.meta.name,
                        "version": m.meta.version,
                        "sha256": m.sha256,
                        "loaded_at": m.loaded_at,
                        "path": m.path.display().to_string(),
                        "probation": slot.on_probation(),
                    })
                })
                .collect(),
        )
    }
}
