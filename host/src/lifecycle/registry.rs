//! The loaded modules, each behind a handle whose current version can be replaced while
//! cycles run: a cycle holds the `Arc<LoadedModule>` it started with, so it finishes on the
//! old version while the next cycle picks up the new one.
//!
//! A freshly swapped-in version is on probation: if its first `rollback_after` cycles all
//! fail, the slot puts the last good version back. One success ends probation.
//!
//! Grants and limits belong to a version, not to the slot: they are resolved for each
//! version from what its code is (policy/grants.rs), so a swap or a rollback changes them
//! with the code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use crate::policy::grants::{Grants, Trust};
use crate::policy::limits::Limits;
use crate::store::LoadedModule;

/// A version with the rights it runs under.
pub struct Serving {
    pub module: Arc<LoadedModule>,
    pub grants: Grants,
    pub limits: Limits,
    pub trust: Trust,
}

impl Serving {
    /// A version with no grants and default limits (tests, benches).
    pub fn bare(module: Arc<LoadedModule>) -> Self {
        Serving { module, grants: Grants::none(), limits: Limits::default(), trust: Trust::Untrusted }
    }

    /// What changed in rights from `old` to `self`, for the swap log; None if nothing.
    pub fn rights_change(&self, old: &Serving) -> Option<String> {
        let (added, removed) = (self.grants.minus(&old.grants), old.grants.minus(&self.grants));
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!("granted {}", added.join(",")));
        }
        if !removed.is_empty() {
            parts.push(format!("revoked {}", removed.join(",")));
        }
        let (now, before) = (&self.grants.emits.effective, &old.grants.emits.effective);
        let (emits_added, emits_removed) = (now.not_allowed_by(before), before.not_allowed_by(now));
        if !emits_added.is_empty() {
            parts.push(format!("may emit {}", emits_added.labels().join(",")));
        }
        if !emits_removed.is_empty() {
            parts.push(format!("may no longer emit {}", emits_removed.labels().join(",")));
        }
        if self.limits != old.limits {
            parts.push("limits changed".to_string());
        }
        if self.trust != old.trust {
            parts.push(format!("trust {:?} -> {:?}", old.trust, self.trust));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Declared needs this version was not granted (the operator may want to add them).
    pub fn ungranted_needs(&self) -> Vec<String> {
        self.module
            .meta
            .needs
            .iter()
            .filter(|n| crate::policy::grants::Capability::parse(n).flatten().is_some_and(|c| !self.grants.allows(c)))
            .cloned()
            .collect()
    }

    /// `MODULE=…`: the whole `--grant` value that gives this version everything it declares
    /// (needs and emissions) and keeps what it has. Emissions on a line replace the set and
    /// a second line for a module replaces the first, so a partial line would revoke.
    pub fn grant_line(&self) -> String {
        let mut caps: Vec<String> = self.grants.names().iter().map(|c| c.to_string()).collect();
        caps.extend(self.ungranted_needs());
        caps.sort_by_key(|c| crate::policy::grants::Capability::ALL.iter().position(|k| k.name() == c));
        caps.dedup();
        caps.extend(self.grants.emits.granted.labels());
        caps.extend(self.grants.emits.missing().labels());
        format!("{}={}", self.module.meta.name, caps.join(","))
    }
}

struct Probation {
    last_good: Arc<Serving>,
    failures: u32,
}

pub struct ModuleSlot {
    current: ArcSwap<Serving>,
    rollback_after: u32,
    probation: Mutex<Option<Probation>>,
    retired: AtomicBool,
}

/// What a cycle's outcome did to the slot.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotChange {
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
    pub fn new(serving: Serving, rollback_after: u32) -> Self {
        ModuleSlot {
            current: ArcSwap::new(Arc::new(serving)),
            rollback_after: rollback_after.max(1),
            probation: Mutex::new(None),
            retired: AtomicBool::new(false),
        }
    }

    pub fn current(&self) -> Arc<LoadedModule> {
        self.current.load().module.clone()
    }

    /// The current version with its rights: what a cycle runs on.
    pub fn serving(&self) -> Arc<Serving> {
        self.current.load_full()
    }

    /// Installs a new version on probation; returns the one it replaced. If the replaced
    /// version was itself on probation, the last *good* version stays the fallback.
    pub fn swap(&self, serving: Serving) -> Arc<Serving> {
        let mut p = self.probation.lock().expect("probation lock");
        event(&serving, "swap");
        let old = self.current.swap(Arc::new(serving));
        let last_good = match p.take() {
            Some(prev) => prev.last_good,
            None => old.clone(),
        };
        *p = Some(Probation { last_good, failures: 0 });
        old
    }

    /// Installs a version outside probation (a known-good one, e.g. the embedded built-in
    /// coming back); returns the one it replaced.
    pub fn install(&self, serving: Serving) -> Arc<Serving> {
        let mut p = self.probation.lock().expect("probation lock");
        *p = None;
        event(&serving, "install");
        self.current.swap(Arc::new(serving))
    }

    /// Records a cycle's outcome on `ran` (the version the cycle ran on).
    pub fn record(&self, ran: &Arc<LoadedModule>, ok: bool) -> SlotChange {
        let mut p = self.probation.lock().expect("probation lock");
        let Some(prob) = p.as_mut() else { return SlotChange::Nothing };
        if !Arc::ptr_eq(ran, &self.current.load().module) {
            return SlotChange::Nothing; // a cycle that started before the swap says nothing
        }
        if ok {
            *p = None;
            event(&self.current.load(), "promote");
            return SlotChange::Promoted;
        }
        prob.failures += 1;
        if prob.failures < self.rollback_after {
            return SlotChange::Nothing;
        }
        let restored = prob.last_good.clone();
        let failures = prob.failures;
        let failed = self.current.swap(restored.clone());
        event(&restored, "rollback");
        *p = None;
        SlotChange::RolledBack { failed: failed.module.label(), restored: restored.module.label(), failures }
    }

    /// Re-resolves the rights of the serving version, and of the last good one if on
    /// probation, after a config reload (`resolve` gives a version its grants and limits
    /// under the new configuration); the code, its trust and its probation stay. A cycle
    /// already running keeps the rights it started with. Returns what changed, for the log.
    pub fn reresolve(&self, resolve: &dyn Fn(&Serving) -> Serving) -> Option<String> {
        let mut p = self.probation.lock().expect("probation lock");
        let old = self.current.load_full();
        let new = resolve(&old);
        let change = new.rights_change(&old);
        self.current.store(Arc::new(new));
        if let Some(prob) = p.as_mut() {
            prob.last_good = Arc::new(resolve(&prob.last_good));
        }
        change
    }

    pub fn on_probation(&self) -> bool {
        self.probation.lock().expect("probation lock").is_some()
    }

    /// Marks the slot as unloaded: its task loops stop after their in-flight cycle.
    pub fn retire(&self) {
        event(&self.current.load(), "unload");
        self.retired.store(true, Ordering::Relaxed);
    }

    pub fn retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }
}

/// Counts a version event under the version it concerns (`rollback`: the one restored).
fn event(s: &Serving, what: &str) {
    crate::telemetry::swap(&s.module.meta.name, what, &s.module.meta.version, &s.module.sha256);
}

#[derive(Default)]
pub struct Registry {
    slots: RwLock<BTreeMap<String, Arc<ModuleSlot>>>,
    /// Files whose latest content was rejected, with the reason (cleared when a later
    /// version of the file loads or the file goes away). Reported in heartbeats.
    rejected: Mutex<BTreeMap<String, String>>,
    /// Files compiling in the background (swap.rs), with when that started (RFC 3339).
    compiling: Mutex<BTreeMap<String, String>>,
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
        crate::telemetry::rejected_file();
        self.rejected.lock().expect("rejected lock").insert(file.display().to_string(), reason.to_string());
    }

    pub fn clear_rejected(&self, file: &std::path::Path) {
        self.rejected.lock().expect("rejected lock").remove(&file.display().to_string());
    }

    pub fn rejected(&self) -> Value {
        json!(*self.rejected.lock().expect("rejected lock"))
    }

    pub fn note_compiling(&self, file: &std::path::Path, compiling: bool) {
        let mut c = self.compiling.lock().expect("compiling lock");
        let key = file.display().to_string();
        if compiling {
            c.insert(key, chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        } else {
            c.remove(&key);
        }
    }

    /// Files still compiling in the background: for heartbeats.
    pub fn compiling(&self) -> Value {
        json!(*self.compiling.lock().expect("compiling lock"))
    }

    /// Which version of each module is serving: for heartbeats, logs and `check`.
    pub fn versions(&self) -> Value {
        Value::Array(
            self.all()
                .into_iter()
                .map(|(_, slot)| {
                    let s = slot.serving();
                    let m = &s.module;
                    json!({
                        "name": m.meta.name,
                        "version": m.meta.version,
                        "contract": m.contract(),
                        "sha256": m.sha256,
                        "loaded_at": m.loaded_at,
                        "size_bytes": m.size_bytes,
                        "compile_ms": m.compile_ms,
                        "artifact": if m.origin == crate::runtime::cache::Origin::Cached { "cached" } else { "compiled" },
                        "path": m.path.display().to_string(),
                        "probation": slot.on_probation(),
                        "trust": s.trust,
                        "grants": s.grants.names(),
                        "emits": s.grants.emits.labels(),
                        "emits_missing": s.grants.emits.missing(),
                    })
                })
                .collect(),
        )
    }
}
